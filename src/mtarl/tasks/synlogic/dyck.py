"""Verifiers of the three SynLogic Dyck-language tasks.

- ``dyck_language``: the completed bracket sequence; whitespace, escaped newlines and surrounding quotes are
  ignored, then it must equal ``metadata["full_sequence"]``.
- ``dyck_language_errors``: the 1-based position of the first closing error, or ``-1`` for a valid sequence
  (a bare "valid"/"合法" also means ``-1``, as upstream).
- ``dyck_language_reasoning_errors``: the set of wrong thought numbers equals ``metadata["error_indices"]``; an
  empty answer or "no errors" is right when there are none.
"""

from __future__ import annotations

import re

from mtarl.tasks.synlogic._common import is_int, metadata_of, parse_int


def verify_dyck_language(game_data: dict, answer: str) -> bool:
    """The answer, stripped of whitespace and quotes, is the full sequence."""
    full = metadata_of(game_data).get("full_sequence")
    if not isinstance(full, str) or not full:
        return False
    text = "".join(answer.split())
    for escape in ("\\n", "\\t", "\\r"):  # models sometimes echo escaped newlines
        text = text.replace(escape, "")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    return text == full


_VALID_WORDS = re.compile(r"\b(valid|correct)\b|合法", re.IGNORECASE)
_INVALID_WORDS = re.compile(r"\b(invalid|incorrect|not valid)\b|不合法", re.IGNORECASE)


def _first_error_answer(answer: str) -> int | None:
    """The position the answer names: an integer, or -1 for a plain statement that the sequence is valid."""
    value = parse_int(answer)
    if value is not None:
        return value
    if _VALID_WORDS.search(answer) and not _INVALID_WORDS.search(answer):
        return -1
    return None


def verify_dyck_language_errors(game_data: dict, answer: str) -> bool:
    """The first error position (or -1 for a valid sequence) matches."""
    meta = metadata_of(game_data)
    expected = -1 if meta.get("is_valid") else meta.get("first_error_pos")
    if not is_int(expected):
        expected = parse_int(expected)
    if expected is None:
        return False
    return _first_error_answer(answer.strip()) == expected


_NO_ERRORS = {"", "无问题", "no", "无错误", "no error", "no errors", "no mistakes", "all correct"}


def verify_dyck_language_reasoning_errors(game_data: dict, answer: str) -> bool:
    """The set of erroneous thought numbers matches (upstream keeps only the digits and commas of the answer)."""
    expected = metadata_of(game_data).get("error_indices")
    if not isinstance(expected, list) or not all(is_int(i) for i in expected):
        return False
    text = answer.strip()
    if any(word in text.lower() for word in ("不确定", "不知道", "unclear")):
        return False
    if text.lower() in _NO_ERRORS:
        return not expected
    digits = re.sub(r"[^0-9,]", "", text.replace("，", ","))
    named = {int(part) for part in digits.split(",") if part.isdigit()}
    return named == set(expected)


VERIFIERS = {
    "dyck_language": verify_dyck_language,
    "dyck_language_errors": verify_dyck_language_errors,
    "dyck_language_reasoning_errors": verify_dyck_language_reasoning_errors,
}
