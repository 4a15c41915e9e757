"""Stage ``evaluate``: score a base or trained model on every benchmark of its task, loading the model once.

Run: ``mtarl evaluate --settings JSON --models DIR... --model-name M --task T --runs RUN... --benchmarks B1 B2 ...
--problems B1.parquet B2.parquet ... [--train-metrics metrics.jsonl...] --samples S.parquet --greedy G.parquet
--scores C.parquet``

One job per model x task x job: the base model (``RUN`` ``base``), or the trained runs of a job (``<variant>-s<seed>``:
every seed of a variant under ``batch_seeds``, else one), or, under ``batch_evaluation``, the whole cell (job
``cell``: base and every trained run); one model directory per run and one training log per trained run, in order.
Each model's sampler (vLLM with a 7-8B model in the paper study) starts once for all the task's benchmarks; the job
writes one table of each kind for all its runs and benchmarks (``results/evaluate/{model}/{task}/{job}/``, with
``benchmark``, ``variant`` and ``seed`` columns; the analysis reads them):

- ``samples.parquet``: the per-sample table of ``mtarl.scoring`` for every benchmark (``evaluate.n`` samples per
  problem at T = ``sampling.temperature``, top_p = ``evaluate.top_p``), plus ``benchmark``, ``variant`` and ``seed``
  (null for the base model);
- ``greedy.parquet``: one greedy (T = 0) completion per problem, same columns;
- ``scores.parquet``, one row per benchmark and metric (the final-number protocol, study.md 8):
  ``metric`` str, ``k`` int, ``value`` float, ``model``, ``task``, ``benchmark``, ``variant`` str, ``seed`` int
  (null for the base model), ``checkpoint`` str (null except on ``best_val`` rows). Problems whose gold cannot be scored are in
  no metric (``metrics.drop_unscorable``; their count per benchmark is the manifest's ``unscorable_problems``), and
  problems whose prompt exceeds ``sampling.max_prompt_tokens`` are not sampled (``overlong_problems``). Metrics:
  - ``avg@n`` (k = n): mean accuracy of all n samples, the last checkpoint's headline number;
  - ``pass@k`` for k = 1, 2, 4, ... n (unbiased estimator);
  - ``greedy`` (k = 1): accuracy of the greedy completions (secondary column);
  - ``best_val@m`` (k = m = ``val_n``), trained runs only, on the benchmark that in-training validation samples (the
    task's first): the best ``val/avg@m`` of the run's validations, on its first ``val_problems`` problems, and
    ``checkpoint`` = ``step-<s>``, the optimizer step whose policy scored it (labelled as such, study.md 8: "report the
    best checkpoint separately").
"""

from __future__ import annotations

import argparse

import polars as pl

from mtarl import io, metrics, scoring
from mtarl.config import parse_run
from mtarl.modeling import model_revision

SCORES_SCHEMA = {"metric": pl.String, "k": pl.Int64, "value": pl.Float64, "checkpoint": pl.String}


def score_table(samples: pl.DataFrame, greedy: pl.DataFrame | None = None) -> pl.DataFrame:
    """avg@n and pass@k of one benchmark's samples, and its greedy accuracy when ``greedy`` samples are given."""
    n = samples.group_by("problem_id").len()["len"].max()
    passk = metrics.pass_at_k_table(samples)
    rows = [{"metric": f"avg@{n}", "k": n, "value": metrics.avg_at_k(samples)}]
    rows += [{"metric": f"pass@{k}", "k": k, "value": v} for k, v in zip(passk["k"], passk["pass_at_k"])]
    if greedy is not None:
        rows.append({"metric": "greedy", "k": 1, "value": metrics.avg_at_k(greedy)})
    return pl.DataFrame(rows, schema=SCORES_SCHEMA)


def best_validation(records: list[dict]) -> dict | None:
    """The ``best_val@m`` row of a training log (``metrics.jsonl``): the highest ``val/avg@m`` and its step (the
    first such step on ties); None when the run never validated."""
    values = [(r["step"], key.split("@")[1], r[key]) for r in records for key in r if key.startswith("val/avg@")]
    if not values:
        return None
    step, m, value = max(values, key=lambda v: (v[2], -v[0]))
    return {"metric": f"best_val@{m}", "k": int(m), "value": float(value), "checkpoint": f"step-{step}"}


def run_columns(run_name: str) -> dict:
    """The ``variant`` and ``seed`` columns that name a run in every table (seed null for the base model)."""
    variant, seed = parse_run(run_name)
    return {"variant": pl.lit(variant), "seed": pl.lit(seed, dtype=pl.Int64)}


