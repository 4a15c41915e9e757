"""Sample-based metrics, each under its exact name (study.md section 2.2), with bootstrap intervals over problems.

- pass@k: the unbiased estimator of Chen et al. (2021), needs n >= k samples per problem;
- avg@k: mean accuracy of k samples per problem, then the mean over problems;
- maj@k: accuracy of the most frequent answer among k samples, averaged over k-subsets, then over problems;
- ``probe_metrics_table``: all three in long form with percentile-bootstrap intervals (``ci_low``, ``ci_high``);
- ``profile_table``: a base model's behaviour profile in the same form (greedy@1, format_rate, strategy_share).

Never "max over the first k samples": that is biased and is not pass@k. Problems with an unscorable gold (``correct``
null) are left out by ``drop_unscorable`` before any metric.
"""

from __future__ import annotations

import hashlib
from itertools import combinations
from math import comb

import numpy as np
import polars as pl

from mtarl.voting import canonical_answer, vote_keys


def drop_unscorable(samples: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The samples without the problems whose gold cannot be scored (``correct`` null, ``mtarl.tasks``), and how many
    problems were left out: such a problem is neither right nor wrong, so it is in no metric."""
    unscorable = samples.filter(pl.col("correct").is_null())["problem_id"].unique()
    return samples.filter(~pl.col("problem_id").is_in(unscorable.implode())), unscorable.len()


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct among ``n`` samples.

    Computed as ``1 - prod_{j=n-c+1}^{n} (1 - k/j)``, which equals ``1 - C(n-c, k) / C(n, k)`` without forming
    binomials that overflow for n in the hundreds.
    """
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for j in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / j
    return 1.0 - prob_all_wrong


def powers_of_two_upto(n: int) -> list[int]:
    """k = 1, 2, 4, ... up to n, plus n itself when n is not a power of two."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


def correct_counts(samples: pl.DataFrame) -> pl.DataFrame:
    """One row per problem: ``problem_id``, ``n`` samples and ``c`` correct ones."""
    return samples.group_by("problem_id", maintain_order=True).agg(
        n=pl.len(), c=pl.col("correct").cast(pl.Int64).sum()
    )


def pass_at_k_table(samples: pl.DataFrame, ks: list[int] | None = None) -> pl.DataFrame:
    """pass@k over problems for each k (default: powers of two up to the per-problem sample count).

    ``samples`` is a per-sample table with ``problem_id`` and boolean ``correct``; every problem must have the same
    number of samples, since pass@k at a given k is only comparable across problems at equal n.
    """
    counts = correct_counts(samples)
    ns = counts["n"].unique().to_list()
    if len(ns) != 1:
        raise ValueError(f"every problem needs the same number of samples, found counts {sorted(ns)}")
    n = ns[0]
    ks = ks or powers_of_two_upto(n)
    rows = []
    for k in ks:
        values = [pass_at_k(n, c, k) for c in counts["c"].to_list()]
        rows.append({"k": k, "pass_at_k": sum(values) / len(values), "n": n, "n_problems": len(values)})
    return pl.DataFrame(rows)


def avg_at_k(samples: pl.DataFrame) -> float:
    """Mean accuracy over all samples of each problem, then over problems."""
    per_problem = samples.group_by("problem_id").agg(acc=pl.col("correct").cast(pl.Float64).mean())
    return float(per_problem["acc"].mean())


# ---------------------------------------------------------------------------------------------------------------
# maj@k, bootstrap intervals and the probe's long metrics table.
#
# Everything below works on per-problem values: a (problems x columns) array computed once, then averaged (the
# metric) or resampled over problems (the bootstrap interval), so 500 problems x B = 1000 costs a few array ops.
# ---------------------------------------------------------------------------------------------------------------

PROBE_METRICS_SCHEMA = {
    "metric": pl.String,
    "k": pl.Int64,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n": pl.Int64,
    "n_problems": pl.Int64,
}


def normalize_answer(answer: str | None) -> str | None:
    """An extracted answer with runs of whitespace collapsed to one space and the ends stripped; ``None`` if empty.

    An empty answer (``<answer> </answer>``) is no answer at all, so it does not vote in maj@k. The voting rule's key
    of a non-arithmetic, non-math answer (``mtarl.voting.canonical_answer``).
    """
    return canonical_answer(None, answer)


def samples_per_problem(samples: pl.DataFrame) -> int:
    """The common sample count n of every problem; refuses unequal counts (metrics at k compare only at equal n)."""
    ns = correct_counts(samples)["n"].unique().to_list()
    if len(ns) != 1:
        raise ValueError(f"every problem needs the same number of samples, found counts {sorted(ns)}")
    return ns[0]


def _problem_rng(seed: int, problem_id: str) -> np.random.Generator:
    """A generator per problem, so a problem's estimate does not depend on which other problems are in the table."""
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _vote_classes(group: pl.DataFrame, require_format: bool) -> tuple[np.ndarray, np.ndarray]:
    """Answer classes of one problem's samples, ordered by sample index, voting as the majority-vote reward does
    (``mtarl.voting.vote_keys`` of the problem's ``family`` column; without one, by whitespace-normalised text).

    Returns ``labels`` (class index per sample, -1 for a sample that does not vote) and ``class_correct`` (whether
    each class's answer is correct: true when any of its voters is ``correct``, since the verifier judges the
    extracted answer and a class is one answer up to the voting rule's equivalence).
    """
    group = group.sort("sample")
    family = group["family"][0] if "family" in group.columns else None
    answers = vote_keys(family, group["extracted"].to_list())
    if require_format:
        answers = [a if ok else None for a, ok in zip(answers, group["format_ok"].to_list(), strict=True)]
    codes: dict[str, int] = {}
    labels = np.array([-1 if a is None else codes.setdefault(a, len(codes)) for a in answers], dtype=np.int64)
    class_correct = np.zeros(len(codes), dtype=bool)
    correct = group["correct"].to_numpy().astype(bool)
    voters = labels >= 0
    np.logical_or.at(class_correct, labels[voters], correct[voters])
    return labels, class_correct


def _majority_correct(subsets: np.ndarray, labels: np.ndarray, class_correct: np.ndarray) -> np.ndarray:
    """For each row of ``subsets`` (sample indices), whether its majority answer is correct (no voters: wrong).

    Ties go to the tied answer that occurs first, i.e. at the smallest sample index within the subset: sorting each
    subset puts samples in index order, and the first position holding any tied answer names the winner.
    """
    n_rows, n_classes = subsets.shape[0], len(class_correct)
    if n_classes == 0:
        return np.zeros(n_rows, dtype=bool)
    chosen = labels[np.sort(subsets, axis=1)]  # (rows, k) class per sample, -1 = no vote
    votes = chosen >= 0
    rows = np.broadcast_to(np.arange(n_rows)[:, None], chosen.shape)
    counts = np.bincount((rows * n_classes + chosen)[votes], minlength=n_rows * n_classes)
    counts = counts.reshape(n_rows, n_classes)
    top = counts.max(axis=1)
    is_top = (counts == top[:, None])[rows, np.where(votes, chosen, 0)] & votes
    winner = chosen[np.arange(n_rows), is_top.argmax(axis=1)]
    return (top > 0) & class_correct[np.maximum(winner, 0)]


def _all_k_subsets(n: int, k: int) -> np.ndarray:
    """Every k-subset of range(n), one per row."""
    return np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k)


