"""A training run across processes: precision, stop tokens and seeds reaching the rollouts, the launcher, and two
CPU processes (torchrun, gloo) agreeing with one process on rewards, advantages, kept groups and losses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtarl import config as cfg
from mtarl import launch
from mtarl import train as train_stage
from mtarl.modeling import build_tiny_model, load
from mtarl.prompts import chat_settings
from mtarl.rl import vllm_seed
from mtarl.tokenizer import build_char_tokenizer

REPO = Path(__file__).resolve().parents[1]
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def paper_precision(repo, **overrides) -> dict:
    """The miniature's ground-truth settings with the paper's precision and optimizer settings."""
    paper = cfg.load(repo / "config/paper.yaml")["train"]["defaults"]
    base = cfg.train_settings(cfg.load(repo / "config/config.yaml"), "ground_truth", seed=1)
    keep = ("dtype", "mixed_precision", "learning_rate", "weight_decay", "max_grad_norm", "warmup_steps")
    return {**base, **{k: paper[k] for k in keep}, "warmup_steps": 0, **overrides}


def changed_fraction(before: dict, after: dict) -> float:
    changed = sum(int((before[k] != after[k]).sum()) for k in before)
    return changed / sum(v.numel() for v in before.values())


def test_paper_precision_keeps_small_updates(repo, tmp_path, random_model_dir, add3_problems):
    # Random rewards (ungated) give every group a gradient; 2 optimizer steps at lr 1e-6.
    s = paper_precision(repo, reward="random", gate=False, max_steps=2, save_steps=100, val_every=0,
                        prompts_per_step=4, num_generations=4, dynamic_sampling={"enabled": False,
                                                                                 "max_gen_batches": 2,
                                                                                 "fill": "duplicate"})
    assert (s["dtype"], s["mixed_precision"], s["learning_rate"]) == ("float32", "bf16", 1e-6)
    before = {k: v.clone() for k, v in load(str(random_model_dir))[0].state_dict().items()}
    manifest = train_stage.run(s, str(random_model_dir), str(add3_problems["train"]), str(add3_problems["eval"]),
                               str(tmp_path / "work"), str(tmp_path / "model"), str(tmp_path / "m.jsonl"),
                               str(tmp_path / "e.jsonl"))
    after = load(str(tmp_path / "model"))[0].state_dict()
    assert changed_fraction(before, after) >= 0.95
    precision = manifest["precision"]
    assert precision["master_weights_dtype"] == "float32" and precision["mixed_precision"] == "bf16"
    assert (precision["engine"], precision["processes"]) == ("none", 1)
    on_disk = json.loads((tmp_path / "model" / "mtarl_manifest.json").read_text())
    assert on_disk["precision"] == precision


def test_bf16_weights_without_an_engine_are_rejected(repo, tmp_path):
    override = tmp_path / "o.yaml"
    override.write_text("train: {defaults: {dtype: bfloat16}}\n")
    with pytest.raises(cfg.ConfigError, match=r"train.variant_settings.ground_truth.dtype': bfloat16 weights"):
        cfg.validate(cfg.load(repo / "config/config.yaml", override))


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory) -> Path:
    """A tiny model whose tokenizer knows Qwen2.5's pinned stop tokens and has a chat template."""
    out = tmp_path_factory.mktemp("chat_model")
    tokenizer = build_char_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_end|>", "<|endoftext|>"]})
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    model = build_tiny_model(tokenizer, seed=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=2)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


class Captured(Exception):
    pass


class FakeLLM:
    """Stands in for vllm.LLM (not installable without a GPU): records how TRL builds the engine."""

    made: list[dict] = []

    def __init__(self, **kwargs):
        FakeLLM.made.append(kwargs)

    def generate(self, *args, **kwargs):
        raise Captured


class FakeSamplingParams:
    made: list[dict] = []

    def __init__(self, **kwargs):
        FakeSamplingParams.made.append(kwargs)


