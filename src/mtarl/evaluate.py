"""Stage ``evaluate``: score a base or trained model on a task's eval split with the probe's sampler and verifier.

Run: ``mtarl evaluate --settings JSON --model DIR --model-name M --task T --benchmark B --run RUN
--problems B.parquet --samples S.parquet --scores C.parquet``

``RUN`` is ``base`` or ``<variant>-s<seed>``. Scores schema, one row per metric:
``metric`` str (``avg@k`` or ``pass@k``), ``k`` int, ``value`` float, ``model``, ``task``, ``benchmark``, ``variant`` str,
``seed`` int (null for the base model). avg@k uses all ``n`` samples (k = n); pass@k is given for k = 1, 2, 4, ... n.
"""

from __future__ import annotations

import argparse

import polars as pl

from mtarl import io, metrics, scoring
from mtarl.config import parse_run
from mtarl.modeling import model_revision


def score_table(samples: pl.DataFrame) -> pl.DataFrame:
    n = samples.group_by("problem_id").len()["len"].max()
    passk = metrics.pass_at_k_table(samples)
    rows = [{"metric": f"avg@{n}", "k": n, "value": metrics.avg_at_k(samples)}]
    rows += [{"metric": f"pass@{k}", "k": k, "value": v} for k, v in zip(passk["k"], passk["pass_at_k"])]
    return pl.DataFrame(rows)


def run(settings: dict, model: str, model_name: str, task: str, benchmark: str, run_name: str, problems: str,
        samples_path: str, scores_path: str) -> pl.DataFrame:
    evaluation, sampling = settings["evaluate"], settings["sampling"]
    variant, seed = parse_run(run_name)
    params = scoring.sampling_params(sampling, n=evaluation["n"], seed=evaluation["seed"], top_p=evaluation["top_p"])
    chat = scoring.chat_for(sampling, settings.get("chat"))
    samples = scoring.score_model(model, problems, sampling, params, evaluation.get("n_problems"), chat)
    scores = score_table(samples).with_columns(
        model=pl.lit(model_name), task=pl.lit(task), benchmark=pl.lit(benchmark), variant=pl.lit(variant),
        seed=pl.lit(seed, dtype=pl.Int64),
    )
    record = io.manifest("evaluate", evaluation["seed"], settings, model=model, run=run_name,
                         model_revision=model_revision(model),
                         sampling=params.to_dict(), chat=chat)
    io.write_parquet(samples, samples_path, record)
    io.write_parquet(scores, scores_path, record)
    print(f"evaluate: {model_name} x {task}/{benchmark} [{run_name}]: "
          + ", ".join(f"{m} {v:.3f}" for m, v in zip(scores["metric"], scores["value"])))
    return scores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--benchmark", required=True, help="the benchmark's name in config")
    parser.add_argument("--run", required=True, help="'base' or '<variant>-s<seed>'")
    parser.add_argument("--problems", required=True, help="the benchmark's problem parquet")
    parser.add_argument("--samples", required=True, help="output per-sample parquet")
    parser.add_argument("--scores", required=True, help="output scores parquet")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.model, args.model_name, args.task, args.benchmark, args.run, args.problems, args.samples,
        args.scores)
