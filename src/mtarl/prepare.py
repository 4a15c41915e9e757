"""Stage ``prepare``: write one split of a task, its training set or one of its benchmarks, as parquet.

Run: ``mtarl prepare --task add3 --split train --settings TASK_CONFIG_JSON --out results/data/add3/train.parquet``

A task is a training set plus benchmarks. ``source: synthetic`` tasks (the miniature) generate disjoint train and eval
problems and have one benchmark, named like the task. ``source: datasets`` tasks (the paper study) load a dataset per
split with ``mtarl.datasets.load_problems`` (hub id or local path), e.g. task ``math``: DeepScaleR to train on,
benchmarks MATH500, AIME24 and AMC23.

Problem schema: ``id`` str (unique, stable), ``prompt`` str (the user text the model sees), ``answer`` str (gold;
SynLogic: the game data JSON), ``task`` str (config name), ``family`` str (verifier family), ``split`` str
(``train`` or ``eval``), ``source`` str, ``statement`` str (the raw problem statement without template or
instruction: math, the problem; KOR-Bench, the rule and the question; SynLogic, its game data's question); dataset
splits add ``subset`` and ``meta``. Rows skipped as bad input are counted in the log and the manifest, and so are math
problems whose gold answer math-verify cannot parse (``unscorable_golds``: kept, but left out of rewards and metrics).
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl

from mtarl import download, io
from mtarl.tasks import arith

PROBLEM_SCHEMA = {
    "id": pl.String,
    "prompt": pl.String,
    "answer": pl.String,
    "task": pl.String,
    "family": pl.String,
    "split": pl.String,
    "source": pl.String,
    # The raw problem statement, no template or instruction: what the contamination check cuts (study.md 2.4).
    "statement": pl.String,
}


def synthetic_splits(task: str, family: str, n_train: int, n_eval: int, seed: int) -> dict[str, pl.DataFrame]:
    """Disjoint train/eval problem tables of an arithmetic family, a pure function of ``seed``."""
    fam = arith.FAMILIES[family]
    pairs = arith.sample_operands(fam, n_train + n_eval, np.random.default_rng(seed))
    split_pairs = {"eval": pairs[:n_eval], "train": pairs[n_eval:]}
    return {split: problem_table(task, fam, split, ps) for split, ps in split_pairs.items()}


def problem_table(task: str, fam: arith.Family, split: str, pairs: list[tuple[int, int]]) -> pl.DataFrame:
    rows = [
        {
            "id": f"{task}-{split}-{i:05d}",
            "prompt": fam.prompt(a, b),
            "answer": fam.answer(a, b),
            "task": task,
            "family": fam.name,
            "split": split,
            "source": "synthetic",
            "statement": fam.prompt(a, b),  # "a+b=": the prompt is the bare problem
        }
        for i, (a, b) in enumerate(pairs)
    ]
    return pl.DataFrame(rows, schema=PROBLEM_SCHEMA)


def split_table(task: str, split: str, settings: dict) -> tuple[pl.DataFrame, dict]:
    """The problems of one split of a task, and a report of how they were read."""
    if settings["source"] == "synthetic":
        if split not in ("train", task):
            raise ValueError(f"synthetic task {task!r} has the splits 'train' and '{task}' (its benchmark), not {split!r}")
        splits = synthetic_splits(task, settings["family"], settings["n_train"], settings["n_eval"], settings["seed"])
        table = splits["train" if split == "train" else "eval"]
        return table, {"rows_kept": table.height}
    from mtarl.datasets import load_problems  # the hub/datasets stack is needed by dataset tasks only

    spec = settings["train"] if split == "train" else settings["benchmarks"][split]
    table, report = load_problems(task, spec)
    return table.with_columns(split=pl.lit("train" if split == "train" else "eval")), report


def unscorable_golds(table: pl.DataFrame) -> int:
    """How many math problems have a gold answer math-verify parses nothing from (they will be left unscored)."""
    golds = table.filter(pl.col("family") == "math")["answer"].to_list()
    if not golds:
        return 0
    from mtarl.tasks.math import gold_scorable_many

    return sum(not ok for ok in gold_scorable_many(golds))


def dataset_record(settings: dict, split: str) -> dict | None:
    """Repository, revision, commit and content hash of the dataset a split is read from (None unless fetched)."""
    if settings["source"] != "datasets":
        return None
    spec = settings["train"] if split == "train" else settings["benchmarks"][split]
    return download.read_record(spec["path"]) if spec.get("path") else None


def run(task: str, split: str, settings: dict, out: str) -> pl.DataFrame:
    table, report = split_table(task, split, settings)
    report = {**report, "unscorable_golds": unscorable_golds(table)}
    if table.is_empty():
        raise ValueError(f"prepare: {task}/{split} has no problems left ({report})")
    meta = io.manifest("prepare", settings.get("seed"), settings, task=task, split=split, report=report,
                       download=dataset_record(settings, split))
    io.write_parquet(table, out, meta)
    print(f"prepare: {task}/{split}: {table.height} problems -> {out}; report {report}")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task name (a key of config 'tasks')")
    parser.add_argument("--split", required=True, help="'train' or the name of one of the task's benchmarks")
    parser.add_argument("--out", required=True, help="output parquet")


def main(args: argparse.Namespace) -> None:
    run(args.task, args.split, args.settings, args.out)
