"""Verifiers for every task of SynLogic-Easy (``MiniMaxAI/SynLogic``, config ``easy``), study.md sections 4.1, 6.3.

A SynLogic row names its task in ``data_source`` and carries what the verifier needs in
``extra_info.game_data_str``: a JSON object with ``question``, ``answer``, ``difficulty`` and ``metadata``. Each task
is registered as the family ``synlogic:<task>`` whose gold string is that JSON; :func:`verify` is the same check
with the record already decoded.

The task list. SynLogic has 35 tasks (paper arXiv 2505.19641, Table 4); SynLogic-Easy drops the eight that stayed at
zero 7B training accuracy (its Appendix A.2: Arrow Maze, Goods Exchange, Kukurasu, Minesweeper, Norinori, Object
Counting, Space Reasoning Tree, Wordscapes), leaving 27, the count the dataset card states. The names are the keys
of SynLogic's ``task2verifier.py`` (vendored in the official code, hkust-nlp/model-task-align-rl@ee8637c), which the
official reward looks up by ``data_source``. Game of 24 is keyed ``mathador`` there (there is no ``game_of_24``
key), so its rows must carry ``data_source = "mathador"``; ``game_of_24`` is registered as an alias in case a copy of
the data names it so.

Semantics follow each upstream verifier, including the extraction it runs on the already-extracted answer (a
```python block for Game of 24, sudoku, survo, skyscrapers and star placement; ``[[...]]`` rows for calcudoko,
futoshiki and math path; ``\\boxed{}`` for the BBH-style tasks), with these deliberate differences:
- nothing from the model is evaluated as code (literals via ``ast.literal_eval``, arithmetic by a small exact
  interpreter);
- Game of 24 must reach its target (upstream's check is vacuous, study.md P10);
- malformed answers return ``False`` and never raise; answers over ``MAX_ANSWER_CHARS`` are rejected;
- upstream's "repair" of malformed grids (calcudoko pads short rows with 1s) is not reproduced: such grids fail.
Per-task notes are in each module: :mod:`.arithmetic`, :mod:`.grids`, :mod:`.dyck`, :mod:`.answers`.
"""

from __future__ import annotations

import json
from typing import Callable

from mtarl import tasks as _registry
from mtarl.tasks.synlogic import answers, arithmetic, dyck, grids
from mtarl.tasks.synlogic._common import MAX_ANSWER_CHARS, clip

TASKS: tuple[str, ...] = (
    "arc_agi",
    "boolean_expressions",
    "buggy_tables",
    "calcudoko",
    "campsite",
    "cipher",
    "cryptarithm",
    "dyck_language",
    "dyck_language_errors",
    "dyck_language_reasoning_errors",
    "futoshiki",
    "math_path",
    "mathador",
    "number_wall",
    "numbrix",
    "object_properties",
    "operation",
    "skyscraper_puzzle",
    "space_reasoning",
    "star_placement_puzzle",
    "sudoku",
    "survo",
    "time_sequence",
    "web_of_lies",
    "word_sorting",
    "word_sorting_mistake",
    "zebra_puzzle",
)

# Other names a copy of the data may use for a task (see the module docstring).
ALIASES: dict[str, str] = {"game_of_24": "mathador"}

_VERIFIERS: dict[str, Callable[[dict, str], bool]] = {
    **answers.VERIFIERS,
    **arithmetic.VERIFIERS,
    **dyck.VERIFIERS,
    **grids.VERIFIERS,
}
if set(_VERIFIERS) != set(TASKS):  # a task without a verifier (or a stray one) is a bug, caught at import
    raise RuntimeError(f"SynLogic verifiers do not match TASKS: {sorted(set(_VERIFIERS) ^ set(TASKS))}")


def parse_game_data(game_data_str: str) -> dict | None:
    """Decode ``extra_info.game_data_str``; ``None`` if it is not a JSON object."""
    if not isinstance(game_data_str, str):
        return None
    try:
        value = json.loads(game_data_str)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def verify(task: str, game_data: dict | str, answer: str) -> bool:
    """Whether ``answer`` (the extracted ``<answer>`` content) solves the SynLogic problem ``game_data``.

    ``game_data`` is the decoded ``game_data_str`` (a JSON string is decoded here). An unknown ``task`` is a
    programming error and raises ``ValueError``; anything wrong with the answer or the record returns ``False``.
    """
    check = _VERIFIERS.get(ALIASES.get(task, task))
    if check is None:
        raise ValueError(f"unknown SynLogic task {task!r}; known: {', '.join(TASKS)}")
    if isinstance(game_data, str):
        game_data = parse_game_data(game_data)
    answer = clip(answer)
    if not isinstance(game_data, dict) or answer is None:
        return False
    try:
        return bool(check(game_data, answer.strip()))
    except Exception:  # noqa: BLE001  (model output is adversarial input: any failure means "not verified")
        return False


def _family_checker(task: str) -> Callable[[str, str], bool]:
    """The registry's ``checker(extracted, gold)`` for ``task``: ``gold`` is the row's ``game_data_str``."""

    def check(extracted: str, gold: str) -> bool:
        return verify(task, gold, extracted)

    check.__name__ = f"check_synlogic_{task}"
    return check


for _task in (*TASKS, *ALIASES):
    _registry.register(f"synlogic:{_task}", _family_checker(_task))

__all__ = ["ALIASES", "MAX_ANSWER_CHARS", "TASKS", "parse_game_data", "verify"]
