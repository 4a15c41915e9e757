"""The HF sampling backend and the per-sample table shared by probe and evaluate."""

import polars as pl
import torch
import pytest

from mtarl import scoring
from mtarl.modeling import load
from mtarl.sampling import HFSampler, SamplingParams, make_sampler


@pytest.fixture(scope="module")
def sampler(random_model_dir):
    model, tokenizer = load(str(random_model_dir))
    return HFSampler(model, tokenizer, max_batch_sequences=24)


def test_n_completions_per_prompt_with_token_counts(sampler):
    params = SamplingParams(n=5, max_new_tokens=6, seed=1)
    out = sampler.generate(["1+2=", "30+40=", "7*8="], params)
    assert [len(c) for c in out] == [5, 5, 5]
    for completions in out:
        for c in completions:
            assert 1 <= c.n_tokens <= 6
            assert c.finish_reason in {"stop", "length"}
            if c.finish_reason == "length":
                assert c.n_tokens == 6  # cut at max_new_tokens; a stopped one counts its EOS


def test_same_seed_same_samples_other_seed_other_samples(sampler):
    prompts = ["12+34=", "56+78="]
    a = sampler.generate(prompts, SamplingParams(n=8, max_new_tokens=8, seed=3))
    b = sampler.generate(prompts, SamplingParams(n=8, max_new_tokens=8, seed=3))
    c = sampler.generate(prompts, SamplingParams(n=8, max_new_tokens=8, seed=4))
    assert a == b and a != c
    texts = [x.text for x in a[0]]
    assert len(set(texts)) > 1, "n samples at temperature 1 must not all be identical"


def test_seeds_follow_the_position_in_the_whole_table(sampler):
    """A shard starting at a seed-block boundary samples what the same prompts sample in one call."""
    prompts = ["1+2=", "30+40=", "7*8=", "5+5=", "9*9=", "11+22="]
    params = SamplingParams(n=8, max_new_tokens=6, seed=2)  # 24 sequences per call: seed blocks of 3 prompts
    whole = sampler.generate(prompts, params)
    assert sampler.generate(prompts[3:], params, first_index=3) == whole[3:]
    assert sampler.generate(prompts[3:], params) != whole[3:]  # without the offset they are other samples
    with pytest.raises(ValueError, match="first_index 2 is not a multiple of the seed block 3"):
        sampler.generate(prompts[2:], params, first_index=2)


def test_greedy_samples_are_identical(sampler):
    out = sampler.generate(["12+34="], SamplingParams(n=3, max_new_tokens=8, temperature=0))
    assert len({c.text for c in out[0]}) == 1


def test_sample_and_score_table_schema(sampler):
    problems = pl.DataFrame({"id": ["p0", "p1"], "prompt": ["1+1=", "2+2="], "answer": ["2", "4"],
                             "family": ["add3", "add3"]})
    table = scoring.sample_and_score(sampler, problems, SamplingParams(n=3, max_new_tokens=6, seed=0))
    assert table.schema == pl.Schema(scoring.SAMPLE_SCHEMA)
    assert table["problem_id"].to_list() == ["p0"] * 3 + ["p1"] * 3
    assert table["sample"].to_list() == [0, 1, 2, 0, 1, 2]


def test_unknown_backend_is_a_clear_error(random_model_dir):
    with pytest.raises(ValueError, match="unknown sampling backend 'tgi'"):
        make_sampler("tgi", str(random_model_dir))


def test_pinned_stop_tokens_end_a_completion(random_model_dir):
    model, tokenizer = load(str(random_model_dir))
    chat = {"stop_tokens": ["</answer>"], "system_prompt": None, "add_generation_prompt": True}
    sampler = HFSampler(model, tokenizer, chat=chat)
    ids = tokenizer("<answer>12</answer>34")["input_ids"]
    completion = sampler._completion(torch.tensor(ids))
    # kept in the text: only special tokens are dropped when decoding (a real chat model's stop tokens are special)
    assert (completion.text, completion.finish_reason, completion.n_tokens) == ("<answer>12</answer>", "stop", 4)
    with pytest.raises(ValueError, match="not in the tokenizer's vocabulary"):
        HFSampler(model, tokenizer, chat={**chat, "stop_tokens": ["<|im_end|>"]})


def test_the_unk_token_can_be_a_stop_token(random_model_dir):
    """SmolLM2's unk token is <|endoftext|>, one of its pinned stop tokens: known, not 'unknown'."""
    from mtarl.sampling import stop_token_ids

    _, tokenizer = load(str(random_model_dir))
    if tokenizer.unk_token is None:
        tokenizer.unk_token = tokenizer.convert_ids_to_tokens(tokenizer.eos_token_id + 1)
    ids = stop_token_ids(tokenizer, {"stop_tokens": [tokenizer.unk_token]})
    assert ids == [tokenizer.eos_token_id, tokenizer.unk_token_id]


def test_chat_template_renders_the_pinned_system_turn(random_model_dir):
    from mtarl.sampling import render_prompt

    _, tokenizer = load(str(random_model_dir))
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }};{% endfor %}a:"
    chat = {"system_prompt": "be", "add_generation_prompt": True}
    assert render_prompt(tokenizer, "1+1=", chat) == "s:be;u:1+1=;a:"
    assert render_prompt(tokenizer, "1+1=", {**chat, "system_prompt": None}) == "u:1+1=;a:"
    assert render_prompt(tokenizer, "1+1=", None) == "1+1="