def maj_at_k_per_problem(samples: pl.DataFrame, ks: list[int], *, n_subsets: int = 1000, seed: int = 0,
                         require_format: bool = True) -> tuple[list[str], np.ndarray]:
    """Per-problem maj@k: the problem ids (in first-appearance order) and a (problems x len(ks)) array.

    Each entry is the fraction of k-subsets of the problem's n samples whose majority answer is correct: over all
    C(n, k) subsets when there are at most ``n_subsets`` (exact: always for k = n, for k = 1 when n <= n_subsets),
    else over ``n_subsets`` random subsets drawn without replacement from a generator seeded by ``seed`` and the
    problem id. The random subsets of every k are the first k columns of one set of ``n_subsets`` permutations per
    problem (each row a uniform k-subset), so a 256-sample probe costs one shuffle per problem.

    Voters are samples with an extracted answer (non-empty; classes by ``mtarl.voting.vote_keys``, math-verify
    equivalence for math, when ``samples`` has a ``family`` column) and, when ``require_format``, a
    passing format gate (``format_ok``): then every voter's ``correct`` is its answer's accuracy, and maj@1 equals
    avg@n exactly (avg@n gates on the format too).
    """
    n = samples_per_problem(samples)
    if any(not 1 <= k <= n for k in ks):
        raise ValueError(f"maj@k needs 1 <= k <= n = {n}, got ks {ks}")
    if require_format and "format_ok" not in samples.columns:
        raise ValueError("maj@k with require_format needs a 'format_ok' column; pass require_format=False to let "
                         "every extracted answer vote")
    exact = {k: _all_k_subsets(n, k) for k in ks if comb(n, k) <= n_subsets}
    ids, rows = [], []
    for (problem_id,), group in samples.group_by("problem_id", maintain_order=True):
        labels, class_correct = _vote_classes(group, require_format)
        permutations = None
        if len(exact) < len(set(ks)):
            rng = _problem_rng(seed, str(problem_id))
            permutations = rng.permuted(np.tile(np.arange(n), (n_subsets, 1)), axis=1)
        subsets = [exact[k] if k in exact else permutations[:, :k] for k in ks]
        rows.append([_majority_correct(s, labels, class_correct).mean() for s in subsets])
        ids.append(problem_id)
    return ids, np.array(rows, dtype=np.float64).reshape(len(ids), len(ks))


