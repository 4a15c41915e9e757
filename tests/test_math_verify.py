"""The paper configuration's math verifier (mtarl.tasks.math): equivalences, extraction, methods, batching, deadlines.

Run: ``.venv/bin/pytest tests/test_math_verify.py`` (about half a minute; the timeout tests wait for real deadlines).
Every expectation below is what math-verify 0.9.0 actually does with mtarl's wrapping, including the equivalences it
does not support (``test_unsupported_equivalences``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mtarl import tasks
from mtarl.tasks import math as mv

# Both keep sympy busy for more than 30 s when math-verify's timeouts are off (measured: still inside
# sympy's Integer._eval_power and factorial after 30 s), so only a deadline ends them.
POWER_TOWER = "9^{9^{9}}"
GIANT_FACTORIAL = "(10^{7})!"


def wrap(answer: str) -> str:
    return f"<think>reasoning</think>\n<answer>{answer}</answer>"


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    """Start the shared workers once, so that timings below measure verification, not interpreter start-up."""
    assert mv.check("1", "1")
    yield


@pytest.mark.parametrize(
    "answer, gold",
    [
        ("0.5", r"\frac{1}{2}"),  # fraction vs decimal
        (r"\frac{1}{2}", "0.5"),
        (r"\frac12", r"\frac{1}{2}"),  # bare \frac12 parses only because it is wrapped in $...$
        (r"\dfrac{1}{2}", r"\frac{1}{2}"),
        (r"\tfrac12", "0.5"),
        (r"-\frac{3}{4}", "-0.75"),
        (r"\frac{-3}{4}", r"-\frac{3}{4}"),
        ("- 5", "-5"),  # negative numbers
        ("−2", "-2"),  # unicode minus
        (r"\sqrt8", r"2\sqrt{2}"),
        (r"\frac{1}{2}\sqrt{3}", r"\frac{\sqrt{3}}{2}"),
        ("(x+1)^2", "x^2+2x+1"),
        ("1 + 2x", "2x + 1"),
        ("[-2, 7]", "[-2,7]"),  # intervals
        (r"\left[-2, 7\right]", "[-2,7]"),
        (r"(-\infty,3]", r"(-\infty, 3]"),
        (r"(-\infty,3]", r"x \le 3"),  # an interval answer to an inequality gold
        (r"\{3,2,1\}", r"\{1,2,3\}"),
        (r"(3, \pi/2)", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        ("1,000", "1000"),
        (r"1 \times 10^2", "100"),
        ("10^6", "1000000"),
        ("x = 3", "3"),  # an equation answer to a number gold
        (r"\boxed{\frac{1}{2}}", "0.5"),  # \boxed inside the answer block
        (r"The answer is \boxed{1/2}.", "0.5"),
        (r"\fbox{5}", "5"),
        (r"\(5\)", "5"),
        ("$5$", "5"),
        ("The answer is 3", "3"),
        (r"5 \text{ cm}", "5"),  # units in \text are dropped ...
        ("5 cm", "5"),
        (r"5\text{ feet}", r"5\text{ inches}"),  # ... entirely, so different units compare equal too
        ("90", r"90^\circ"),  # degrees: the sign is dropped
        (r"90^\circ", "90"),
        ("18.90", r"\$18.90"),  # escaped dollar sign
        (r"\$18.90", "18.90"),
        ("0.25", r"25\%"),  # percent: 25% equals 0.25 ...
        ("25", r"25\%"),  # ... and also 25
        (r"50\%", r"\frac{1}{2}"),
        (r"5\%", "5"),
        ("C", r"\text{(C)}"),  # multiple-choice letters
        ("(C)", r"\text{(C)}"),
        ("Evelyn", r"\text{Evelyn}"),
        ("3!", "6"),
        ("0.8660254", r"\frac{\sqrt{3}}{2}"),
    ],
)
def test_equivalent_answers(answer, gold):
    assert mv.check(answer, gold) is True
    assert mv.is_correct(wrap(answer), gold) is True


@pytest.mark.parametrize(
    "answer, gold",
    [
        ("5", "-5"),
        (r"\frac{3}{4}", r"-\frac{3}{4}"),
        ("(-2,7)", "[-2,7]"),  # open vs closed interval
        (r"(-\infty, 3)", r"(-\infty, 3]"),
        ("(2,1)", "(1,2)"),  # tuples are ordered
        ("1, 3", "3"),  # a set of candidates is not the answer
        ("3 or 4", "3"),
        (r"\text{(D)}", r"\text{(C)}"),
        ("0.4", "0.5"),
        ("", "3"),
    ],
)
def test_wrong_answers(answer, gold):
    assert mv.check(answer, gold) is False


@pytest.mark.parametrize(
    "answer, gold",
    [
        (r"x \le 3", r"(-\infty, 3]"),  # an inequality answer to an interval gold (the reverse direction passes)
        (r"90^\circ", r"\frac{\pi}{2}"),  # no degree <-> radian conversion
        (r"1500\text{ m}", r"1.5\text{ km}"),  # no unit conversion
        ("1e6", "1000000"),  # no e-notation
        ("five", "5"),  # no number words
        ("0.333", r"\frac{1}{3}"),  # rounded decimals fail (0.3333333 passes: 6-digit float rounding)
        (r"0.\overline{3}", r"\frac13"),  # no repeating-decimal notation
        ("2.000001", "2"),
        (r"\sqrt{-1}", "i"),  # answers are parsed as reals unless they look complex
        (r"\text{so } 3", "3"),  # words inside \text{} around the number
        ("x = 1\ny = 3", "(1,3)"),  # a system's solution written as equations
    ],
)
def test_unsupported_equivalences(answer, gold):
    """Equivalent (or arguably equivalent) answers that math-verify 0.9.0 scores as wrong."""
    assert mv.check(answer, gold) is False


def test_multi_line_answers_are_read_as_one_line():
    # math-verify's $...$ does not span lines: unjoined, "\frac{1}{2}\n+ 1" would be read as "1"
    assert mv.check("\\frac{1}{2}\n+ 1", "\\frac{3}{2}") is True
    assert mv.check("\\frac{1}{2}\n+ 1", "1") is False
    assert mv.check("\\begin{pmatrix}\n1 \\\\\n2\n\\end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}") is True
    assert mv.check("The final answer is:\n\\[\n\\frac{1}{2}\n\\]", "0.5") is True
    assert mv.check("First, x = 1.\nSo the answer is\n3", "3") is True
    assert mv.is_correct("<think>a\nb</think>\n<answer>\n[1,\n 2]\n</answer>", "[1,2]") is True


def test_delimit():
    assert mv.delimit(r" \frac12 ") == r"$\frac12$"
    assert mv.delimit("$5$ apples") == "$5$ apples"
    assert mv.delimit(r"\boxed{5}") == r"\boxed{5}"
    assert mv.delimit(r"\(5\)") == r"\(5\)"
    assert mv.delimit(r"\$18.90") == r"$\$18.90$"  # an escaped dollar is not a delimiter
    assert mv.delimit("a\n  b") == "$a b$"
    assert mv.delimit("  ") == ""


def test_extraction_takes_the_last_answer_block_and_needs_one():
    two = "<think>a</think><answer>3</answer> wait, no: <answer>\\frac12</answer>"
    assert mv.is_correct(two, "0.5") is True
    assert mv.is_correct(two, "3") is False
    assert mv.is_correct("<think>the answer is 0.5</think>", "0.5") is False
    assert mv.is_correct(r"<think>a</think> \boxed{0.5}", "0.5") is False  # a box outside <answer> does not count
    assert mv.is_correct("<answer>0.5</answer>", "0.5") is True  # no format gate here (tasks.has_format is separate)


def test_registered_family_math():
    assert "math" in tasks.known_families()
    good = tasks.verify("math", wrap(r"\dfrac{1}{2}"), "0.5")
    assert good.correct and good.extracted == r"\dfrac{1}{2}"
    unformatted = tasks.verify("math", "<answer>0.5</answer>", r"\frac{1}{2}")
    assert unformatted.accurate and not unformatted.format_ok and not unformatted.correct
    assert not tasks.verify("math", wrap("0.4"), "0.5").accurate


def test_exact_method_is_the_official_string_match():
    assert mv.check(r"\frac{1}{2}", r"\frac{1}{2}", method="exact") is True
    assert mv.check(r"\frac12", r"\frac{1}{2}", method="exact") is False
    assert mv.check("0.5", r"\frac{1}{2}", method="exact") is False
    assert mv.check(" 5 ", "5", method="exact") is True  # stripping is the only normalisation
    assert mv.verify_many([(r"\frac12", r"\frac{1}{2}"), ("7", "7")], method="exact") == [False, True]
    with pytest.raises(ValueError, match="unknown math verifier"):
        mv.check("1", "1", method="sympy")


def test_unparseable_gold_is_false_and_reported():
    before = mv.STATS["unparseable_gold"]
    assert mv.judge("3", r"\text{}") is None  # in-process: None means unscorable
    assert mv.check("3", r"\text{}") is False
    assert mv.verify_many([("3", r"\text{}"), ("4", r"\text{}")]) == [False, False]
    assert mv.STATS["unparseable_gold"] == before + 3
    assert r"\text{}" in mv.UNPARSEABLE_GOLDS


def test_verify_many_deduplicates_and_agrees_with_per_sample_checks():
    pairs = [
        ("0.5", r"\frac{1}{2}"), (r"\frac12", r"\frac{1}{2}"), ("0.4", r"\frac{1}{2}"), ("0.5", r"\frac{1}{2}"),
        (" 0.5 ", r"\frac{1}{2}"), ("0.5", r"\frac{1}{2}"), ("garbage }{", r"\frac{1}{2}"), ("", r"\frac{1}{2}"),
        ("[-2, 7]", "[-2,7]"), ("(-2,7)", "[-2,7]"), ("[-2, 7]", "[-2,7]"), ("5", "-5"), ("-5", "-5"),
        ("-5", "-5"), (r"\boxed{-5}", "-5"), ("0.5", "0.5"), ("x = 3", "3"), ("x = 3", "3"), ("4", "3"),
        ("3", r"\text{}"), ("3", r"\text{}"), (r"25\%", "0.25"), ("25", "0.25"),
    ]
    expected = [mv.judge(answer.strip(), gold) is True for answer, gold in pairs]  # per sample, in this process
    assert mv.verify_many(pairs) == expected
    assert mv.verify_many(pairs[::-1]) == expected[::-1]
    assert any(expected) and not all(expected)
    assert mv.verify_many([]) == []
    assert mv.verify_many([(None, "3"), ("3", "3")]) == [False, True]  # None: the completion had no <answer> block


def test_is_correct_returns_false_on_a_pathological_answer_within_the_timeout():
    start = time.monotonic()
    assert mv.is_correct(wrap(POWER_TOWER), "1") is False
    elapsed = time.monotonic() - start
    assert elapsed < 3 * mv.DEFAULT_TIMEOUT, elapsed
    assert mv.is_correct(wrap("0.5"), r"\frac12") is True  # the pool still works


def test_verify_many_times_out_items_without_losing_the_batch():
    before = mv.STATS["timed_out"]
    pairs = [(POWER_TOWER, "1"), ("2", "2"), (GIANT_FACTORIAL, "2"), (r"\frac{1}{2}", "0.5"), (POWER_TOWER, "1")]
    start = time.monotonic()
    assert mv.verify_many(pairs, timeout=1.0) == [False, True, False, True, False]
    elapsed = time.monotonic() - start
    assert elapsed < 3 * 2 * 1.0, elapsed  # the two slow items take 1 s each, possibly one after the other
    assert mv.STATS["timed_out"] == before + 2  # the repeated power tower is checked once


def test_a_frozen_worker_is_killed_and_replaced():
    """A worker that does not answer at all (stopped with SIGSTOP, as a C call that ignores signals would be)."""
    pool = mv.VerifierPool(workers=1)
    try:
        assert pool.map([("1", "1")]) == [True]
        frozen = pool.pids()[0]
        os.kill(frozen, signal.SIGSTOP)
        start = time.monotonic()
        assert pool.map([("2", "2"), (r"\frac12", "0.5")], timeout=0.5) == [mv.TIMED_OUT, True]
        assert time.monotonic() - start < 10
        assert pool.pids()[0] != frozen
        with pytest.raises(ProcessLookupError):
            os.kill(frozen, 0)
    finally:
        pool.close()


def test_a_worker_that_dies_is_replaced():
    pool = mv.VerifierPool(workers=1)
    try:
        assert pool.map([("1", "1")]) == [True]
        # dies while idle: the next job goes to a replacement and is not lost
        pool.workers[0].process.kill()
        pool.workers[0].process.wait()
        assert pool.map([("2", "2")]) == [True]
        # dies in the middle of a job: that job is CRASHED (False), the rest go on
        victim = pool.workers[0]

        def kill_once_busy():
            while not victim.busy:
                time.sleep(0.01)
            time.sleep(0.2)
            victim.process.kill()

        threading.Thread(target=kill_once_busy, daemon=True).start()
        assert pool.map([(POWER_TOWER, "1"), ("3", "3")], timeout=30) == [mv.CRASHED, True]
    finally:
        pool.close()


def test_works_from_threads_where_math_verify_alone_fails():
    # math-verify's SIGALRM timeouts refuse to run outside the main thread ...
    with ThreadPoolExecutor(2) as threads:
        with pytest.raises(ValueError, match="threaded environment"):
            threads.submit(mv.judge, "0.5", r"\frac12").result()
        # ... the worker processes have no such limit
        results = list(threads.map(mv.is_correct, [wrap("0.5"), wrap("0.4"), wrap(r"\frac{2}{4}")], ["0.5"] * 3))
    assert results == [True, False, True]


def test_an_unscorable_gold_leaves_its_problem_out_of_rewards_and_metrics():
    """Gold \\text{} parses to nothing: every answer to it is neither right nor wrong (None), so the incorrect reward
    is not a format reward there, zhu_nsr does not punish it (advantage 0), and no metric counts it."""
    import polars as pl
    import torch

    from mtarl import metrics, rewards, rl, tasks

    good, bare = "<think>x</think><answer>3</answer>", "no answer at all"
    verdicts = tasks.verify_batch(["math"] * 3, [good, bare, good], [r"\text{}", r"\text{}", "3"])
    assert [v.accurate for v in verdicts] == [None, None, True] and [v.correct for v in verdicts] == [None, None, True]
    assert rewards.incorrect(verdicts) == [None, None, 0.0] and rewards.ground_truth(verdicts) == [None, None, 1.0]
    assert rewards.accuracy(verdicts) == 1.0
    nan = float("nan")
    assert rl.advantages(torch.tensor([nan, nan, 1.0, 0.0]), 2, "zhu_nsr").tolist() == [0.0, 0.0, 0.0, -1.0]
    samples = pl.DataFrame({"problem_id": ["a", "a", "b", "b"], "correct": [None, None, True, False]},
                           schema={"problem_id": pl.String, "correct": pl.Boolean})
    kept, dropped = metrics.drop_unscorable(samples)
    assert dropped == 1 and metrics.avg_at_k(kept) == 0.5
    assert mv.gold_scorable_many([r"\text{}", "3", r"\frac{1}{2}"]) == [False, True, True]
