"""Shared machinery of the dataset loaders: reading a source, the row loop with its bad-row policy, the table.

A source is a local file (parquet, jsonl, json), a local folder laid out like a Hugging Face dataset repository, or a
hub id; folders and hub ids are read with ``datasets.load_dataset``. Each raw row carries its location (file or
dataset, row number) so that every error names the exact row.

A family module converts one raw row into a ``Problem`` or raises ``BadRow`` (no answer, empty prompt, unknown task,
...). ``build_table`` runs the conversion over all rows: with ``on_bad_row="error"`` the first bad row stops the load
with its location; with ``"skip"`` it is skipped and counted by reason in the report. No row is dropped silently.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import polars as pl

EXTRA_SCHEMA = {"subset": pl.String, "meta": pl.String}
BAD_ROW_POLICIES = ("error", "skip")
FILE_SUFFIXES = (".parquet", ".jsonl", ".json")
MAX_SKIPPED_EXAMPLES = 20  # the report keeps the first skipped rows' messages, enough to diagnose without bloat


class DatasetError(ValueError):
    """A dataset cannot be read as configured (missing path, unknown kind, wrong columns, bad spec)."""


class DatasetUnavailableError(DatasetError):
    """A hub dataset cannot be loaded here (offline, no network, not cached)."""


class BadRowError(DatasetError):
    """A row is unusable and ``on_bad_row`` is ``error``; the message names the file or dataset and the row."""


class BadRow(Exception):
    """Raised by a converter for an unusable row: ``reason`` is the report key, ``detail`` the explanation."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RawRow:
    where: str  # e.g. "file 'x/test.jsonl', row 3 (line 4)": where to look for this row
    data: dict
    index: int  # position in its file or split, 0-based


@dataclass(frozen=True)
class Problem:
    """One converted row; ``key`` is the source's own id or index, unique within the source."""

    key: str
    prompt: str
    answer: str
    family: str
    subset: str | None = None
    meta: dict = field(default_factory=dict)
    statement: str | None = None  # the raw problem, no template or instruction (None: the prompt is the raw problem)


@dataclass(frozen=True)
class Source:
    name: str  # provenance written to the ``source`` column: the path or hub id as configured, and the config
    rows: Iterable[RawRow]


# ---------------------------------------------------------------------------------------------------------- reading


def looks_local(path: str) -> bool:
    """A path that can only mean a local file or folder (so a missing one is an error, not a hub id)."""
    return path.startswith(("/", ".", "~")) or path.endswith(FILE_SUFFIXES) or Path(path).expanduser().exists()


def read_file(path: Path) -> list[RawRow]:
    """All rows of one parquet, jsonl or json (an array of objects) file, each with its location."""
    if not path.is_file():
        raise DatasetError(f"file '{path}' does not exist")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        records = pq.read_table(path).to_pylist()
        return [RawRow(f"file '{path}', row {i}", r, i) for i, r in enumerate(records)]
    if path.suffix == ".jsonl":
        return list(_read_jsonl(path))
    if path.suffix == ".json":
        return _read_json_array(path)
    raise DatasetError(f"file '{path}': unsupported format; expected one of {', '.join(FILE_SUFFIXES)}")


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    index = 0
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines (e.g. a trailing one) are not rows
            where = f"file '{path}', row {index} (line {line_no})"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{where}: not valid JSON ({err})") from None
            yield RawRow(where, _as_object(record, where), index)
            index += 1


def _read_json_array(path: Path) -> list[RawRow]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"file '{path}': not valid JSON ({err})") from None
    if not isinstance(records, list):
        raise DatasetError(f"file '{path}': expected a JSON array of row objects, found {type(records).__name__}")
    rows = []
    for i, record in enumerate(records):
        where = f"file '{path}', row {i}"
        rows.append(RawRow(where, _as_object(record, where), i))
    return rows


def _as_object(record: Any, where: str) -> dict:
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected a JSON object, found {type(record).__name__}")
    return record


def read_with_datasets(path: str, config: str | None, split: str, cache_dir: str | None) -> Iterator[RawRow]:
    """Rows of a hub id or a local dataset folder through ``datasets.load_dataset`` (configs, split files)."""
    import datasets

    local = Path(path).expanduser().is_dir()
    label = f"{'folder' if local else 'dataset'} '{path}' (config {config!r}, split {split!r})"
    try:
        ds = datasets.load_dataset(str(Path(path).expanduser()) if local else path, config, split=split,
                                   cache_dir=cache_dir)
    except Exception as err:  # datasets raises many types (ConnectionError, FileNotFoundError, ValueError, ...)
        if local:
            raise DatasetError(f"cannot read {label}: {type(err).__name__}: {err}") from err
        raise DatasetUnavailableError(unavailable_message(path, config, split, err)) from err
    return (RawRow(f"{label}, row {i}", row, i) for i, row in enumerate(ds))


