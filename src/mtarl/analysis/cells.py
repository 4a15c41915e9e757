"""The study's cells, read from the stored per-sample evaluations, with two-level bootstrap estimates.

A *cell* is one base model x task x benchmark. Its evaluations are the base model's (``variant == "base"``) and each
trained run's (``variant``, ``seed``), all on the same problems with the same sampler. ``load_cells`` turns the
evaluation sample files into per-problem correct counts; ``estimate`` gives, per cell and variant, the mean accuracy
(avg@n) over seeds and problems and the gain over the base model, each with a 95% interval from
``mtarl.stats.two_level_replicates`` (resampling seeds and problems). One set of problem draws per cell is shared by
the base model and every variant, so differences between variants of a cell are paired over problems.

``estimates`` table (one row per cell x variant, the base model as variant ``base``): ``model``, ``task``,
``benchmark``, ``variant``, ``n_seeds``, ``seeds`` (list), ``n_problems``, ``n_samples`` (per problem),
``score``, ``score_low``, ``score_high``, ``gain``, ``gain_low``, ``gain_high``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from mtarl import metrics, stats

KEYS = ("model", "task", "benchmark")
BASE = "base"


@dataclass
class Run:
    """One evaluated model of a cell: per seed, each problem's sample count ``n`` and correct count ``c``."""

    seeds: list[int]
    n: np.ndarray  # seeds x problems
    c: np.ndarray  # seeds x problems

    @property
    def accuracy(self) -> np.ndarray:
        return self.c / self.n

    def pass_at_k(self, k: int) -> np.ndarray:
        """Per-seed, per-problem unbiased pass@k (k at most the sample count)."""
        return np.vectorize(lambda n, c: metrics.pass_at_k(int(n), int(c), k))(self.n, self.c)


@dataclass
class Cell:
    model: str
    task: str
    benchmark: str
    problems: list[str]
    runs: dict[str, Run] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.model, self.task, self.benchmark


def read_evaluations(score_paths: list[str], sample_paths: list[str]) -> pl.DataFrame:
    """Per-problem counts of every evaluation: ``model``, ``task``, ``benchmark``, ``variant``, ``seed``,
    ``problem_id``, ``n``, ``c``. Each scores file names its model and task and the runs of its job (base, or one or
    more seeds of a variant: ``variant``, ``seed``); the samples file of the same job holds their samples with
    ``benchmark``, ``variant`` and ``seed`` columns. Problems whose gold cannot be scored are left out, as in every
    metric (``metrics.drop_unscorable``)."""
    if len(score_paths) != len(sample_paths):
        raise ValueError(f"{len(score_paths)} score files but {len(sample_paths)} sample files")
    frames = []
    for scores_path, samples_path in zip(score_paths, sample_paths):
        cell = pl.read_parquet(scores_path).select("model", "task").unique()
        if cell.height != 1:
            raise ValueError(f"{scores_path}: expected one model x task, found {cell.rows()}")
        samples, _ = metrics.drop_unscorable(
            pl.read_parquet(samples_path, columns=["benchmark", "variant", "seed", "problem_id", "correct"]))
        for (benchmark, variant, seed), rows in samples.group_by(["benchmark", "variant", "seed"],
                                                                 maintain_order=True):
            counts = metrics.correct_counts(rows).with_columns(
                benchmark=pl.lit(benchmark), variant=pl.lit(variant), seed=pl.lit(seed, dtype=pl.Int64))
            frames.append(counts.join(cell, how="cross"))
    return pl.concat(frames, how="diagonal")


def load_cells(evaluations: pl.DataFrame) -> list[Cell]:
    """Group per-problem counts into cells; every run of a cell must cover the same problems."""
    cells = []
    for key, frame in evaluations.sort(*KEYS).group_by(list(KEYS), maintain_order=True):
        problems = sorted(frame["problem_id"].unique().to_list())
        cell = Cell(*key, problems=problems)
        for (variant,), runs in frame.group_by(["variant"], maintain_order=True):
            cell.runs[variant] = _run(runs, problems, (*key, variant))
        if BASE not in cell.runs:
            raise ValueError(f"no base-model evaluation for {key}")
        cells.append(cell)
    return cells


def _run(frame: pl.DataFrame, problems: list[str], name: tuple) -> Run:
    seeds = sorted({s for s in frame["seed"].to_list()}, key=lambda s: -1 if s is None else s)
    n = np.zeros((len(seeds), len(problems)))
    c = np.zeros_like(n)
    index = {p: j for j, p in enumerate(problems)}
    for i, seed in enumerate(seeds):
        rows = frame.filter(pl.col("seed").is_null() if seed is None else pl.col("seed") == seed)
        if sorted(rows["problem_id"].to_list()) != problems:
            raise ValueError(f"{name} seed {seed}: evaluated on other problems than the cell's base model")
        for pid, n_p, c_p in rows.select("problem_id", "n", "c").iter_rows():
            n[i, index[pid]], c[i, index[pid]] = n_p, c_p
    return Run(seeds=[s for s in seeds if s is not None], n=n, c=c)


