"""One-shot RL (study.md 7.5): choose one training example and replicate it to fill the batches.

Selection modes:
- ``historical_variance`` (Wang et al. 2025): from a ground-truth run's per-example accuracy history (one value per
  visit of the example, i.e. per epoch), the example whose accuracy varies most across visits; examples visited fewer
  than twice have no variance and are not candidates. Ties go to the smallest id.
- ``random``: a uniform draw with a recorded seed.
"""

from __future__ import annotations

import random
from statistics import pvariance

import polars as pl


def accuracy_history(records: list[dict]) -> dict[str, list[float]]:
    """Per example id, its group accuracy at each visit, in step order (records of ``examples.jsonl``)."""
    history: dict[str, list[float]] = {}
    for record in sorted(records, key=lambda r: r["step"]):
        for pid, acc in record["accuracy"].items():
            history.setdefault(pid, []).append(acc)
    return history


def historical_variance(history: dict[str, list[float]]) -> tuple[str, float]:
    scores = {pid: pvariance(accs) for pid, accs in history.items() if len(accs) >= 2}
    if not scores:
        raise ValueError("no example was visited twice in the ground-truth run: historical variance is undefined; "
                         "train it for more epochs (more max_steps or a smaller train split) or use select: random")
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
