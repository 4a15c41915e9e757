"""Stage ``analyze``: aggregate probes and evaluations into the study's summary table, figure and report.

Run: ``mtarl analyze --settings JSON --passk P1.parquet ... --scores S1.parquet ... --summary summary.parquet
--figure passk.png --report summary.md``

``summary.parquet``: one row per (model, task, variant, seed, benchmark) of a trained run, with
``metric`` (the score, e.g. ``avg@16``), ``base_score``, ``trained_score``, ``delta`` (trained - base),
``base_pass_at_1``, ``base_pass_at_k``, ``alignment_k`` (the k of ``base_pass_at_k``) and ``alignment``
(``strong`` if ``base_pass_at_k >= strong_threshold``, else ``weak``), per benchmark. In the miniature each task has
one benchmark, named like the task; in the paper study task ``math`` has MATH500, AIME24 and AMC23.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")  # headless: no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from mtarl import io  # noqa: E402


KEYS = ["model", "task", "benchmark"]


def base_alignment(passk: pl.DataFrame, k: int, threshold: float) -> pl.DataFrame:
    """Per (model, task, benchmark): the base model's pass@1, pass@k and the strong/weak label."""
    available = passk.group_by("model", "task", "benchmark").agg(kmax=pl.col("k").max())
    if (available["kmax"] < k).any():
        raise ValueError(f"analyze.alignment_k = {k} exceeds the probe's n for some model x task; lower it or raise probe.n")
    wide = passk.filter(pl.col("k").is_in([1, k])).pivot(on="k", index=KEYS, values="pass_at_k")
    return wide.select(
        *KEYS,
        base_pass_at_1=pl.col("1"),
        base_pass_at_k=pl.col(str(k)),
        alignment_k=pl.lit(k),
        alignment=pl.when(pl.col(str(k)) >= threshold).then(pl.lit("strong")).otherwise(pl.lit("weak")),
    )


def summarize(passk: pl.DataFrame, scores: pl.DataFrame, k: int, threshold: float) -> pl.DataFrame:
    avg = scores.filter(pl.col("metric").str.starts_with("avg@"))
    base = avg.filter(pl.col("variant") == "base").select(*KEYS, "metric", base_score="value")
    trained = avg.filter(pl.col("variant") != "base").select(*KEYS, "variant", "seed", "metric",
                                                             trained_score="value")
    missing = trained.join(base, on=[*KEYS, "metric"], how="anti")
    if not missing.is_empty():
        raise ValueError(f"no base-model evaluation for: {missing.select(*KEYS).unique().rows()}")
    return (
        trained.join(base, on=[*KEYS, "metric"])
        .join(base_alignment(passk, k, threshold), on=KEYS, how="left")
        .with_columns(delta=pl.col("trained_score") - pl.col("base_score"))
        .select("model", "task", "variant", "seed", "benchmark", "metric", "base_score", "trained_score", "delta",
                "base_pass_at_1", "base_pass_at_k", "alignment_k", "alignment")
        .sort("model", "task", "benchmark", "variant", "seed")
    )


def plot_passk(passk: pl.DataFrame, path: str) -> None:
    panels = passk.select("task", "benchmark").unique().sort("task", "benchmark").rows()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (task, benchmark) in zip(axes[0], panels):
        for model in passk["model"].unique().sort().to_list():
            curve = passk.filter((pl.col("benchmark") == benchmark) & (pl.col("task") == task)
                                 & (pl.col("model") == model)).sort("k")
            ax.plot(curve["k"], curve["pass_at_k"], marker="o", label=model)
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        ax.set_title(f"base models on {benchmark}" if benchmark == task else f"base models on {task}/{benchmark}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def markdown_table(df: pl.DataFrame) -> str:
    def cell(v) -> str:
        return f"{v:+.3f}" if isinstance(v, float) and v < 0 else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines)


def report(summary: pl.DataFrame, passk: pl.DataFrame, figure: str) -> str:
    curves = passk.pivot(on="k", index=KEYS, values="pass_at_k").sort(*KEYS)
    curves = curves.rename({c: f"pass@{c}" for c in curves.columns if c not in KEYS})
    return "\n\n".join([
        "# mtarl study summary",
        "## Base models: pass@k on each task's eval split (alignment)",
        markdown_table(curves),
        f"![pass@k curves]({figure})",
        "## Training runs: score before and after RL",
        markdown_table(summary.drop("alignment_k")),
    ]) + "\n"


def run(settings: dict, passk_paths: list[str], score_paths: list[str], summary_path: str, figure_path: str,
        report_path: str) -> pl.DataFrame:
    analysis = settings["analyze"]
    passk = pl.concat([pl.read_parquet(p) for p in passk_paths])
    scores = pl.concat([pl.read_parquet(p) for p in score_paths])
    summary = summarize(passk, scores, analysis["alignment_k"], analysis["strong_threshold"])
    plot_passk(passk, figure_path)
    io.write_text(report(summary, passk, figure_path.rsplit("/", 1)[-1]), report_path)
    io.write_parquet(summary, summary_path, io.manifest("analyze", None, settings, rows=summary.height))
    print(f"analyze: {summary.height} training runs summarised -> {summary_path}")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--passk", nargs="+", required=True, help="probe pass@k parquet files")
    parser.add_argument("--scores", nargs="+", required=True, help="evaluate score parquet files")
    parser.add_argument("--summary", required=True, help="output summary parquet")
    parser.add_argument("--figure", required=True, help="output PNG of the pass@k curves")
    parser.add_argument("--report", required=True, help="output markdown summary")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.passk, args.scores, args.summary, args.figure, args.report)
