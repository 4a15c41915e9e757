"""Shared, bounded parsing helpers for the SynLogic verifiers.

Every helper takes model text and returns ``None`` (or an empty list) instead of raising when the text is malformed,
so a verifier can stay a short sequence of checks. Nothing here evaluates model output as code: literals go through
``ast.literal_eval`` and arithmetic through :func:`evaluate_arithmetic`, a small interpreter over ``ast`` restricted to
numbers, the four operations (plus ``%`` where a task allows it) and parentheses, computed exactly with fractions.
"""

from __future__ import annotations

import ast
import json
import re
from fractions import Fraction
from typing import Any, Iterable

# An answer longer than this is not a plausible solution to any SynLogic task (the largest, a 30x30 ARC grid, is
# about 3k characters); capping keeps every scan below linear-time budgets even on degenerate model output.
MAX_ANSWER_CHARS = 20_000
# Guards for the arithmetic interpreter: expression size and the size of intermediate fractions.
MAX_EXPRESSION_NODES = 400
MAX_FRACTION_BITS = 4_096


def clip(text: Any) -> str | None:
    """``text`` if it is a string of plausible size, else ``None``."""
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return None
    return text


def metadata_of(game_data: dict) -> dict:
    """The ``metadata`` mapping of a game record (decoded if it was stored as a JSON string), ``{}`` if absent."""
    meta = game_data.get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return {}
    return meta if isinstance(meta, dict) else {}


# ---------------------------------------------------------------------------------------------------------- blocks


def fenced_blocks(text: str, language: str | None = "python") -> list[str]:
    """Contents of the fenced code blocks in ``text`` (```` ```python ... ``` ```` by default), in order.

    ``language=None`` takes every fenced block whatever its tag (the tag line is dropped). A scan with ``str.find``
    instead of a regular expression keeps this linear even for text with many unclosed fences.
    """
    blocks: list[str] = []
    opener = "```" + (language or "")
    start = text.find(opener)
    while start != -1:
        body_start = start + len(opener)
        end = text.find("```", body_start)
        if end == -1:
            break
        body = text[body_start:end]
        if language is None and body and not body[0].isspace():
            # a language tag such as ```json: drop the rest of the opening line
            newline = body.find("\n")
            body = body[newline + 1 :] if newline != -1 else ""
        blocks.append(body.strip())
        start = text.find(opener, end + 3)
    return blocks


