"""Stage ``train``: GRPO on a base model with TRL's ``GRPOTrainer``, resumable after a kill.

Run: ``mtarl train --settings JSON --model PATH_OR_ID --problems train.parquet --eval-problems eval.parquet
--work DIR... --out MODEL_DIR... --metrics metrics.jsonl... --examples examples.jsonl... [--history GT/examples.jsonl...]``

One command trains the runs of one variant, one after the other in one process: the settings JSON holds ``seeds``
(a list) and each path option takes one path per seed, in the same order (``batch_seeds`` in the configuration; the
process start and imports are a third of a miniature run). Each run is independent: its own seed, work directory,
outputs and manifest.

A variant is its settings: ``reward`` (mtarl.rewards), ``estimator`` (mtarl.rl.advantages), ``gate``, ``p``,
``lam``, ``entropy_coef`` (negative = entropy minimisation), ``one_shot`` and ``dynamic_sampling``.

- ``--work`` holds TRL checkpoints (every ``save_steps`` optimizer steps) and the live ``metrics.jsonl``. It is not a
  Snakemake output, so Snakemake's clean-up of a failed job never deletes it: rerunning a killed job resumes from the
  last checkpoint. A fingerprint of the settings guards it: changed settings start afresh.
- ``--out`` receives the final model and ``--metrics`` a copy of the log when training completes, both atomically.
  Then the checkpoints' optimizer state is deleted (``drop_optimizer_state``) unless ``keep_optimizer_state``.

``metrics.jsonl``: one JSON object per optimizer step with ``step`` and TRL's logged values, among them ``reward``,
``reward_std``, ``gt_accuracy`` (ground-truth accuracy, whatever the training reward), ``format_rate``,
``strategy_share`` (completions with a scratchpad in ``<think>``), ``entropy``, ``completions/mean_length``,
``clip_ratio/region_mean`` (with ``clip_ratio/low_mean``, ``clip_ratio/high_mean``: fractions of clipped tokens),
``frac_reward_zero_std``, ``loss``, ``learning_rate``, with dynamic sampling ``dynamic/gen_batches``,
``dynamic/kept_fraction``, ``dynamic/duplication_fraction``, and every ``val_every`` steps ``val/avg@<val_n>`` on
the eval split. ``examples.jsonl``: per generation batch, the ground-truth accuracy of each prompt id's group and the
epoch (the history one-shot selection reads). With ``train_subset`` N the run trains on N problems of the split
(``oneshot.candidate_subset``), one-shot's candidates.

Settings map to TRL as in libraries.md 1.3: ``prompts_per_step`` x ``num_generations`` completions per generation
batch, split into ``steps_per_generation`` optimizer steps of ``gradient_accumulation_steps`` micro-batches each (TRL's
own ``steps_per_generation`` counts micro-batches: ours x accumulation); ``max_steps`` and ``save_steps`` count
optimizer steps. With ``processes`` > 1 each micro-batch splits across the processes (one per GPU).

Several processes: ``--launch`` names the launcher (``mtarl.launch.launcher``: ``accelerate launch`` with a sharded
engine on GPUs, ``torchrun`` on CPU); the command then re-runs itself under it, once per process.

Precision: the optimizer updates the weights in the dtype they are loaded in (``dtype``; float32 = fp32 master
weights) and ``mixed_precision: bf16`` autocasts the compute. FSDP2 and ZeRO-3 keep fp32 masters whatever the load
dtype. The manifest records the dtype of the parameters the optimizer actually holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import polars as pl
import torch
from datasets import Dataset
from transformers import TrainerCallback, TrainerState
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer

from mtarl import io, launch, oneshot, scoring
from mtarl.modeling import load, load_tokenizer, model_revision
from mtarl.prepare import unscorable_golds
from mtarl.rewards import GROUP_REWARDS, RewardFunction
from mtarl.rl import MtarlGRPOTrainer, VariantSpec
from mtarl.prompts import chat_settings
from mtarl.sampling import HFSampler, SamplingParams, stop_token_ids

LOG_NAME = "metrics.jsonl"
EXAMPLES_NAME = "examples.jsonl"
FINGERPRINT_NAME = "mtarl_fingerprint.json"


class StepLogger(TrainerCallback):
    """Append each optimizer step's logs to metrics.jsonl, with validation avg@k every ``val_every`` steps.

    Validation runs in every process, each on its share of the problems (equal shares, so that every process makes
    the same number of generate calls: sharded engines gather weights in every forward, and transformers keeps the
    processes in step, ``synced_gpus``); ``batch`` sequences per generate call bound its memory.
    """

    def __init__(self, path: Path, settings: dict, eval_problems: pl.DataFrame, tokenizer, chat: dict | None,
                 batch: int = 64):
        self.path, self.settings, self.eval_problems, self.tokenizer = path, settings, eval_problems, tokenizer
        self.chat, self.batch = chat, batch
        self.pending: dict = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        every = self.settings["val_every"]
        if every and state.global_step % every == 0:
            self.pending = self.validate(model, state.global_step)

    def validate(self, model, step: int) -> dict:
        params = validation_params(self.settings, step)
        rank, world = process_layout()
        share, real = problem_share(self.eval_problems, rank, world)
        was_training = model.training
        model.eval()
        sampler = HFSampler(model, self.tokenizer, max_batch_sequences=max(self.batch, params.n), chat=self.chat)
        samples = scoring.sample_and_score(sampler, share, params)
        model.train(was_training)
        correct = samples["correct"].head(real * params.n).to_list()
        everything = [correct]
        if world > 1:
            everything = [None] * world
            torch.distributed.all_gather_object(everything, correct)
        flat = [c for part in everything for c in part]
        return {f"val/avg@{params.n}": float(sum(flat) / len(flat))}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            record = {"step": state.global_step, "time": time.time(), **logs, **self.pending}
            self.pending = {}
            io.append_jsonl(record, self.path)


def validation_params(settings: dict, step: int) -> SamplingParams:
    """In-training validation sampling: ``val_temperature`` and ``val_top_p``, never the rollout temperature (which
    the token-entropy variant lowers to 0.5 for its rollouts and entropy only)."""
    return SamplingParams(n=settings["val_n"], max_new_tokens=settings["max_completion_length"],
                          temperature=settings["val_temperature"], top_p=settings["val_top_p"], seed=step)


def process_layout() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a distributed run."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def problem_share(problems: pl.DataFrame, rank: int, world: int) -> tuple[pl.DataFrame, int]:
    """Rows rank, rank + world, ... of ``problems``, padded with row 0 to the largest share; and the real count."""
    share = problems.gather_every(world, offset=rank) if rank < problems.height else problems.head(0)
    size = -(-problems.height // world)
    real = share.height
    if real < size:
        share = pl.concat([share, *[problems.head(1)] * (size - real)])
    return share, real


def grpo_config(settings: dict, work_dir: Path, stop_ids: list[int] | None = None) -> GRPOConfig:
    """TRL's configuration of a run; ``stop_ids`` (the pinned stop tokens) end vLLM rollouts."""
    completions_per_generation = settings["prompts_per_step"] * settings["num_generations"]
    accumulation = settings["gradient_accumulation_steps"]
    micro_steps = settings["steps_per_generation"] * accumulation  # TRL counts micro-steps per generation
    processes = settings.get("processes", 1)
    if completions_per_generation % (micro_steps * processes):
        raise ValueError(
            f"train: prompts_per_step * num_generations = {completions_per_generation} must be divisible by "
            f"steps_per_generation * gradient_accumulation_steps * processes = {micro_steps * processes}"
        )
    vllm = settings.get("vllm", {})
    return GRPOConfig(
        output_dir=str(work_dir),
        seed=settings["seed"],
        data_seed=settings["seed"],
        use_cpu=settings["device"] == "cpu",
        bf16=settings.get("mixed_precision", "no") == "bf16",
        gradient_checkpointing=settings.get("gradient_checkpointing", False),
        gradient_checkpointing_kwargs={"use_reentrant": False},
        num_generations=settings["num_generations"],
        per_device_train_batch_size=completions_per_generation // (micro_steps * processes),
        gradient_accumulation_steps=accumulation,
        steps_per_generation=micro_steps,
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
        entropy_coef=settings["entropy_coef"],
        use_vllm=settings["use_vllm"],
        **launch.vllm_fields(settings),  # colocate, or the server mtarl.launch started
        vllm_enable_sleep_mode=vllm.get("sleep_mode", False),
        vllm_gpu_memory_utilization=vllm.get("gpu_memory_utilization", 0.3),
        vllm_max_model_length=(settings.get("max_prompt_tokens") or 2048) + settings["max_completion_length"],
        vllm_importance_sampling_correction=False,
        generation_kwargs={"stop_token_ids": list(stop_ids)} if settings["use_vllm"] and stop_ids else None,
        save_strategy="steps",
        save_steps=settings["save_steps"],
        save_total_limit=2,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def fingerprint(settings: dict, model: str, *inputs: str | None) -> dict:
    digests = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in inputs if p]
    return {"settings": settings, "model": model, "inputs_sha256": digests}


