"""One-shot RL (study.md 7.5): choose one training example and replicate it to fill the batches.

Selection modes:
- ``historical_variance`` (Wang et al. 2025): from a ground-truth run's per-example accuracy history, the example
  whose per-epoch accuracy varies most across epochs (an example's accuracy in an epoch: the mean group accuracy of
  its visits in that epoch, dynamic sampling's extra draws included); examples seen in fewer than two epochs have no
  variance and are not candidates. Ties go to the smallest id. The history run trains on a candidate subset
  (``train_subset``, ``candidate_subset``) small enough to be visited for several epochs, as One-Shot-RLVR ranks its
  1,209-problem DSR-sub.
- ``random``: a uniform draw with a recorded seed.
"""

from __future__ import annotations

import hashlib
import random
from statistics import mean, pvariance

import polars as pl


def candidate_subset(problems: pl.DataFrame, size: int | None) -> pl.DataFrame:
    """The ``size`` problems whose sha256(id) is smallest (all when None): a fixed pseudo-random subset that depends on
    the ids only, so every seed's history run and the one-shot runs agree on it."""
    if size is None or size >= problems.height:
        return problems
    keys = [hashlib.sha256(pid.encode()).hexdigest() for pid in problems["id"]]
    return problems.with_columns(_key=pl.Series(keys)).sort("_key").head(size).drop("_key")


def accuracy_history(records: list[dict]) -> dict[str, list[float]]:
    """Per example id, its accuracy in each epoch it was visited, in epoch order (records of ``examples.jsonl``;
    a record without ``epoch``, written before epochs were logged, counts as an epoch of its own)."""
    visits: dict[str, dict[float, list[float]]] = {}
    for index, record in enumerate(sorted(records, key=lambda r: r["step"])):
        epoch = record["epoch"] if "epoch" in record else index  # no epoch logged: each record counts as one
        for pid, acc in record["accuracy"].items():
            visits.setdefault(pid, {}).setdefault(epoch, []).append(acc)
    return {pid: [mean(accs) for _, accs in sorted(by_epoch.items())] for pid, by_epoch in visits.items()}


def historical_variance(history: dict[str, list[float]]) -> tuple[str, float]:
    scores = {pid: pvariance(accs) for pid, accs in history.items() if len(accs) >= 2}
    if not scores:
        raise ValueError("no example was visited in two epochs of the ground-truth run: historical variance is "
                         "undefined; train it for more epochs (more max_steps or a smaller train_subset) or use "
                         "select: random")
    best = max(scores.values())
    return min(pid for pid, s in scores.items() if s == best), best


def select(problems: pl.DataFrame, mode: str, seed: int, history_records: list[dict] | None = None) -> dict:
    """The chosen example's id and how it was chosen."""
    if mode == "historical_variance":
        if history_records is None:
            raise ValueError("one_shot.select = historical_variance needs the ground-truth run's examples.jsonl")
        pid, score = historical_variance(accuracy_history(history_records))
        return {"id": pid, "mode": mode, "variance": score}
    if mode == "random":
        ids = sorted(problems["id"].to_list())
        return {"id": random.Random(seed).choice(ids), "mode": mode, "seed": seed}
    raise ValueError(f"unknown one-shot selection {mode!r}: choose historical_variance or random")


def replicate(problems: pl.DataFrame, problem_id: str, copies: int) -> pl.DataFrame:
    """``copies`` rows of one problem, each with its own id (``<id>#<k>``) so each copy is its own group."""
    row = problems.filter(pl.col("id") == problem_id)
    if row.height != 1:
        raise ValueError(f"one-shot example {problem_id!r} is not in the training set")
    return pl.concat([row] * copies).with_columns(id=pl.format("{}#{}", pl.col("id"), pl.int_range(copies)))
