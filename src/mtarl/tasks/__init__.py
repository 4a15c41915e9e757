"""Answer format, extraction and verification shared by every task (study.md section 6).

A completion is scored in two parts, as the study's rewards need them separately:
- ``has_format``: the format gate, ``<think>...</think>`` then ``<answer>...</answer>`` (across newlines);
- ``extract_answer``: the content of the *last* ``<answer>`` block (across newlines), or ``None``.
``has_scratchpad`` (a diagnostic, not a score) tells the two strategies apart: work written inside ``<think>``, or a
direct answer after an empty one.
A task family then decides whether an extracted answer equals the gold one. ``correct`` in every output table is
the gated score ``fmt * acc``, the quantity the ground-truth reward trains on; it is None (null) for every answer to
a problem whose gold answer the verifier cannot read (a math gold math-verify parses nothing from): such problems
get no reward and are left out of the metrics (``mtarl.metrics.drop_unscorable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# study.md 6.1 (project default): DOTALL, full match on the stripped response.
FORMAT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def has_format(completion: str) -> bool:
    """The format gate: the stripped completion is ``<think>..</think>`` then ``<answer>..</answer>``, nothing else."""
    return FORMAT_RE.fullmatch(completion.strip()) is not None


def extract_answer(completion: str) -> str | None:
    """The stripped content of the last ``<answer>...</answer>`` block, or ``None`` if there is none."""
    matches = ANSWER_RE.findall(completion)
    return matches[-1].strip() if matches else None


def has_scratchpad(completion: str) -> bool:
    """Whether the completion's first ``<think>...</think>`` block holds anything but whitespace (the scratchpad
    strategy; formatted or not)."""
    match = THINK_RE.search(completion)
    return match is not None and match.group(1).strip() != ""


@dataclass(frozen=True)
class Verdict:
    extracted: str | None
    format_ok: bool
    accurate: bool | None  # the extracted answer equals the gold one, whatever the format; None: unscorable gold

    @property
    def correct(self) -> bool | None:
        """The gated score fmt * acc; None when the gold cannot be scored (left out of rewards and metrics)."""
        return None if self.accurate is None else self.format_ok and self.accurate


# family name -> function(extracted answer, gold answer) -> bool
_CHECKERS: dict[str, Callable[[str, str], bool]] = {}


def register(family: str, checker: Callable[[str, str], bool]) -> None:
    _CHECKERS[family] = checker


def known_families() -> list[str]:
    return sorted(_CHECKERS)


def verify(family: str, completion: str, gold: str) -> Verdict:
    """Score one completion of a problem of ``family`` against its gold answer."""
    return verify_batch([family], [completion], [gold])[0]


def verify_batch(families: list[str], completions: list[str], golds: list[str]) -> list[Verdict]:
    """``verify`` for many completions; math answers are checked together (deduplicated, in worker processes)."""
    extracted = [extract_answer(c) for c in completions]
    formats = [has_format(c) for c in completions]
    accurate: list[bool | None] = [None] * len(completions)
    math_rows = [i for i, f in enumerate(families) if f == "math" and extracted[i] is not None]
    if math_rows:
        results = math.verify_many([(extracted[i], golds[i]) for i in math_rows])
        for i, ok in zip(math_rows, results):
            accurate[i] = ok
    for i, family in enumerate(families):
        if accurate[i] is None:
            try:
                check = _CHECKERS[family]
            except KeyError:
                raise ValueError(f"unknown task family {family!r}; known: {', '.join(known_families())}") from None
            accurate[i] = extracted[i] is not None and check(extracted[i], golds[i])
    verdicts = [Verdict(e, f, bool(a)) for e, f, a in zip(extracted, formats, accurate)]
    math_problems = [i for i, f in enumerate(families) if f == "math"]
    if math_problems:
        scorable = math.gold_scorable_many([golds[i] for i in math_problems])
        for i, ok in zip(math_problems, scorable):
            if not ok:
                verdicts[i] = Verdict(extracted[i], formats[i], None)
    return verdicts


from mtarl.tasks import arith  # noqa: E402  (registers the miniature families)
from mtarl.tasks import math  # noqa: E402  (registers the paper's math family)
from mtarl.tasks import korbench, synlogic  # noqa: E402  (registers the SynLogic-Easy and KOR-Bench families)

__all__ = ["Verdict", "arith", "extract_answer", "has_format", "has_scratchpad", "known_families", "register", "verify",
           "verify_batch"]