def variant_spec(settings: dict) -> VariantSpec:
    dynamic = settings["dynamic_sampling"]
    return VariantSpec(
        estimator=settings["estimator"],
        estimator_kwargs={"lam": settings["lam"]} if settings["estimator"] == "w_reinforce" else {},
        group_reward=settings["reward"] if settings["reward"] in GROUP_REWARDS else None,
        gate=settings["gate"],
        dynamic_sampling=dynamic["enabled"],
        max_gen_batches=dynamic["max_gen_batches"],
        fill=dynamic["fill"],
        seed=settings["seed"],
    )


def as_chat(problems: pl.DataFrame, chat: dict | None) -> pl.DataFrame:
    """Prompts as chat messages when the model has pinned chat settings, so TRL applies its chat template."""
    if chat is None:
        return problems
    from mtarl.prompts import chat_messages

    return problems.with_columns(prompt=pl.Series([chat_messages(p, chat["system_prompt"]) for p in problems["prompt"]]))


def training_problems(settings: dict, problems_path: str, history_path: str | None, tokenizer=None,
                      chat: dict | None = None) -> tuple[pl.DataFrame, dict]:
    """The training set (one example replicated for one-shot variants) and a record of how it was made: problems
    whose prompt exceeds ``max_prompt_tokens`` under the model's tokenizer are dropped first and counted."""
    problems = pl.read_parquet(problems_path).select("id", "prompt", "answer", "family")
    problems, overlong = scoring.drop_overlong(problems, tokenizer, chat, settings.get("max_prompt_tokens"))
    if overlong:
        print(f"train: dropped {overlong} problems whose prompt exceeds {settings['max_prompt_tokens']} tokens")
    one_shot = settings.get("one_shot")
    if not one_shot:
        problems = oneshot.candidate_subset(problems, settings.get("train_subset"))
        return problems, {"rows": problems.height, "train_subset": settings.get("train_subset"),
                          "unscorable_golds": unscorable_golds(problems), "overlong_prompts": overlong}
    history = io.read_jsonl(history_path) if history_path else None
    chosen = oneshot.select(problems, one_shot["select"], settings["seed"], history)
    replicated = oneshot.replicate(problems, chosen["id"], one_shot["copies"])
    print(f"train: one-shot example {chosen}")
    return replicated, {"rows": replicated.height, "one_shot": chosen, "overlong_prompts": overlong}


