"""The paper's tables, laid out as in the paper: one row per base model x variant, benchmarks as columns.

Every cell is the mean accuracy (avg@n) over seeds and problems with its 95% two-level bootstrap interval, the gain
over the base model with its interval, and the number of seeds ("1 seed" is shown as a warning). Tables are built from
the ``estimates`` table of ``mtarl.analysis.cells`` and rendered as HTML (report) or markdown (terminal summary).

| table | study.md | rows |
|---|---|---|
| ``rq1_rewards`` | 9.1 | ground truth, random, incorrect, format-only (and the ungated ablations) |
| ``self_rewards`` | 9.2, 7.4 | majority vote (TTRL), entropy minimisation: both readings |
| ``one_shot`` | 9.3 | one-shot RL with the selected example, with a random example, and full data (ground truth) |
| ``rq3`` | 9.4 | ground truth, NSR, PSR (masked, the paper's code), Zhu et al. PSR / NSR / W-REINFORCE |
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import polars as pl

from mtarl import stats
from mtarl.analysis.cells import BASE, KEYS


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    variants: tuple[str, ...]


TABLES = (
    TableSpec("rq1_rewards", "RQ1: reward signal (ground truth vs spurious rewards)",
              ("ground_truth", "random", "random_ungated", "incorrect", "incorrect_ungated", "format")),
    TableSpec("self_rewards", "RQ1: self-rewards (majority vote, entropy minimisation)",
              ("majority", "entropy", "entropy_token")),
    TableSpec("one_shot", "RQ2: one-shot RL (selected vs random example vs full data)",
              ("one_shot", "one_shot_random", "ground_truth")),
    TableSpec("rq3", "RQ3: negative and positive samples (masked NSR/PSR vs Zhu et al.)",
              ("ground_truth", "nsr", "psr", "zhu_psr", "zhu_nsr", "w_reinforce")),
)


def columns(estimates: pl.DataFrame, benchmark_order: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """The (task, benchmark) columns, in the configured order when given."""
    present = set(estimates.select("task", "benchmark").unique().rows())
    if benchmark_order:
        return [c for c in benchmark_order if c in present]
    return sorted(present)


def table_rows(estimates: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """The table's rows in long form: the base models and the spec's variants that were trained."""
    wanted = [BASE, *spec.variants]
    rows = estimates.filter(pl.col("variant").is_in(wanted))
    order = {v: i for i, v in enumerate(wanted)}
    return rows.with_columns(order=pl.col("variant").replace_strict(order, return_dtype=pl.Int64)).sort(
        "model", "order").drop("order")


def seeds_note(n_seeds: int) -> str:
    return "base" if n_seeds == 0 else "1 seed" if n_seeds == 1 else f"{n_seeds} seeds"


def cell_text(row: dict) -> tuple[str, str]:
    """(score line, gain line) of one table cell."""
    score = f"{row['score']:.3f} [{row['score_low']:.3f}, {row['score_high']:.3f}]"
    if row["variant"] == BASE:
        return score, "base model"
    gain = f"{row['gain']:+.3f} [{row['gain_low']:+.3f}, {row['gain_high']:+.3f}]"
    return score, f"gain {gain}, {seeds_note(row['n_seeds'])}"


def _grid(rows: pl.DataFrame, cols: list[tuple[str, str]]) -> list[tuple[str, str, list[dict | None]]]:
    by_key = {(r["model"], r["variant"], r["task"], r["benchmark"]): r for r in rows.iter_rows(named=True)}
    lines = []
    for model, variant in rows.select("model", "variant").unique(maintain_order=True).rows():
        lines.append((model, variant, [by_key.get((model, variant, task, bench)) for task, bench in cols]))
    return lines


def to_html(rows: pl.DataFrame, cols: list[tuple[str, str]], title: str) -> str:
    head = "".join(f"<th>{html.escape(bench)}<br><small>{html.escape(task)}</small></th>" for task, bench in cols)
    body = []
    for model, variant, cells in _grid(rows, cols):
        tds = []
        for row in cells:
            if row is None:
                tds.append("<td>&ndash;</td>")
                continue
            score, gain = cell_text(row)
            warn = ' class="one-seed"' if row["n_seeds"] == 1 else ""
            tds.append(f"<td{warn}>{score}<br><small>{gain}</small></td>")
        body.append(f"<tr><th>{html.escape(model)}</th><th>{html.escape(variant)}</th>{''.join(tds)}</tr>")
    return (f'<table class="mtarl"><caption>{html.escape(title)}</caption>'
            f"<thead><tr><th>model</th><th>variant</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def to_markdown(rows: pl.DataFrame, cols: list[tuple[str, str]]) -> str:
    header = "| model | variant | " + " | ".join(bench for _, bench in cols) + " |"
    lines = [header, "|" + "---|" * (len(cols) + 2)]
    for model, variant, cells in _grid(rows, cols):
        texts = ["-" if row is None else "<br>".join(cell_text(row)) for row in cells]
        lines.append(f"| {model} | {variant} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def zhu_vs_masked(estimates: pl.DataFrame, gains: dict) -> pl.DataFrame:
    """Per cell, the gain of each Zhu et al. variant minus its masked counterpart (the paper's NSR/PSR), with an
    interval over the paired replicates: they differ in normalisation, clipping and dynamic sampling."""
    rows = []
    for key in estimates.select(*KEYS).unique().sort(*KEYS).rows():
        for zhu, masked in (("zhu_nsr", "nsr"), ("zhu_psr", "psr")):
            a, b = gains.get((*key, zhu)), gains.get((*key, masked))
            if a is None or b is None:
                continue
            low, high = stats.percentile_interval(a - b)
            point = estimates.filter(pl.col("model") == key[0], pl.col("task") == key[1],
                                     pl.col("benchmark") == key[2], pl.col("variant").is_in([zhu, masked]))
            diff = dict(zip(point["variant"], point["gain"]))
            rows.append({"model": key[0], "task": key[1], "benchmark": key[2], "comparison": f"{zhu} - {masked}",
                         "difference": diff[zhu] - diff[masked], "low": low, "high": high})
    return pl.DataFrame(rows, schema={"model": pl.String, "task": pl.String, "benchmark": pl.String,
                                      "comparison": pl.String, "difference": pl.Float64, "low": pl.Float64,
                                      "high": pl.Float64})


def data_table(records: list[dict]) -> pl.DataFrame:
    """Per task split, how its problems were read (the prepare manifests' report): rows read and kept, rows skipped
    per reason (real datasets have empty or malformed rows; the paper configuration skips and counts them), and gold
    answers the verifier cannot score (left out of rewards and metrics)."""
    rows = []
    for record in records:
        report = record.get("report") or {}
        skipped = report.get("rows_skipped") or {}
        rows.append({"task": record.get("task"), "split": record.get("split"), "rows_read": report.get("rows_read"),
                     "rows_kept": report.get("rows_kept"), "rows_skipped": sum(skipped.values()),
                     "skipped_by_reason": ", ".join(f"{k}: {v}" for k, v in skipped.items()) or None,
                     "unscorable_golds": report.get("unscorable_golds")})
    schema = {"task": pl.String, "split": pl.String, "rows_read": pl.Int64, "rows_kept": pl.Int64,
              "rows_skipped": pl.Int64, "skipped_by_reason": pl.String, "unscorable_golds": pl.Int64}
    return pl.DataFrame(rows, schema=schema)


def frame_html(frame: pl.DataFrame, title: str) -> str:
    """A plain HTML table of a polars frame (floats to 3 decimals)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return "&ndash;" if value is None else html.escape(str(value))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
    return (f'<table class="mtarl"><caption>{html.escape(title)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def frame_markdown(frame: pl.DataFrame) -> str:
    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else "-" if value is None else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)