def pass_at_k_per_problem(samples: pl.DataFrame, ks: list[int]) -> tuple[list[str], np.ndarray]:
    """Per-problem unbiased pass@k (``pass_at_k``): problem ids and a (problems x len(ks)) array."""
    n = samples_per_problem(samples)
    counts = correct_counts(samples)
    values = np.array([[pass_at_k(n, c, k) for k in ks] for c in counts["c"].to_list()], dtype=np.float64)
    return counts["problem_id"].to_list(), values.reshape(len(counts), len(ks))


def avg_per_problem(samples: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Per-problem accuracy c / n (the terms of ``avg_at_k``): problem ids and a (problems,) array."""
    counts = correct_counts(samples)
    return counts["problem_id"].to_list(), (counts["c"] / counts["n"]).to_numpy().astype(np.float64)


def bootstrap_ci(per_problem: np.ndarray, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over problems, for every column of ``per_problem`` at once.

    Problems (rows) are resampled with replacement ``n_boot`` times; each column's interval is the
    ((1 - level) / 2, (1 + level) / 2) quantiles of its resampled means. The same resamples serve every column,
    so intervals of different metrics and k come from one paired bootstrap.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    values = np.asarray(per_problem, dtype=np.float64)
    values = values.reshape(len(values), -1)
    rng = np.random.default_rng(seed)
    resampled = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return low, high


def maj_at_k_table(samples: pl.DataFrame, ks: list[int] | None = None, *, n_subsets: int = 1000, seed: int = 0,
                   require_format: bool = True, n_boot: int = 0, level: float = 0.95) -> pl.DataFrame:
    """maj@k over problems for each k (default 1, 2, 4, ..., n): columns ``k``, ``maj_at_k``, ``n``,
    ``n_problems``, plus ``ci_low``, ``ci_high`` when ``n_boot`` > 0 (see ``maj_at_k_per_problem``)."""
    n = samples_per_problem(samples)
    ks = ks or powers_of_two_upto(n)
    _, values = maj_at_k_per_problem(samples, ks, n_subsets=n_subsets, seed=seed, require_format=require_format)
    table = pl.DataFrame({"k": ks, "maj_at_k": values.mean(axis=0), "n": n, "n_problems": len(values)},
                         schema={"k": pl.Int64, "maj_at_k": pl.Float64, "n": pl.Int64, "n_problems": pl.Int64})
    return _with_ci(table, values, n_boot, level, seed)


def pass_at_k_ci_table(samples: pl.DataFrame, ks: list[int] | None = None, *, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> pl.DataFrame:
    """``pass_at_k_table`` with bootstrap columns ``ci_low``, ``ci_high``."""
    table = pass_at_k_table(samples, ks)
    _, values = pass_at_k_per_problem(samples, table["k"].to_list())
    return _with_ci(table, values, n_boot, level, seed)


def avg_at_k_ci_table(samples: pl.DataFrame, *, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> pl.DataFrame:
    """One row: ``k`` = n, ``avg_at_k`` (``avg_at_k``), ``n``, ``n_problems``, ``ci_low``, ``ci_high``."""
    n = samples_per_problem(samples)
    _, values = avg_per_problem(samples)
    table = pl.DataFrame({"k": [n], "avg_at_k": [avg_at_k(samples)], "n": [n], "n_problems": [len(values)]},
                         schema={"k": pl.Int64, "avg_at_k": pl.Float64, "n": pl.Int64, "n_problems": pl.Int64})
    return _with_ci(table, values[:, None], n_boot, level, seed)


def _with_ci(table: pl.DataFrame, per_problem: np.ndarray, n_boot: int, level: float, seed: int) -> pl.DataFrame:
    if n_boot <= 0:
        return table
    low, high = bootstrap_ci(per_problem, n_boot=n_boot, level=level, seed=seed)
    return table.with_columns(ci_low=pl.Series(low, dtype=pl.Float64), ci_high=pl.Series(high, dtype=pl.Float64))


def probe_metrics_table(samples: pl.DataFrame, ks: list[int] | None = None, *, n_subsets: int = 1000,
                        n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                        require_format: bool = True) -> pl.DataFrame:
    """The probe's metrics in long form: ``metric`` ("pass@k", "maj@k", "avg@k"), ``k``, ``value``, ``ci_low``,
    ``ci_high``, ``n``, ``n_problems``.

    pass@k and maj@k have one row per k (default 1, 2, 4, ..., n); avg@k has one row at k = n (the mean of all n
    samples; avg@k at smaller k has the same expectation). Per-problem values are computed once and every interval
    comes from the same ``n_boot`` resamples of problems (``bootstrap_ci``); ``seed`` seeds both maj@k's subsets
    and the bootstrap.
    """
    n = samples_per_problem(samples)
    ks = ks or powers_of_two_upto(n)
    pass_ids, pass_values = pass_at_k_per_problem(samples, ks)
    maj_ids, maj_values = maj_at_k_per_problem(samples, ks, n_subsets=n_subsets, seed=seed,
                                               require_format=require_format)
    avg_ids, avg_values = avg_per_problem(samples)
    if not pass_ids == maj_ids == avg_ids:  # the columns are resampled together, so their rows must be aligned
        raise AssertionError("per-problem tables disagree on problem order")
    columns = np.column_stack([pass_values, maj_values, avg_values])
    labels = [("pass@k", k) for k in ks] + [("maj@k", k) for k in ks] + [("avg@k", n)]
    low, high = bootstrap_ci(columns, n_boot=n_boot, level=level, seed=seed)
    rows = [
        {"metric": metric, "k": k, "value": float(columns[:, j].mean()), "ci_low": float(low[j]),
         "ci_high": float(high[j]), "n": n, "n_problems": len(columns)}
        for j, (metric, k) in enumerate(labels)
    ]
    return pl.DataFrame(rows, schema=PROBE_METRICS_SCHEMA)


def profile_table(samples: pl.DataFrame, greedy: pl.DataFrame, *, n_boot: int = 1000, level: float = 0.95,
                  seed: int = 0) -> pl.DataFrame:
    """A base model's behaviour profile, in the long form of ``probe_metrics_table`` (same columns, same bootstrap):

    - ``greedy@1`` (k = 1): accuracy of the greedy decode (``greedy``: one per-sample row per problem);
    - ``format_rate`` (k = n): share of the samples that pass the format gate (``format_ok``);
    - ``strategy_share`` (k = n): share of the samples with a scratchpad in ``<think>`` (``tasks.has_scratchpad``).
    With the same ``seed`` and problems, the resamples are those of ``probe_metrics_table`` (paired intervals).
    """
    from mtarl.tasks import has_scratchpad

    n = samples_per_problem(samples)
    per_problem = samples.with_columns(
        scratchpad=pl.col("completion").map_elements(has_scratchpad, return_dtype=pl.Boolean)
    ).group_by("problem_id", maintain_order=True).agg(
        format_rate=pl.col("format_ok").cast(pl.Float64).mean(),
        strategy_share=pl.col("scratchpad").cast(pl.Float64).mean(),
    )
    greedy_ids = greedy["problem_id"].to_list()
    if greedy_ids != per_problem["problem_id"].to_list():
        raise ValueError(f"the greedy table holds {len(greedy_ids)} problems, not the {per_problem.height} sampled "
                         "ones in order (one greedy decode per problem)")
    columns = np.column_stack([greedy["correct"].cast(pl.Float64).to_numpy(),
                               per_problem["format_rate"].to_numpy(), per_problem["strategy_share"].to_numpy()])
    labels = [("greedy@1", 1, 1), ("format_rate", n, n), ("strategy_share", n, n)]
    low, high = bootstrap_ci(columns, n_boot=n_boot, level=level, seed=seed)
    rows = [
        {"metric": metric, "k": k, "value": float(columns[:, j].mean()), "ci_low": float(low[j]),
         "ci_high": float(high[j]), "n": samples_n, "n_problems": len(columns)}
        for j, (metric, k, samples_n) in enumerate(labels)
    ]
    return pl.DataFrame(rows, schema=PROBE_METRICS_SCHEMA)
