"""Stage ``probe``: gather a base model's probe shards into its pass@k curve on a benchmark (the alignment measure).

Run: ``mtarl probe --settings JSON --model-name M --task T --benchmark B --problems B.parquet
--shard-samples S0.parquet S1.parquet ... --shard-contamination C0.parquet C1.parquet ...
--shard-greedy G0.parquet G1.parquet ... --samples S.parquet --passk P.parquet --metrics M.parquet
--contamination C.parquet --alignment A.parquet``

The shards (``mtarl probe_shard``) sampled ``n`` completions per problem at the rollout settings (temperature 1,
top_p 1, top_k off) and verified them. This stage checks that the shards are complete and of one layout, then writes:
- samples: the per-sample table of every probed problem (schema in ``mtarl.scoring``), so any metric can be
  recomputed without sampling again;
- passk: ``k`` int (1, 2, 4, ..., n), ``pass_at_k`` float (unbiased estimator), ``n`` int, ``n_problems`` int,
  ``model``, ``task``, ``benchmark`` str;
- metrics: ``metric`` pass@k | maj@k | avg@k, ``k``, ``value``, ``ci_low``, ``ci_high`` (bootstrap over problems),
  ``n``, ``n_problems``, ``model``, ``task``, ``benchmark``; plus the base model's behaviour profile
  (``metrics.profile_table``): ``greedy@1`` (k 1, n 1: accuracy of the shards' greedy decodes), ``format_rate`` and
  ``strategy_share`` (k = n: share of samples passing the format gate / with a scratchpad in ``<think>``);
- contamination: the contamination check (``mtarl.contamination``: one row per problem x ratio);
- alignment: the verdict of this model x benchmark (``mtarl.alignment``: strong/weak from pass@k, and the paper's
  partition contaminated-strong / clean-strong / clean-weak), which the analysis reads.
Every output's manifest lists the shards with their ranges, backend, hardware and wall time.
"""

from __future__ import annotations

import argparse

import polars as pl

from mtarl import alignment, contamination, io, metrics
from mtarl.shards import layout, probe_problems

USES_TORCH = False  # gathering reads tables: mtarl.cli skips importing torch


class IncompleteProbe(ValueError):
    """The shards do not add up to the probe the settings describe."""


