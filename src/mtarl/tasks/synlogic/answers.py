"""Verifiers of the SynLogic tasks whose answer is compared with a stored gold answer (no grid to check).

- ``\\boxed{}`` answers: ``boolean_expressions`` (the set of true option letters), ``object_properties`` (an
  integer), ``space_reasoning`` (case-insensitive text), ``word_sorting`` (the comma-separated word list, spaces
  ignored) and ``word_sorting_mistake`` (the step number, or "No").
- ``web_of_lies``: the yes/no (是/否) verdicts in order.
- ``time_sequence``: the last ``[...]`` list starts with the longest meeting time and the number of options.
- ``zebra_puzzle``: the ```json object (or the whole answer) deep-equals the gold JSON object, types included.
- ``cipher``: the answer (inside a ```python block if there is one) is the gold text. See :func:`verify_cipher`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mtarl.tasks.synlogic._common import (
    fenced_blocks,
    is_int,
    json_or_literal,
    last_boxed,
    literal,
    metadata_of,
    parse_int,
)


def _gold_text(game_data: dict) -> str | None:
    gold = game_data.get("answer")
    if is_int(gold):
        return str(gold)
    return gold if isinstance(gold, str) else None


# ---------------------------------------------------------------------------------------------- boxed answers


def _option_letters(text: str) -> set[str]:
    """The option labels in a boxed answer; LaTeX commands such as ``\\text`` are not labels."""
    text = re.sub(r"\\[A-Za-z]+", " ", text)
    return {letter.upper() for letter in re.findall(r"[A-Za-z]", text)}


def verify_boolean_expressions(game_data: dict, answer: str) -> bool:
    """The boxed option letters are exactly the true options."""
    gold, boxed = _gold_text(game_data), last_boxed(answer)
    if gold is None or boxed is None:
        return False
    return _option_letters(boxed) == _option_letters(gold)


def verify_object_properties(game_data: dict, answer: str) -> bool:
    """The boxed integer is the gold count."""
    gold, boxed = parse_int(_gold_text(game_data)), last_boxed(answer)
    return gold is not None and boxed is not None and parse_int(boxed) == gold


def verify_space_reasoning(game_data: dict, answer: str) -> bool:
    """The boxed text is the gold answer, ignoring case."""
    gold, boxed = _gold_text(game_data), last_boxed(answer)
    return gold is not None and boxed is not None and boxed.strip().lower() == gold.strip().lower()


def _word_list(text: str) -> list[str]:
    return text.replace("，", ",").replace(" ", "").split(",")


def verify_word_sorting(game_data: dict, answer: str) -> bool:
    """The boxed comma-separated words are the gold order."""
    gold, boxed = _gold_text(game_data), last_boxed(answer)
    return gold is not None and boxed is not None and _word_list(boxed) == _word_list(gold)


def verify_word_sorting_mistake(game_data: dict, answer: str) -> bool:
    """The boxed step number of the first mistake, or "No" when the sorting has none."""
    gold = game_data.get("answer")
    gold = "No" if gold is None else (str(gold) if is_int(gold) else gold)
    boxed = last_boxed(answer)
    if not isinstance(gold, str) or boxed is None:
        return False
    if boxed.isdigit():
        return parse_int(gold) == int(boxed)
    return boxed.lower() == gold.strip().lower()


# ------------------------------------------------------------------------------------------------- Web of Lies

_TRUTH_WORDS = re.compile(r"\b(?:yes|true|truth|no|false|lie|lies|liar)\b|是|否|真话|假话|真|假|谎")
_TRUE_TOKENS = {"yes", "true", "truth", "是", "真话", "真"}


def _verdicts(text: str) -> list[bool]:
    """The sequence of yes/no verdicts in ``text`` (English words matched whole, Chinese characters as written)."""
    return [token in _TRUE_TOKENS for token in _TRUTH_WORDS.findall(text.lower())]


def _web_of_lies_span(answer: str) -> str:
    """Upstream's preference: a bold ``**...**`` span, else what follows "the answer is"/"答案是", else everything."""
    bold = re.findall(r"\*\*([^*]+)\*\*", answer)
    if bold:
        return bold[-1]
    after = re.split(r"(?:[Tt]he answer is|答案是)[：:=]?", answer)
    return after[-1]


