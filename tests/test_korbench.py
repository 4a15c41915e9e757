"""KOR-Bench answer checking: the five categories, the rule- and idx-specific branches, and the registered families.

Gold answers are written as KOR-Bench stores them (``data/<category>/sample.jsonl``: ``"answer": "[[...]]"`` with
the question's ``rule_id`` and ``idx``); responses are what a model writes inside ``<answer>...</answer>``.
"""

from __future__ import annotations

import json
import time

import pytest

from mtarl import tasks
from mtarl.tasks import korbench
from mtarl.tasks.korbench import CATEGORIES, verify

# (category, gold, rule_id, idx, right responses, wrong responses)
CASES = [
    # operation, default branch: cleaned bracket content equals the gold
    ("operation", "[[8]]", "10", "99", ["[[8]]", "The answer is [[ 8 ]].", '[["8"]]'], ["[[9]]", "8", "[[88]]"]),
    ("operation", "[[-1]]", "11", "102", ["[[-1]]"], ["[[1]]", "[[+1]]"]),
    # operation, LaTeX answers compared symbolically (idx in KOR-Bench's idx_ranges)
    ("operation", "[[9+\\sqrt{6}]]", "12", "115", ["[[9+\\sqrt{6}]]", "[[\\sqrt{6} + 9]]"],
     ["[[9+\\sqrt{7}]]", "[[15]]"]),
    ("operation", "[[\\frac{\\cos(\\ln(x))}{x}]]", "15", "146", ["[[\\frac{\\cos(\\ln x)}{x}]]"],
     ["[[\\cos(\\ln x)]]"]),
    # operation, alternatives joined by "or", in any order
    ("operation", "[[1or-1]]", "19", "181", ["[[-1 or 1]]", "[[1or-1]]"], ["[[1]]", "[[1or-2]]"]),
    # operation, rules 23-25: the list of numbers
    ("operation", "[[3,5,7]]", "23", "221", ["[[3, 5, 7]]", "[[3;5;7]]"], ["[[3,5,8]]", "[[3,5]]"]),
    # operation, rule 18: the same characters in any order
    ("operation", "[[a,b,c]]", "18", "171", ["[[c, b, a]]", "[[abc]]"], ["[[a,b,d]]"]),
    # operation, idx 178/179: the set of inequalities
    ("operation", "[[x≥2,y≤3]]", "18", "178", ["[[y ≤ 3, x ≥ 2]]"], ["[[x≥2,y≤4]]"]),
    # logic: quotes, spaces, newlines and periods ignored
    ("logic", "[[p∧q]]", "1", "1", ["[[ p ∧ q ]]", "[[p∧q.]]", '[["p∧q"]]'], ["[[p∨q]]", "p∧q"]),
    # logic, rule 5: ';'-separated statements in any order
    ("logic", "[[A;B;C]]", "5", "41", ["[[C;A;B]]", "[[ B ; C ; A ]]"], ["[[A;B]]", "[[A;B;D]]"]),
    # cipher: the bracketed text; a single-bracket answer is KOR-Bench's last extraction fallback
    ("cipher", "[[KHOOR]]", "1", "1", ["[[KHOOR]]", "[[ K H O O R ]]", "[KHOOR]", "Encrypted: [[KHOOR]]."],
     ["[[KHOOP]]", "KHOOR", "[[khoor]]"]),
    ("cipher", "[[3,7,1]]", "9", "85", ["[[3, 7, 1]]"], ["[[3,1,7]]"]),
    # counterfactual: the chosen option
    ("counterfactual", "[[B]]", "1", "1", ["[[B]]", "[[ B ]]"], ["[[C]]", "B"]),
    # puzzle, rule 1: the letters, case-insensitive
    ("puzzle", "[[nine ten nine eight ten]]", "1", "1", ["[[Nine Ten Nine Eight Ten]]", "[[nine,ten,nine,eight,ten]]"],
     ["[[nine ten nine eight nine]]"]),
    # puzzle, rule 2: one of the comma-separated alternatives
    ("puzzle", "[[t,tal]]", "2", "11", ["[[tal]]", "[[t]]"], ["[[ta]]", "[[t,tal]]"]),
    # puzzle, rule 3: the same words in any order
    ("puzzle", "[[pea ape]]", "3", "21", ["[[ape pea]]", "[[ape, pea]]"], ["[[pea]]", "[[pea ape pa]]"]),
    # puzzle, rule 9: same operators, left side evaluates to the gold's result
    ("puzzle", "[[3+5-2=6]]", "9", "81", ["[[4+5-3=6]]", "[[3+5-2=6]]"], ["[[4+5-2=6]]", "[[3*5-9=6]]"]),
    # puzzle, rule 10: the 24 game over the gold's numbers
    ("puzzle", "[[8/(3-8/3)=24]]", "10", "91", ["[[8/(3-8/3)]]", "[[8/(3-8/3)=24]]"],
     ["[[(3-8/3)/8]]", "[[8*3]]", "[[__import__('os')]]"]),
    # puzzle without a method: alphanumeric characters equal
    ("puzzle", "[[1,2,3]]", "7", "61", ["[[1 2 3]]", "[[1, 2, 3]]"], ["[[1,2,4]]", "[[3,2,1]]"]),
]


