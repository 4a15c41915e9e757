"""Stage ``evaluate``: score a base or trained model on every benchmark of its task, loading the model once.

Run: ``mtarl evaluate --settings JSON --model DIR --model-name M --task T --run RUN --benchmarks B1 B2 ...
--problems B1.parquet B2.parquet ... [--train-metrics metrics.jsonl] --samples S.parquet --greedy G.parquet
--scores C.parquet``

One job per model x task x run (``RUN`` is ``base`` or ``<variant>-s<seed>``): the sampler (vLLM with a 7-8B model in
the paper study) starts once for all the task's benchmarks, and writes one table of each kind for all of them
(``results/evaluate/{model}/{task}/{run}/``, with a ``benchmark`` column; the analysis reads them):

- ``samples.parquet``: the per-sample table of ``mtarl.scoring`` for every benchmark (``evaluate.n`` samples per
  problem at T = ``sampling.temperature``, top_p = ``evaluate.top_p``), plus ``benchmark``;
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


def run(settings: dict, model: str, model_name: str, task: str, run_name: str, benchmarks: list[str],
        problems: list[str], samples_path: str, greedy_path: str, scores_path: str,
        train_metrics: str | None = None) -> pl.DataFrame:
    if len(benchmarks) != len(problems):
        raise ValueError(f"evaluate: {len(benchmarks)} benchmarks but {len(problems)} problem tables")
    evaluation, sampling = settings["evaluate"], settings["sampling"]
    variant, seed = parse_run(run_name)
    params = scoring.sampling_params(sampling, n=evaluation["n"], seed=evaluation["seed"], top_p=evaluation["top_p"])
    greedy_params = scoring.sampling_params(sampling, n=1, seed=evaluation["seed"], temperature=0.0)
    chat = scoring.chat_for(sampling, settings.get("chat"))
    sampler = scoring.make_sampler(sampling["backend"], model, max_batch_sequences=sampling["max_batch_sequences"],
                                   chat=chat, dtype=sampling["dtype"])
    sampled, greedy, scores, unscorable, overlong = [], [], [], {}, {}
    for benchmark, path in zip(benchmarks, problems, strict=True):
        table = pl.read_parquet(path)
        if evaluation.get("n_problems"):
            table = table.head(evaluation["n_problems"])
        table, overlong[benchmark] = scoring.drop_overlong(table, sampler.tokenizer, chat,
                                                           sampling.get("max_prompt_tokens"))
        samples = scoring.sample_and_score(sampler, table, params)
        greedy_samples = scoring.sample_and_score(sampler, table, greedy_params)
        sampled.append(samples.with_columns(benchmark=pl.lit(benchmark)))
        greedy.append(greedy_samples.with_columns(benchmark=pl.lit(benchmark)))
        scored, unscorable[benchmark] = metrics.drop_unscorable(samples)
        scored_greedy, _ = metrics.drop_unscorable(greedy_samples)
        scores.append(score_table(scored, scored_greedy).with_columns(benchmark=pl.lit(benchmark)))
    best = best_validation(io.read_jsonl(train_metrics)) if train_metrics else None
    if best is not None:  # in-training validation samples the task's first benchmark (mtarl.train)
        scores.append(pl.DataFrame([best], schema=SCORES_SCHEMA).with_columns(benchmark=pl.lit(benchmarks[0])))
    table = pl.concat(scores).with_columns(
        model=pl.lit(model_name), task=pl.lit(task), variant=pl.lit(variant), seed=pl.lit(seed, dtype=pl.Int64),
    ).select("metric", "k", "value", "model", "task", "benchmark", "variant", "seed", "checkpoint")
    record = io.manifest("evaluate", evaluation["seed"], settings, model=model, run=run_name, benchmarks=benchmarks,
                         model_revision=model_revision(model), sampling=params.to_dict(),
                         greedy_sampling=greedy_params.to_dict(), chat=chat,
                         backend=getattr(sampler, "name", sampling["backend"]), unscorable_problems=unscorable,
                         overlong_problems=overlong)
    io.write_parquet(pl.concat(sampled), samples_path, record)
    io.write_parquet(pl.concat(greedy), greedy_path, record)
    io.write_parquet(table, scores_path, record)
    for (benchmark,), rows in table.group_by("benchmark", maintain_order=True):
        print(f"evaluate: {model_name} x {task}/{benchmark} [{run_name}]: "
              + ", ".join(f"{m} {v:.3f}" for m, v in zip(rows["metric"], rows["value"])))
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--run", required=True, help="'base' or '<variant>-s<seed>'")
    parser.add_argument("--benchmarks", nargs="+", required=True, help="the task's benchmark names, in config order")
    parser.add_argument("--problems", nargs="+", required=True, help="each benchmark's problem parquet, same order")
    parser.add_argument("--train-metrics", help="the trained run's metrics.jsonl (best in-training validation)")
    parser.add_argument("--samples", required=True, help="output per-sample parquet of every benchmark")
    parser.add_argument("--greedy", required=True, help="output greedy per-sample parquet of every benchmark")
    parser.add_argument("--scores", required=True, help="output scores parquet of every benchmark")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.model, args.model_name, args.task, args.run, args.benchmarks, args.problems,
        args.samples, args.greedy, args.scores, args.train_metrics)
