"""Stage ``probe_shard``: sample and verify one shard of a base model's probe on a benchmark.

Run: ``mtarl probe_shard --settings JSON --model PATH_OR_ID --task T --benchmark B --problems B.parquet --shard I
--samples S.parquet --greedy G.parquet --contamination C.parquet``

A probe of one model x benchmark is split by problem into ``settings['shards']`` shards, each a separate job;
``mtarl probe`` gathers them. Shard ``I`` covers the rows ``mtarl.shards.layout(...)[I]`` of the probed problems
(the first ``probe.n_problems`` rows of the benchmark, all if null). Boundaries fall on the sampler's seed blocks
(``mtarl.shards.seed_block``) and seeds follow a row's position in the whole table, so a sharded probe stores
exactly the samples an unsharded one does. A shard with no rows (more shards than seed blocks) writes empty tables.

Outputs, each with a manifest (model and revision, backend and its version, sampling parameters, seed, shard range,
hardware, library versions):
- samples: the per-sample table of ``mtarl.scoring`` for the shard's problems;
- greedy: the same table for one greedy decode (temperature 0) of each of the shard's problems (greedy accuracy of
  the base model's profile; it costs 1/n of the sampling);
- contamination: the contamination check (``mtarl.contamination``) of the shard's problems among the first
  ``probe.contamination.n_problems`` of the table (empty when the check is off).
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from mtarl import contamination, io, scoring
from mtarl.modeling import model_revision
from mtarl.prompts import MATH_TEMPLATE
from mtarl.shards import layout, probe_problems


def problem_statements(rows: pl.DataFrame) -> list[str]:
    """The raw problems: the contamination check feeds no instruction or template (study.md 2.4). The ``statement``
    column of the problem table (``mtarl.prepare``); a table written before it existed: the prompt without the math
    template."""
    if "statement" in rows.columns:
        return rows["statement"].to_list()
    return [prompt.removeprefix(MATH_TEMPLATE) for prompt in rows["prompt"]]


def rows_to_check(rows: pl.DataFrame, start: int, check: dict) -> pl.DataFrame:
    """The shard's rows among the first ``check['n_problems']`` rows of the whole table (all if null)."""
    if not check["enabled"]:
        return rows.clear()
    if check["n_problems"] is None:
        return rows
    return rows.head(max(0, check["n_problems"] - start))


def contamination_check(sampler, rows: pl.DataFrame, ratios: list[float]) -> pl.DataFrame:
    """The per-problem x ratio contamination table of ``rows`` (schema ``contamination.CONTAMINATION_SCHEMA``)."""
    statements = list(zip(rows["id"], problem_statements(rows)))
    return contamination.contamination_table(statements, sampler.tokenizer, sampler.greedy_completer(), ratios)


def run(settings: dict, model: str, task: str, benchmark: str, problems: str, shard: int, samples_path: str,
        contamination_path: str, greedy_path: str | None = None) -> pl.DataFrame:
    probe, sampling = settings["probe"], settings["sampling"]
    table = probe_problems(problems, probe)
    ranges = layout(settings, table.height)
    if not 0 <= shard < len(ranges):
        raise ValueError(f"shard {shard} does not exist: the probe has {len(ranges)} shards (0 to {len(ranges) - 1})")
    start, stop = ranges[shard]
    rows = table.slice(start, stop - start)
    params = scoring.sampling_params(sampling, n=probe["n"], seed=probe["seed"])
    greedy_params = scoring.sampling_params(sampling, n=1, seed=probe["seed"], temperature=0.0, top_p=1.0, top_k=0)
    started = time.time()
    samples = greedy = pl.DataFrame(schema=scoring.SAMPLE_SCHEMA)
    checked = pl.DataFrame(schema=contamination.CONTAMINATION_SCHEMA)
    backend = {"backend": sampling["backend"]}
    if rows.height:  # an empty shard loads no model
        chat = scoring.chat_for(sampling, settings.get("chat"))
        sampler = scoring.make_sampler(sampling["backend"], model, max_batch_sequences=sampling["max_batch_sequences"],
                                       chat=chat, dtype=sampling["dtype"])
        backend = sampler.describe()
        samples = scoring.sample_and_score(sampler, rows, params, first_index=start)
        if greedy_path is not None:  # a greedy decode needs no seed, so no seed block either: first_index 0
            greedy = scoring.sample_and_score(sampler, rows, greedy_params)
        to_check = rows_to_check(rows, start, probe["contamination"])
        if to_check.height:
            checked = contamination_check(sampler, to_check, probe["contamination"]["ratios"])
    elapsed = time.time() - started
    record = io.manifest("probe_shard", probe["seed"], settings, model=model, model_revision=model_revision(model),
                         task=task, benchmark=benchmark, backend=backend, sampling=params.to_dict(),
                         shard={"index": shard, "start": start, "stop": stop, "n_rows": table.height,
                                "ranges": ranges},
                         wall_seconds=round(elapsed, 1))
    io.write_parquet(samples, samples_path, record)
    io.write_parquet(checked, contamination_path, record)
    if greedy_path is not None:
        io.write_parquet(greedy, greedy_path, {**record, "sampling": greedy_params.to_dict()})
    print(f"probe_shard: {model} x {task}/{benchmark} shard {shard} (rows {start}-{stop} of {table.height}): "
          f"{samples.height} samples, {checked.height} contamination rows in {elapsed:.1f}s")
    return samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--task", required=True, help="the task's name in config")
    parser.add_argument("--benchmark", required=True, help="the benchmark's name in config")
    parser.add_argument("--problems", required=True, help="the benchmark's problem parquet")
    parser.add_argument("--shard", required=True, type=int, help="index of the shard (0-based)")
    parser.add_argument("--samples", required=True, help="output per-sample parquet of the shard")
    parser.add_argument("--contamination", required=True, help="output contamination parquet of the shard")
    parser.add_argument("--greedy", required=True, help="output per-sample parquet of the shard's greedy decodes")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.model, args.task, args.benchmark, args.problems, args.shard, args.samples,
        args.contamination, args.greedy)
