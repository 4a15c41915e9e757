"""The two-level bootstrap, rank correlation and the fixed verdict rule, on hand-computed cases."""

import numpy as np
import pytest

from mtarl import stats


def test_two_level_replicates_are_weighted_means_of_drawn_seed_problem_pairs():
    values = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])  # 2 seeds x 3 problems
    seed_w = np.array([[0.5, 0.5], [1.0, 0.0]])  # replicate 0: both seeds; replicate 1: seed 0 twice
    problem_w = np.array([[1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0]])  # replicate 1: problem 2 three times
    reps = stats.two_level_replicates(values, seed_w, problem_w)
    assert reps[0] == pytest.approx(values.mean())
    assert reps[1] == pytest.approx(0.5)  # seed 0, problem 2


def test_resample_weights_are_draw_frequencies():
    w = stats.resample_weights(4, 500, np.random.default_rng(0))
    assert w.shape == (500, 4)
    assert np.allclose(w.sum(axis=1), 1.0)
    assert set(np.unique(w * 4)) <= {0, 1, 2, 3, 4}


def test_interval_of_a_constant_effect_is_that_effect():
    values = np.full((3, 50), 0.2)
    rng = np.random.default_rng(0)
    reps = stats.two_level_replicates(values, stats.resample_weights(3, 200, rng), stats.resample_weights(50, 200, rng))
    assert stats.percentile_interval(reps) == pytest.approx((0.2, 0.2))


def test_one_seed_interval_reflects_problems_only():
    values = np.array([[0.0, 1.0] * 25])
    rng = np.random.default_rng(1)
    reps = stats.two_level_replicates(values, stats.resample_weights(1, 2000, rng),
                                      stats.resample_weights(50, 2000, rng))
    low, high = stats.percentile_interval(reps)
    # the mean of 50 fair coin flips: standard error 0.0707, so about 0.5 +- 0.139
    assert low == pytest.approx(0.5 - 0.139, abs=0.03) and high == pytest.approx(0.5 + 0.139, abs=0.03)


def test_spearman_known_values_ties_and_constants():
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): r = 0.9487
    assert stats.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9487, abs=1e-4)
    assert stats.spearman([0, 0, 0], [1, 2, 3]) == 0.0  # a constant ranks nothing


@pytest.mark.parametrize("low, high, claim, expected", [
    (0.05, 0.20, "positive", stats.SUPPORTED),
    (-0.20, -0.05, "positive", stats.CONTRADICTED),
    (0.0, 0.0, "positive", stats.CONTRADICTED),  # exactly no change is not a gain
    (-0.05, 0.08, "positive", stats.INCONCLUSIVE),
    (-0.10, 0.02, "not_positive", stats.SUPPORTED),
    (0.05, 0.20, "not_positive", stats.CONTRADICTED),
    (-0.01, 0.06, "not_positive", stats.INCONCLUSIVE),
    (-0.02, 0.02, "near_zero", stats.SUPPORTED),
    (0.04, 0.10, "near_zero", stats.CONTRADICTED),
    (-0.01, 0.05, "near_zero", stats.INCONCLUSIVE),
    (float("nan"), 0.1, "positive", stats.NOT_TESTED),
])
def test_verdict_rule(low, high, claim, expected):
    assert stats.verdict(low, high, claim) == expected


def test_combined_verdict_of_a_prediction():
    S, C, I, N = stats.SUPPORTED, stats.CONTRADICTED, stats.INCONCLUSIVE, stats.NOT_TESTED
    assert stats.combine_verdicts([S, S]) == S
    assert stats.combine_verdicts([S, C, I]) == C
    assert stats.combine_verdicts([S, I]) == I
    assert stats.combine_verdicts([S, N]) == I  # partly tested cannot be fully supported
    assert stats.combine_verdicts([N, N]) == N
