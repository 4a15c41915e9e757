"""Training dynamics, read from every run's ``metrics.jsonl`` (one JSON object per optimizer step).

``read_training_logs`` gives a long table: ``model``, ``task``, ``variant``, ``seed``, ``step`` and one column per
curve of ``CURVES`` (null where a run did not log it). A run's identity comes from its documented path,
``.../train/{model}/{task}/{variant}-s{seed}/metrics.jsonl``. ``mean_replicates`` gives per-run means over steps,
resampled over seeds, for statements such as "NSR keeps entropy above GRPO" (prediction 9). ``diagnostics`` gives
the mechanism behind each variant's gain: how the base model's latent behaviours (format rate, strategy share) and
its training accuracy moved from the first to the last steps, how often the PPO clip acted, and the entropy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from mtarl import io, stats
from mtarl.config import parse_run

# Curve name in metrics.jsonl -> label in figures.
CURVES = {
    "gt_accuracy": "ground-truth accuracy",
    "reward": "reward",
    "entropy": "token entropy",
    "completions/mean_length": "response length (tokens)",
    "clip_ratio/region_mean": "clip fraction",
}
# Latent behaviours logged per step (mtarl.rl), read beside the curves for the diagnostics table.
BEHAVIOURS = ("format_rate", "strategy_share")
# Steps averaged at the start and at the end of a run by the diagnostics table.
WINDOW = 10


def run_identity(path: str) -> dict:
    parts = Path(path).parts
    if len(parts) < 4:
        raise ValueError(f"{path}: not a .../train/<model>/<task>/<variant>-s<seed>/metrics.jsonl path")
    variant, seed = parse_run(parts[-2])
    return {"model": parts[-4], "task": parts[-3], "variant": variant, "seed": seed}


def read_training_logs(paths: list[str]) -> pl.DataFrame:
    rows = []
    for path in paths:
        identity = run_identity(path)
        for record in io.read_jsonl(path):
            if "step" not in record:
                continue
            rows.append({**identity, "step": int(record["step"]),
                         **{name: _number(record.get(name)) for name in (*CURVES, *BEHAVIOURS)}})
    schema = {"model": pl.String, "task": pl.String, "variant": pl.String, "seed": pl.Int64, "step": pl.Int64,
              **{name: pl.Float64 for name in (*CURVES, *BEHAVIOURS)}}
    return pl.DataFrame(rows, schema=schema).sort("model", "task", "variant", "seed", "step")


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def per_seed_means(logs: pl.DataFrame, curve: str) -> pl.DataFrame:
    """Per run: the mean of ``curve`` over its logged steps."""
    return (logs.filter(pl.col(curve).is_not_null())
            .group_by("model", "task", "variant", "seed").agg(mean=pl.col(curve).mean())
            .sort("model", "task", "variant", "seed"))


def mean_replicates(logs: pl.DataFrame, curve: str, n_boot: int, seed: int) -> dict[tuple, tuple[float, np.ndarray, int]]:
    """Per (model, task, variant): the mean over seeds of each run's mean ``curve``, and bootstrap replicates of it
    (resampling seeds), and the number of seeds."""
    out = {}
    means = per_seed_means(logs, curve)
    for (model, task, variant), frame in means.group_by(["model", "task", "variant"], maintain_order=True):
        values = frame["mean"].to_numpy()
        weights = stats.resample_weights(len(values), n_boot, stats.rng_for(seed, "curve", curve, model, task,
                                                                            variant))
        out[(model, task, variant)] = (float(values.mean()), weights @ values, len(values))
    return out


def diagnostics(logs: pl.DataFrame, window: int = WINDOW) -> pl.DataFrame:
    """Per (model, task, variant), means over seeds of each run's: format rate, strategy share and ground-truth
    accuracy over its first and its last ``window`` steps (``*_start``, ``*_end``); the mean and largest percentage
    of tokens the PPO clip acted on (``clip_percent_*``); the mean token entropy; and ``n_seeds``. A gain made by
    eliciting the format shows as format_rate_end > format_rate_start; the clipping-bias account needs a clip
    percentage well above 0."""
    moved = (*BEHAVIOURS, "gt_accuracy")
    per_run = logs.sort("step").group_by("model", "task", "variant", "seed").agg(
        *[expr for c in moved for expr in (pl.col(c).head(window).mean().alias(f"{c}_start"),
                                           pl.col(c).tail(window).mean().alias(f"{c}_end"))],
        clip_percent_mean=100 * pl.col("clip_ratio/region_mean").mean(),
        clip_percent_max=100 * pl.col("clip_ratio/region_mean").max(),
        entropy_mean=pl.col("entropy").mean(),
    )
    columns = [c for c in per_run.columns if c not in ("model", "task", "variant", "seed")]
    return (per_run.group_by("model", "task", "variant")
            .agg(*[pl.col(c).mean() for c in columns], n_seeds=pl.len())
            .sort("model", "task", "variant"))