def double_bracket_contents(text: str, newlines: bool = False, brackets: bool = True) -> list[str]:
    r"""The contents of the non-overlapping ``[[...]]`` in ``text``, like ``re.findall(r"\[\[(.*?)\]\]")``.

    ``newlines=False`` mirrors the regex without DOTALL (content cannot span lines); ``brackets=False`` mirrors
    ``\[\[([^\]]+)\]\]`` (content holds no ``]`` and is not empty). Written with ``str.find`` so that text with
    many unclosed ``[[`` costs linear rather than quadratic time.
    """
    found: list[str] = []
    pos = 0
    while True:
        start = text.find("[[", pos)
        if start == -1:
            return found
        body = start + 2
        if brackets:
            end = text.find("]]", body)
            if end == -1:
                return found
            content = text[body:end]
            if not newlines and "\n" in content:
                pos = body + content.rfind("\n") + 1  # no start before that newline can match
                continue
        else:
            end = text.find("]", body)
            if end == -1:
                return found
            content = text[body:end]
            if text[end : end + 2] != "]]" or not content:
                pos = max(end, start + 1)  # every start up to the first ']' meets the same ']'
                continue
        found.append(content)
        pos = end + 2


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text``, with nested braces balanced; ``None`` if absent."""
    start = text.rfind("\\boxed{")
    if start == -1:
        return None
    depth, i = 1, start + len("\\boxed{")
    begin = i
    while i < len(text):
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i].strip()
        i += 1
    return None


def nested_spans(text: str, opening: str = "[", closing: str = "]") -> list[str]:
    """Outermost balanced ``[[ ... ]]``-like spans (an opening bracket whose next non-space character opens again).

    One pass with a stack finds every balanced bracket pair; a pair counts when its content starts with another
    opening bracket (a list of lists), and only spans not inside another such span are kept, in text order.
    """
    stack: list[int] = []
    spans: list[tuple[int, int]] = []
    for i, char in enumerate(text):
        if char == opening:
            stack.append(i)
        elif char == closing and stack:
            start = stack.pop()
            inner = text[start + 1 : i].lstrip()
            if inner.startswith(opening):
                spans.append((start, i + 1))
    spans.sort()
    outermost: list[tuple[int, int]] = []
    for start, end in spans:
        if outermost and start < outermost[-1][1]:
            continue  # inside the previous outermost span
        outermost.append((start, end))
    return [text[start:end] for start, end in outermost]


def literal(text: str) -> Any:
    """``ast.literal_eval`` of ``text``, or ``None`` when it is not a Python literal (never evaluates code)."""
    if clip(text) is None:
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def json_or_literal(text: str) -> Any:
    """JSON first, then a Python literal (single quotes, tuples, ``True``); ``None`` if neither parses."""
    if clip(text) is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return literal(text)


# ----------------------------------------------------------------------------------------------------------- grids


def is_int(value: Any) -> bool:
    """An integer that is not a bool (``True`` would otherwise pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_grid(value: Any, rows: int | None = None, cols: int | None = None) -> list[list[Any]] | None:
    """``value`` as a list of row lists (tuples accepted), optionally of an exact shape; ``None`` otherwise."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    grid = [list(row) for row in value if isinstance(row, (list, tuple))]
    if len(grid) != len(value):
        return None
    if rows is not None and len(grid) != rows:
        return None
    width = cols if cols is not None else len(grid[0])
    if any(len(row) != width for row in grid):
        return None
    return grid


def int_grid(value: Any, size: int | None = None) -> list[list[int]] | None:
    """A square grid of plain integers (``size`` x ``size`` when given), else ``None``."""
    grid = as_grid(value, size, size)
    if grid is None or len(grid) != len(grid[0]):
        return None
    if not all(is_int(cell) for row in grid for cell in row):
        return None
    return grid


def is_permutation(values: Iterable[Any], n: int) -> bool:
    """``values`` are exactly 1..n once each."""
    values = list(values)
    return len(values) == n and all(is_int(v) for v in values) and sorted(values) == list(range(1, n + 1))


def latin_square(grid: list[list[int]]) -> bool:
    """Every row and every column is a permutation of 1..n."""
    n = len(grid)
    return all(is_permutation(row, n) for row in grid) and all(is_permutation(col, n) for col in zip(*grid))


def neighbours(r: int, c: int, rows: int, cols: int, diagonal: bool = False) -> Iterable[tuple[int, int]]:
    """The in-bounds orthogonal (and optionally diagonal) neighbours of cell ``(r, c)``."""
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if (dr, dc) == (0, 0) or (not diagonal and dr and dc):
                continue
            nr, nc = r + dr, c + dc
            if 0 <= nr < rows and 0 <= nc < cols:
                yield nr, nc


# ------------------------------------------------------------------------------------------------------ arithmetic

_BINARY = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", lambda a, b: a / b),
    ast.Mod: ("%", lambda a, b: a % b),
}


class _Rejected(Exception):
    """The expression uses something outside the allowed arithmetic, or its value grew past the size guard."""


def evaluate_arithmetic(expression: str, operators: str = "+-*/", unary: bool = True) -> Fraction | None:
    """The exact value of an arithmetic expression, or ``None`` if it is not one (or divides by zero).

    Allowed: integer literals, the binary operators listed in ``operators`` (from ``+ - * / %``), unary ``-``/``+``
    when ``unary`` and parentheses. Anything else (names, calls, ``**``, ``//``, floats, strings) is rejected, so
    this is safe on model output. ``/`` is true division, computed exactly; ``%`` follows Python's sign convention.
    """
    if clip(expression) is None or len(expression) > 2_000:
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if sum(1 for _ in ast.walk(tree)) > MAX_EXPRESSION_NODES:
        return None
    try:
        return _evaluate(tree.body, operators, unary)
    except (_Rejected, ZeroDivisionError, RecursionError):
        return None


def _evaluate(node: ast.AST, operators: str, unary: bool) -> Fraction:
    if isinstance(node, ast.Constant) and is_int(node.value):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and unary and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, operators, unary)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        symbol, apply = _BINARY[type(node.op)]
        if symbol not in operators:
            raise _Rejected(symbol)
        value = apply(_evaluate(node.left, operators, unary), _evaluate(node.right, operators, unary))
        if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_FRACTION_BITS:
            raise _Rejected("too large")
        return value
    raise _Rejected(type(node).__name__)


INTEGER_RE = re.compile(r"[+-]?\d+")


def parse_int(text: Any) -> int | None:
    """``text`` as an integer (surrounding whitespace allowed), else ``None``."""
    if is_int(text):
        return text
    if isinstance(text, str) and len(text) < 100 and INTEGER_RE.fullmatch(text.strip()):
        return int(text.strip())
    return None