def verify_web_of_lies(game_data: dict, answer: str) -> bool:
    """The verdicts, in order, are the gold ones."""
    gold = _gold_text(game_data)
    if gold is None:
        return False
    expected = _verdicts(gold)
    return bool(expected) and _verdicts(_web_of_lies_span(answer)) == expected


# ----------------------------------------------------------------------------------------------- Time Sequence


def verify_time_sequence(game_data: dict, answer: str) -> bool:
    """The last ``[max_len, count]`` list matches the recorded answers."""
    records = metadata_of(game_data).get("records")
    truth = records.get("answers") if isinstance(records, dict) else None
    if not isinstance(truth, dict):
        return False
    lists = re.findall(r"\[[^\[\]]*\]", answer)
    if not lists:
        return False
    try:
        given = json.loads(lists[-1].replace("，", ","))
    except ValueError:
        return False
    if not isinstance(given, list) or len(given) < 2:
        return False
    return given[0] == truth.get("answer_maxLen") and given[1] == truth.get("answer_nums")


# ------------------------------------------------------------------------------------------------ Zebra Puzzle


def _same_structure(expected: Any, given: Any) -> bool:
    """Deep equality that also requires equal types at every level (upstream's type-safe comparison)."""
    if type(expected) is not type(given):
        return False
    if isinstance(expected, dict):
        return expected.keys() == given.keys() and all(_same_structure(expected[k], given[k]) for k in expected)
    if isinstance(expected, list):
        return len(expected) == len(given) and all(_same_structure(e, g) for e, g in zip(expected, given))
    return expected == given


def verify_zebra_puzzle(game_data: dict, answer: str) -> bool:
    """The JSON answer object equals the gold one; a gold answer that is not a JSON object must match verbatim."""
    raw = game_data.get("answer")
    response = answer.split("```json")[-1].split("```")[0].strip()
    if isinstance(raw, dict):  # a record whose gold object was stored already decoded
        expected, gold = raw, None
    else:
        gold = _gold_text(game_data)
        if gold is None:
            return False
        try:
            expected = json.loads(gold)
        except ValueError:
            return response == gold
    if not isinstance(expected, dict):
        return response == gold
    given = json_or_literal(response)
    return isinstance(given, dict) and _same_structure(expected, given)


# ------------------------------------------------------------------------------------------------------ Cipher


def verify_cipher(game_data: dict, answer: str) -> bool:
    """The answer is the gold text (the gold is stored as ``[[TEXT]]``).

    Upstream strips a ```python fence and evaluates the rest, requiring ``[["TEXT"]]``; here the same literal is
    read with ``ast.literal_eval``. The KOR-Bench-style bare form ``[[TEXT]]`` is also accepted (compared after the
    same whitespace trimming), because the task's generator is not published and its prompt may ask for that form;
    this makes the task more lenient than upstream for answers of that form.
    """
    gold = _gold_text(game_data)
    if gold is None or len(gold) < 4 or not (gold.startswith("[[") and gold.endswith("]]")):
        return False
    expected = gold[2:-2]
    blocks = fenced_blocks(answer, "python")
    text = (blocks[-1] if blocks else answer).strip()
    if literal(text) == [[expected]]:
        return True
    match = re.fullmatch(r"\[\[(.*)\]\]", text, re.DOTALL)
    return match is not None and match.group(1).strip() == expected.strip()


VERIFIERS = {
    "boolean_expressions": verify_boolean_expressions,
    "cipher": verify_cipher,
    "object_properties": verify_object_properties,
    "space_reasoning": verify_space_reasoning,
    "time_sequence": verify_time_sequence,
    "web_of_lies": verify_web_of_lies,
    "word_sorting": verify_word_sorting,
    "word_sorting_mistake": verify_word_sorting_mistake,
    "zebra_puzzle": verify_zebra_puzzle,
}
