"""Character-level tokenizer of the miniature's tiny models.

One token per character, except the four tags of the study's answer format, which are single tokens so that a tiny
model spends its few positions on the answer. Built with the ``tokenizers`` library and saved with
``save_pretrained``, so ``AutoTokenizer.from_pretrained(path)`` loads it offline like any hub tokenizer.

No BOS is added: a prompt encodes to exactly its characters, identically in pretraining, sampling and TRL.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
# Written into tokenizer_config.json: beside a Qwen2 config.json, AutoTokenizer would rebuild the tokenizer as Qwen2's
# byte-level one (splitting the tags, dropping "<" and ">"), so mtarl.modeling.load reads this marker and loads the
# tokenizer by its own class.
MARKER = "mtarl_char_tokenizer"
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
CHARACTERS = string.digits + "+-*/=()., ?:" + string.ascii_lowercase


def build_char_tokenizer(characters: str = CHARACTERS) -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *TAGS, *dict.fromkeys(characters)])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tag_alternatives = "|".join(t.replace("/", "\\/") for t in TAGS)
    core.pre_tokenizer = pre_tokenizers.Split(Regex(f"{tag_alternatives}|."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
    tok.init_kwargs[MARKER] = True
    return tok
