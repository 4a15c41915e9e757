"""Answer extraction, the format gate, the miniature generators and their verifier."""

import numpy as np
import polars as pl
import pytest

from mtarl import prepare, tasks
from mtarl.tasks import arith, extract_answer, has_format


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<think>x</think><answer>579</answer>", "579"),
        ("<think>a\nb</think>\n<answer>\n1 2\n3 4\n</answer>", "1 2\n3 4"),  # multi-line answer (DOTALL)
        ("<answer>1</answer> then <answer>2</answer>", "2"),  # the last answer block counts
        ("<think>no answer</think>", None),
        ("<answer>unclosed", None),
        ("<answer>  42 </answer>", "42"),
    ],
)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<think>a</think><answer>1</answer>", True),
        ("<think>line one\nline two</think>\n\n<answer>1</answer>", True),  # multi-line think passes (fix of P7)
        ("  <think>a</think> <answer>1</answer>\n", True),  # surrounding whitespace is stripped first
        ("<think>a</think><answer>1</answer> trailing text", False),
        ("<answer>1</answer>", False),  # missing think
        ("preamble <think>a</think><answer>1</answer>", False),
        ("<think>a</think><answer>1</answer><answer>2</answer>", True),  # two answers pass; the last is taken
    ],
)
def test_has_format(completion, expected):
    assert has_format(completion) is expected


def test_arith_families_compute_the_right_answers():
    add3, mul2 = arith.FAMILIES["add3"], arith.FAMILIES["mul2"]
    assert (add3.prompt(123, 456), add3.answer(123, 456)) == ("123+456=", "579")
    assert (add3.prompt(999, 999), add3.answer(999, 999)) == ("999+999=", "1998")
    assert (mul2.prompt(37, 84), mul2.answer(37, 84)) == ("37*84=", "3108")


def test_verify_gates_on_format_and_compares_integers():
    ok = tasks.verify("add3", "<think></think><answer>579</answer>", "579")
    assert ok.correct and ok.format_ok and ok.extracted == "579"
    leading_zero = tasks.verify("add3", "<think></think><answer>0579</answer>", "579")
    assert leading_zero.correct
    wrong = tasks.verify("add3", "<think></think><answer>578</answer>", "579")
    assert not wrong.correct and wrong.format_ok
    unformatted = tasks.verify("add3", "<answer>579</answer>", "579")
    assert unformatted.accurate and not unformatted.correct
    garbage = tasks.verify("add3", "<think></think><answer>5 79</answer>", "579")
    assert not garbage.accurate
    with pytest.raises(ValueError, match="unknown task family"):
        tasks.verify("nope", "x", "1")


def test_synthetic_splits_are_correct_disjoint_and_deterministic():
    splits = prepare.synthetic_splits("add3", "add3", n_train=300, n_eval=50, seed=7)
    again = prepare.synthetic_splits("add3", "add3", n_train=300, n_eval=50, seed=7)
    other = prepare.synthetic_splits("add3", "add3", n_train=300, n_eval=50, seed=8)
    assert splits["train"].equals(again["train"]) and splits["eval"].equals(again["eval"])
    assert not splits["eval"].equals(other["eval"])
    assert (splits["train"].height, splits["eval"].height) == (300, 50)
    assert set(splits["train"]["prompt"]).isdisjoint(splits["eval"]["prompt"])
    both = pl.concat(splits.values())
    assert both["id"].is_unique().all()
    for prompt, answer in zip(both["prompt"], both["answer"]):
        a, b = map(int, prompt.rstrip("=").split("+"))
        assert 100 <= a <= 999 and 100 <= b <= 999 and int(answer) == a + b
    assert list(splits["train"].schema) == list(prepare.PROBLEM_SCHEMA)


def test_sample_operands_excludes_and_refuses_too_many():
    fam = arith.FAMILIES["mul2"]
    excluded = {(10, 10), (11, 11)}
    pairs = arith.sample_operands(fam, 100, np.random.default_rng(0), exclude=excluded)
    assert len(set(pairs)) == 100 and not excluded & set(pairs)
    with pytest.raises(ValueError, match="distinct problems"):
        arith.sample_operands(fam, fam.n_distinct + 1, np.random.default_rng(0))
