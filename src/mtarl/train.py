"""Stage ``train``: GRPO on a base model with TRL's ``GRPOTrainer``, resumable after a kill.

Run: ``mtarl train --settings JSON --model PATH_OR_ID --problems train.parquet --work DIR --out MODEL_DIR
--metrics metrics.jsonl``

- ``--work`` holds TRL checkpoints (every ``save_steps`` optimizer steps) and the live ``metrics.jsonl``. It is not a
  Snakemake output, so Snakemake's clean-up of a failed job never deletes it: rerunning a killed job resumes from the
  last checkpoint. A fingerprint of the settings guards it: changed settings start afresh.
- ``--out`` receives the final model and ``--metrics`` a copy of the log when training completes, both atomically.

``metrics.jsonl``: one JSON object per optimizer step with ``step`` and TRL's logged values, among them ``reward``,
``reward_std``, ``gt_accuracy`` (ground-truth accuracy, whatever the training reward), ``format_rate``, ``entropy``,
``completions/mean_length``, ``clip_ratio/region_mean``, ``frac_reward_zero_std``, ``loss``, ``learning_rate``.

Settings map to TRL as in libraries.md 1.3: ``prompts_per_step`` x ``num_generations`` completions per generation
batch, split into ``steps_per_generation`` optimizer steps; ``max_steps`` and ``save_steps`` count optimizer steps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import polars as pl
from datasets import Dataset
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer

from mtarl import io
from mtarl.modeling import load
from mtarl.rewards import make_reward_fn

LOG_NAME = "metrics.jsonl"
FINGERPRINT_NAME = "mtarl_fingerprint.json"


class JsonlMetrics(TrainerCallback):
    """Append each log of the trainer to a JSONL file as one line per optimizer step."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            io.append_jsonl({"step": state.global_step, "time": time.time(), **logs}, self.path)


def grpo_config(settings: dict, work_dir: Path) -> GRPOConfig:
    completions_per_generation = settings["prompts_per_step"] * settings["num_generations"]
    if completions_per_generation % settings["steps_per_generation"]:
        raise ValueError(
            f"train: prompts_per_step * num_generations = {completions_per_generation} must be divisible by "
            f"steps_per_generation = {settings['steps_per_generation']}"
        )
    return GRPOConfig(
        output_dir=str(work_dir),
        seed=settings["seed"],
        data_seed=settings["seed"],
        use_cpu=settings["device"] == "cpu",
        bf16=settings["dtype"] == "bfloat16",
        num_generations=settings["num_generations"],
        per_device_train_batch_size=completions_per_generation // settings["steps_per_generation"],
        gradient_accumulation_steps=1,
        steps_per_generation=settings["steps_per_generation"],
        num_iterations=1,
        max_steps=settings["max_steps"],
        learning_rate=settings["learning_rate"],
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=settings["warmup_steps"],
        weight_decay=settings["weight_decay"],
        max_grad_norm=settings["max_grad_norm"],
        loss_type=settings["loss_type"],
        scale_rewards="group",
        epsilon=settings["epsilon"],
        epsilon_high=settings["epsilon_high"],
        delta=settings["delta"],
        beta=settings["beta"],
        temperature=settings["temperature"],
        top_p=settings["top_p"],
        top_k=0,
        max_completion_length=settings["max_completion_length"],
        use_vllm=settings["use_vllm"],
        vllm_importance_sampling_correction=False,
        save_strategy="steps",
        save_steps=settings["save_steps"],
        save_total_limit=2,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def fingerprint(settings: dict, model: str, problems_path: str) -> dict:
    digest = hashlib.sha256(Path(problems_path).read_bytes()).hexdigest()
    return {"settings": settings, "model": model, "problems_sha256": digest}


def prepare_work_dir(work_dir: Path, print_: dict) -> str | None:
    """Return the checkpoint to resume from; wipe ``work_dir`` if it was made with other settings."""
    stamp = work_dir / FINGERPRINT_NAME
    if work_dir.exists() and (not stamp.exists() or json.loads(stamp.read_text()) != print_):
        print(f"train: {work_dir} was made with other settings; starting afresh")
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    io.write_json(print_, stamp)
    checkpoint = get_last_checkpoint(str(work_dir))
    log = work_dir / LOG_NAME
    if checkpoint is None:
        log.unlink(missing_ok=True)
        return None
    resumed_step = int(Path(checkpoint).name.split("-")[-1])
    kept = [r for r in io.read_jsonl(log) if r["step"] <= resumed_step] if log.exists() else []
    with io.atomic_path(log) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
    print(f"train: resuming from {checkpoint} (step {resumed_step})")
    return checkpoint


def run(settings: dict, model_path: str, problems_path: str, work_dir: str, out_dir: str, metrics_path: str) -> dict:
    work = Path(work_dir)
    checkpoint = prepare_work_dir(work, fingerprint(settings, model_path, problems_path))
    model, tokenizer = load(model_path, dtype=settings["dtype"])
    problems = pl.read_parquet(problems_path).select("prompt", "answer", "family", "id")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=make_reward_fn(settings["reward"]),
        args=grpo_config(settings, work),
        train_dataset=Dataset.from_dict(problems.to_dict(as_series=False)),
        processing_class=tokenizer,
        callbacks=[JsonlMetrics(work / LOG_NAME)],
    )
    started = time.time()
    trainer.train(resume_from_checkpoint=checkpoint)
    record = io.manifest("train", settings["seed"], settings, model=model_path, resumed_from=checkpoint,
                         global_step=trainer.state.global_step, wall_seconds=round(time.time() - started, 1))
    with io.atomic_dir(out_dir) as tmp:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(tmp)
        io.write_json(record, tmp / "mtarl_manifest.json")
    with io.atomic_path(metrics_path) as tmp:
        shutil.copyfile(work / LOG_NAME, tmp)
    print(f"train: {trainer.state.global_step} steps done -> {out_dir}")
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="base model: local directory or hub id")
    parser.add_argument("--problems", required=True, help="train-split problem parquet")
    parser.add_argument("--work", required=True, help="checkpoint directory (kept across kills, not an output)")
    parser.add_argument("--out", required=True, help="output directory of the final model")
    parser.add_argument("--metrics", required=True, help="output copy of metrics.jsonl")


def main(args: argparse.Namespace) -> None:
    run(args.settings, args.model, args.problems, args.work, args.out, args.metrics)
