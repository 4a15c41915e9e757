"""Advantage estimators of the study's RL variants, and the narrow TRL trainer subclass that applies them.

``advantages(rewards, group_size, estimator)`` is the one pure function behind every variant (study.md 7.2):

| estimator     | advantage of sample i in its group of G                           |
|---------------|-------------------------------------------------------------------|
| ``grpo``      | (R_i - mean_G R) / (std_G R + eps)                                |
| ``nsr``       | grpo advantage kept where R_i < 1 (incorrect samples), else 0     |
| ``psr``       | grpo advantage kept where R_i > 0 (correct samples), else 0       |
| ``zhu_psr``   | R_i (no baseline, Zhu et al. 2025)                                |
| ``zhu_nsr``   | R_i - 1                                                           |
| ``w_reinforce`` | lam if R_i = 1 else -1 (lam = 0.1 by default)                   |

``std_G`` is the unbiased (N-1) sample standard deviation over the group, as verl's
``compute_grpo_outcome_advantage`` that produced the paper's runs; ``eps`` = 1e-6 as there (TRL uses 1e-4). A group of
one sample uses mean 0 and std 1, also as verl. Rewards are flat, grouped contiguously (G consecutive entries per
prompt); NaN rewards (unscorable samples) get advantage 0 and are left out of their group's statistics.

``MtarlGRPOTrainer`` subclasses TRL's ``GRPOTrainer`` narrowly: it lets the parent generate and score, then replaces
the advantages with this function's, computes rewards that need the whole group after the cross-process gather
(majority vote) or the policy's log-probs (self-certainty), and optionally applies DAPO dynamic sampling.

With several processes every reward-dependent decision is taken on gathered data, so all processes agree: rewards
are gathered before advantages, votes and the dynamic-sampling keep/draw choice; extra prompts are drawn for the
whole batch from a generator seeded by (run seed, step, draw), identical on every process, which then takes its
slice. The run seed also reaches TRL's colocated vLLM engines (``vllm_seed``), which TRL otherwise seeds by rank only.
"""

from __future__ import annotations

import torch

ESTIMATORS = ("grpo", "nsr", "psr", "zhu_psr", "zhu_nsr", "w_reinforce")


def group_normalized(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    grouped = rewards.view(-1, group_size)
    valid = ~torch.isnan(grouped)
    count = valid.sum(dim=1, keepdim=True)
    filled = torch.where(valid, grouped, torch.zeros_like(grouped))
    mean = filled.sum(dim=1, keepdim=True) / count.clamp(min=1)
    var = (torch.where(valid, grouped - mean, torch.zeros_like(grouped)) ** 2).sum(dim=1, keepdim=True)
    std = (var / (count - 1).clamp(min=1)).sqrt()
    single = count <= 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(std), std)
    return ((grouped - mean) / (std + eps)).view(-1)