def _params(kind: int):
    return [
        pytest.param(category, gold, rule, idx, response, id=f"{category}-{rule}-{idx}-{j}")
        for category, gold, rule, idx, *lists in CASES
        for j, response in enumerate(lists[kind])
    ]


def test_every_category_has_cases():
    assert {case[0] for case in CASES} == set(CATEGORIES)
    assert set(CATEGORIES) == {"operation", "logic", "cipher", "puzzle", "counterfactual"}


@pytest.mark.parametrize("category, gold, rule, idx, response", _params(0))
def test_right_responses_pass(category, gold, rule, idx, response):
    assert verify(category, response, gold, rule_id=rule, idx=idx) is True


@pytest.mark.parametrize("category, gold, rule, idx, response", _params(1))
def test_wrong_responses_fail(category, gold, rule, idx, response):
    assert verify(category, response, gold, rule_id=rule, idx=idx) is False


def test_without_rule_and_idx_the_default_comparison_applies():
    """The family's gold may be the bare answer; then the rule/idx branches cannot be taken."""
    assert verify("operation", "[[\\sqrt{6}+9]]", "[[9+\\sqrt{6}]]") is False  # symbolic only for the listed idx
    assert verify("operation", "[[9+\\sqrt{6}]]", "[[9+\\sqrt{6}]]") is True
    assert verify("puzzle", "[[tal]]", "[[t,tal]]") is False  # rule 2's alternatives need rule_id 2
    assert verify("puzzle", "[[t,tal]]", "[[t,tal]]") is True


def test_unknown_category_raises():
    with pytest.raises(ValueError, match="unknown KOR-Bench category"):
        verify("riddles", "[[1]]", "[[1]]")


@pytest.mark.parametrize("category", CATEGORIES)
def test_malformed_responses_fail_without_raising(category):
    gold = {"puzzle": "[[8/(3-8/3)=24]]"}.get(category, "[[8]]")
    junk = ["", "[[", "]]", "[[]]", "[", "$\\boxed{", "\x00", "[" * 5000, "x" * 30_000, "[[1/0]]", "[[9**9**9]]"]
    for response in junk:
        for rule, idx in ((None, None), ("10", "91"), ("5", "178"), ("23", "115")):
            assert verify(category, response, gold, rule, idx) is False, (response[:20], rule, idx)
    assert verify(category, None, gold) is False  # type: ignore[arg-type]


def test_bounded_time_on_degenerate_responses():
    start = time.perf_counter()
    for category in CATEGORIES:
        for response in ("[[" * 10_000, "[" * 19_999 + "]", "[[" + "or" * 9_000 + "]]", "$\\boxed{" * 2_000,
                         "[[" + "\\text{" * 3_000 + "]]", "[[" + "≥1" * 9_000 + "]]", "[[" + "9" * 19_000 + "]]"):
            verify(category, response, "[[1or2]]", "10", "115")
    assert time.perf_counter() - start < 10.0


def test_families_are_registered():
    assert {f"korbench:{c}" for c in CATEGORIES} <= set(tasks.known_families())


def test_family_gold_as_string_or_record():
    """The family gold is the stored answer, or a JSON record that also carries rule_id and idx."""
    completion = "<think>\nsteps\n</think>\n<answer>The prefix is [[tal]].</answer>"
    assert tasks.verify("korbench:puzzle", completion, "[[t,tal]]").accurate is False
    gold = json.dumps({"answer": "[[t,tal]]", "rule_id": "2", "idx": "11"})
    verdict = tasks.verify("korbench:puzzle", completion, gold)
    assert verdict.correct
    assert korbench.parse_gold(gold) == ("[[t,tal]]", "2", "11")
    assert korbench.parse_gold("[[B]]") == ("[[B]]", None, None)
    assert tasks.verify("korbench:counterfactual", "<think>x</think><answer>[[C]]</answer>", "[[B]]").accurate is False
