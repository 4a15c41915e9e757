"""A constructed study on disk, in the stages' real file schemas, for the analysis tests.

Every evaluated run gets exact per-problem correct counts (``c`` of ``n`` samples), so the cells' means and gains are
known by hand; probes and training logs are written alongside. ``write_study`` returns the analysis inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from mtarl.analyze import Inputs

N_SAMPLES = 16


def samples_frame(counts: list[int], n: int = N_SAMPLES) -> pl.DataFrame:
    """A per-sample evaluation table with ``counts[i]`` correct samples of problem i."""
    rows = [{"problem_id": f"p{i}", "sample": j, "correct": j < c, "extracted": "1" if j < c else "0",
             "format_ok": True} for i, c in enumerate(counts) for j in range(n)]
    return pl.DataFrame(rows)


def write_run(root: Path, model: str, task: str, variant: str, seed: int | None, counts: list[int]) -> tuple[str, str]:
    run = "base" if seed is None else f"{variant}-s{seed}"
    folder = root / "evaluate" / model / task / run  # one table per run for all the task's benchmarks (here: one)
    folder.mkdir(parents=True, exist_ok=True)
    samples = samples_frame(counts).with_columns(benchmark=pl.lit(task), variant=pl.lit(variant),
                                                 seed=pl.lit(seed, dtype=pl.Int64))
    samples.write_parquet(folder / "samples.parquet")
    acc = float(np.mean(counts)) / N_SAMPLES
    pl.DataFrame({"metric": [f"avg@{N_SAMPLES}"], "k": [N_SAMPLES], "value": [acc], "model": [model], "task": [task],
                  "benchmark": [task], "variant": [variant], "seed": [seed]},
                 schema_overrides={"seed": pl.Int64}).write_parquet(folder / "scores.parquet")
    return str(folder / "scores.parquet"), str(folder / "samples.parquet")


def write_probe(root: Path, model: str, task: str, pass_at_k: float, alignment: str, rouge: float,
                maj_gap: float) -> dict[str, str]:
    folder = root / "probe" / model / task / task
    folder.mkdir(parents=True, exist_ok=True)
    keys = {"model": model, "task": task, "benchmark": task}
    pass1 = pass_at_k / 3
    pl.DataFrame([{**keys, "k": k, "pass_at_k": v} for k, v in ((1, pass1), (4, pass_at_k))]).write_parquet(
        folder / "passk.parquet")
    pl.DataFrame([{**keys, "metric": m, "k": k, "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05, "n": 8,
                   "n_problems": 10} for m, k, v in (("pass@k", 1, pass1), ("pass@k", 4, pass_at_k),
                                                     ("maj@k", 4, pass1 + maj_gap),
                                                     ("greedy@1", 1, pass1 + maj_gap), ("format_rate", 8, 0.6),
                                                     ("strategy_share", 8, 0.25))]
                 ).write_parquet(folder / "metrics.parquet")
    partition = f"clean_{alignment}" if rouge < 0.5 else f"contaminated_{alignment}"
    pl.DataFrame([{**keys, "alignment_k": 4, "pass_at_k": pass_at_k, "alignment": alignment, "mean_em": 0.0,
                   "mean_rouge_l": rouge, "partition": partition, "colour": "green"}]).write_parquet(
        folder / "alignment.parquet")
    return {name: str(folder / f"{name}.parquet") for name in ("passk", "metrics", "alignment")}


def write_log(root: Path, model: str, task: str, variant: str, seed: int, entropy: float) -> str:
    folder = root / "train" / model / task / f"{variant}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"step": s, "gt_accuracy": 0.1 * s, "reward": 0.1 * s, "entropy": entropy, "completions/mean_length": 5.0,
              "clip_ratio/region_mean": 0.001} for s in range(1, 5)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(folder / "metrics.jsonl")


def write_study(root: Path, cells: dict, base: dict, trained: dict, entropy: dict | None = None) -> Inputs:
    """``cells``: (model, task) -> (pass@k, alignment, rouge, maj_gap); ``base``: (model, task) -> counts;
    ``trained``: (model, task, variant) -> {seed: counts}; ``entropy``: (model, task, variant) -> {seed: value}."""
    inputs = Inputs([], [], [], [], [], [])
    for (model, task), profile in cells.items():
        probe = write_probe(root, model, task, *profile)
        inputs.passk.append(probe["passk"])
        inputs.alignment.append(probe["alignment"])
        inputs.probe_metrics.append(probe["metrics"])
        scores, samples = write_run(root, model, task, "base", None, base[(model, task)])
        inputs.scores.append(scores)
        inputs.samples.append(samples)
    for (model, task, variant), per_seed in trained.items():
        for seed, counts in per_seed.items():
            scores, samples = write_run(root, model, task, variant, seed, counts)
            inputs.scores.append(scores)
            inputs.samples.append(samples)
            value = (entropy or {}).get((model, task, variant), {}).get(seed, 1.0)
            inputs.train_metrics.append(write_log(root, model, task, variant, seed, value))
    return inputs
