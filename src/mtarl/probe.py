"""Stage ``probe``: a base model's pass@k curve on a task's eval split (the study's alignment measure).

Run: ``mtarl probe --settings JSON --model PATH_OR_ID --model-name M --task T --benchmark B --problems B.parquet
--samples S.parquet --passk P.parquet --metrics M.parquet``

Samples ``n`` completions per problem at the rollout settings (temperature 1, top_p 1, top_k off), verifies them and
writes the per-sample table (schema in ``mtarl.scoring``), the pass@k table
(``k`` int (1, 2, 4, ..., n), ``pass_at_k`` float (unbiased estimator), ``n`` int, ``n_problems`` int,
``model``, ``task``, ``benchmark`` str), and the metrics table (``metric`` pass@k | maj@k | avg@k, ``k``, ``value``,
``ci_low``, ``ci_high`` (bootstrap over problems), ``n``, ``n_problems``, ``model``, ``task``, ``benchmark``).
Per-sample rows are kept so any metric can be recomputed without sampling again.
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from mtarl import io, metrics, scoring


def run(settings: dict, model: str, model_name: str, task: str, benchmark: str, problems: str, samples_path: str,
        passk_path: str, metrics_path: str) -> pl.DataFrame:
    probe, sampling = settings["probe"], settings["sampling"]
    params = scoring.sampling_params(sampling, n=probe["n"], seed=probe["seed"])
    started = time.time()
    chat = scoring.chat_for(sampling, settings.get("chat"))
    samples = scoring.score_model(model, problems, sampling, params, probe.get("n_problems"), chat)
    elapsed = time.time() - started
    names = dict(model=pl.lit(model_name), task=pl.lit(task), benchmark=pl.lit(benchmark))
    table = metrics.pass_at_k_table(samples).with_columns(**names)
    full = metrics.probe_metrics_table(samples, n_boot=probe["n_boot"], seed=probe["seed"]).with_columns(**names)
    record = io.manifest("probe", probe["seed"], settings, model=model, model_name=model_name, task=task,
                         backend=sampling["backend"], sampling=params.to_dict(), chat=chat,
                         wall_seconds=round(elapsed, 1))
    io.write_parquet(samples, samples_path, record)
    io.write_parquet(table, passk_path, record)
    io.write_parquet(full, metrics_path, record)
    curve = ", ".join(f"pass@{k} {v:.3f}" for k, v in zip(table["k"], table["pass_at_k"]))
    print(f"probe: {model_name} x {task}/{benchmark}: {samples.height} samples in {elapsed:.1f}s; {curve}")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--model-name", required=True, help="the model's name in config")
    parser.add_argument("--task", required=True, help="the task's name in config")
    parser.add_argument("--benchmark", required=True, help="the benchmark's name in config")
    parser.add_argument("--problems", required=True, help="the benchmark's problem parquet")
    parser.add_argument("--samples", required=True, help="output per-sample parquet")
    parser.add_argument("--passk", required=True, help="output pass@k parquet")
    parser.add_argument("--metrics", required=True, help="output parquet of pass@k, maj@k, avg@k with intervals")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.model, args.model_name, args.task, args.benchmark, args.problems, args.samples,
        args.passk, args.metrics)
