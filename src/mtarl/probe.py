"""Stage ``probe``: a base model's pass@k curve on a task's eval split (the study's alignment measure).

Run: ``mtarl probe --settings JSON --model PATH_OR_ID --model-name M --task T --benchmark B --problems B.parquet
--samples S.parquet --passk P.parquet --metrics M.parquet``

Samples ``n`` completions per problem at the rollout settings (temperature 1, top_p 1, top_k off), verifies them and
writes the per-sample table (schema in ``mtarl.scoring``), the pass@k table
(``k`` int (1, 2, 4, ..., n), ``pass_at_k`` float (unbiased estimator), ``n`` int, ``n_problems`` int,
``model``, ``task``, ``benchmark`` str), and the metrics table (``metric`` pass@k | maj@k | avg@k, ``k``, ``value``,
``ci_low``, ``ci_high`` (bootstrap over problems), ``n``, ``n_problems``, ``model``, ``task``, ``benchmark``).
Per-sample rows are kept so any metric can be recomputed without sampling again.

It also runs the contamination check (``mtarl.contamination``: problem statements cut at ``ratios``, greedy-completed
by the base model, EM and ROUGE-L against the true remainder; one row per problem x ratio) and writes the alignment
verdict of this model x benchmark (``mtarl.alignment``: strong/weak from pass@k, and the paper's partition
contaminated-strong / clean-strong / clean-weak), which the analysis reads.
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from mtarl import alignment, contamination, io, metrics, scoring
from mtarl.prompts import MATH_TEMPLATE
from mtarl.sampling import HFSampler


def problem_statement(prompt: str) -> str:
    """The raw problem: the contamination check feeds no instruction or template (study.md 2.4)."""
    return prompt.removeprefix(MATH_TEMPLATE)


def contamination_check(sampler, problems: pl.DataFrame, settings: dict) -> pl.DataFrame:
    """The per-problem contamination table of ``settings['n_problems']`` problems (all if null)."""
    if not isinstance(sampler, HFSampler):
        raise NotImplementedError("the contamination check runs on the hf backend; set probe.contamination.enabled "
                                  "to false for other backends")
    rows = problems.head(settings["n_problems"]) if settings["n_problems"] else problems
    statements = [(pid, problem_statement(p)) for pid, p in zip(rows["id"], rows["prompt"])]
    complete = contamination.hf_greedy_completer(sampler.model, sampler.tokenizer)
    return contamination.contamination_table(statements, sampler.tokenizer, complete, settings["ratios"])


def alignment_rule(settings: dict) -> alignment.AlignmentRule:
    return alignment.AlignmentRule(k=settings["k"], strong_threshold=settings["strong_threshold"],
                                   contamination_ratio=settings["contamination_ratio"],
                                   rouge_l_threshold=settings["rouge_l_threshold"],
                                   em_threshold=settings["em_threshold"])


def run(settings: dict, model: str, model_name: str, task: str, benchmark: str, problems: str, samples_path: str,
        passk_path: str, metrics_path: str, contamination_path: str, alignment_path: str) -> pl.DataFrame:
    probe, sampling = settings["probe"], settings["sampling"]
    params = scoring.sampling_params(sampling, n=probe["n"], seed=probe["seed"])
    chat = scoring.chat_for(sampling, settings.get("chat"))
    table_of_problems = pl.read_parquet(problems)
    if probe.get("n_problems"):
        table_of_problems = table_of_problems.head(probe["n_problems"])
    sampler = scoring.make_sampler(sampling["backend"], model, max_batch_sequences=sampling["max_batch_sequences"],
                                   chat=chat, dtype=sampling["dtype"])
    started = time.time()
    samples = scoring.sample_and_score(sampler, table_of_problems, params)
    elapsed = time.time() - started
    names = dict(model=pl.lit(model_name), task=pl.lit(task), benchmark=pl.lit(benchmark))
    table = metrics.pass_at_k_table(samples).with_columns(**names)
    full = metrics.probe_metrics_table(samples, n_boot=probe["n_boot"], seed=probe["seed"]).with_columns(**names)
    check = probe["contamination"]
    contaminated = contamination_check(sampler, table_of_problems, check) if check["enabled"] else None
    summary = contamination.summarize_contamination(contaminated).with_columns(
        model=pl.lit(model_name), task=pl.lit(task)) if contaminated is not None else None
    verdict = alignment.alignment_table(table, alignment_rule(probe["alignment"]), summary)
    record = io.manifest("probe", probe["seed"], settings, model=model, model_name=model_name, task=task,
                         benchmark=benchmark, backend=sampling["backend"], sampling=params.to_dict(), chat=chat,
                         wall_seconds=round(elapsed, 1))
    io.write_parquet(samples, samples_path, record)
    io.write_parquet(table, passk_path, record)
    io.write_parquet(full, metrics_path, record)
    empty = pl.DataFrame({"problem_id": [], "ratio": []}, schema={"problem_id": pl.String, "ratio": pl.Float64})
    io.write_parquet((contaminated if contaminated is not None else empty).with_columns(**names),
                     contamination_path, record)
    io.write_parquet(verdict.with_columns(benchmark=pl.lit(benchmark)), alignment_path, record)
    curve = ", ".join(f"pass@{k} {v:.3f}" for k, v in zip(table["k"], table["pass_at_k"]))
    label = verdict["partition"][0] or verdict["alignment"][0]
    print(f"probe: {model_name} x {task}/{benchmark}: {samples.height} samples in {elapsed:.1f}s; {curve}; {label}")
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
    parser.add_argument("--contamination", required=True, help="output parquet of the contamination check")
    parser.add_argument("--alignment", required=True, help="output parquet of the alignment verdict")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.model, args.model_name, args.task, args.benchmark, args.problems, args.samples,
        args.passk, args.metrics, args.contamination, args.alignment)
