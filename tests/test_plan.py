"""mtarl plan: the memory arithmetic for the paper's two model shapes, by hand, and the fit / misfit verdicts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mtarl import config as cfg
from mtarl import plan

QWEN = plan.KNOWN_SHAPES["Qwen/Qwen2.5-7B"]
LLAMA = plan.KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"]


def test_parameter_counts_match_the_published_sizes():
    # Qwen2.5-7B: embeddings and untied head 2 x 152064 x 3584; per layer q,o 3584^2 each, k,v 3584 x 512 each,
    # q/k/v biases 3584 + 2 x 512, MLP 3 x 3584 x 18944, two norms 2 x 3584; 28 layers; final norm 3584.
    qwen_layer = 2 * 3584**2 + 2 * 3584 * 512 + (3584 + 1024) + 3 * 3584 * 18944 + 2 * 3584
    assert QWEN.layer_parameters() == qwen_layer == 233_057_792
    assert QWEN.parameters() == 2 * 152064 * 3584 + 28 * qwen_layer + 3584 == 7_615_616_512
    llama_layer = 2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert LLAMA.parameters() == 2 * 128256 * 4096 + 32 * llama_layer + 4096 == 8_030_261_248
    assert QWEN.kv_bytes_per_token() == 2 * 28 * 4 * 128 * 2 == 57_344
    assert LLAMA.kv_bytes_per_token() == 2 * 32 * 8 * 128 * 2 == 131_072


def paper(repo) -> dict:
    return cfg.validate(cfg.load(repo / "config/paper.yaml"))


@pytest.mark.parametrize("shape,P,L,h,kv,I,V", [
    (QWEN, 7_615_616_512, 28, 3584, 512, 18944, 152064),
    (LLAMA, 8_030_261_248, 32, 4096, 1024, 14336, 128256),
])
def test_paper_training_memory_by_hand(repo, shape, P, L, h, kv, I, V):
    settings = cfg.train_settings(paper(repo), "ground_truth", seed=1)
    # 128 prompts x 16 samples = 2048 per generation batch, 2 optimizer steps x 32 micro-batches x 8 processes.
    assert plan.micro_batch(settings) == 2048 // (2 * 32 * 8) == 4
    tokens = 4 * (2048 + 8192)
    memory = plan.train_memory(shape, settings, 80)
    expected = {
        "states": P * 16 / 8 / 1e9,
        "gathered_params": (2 * shape.layer_parameters() + V * h) * 2 / 1e9,
        "checkpointed_inputs": tokens * L * h * 2 / 1e9,
        "recompute_working_set": tokens * (7 * h + 2 * kv + 4 * I) * 4 / 1e9,
        "logprob_tile": 4096 * 32768 * 4 * 2 / 1e9,
        "overhead": 4.0,
        "vllm": 0.3 * 80,
    }
    for part, value in expected.items():
        assert memory[part] == pytest.approx(value), part
    assert memory["peak"] == pytest.approx(sum(expected.values()))
    assert memory["peak"] < 80 - 7.5, "the paper configuration keeps a margin of more than 7.5 GB per GPU"


def test_qwen_numbers_in_gigabytes(repo):
    memory = plan.train_memory(QWEN, cfg.train_settings(paper(repo), "ground_truth", seed=1), 80)
    # 7.6157e9 x 16 / 8 = 15.23 GB; 40960 tokens x 28 x 3584 x 2 = 8.22 GB; 40960 x 101888 x 4 = 16.69 GB.
    assert round(memory["states"], 2) == 15.23
    assert round(memory["checkpointed_inputs"], 2) == 8.22
    assert round(memory["recompute_working_set"], 2) == 16.69
    assert round(memory["peak"], 1) == 71.2
    # vLLM's 24 GB share: 15.23 GB bf16 weights and 2 GB overhead leave 6.77e9 / 57344 B = 118037 KV tokens.
    assert plan.vllm_kv_tokens(QWEN, 24.0) == int((24e9 - 7_615_616_512 * 2 - 2e9) // 57_344) == 118_037
    # A probe/evaluate job: one vLLM engine at 0.9 of the GPU, 72 GB: (72e9 - 15.23e9 - 2e9) / 57344 B.
    rows, _ = plan.plan(paper(repo))
    sampling = next(r for r in rows if r["model"] == "qwen" and r.get("sampling"))
    assert (sampling["gpus"], sampling["peak"]) == (1, pytest.approx(72.0))
    assert sampling["vllm_kv_tokens"] == int((72e9 - 7_615_616_512 * 2 - 2e9) // 57_344) == 955_091


def test_paper_config_fits_eight_80gb_gpus(repo):
    result = subprocess.run([sys.executable, "-m", "mtarl.cli", "plan", "--config", str(repo / "config/paper.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "8 GPUs, 8 processes (fsdp2), micro-batch 4" in result.stdout
    assert "fits: every job within 80 GB per GPU; tightest llama train ground_truth at 72.2 GB (margin 7.8 GB)" \
        in result.stdout


def test_a_config_that_does_not_fit_is_rejected_with_its_numbers(repo, tmp_path):
    override = tmp_path / "small.yaml"
    override.write_text("resources: {gpu_memory_gb: 40}\n")
    config = cfg.validate(cfg.load(repo / "config/paper.yaml", override))
    rows, problems = plan.plan(config)
    qwen = [p for p in problems if p.startswith("qwen train ground_truth:")]
    # vLLM's share shrinks with the card (0.3 x 40 = 12 GB): 71.2 - 24 + 12 = 59.2 GB, still over 40; and 12 GB
    # cannot hold the 15.2 GB of bf16 weights, so no KV cache either.
    assert "estimated peak 59.2 GB per GPU exceeds resources.gpu_memory_gb = 40" in qwen[0]
    assert "states 15.2" in qwen[0] and "vllm 12.0" in qwen[0]
    assert "KV cache for 0 tokens" in qwen[1]
    # One process without a sharded engine keeps all 16 bytes per parameter on one GPU: 121.8 GB for Qwen.
    single = tmp_path / "single.yaml"
    single.write_text("train: {gpus_per_run: 1, engine: none}\n")
    settings = cfg.train_settings(cfg.load(repo / "config/paper.yaml", single), "ground_truth", seed=1)
    settings["gradient_accumulation_steps"] = 256  # micro-batch 4 on one process
    assert plan.train_memory(QWEN, settings, 80)["states"] == pytest.approx(7_615_616_512 * 16 / 1e9)


def test_a_vllm_share_without_room_for_one_sequence_is_rejected(repo, tmp_path):
    override = tmp_path / "tight.yaml"
    override.write_text("train: {defaults: {vllm: {gpu_memory_utilization: 0.2, sleep_mode: false}}}\n")
    _, problems = plan.plan(cfg.validate(cfg.load(repo / "config/paper.yaml", override)))
    assert any("less than one 10240-token sequence" in p for p in problems)