@dataclass
class Draws:
    """The bootstrap draws of one cell: problem weights shared by all its runs, seed weights per variant."""

    problems: np.ndarray
    seeds: dict[str, np.ndarray]


def cell_draws(cell: Cell, n_boot: int, seed: int) -> Draws:
    problems = stats.resample_weights(len(cell.problems), n_boot, stats.rng_for(seed, *cell.key))
    seeds = {variant: stats.resample_weights(run.n.shape[0], n_boot, stats.rng_for(seed, *cell.key, variant))
             for variant, run in cell.runs.items()}
    return Draws(problems=problems, seeds=seeds)


def replicates(values: np.ndarray, draws: Draws, variant: str) -> np.ndarray:
    """Bootstrap replicates of the mean over seeds and problems of ``values`` (seeds x problems) of ``variant``."""
    return stats.two_level_replicates(values, draws.seeds[variant], draws.problems)


def estimate(cells: list[Cell], n_boot: int, seed: int) -> tuple[pl.DataFrame, dict[tuple, np.ndarray]]:
    """The estimates table and the gain replicates per (model, task, benchmark, variant) for the predictions."""
    rows, gains = [], {}
    for cell in cells:
        draws = cell_draws(cell, n_boot, seed)
        base = cell.runs[BASE].accuracy[0]
        for variant, run in cell.runs.items():
            score = replicates(run.accuracy, draws, variant)
            gain = replicates(run.accuracy - base, draws, variant)
            gains[(*cell.key, variant)] = gain
            rows.append({
                "model": cell.model, "task": cell.task, "benchmark": cell.benchmark, "variant": variant,
                "n_seeds": len(run.seeds), "seeds": run.seeds, "n_problems": len(cell.problems),
                "n_samples": int(run.n.max()),
                "score": float(run.accuracy.mean()), **_interval("score", score),
                "gain": float((run.accuracy - base).mean()), **_interval("gain", gain),
            })
    schema = {"seeds": pl.List(pl.Int64)}
    return pl.DataFrame(rows, schema_overrides=schema), gains


def _interval(name: str, replicate: np.ndarray) -> dict[str, float]:
    low, high = stats.percentile_interval(replicate)
    return {f"{name}_low": low, f"{name}_high": high}


def passk_curves(cells: list[Cell], n_boot: int, seed: int) -> pl.DataFrame:
    """pass@k of every evaluated model of every cell (k = 1, 2, 4, ... n), mean over seeds, with 95% intervals:
    ``model``, ``task``, ``benchmark``, ``variant``, ``k``, ``value``, ``low``, ``high``, ``n_seeds``."""
    rows = []
    for cell in cells:
        draws = cell_draws(cell, n_boot, seed)
        for variant, run in cell.runs.items():
            for k in metrics.powers_of_two_upto(int(run.n.min())):
                values = run.pass_at_k(k)
                low, high = stats.percentile_interval(replicates(values, draws, variant))
                rows.append({"model": cell.model, "task": cell.task, "benchmark": cell.benchmark,
                             "variant": variant, "k": k, "value": float(values.mean()), "low": low, "high": high,
                             "n_seeds": len(run.seeds)})
    return pl.DataFrame(rows)


# The latent behaviours of a base model that the probe measures (mtarl.metrics.profile_table), by profile column.
PROFILE_COLUMNS = {"greedy@1": "base_greedy", "format_rate": "base_format_rate", "strategy_share": "base_strategy_share"}


def base_profiles(alignment: pl.DataFrame, probe_metrics: pl.DataFrame) -> pl.DataFrame:
    """Per cell, what the probe knows of the base model: ``alignment_k``, ``base_pass_at_k`` (at that k),
    ``base_pass_at_1``, ``base_maj_at_k`` and ``maj_gap`` (maj@k - pass@1, the sharpening headroom), the latent
    behaviours ``base_greedy`` (greedy accuracy), ``base_format_rate`` and ``base_strategy_share``, the verdict
    ``alignment`` / ``partition`` / ``colour`` and the contamination statistic ``mean_rouge_l`` (null when unchecked)."""
    verdicts = alignment.select(*KEYS, "alignment_k", "alignment", "partition", "colour", "mean_rouge_l",
                                "mean_em", base_pass_at_k="pass_at_k")
    pass1 = probe_metrics.filter((pl.col("metric") == "pass@k") & (pl.col("k") == 1)).select(
        *KEYS, base_pass_at_1="value")
    maj = probe_metrics.filter(pl.col("metric") == "maj@k").select(*KEYS, "k", base_maj_at_k="value")
    profile = verdicts.join(pass1, on=list(KEYS), how="left").join(
        maj, left_on=[*KEYS, "alignment_k"], right_on=[*KEYS, "k"], how="left")
    for metric, column in PROFILE_COLUMNS.items():
        values = probe_metrics.filter(pl.col("metric") == metric).select(*KEYS, pl.col("value").alias(column))
        profile = profile.join(values, on=list(KEYS), how="left")
    return profile.with_columns(maj_gap=pl.col("base_maj_at_k") - pl.col("base_pass_at_1")).sort(*KEYS)

