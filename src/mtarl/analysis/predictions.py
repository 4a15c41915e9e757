"""The study's testable predictions (study.md section 10), each evaluated on the run's own data with a fixed rule.

A prediction is a conjunction of *claims*. Each claim is a statistic (a gain, a difference of gains, an entropy
difference or a rank-correlation difference), its 95% bootstrap interval (seeds and problems resampled, or cells for
the rank correlations) and a verdict by ``mtarl.stats.verdict``: a claim that something helps is *supported* when the
interval lies above 0 and *contradicted* when it lies at or below 0; a claim that something does not help is
supported when the interval lies below the margin (+0.03 accuracy, study.md's tolerance) and contradicted when it
lies above it; "about equal" must lie inside +-0.03. A prediction is contradicted when any claim is, supported when
every claim is, and inconclusive otherwise. A claim whose variants or cells are not in the run is "not tested".

Cells are split by the probe's verdict (``mtarl.alignment``): *strong* / *weak* alignment and, for prediction 4,
the clean strongly aligned cells (the Green cells of the paper). Statistics over several cells are the mean of the
cells' gains. The rule was written before any run of this project decided a prediction, and no threshold depends on
a run; the gain statistics use every trained seed.

``evaluate_predictions`` returns one row per claim: ``id``, ``prediction``, ``claim``, ``statistic``, ``value``,
``low``, ``high``, ``n_seeds`` (the fewest seeds behind the statistic), ``rule``, ``verdict``, ``prediction_verdict``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from mtarl import stats
from mtarl.analysis.cells import KEYS

STRONG, WEAK = "strong", "weak"
# The tricks whose gains prediction 10 ranks: every variant that is not ground-truth RL.
TRICKS = ("random", "incorrect", "format", "majority", "entropy", "entropy_token", "one_shot", "nsr")
ONE_SHOT_SHARE = 0.9  # study.md 10, prediction 7: one-shot reaches >= 90% of the full-data gain when aligned


@dataclass
class Evidence:
    """What the predictions read: gain replicates per (model, task, benchmark, variant), point gains and seed counts,
    the cells' probe profiles, and per (model, task, variant) the mean entropy over training with replicates."""

    gains: dict[tuple, np.ndarray]
    point: dict[tuple, float]
    seeds: dict[tuple, int]
    profiles: pl.DataFrame
    entropy: dict[tuple, tuple[float, np.ndarray, int]] = field(default_factory=dict)
    n_boot: int = 1000
    seed: int = 0

    def cells(self, alignment: str | None = None, partition: str | None = None) -> list[tuple]:
        frame = self.profiles
        if alignment:
            frame = frame.filter(pl.col("alignment") == alignment)
        if partition:
            frame = frame.filter(pl.col("partition") == partition)
        return frame.select(*KEYS).rows()

    def mean_gain(self, cells: list[tuple], variant: str) -> tuple[float, np.ndarray, int] | None:
        keys = [(*cell, variant) for cell in cells]
        if not keys or any(k not in self.gains for k in keys):
            return None
        return (float(np.mean([self.point[k] for k in keys])), np.mean([self.gains[k] for k in keys], axis=0),
                min(self.seeds[k] for k in keys))


Statistic = tuple[float, np.ndarray, int] | None


def difference(a: Statistic, b: Statistic) -> Statistic:
    if a is None or b is None:
        return None
    return a[0] - b[0], a[1] - b[1], min(a[2], b[2])


def claim_row(pid: str, prediction: str, text: str, statistic: str, value: Statistic, rule: str) -> dict:
    if value is None:
        return {"id": pid, "prediction": prediction, "claim": text, "statistic": statistic, "value": None,
                "low": None, "high": None, "n_seeds": None, "rule": rule, "verdict": stats.NOT_TESTED}
    point, replicates, n_seeds = value
    low, high = stats.percentile_interval(replicates)
    return {"id": pid, "prediction": prediction, "claim": text, "statistic": statistic, "value": point, "low": low,
            "high": high, "n_seeds": n_seeds, "rule": rule, "verdict": stats.verdict(low, high, rule)}


def only_when_aligned(ev: Evidence, pid: str, title: str, variant: str) -> list[dict]:
    """The common shape of predictions 2, 3 and 6: gains in strongly aligned cells, none in weakly aligned ones."""
    return [
        claim_row(pid, title, f"{variant} helps strongly aligned cells", f"mean gain of {variant}, strong cells",
                  ev.mean_gain(ev.cells(STRONG), variant), "positive"),
        claim_row(pid, title, f"{variant} does not help weakly aligned cells", f"mean gain of {variant}, weak cells",
                  ev.mean_gain(ev.cells(WEAK), variant), "not_positive"),
    ]


def p1(ev: Evidence) -> list[dict]:
    title = "Ground-truth RL helps every model x task cell"
    return [claim_row("P1", title, f"ground truth helps {'/'.join(cell)}", "gain of ground_truth",
                      ev.mean_gain([cell], "ground_truth"), "positive") for cell in ev.cells()]


