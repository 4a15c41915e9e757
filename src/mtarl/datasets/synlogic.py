"""SynLogic (``MiniMaxAI/SynLogic``, config ``easy``): logic training rows (split train) and evaluation rows
(split validation), converted as the official ``src/logic_data_process.py`` does (study.md 4.1).

Hub layout: ``synlogic_easy/{train,validation}.parquet``, selected by the README's ``configs`` (easy, hard). Columns:
``data_source`` (the task, e.g. ``game_of_24``; validation rows may carry a ``val/`` prefix, which the official reward
manager strips), ``prompt`` (a list of ``{role, content}`` turns), ``ability``, ``reward_model`` (empty ground truth),
``extra_info`` (a struct with ``game_data_str``, a JSON string of question, answer, difficulty and metadata that the
task's verifier reads; and, where that is null, ``original_question`` and ``original_answer``).

A problem row keeps:
- ``prompt``: ``prompt[0].content`` verbatim (the dataset's own instruction);
- ``answer``: ``extra_info.game_data_str``, rebuilt from ``original_question``/``original_answer`` when it is null or
  empty, exactly as the official converter (difficulty 1, empty metadata);
- ``family``: ``synlogic:<task>``, which must be a registered verifier family (``synlogic_task_known``);
- ``statement``: the game data's question (the problem without the prompt's format instruction), else the prompt;
- ``subset``: the task; ``meta``: the raw data_source, ability, ``extra_info.index``, whether game data was rebuilt.
The problem's own id is its row index in the split, since rows carry no id of their own.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from mtarl.datasets.common import BadRow, Problem, RawRow, column

FAMILY_PREFIX = "synlogic:"
VALIDATION_PREFIX = "val/"


def task_name(data_source: str) -> str:
    """The SynLogic task of a row's data_source (the official reward manager strips a ``val/`` prefix)."""
    return data_source.removeprefix(VALIDATION_PREFIX)


def synlogic_task_known(task: str, families: Iterable[str] | None = None) -> bool:
    """Whether a SynLogic task has a verifier: ``synlogic:<task>`` is among ``families``.

    ``families`` defaults to the registered families (``mtarl.tasks.known_families()``), read at call time so that
    verifiers registered after import count.
    """
    if families is None:
        from mtarl.tasks import known_families

        families = known_families()
    return f"{FAMILY_PREFIX}{task}" in set(families)


def game_data(extra_info: dict) -> tuple[str, bool]:
    """The verifier's game data as the official converter writes it, and whether it had to be rebuilt."""
    stored = extra_info.get("game_data_str")
    if isinstance(stored, str) and stored.strip():
        try:
            parsed = json.loads(stored)
        except json.JSONDecodeError as err:
            raise BadRow("bad_game_data", f"extra_info.game_data_str is not valid JSON ({err})") from None
        if not isinstance(parsed, dict):
            raise BadRow("bad_game_data", "extra_info.game_data_str is not a JSON object")
        return stored, False
    answer = extra_info.get("original_answer")
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise BadRow("missing_answer", "no answer: extra_info.game_data_str and extra_info.original_answer are empty")
    # Same keys, order and json.dumps defaults as src/logic_data_process.py, so the rebuilt string is identical.
    rebuilt = json.dumps({"question": extra_info.get("original_question"), "answer": answer, "difficulty": 1,
                          "metadata": {}})
    return rebuilt, True


def converter(families: Iterable[str] | None = None):
    """The row converter; ``families`` is the verifier list to check tasks against (default: the registered ones)."""
    known = None if families is None else list(families)

    def convert(raw: RawRow) -> Problem:
        data_source = column(raw, "data_source")
        if not isinstance(data_source, str) or not data_source.strip():
            raise BadRow("unknown_task", "empty data_source")
        task = task_name(data_source)
        prompt = _first_content(column(raw, "prompt"))
        extra_info = _extra_info(raw)
        answer, rebuilt = game_data(extra_info)
        if not synlogic_task_known(task, known):
            raise BadRow("unknown_task", f"SynLogic task {task!r} has no verifier: family '{FAMILY_PREFIX}{task}' is "
                                         "not among mtarl.tasks.known_families()")
        return Problem(
            key=f"{raw.index:05d}",
            prompt=prompt,
            statement=game_question(answer) or prompt,
            answer=answer,
            family=f"{FAMILY_PREFIX}{task}",
            subset=task,
            meta={"data_source": data_source, "ability": raw.data.get("ability"), "index": extra_info.get("index"),
                  "game_data_rebuilt": rebuilt},
        )

    return convert


def game_question(game_data_str: str) -> str | None:
    """The question of a task's game data (the problem without the prompt's answer-format instruction), if any."""
    try:
        question = json.loads(game_data_str).get("question")
    except (json.JSONDecodeError, AttributeError):
        return None
    return question if isinstance(question, str) and question.strip() else None


def _first_content(turns: Any) -> str:
    """``prompt[0].content``, verbatim, as the official converter takes it."""
    if isinstance(turns, dict):  # a list of structs that a reader returned as a struct of lists
        contents = turns.get("content")
        content = contents[0] if isinstance(contents, list) and contents else None
    else:
        first = turns[0] if isinstance(turns, list) and turns else None
        content = first.get("content") if isinstance(first, dict) else None
    if not isinstance(content, str) or not content.strip():
        raise BadRow("empty_prompt", "empty prompt: prompt[0].content is missing or blank")
    return content


def _extra_info(raw: RawRow) -> dict:
    """``extra_info`` as a dict; a copy that stored it as a JSON string is read the same way."""
    value = column(raw, "extra_info")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise BadRow("bad_game_data", f"extra_info is a string but not valid JSON ({err})") from None
    return value if isinstance(value, dict) else {}