def test_training_rollouts_stop_on_the_pinned_ids_and_take_the_run_seed(repo, tmp_path, chat_model_dir,
                                                                         add3_problems, monkeypatch):
    from trl.generation import vllm_generation

    for name in LAUNCH_ENV:  # TRL's colocate set-up writes these into os.environ: restore them afterwards
        monkeypatch.setenv(name, "")  # recorded even when unset (a bare delenv of an unset name records nothing)
        monkeypatch.delenv(name)
    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda: True)
    monkeypatch.setattr(vllm_generation, "LLM", FakeLLM, raising=False)
    monkeypatch.setattr(vllm_generation, "SamplingParams", FakeSamplingParams, raising=False)
    FakeLLM.made.clear()
    pinned = chat_settings("qwen2.5")["stop_tokens"]
    tokenizer = load(str(chat_model_dir))[1]
    pinned_ids = tokenizer.convert_tokens_to_ids(pinned)
    for seed in (1, 2):
        s = {**paper_precision(repo), "seed": seed, "chat": "qwen2.5", "use_vllm": True, "val_every": 0}
        trainer, made = train_stage.build_trainer(s, str(chat_model_dir), str(add3_problems["train"]),
                                                  str(add3_problems["eval"]), tmp_path / f"work{seed}")
        FakeSamplingParams.made.clear()
        with pytest.raises(Captured):  # TRL builds the rollouts' SamplingParams, then calls the engine
            trainer.vllm_generation.generate(prompts=[[5, 6, 7]], images=None, num_generations=1)
        params = FakeSamplingParams.made[-1]
        assert set(pinned_ids) <= set(params["stop_token_ids"]), "training rollouts stop at <|im_end|>"
        assert made["stop_token_ids"] == params["stop_token_ids"]
        # TRL's own EOS list (clipped_ratio, truncation masks) holds the same ids.
        assert set(trainer.eos_token_ids) == set(params["stop_token_ids"])
    assert [m["seed"] for m in FakeLLM.made] == [vllm_seed(1, 0), vllm_seed(2, 0)]
    assert vllm_seed(1, 0) != vllm_seed(2, 0) and vllm_seed(1, 1) != vllm_seed(2, 0)


class FakeClient:
    """Stands in for TRL's VLLMClient of server mode: records how TRL connects and what it requests."""

    made: list[dict] = []
    requests: list[dict] = []

    def __init__(self, **kwargs):
        FakeClient.made.append(kwargs)

    def init_communicator(self, device):
        pass

    def generate(self, **kwargs):
        FakeClient.requests.append(kwargs)
        raise Captured


def test_server_mode_rollouts_go_to_the_launched_server_with_the_pinned_stop_ids(repo, tmp_path, chat_model_dir,
                                                                                add3_problems, monkeypatch):
    from trl.generation import vllm_generation

    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda: True)
    monkeypatch.setattr(vllm_generation, "VLLMClient", FakeClient, raising=False)
    monkeypatch.setenv(launch.SERVER_PORT_ENV, "40001")  # what mtarl.launch.relaunch gives the training processes
    monkeypatch.setenv(launch.GROUP_PORT_ENV, "40002")
    pinned_ids = load(str(chat_model_dir))[1].convert_tokens_to_ids(chat_settings("qwen2.5")["stop_tokens"])
    s = {**paper_precision(repo), "seed": 1, "chat": "qwen2.5", "use_vllm": True, "val_every": 0,
         "vllm": {"mode": "server", "gpu_memory_utilization": 0.9}, "vllm_server_gpus": 1}
    trainer, made = train_stage.build_trainer(s, str(chat_model_dir), str(add3_problems["train"]),
                                              str(add3_problems["eval"]), tmp_path / "work")
    assert FakeClient.made[-1] == {"base_url": "http://127.0.0.1:40001", "group_port": 40002,
                                   "connection_timeout": launch.CLIENT_TIMEOUT_SECONDS}
    with pytest.raises(Captured):  # rank 0 sends each prompt once with n = num_generations
        trainer.vllm_generation.generate(prompts=[[5, 6, 7], [5, 6, 7]], images=None, num_generations=2)
    request = FakeClient.requests[-1]
    assert request["n"] == 2 and request["prompts"] == [[5, 6, 7]]
    assert set(pinned_ids) <= set(request["generation_kwargs"]["stop_token_ids"]) == set(made["stop_token_ids"])
    # No per-request seed: the server's engine seed (vllm_seed(run seed, 0), its --seed) draws the samples.
    assert "seed" not in request["generation_kwargs"]


