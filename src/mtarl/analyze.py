"""Stage ``analyze``: aggregate probes and evaluations into the study's summary table, figure and report.

Run: ``mtarl analyze --settings JSON --passk P1.parquet ... --alignment A1.parquet ... --scores S1.parquet ...
--summary summary.parquet --alignment-out alignment.parquet --figure passk.png --report summary.md``

``summary.parquet``: one row per (model, task, variant, seed, benchmark) of a trained run, with
``metric`` (the score, e.g. ``avg@16``), ``base_score``, ``trained_score``, ``delta`` (trained - base),
``base_pass_at_1``, ``base_pass_at_k``, ``alignment_k`` (the k of ``base_pass_at_k``), ``alignment`` (strong/weak)
and ``partition`` (contaminated_strong / clean_strong / clean_weak / contaminated_weak, null without the contamination
check), per benchmark, from the probes' verdicts (``mtarl.alignment``); ``alignment.parquet`` gathers those. In the miniature each task has
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


def base_columns(passk: pl.DataFrame, alignment: pl.DataFrame) -> pl.DataFrame:
    """Per (model, task, benchmark): the base model's pass@1 and the probe's alignment verdict."""
    pass1 = passk.filter(pl.col("k") == 1).select(*KEYS, base_pass_at_1="pass_at_k")
    verdict = alignment.select(*KEYS, "alignment_k", "alignment", "partition", base_pass_at_k="pass_at_k")
    return pass1.join(verdict, on=KEYS, how="left")


def summarize(passk: pl.DataFrame, scores: pl.DataFrame, alignment: pl.DataFrame) -> pl.DataFrame:
    avg = scores.filter(pl.col("metric").str.starts_with("avg@"))
    base = avg.filter(pl.col("variant") == "base").select(*KEYS, "metric", base_score="value")
    trained = avg.filter(pl.col("variant") != "base").select(*KEYS, "variant", "seed", "metric",
                                                             trained_score="value")
    missing = trained.join(base, on=[*KEYS, "metric"], how="anti")
    if not missing.is_empty():
        raise ValueError(f"no base-model evaluation for: {missing.select(*KEYS).unique().rows()}")
    return (
        trained.join(base, on=[*KEYS, "metric"])
        .join(base_columns(passk, alignment), on=KEYS, how="left")
        .with_columns(delta=pl.col("trained_score") - pl.col("base_score"))
        .select("model", "task", "variant", "seed", "benchmark", "metric", "base_score", "trained_score", "delta",
                "base_pass_at_1", "base_pass_at_k", "alignment_k", "alignment", "partition")
        .sort("model", "task", "benchmark", "variant", "seed")
    )


def plot_passk(passk: pl.DataFrame, path: str, dpi: int) -> None:
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
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def markdown_table(df: pl.DataFrame) -> str:
    def cell(v) -> str:
        return f"{v:+.3f}" if isinstance(v, float) and v < 0 else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines)


def report(summary: pl.DataFrame, passk: pl.DataFrame, alignment: pl.DataFrame, figure: str) -> str:
    curves = passk.pivot(on="k", index=KEYS, values="pass_at_k").sort(*KEYS)
    curves = curves.rename({c: f"pass@{c}" for c in curves.columns if c not in KEYS})
    verdicts = alignment.select(*KEYS, "alignment_k", "pass_at_k", "alignment", "mean_em", "mean_rouge_l",
                                "partition").sort(*KEYS)
    per_variant = (summary.group_by("model", "task", "benchmark", "variant", "alignment")
                   .agg(seeds=pl.len(), mean_delta=pl.col("delta").mean())
                   .sort("model", "task", "benchmark", "variant"))
    return "\n\n".join([
        "# mtarl study summary",
        "## Base models: pass@k on each benchmark (alignment)",
        markdown_table(curves),
        f"![pass@k curves]({figure})",
        "## Alignment verdicts and contamination check",
        markdown_table(verdicts),
        "## Mean delta per variant (trained - base, over seeds)",
        markdown_table(per_variant),
        "## Training runs: score before and after RL",
        markdown_table(summary.drop("alignment_k", "partition")),
    ]) + "\n"


def run(settings: dict, passk_paths: list[str], alignment_paths: list[str], score_paths: list[str],
        summary_path: str, alignment_out: str, figure_path: str, report_path: str) -> pl.DataFrame:
    analysis = settings["analyze"]
    passk = pl.concat([pl.read_parquet(p) for p in passk_paths])
    alignment = pl.concat([pl.read_parquet(p) for p in alignment_paths])
    scores = pl.concat([pl.read_parquet(p) for p in score_paths])
    summary = summarize(passk, scores, alignment)
    plot_passk(passk, figure_path, analysis["dpi"])
    io.write_text(report(summary, passk, alignment, figure_path.rsplit("/", 1)[-1]), report_path)
    record = io.manifest("analyze", None, settings, rows=summary.height)
    io.write_parquet(alignment, alignment_out, record)
    io.write_parquet(summary, summary_path, record)
    print(f"analyze: {summary.height} training runs summarised -> {summary_path}")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--passk", nargs="+", required=True, help="probe pass@k parquet files")
    parser.add_argument("--alignment", nargs="+", required=True, help="probe alignment verdict parquet files")
    parser.add_argument("--scores", nargs="+", required=True, help="evaluate score parquet files")
    parser.add_argument("--summary", required=True, help="output summary parquet")
    parser.add_argument("--alignment-out", required=True, help="output parquet of all alignment verdicts")
    parser.add_argument("--figure", required=True, help="output PNG of the pass@k curves")
    parser.add_argument("--report", required=True, help="output markdown summary")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.passk, args.alignment, args.scores, args.summary, args.alignment_out, args.figure,
        args.report)