def unavailable_message(path: str, config: str | None, split: str, err: Exception) -> str:
    """Why a hub dataset could not be loaded, and how to provide it as a local copy instead."""
    config_arg = f" (config {config!r})" if config else ""
    return (
        f"cannot load dataset '{path}'{config_arg}, split {split!r}, from the Hugging Face Hub: "
        f"{type(err).__name__}: {err}. If this machine is offline, download the dataset where the Hub is "
        f"reachable (e.g. `hf download {path} --repo-type dataset --local-dir DIR`), copy DIR here, and set this "
        f"dataset's `path` in the config to that folder (or to the split's parquet/jsonl/json file)."
    )


def open_source(spec: dict) -> Source:
    """The rows a spec names: a local file, a local dataset folder, or a hub id."""
    path, config, split = spec["path"], spec.get("config"), spec["split"]
    if not path:
        raise DatasetError("the dataset spec has no `path` (a hub id, or a local file or folder)")
    name = f"{path}:{config}" if config else str(path)
    local = Path(path).expanduser()
    if local.is_file():
        return Source(name, read_file(local))
    if looks_local(path) and not local.exists():
        raise DatasetError(f"local path '{path}' does not exist")
    return Source(name, read_with_datasets(str(path), config, split, spec.get("cache_dir")))


# ---------------------------------------------------------------------------------------------------- row helpers


def column(raw: RawRow, name: str) -> Any:
    """A required column's value; a missing column means the wrong dataset, so it stops the load."""
    if name not in raw.data:
        raise DatasetError(f"{raw.where}: no column {name!r} (columns: {', '.join(sorted(raw.data))})")
    return raw.data[name]


def text_or_none(value: Any) -> str | None:
    """A gold answer or prompt as text; None or blank text is missing. Integral floats print as integers."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # e.g. an AMC answer stored as 27.0 is the integer 27
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def require_prompt(text: Any, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRow("empty_prompt", f"empty {what}")
    return text


def require_answer(value: Any, what: str) -> str:
    text = text_or_none(value)
    if text is None:
        raise BadRow("missing_answer", f"no {what}")
    return text.strip()


def safe_key(value: Any) -> str:
    """A source id as part of a problem id: path separators and other odd characters become '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(value)).strip("-")


# ----------------------------------------------------------------------------------------------------- the table


def build_table(task: str, split: str, source: Source, convert: Callable[[RawRow], Problem], on_bad_row: str,
                limit: int | None) -> tuple[pl.DataFrame, dict]:
    """Convert every row of ``source`` (the first ``limit``) into the problem table, applying the bad-row policy."""
    if on_bad_row not in BAD_ROW_POLICIES:
        raise DatasetError(f"on_bad_row must be one of {', '.join(BAD_ROW_POLICIES)}, not {on_bad_row!r}")
    records: list[dict] = []
    first_seen: dict[str, str] = {}
    skipped: Counter[str] = Counter()
    examples: list[dict] = []
    rows_read = 0
    for raw in source.rows:
        if limit is not None and rows_read >= limit:
            break
        rows_read += 1
        try:
            problem = convert(raw)
            problem_id = f"{task}-{split}-{problem.key}"
            if problem_id in first_seen:
                raise BadRow("duplicate_id", f"id {problem_id!r} was already given to {first_seen[problem_id]}")
        except BadRow as bad:
            message = f"{raw.where}: {bad.detail}"
            if on_bad_row == "error":
                raise BadRowError(f"{message} [reason: {bad.reason}; set on_bad_row: skip to skip and count such "
                                  "rows]") from None
            skipped[bad.reason] += 1
            if len(examples) < MAX_SKIPPED_EXAMPLES:
                examples.append({"reason": bad.reason, "message": message})
            continue
        first_seen[problem_id] = raw.where
        records.append(_record(problem_id, problem, task, split, source.name))
    report = {
        "task": task, "source": source.name, "split": split, "rows_read": rows_read, "rows_kept": len(records),
        "rows_skipped": dict(sorted(skipped.items())), "skipped_examples": examples,
    }
    return pl.DataFrame(records, schema=problem_schema()), report


def _record(problem_id: str, problem: Problem, task: str, split: str, source: str) -> dict:
    return {
        "id": problem_id, "prompt": problem.prompt, "answer": problem.answer, "task": task, "family": problem.family,
        "split": split, "source": source, "statement": problem.statement or problem.prompt, "subset": problem.subset,
        "meta": json.dumps(problem.meta, sort_keys=True, ensure_ascii=False, default=str),
    }


def problem_schema() -> dict:
    """PROBLEM_SCHEMA of the prepare stage first, then ``subset`` and ``meta``."""
    # Imported here, not at module level: prepare imports this package, so a top-level import would be circular.
    from mtarl.prepare import PROBLEM_SCHEMA

    return {**PROBLEM_SCHEMA, **EXTRA_SCHEMA}
