"""Sample-based metrics, each under its exact name (study.md section 2.2).

- pass@k: the unbiased estimator of Chen et al. (2021), needs n >= k samples per problem;
- avg@k: mean accuracy of k samples per problem, then the mean over problems.

Never "max over the first k samples": that is biased and is not pass@k.
"""

from __future__ import annotations

import polars as pl


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
