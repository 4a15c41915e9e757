"""GRPO training with TRL: kill-and-resume, settings fingerprint, and learning on the aligned tiny model."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from mtarl import config as cfg
import torch

from mtarl import io
from mtarl import train as train_stage
from mtarl.rl import MtarlGRPOTrainer, advantages


def settings(repo, **overrides) -> dict:
    base = cfg.train_settings(cfg.load(repo / "config/config.yaml"), "ground_truth", seed=1)
    return {**base, **overrides}


def train_command(settings_: dict, model: Path, data: dict, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "mtarl.cli", "train", "--settings", json.dumps(settings_), "--model", str(model),
        "--problems", str(data["train"]), "--eval-problems", str(data["eval"]), "--work", str(out / "work"),
        "--out", str(out / "model"), "--metrics", str(out / "metrics.jsonl"), "--examples", str(out / "ex.jsonl"),
    ]


def run_training(settings_: dict, model: Path, train_path: Path, eval_path: Path, out: Path, history=None) -> dict:
    return train_stage.run(settings_, str(model), str(train_path), str(eval_path), str(out / "work"),
                           str(out / "model"), str(out / "metrics.jsonl"), str(out / "examples.jsonl"), history)


def wait_for(path: Path, process: subprocess.Popen, timeout: float) -> None:
    """Wait until ``path`` exists while ``process`` still runs."""
    deadline = time.time() + timeout
    while not path.exists():
        if process.poll() is not None:
            log = (path.parents[2] / "first.log").read_text()[-3000:]
            raise RuntimeError(f"training exited ({process.returncode}) before writing {path}:\n{log}")
        if time.time() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout}s")
        time.sleep(0.1)


def test_killed_training_resumes_from_its_last_checkpoint(repo, tmp_path, random_model_dir, add3_problems):
    s = settings(repo, max_steps=12, save_steps=2, prompts_per_step=2, num_generations=4, val_every=0)
    cmd = train_command(s, random_model_dir, add3_problems, tmp_path)
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(tmp_path / "work" / "checkpoint-6" / "trainer_state.json", first, timeout=300)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
    assert not (tmp_path / "model").exists(), "a killed run must not leave a final model"
    checkpoints = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "work").glob("checkpoint-*"))
    last = checkpoints[-1]
    before = {r["step"]: r for r in io.read_jsonl(tmp_path / "work" / "metrics.jsonl") if r["step"] <= last}

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {tmp_path / 'work' / f'checkpoint-{last}'}" in second.stdout
    log = io.read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in log] == list(range(1, 13)), "each optimizer step is logged exactly once"
    assert all(log[step - 1] == before[step] for step in before), "steps before the checkpoint are not redone"
    manifest = json.loads((tmp_path / "model" / "mtarl_manifest.json").read_text())
    assert manifest["global_step"] == 12 and manifest["resumed_from"].endswith(f"checkpoint-{last}")
    # the run succeeded: its checkpoints keep their weights but no optimizer state (keep_optimizer_state: false)
    checkpoints = list((tmp_path / "work").glob("checkpoint-*"))
    assert checkpoints and all((c / "model.safetensors").exists() for c in checkpoints)
    assert not [p for c in checkpoints for p in c.glob("optimizer*")]


def seeds_command(settings_: dict, model: Path, data: dict, outs: list[Path]) -> list[str]:
    """One ``mtarl train`` process for the runs of ``settings_["seeds"]``, one output folder each."""
    paths = {option: [str(out / name) for out in outs] for option, name in
             (("--work", "work"), ("--out", "model"), ("--metrics", "metrics.jsonl"), ("--examples", "ex.jsonl"))}
    return [sys.executable, "-m", "mtarl.cli", "train", "--settings", json.dumps(settings_), "--model", str(model),
            "--problems", str(data["train"]), "--eval-problems", str(data["eval"]),
            *[arg for option, values in paths.items() for arg in (option, *values)]]


def learning_record(folder: Path) -> list[dict]:
    """What a run learned, step by step: its logged rewards and losses (not timings)."""
    keys = ("step", "reward", "loss", "grad_norm", "gt_accuracy", "entropy")
    return [{k: r.get(k) for k in keys} for r in io.read_jsonl(folder / "metrics.jsonl")]


def test_seeds_trained_in_one_process_equal_separate_runs(repo, tmp_path, random_model_dir, add3_problems):
    """batch_seeds: a job trains a variant's seeds one after the other in one process. Each run must be exactly the
    run that seed gets alone (nothing carries over from the previous seed), with its own seed in its manifest; and
    a rerun after the job's outputs were removed (Snakemake's clean-up of a failed job) resumes each run from its
    last checkpoint instead of training it again."""
    s = settings(repo, max_steps=2, save_steps=1, prompts_per_step=2, num_generations=4, val_every=0)
    del s["seed"]
    both = [tmp_path / "s1", tmp_path / "s2"]
    batch = subprocess.run(seeds_command({**s, "seeds": [1, 2]}, random_model_dir, add3_problems, both),
                           capture_output=True, text=True, timeout=300)
    assert batch.returncode == 0, batch.stderr[-3000:]
    alone = subprocess.run(seeds_command({**s, "seeds": [2]}, random_model_dir, add3_problems, [tmp_path / "alone"]),
                           capture_output=True, text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert learning_record(tmp_path / "s2") == learning_record(tmp_path / "alone")
    assert learning_record(tmp_path / "s1") != learning_record(tmp_path / "s2"), "different seeds, different runs"
    assert [json.loads((out / "model/mtarl_manifest.json").read_text())["seed"] for out in both] == [1, 2]

    for out in both:  # what Snakemake deletes of a failed job: its outputs, not the work folders
        shutil.rmtree(out / "model")
        (out / "metrics.jsonl").unlink()
    rerun = subprocess.run(seeds_command({**s, "seeds": [1, 2]}, random_model_dir, add3_problems, both),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all(f"resuming from {out / 'work' / 'checkpoint-2'}" in rerun.stdout for out in both)
    assert learning_record(tmp_path / "s2") == learning_record(tmp_path / "alone")


def test_seed_list_and_paths_must_pair_up():
    import argparse

    args = argparse.Namespace(settings={"seeds": [1, 2], "variant": "nsr"}, model="m", problems="p",
                              eval_problems="e", work=["w1", "w2"], out=["o1"], metrics=["m1", "m2"],
                              examples=["x1", "x2"], history=None)
    with pytest.raises(ValueError, match=r"2 seeds \[1, 2\] but 1 out_dir paths"):
        train_stage.seed_runs(args)
    args.out = ["o1", "o2"]
    runs = train_stage.seed_runs(args)
    assert [(r["settings"]["seed"], r["work_dir"], r["out_dir"], r["history_path"]) for r in runs] == [
        (1, "w1", "o1", None), (2, "w2", "o2", None)]
    assert "seeds" not in runs[0]["settings"]


def test_validation_samples_at_its_own_temperature(repo):
    params = train_stage.validation_params(settings(repo, temperature=0.5, val_temperature=1.0, val_top_p=0.7), 40)
    assert (params.temperature, params.top_p, params.seed) == (1.0, 0.7, 40)


def test_changed_settings_discard_old_checkpoints(repo, tmp_path):
    work = tmp_path / "work"
    (work / "checkpoint-4").mkdir(parents=True)
    io.write_json({"settings": {"learning_rate": 1.0}}, work / train_stage.FINGERPRINT_NAME)
    assert train_stage.prepare_work_dir(work, {"settings": {"learning_rate": 2.0}}) is None
    assert not (work / "checkpoint-4").exists()


def test_grpo_config_follows_the_study_mapping(repo, tmp_path):
    s = settings(repo, prompts_per_step=8, num_generations=8, steps_per_generation=2)
    args = train_stage.grpo_config(s, tmp_path)
    assert args.per_device_train_batch_size == 32  # 64 completions per generation batch, 2 optimizer steps
    assert (args.epsilon, args.epsilon_high, args.delta, args.beta) == (0.2, 0.28, 10.0, 0.0)
    assert args.loss_type == "dapo" and args.scale_rewards == "group"
    assert args.vllm_importance_sampling_correction is False
    accumulated = train_stage.grpo_config(settings(repo, prompts_per_step=8, num_generations=8, steps_per_generation=2,
                                                   gradient_accumulation_steps=4), tmp_path)
    assert (accumulated.per_device_train_batch_size, accumulated.steps_per_generation) == (8, 8)
    with pytest.raises(ValueError, match="divisible by steps_per_generation"):
        train_stage.grpo_config(settings(repo, prompts_per_step=3, num_generations=3, steps_per_generation=2),
                                tmp_path)


def test_grpo_raises_training_reward_of_the_aligned_model(repo, tmp_path, aligned_model_dir, add3_problems):
    """Ground-truth GRPO on a 16-problem training set: 80 optimizer steps revisit each problem about 20 times."""
    problems = tmp_path / "train16.parquet"
    pl.read_parquet(add3_problems["train"]).head(16).write_parquet(problems)
    s = settings(repo, max_steps=80, learning_rate=1e-4, save_steps=1000, val_every=0,
                 dynamic_sampling={"enabled": False, "max_gen_batches": 1, "fill": "duplicate"})
    run_training(s, aligned_model_dir, problems, add3_problems["eval"], tmp_path)
    rewards = [r["reward"] for r in io.read_jsonl(tmp_path / "metrics.jsonl") if "reward" in r]
    assert len(rewards) == 40  # one generation batch every steps_per_generation = 2 optimizer steps
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    # Each mean is over 10 x 64 completions: its standard error is about 0.01 at a reward near 0.1, so +0.05 is a rise
    # no seed noise makes. (How fast the reward climbs depends on the checkpoint the fixture's pass@k target selects,
    # which varies with the CPU: measured here 0.062 -> 0.133.)
    assert last > first + 0.05, f"mean training reward went from {first:.3f} to {last:.3f}"


VARIANTS = cfg.load(Path(__file__).resolve().parents[1] / "config/config.yaml")["train"]["variant_settings"]


@pytest.fixture(scope="module")
def ground_truth_history(repo, tmp_path_factory, random_model_dir, add3_problems):
    """A short ground-truth run on 8 problems, so each is visited several times (one-shot history)."""
    out = tmp_path_factory.mktemp("gt")
    problems = out / "train8.parquet"
    pl.read_parquet(add3_problems["train"]).head(8).write_parquet(problems)
    run_training(settings(repo, max_steps=8, save_steps=100, prompts_per_step=4, num_generations=4, val_every=0),
                 random_model_dir, problems, add3_problems["eval"], out)
    return out / "examples.jsonl"


def test_history_records_the_epoch_of_each_visit(ground_truth_history):
    """8 problems, 4 prompts per generation batch: batches at steps 0, 2, 4, 6 are epochs 0, 0, 1, 1 (plus dynamic
    sampling's extra draws, logged with their batch's step and epoch)."""
    epochs = {r["step"]: r["epoch"] for r in io.read_jsonl(ground_truth_history)}
    assert epochs == {0: 0, 2: 0, 4: 1, 6: 1}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains_two_steps(repo, tmp_path, variant, random_model_dir, add3_problems,
                                        ground_truth_history):
    config = cfg.load(repo / "config/config.yaml")
    s = {**cfg.train_settings(config, variant, seed=1), "max_steps": 2, "save_steps": 100, "prompts_per_step": 2,
         "num_generations": 4, "val_every": 2, "val_problems": 4}
    history = str(ground_truth_history) if cfg.history_run(config, variant) else None
    record = run_training(s, random_model_dir, add3_problems["train"], add3_problems["eval"], tmp_path, history)
    log = io.read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in log] == [1, 2] and record["global_step"] == 2
    assert "val/avg@4" in log[1] and "gt_accuracy" in log[0] and "entropy" in log[0]
    assert record["dynamic_sampling"] == s["dynamic_sampling"]  # on or off, visible in the run's manifest
    if s["dynamic_sampling"]["enabled"]:
        assert {"dynamic/gen_batches", "dynamic/duplication_fraction"} <= set(log[0])
    else:
        assert not any(key.startswith("dynamic/") for key in log[0])
    if s["one_shot"]:
        assert record["data"]["one_shot"]["mode"] == s["one_shot"]["select"]
        assert record["data"]["rows"] == s["one_shot"]["copies"]
    assert (tmp_path / "model" / "model.safetensors").exists()


class RecordingTrainer(MtarlGRPOTrainer):
    """Keeps each generation batch's rewards and advantages, to check what the loss receives."""

    seen: list = []

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        RecordingTrainer.seen.append((self._last_rewards.clone(), output["advantages"].clone()))
        return output


@pytest.mark.parametrize("estimator, lam", [("zhu_nsr", 0.1), ("w_reinforce", 0.3), ("nsr", 0.1)])
def test_trainer_hands_the_study_advantages_to_the_loss(repo, tmp_path, estimator, lam, random_model_dir,
                                                         add3_problems, monkeypatch):
    monkeypatch.setattr(train_stage, "MtarlGRPOTrainer", RecordingTrainer)
    RecordingTrainer.seen = []
    s = settings(repo, max_steps=2, save_steps=100, prompts_per_step=2, num_generations=4, val_every=0,
                 reward="format", estimator=estimator, lam=lam,
                 dynamic_sampling={"enabled": False, "max_gen_batches": 1, "fill": "duplicate"})
    run_training(s, random_model_dir, add3_problems["train"], add3_problems["eval"], tmp_path)
    assert RecordingTrainer.seen
    for rewards_, adv in RecordingTrainer.seen:
        expected = advantages(rewards_, 4, estimator, lam=lam)
        assert torch.allclose(adv, expected)
