"""Verifiers of the SynLogic tasks whose answer is a number or an arithmetic expression.

- ``mathador`` (Game of 24): a ```python block with one expression over the given numbers. Upstream checks the
  numbers and operator characters, evaluates, then ends in ``abs(result - result) < 1e-10`` (always true, study.md
  P10). Here the value must equal the target ``metadata["result"]`` exactly.
- ``math_path``: the ``[[...]]`` equation with every ``?`` of the query filled in; digits and operators must match
  the query and the equation must hold.
- ``cryptarithm``: the last numeric equation in the answer, spaces removed, equals the gold equation.
- ``buggy_tables``: the last number with exactly two decimals equals the gold one.
- ``operation``: math-verify equivalence of the answer and the gold (upstream parses the whole answer too), through
  the project's hang-proof math checker :func:`mtarl.tasks.math.check`.
"""

from __future__ import annotations

import re
from fractions import Fraction

from mtarl.tasks import math as math_task
from mtarl.tasks.synlogic._common import double_bracket_contents, evaluate_arithmetic, fenced_blocks, metadata_of

# ----------------------------------------------------------------------------------------------- Game of 24


def verify_mathador(game_data: dict, answer: str) -> bool:
    """The last ```python block is an expression using exactly the given numbers that evaluates to the target."""
    meta = metadata_of(game_data)
    numbers, operators, target = meta.get("numbers"), meta.get("operators"), meta.get("result")
    if not isinstance(numbers, list) or not isinstance(operators, list) or target is None:
        return False
    blocks = fenced_blocks(answer, "python")
    if not blocks:
        return False  # the prompt asks for a ```python block; upstream scores anything else 0
    expression = blocks[-1]
    allowed = {op for op in operators if isinstance(op, str) and len(op) == 1}
    if any(not (char.isdigit() or char.isspace() or char in "()" or char in allowed) for char in expression):
        return False
    if sorted(re.findall(r"\d+", expression)) != sorted(str(n) for n in numbers):
        return False  # each given number used exactly once, nothing else
    try:
        goal = Fraction(str(target))
    except (ValueError, TypeError, ZeroDivisionError):
        return False
    value = evaluate_arithmetic(expression, operators="".join(sorted(allowed & set("+-*/%"))), unary="-" in allowed)
    return value is not None and value == goal  # the fix of P10: the value must be the target


# --------------------------------------------------------------------------------------------------- Math Path

_SYMBOLS = "+-*/%"


def verify_math_path(game_data: dict, answer: str) -> bool:
    """The last ``[[...]]`` is the query equation with its ``?`` filled by digits, and it holds."""
    meta = metadata_of(game_data)
    query = meta.get("query_expr")
    if not isinstance(query, str):
        return False
    filled = double_bracket_contents(answer)
    if not filled:
        return False
    test = filled[-1].replace(" ", "").strip()
    query = query.replace(" ", "").strip()
    query_digits = [c for c in query if c.isdigit() or c == "?"]
    test_digits = [c for c in test if c.isdigit()]
    if len(query_digits) != len(test_digits):
        return False
    if any(q != "?" and q != t for q, t in zip(query_digits, test_digits)):
        return False  # a given digit was changed
    if [c for c in query if c in _SYMBOLS] != [c for c in test if c in _SYMBOLS]:
        return False  # an operator was changed, added or dropped
    sides = test.split("=")
    if len(sides) != 2:
        return False
    left, right = (evaluate_arithmetic(side, operators=_SYMBOLS) for side in sides)
    return left is not None and right is not None and left == right


# ------------------------------------------------------------------------------------------------- Cryptarithm

# An equation "a op b op ... = r" read backwards from its '=': the left side reversed is matched from its end, so
# each stretch of text is scanned once (a forward regex retried at every digit is quadratic on "1+1+1+...").
_CHAIN_REVERSED = re.compile(r"\s*\d+(?:\s*[+\-*]\s*\d+)+")
_RESULT = re.compile(r"\s*-?\d+")


def numeric_equations(text: str) -> list[str]:
    """The non-overlapping equations ``12 + 34 = 46`` in ``text``, left to right (upstream's equation regex)."""
    found, consumed, previous = [], 0, -1
    for position, char in enumerate(text):
        if char != "=":
            continue
        segment_start, previous = max(consumed, previous + 1), position
        chain = _CHAIN_REVERSED.match(text[segment_start:position][::-1])
        result = _RESULT.match(text, position + 1)
        if chain and result:
            found.append(text[position - chain.end() : result.end()].strip())
            consumed = result.end()
    return found


def verify_cryptarithm(game_data: dict, answer: str) -> bool:
    """The last numeric equation in the answer equals the gold equation, ignoring spaces."""
    gold = game_data.get("answer")
    if not isinstance(gold, str) or not gold.strip():
        return False
    equations = numeric_equations(answer)
    if not equations:
        return False
    return equations[-1].replace(" ", "") == gold.replace(" ", "")


# ------------------------------------------------------------------------------------------------ Buggy Tables

# A match may only start at a '-' or at the first digit of a run: retrying inside long digit runs is quadratic.
_TWO_DECIMALS_RE = re.compile(r"(?:-(?=\d)|(?<!\d))\d+\.\d{2}\b")


def _buggy_tables_value(text: str) -> str:
    """Upstream's normalisation: the last number with exactly two decimals, else the whole stripped text."""
    text = text.strip()
    matches = _TWO_DECIMALS_RE.findall(text)
    return matches[-1] if matches else text


def verify_buggy_tables(game_data: dict, answer: str) -> bool:
    """The answer's last two-decimal number equals the gold one."""
    gold = game_data.get("answer")
    if not isinstance(gold, str) or not gold.strip():
        return False
    return _buggy_tables_value(answer) == _buggy_tables_value(gold)


# --------------------------------------------------------------------------------------------------- Operation


def verify_operation(game_data: dict, answer: str) -> bool:
    """The answer is mathematically equivalent to the gold answer."""
    gold = game_data.get("answer")
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        gold = str(gold)
    if not isinstance(gold, str) or not gold.strip() or len(answer) > 4_000:
        return False
    if answer.strip() == gold.strip():
        return True
    # the project's math verifier: math-verify, gold first, in worker processes under deadlines (hang-proof and
    # usable from any thread, unlike math-verify's own SIGALRM timeouts)
    return math_task.check(answer, gold)


VERIFIERS = {
    "buggy_tables": verify_buggy_tables,
    "cryptarithm": verify_cryptarithm,
    "math_path": verify_math_path,
    "mathador": verify_mathador,
    "operation": verify_operation,
}