def prepare_work_dir(work_dir: Path, expected: dict) -> str | None:
    """Return the checkpoint to resume from; wipe ``work_dir`` if it was made with other settings."""
    stamp = work_dir / FINGERPRINT_NAME
    if work_dir.exists() and (not stamp.exists() or json.loads(stamp.read_text()) != expected):
        print(f"train: {work_dir} was made with other settings; starting afresh")
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    io.write_json(expected, stamp)
    checkpoint = last_checkpoint(work_dir)
    resumed_step = checkpoint_step(checkpoint) if checkpoint else 0
    # Drop log lines of steps the resumed run will redo: metrics are logged after step s, examples when the
    # generation batch of step s+1 is scored (at global_step s).
    truncate_jsonl(work_dir / LOG_NAME, lambda r: r["step"] <= resumed_step)
    truncate_jsonl(work_dir / EXAMPLES_NAME, lambda r: r["step"] < resumed_step)
    if checkpoint:
        print(f"train: resuming from {checkpoint} (step {resumed_step})")
    return checkpoint


def checkpoint_step(checkpoint: str) -> int:
    return int(Path(checkpoint).name.split("-")[-1])


def restore_finished(trainer, checkpoint: str) -> None:
    """A run whose last checkpoint is its last step (its outputs were removed after it finished, e.g. by Snakemake
    when a later seed of the same job failed): take its final weights and state instead of training again (the
    Trainer resumed at max_steps would run one more step)."""
    print(f"train: {checkpoint} is the run's last step; restoring it without training")
    trainer._load_from_checkpoint(checkpoint)
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / TRAINER_STATE_NAME))


def last_checkpoint(work_dir: Path) -> str | None:
    return get_last_checkpoint(str(work_dir)) if work_dir.exists() else None


