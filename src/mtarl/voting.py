"""The one answer-voting rule of the study: which extracted answers count as the same vote.

Used by the majority-vote reward (``mtarl.rewards``, TTRL) and by maj@k (``mtarl.metrics``), so that the reward and
the metric vote alike:

- ``canonical_answer``: whitespace runs collapsed, ends stripped; an empty answer is no answer (``None``);
  arithmetic answers (add3, mul2) vote by integer value;
- ``vote_keys``: one key per answer of a group; math answers join the class of the first answer that math-verify
  finds equivalent (``\\frac{1}{2}`` and ``0.5`` vote together), every other family votes by ``canonical_answer``.
"""

from __future__ import annotations

import re
from typing import Sequence

_WS = re.compile(r"\s+")


def canonical_answer(family: str | None, answer: str | None) -> str | None:
    """The key under which answers vote together: integers by value for arithmetic, else whitespace-normalised."""
    if answer is None:
        return None
    text = _WS.sub(" ", answer).strip()
    if family in ("add3", "mul2") and re.fullmatch(r"[+-]?\d+", text):
        return str(int(text))
    return text or None


def vote_keys(family: str | None, answers: Sequence[str | None]) -> list[str | None]:
    """Keys under which one group's answers vote (None = no vote): math answers by math-verify equivalence to the
    first answer of their class, every other family by ``canonical_answer``."""
    keys = [canonical_answer(family, a) for a in answers]
    if family != "math":
        return keys
    from mtarl.tasks.math import verify_many

    representatives: list[str] = []
    cluster: dict[str, str] = {}
    for key in dict.fromkeys(k for k in keys if k is not None):
        same = verify_many([(key, rep) for rep in representatives]) if representatives else []
        cluster[key] = next((rep for rep, ok in zip(representatives, same) if ok), key)
        if cluster[key] == key:
            representatives.append(key)
    return [None if k is None else cluster[k] for k in keys]
