"""Math datasets: DeepScaleR (training), MATH500, AIME24 and AMC23 (evaluation), as problem rows of family ``math``.

Every prompt is the study's math template followed by the problem verbatim (study.md 5.1, as the official converter
``src/math_data_process.py``); the answer is the dataset's gold answer string. Columns as the hub stores them:

| kind | hub id, split, file | problem | answer | own id | kept in ``meta`` | ``subset`` |
|---|---|---|---|---|---|---|
| deepscaler | agentica-org/DeepScaleR-Preview-Dataset, train, deepscaler.json | problem | answer | (row) | index | - |
| math500 | HuggingFaceH4/MATH-500, test, test.jsonl | problem | answer | unique_id | level, unique_id | subject |
| aime24 | HuggingFaceH4/aime_2024, train, data/train-*.parquet | problem | answer (str) | id | id, year, url | - |
| amc23 | math-ai/amc23, test, data/test-*.parquet | question | answer (number) | id | id, url | - |

Solutions are not kept: no stage uses them and they would dominate the table's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtarl.datasets.common import BadRow, Problem, RawRow, column, require_answer, require_prompt, safe_key
from mtarl.prompts import math_prompt

FAMILY = "math"


@dataclass(frozen=True)
class MathColumns:
    """Where a math dataset keeps each field; ``key=None`` means the row index is the problem's own id."""

    problem: str
    answer: str
    key: str | None = None
    subset: str | None = None
    meta: tuple[str, ...] = ()


COLUMNS = {
    "deepscaler": MathColumns(problem="problem", answer="answer"),
    "math500": MathColumns(problem="problem", answer="answer", key="unique_id", subset="subject",
                           meta=("level", "unique_id")),
    "aime24": MathColumns(problem="problem", answer="answer", key="id", meta=("id", "year", "url")),
    "amc23": MathColumns(problem="question", answer="answer", key="id", meta=("id", "url")),
}


def converter(kind: str):
    """The row converter of one math dataset kind."""
    columns = COLUMNS[kind]

    def convert(raw: RawRow) -> Problem:
        problem = require_prompt(column(raw, columns.problem), f"problem (column {columns.problem!r})")
        answer = require_answer(column(raw, columns.answer), f"answer (column {columns.answer!r})")
        meta = {name: raw.data.get(name) for name in columns.meta}
        if columns.key is None:
            meta["index"] = raw.index
        return Problem(
            key=_key(raw, columns.key),
            prompt=math_prompt(problem),
            statement=problem,
            answer=answer,
            family=FAMILY,
            subset=raw.data.get(columns.subset) if columns.subset else None,
            meta=meta,
        )

    return convert


def _key(raw: RawRow, key_column: str | None) -> str:
    # A copy without the id column falls back to the row index; an id column with a hole is a bad row, because
    # mixing own ids and indices could give two problems the same id.
    if key_column is None or key_column not in raw.data:
        return f"{raw.index:05d}"
    value = raw.data[key_column]
    if value is None or not str(value).strip():
        raise BadRow("missing_id", f"no id (column {key_column!r})")
    # MATH500's unique_id is a path such as "test/precalculus/807.json": keep its informative part.
    text = str(value).removesuffix(".json")
    return safe_key(text)