def evaluate_model(settings: dict, model: str, run_name: str, benchmarks: list[str], problems: list[str],
                   train_metrics: str | None) -> tuple[dict, dict]:
    """One model on every benchmark: its (samples, greedy, scores) tables, each with ``benchmark``, ``variant`` and
    ``seed`` columns, and what the manifest records of it."""
    evaluation, sampling = settings["evaluate"], settings["sampling"]
    params = scoring.sampling_params(sampling, n=evaluation["n"], seed=evaluation["seed"], top_p=evaluation["top_p"])
    greedy_params = scoring.sampling_params(sampling, n=1, seed=evaluation["seed"], temperature=0.0)
    chat = scoring.chat_for(sampling, settings.get("chat"))
    sampler = scoring.make_sampler(sampling["backend"], model, max_batch_sequences=sampling["max_batch_sequences"],
                                   chat=chat, dtype=sampling["dtype"])
    tables = {"samples": [], "greedy": [], "scores": []}
    unscorable, overlong = {}, {}
    for benchmark, path in zip(benchmarks, problems, strict=True):
        table = pl.read_parquet(path)
        if evaluation.get("n_problems"):
            table = table.head(evaluation["n_problems"])
        table, overlong[benchmark] = scoring.drop_overlong(table, sampler.tokenizer, chat,
                                                           sampling.get("max_prompt_tokens"))
        samples = scoring.sample_and_score(sampler, table, params)
        greedy_samples = scoring.sample_and_score(sampler, table, greedy_params)
        scored, unscorable[benchmark] = metrics.drop_unscorable(samples)
        scored_greedy, _ = metrics.drop_unscorable(greedy_samples)
        for kind, frame in (("samples", samples), ("greedy", greedy_samples),
                            ("scores", score_table(scored, scored_greedy))):
            tables[kind].append(frame.with_columns(benchmark=pl.lit(benchmark)))
    best = best_validation(io.read_jsonl(train_metrics)) if train_metrics else None
    if best is not None:  # in-training validation samples the task's first benchmark (mtarl.train)
        tables["scores"].append(pl.DataFrame([best], schema=SCORES_SCHEMA).with_columns(benchmark=pl.lit(benchmarks[0])))
    tables = {kind: pl.concat(frames).with_columns(**run_columns(run_name)) for kind, frames in tables.items()}
    record = {"model": model, "model_revision": model_revision(model), "sampling": params.to_dict(),
              "greedy_sampling": greedy_params.to_dict(), "chat": chat,
              "backend": getattr(sampler, "name", sampling["backend"]), "unscorable_problems": unscorable,
              "overlong_problems": overlong}
    return tables, record


def run(settings: dict, models: list[str], model_name: str, task: str, run_names: list[str], benchmarks: list[str],
        problems: list[str], samples_path: str, greedy_path: str, scores_path: str,
        train_metrics: list[str] | None = None) -> pl.DataFrame:
    if len(benchmarks) != len(problems):
        raise ValueError(f"evaluate: {len(benchmarks)} benchmarks but {len(problems)} problem tables")
    trained_runs = [run_name for run_name in run_names if run_name != "base"]
    train_metrics = train_metrics or [None] * len(trained_runs)
    if not (len(models) == len(run_names) and len(train_metrics) == len(trained_runs)):
        raise ValueError(f"evaluate: {len(run_names)} runs {run_names} ({len(trained_runs)} trained) but "
                         f"{len(models)} models and {len(train_metrics)} training logs")
    logs = dict(zip(trained_runs, train_metrics))
    per_model = [evaluate_model(settings, model, run_name, benchmarks, problems, logs.get(run_name))
                 for model, run_name in zip(models, run_names)]
    tables = {kind: pl.concat([model_tables[kind] for model_tables, _ in per_model])
              for kind in ("samples", "greedy", "scores")}
    runs = {run_name: record for run_name, (_, record) in zip(run_names, per_model)}
    scores = tables["scores"].with_columns(model=pl.lit(model_name), task=pl.lit(task)).select(
        "metric", "k", "value", "model", "task", "benchmark", "variant", "seed", "checkpoint")
    record = io.manifest("evaluate", settings["evaluate"]["seed"], settings, benchmarks=benchmarks, runs=runs)
    io.write_parquet(tables["samples"], samples_path, record)
    io.write_parquet(tables["greedy"], greedy_path, record)
    io.write_parquet(scores, scores_path, record)
    for (variant, seed, benchmark), rows in scores.group_by("variant", "seed", "benchmark", maintain_order=True):
        print(f"evaluate: {model_name} x {task}/{benchmark} [{variant} seed {seed}]: "
              + ", ".join(f"{m} {v:.3f}" for m, v in zip(rows["metric"], rows["value"])))
    return scores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", required=True, help="model directories or hub ids, one per run")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--runs", nargs="+", required=True, help="'base' or '<variant>-s<seed>' of each model")
    parser.add_argument("--benchmarks", nargs="+", required=True, help="the task's benchmark names, in config order")
    parser.add_argument("--problems", nargs="+", required=True, help="each benchmark's problem parquet, same order")
    parser.add_argument("--train-metrics", nargs="+",
                        help="each trained run's metrics.jsonl (best in-training validation), in --runs order, "
                             "none for base")
    parser.add_argument("--samples", required=True, help="output per-sample parquet of every benchmark")
    parser.add_argument("--greedy", required=True, help="output greedy per-sample parquet of every benchmark")
    parser.add_argument("--scores", required=True, help="output scores parquet of every benchmark")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.models, args.model_name, args.task, args.runs, args.benchmarks, args.problems,
        args.samples, args.greedy, args.scores, args.train_metrics)
