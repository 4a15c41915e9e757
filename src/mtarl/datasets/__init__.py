"""Loaders of the paper study's datasets, producing the problem tables of the miniature tasks (plus two columns).

``load_problems(task, spec)`` reads one dataset and returns ``(table, report)``:
- the table has the prepare stage's ``PROBLEM_SCHEMA`` first (``id``, ``prompt``, ``answer``, ``task``, ``family``,
  ``split``, ``source``), then ``subset`` (SynLogic task, KOR-Bench category, MATH subject; null if none) and ``meta``
  (a JSON string: level, year, original id, ...);
- the report counts rows read, kept and skipped by reason, with the first skipped rows' locations.

``spec`` keys (defaults per kind in ``DEFAULTS``): ``kind`` (deepscaler, math500, aime24, amc23, synlogic, korbench),
``path`` (hub id, or a local parquet/jsonl/json file or dataset folder; for KOR-Bench a local checkout), ``config``
or ``name`` (hub config, e.g. ``easy``), ``split``, ``category`` (KOR-Bench: a name, a list, or ``all``),
``on_bad_row`` (``error`` | ``skip``), ``limit`` (read at most this many rows), ``cache_dir`` (``datasets`` cache).

Ids are ``<task>-<split>-<the source's own id or row index>``: unique within a table and stable across runs. The
``split`` column is the source split read (e.g. ``test``); ``prepare`` sets it to ``train`` or ``eval``. One-shot
replication lives in ``mtarl.oneshot``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import polars as pl

from mtarl.datasets import korbench, math_problems, synlogic
from mtarl.datasets.common import (BadRowError, DatasetError, DatasetUnavailableError, Problem, RawRow, build_table,
                                   open_source)
from mtarl.datasets.synlogic import synlogic_task_known

DEFAULTS: dict[str, dict] = {
    "deepscaler": {"path": "agentica-org/DeepScaleR-Preview-Dataset", "config": None, "split": "train"},
    "math500": {"path": "HuggingFaceH4/MATH-500", "config": None, "split": "test"},
    "aime24": {"path": "HuggingFaceH4/aime_2024", "config": None, "split": "train"},
    "amc23": {"path": "math-ai/amc23", "config": None, "split": "test"},
    "synlogic": {"path": "MiniMaxAI/SynLogic", "config": "easy", "split": "train"},
    # Not on the Hub: a local checkout of github.com/KOR-Bench/KOR-Bench must be configured.
    "korbench": {"path": None, "config": None, "split": "test", "category": "all"},
}
KINDS = tuple(DEFAULTS)
SPEC_KEYS = {"kind", "path", "config", "name", "split", "category", "on_bad_row", "limit", "cache_dir", "revision"}


def resolve_spec(spec: dict) -> dict:
    """The spec with its kind's defaults filled in; ``name`` is an alias of ``config``."""
    kind = spec.get("kind")
    if kind not in DEFAULTS:
        raise DatasetError(f"dataset kind {kind!r} unknown; choose from {', '.join(KINDS)}")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise DatasetError(f"dataset spec keys {unknown} unknown; known: {', '.join(sorted(SPEC_KEYS))}")
    if spec.get("name") is not None and spec.get("config") is not None and spec["name"] != spec["config"]:
        raise DatasetError(f"dataset spec gives config {spec['config']!r} and name {spec['name']!r}; give one")
    resolved = {**DEFAULTS[kind], "on_bad_row": "error", "limit": None}
    resolved.update({k: v for k, v in spec.items() if v is not None and k != "name"})
    if spec.get("name") is not None:
        resolved["config"] = spec["name"]
    return resolved


def load_problems(task: str, spec: dict, *, known_families: Iterable[str] | None = None
                  ) -> tuple[pl.DataFrame, dict]:
    """The problem table of ``task`` from the dataset ``spec`` names, and the load report.

    ``known_families`` is the verifier list SynLogic tasks are checked against; by default the families registered
    in ``mtarl.tasks`` when the load runs.
    """
    resolved = resolve_spec(spec)
    kind = resolved["kind"]
    source = korbench.open_source(resolved) if kind == "korbench" else open_source(resolved)
    table, report = build_table(task, resolved["split"], source, _converter(kind, known_families),
                                resolved["on_bad_row"], resolved["limit"])
    report = {"kind": kind, "path": resolved["path"], "config": resolved.get("config"), **report}
    return table, report


def _converter(kind: str, known_families: Iterable[str] | None) -> Callable[[RawRow], Problem]:
    if kind in math_problems.COLUMNS:
        return math_problems.converter(kind)
    if kind == "synlogic":
        return synlogic.converter(known_families)
    return korbench.converter()


__all__ = [
    "BadRowError", "DEFAULTS", "DatasetError", "DatasetUnavailableError", "KINDS", "load_problems",
    "resolve_spec", "synlogic_task_known",
]