def truncate_jsonl(path: Path, keep) -> None:
    if not path.exists():
        return
    kept = [r for r in io.read_jsonl(path) if keep(r)]
    with io.atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def drop_optimizer_state(work_dir: Path) -> int:
    """Delete the optimizer state (``optimizer*`` files or folders; DeepSpeed's ``global_step*`` folders) of every
    checkpoint in ``work_dir`` once the final model is saved: at 7B it is twice the weights per checkpoint, and nothing
    resumes a finished run. Weights, scheduler, RNG and trainer state stay. Returns the bytes freed."""
    freed = 0
    for checkpoint in Path(work_dir).glob("checkpoint-*"):
        for path in [*checkpoint.glob("optimizer*"), *checkpoint.glob("global_step*")]:
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            freed += sum(p.stat().st_size for p in files)
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return freed



def build_trainer(settings: dict, model_path: str, problems_path: str, eval_path: str, work: Path,
                  history_path: str | None = None, **trainer_kwargs) -> tuple[MtarlGRPOTrainer, dict]:
    """The run's trainer, and what the manifest records about its making (chat, stop ids, data)."""
    chat = chat_settings(settings["chat"]) if settings.get("chat") else None
    stop_ids = stop_token_ids(load_tokenizer(model_path), chat)
    args = grpo_config(settings, work, stop_ids)  # before the model: ZeRO-3 then loads it sharded
    model, tokenizer = load(model_path, dtype=settings["dtype"])
    # TRL's own EOS list (truncation masks, clipped_ratio) and its transformers rollouts read these; vLLM rollouts
    # get the same ids through generation_kwargs.
    model.generation_config.eos_token_id = stop_ids
    problems, data_record = training_problems(settings, problems_path, history_path, tokenizer, chat)
    problems = as_chat(problems, chat)
    eval_problems = pl.read_parquet(eval_path).head(settings["val_problems"])
    reward_function = RewardFunction(settings["reward"], seed=settings["seed"], gate=settings["gate"], p=settings["p"])
    trainer = MtarlGRPOTrainer(
        model=model,
        reward_function=reward_function,
        variant=variant_spec(settings),
        example_log=lambda record: io.append_jsonl(record, work / EXAMPLES_NAME),
        args=args,
        train_dataset=Dataset.from_dict(problems.to_dict(as_series=False)),
        processing_class=tokenizer,
        callbacks=[StepLogger(work / LOG_NAME, settings, eval_problems, tokenizer, chat,
                              batch=args.per_device_train_batch_size)],
        **trainer_kwargs,
    )
    return trainer, {"chat": chat, "stop_token_ids": stop_ids, "data": data_record}


def run(settings: dict, model_path: str, problems_path: str, eval_path: str, work_dir: str, out_dir: str,
        metrics_path: str, examples_path: str, history_path: str | None = None) -> dict:
    work = Path(work_dir)
    expected = fingerprint(settings, model_path, problems_path, eval_path, history_path)
    # Under a launcher the parent process prepared work/ before starting the processes (mtarl.launch).
    checkpoint = last_checkpoint(work) if launch.inside_launch() else prepare_work_dir(work, expected)
    trainer, made = build_trainer(settings, model_path, problems_path, eval_path, work, history_path)
    tokenizer = trainer.processing_class
    started = time.time()
    restored = bool(checkpoint) and checkpoint_step(checkpoint) >= settings["max_steps"]
    if restored:
        restore_finished(trainer, checkpoint)
    else:
        trainer.train(resume_from_checkpoint=checkpoint)
    record = io.manifest("train", settings["seed"], settings, model=model_path, resumed_from=checkpoint,
                         model_revision=model_revision(model_path), dynamic_sampling=settings["dynamic_sampling"],
                         global_step=trainer.state.global_step, wall_seconds=round(time.time() - started, 1),
                         restored_without_training=restored,
                         vllm_importance_sampling_correction=False,
                         self_certainty_logprobs="recomputed with the pre-update policy", **made,
                         precision=precision_record(trainer, settings), trl_eos_token_ids=list(trainer.eos_token_ids),
                         vllm_seeds=launch.vllm_seeds(settings, trainer.accelerator.num_processes))
    save_outputs(trainer, tokenizer, record, out_dir)
    if not trainer.accelerator.is_main_process:
        return record
    for name, target in ((LOG_NAME, metrics_path), (EXAMPLES_NAME, examples_path)):
        with io.atomic_path(target) as tmp:
            shutil.copyfile(work / name, tmp)
    if not settings["keep_optimizer_state"]:
        freed = drop_optimizer_state(work)
        print(f"train: removed optimizer state from {work} ({freed / 2**30:.2f} GiB); keep_optimizer_state keeps it")
    print(f"train: {trainer.state.global_step} steps done -> {out_dir}")
    return record


