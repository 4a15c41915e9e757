"""Uncertainty for the study's tables and predictions: a two-level bootstrap, rank correlations, verdicts.

The unit of the study's numbers is a *cell*: one base model x benchmark, trained with one variant over several seeds
and scored on the same problems. A cell's score is the mean over seeds and problems of the per-problem accuracy, so
its interval must reflect both sources of variation:

- ``two_level_replicates``: bootstrap replicates of that mean, resampling seeds *and* problems with replacement
  (each replicate draws S seeds out of S and P problems out of P; the mean is over the drawn pairs). Draws are given as
  weights, so the same problem draws can be shared by every variant of a cell, making differences between variants
  paired over problems.
- ``percentile_interval``: the 95% percentile interval of replicates.
- ``spearman``: rank correlation with average ranks for ties (0 when either side is constant: no ranking, no signal).
- ``verdict``: the fixed rule that turns an interval into supported / contradicted / inconclusive (see its docstring).

Run the unit tests: ``pytest tests/test_stats.py``.
"""

from __future__ import annotations

import hashlib

import numpy as np

# Half-width of "about zero" for accuracy differences: study.md section 10's tolerance of +-3 points, fixed before any
# run of this project and used for every prediction.
NULL_MARGIN = 0.03

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "supported", "contradicted", "inconclusive", "not tested"


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key``: adding a cell or variant leaves others' draws alone."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def resample_weights(n_items: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n_items)`` weights summing to 1 per row: how often each item is drawn, over the number of draws."""
    if n_items < 1:
        raise ValueError("cannot resample an empty set")
    counts = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot)
    return counts / n_items


def two_level_replicates(values: np.ndarray, seed_weights: np.ndarray, problem_weights: np.ndarray) -> np.ndarray:
    """Bootstrap replicates of the mean of ``values`` (seeds x problems) under the given seed and problem draws."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be seeds x problems, got shape {values.shape}")
    return np.einsum("bs,sp,bp->b", seed_weights, values, problem_weights)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranked = np.empty(len(x))
    ranked[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation; 0 when either variable is constant (it then ranks nothing)."""
    rx, ry = ranks(x), ranks(y)
    if len(rx) < 2 or np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def verdict(low: float, high: float, claim: str, margin: float = NULL_MARGIN) -> str:
    """Judge a claim about a statistic from its 95% interval ``[low, high]``; the rule is fixed, never tuned to a run.

    - ``positive`` (the effect is > 0): supported if ``low > 0``; contradicted if ``high <= 0``.
    - ``not_positive`` (about zero or negative, "does not help"): supported if ``high < margin``; contradicted if
      ``low > margin``.
    - ``near_zero`` (about equal): supported if the interval lies inside ``(-margin, margin)``; contradicted if it lies
      wholly outside it on one side.
    - otherwise inconclusive: the interval is compatible with both readings.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return NOT_TESTED
    if claim == "positive":
        return SUPPORTED if low > 0 else CONTRADICTED if high <= 0 else INCONCLUSIVE
    if claim == "not_positive":
        return SUPPORTED if high < margin else CONTRADICTED if low > margin else INCONCLUSIVE
    if claim == "near_zero":
        if -margin < low and high < margin:
            return SUPPORTED
        return CONTRADICTED if low >= margin or high <= -margin else INCONCLUSIVE
    raise ValueError(f"unknown claim {claim!r}: positive, not_positive or near_zero")


def combine_verdicts(verdicts: list[str]) -> str:
    """A prediction made of several claims: contradicted if any is, supported if all are, else inconclusive."""
    tested = [v for v in verdicts if v != NOT_TESTED]
    if not tested:
        return NOT_TESTED
    if CONTRADICTED in tested:
        return CONTRADICTED
    if len(tested) == len(verdicts) and all(v == SUPPORTED for v in tested):
        return SUPPORTED
    return INCONCLUSIVE