def p4(ev: Evidence) -> list[dict]:
    title = "No contamination needed: spurious rewards help clean, strongly aligned cells"
    clean = ev.cells(partition="clean_strong")
    return [claim_row("P4", title, f"{v} helps clean strongly aligned cells", f"mean gain of {v}, clean-strong cells",
                      ev.mean_gain(clean, v), "positive") for v in ("random", "incorrect")]


def p5(ev: Evidence) -> list[dict]:
    title = "Weak alignment: spurious and self rewards fail while ground truth still helps"
    weak = ev.cells(WEAK)
    rows = [claim_row("P5", title, f"{v} does not help weakly aligned cells", f"mean gain of {v}, weak cells",
                      ev.mean_gain(weak, v), "not_positive") for v in ("random", "incorrect", "majority", "entropy")]
    rows.append(claim_row("P5", title, "ground truth helps weakly aligned cells", "mean gain of ground_truth, weak "
                          "cells", ev.mean_gain(weak, "ground_truth"), "positive"))
    return rows


def p7(ev: Evidence) -> list[dict]:
    title = "One-shot RL works only when aligned"
    strong, weak = ev.cells(STRONG), ev.cells(WEAK)
    one_strong = ev.mean_gain(strong, "one_shot")
    return [
        claim_row("P7", title, "one-shot helps strongly aligned cells", "mean gain of one_shot, strong cells",
                  one_strong, "positive"),
        claim_row("P7", title, f"one-shot reaches {ONE_SHOT_SHARE:.0%} of the full-data gain when aligned",
                  f"{ONE_SHOT_SHARE} x gain of ground_truth - gain of one_shot, strong cells",
                  difference(scaled(ev.mean_gain(strong, "ground_truth"), ONE_SHOT_SHARE), one_strong),
                  "not_positive"),
        claim_row("P7", title, "one-shot does not help weakly aligned cells", "mean gain of one_shot, weak cells",
                  ev.mean_gain(weak, "one_shot"), "not_positive"),
        claim_row("P7", title, "selected example ~ random example when weakly aligned",
                  "gain of one_shot - gain of one_shot_random, weak cells",
                  difference(ev.mean_gain(weak, "one_shot"), ev.mean_gain(weak, "one_shot_random")), "near_zero"),
    ]


def scaled(value: Statistic, factor: float) -> Statistic:
    return None if value is None else (factor * value[0], factor * value[1], value[2])


def p8(ev: Evidence) -> list[dict]:
    title = "NSR works only when aligned; PSR beats NSR when weakly aligned"
    strong, weak = ev.cells(STRONG), ev.cells(WEAK)
    return [
        claim_row("P8", title, "NSR helps strongly aligned cells", "mean gain of nsr, strong cells",
                  ev.mean_gain(strong, "nsr"), "positive"),
        claim_row("P8", title, "NSR does not help weakly aligned cells", "mean gain of nsr, weak cells",
                  ev.mean_gain(weak, "nsr"), "not_positive"),
        claim_row("P8", title, "PSR beats NSR in weakly aligned cells", "gain of psr - gain of nsr, weak cells",
                  difference(ev.mean_gain(weak, "psr"), ev.mean_gain(weak, "nsr")), "positive"),
    ]


def p9(ev: Evidence) -> list[dict]:
    title = "NSR preserves entropy (above ground truth and PSR during training)"
    train_cells = sorted({(m, t) for m, t, _ in ev.cells()})
    rows = []
    for other in ("ground_truth", "psr"):
        pairs = [(ev.entropy.get((*c, "nsr")), ev.entropy.get((*c, other))) for c in train_cells]
        value = None
        if pairs and all(a is not None and b is not None for a, b in pairs):
            value = (float(np.mean([a[0] - b[0] for a, b in pairs])),
                     np.mean([a[1] - b[1] for a, b in pairs], axis=0), min(min(a[2], b[2]) for a, b in pairs))
        rows.append(claim_row("P9", title, f"NSR entropy above {other}",
                              f"mean token entropy of nsr - {other} over steps and runs", value, "positive"))
    return rows


def p10(ev: Evidence) -> list[dict]:
    """The probe's measures rank the tricks' gains better than the contamination check does."""
    title = "Alignment (base pass@k) predicts the tricks' gains better than contamination"
    profiles = ev.profiles
    cells = profiles.select(*KEYS).rows()
    tricks = [t for t in TRICKS if cells and all((*c, t) in ev.gains for c in cells)]
    contamination = profiles["mean_rouge_l"].to_numpy()
    rows = []
    for measure, label in (("base_pass_at_k", "base pass@k at the alignment k"),
                           ("maj_gap", "maj@k - pass@1 of the base model")):
        probe = profiles[measure].to_numpy()
        value = None
        if tricks and len(cells) >= 3 and np.isfinite(contamination.astype(float)).all() \
                and np.isfinite(probe.astype(float)).all():
            value = rank_advantage(ev, cells, tricks, probe, contamination)
        rows.append(claim_row("P10", title, f"{label} ranks gains better than the contamination ROUGE-L",
                              f"mean over {len(tricks)} tricks of Spearman(probe, gain) - Spearman(contamination, "
                              "gain)", value, "positive"))
    return rows