def test_launcher_of_each_layout(repo):
    paper = cfg.load(repo / "config/paper.yaml")
    command = launch.launcher(cfg.train_settings(paper, "ground_truth", seed=1))
    assert command == (f"accelerate launch --config_file {launch.ACCELERATE_CONFIGS / 'fsdp2.yaml'} "
                       "--num_processes 8 --num_machines 1 --main_process_port 0 --mixed_precision bf16")
    assert (launch.ACCELERATE_CONFIGS / "fsdp2.yaml").exists() and (launch.ACCELERATE_CONFIGS / "zero3.yaml").exists()
    assert launch.launcher({"device": "cpu", "processes": 2}) == "torchrun --standalone --nproc_per_node 2"
    assert launch.launcher({"device": "cpu"}) == "" and launch.launcher({"device": "cuda"}) == ""
    with pytest.raises(ValueError, match="needs GPUs"):
        launch.launcher({"device": "cpu", "processes": 2, "engine": "fsdp2"})
    assert launch.rank_command("torchrun --standalone --nproc_per_node 2", ["train", "--launch", "x", "--out", "o"]) \
        == ["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "mtarl.cli", "train", "--out", "o"]


def test_two_cpu_processes_agree_with_one(tmp_path, random_model_dir, add3_problems):
    script = REPO / "tests" / "distributed_grpo.py"
    data = [str(random_model_dir), str(add3_problems["train"]), str(add3_problems["eval"])]
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env.update(OMP_NUM_THREADS="1", TRL_EXPERIMENTAL_SILENCE="1")
    runs = {
        "one": [sys.executable, str(script), *data, str(tmp_path / "one" / "out.json")],
        "two": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
                *data, str(tmp_path / "two" / "out.json")],
    }
    for name in runs:
        (tmp_path / name).mkdir()
    processes = {name: subprocess.Popen(cmd, cwd=tmp_path / name, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=env) for name, cmd in runs.items()}
    for name, process in processes.items():
        output = process.communicate(timeout=600)[0]
        assert process.returncode == 0, f"{name}:\n{output[-3000:]}"
    one, two = (json.loads((tmp_path / name / "out.json").read_text()) for name in runs)
    for variant in ("ground_truth", "majority", "dynamic"):
        assert (one[variant]["processes"], two[variant]["processes"]) == (1, 2)
        for key in ("rewards", "advantages", "kept", "final_advantages"):
            assert one[variant][key] == two[variant][key], f"{variant}: {key}"
        assert one[variant]["losses"] == pytest.approx(two[variant]["losses"], abs=1e-6), variant
    assert one["majority"]["rewards"] != one["ground_truth"]["rewards"], "the vote differs from the ground truth"
    kept = one["dynamic"]["kept"][0]
    assert len(kept) == 3 and any(batch > 0 for batch, _ in kept), "dynamic sampling drew and kept a refill"


def test_self_certainty_logprobs_in_bounded_chunks_equal_the_full_computation(repo, tmp_path, random_model_dir,
                                                                                add3_problems):
    s = {**paper_precision(repo), "reward": "self_certainty", "temperature": 0.7, "mixed_precision": "no",
         "prompts_per_step": 1, "num_generations": 2, "steps_per_generation": 2}  # micro-batch of 1 row
    trainer, _ = train_stage.build_trainer(s, str(random_model_dir), str(add3_problems["train"]),
                                           str(add3_problems["eval"]), tmp_path / "work")
    assert trainer.args.per_device_train_batch_size == 1
    tokenizer = trainer.processing_class
    prompts = ["123+456=", "12+3="]
    completions = [tokenizer("579</answer>", add_special_tokens=False)["input_ids"], []]
    got = trainer._mean_logprobs(prompts, completions)
    ids = torch.tensor([tokenizer(prompts[0], add_special_tokens=False)["input_ids"] + completions[0]])
    with torch.no_grad():
        logits = trainer.model(input_ids=ids).logits[0, :-1] / 0.7
    full = torch.log_softmax(logits.float(), -1).gather(-1, ids[0, 1:, None]).squeeze(-1)[-len(completions[0]):]
    assert got[0].item() == pytest.approx(full.mean().item(), abs=1e-5)
    assert got[1].item() == 0.0, "an empty completion scores 0"
