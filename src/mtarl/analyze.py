"""Stage ``analyze``: the study's answer: tables, figures, predictions and reports, from the stored samples.

Run: ``mtarl analyze --settings JSON --passk P.parquet ... --alignment A.parquet ... --probe-metrics M.parquet ...
--scores S.parquet ... --samples E.parquet ... --train-metrics metrics.jsonl ... --data train.parquet ...
--out results/analysis``

Writes into ``--out`` (the names are fixed; ``OUTPUTS`` lists them):

- ``summary.parquet`` (one row per trained run x benchmark, below), ``alignment.parquet`` (the probes' verdicts),
  ``estimates.parquet`` (``mtarl.analysis.cells``: per cell x variant, mean over seeds with 95% two-level bootstrap
  intervals), ``profiles.parquet`` (the base models' probe profile per cell), ``predictions.parquet``
  (``mtarl.analysis.predictions``: one row per claim with its verdict), ``diagnostics.parquet``
  (``mtarl.analysis.training.diagnostics``: per cell x variant, how the latent behaviours moved during training);
- ``tables/*.html``: the paper's tables (``mtarl.analysis.tables``), the base models, the predictions;
- ``passk.png`` (base models' pass@k), ``figures/passk_trained.png``, ``figures/alignment_gain_passk.png``,
  ``figures/alignment_gain_majgap.png``, ``training/<model>.<task>.png`` (``mtarl.analysis.figures``);
- ``summary.md`` for terminals and ``report.html``, a self-contained page with every table and figure.

``summary.parquet``: one row per (model, task, variant, seed, benchmark) of a trained run, with
``metric`` (the score, e.g. ``avg@16``), ``base_score``, ``trained_score``, ``delta`` (trained - base),
``base_pass_at_1``, ``base_pass_at_k``, ``alignment_k`` (the k of ``base_pass_at_k``), ``alignment`` (strong/weak)
and ``partition`` (contaminated_strong / clean_strong / clean_weak / contaminated_weak, null without the contamination
check), per benchmark, from the probes' verdicts (``mtarl.alignment``); ``alignment.parquet`` gathers those. In the miniature each task has
one benchmark, named like the task; in the paper study task ``math`` has MATH500, AIME24 and AMC23.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mtarl import io
from mtarl.analysis import cells as cell_estimates
from mtarl.analysis import figures, page, predictions, tables, training

USES_TORCH = False  # a table-only stage: mtarl.cli skips importing torch

KEYS = list(cell_estimates.KEYS)


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


def summary_markdown(summary: pl.DataFrame, passk: pl.DataFrame, alignment: pl.DataFrame, figure: str,
                     study_tables: str, prediction_table: pl.DataFrame, diagnostics: pl.DataFrame) -> str:
    curves = passk.pivot(on="k", index=KEYS, values="pass_at_k").sort(*KEYS)
    curves = curves.rename({c: f"pass@{c}" for c in curves.columns if c not in KEYS})
    verdicts = alignment.select(*KEYS, "alignment_k", "pass_at_k", "alignment", "mean_em", "mean_rouge_l",
                                "partition").sort(*KEYS)
    per_variant = (summary.group_by("model", "task", "benchmark", "variant", "alignment")
                   .agg(seeds=pl.len(), mean_delta=pl.col("delta").mean())
                   .sort("model", "task", "benchmark", "variant"))
    return "\n\n".join([
        "# mtarl study summary",
        "## Predictions (study.md section 10), verdicts on this run's data",
        predictions.to_markdown(prediction_table),
        "## Mechanism diagnostics (per cell x variant, means over seeds; first and last 10 steps)",
        tables.frame_markdown(diagnostics),
        study_tables,
        "## Base models: pass@k on each benchmark (alignment)",
        tables.frame_markdown(curves),
        f"![pass@k curves]({figure})",
        "## Alignment verdicts and contamination check",
        tables.frame_markdown(verdicts),
        "## Mean delta per variant (trained - base, over seeds)",
        tables.frame_markdown(per_variant),
        "## Training runs: score before and after RL",
        tables.frame_markdown(summary.drop("alignment_k", "partition")),
    ]) + "\n"


OUTPUTS = {
    "summary": "summary.parquet", "alignment": "alignment.parquet", "estimates": "estimates.parquet",
    "profiles": "profiles.parquet", "predictions": "predictions.parquet", "diagnostics": "diagnostics.parquet",
    "diagnostics_table": "tables/diagnostics.html", "markdown": "summary.md",
    "page": "report.html", "base_passk": "passk.png", "passk_trained": "figures/passk_trained.png",
    "gain_passk": "figures/alignment_gain_passk.png", "gain_majgap": "figures/alignment_gain_majgap.png",
    "base_table": "tables/base_models.html", "predictions_table": "tables/predictions.html",
    "zhu_table": "tables/zhu_vs_masked.html", "data_table": "tables/data.html", "training": "training",
    **{spec.name: f"tables/{spec.name}.html" for spec in tables.TABLES},
}


@dataclass
class Inputs:
    passk: list[str]
    alignment: list[str]
    probe_metrics: list[str]
    scores: list[str]
    samples: list[str]
    train_metrics: list[str]
    data: list[str] = field(default_factory=list)


def read_all(paths: list[str]) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")


# The captions of the report's tables and figures: the Snakemake report (report() in workflow/rules/analyze.smk) and
# the static page quote the same files, which ship with the package so that no checkout path enters a job's inputs.
CAPTIONS = Path(__file__).resolve().parent / "analysis" / "captions"


def run(settings: dict, inputs: Inputs, out_dir: str, captions: str | Path = CAPTIONS) -> dict[str, pl.DataFrame]:
    analysis = settings["analyze"]
    n_boot, seed, dpi = analysis.get("n_boot", 1000), analysis.get("seed", 0), analysis["dpi"]
    out = {name: str(Path(out_dir) / rel) for name, rel in OUTPUTS.items()}
    passk, alignment = read_all(inputs.passk), read_all(inputs.alignment)
    probe_metrics, scores = read_all(inputs.probe_metrics), read_all(inputs.scores)
    order = benchmark_order(settings)

    summary = summarize(passk, scores, alignment)
    cells = cell_estimates.load_cells(cell_estimates.read_evaluations(inputs.scores, inputs.samples))
    estimates, gains = cell_estimates.estimate(cells, n_boot, seed)
    profiles = cell_estimates.base_profiles(alignment, probe_metrics)
    logs = training.read_training_logs(inputs.train_metrics)
    evidence = predictions.Evidence(
        gains=gains, point={tuple(r[:4]): r[4] for r in estimates.select(*KEYS, "variant", "gain").iter_rows()},
        seeds={tuple(r[:4]): r[4] for r in estimates.select(*KEYS, "variant", "n_seeds").iter_rows()},
        profiles=profiles, entropy=training.mean_replicates(logs, "entropy", n_boot, seed), n_boot=n_boot, seed=seed)
    verdicts = predictions.evaluate_predictions(evidence)

    write_figures(out, probe_metrics, cells, estimates, profiles, logs, n_boot, seed, dpi)
    diagnostics = training.diagnostics(logs)
    fragments = write_tables(out, estimates, gains, profiles, verdicts, order, diagnostics)
    fragments["data_table"] = tables.frame_html(
        tables.data_table([io.read_manifest(path) for path in inputs.data]), "Problems per task split: read, kept, "
        "skipped by reason, unscorable golds")
    io.write_text(page.standalone(fragments["data_table"], "data"), out["data_table"])
    record = io.manifest("analyze", seed, settings, rows=summary.height)
    for name, frame in (("alignment", alignment), ("estimates", estimates), ("profiles", profiles),
                        ("predictions", verdicts), ("diagnostics", diagnostics), ("summary", summary)):
        io.write_parquet(frame, out[name], record)
    io.write_text(summary_markdown(summary, passk, alignment, OUTPUTS["base_passk"], fragments["markdown"],
                                   verdicts, diagnostics), out["markdown"])
    io.write_text(static_page(settings, out, fragments, captions), out["page"])
    print(f"analyze: {estimates.height} cell x variant estimates, {verdicts['id'].n_unique()} predictions "
          f"({', '.join(f'{k}: {v}' for k, v in verdict_counts(verdicts).items())}) -> {out_dir}")
    return {"summary": summary, "estimates": estimates, "predictions": verdicts, "profiles": profiles}


def benchmark_order(settings: dict) -> list[tuple[str, str]] | None:
    """(task, benchmark) in configuration order, when the settings list them."""
    order = settings.get("benchmark_order")
    return [tuple(pair) for pair in order] if order else None


def verdict_counts(verdicts: pl.DataFrame) -> dict[str, int]:
    per_prediction = verdicts.unique("id").group_by("prediction_verdict").len()
    return dict(per_prediction.sort("prediction_verdict").iter_rows())


def write_figures(out: dict, probe_metrics, cells, estimates, profiles, logs, n_boot: int, seed: int,
                  dpi: int) -> None:
    figures.base_passk(probe_metrics, out["base_passk"], dpi)
    figures.passk_trained(cell_estimates.passk_curves(cells, n_boot, seed), out["passk_trained"], dpi)
    figures.alignment_gain(estimates, profiles, "base_pass_at_k", "base pass@k at the alignment k",
                           out["gain_passk"], dpi)
    figures.alignment_gain(estimates, profiles, "maj_gap", "base maj@k - pass@1", out["gain_majgap"], dpi)
    with io.atomic_dir(out["training"]) as tmp:
        for model, task in logs.select("model", "task").unique().sort("model", "task").rows():
            figures.training_curves(logs, model, task, str(Path(tmp) / f"{model}.{task}.png"), dpi)


def write_tables(out: dict, estimates, gains, profiles, verdicts, order, diagnostics) -> dict[str, str]:
    """Every table as its own HTML page; returns the HTML fragments (for the static page) and, under "markdown",
    the paper tables in markdown (for the terminal summary)."""
    cols = tables.columns(estimates, order)
    fragments, markdown = {}, []
    for spec in tables.TABLES:
        rows = tables.table_rows(estimates, spec)
        fragments[spec.name] = tables.to_html(rows, cols, spec.title)
        markdown += [f"## {spec.title}", tables.to_markdown(rows, cols)]
    fragments["base_table"] = tables.frame_html(profiles, "Base models: probe profile and alignment verdict per cell")
    fragments["zhu_table"] = tables.frame_html(
        tables.zhu_vs_masked(estimates, gains), "Zhu et al. variants minus the paper's masked NSR / PSR (gain "
        "difference)")
    fragments["predictions_table"] = predictions.to_html(verdicts)
    fragments["diagnostics_table"] = tables.frame_html(
        diagnostics, "Mechanism diagnostics: latent behaviours and accuracy at the start and end of training, clip "
        "percentage, entropy")
    for name, fragment in fragments.items():
        io.write_text(page.standalone(fragment, name), out[name])
    fragments["markdown"] = "\n\n".join(markdown)
    return fragments


def static_page(settings: dict, out: dict, fragments: dict[str, str], captions: str | None) -> str:
    def caption(name: str) -> str | None:
        return str(Path(captions) / f"{name}.rst") if captions else None

    def table(name: str, title: str) -> page.Item:
        return page.Item(title, caption(name), table_html=fragments[name])

    def image(name: str, title: str, path: str | None = None) -> page.Item:
        return page.Item(title, caption(name), image=path or out[name])

    training_dir = Path(out["training"])
    sections = [
        page.Section("Predictions", [table("predictions_table", "Predictions and verdicts"),
                                     image("gain_passk", "Gain vs base pass@k"),
                                     image("gain_majgap", "Gain vs base maj@k - pass@1"),
                                     table("diagnostics_table", "Mechanism diagnostics")]),
        page.Section("Base models and alignment", [image("base_passk", "Base models: pass@k"),
                                                   table("base_table", "Base models")]),
        page.Section("Data", [table("data_table", "Problems per task split")]),
        page.Section("RQ1 rewards", [table("rq1_rewards", "Reward signal"), table("self_rewards", "Self-rewards"),
                                     image("passk_trained", "pass@k before and after training")]),
        page.Section("RQ2 one-shot", [table("one_shot", "One-shot RL")]),
        page.Section("RQ3 negative/positive samples", [table("rq3", "NSR, PSR and Zhu et al."),
                                                       table("zhu_table", "Zhu et al. vs masked")]),
        page.Section("Training dynamics", [image("training", path.stem.replace(".", " on "), str(path))
                                           for path in sorted(training_dir.glob("*.png"))]),
    ]
    intro = caption("workflow")
    return page.render(f"mtarl: {settings.get('study', 'study')}", page.caption_html(intro), sections)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--passk", nargs="+", required=True, help="probe pass@k parquet files")
    parser.add_argument("--alignment", nargs="+", required=True, help="probe alignment verdict parquet files")
    parser.add_argument("--probe-metrics", nargs="+", required=True, help="probe metrics parquet files")
    parser.add_argument("--scores", nargs="+", required=True, help="evaluate score parquet files")
    parser.add_argument("--samples", nargs="+", required=True,
                        help="evaluate sample parquet files, in the order of --scores")
    parser.add_argument("--train-metrics", nargs="*", default=[], help="training runs' metrics.jsonl files")
    parser.add_argument("--data", nargs="*", default=[], help="the problem tables (their manifests: rows skipped)")
    parser.add_argument("--out", required=True, help="output folder (results/analysis)")


def main(args: argparse.Namespace) -> None:
    inputs = Inputs(args.passk, args.alignment, args.probe_metrics, args.scores, args.samples, args.train_metrics,
                    args.data)
    run(args.settings, inputs, args.out)
