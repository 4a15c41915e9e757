"""Helper of tests/test_distributed.py: a few GRPO steps of mtarl's trainer with deterministic rollouts, recorded.

Run: ``python tests/distributed_grpo.py MODEL TRAIN EVAL OUT.json`` (one process) or under
``torchrun --standalone --nproc_per_node 2`` (two gloo processes, same global batch). Completions are a pure function of
(prompt, global row, generation call), given through TRL's ``rollout_func``, so that one and two processes see the
same samples and any difference comes from how rewards, advantages and group choices travel between processes.
For each variant, process 0 writes the gathered rewards and advantages of every scored batch, the groups dynamic
sampling kept, and the logged losses. One optimizer step per generation batch: TRL splits each process's slice of a
generation batch into its optimizer steps, so with several steps per generation the rows of a step depend on the
number of processes (the whole batch is still used, in another order).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from accelerate.utils import gather

from mtarl import config as cfg
from mtarl import train
from mtarl.rewards import uniform

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "ground_truth": {"reward": "ground_truth", "dynamic_sampling": {"enabled": False, "max_gen_batches": 2,
                                                                     "fill": "duplicate"}},
    "majority": {"reward": "majority", "dynamic_sampling": {"enabled": False, "max_gen_batches": 2,
                                                             "fill": "duplicate"}},
    # Random rewards: their draws hang on each sample's index within its prompt's group, which a split group must
    # count across processes.
    "dynamic": {"reward": "random", "p": 0.15,
                "dynamic_sampling": {"enabled": True, "max_gen_batches": 3, "fill": "duplicate"}},
}


def completion(prompt: str, row: int, call: int) -> str:
    """Hard prompts (a third) are always answered wrongly: their groups carry no signal, so dynamic sampling acts."""
    a, b = prompt.rstrip("=").split("+")
    answer, draw = int(a) + int(b), uniform(prompt, row, call)
    if uniform(prompt) < 0.34 or draw > 0.6:
        return f"<think></think><answer>{answer + 1 + int(draw * 2)}</answer>"
    return f"<think></think><answer>{answer}</answer>" if draw > 0.1 else f"{answer}"


def rollout(prompts: list, trainer) -> dict:
    tokenizer = trainer.processing_class
    trainer.rollout_calls = getattr(trainer, "rollout_calls", 0) + 1
    first = trainer.accelerator.process_index * len(prompts)
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    completion_ids = [tokenizer(completion(p, first + i, trainer.rollout_calls), add_special_tokens=False)
                      ["input_ids"] + [tokenizer.eos_token_id] for i, p in enumerate(prompts)]
    return {"prompt_ids": prompt_ids, "completion_ids": completion_ids,
            "logprobs": [[0.0] * len(c) for c in completion_ids]}


def settings(variant: str, processes: int) -> dict:
    base = cfg.train_settings(cfg.load(REPO / "config/config.yaml"), "ground_truth", seed=1)
    return {**base, **VARIANTS[variant], "prompts_per_step": 3, "num_generations": 4, "steps_per_generation": 1,
            "gradient_accumulation_steps": 1, "max_steps": 2, "save_steps": 100, "val_every": 0,
            "warmup_steps": 0, "processes": processes}


def run_variant(variant: str, model: str, train_path: str, eval_path: str, work: Path) -> dict:
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    trainer, _ = train.build_trainer(settings(variant, processes), model, train_path, eval_path, work,
                                     rollout_func=rollout)
    record = {"rewards": [], "advantages": [], "kept": [], "final_advantages": []}
    score = trainer._score

    def recording_score(inputs):
        output, rewards = score(inputs)
        record["rewards"].append(rewards.tolist())
        record["advantages"].append(gather(output["advantages"]).tolist())
        return output, rewards

    trainer._score = recording_score
    generate = trainer._generate_and_score_completions

    def recording_generate(inputs):
        output = generate(inputs)
        record["kept"].append([list(pair) for pair in trainer.last_choice])
        record["final_advantages"].append(gather(output["advantages"]).tolist())
        return output

    trainer._generate_and_score_completions = recording_generate
    trainer.train()
    record["losses"] = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    record["processes"] = trainer.accelerator.num_processes
    return record


def main(model: str, train_path: str, eval_path: str, out: str) -> None:
    results = {}
    for variant in VARIANTS:
        results[variant] = run_variant(variant, model, train_path, eval_path, Path(out).parent / f"work-{variant}")
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
