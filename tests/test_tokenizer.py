"""The character tokenizer: round trip, single-token tags, offline save/load through AutoTokenizer."""

from transformers import AutoTokenizer

from mtarl.tokenizer import TAGS, build_char_tokenizer


def test_round_trip_and_tags_are_single_tokens():
    tok = build_char_tokenizer()
    text = "123+456=<think></think><answer>579</answer>"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert len(ids) == len("123+456=579") + len(TAGS)  # one token per character, one per tag
    for tag in TAGS:
        assert len(tok(tag)["input_ids"]) == 1


def test_eos_and_pad_are_dropped_when_decoding():
    tok = build_char_tokenizer()
    ids = [tok.pad_token_id, *tok("12")["input_ids"], tok.eos_token_id]
    assert tok.decode(ids, skip_special_tokens=True) == "12"


def test_unknown_characters_map_to_unk():
    tok = build_char_tokenizer()
    assert tok("§")["input_ids"] == [tok.unk_token_id]


def test_saved_tokenizer_loads_offline_with_auto_tokenizer(tmp_path):
    tok = build_char_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "37*84=<answer>3108</answer>"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.padding_side == "left"
    assert (loaded.pad_token, loaded.eos_token) == ("<pad>", "<eos>")


def test_model_directory_loads_the_same_tokenizer(tmp_path):
    """Beside a Qwen2 config.json, AutoTokenizer alone would rebuild Qwen2's byte-level tokenizer."""
    from mtarl.modeling import build_tiny_model, load

    tok = build_char_tokenizer()
    build_tiny_model(tok, seed=0, num_hidden_layers=1, hidden_size=16, intermediate_size=16, num_attention_heads=2,
                     num_key_value_heads=2).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    _, loaded = load(str(tmp_path))
    text = "12+34=<think></think><answer>46</answer>"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.decode(tok(text)["input_ids"]) == text
