"""Reward functions of the training variants (study.md 7.2-7.4): small pure functions of verdicts.

| reward           | R_i                                                                      |
|------------------|--------------------------------------------------------------------------|
| ``ground_truth`` | fmt_i * acc_i                                                            |
| ``random``       | fmt_i * B_i (gated) or B_i, B_i ~ Bernoulli(p) seeded per (seed, step, prompt id, sample) |
| ``incorrect``    | fmt_i * (1 - acc_i) (gated) or 1 - acc_i                                 |
| ``format``       | fmt_i                                                                    |
| ``majority``     | fmt_i * 1[ans_i == majority answer of its group] (gated) (TTRL)          |
| ``self_certainty`` | mean token log-prob of y_i under the pre-update policy (no gate)      |
| ``constant``     | 0 (the token-entropy reading of entropy minimisation trains on the entropy loss alone) |

``majority`` and ``self_certainty`` need the whole group or the policy, so the trainer computes them
(``mtarl.rl``) with the pure functions here; every other reward is computed per completion by ``RewardFunction``,
which also logs the ground-truth accuracy, format rate and strategy share (completions with a scratchpad,
``tasks.has_scratchpad``) whatever the training reward is.

A problem whose gold the verifier cannot score (``Verdict.accurate is None``) gets ``None`` from ``ground_truth`` and
``incorrect`` (TRL: NaN; ``mtarl.rl.advantages``: advantage 0, out of its group's statistics).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Sequence

from mtarl import tasks
from mtarl.tasks import Verdict
from mtarl.voting import canonical_answer, vote_keys  # noqa: F401  (the voting rule shared with maj@k)

REWARDS = ("ground_truth", "random", "incorrect", "format", "majority", "self_certainty", "constant")
GROUP_REWARDS = ("majority", "self_certainty")  # computed by the trainer after the gather


def ground_truth(verdicts: Sequence[Verdict]) -> list[float | None]:
    return [None if v.correct is None else float(v.correct) for v in verdicts]


def incorrect(verdicts: Sequence[Verdict], gate: bool = True) -> list[float | None]:
    return [None if v.accurate is None else float((v.format_ok or not gate) and not v.accurate) for v in verdicts]


def accuracy(verdicts: Sequence[Verdict]) -> float | None:
    """Ground-truth accuracy over the verdicts whose gold can be scored (None if none can)."""
    scored = [v.correct for v in verdicts if v.correct is not None]
    return sum(scored) / len(scored) if scored else None


def format_only(verdicts: Sequence[Verdict]) -> list[float]:
    return [float(v.format_ok) for v in verdicts]


def uniform(*key) -> float:
    """A uniform number in [0, 1) that is a pure function of ``key``."""
    digest = hashlib.sha256(":".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def sample_indices(prompt_ids: Sequence[str]) -> list[int]:
    """The index of each completion among those of the same prompt id in the batch (0 .. G-1)."""
    seen: Counter[str] = Counter()
    indices = []
    for pid in prompt_ids:
        indices.append(seen[pid])
        seen[pid] += 1
    return indices


def bernoulli_draws(seed: int, step: int, prompt_ids: Sequence[str], p: float) -> list[bool]:
    """B_i ~ Bernoulli(p), reproducible from (seed, step, prompt id, sample index)."""
    return [uniform(seed, step, pid, k) < p for pid, k in zip(prompt_ids, sample_indices(prompt_ids))]


def random_reward(verdicts: Sequence[Verdict], draws: Sequence[bool], gate: bool = True) -> list[float]:
    return [float((v.format_ok or not gate) and b) for v, b in zip(verdicts, draws, strict=True)]


def majority_rewards(keys: Sequence[str | None], formats: Sequence[bool], group_size: int,
                     gate: bool = True, voters: str = "formatted") -> list[float]:
    """TTRL rewards of contiguous groups: 1 for a sample whose answer is its group's majority answer.

    ``keys`` are ``mtarl.voting.vote_keys`` (None = no answer); voters are samples with an answer and, when ``voters`` is
    "formatted", the format; a tie goes to the answer whose first vote has the smallest index; a group with no
    voter gets 0 everywhere. ``keys`` must hold whole groups: pass the gathered batch, never one process's slice.
    """
    if len(keys) % group_size:
        raise ValueError(f"{len(keys)} samples do not form whole groups of {group_size}")
    rewards = []
    for start in range(0, len(keys), group_size):
        group = list(zip(keys[start : start + group_size], formats[start : start + group_size]))
        votes = [k for k, fmt in group if k is not None and (fmt or voters == "all")]
        if not votes:
            rewards.extend([0.0] * group_size)
            continue
        counts = Counter(votes)
        best = max(counts.values())
        label = next(k for k in votes if counts[k] == best)  # first in sample order among the tied
        rewards.extend(float(k == label and (fmt or not gate)) for k, fmt in group)
    return rewards


class RewardFunction:
    """TRL reward function of one variant; dataset columns ``answer``, ``family`` and ``id`` arrive as lists.

    ``last_verdicts`` keeps the verdicts of the latest call for per-example logging (one-shot selection).
    """

    def __init__(self, reward: str, seed: int = 0, gate: bool = True, p: float = 0.5):
        if reward not in REWARDS:
            raise ValueError(f"unknown reward {reward!r}; known: {', '.join(REWARDS)}")
        self.reward, self.seed, self.gate, self.p = reward, seed, gate, p
        self.__name__ = reward
        self.last_verdicts: list[Verdict] = []

    def __call__(self, completions: list, answer: list[str], family: list[str], id: list[str],
                 trainer_state=None, log_metric=None, **_) -> list[float | None]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]  # chat: the assistant turn
        verdicts = tasks.verify_batch(family, texts, answer)
        self.last_verdicts = verdicts
        if log_metric is not None:
            scored = accuracy(verdicts)
            if scored is not None:
                log_metric("gt_accuracy", scored)
            log_metric("format_rate", sum(v.format_ok for v in verdicts) / len(verdicts))
            log_metric("strategy_share", sum(map(tasks.has_scratchpad, texts)) / len(texts))
        step = trainer_state.global_step if trainer_state is not None else 0
        return self.score(verdicts, id, step)

    def score(self, verdicts: Sequence[Verdict], prompt_ids: Sequence[str], step: int) -> list[float | None]:
        if self.reward == "ground_truth":
            return ground_truth(verdicts)
        if self.reward == "incorrect":
            return incorrect(verdicts, self.gate)
        if self.reward == "format":
            return format_only(verdicts)
        if self.reward == "random":
            return random_reward(verdicts, bernoulli_draws(self.seed, step, prompt_ids, self.p), self.gate)
        return [0.0] * len(verdicts)  # constant, or a group reward the trainer fills in
