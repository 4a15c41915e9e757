"""Pretraining pieces: loss masking, the corpus mixture, and checkpoint selection bookkeeping."""

import numpy as np
import polars as pl
import pytest

from mtarl import pretrain
from mtarl.tokenizer import build_char_tokenizer


def test_loss_is_on_completion_and_eos_only():
    tok = build_char_tokenizer()
    batch = pretrain.encode_batch(tok, ["1+2=", "10+20="], ["<answer>3</answer>", "30"])
    first_labels = batch["labels"][0].tolist()
    n_prompt = len("1+2=")
    assert first_labels[:n_prompt] == [-100] * n_prompt
    assert tok.decode([t for t in first_labels if t != -100]) == "<answer>3</answer><eos>"
    second = batch["input_ids"][1].tolist()
    assert tok.decode(second, skip_special_tokens=True) == "10+20=30"
    assert batch["attention_mask"][0].sum() == n_prompt + 3 + 1  # prompt, 3 tokens (tag, digit, tag), EOS


def test_corpus_follows_mixture_and_never_emits_eval_problems(add3_problems):
    problems = pl.read_parquet(add3_problems["eval"])
    corpus = pretrain.build_corpus({"mixture": {"add3": 1.0}, "format_rate": 0.5}, problems, seed=0)
    eval_prompts = set(problems["prompt"])
    prompts, completions = corpus.batch(2000)
    assert not eval_prompts & set(prompts)
    formatted = np.mean([c.startswith("<think>") for c in completions])
    assert 0.45 < formatted < 0.55
    for p, c in zip(prompts, completions):
        a, b = map(int, p.rstrip("=").split("+"))
        assert str(a + b) in c


def test_mixture_task_without_problems_is_an_error(add3_problems):
    problems = pl.read_parquet(add3_problems["eval"])
    with pytest.raises(ValueError, match="mixture names task 'mul2'"):
        pretrain.build_corpus({"mixture": {"mul2": 1.0}, "format_rate": 1.0}, problems, seed=0)


@pytest.mark.parametrize("value, expected", [(0.5, 0.0), (0.1, 0.2), (0.95, 0.15), (0.3, 0.0)])
def test_distance_to_target_range(value, expected):
    assert pretrain.distance_to_range(value, 0.3, 0.8) == pytest.approx(expected)
