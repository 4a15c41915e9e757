"""Stage ``evaluate_benchmark``: one benchmark's evaluation tables, cut from its model x task x run evaluation.

Run: ``mtarl evaluate_benchmark --benchmark B --samples-in RUN/samples.parquet --scores-in RUN/scores.parquet
--samples RUN/B/samples.parquet --scores RUN/B/scores.parquet``

``mtarl evaluate`` samples every benchmark of a task in one job (one model load); this local step writes the
per-benchmark files that the analysis reads, at ``results/evaluate/{model}/{task}/{run}/{benchmark}/``:
``samples.parquet`` (the per-sample schema of ``mtarl.scoring``, without the ``benchmark`` column) and
``scores.parquet`` (the rows of that benchmark; columns and metrics in ``mtarl.evaluate``). The manifest is the
evaluation's, with the benchmark added.
"""

from __future__ import annotations

import argparse

import polars as pl

from mtarl import io

USES_TORCH = False  # polars only: `mtarl` skips importing torch for this small local job


def run(benchmark: str, samples_in: str, scores_in: str, samples_path: str, scores_path: str) -> pl.DataFrame:
    record = {**io.read_manifest(scores_in), "benchmark": benchmark}
    samples = pl.read_parquet(samples_in).filter(pl.col("benchmark") == benchmark).drop("benchmark")
    scores = pl.read_parquet(scores_in).filter(pl.col("benchmark") == benchmark)
    if samples.is_empty() or scores.is_empty():
        raise ValueError(f"evaluate_benchmark: no rows of benchmark {benchmark!r} in {samples_in} / {scores_in}")
    io.write_parquet(samples, samples_path, record)
    io.write_parquet(scores, scores_path, record)
    return scores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--samples-in", required=True, help="the model x task x run samples of mtarl evaluate")
    parser.add_argument("--scores-in", required=True, help="the model x task x run scores of mtarl evaluate")
    parser.add_argument("--samples", required=True, help="output: the benchmark's samples")
    parser.add_argument("--scores", required=True, help="output: the benchmark's scores")


def main(args: argparse.Namespace) -> None:
    run(args.benchmark, args.samples_in, args.scores_in, args.samples, args.scores)