def optimizer_dtype(optimizer) -> str:
    """The dtype of the parameters the optimizer updates (the master weights), unwrapping engine wrappers."""
    while not hasattr(optimizer, "param_groups") or not optimizer.param_groups:
        optimizer = optimizer.optimizer
    for wrapped in (optimizer, getattr(optimizer, "optimizer", None)):  # accelerate's wrapper around the torch one
        if wrapped is not None and getattr(wrapped, "param_groups", None):
            optimizer = wrapped
    return str(optimizer.param_groups[0]["params"][0].dtype).removeprefix("torch.")


def precision_record(trainer, settings: dict) -> dict:
    # A restored finished run (restore_finished) made no optimizer: its weights' dtype is the one it trained in.
    master = (optimizer_dtype(trainer.optimizer) if trainer.optimizer is not None
              else str(next(trainer.model.parameters()).dtype).removeprefix("torch."))
    return {"master_weights_dtype": master, "load_dtype": settings["dtype"],
            "mixed_precision": settings.get("mixed_precision", "no"), "engine": settings.get("engine", "none"),
            "distributed_type": str(trainer.accelerator.distributed_type).split(".")[-1],
            "processes": trainer.accelerator.num_processes,
            "gradient_checkpointing": bool(trainer.args.gradient_checkpointing)}


def save_outputs(trainer, tokenizer, record: dict, out_dir: str) -> None:
    """The final model (gathered from every process's shard) and the manifest, atomically by the main process."""
    if trainer.accelerator.num_processes == 1:
        with io.atomic_dir(out_dir) as tmp:
            trainer.save_model(str(tmp))
            tokenizer.save_pretrained(tmp)
            io.write_json(record, tmp / "mtarl_manifest.json")
        return
    staging = Path(out_dir).with_name(Path(out_dir).name + ".saving")
    trainer.save_model(str(staging))  # every process takes part in gathering the shards
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(staging)
        io.write_json(record, staging / "mtarl_manifest.json")
        with io.atomic_dir(out_dir) as tmp:
            tmp.rmdir()
            staging.rename(tmp)
    trainer.accelerator.wait_for_everyone()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="base model: local directory or hub id")
    parser.add_argument("--problems", required=True, help="train-split problem parquet")
    parser.add_argument("--eval-problems", required=True, help="eval-split problem parquet (validation)")
    per_seed = "one per seed of the settings' seeds, in order"
    parser.add_argument("--work", nargs="+", required=True,
                        help=f"checkpoint directories (kept across kills, not outputs), {per_seed}")
    parser.add_argument("--out", nargs="+", required=True, help=f"output directories of the final models, {per_seed}")
    parser.add_argument("--metrics", nargs="+", required=True, help=f"output copies of metrics.jsonl, {per_seed}")
    parser.add_argument("--examples", nargs="+", required=True,
                        help=f"output copies of examples.jsonl (per-example accuracy), {per_seed}")
    parser.add_argument("--history", nargs="+",
                        help=f"examples.jsonl of the ground-truth runs (one-shot historical variance), {per_seed}")
    parser.add_argument("--launch", default="", help="launcher of the processes (mtarl.launch.launcher); empty: one")


def seed_runs(args: argparse.Namespace) -> list[dict]:
    """The arguments of ``run`` for each seed of the command (``settings["seeds"]``, or one ``settings["seed"]``)."""
    settings = dict(args.settings)
    seeds = settings.pop("seeds", None) or [settings.pop("seed")]
    paths = {"work_dir": args.work, "out_dir": args.out, "metrics_path": args.metrics,
             "examples_path": args.examples, "history_path": args.history or [None] * len(seeds)}
    for name, values in paths.items():
        if len(values) != len(seeds):
            raise ValueError(f"train: {len(seeds)} seeds {seeds} but {len(values)} {name} paths {values}")
    return [{"settings": {**settings, "seed": seed}, "model_path": args.model, "problems_path": args.problems,
             "eval_path": args.eval_problems, **{name: values[i] for name, values in paths.items()}}
            for i, seed in enumerate(seeds)]


def main(args: argparse.Namespace) -> None:
    runs = seed_runs(args)
    if args.launch and not launch.inside_launch():
        for r in runs:
            prepare_work_dir(Path(r["work_dir"]), fingerprint(r["settings"], r["model_path"], r["problems_path"],
                                                              r["eval_path"], r["history_path"]))
        launch.relaunch(args.launch)
        return
    for r in runs:
        run(**r)
