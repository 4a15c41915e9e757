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


# -- latent behaviours of the pretraining text (format prior, strategies, answer noise) -----------------------------

def test_scratchpads_work_the_problem_out():
    from mtarl.tasks import arith

    assert arith.addition_work(456, 789) == "51 41 21"  # 6+9 = 15, 5+8+1 = 14, 4+7+1 = 12 -> 1245
    assert arith.addition_work(123, 456) == "90 70 50"
    assert arith.multiplication_work(37, 84) == "148+2960"  # 37*4, 37*80 -> 3108


def test_plausible_wrong_answers_are_one_digit_off_by_one():
    from mtarl.tasks import arith

    rng = np.random.default_rng(0)
    for answer in ["100", "1245", "999", "9", "1", "3108", "190"] * 50:
        wrong = arith.plausible_wrong(answer, rng)
        assert len(wrong) == len(answer) and (len(wrong) == 1 or wrong[0] != "0")
        diffs = [(int(w) - int(a)) for w, a in zip(wrong, answer) if w != a]
        assert len(diffs) == 1 and abs(diffs[0]) == 1


def test_has_scratchpad_tells_the_strategies_apart():
    from mtarl.tasks import has_scratchpad

    assert has_scratchpad("<think>51 41 21</think><answer>1245</answer>")
    assert not has_scratchpad("<think></think><answer>1245</answer>")
    assert not has_scratchpad("<think> </think><answer>1245</answer>")
    assert not has_scratchpad("1245")


def binomial_ok(successes: int, trials: int, p: float) -> bool:
    """Within 4 standard deviations of the binomial mean (a false alarm about once in 16,000 runs)."""
    return abs(successes - trials * p) <= 4 * (trials * p * (1 - p)) ** 0.5 + 1


def test_corpus_produces_the_requested_format_strategy_and_noise_rates(add3_problems, tmp_path):
    """Measured on the generated text alone: format gate, scratchpad, and the answer against the true one."""
    from mtarl import prepare
    from mtarl.tasks import arith, extract_answer, has_format, has_scratchpad

    mul2 = {"source": "synthetic", "family": "mul2", "n_train": 10, "n_eval": 10, "seed": 0}
    prepare.run("mul2", "mul2", mul2, str(tmp_path / "mul2.parquet"))
    problems = pl.concat([pl.read_parquet(add3_problems["eval"]), pl.read_parquet(tmp_path / "mul2.parquet")])
    settings = {"mixture": {"add3": 0.5, "mul2": 0.5}, "format_rate": 0.6, "scratchpad_rate": 0.7,
                "answer_noise": 0.3, "scratchpad_noise": 0.1}
    prompts, completions = pretrain.build_corpus(settings, problems, seed=1).batch(4000)
    counts = {"formatted": 0, "scratchpad": 0, "direct": 0, "direct_wrong": 0, "scratchpad_wrong": 0}
    for prompt, completion in zip(prompts, completions):
        family = arith.FAMILIES["add3" if "+" in prompt else "mul2"]
        a, b = map(int, arith.INTEGER_RE.findall(prompt))
        formatted, scratchpad = has_format(completion), has_scratchpad(completion)
        answer = extract_answer(completion) if formatted else completion
        wrong = answer != family.answer(a, b)
        counts["formatted"] += formatted
        if scratchpad:
            assert formatted and completion.startswith(f"<think>{family.scratchpad(a, b)}</think>")
        counts["scratchpad"] += scratchpad
        counts["scratchpad_wrong"] += scratchpad and wrong
        counts["direct"] += not scratchpad
        counts["direct_wrong"] += not scratchpad and wrong
    assert binomial_ok(counts["formatted"], 4000, 0.6)
    assert binomial_ok(counts["scratchpad"], counts["formatted"], 0.7)
    assert binomial_ok(counts["direct_wrong"], counts["direct"], 0.3)
    assert binomial_ok(counts["scratchpad_wrong"], counts["scratchpad"], 0.1)


# The first examples of this corpus, recorded with the code before the latent-behaviour keys existed.
RECORDED_CORPUS = [("909+368=", "<think></think><answer>1277</answer>"), ("144+482=", "626"),
                   ("774+740=", "<think></think><answer>1514</answer>"), ("565+975=", "1540")]


def test_behaviours_off_leave_the_corpus_of_the_default_models_unchanged(add3_problems):
    """Rates of 0 draw nothing: the text is that of the corpus before these keys existed (recorded values)."""
    problems = pl.read_parquet(add3_problems["eval"])
    settings = {"mixture": {"add3": 1.0}, "format_rate": 0.5, "scratchpad_rate": 0.0, "answer_noise": 0.0,
                "scratchpad_noise": 0.0}
    prompts, completions = pretrain.build_corpus(settings, problems, seed=0).batch(4)
    assert list(zip(prompts, completions)) == RECORDED_CORPUS
