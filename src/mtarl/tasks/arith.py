"""Procedurally generated arithmetic tasks of the miniature study.

Families (each a deterministic function of a seed):
- ``add3``: ``a+b=`` with 3-digit operands, e.g. ``123+456=`` -> ``579``;
- ``mul2``: ``a*b=`` with 2-digit operands, e.g. ``37*84=`` -> ``3108`` (harder: carries across all digits).

The reference completion is ``<think></think><answer>579</answer>``: the study's answer format with an empty
reasoning span, so that the miniature runs the same format gate and extraction as the paper configuration.

Pretraining text may also use (``mtarl.pretrain``'s latent behaviours):
- a scratchpad strategy, the working written inside ``<think>`` (``Family.scratchpad``): add3 digit by digit from
  the units with the carry after each digit (``456+789=`` -> ``51 41 21``: 6+9 = 15, 5+8+1 = 14, 4+7+1 = 12), mul2
  its two partial products (``37*84=`` -> ``148+2960``); every symbol is already in the character tokenizer;
- plausible wrong answers (``plausible_wrong``): one digit off by one, as a dropped or spurious carry leaves it.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mtarl import tasks

INTEGER_RE = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Family:
    name: str
    symbol: str
    apply: Callable[[int, int], int]
    low: int  # smallest operand
    high: int  # largest operand
    work: Callable[[int, int], str]  # the scratchpad that works a problem out (see module docstring)

    def prompt(self, a: int, b: int) -> str:
        return f"{a}{self.symbol}{b}="

    def answer(self, a: int, b: int) -> str:
        return str(self.apply(a, b))

    def scratchpad(self, a: int, b: int) -> str:
        return self.work(a, b)

    @property
    def n_distinct(self) -> int:
        return (self.high - self.low + 1) ** 2


def addition_work(a: int, b: int) -> str:
    """Column addition from the units: each sum digit followed by its carry, columns separated by spaces."""
    columns, carry = [], 0
    while a or b:
        total = a % 10 + b % 10 + carry
        carry = total // 10
        columns.append(f"{total % 10}{carry}")
        a, b = a // 10, b // 10
    return " ".join(columns)


def multiplication_work(a: int, b: int) -> str:
    """The partial products of ``a`` with the units and the tens of ``b``, as a sum."""
    return f"{a * (b % 10)}+{a * (b // 10 * 10)}"


FAMILIES = {
    "add3": Family("add3", "+", operator.add, 100, 999, addition_work),
    "mul2": Family("mul2", "*", operator.mul, 10, 99, multiplication_work),
}


def reference_completion(answer: str, formatted: bool = True, work: str = "") -> str:
    """What a perfect model writes: the answer in the study's format, with ``work`` (a scratchpad, empty for a
    direct answer) inside ``<think>``; or the bare answer, the plain style of unformatted pretraining text."""
    return f"<think>{work}</think><answer>{answer}</answer>" if formatted else answer


def plausible_wrong(answer: str, rng: np.random.Generator) -> str:
    """``answer`` (a positive integer) with one uniformly chosen digit moved by one, up or down at random; the
    direction flips where it would leave 0-9 or give a leading zero, so the result is always a different integer."""
    digits = list(answer)
    position = int(rng.integers(len(digits)))
    step = 1 if rng.random() < 0.5 else -1
    lowest = 1 if position == 0 and len(digits) > 1 else 0
    if not lowest <= int(digits[position]) + step <= 9:
        step = -step
    digits[position] = str(int(digits[position]) + step)
    return "".join(digits)


def same_integer(extracted: str, gold: str) -> bool:
    """Integer equality; anything that is not a plain integer is wrong (so ``0579`` == ``579``, ``5 79`` is not)."""
    if not INTEGER_RE.fullmatch(extracted):
        return False
    return int(extracted) == int(gold)


def sample_operands(family: Family, count: int, rng: np.random.Generator, exclude: set[tuple[int, int]] = frozenset()) -> list[tuple[int, int]]:
    """``count`` distinct operand pairs not in ``exclude``, uniformly at random."""
    if count + len(exclude) > family.n_distinct:
        raise ValueError(f"{family.name} has only {family.n_distinct} distinct problems, asked for {count}")
    chosen: dict[tuple[int, int], None] = {}
    while len(chosen) < count:
        draw = rng.integers(family.low, family.high + 1, size=(2 * (count - len(chosen)) + 8, 2))
        for a, b in draw.tolist():
            pair = (a, b)
            if pair not in exclude and pair not in chosen:
                chosen[pair] = None
                if len(chosen) == count:
                    break
    return list(chosen)


for _name in FAMILIES:
    tasks.register(_name, same_integer)