def rank_advantage(ev: Evidence, cells: list[tuple], tricks: list[str], probe: np.ndarray,
                   contamination: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Mean over tricks of rho(probe, gain) - rho(contamination, gain), with replicates that resample cells (and
    take each cell's gain replicate)."""
    gains = {t: np.array([ev.point[(*c, t)] for c in cells]) for t in tricks}
    replicates = {t: np.stack([ev.gains[(*c, t)] for c in cells]) for t in tricks}  # cells x boot

    def advantage(index: np.ndarray, gain_of) -> float:
        return float(np.mean([stats.spearman(probe[index], gain_of(t)[index])
                              - stats.spearman(contamination[index], gain_of(t)[index]) for t in tricks]))

    everything = np.arange(len(cells))
    point = advantage(everything, lambda t: gains[t])
    rng = stats.rng_for(ev.seed, "rank_advantage")
    boot = np.empty(ev.n_boot)
    for b in range(ev.n_boot):
        index = rng.integers(0, len(cells), len(cells))
        boot[b] = advantage(index, lambda t: replicates[t][:, b])
    seeds = min(ev.seeds[(*c, t)] for c in cells for t in tricks)
    return point, boot, seeds


def evaluate_predictions(ev: Evidence) -> pl.DataFrame:
    rows = [
        *p1(ev),
        *only_when_aligned(ev, "P2", "Random reward works only when aligned", "random"),
        *only_when_aligned(ev, "P3", "Incorrect reward behaves like random (works only when aligned)", "incorrect"),
        *p4(ev), *p5(ev),
        *only_when_aligned(ev, "P6", "Majority vote (TTRL) works only when aligned", "majority"),
        *p7(ev), *p8(ev), *p9(ev), *p10(ev),
    ]
    schema = {"id": pl.String, "prediction": pl.String, "claim": pl.String, "statistic": pl.String,
              "value": pl.Float64, "low": pl.Float64, "high": pl.Float64, "n_seeds": pl.Int64, "rule": pl.String,
              "verdict": pl.String}
    table = pl.DataFrame(rows, schema=schema)
    overall = {pid: stats.combine_verdicts(frame["verdict"].to_list())
               for (pid,), frame in table.group_by(["id"], maintain_order=True)}
    return table.with_columns(prediction_verdict=pl.col("id").replace_strict(overall, return_dtype=pl.String))


def _interval_text(row: dict) -> tuple[str, str]:
    if row["value"] is None:
        return "-", "-"
    return f"{row['value']:+.3f}", f"[{row['low']:+.3f}, {row['high']:+.3f}]"


def to_html(table: pl.DataFrame) -> str:
    """The predictions table: one block of rows per prediction, its overall verdict on the first row."""
    head = ("<tr><th>#</th><th>prediction</th><th>verdict</th><th>claim</th><th>statistic</th><th>value</th>"
            "<th>95% interval</th><th>seeds</th><th>claim verdict</th></tr>")
    body = []
    for (pid,), frame in table.group_by(["id"], maintain_order=True):
        rows = frame.to_dicts()
        for i, row in enumerate(rows):
            value, interval = _interval_text(row)
            lead = ""
            if i == 0:
                span = f' rowspan="{len(rows)}"'
                lead = (f"<th{span}>{pid}</th><td{span}>{html.escape(row['prediction'])}</td>"
                        f'<td{span} class="{row["prediction_verdict"].replace(" ", "-")}">'
                        f"<b>{row['prediction_verdict']}</b></td>")
            seeds = "-" if row["n_seeds"] is None else str(row["n_seeds"])
            body.append(f"<tr>{lead}<td>{html.escape(row['claim'])}</td><td>{html.escape(row['statistic'])}</td>"
                        f"<td>{value}</td><td>{interval}</td><td>{seeds}</td>"
                        f'<td class="{row["verdict"].replace(" ", "-")}">{row["verdict"]}</td></tr>')
    return (f'<table class="mtarl" id="predictions"><caption>Predictions of the study (study.md section 10) on this '
            f"run's data</caption><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>")


def to_markdown(table: pl.DataFrame) -> str:
    lines = ["| # | prediction | verdict | claim | value [95% interval] | seeds | claim verdict |",
             "|---|---|---|---|---|---|---|"]
    for row in table.iter_rows(named=True):
        value, interval = _interval_text(row)
        seeds = "-" if row["n_seeds"] is None else str(row["n_seeds"])
        lines.append(f"| {row['id']} | {row['prediction']} | {row['prediction_verdict']} | {row['claim']} | "
                     f"{value} {interval} | {seeds} | {row['verdict']} |")
    return "\n".join(lines)
