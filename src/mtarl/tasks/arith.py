"""Procedurally generated arithmetic tasks of the miniature study.

Families (each a deterministic function of a seed):
- ``add3``: ``a+b=`` with 3-digit operands, e.g. ``123+456=`` -> ``579``;
- ``mul2``: ``a*b=`` with 2-digit operands, e.g. ``37*84=`` -> ``3108`` (harder: carries across all digits).

The reference completion is ``<think></think><answer>579</answer>``: the study's answer format with an empty
reasoning span, so that the miniature runs the same format gate and extraction as the paper configuration.
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

    def prompt(self, a: int, b: int) -> str:
        return f"{a}{self.symbol}{b}="

    def answer(self, a: int, b: int) -> str:
        return str(self.apply(a, b))

    @property
    def n_distinct(self) -> int:
        return (self.high - self.low + 1) ** 2


FAMILIES = {
    "add3": Family("add3", "+", operator.add, 100, 999),
    "mul2": Family("mul2", "*", operator.mul, 10, 99),
}


def reference_completion(answer: str, formatted: bool = True) -> str:
    """What a perfect model writes: the answer in the study's format (or bare, for unformatted pretraining text)."""
    return f"<think></think><answer>{answer}</answer>" if formatted else answer


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