def read_shards(paths: list[str], settings: dict, problems: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """The shards' samples in problem order and their manifests, after checking that together they are the probe."""
    expected = layout(settings, problems.height)
    if len(paths) != len(expected):
        raise IncompleteProbe(f"{len(paths)} shard files for a probe of {len(expected)} shards")
    manifests = [io.read_manifest(path) for path in paths]
    for index, (path, record) in enumerate(zip(paths, manifests)):
        shard = record.get("shard", {})
        if (shard.get("index"), shard.get("start"), shard.get("stop")) != (index, *expected[index]):
            raise IncompleteProbe(f"{path} holds shard {shard} of another layout; expected shard {index} with rows "
                                  f"{expected[index]} (rerun the probe_shard jobs)")
    samples = pl.concat([pl.read_parquet(path) for path in paths])
    check_complete(samples, problems, settings["probe"]["n"])
    return samples, manifests


def check_complete(samples: pl.DataFrame, problems: pl.DataFrame, n: int) -> None:
    counts = samples.group_by("problem_id", maintain_order=True).len()
    if counts["problem_id"].to_list() != problems["id"].to_list():
        raise IncompleteProbe(f"the shards hold {counts.height} problems, not the {problems.height} probed ones in "
                              "order")
    short = counts.filter(pl.col("len") != n)
    if short.height:
        raise IncompleteProbe(f"{short.height} problems do not have {n} samples, e.g. {short.row(0)}")


def read_greedy(paths: list[str], problems: pl.DataFrame) -> pl.DataFrame:
    """The shards' greedy decodes in problem order, after checking there is one per probed problem."""
    greedy = pl.concat([pl.read_parquet(path) for path in paths])
    check_complete(greedy, problems, 1)
    return greedy


def shard_summary(manifests: list[dict]) -> list[dict]:
    """What the gathered manifest records about each shard."""
    return [{**{k: v for k, v in record["shard"].items() if k != "ranges"}, "backend": record.get("backend"),
             "hardware": record.get("hardware"), "wall_seconds": record.get("wall_seconds")} for record in manifests]


def with_family(samples: pl.DataFrame, problems: str) -> pl.DataFrame:
    """The samples with their problem's verifier ``family``, so maj@k votes as the majority-vote reward does."""
    families = pl.read_parquet(problems, columns=["id", "family"]).rename({"id": "problem_id"})
    return samples.join(families, on="problem_id", how="left", maintain_order="left")


def alignment_rule(settings: dict) -> alignment.AlignmentRule:
    return alignment.AlignmentRule(k=settings["k"], strong_threshold=settings["strong_threshold"],
                                   contamination_ratio=settings["contamination_ratio"],
                                   rouge_l_threshold=settings["rouge_l_threshold"],
                                   em_threshold=settings["em_threshold"])


def run(settings: dict, model_name: str, task: str, benchmark: str, problems: str, shard_samples: list[str],
        shard_contamination: list[str], samples_path: str, passk_path: str, metrics_path: str,
        contamination_path: str, alignment_path: str, shard_greedy: list[str] | None = None) -> pl.DataFrame:
    probe = settings["probe"]
    probed = probe_problems(problems, probe)
    all_samples, manifests = read_shards(shard_samples, settings, probed)
    names = dict(model=pl.lit(model_name), task=pl.lit(task), benchmark=pl.lit(benchmark))
    samples, unscorable = metrics.drop_unscorable(all_samples)  # gold answers the verifier cannot read
    table = metrics.pass_at_k_table(samples).with_columns(**names)
    full = metrics.probe_metrics_table(with_family(samples, problems), n_boot=probe["n_boot"], seed=probe["seed"])
    if shard_greedy is not None:
        greedy = read_greedy(shard_greedy, probed).filter(pl.col("problem_id").is_in(samples["problem_id"].implode()))
        profile = metrics.profile_table(samples, greedy, n_boot=probe["n_boot"], seed=probe["seed"])
        full = pl.concat([full, profile])
    full = full.with_columns(**names)
    checked = pl.concat([pl.read_parquet(path) for path in shard_contamination]).with_columns(**names)
    summary = contamination.summarize_contamination(checked) if probe["contamination"]["enabled"] else None
    verdict = alignment.alignment_table(table, alignment_rule(probe["alignment"]), summary)
    # the backend and model as a shard that sampled saw them (an empty shard loads no model)
    first = next((m for m in manifests if m["shard"]["stop"] > m["shard"]["start"]), manifests[0])
    record = io.manifest("probe", probe["seed"], settings, model=first.get("model"),
                         model_revision=first.get("model_revision"), model_name=model_name, task=task,
                         benchmark=benchmark, backend=first.get("backend"), sampling=first.get("sampling"),
                         shards=shard_summary(manifests), unscorable_problems=unscorable,
                         wall_seconds=round(sum(m.get("wall_seconds") or 0 for m in manifests), 1))
    io.write_parquet(all_samples, samples_path, record)
    io.write_parquet(table, passk_path, record)
    io.write_parquet(full, metrics_path, record)
    io.write_parquet(checked, contamination_path, record)
    io.write_parquet(verdict.with_columns(benchmark=pl.lit(benchmark)), alignment_path, record)
    curve = ", ".join(f"pass@{k} {v:.3f}" for k, v in zip(table["k"], table["pass_at_k"]))
    label = verdict["partition"][0] or verdict["alignment"][0]
    print(f"probe: {model_name} x {task}/{benchmark}: {samples.height} samples from {len(manifests)} shards; "
          f"{curve}; {label}")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-name", required=True, help="the model's name in config")
    parser.add_argument("--task", required=True, help="the task's name in config")
    parser.add_argument("--benchmark", required=True, help="the benchmark's name in config")
    parser.add_argument("--problems", required=True, help="the benchmark's problem parquet")
    parser.add_argument("--shard-samples", required=True, nargs="+", help="per-sample parquets of the shards, in order")
    parser.add_argument("--shard-contamination", required=True, nargs="+",
                        help="contamination parquets of the shards, in order")
    parser.add_argument("--shard-greedy", required=True, nargs="+",
                        help="greedy-decode parquets of the shards, in order")
    parser.add_argument("--samples", required=True, help="output per-sample parquet")
    parser.add_argument("--passk", required=True, help="output pass@k parquet")
    parser.add_argument("--metrics", required=True,
                        help="output parquet of pass@k, maj@k, avg@k and the profile (greedy@1, format_rate, "
                             "strategy_share) with intervals")
    parser.add_argument("--contamination", required=True, help="output parquet of the contamination check")
    parser.add_argument("--alignment", required=True, help="output parquet of the alignment verdict")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.model_name, args.task, args.benchmark, args.problems, args.shard_samples,
        args.shard_contamination, args.samples, args.passk, args.metrics, args.contamination, args.alignment,
        args.shard_greedy)