def advantages(rewards: torch.Tensor, group_size: int, estimator: str, **kwargs) -> torch.Tensor:
    """Per-sample advantages of flat, contiguously grouped ``rewards`` under ``estimator`` (see module table).

    kwargs: ``eps`` (grpo/nsr/psr, default 1e-6), ``lam`` (w_reinforce, default 0.1).
    """
    rewards = rewards.float()
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be flat with a multiple of group_size={group_size} entries, got {tuple(rewards.shape)}")
    if estimator in ("grpo", "nsr", "psr"):
        adv = group_normalized(rewards, group_size, kwargs.get("eps", 1e-6))
        if estimator == "nsr":
            adv = torch.where(rewards < 1, adv, torch.zeros_like(adv))
        elif estimator == "psr":
            adv = torch.where(rewards > 0, adv, torch.zeros_like(adv))
    elif estimator == "zhu_psr":
        adv = rewards.clone()
    elif estimator == "zhu_nsr":
        adv = rewards - 1
    elif estimator == "w_reinforce":
        lam = kwargs.get("lam", 0.1)
        adv = torch.where(rewards >= 1, torch.full_like(rewards, lam), torch.full_like(rewards, -1.0))
    else:
        raise ValueError(f"unknown advantage estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    return torch.nan_to_num(torch.where(torch.isnan(rewards), torch.zeros_like(adv), adv), nan=0.0)


# -- the trainer ---------------------------------------------------------------------------------------------------

import contextlib  # noqa: E402
import functools  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from accelerate.utils import gather, gather_object  # noqa: E402
from trl import GRPOTrainer  # noqa: E402
from trl.generation.vllm_generation import VLLMGeneration  # noqa: E402

from mtarl import rewards as R  # noqa: E402
from mtarl.launch import vllm_seed  # noqa: E402,F401  (the engines' seed; the server's too)


@dataclass
class VariantSpec:
    """What a variant changes in GRPO: how rewards become advantages, and how rewards are computed."""

    estimator: str = "grpo"
    estimator_kwargs: dict = field(default_factory=dict)
    group_reward: str | None = None  # "majority" or "self_certainty": computed here, after the gather
    gate: bool = True
    voters: str = "formatted"
    dynamic_sampling: bool = False
    max_gen_batches: int = 2
    fill: str = "duplicate"  # when too few groups survive: "duplicate" kept groups, or keep "zero_std" groups
    seed: int = 0


def informative_groups(rewards: torch.Tensor, group_size: int) -> list[int]:
    """Indices of the groups whose rewards are not all equal (they carry a GRPO gradient)."""
    grouped = rewards.view(-1, group_size)
    return torch.nonzero(grouped.max(dim=1).values > grouped.min(dim=1).values).flatten().tolist()


def count_informative(batch_rewards: list[torch.Tensor], group_size: int) -> int:
    return sum(len(informative_groups(r, group_size)) for r in batch_rewards)


def choose_groups(batch_rewards: list[torch.Tensor], group_size: int, n_groups: int,
                  fill: str = "duplicate") -> tuple[list[tuple[int, int]], int, int]:
    """Which (batch, group) pairs make the training batch under DAPO dynamic sampling.

    Informative groups first, in generation order. If fewer than ``n_groups`` survive: ``duplicate`` repeats the
    kept ones (the official code's behaviour), ``zero_std`` adds uninformative groups instead (no duplicates). If none
    survives, the last batch is used unfiltered (all advantages zero), as the official code does.
    Returns (chosen pairs, number of informative groups, number of duplicated groups).
    """
    chosen = [(b, g) for b, r in enumerate(batch_rewards) for g in informative_groups(r, group_size)]
    kept = len(chosen)
    if kept == 0:
        return [(len(batch_rewards) - 1, g) for g in range(n_groups)], 0, 0
    if kept < n_groups and fill == "zero_std":
        taken = set(chosen)
        chosen += [(b, g) for b, r in enumerate(batch_rewards) for g in range(r.numel() // group_size)
                   if (b, g) not in taken][: n_groups - kept]
    duplicated = 0
    while len(chosen) < n_groups:
        chosen.append(chosen[duplicated % kept])
        duplicated += 1
    return chosen[:n_groups], kept, duplicated


class SeededVLLMGeneration(VLLMGeneration):
    """TRL's vLLM backend whose colocated engines are seeded by the run seed as well as the rank."""

    def __init__(self, *args, run_seed: int, **kwargs):
        self.run_seed = run_seed
        super().__init__(*args, **kwargs)

    def _init_vllm(self):
        module = sys.modules[VLLMGeneration.__module__]
        engine = getattr(module, "LLM", None)
        if engine is None:  # no vLLM: the parent raises its own error
            return super()._init_vllm()

        def seeded(*args, seed: int = 0, **kwargs):
            return engine(*args, seed=vllm_seed(self.run_seed, seed), **kwargs)

        module.LLM = seeded
        try:
            super()._init_vllm()
        finally:
            module.LLM = engine


@contextlib.contextmanager
def seeded_vllm(run_seed: int):
    """While TRL builds its trainer, its vLLM backend is ``SeededVLLMGeneration`` for ``run_seed``."""
    module = sys.modules[GRPOTrainer.__module__]
    original = module.VLLMGeneration
    module.VLLMGeneration = functools.partial(SeededVLLMGeneration, run_seed=run_seed)
    try:
        yield
    finally:
        module.VLLMGeneration = original


def draw_generator(seed: int, step: int, draw: int) -> torch.Generator:
    """The generator of extra prompts: the same on every process, and a function of the step (resumes agree)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 101 + draw)


def pad_cat(tensors: list[torch.Tensor], value: float, left: bool) -> torch.Tensor:
    """Concatenate (B_i, T_i) tensors along rows, padding to the widest on the left or right."""
    width = max(t.size(1) for t in tensors)
    padded = []
    for t in tensors:
        pad = (width - t.size(1), 0) if left else (0, width - t.size(1))
        padded.append(torch.nn.functional.pad(t, pad, value=value))
    return torch.cat(padded)


class MtarlGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with the study's advantages, group rewards, per-example logging and dynamic sampling.

    Only two parent methods are overridden, and both call the parent first: ``_calculate_rewards`` (to fill in
    group rewards and keep the rewards) and ``_generate_and_score_completions`` (to replace the advantages).
    """

    def __init__(self, *args, variant: VariantSpec, reward_function: R.RewardFunction, example_log=None, **kwargs):
        self.variant = variant
        self.reward_function = reward_function
        self.example_log = example_log  # callable(record) for per-example accuracy, or None
        self._last_rewards: torch.Tensor | None = None
        self.last_choice: list[tuple[int, int]] = []  # the (batch, group) pairs dynamic sampling kept last
        with seeded_vllm(variant.seed):
            super().__init__(*args, reward_funcs=reward_function, **kwargs)

    # -- rewards --------------------------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.variant.group_reward == "majority":
            rewards_per_func[:, 0] = self._majority_rewards(inputs).to(rewards_per_func.device)
        elif self.reward_function.reward == "random":
            rewards_per_func[:, 0] = self._random_rewards(inputs).to(rewards_per_func.device)
        elif self.variant.group_reward == "self_certainty":
            local = self._mean_logprobs(prompts, completion_ids_list).to(rewards_per_func.device)
            rewards_per_func[:, 0] = gather(local)
        self._last_rewards = rewards_per_func[:, 0].clone()
        self._log_examples(inputs)
        return rewards_per_func

    def _majority_rewards(self, inputs) -> torch.Tensor:
        verdicts = self.reward_function.last_verdicts
        local = [(x["family"], v.extracted, v.format_ok) for x, v in zip(inputs, verdicts)]
        everything = gather_object(local)  # whole groups, whatever the process layout
        G, keys = self.num_generations, []
        for start in range(0, len(everything), G):
            group = everything[start : start + G]
            keys += R.vote_keys(group[0][0], [answer for _, answer, _ in group])
        formats = [fmt for _, _, fmt in everything]
        values = R.majority_rewards(keys, formats, G, self.variant.gate, self.variant.voters)
        return torch.tensor(values, dtype=torch.float32)

    def _random_rewards(self, inputs) -> torch.Tensor:
        """Random rewards drawn by each sample's index among its prompt's samples in the whole generation batch (a
        process's slice may hold part of a group, so the index must be counted after the gather)."""
        local = [(x["id"], v) for x, v in zip(inputs, self.reward_function.last_verdicts)]
        everything = gather_object(local)
        f = self.reward_function
        draws = R.bernoulli_draws(f.seed, self.state.global_step, [pid for pid, _ in everything], f.p)
        return torch.tensor(R.random_reward([v for _, v in everything], draws, f.gate), dtype=torch.float32)

    @torch.no_grad()
    def _mean_logprobs(self, prompts, completion_ids_list) -> torch.Tensor:
        """Mean token log-prob of each completion under the current (pre-update) policy, at the rollout temperature.

        Through TRL's own log-prob routine (as for its loss): prompts left-padded, completions right-padded,
        ``per_device_train_batch_size`` rows per forward and no full-vocabulary logits materialised (TRL's fused,
        chunked LM head), so memory stays bounded and sharded engines work as in training.
        """
        device = self.accelerator.device
        prompt_ids, _, _ = self._tokenize_prompts(prompts)
        pad = self.processing_class.pad_token_id
        P, C = max(map(len, prompt_ids)), max(1, max(map(len, completion_ids_list)))
        ids = torch.full((len(prompt_ids), P + C), pad, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for row, (p, c) in enumerate(zip(prompt_ids, completion_ids_list)):
            ids[row, P - len(p) : P] = torch.tensor(list(p), device=device)
            ids[row, P : P + len(c)] = torch.tensor(list(c), dtype=torch.long, device=device)
            mask[row, P - len(p) : P + len(c)] = 1
        logps, _, _ = self._get_per_token_logps_and_entropies(self.model, ids, mask, C,
                                                              batch_size=self.args.per_device_train_batch_size)
        completion_mask = mask[:, P:].float()
        return (logps * completion_mask).sum(dim=1) / completion_mask.sum(dim=1).clamp(min=1)

    def _log_examples(self, inputs) -> None:
        """Per prompt id, the ground-truth accuracy of its group in this generation batch (one-shot selection)."""
        if self.example_log is None:
            return
        local = [(x["id"], v.correct) for x, v in zip(inputs, self.reward_function.last_verdicts)]
        everything = gather_object(local)
        if self.accelerator.is_main_process:
            by_id: dict[str, list[bool]] = {}
            for pid, ok in everything:
                if ok is not None:  # an unscorable gold has no accuracy (and no variance to select by)
                    by_id.setdefault(pid, []).append(ok)
            # the Trainer's fractional epoch at generation time: its integer part is the pass over the data
            self.example_log({"step": self.state.global_step, "epoch": int(self.state.epoch or 0),
                              "accuracy": {pid: sum(v) / len(v) for pid, v in by_id.items()}})

    # -- advantages and dynamic sampling --------------------------------------------------------------------------
    def _score(self, inputs) -> tuple[dict, torch.Tensor]:
        """The parent's generation and scoring with the study's advantages; returns the output and the rewards of
        the whole generation batch (gathered: the same on every process)."""
        output = super()._generate_and_score_completions(inputs)
        rewards = self._last_rewards
        adv = advantages(rewards, self.num_generations, self.variant.estimator, **self.variant.estimator_kwargs)
        output["advantages"] = adv[self._local_rows(len(inputs))].to(output["advantages"].device)
        return output, rewards

    def _local_rows(self, local: int) -> slice:
        rank = self.accelerator.process_index
        return slice(rank * local, (rank + 1) * local)

    def _generate_and_score_completions(self, inputs):
        output, rewards = self._score(inputs)
        if not (self.variant.dynamic_sampling and self.model.training):
            return output
        return self._dynamic_sampling(inputs, output, rewards)

    def _dynamic_sampling(self, inputs, output, rewards):
        """DAPO filter-groups: keep groups whose rewards differ, drawing up to ``max_gen_batches`` batches.

        Every choice reads the gathered rewards, so all processes make the same one; the chosen rows are then taken
        from the gathered outputs and each process keeps its slice.
        """
        n_groups = rewards.numel() // self.num_generations  # groups of the whole generation batch
        batches = [(output, rewards)]
        while (len(batches) < self.variant.max_gen_batches
               and count_informative([r for _, r in batches], self.num_generations) < n_groups):
            batches.append(self._score(self._draw_inputs(n_groups, len(inputs), draw=len(batches))))
        chosen, kept, duplicated = choose_groups([r for _, r in batches], self.num_generations, n_groups,
                                                 self.variant.fill)
        self.last_choice = chosen
        self._metrics["train"]["dynamic/gen_batches"].append(float(len(batches)))
        self._metrics["train"]["dynamic/kept_fraction"].append(min(kept, n_groups) / n_groups)
        self._metrics["train"]["dynamic/duplication_fraction"].append(duplicated / n_groups)
        if len(batches) == 1 and chosen == [(0, g) for g in range(n_groups)]:
            return output  # every group kept in place: nothing to move
        everything = [self._gather_output(b) for b, _ in batches]
        return self._merge(everything, chosen, self._local_rows(len(inputs)))

    def _draw_inputs(self, n_groups: int, local: int, draw: int) -> list[dict]:
        """This process's slice of ``n_groups`` fresh prompts (x G), drawn for the whole batch with a generator that
        is the same on every process."""
        rng = draw_generator(self.variant.seed, self.state.global_step, draw)
        idx = torch.randint(len(self.train_dataset), (n_groups,), generator=rng).tolist()
        batch = [dict(self.train_dataset[i]) for i in idx for _ in range(self.num_generations)]
        return batch[self._local_rows(local)]

    def _gather_output(self, output: dict) -> dict:
        """Every process's rows of a scored batch (tensors padded to the widest process, prompts on the left)."""
        gathered = {}
        for key, value in output.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            if value.dim() > 1:
                pad = self.processing_class.pad_token_id if key == "prompt_ids" else 0
                value = self.accelerator.pad_across_processes(value, dim=1, pad_index=pad,
                                                              pad_first=key.startswith("prompt"))
            gathered[key] = self.accelerator.gather(value)
        return gathered

    def _merge(self, outputs: list[dict], chosen: list[tuple[int, int]], local: slice) -> dict:
        """This process's ``local`` rows of the batch made of the ``chosen`` groups of the gathered ``outputs``."""
        G = self.num_generations
        rows = [(b, g * G + k) for b, g in chosen for k in range(G)][local]
        merged = {}
        for key, value in outputs[0].items():
            parts = [outputs[b][key][r : r + 1] for b, r in rows]
            if value.dim() == 1:
                merged[key] = torch.cat(parts)
            else:
                left = key.startswith("prompt")
                pad = self.processing_class.pad_token_id if key == "prompt_ids" else 0
                merged[key] = pad_cat(parts, pad, left=left)
        tokens = merged["completion_mask"].sum()
        merged["num_items_in_batch"] = self.accelerator.gather(tokens).sum()
        return merged
