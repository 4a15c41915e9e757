"""pass@k (unbiased estimator) and avg@k against hand-computed values."""

from fractions import Fraction
from math import comb

import polars as pl
import pytest

from mtarl.metrics import avg_at_k, pass_at_k, pass_at_k_table, powers_of_two_upto


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (4, 1, 1, 0.25),  # one of four correct: a single draw hits it with probability 1/4
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (10, 0, 5, 0.0),  # nothing correct
        (10, 10, 1, 1.0),  # everything correct
        (10, 8, 3, 1.0),  # n - c = 2 < k: every 3-subset contains a correct sample
        (1024, 1, 512, 0.5),  # one correct among 1024: half of all 512-subsets contain it
        (16, 4, 16, 1.0),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n, c, k", [(1024, 3, 100), (1024, 500, 7), (256, 17, 200), (1000, 1, 999)])
def test_pass_at_k_matches_exact_binomials_for_large_n(n, c, k):
    exact = 1 - Fraction(comb(n - c, k), comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


def test_pass_at_k_is_not_max_over_first_k():
    # The biased "any correct among the first k samples" would give 0 here for k = 1 if sample 0 were wrong.
    assert pass_at_k(8, 4, 1) == pytest.approx(0.5)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, 1, 5), (4, 1, 0), (4, -1, 1)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_powers_of_two_include_n():
    assert powers_of_two_upto(16) == [1, 2, 4, 8, 16]
    assert powers_of_two_upto(12) == [1, 2, 4, 8, 12]
    assert powers_of_two_upto(1) == [1]


def samples(correct_by_problem: dict[str, list[bool]]) -> pl.DataFrame:
    rows = [
        {"problem_id": pid, "sample": i, "correct": ok}
        for pid, oks in correct_by_problem.items()
        for i, ok in enumerate(oks)
    ]
    return pl.DataFrame(rows)


def test_pass_at_k_table_averages_over_problems():
    table = pass_at_k_table(samples({"a": [True, False, False, False], "b": [False] * 4}))
    by_k = dict(zip(table["k"], table["pass_at_k"]))
    assert by_k == pytest.approx({1: 0.125, 2: 0.25, 4: 0.5})
    assert set(table["n"]) == {4} and set(table["n_problems"]) == {2}


def test_pass_at_k_table_refuses_unequal_sample_counts():
    with pytest.raises(ValueError, match="same number of samples"):
        pass_at_k_table(samples({"a": [True, False], "b": [False]}))


def test_avg_at_k_is_mean_of_problem_means():
    assert avg_at_k(samples({"a": [True, True, False, False], "b": [True] * 4})) == pytest.approx(0.75)
