"""Reward functions of the training variants: small pure functions of verdicts (study.md section 7.2).

Each maps the verdicts of a batch of completions to one float per completion. ``make_reward_fn`` wraps the one a
variant names into TRL's reward-function signature, and always logs the ground-truth accuracy and format rate, so
that every run reports how well it really does whatever it was rewarded for.
"""

from __future__ import annotations

from typing import Callable, Sequence

from mtarl import tasks
from mtarl.tasks import Verdict


def ground_truth(verdicts: Sequence[Verdict]) -> list[float]:
    """R = fmt * acc."""
    return [float(v.correct) for v in verdicts]


REWARDS: dict[str, Callable[[Sequence[Verdict]], list[float]]] = {
    "ground_truth": ground_truth,
}


def make_reward_fn(name: str):
    """The TRL reward function for reward ``name``; dataset columns ``answer`` and ``family`` reach it as lists."""
    try:
        reward = REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(sorted(REWARDS))}") from None

    def reward_fn(completions: list[str], answer: list[str], family: list[str], log_metric=None, **_) -> list[float]:
        verdicts = [tasks.verify(f, c, a) for c, a, f in zip(completions, answer, family, strict=True)]
        if log_metric is not None:
            log_metric("gt_accuracy", sum(v.correct for v in verdicts) / len(verdicts))
            log_metric("format_rate", sum(v.format_ok for v in verdicts) / len(verdicts))
        return reward(verdicts)

    reward_fn.__name__ = name
    return reward_fn
