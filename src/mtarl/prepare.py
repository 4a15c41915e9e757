"""Stage ``prepare``: write a task's train and eval splits as parquet.

Run: ``mtarl prepare --task add3 --settings '{"source": "synthetic", ...}' --train T.parquet --eval E.parquet``

Problem schema (both splits):
``id`` str (unique, stable), ``prompt`` str (the user text the model sees), ``answer`` str (gold),
``task`` str (config name), ``family`` str (verifier family), ``split`` str, ``source`` str.
The train and eval splits share no problem.
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl

from mtarl import io
from mtarl.tasks import arith

PROBLEM_SCHEMA = {
    "id": pl.String,
    "prompt": pl.String,
    "answer": pl.String,
    "task": pl.String,
    "family": pl.String,
    "split": pl.String,
    "source": pl.String,
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
        }
        for i, (a, b) in enumerate(pairs)
    ]
    return pl.DataFrame(rows, schema=PROBLEM_SCHEMA)


def run(task: str, settings: dict, train_path: str, eval_path: str) -> None:
    if settings["source"] != "synthetic":
        raise NotImplementedError(
            f"tasks.{task}.source={settings['source']!r}: hub/local datasets come with the datasets issue; "
            "the miniature uses source 'synthetic'"
        )
    splits = synthetic_splits(task, settings["family"], settings["n_train"], settings["n_eval"], settings["seed"])
    for split, path in (("train", train_path), ("eval", eval_path)):
        meta = io.manifest("prepare", settings["seed"], settings, task=task, split=split, rows=splits[split].height)
        io.write_parquet(splits[split], path, meta)
        print(f"prepare: {task}/{split}: {splits[split].height} problems -> {path}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task name (a key of config 'tasks')")
    parser.add_argument("--train", required=True, help="output parquet of the train split")
    parser.add_argument("--eval", required=True, help="output parquet of the eval split")


def main(args: argparse.Namespace) -> None:
    run(args.task, args.settings, args.train, args.eval)
