"""One-command GPU check of the vLLM sampling backend (mtarl.sampling_vllm.VLLMSampler) against the HF backend.

Run on a machine with a CUDA GPU and the GPU environment (``pip install -r envs/gpu.txt``; mtarl itself need not be
installed): ``python bench/gpu_check.py`` (about 2-4 minutes on one GPU; ``--help`` lists the knobs).
Exit code: 0 all checks passed; 1 a check failed; 2 no CUDA GPU or no vLLM (stops after building the model).

Steps:
1. Environment: Python, torch, transformers, vLLM versions, GPU.
2. A tiny model built here, no hub: Qwen2 with hidden size 256, 4 attention heads (head_dim 64), 2 KV heads, 4 layers,
   intermediate size 768, 128 positions, tied embeddings (about 3.2 M parameters), and mtarl's character tokenizer.
   Why these sizes: head_dim 64 is accepted by every vLLM attention backend (FlashAttention, FlashInfer, Triton,
   FlexAttention), while the miniature's own models have head_dim 32 (128 / 4), which FlashInfer rejects; 2 KV heads
   make it grouped-query attention like the paper's models; 128 positions hold a prompt (8 tokens) plus
   ``--max-new-tokens``. It is pretrained ``--pretrain-steps`` steps on add3 (GPU, seconds) so that it writes the answer
   format and stops with EOS, then saved with ``save_pretrained`` to a temporary directory that vLLM loads.
   The character tokenizer has no chat template: both backends sample with ``chat=None``.
3. vLLM backend, in a child process (a fresh CUDA context, and a time limit so that a hang cannot eat the budget):
   bfloat16, tensor parallel 1, ``--gpu-memory-utilization``; one untimed warm-up call, then ``--prompts`` add3
   prompts x ``--n`` samples at temperature 1 (timed), the same again (reproducibility), another seed, and the first
   8 prompts alone (batch independence). If the engine fails with vLLM's defaults (torch.compile, CUDA graphs), that is
   reported as a failed check and the step is retried once with ``enforce_eager=True``.
4. HF backend (mtarl.sampling.HFSampler) on the GPU in bfloat16, same prompts and settings (timed after a warm-up).
5. Checks (exit code 1 if any fails):
   - vllm_shapes: n completions per prompt; finish reasons "stop"/"length"; 1 <= n_tokens <= max_new_tokens and a
     "length" completion has exactly max_new_tokens;
   - vllm_samples_differ: the n samples of a prompt at temperature 1 are not all identical (a past vLLM bug with
     seeds, PR #11898): at most half of the prompts may have n identical samples;
   - vllm_reproducible: the same seed gives the same samples; vllm_seed_matters: another seed gives others;
   - agree_*: vLLM and HF sample the same distribution: share of correct samples and of stopped samples within 0.05,
     mean completion length within 10 % (same model, prompts and settings; 8192 samples each by default).
   - vllm_greedy_completer: the contamination check's greedy completer (``VLLMSampler.greedy_completer``) returns
     one completion per prefix (32 prompts cut in half); its agreement with the HF greedy completer is reported.
   Reported, not checked: the share of the first 8 prompts whose samples are identical when sampled alone, and of
   the other prompts sampled as a shard with ``first_index=8`` (vLLM promises this only in batch-invariant mode),
   and samples/s of both backends (after warm-up).

6. Training (``--train-steps``, 0 skips it): a few GRPO steps of the ground-truth variant on the same tiny model with
   mtarl's trainer (mtarl.train.build_trainer) as a paper run sets it up: fp32 master weights, bf16 compute, gradient
   checkpointing, vLLM colocate (``--train-vllm-utilization``), once per seed (``--train-seeds``, default 1 and 2), each
   in a child process. Checks: train_steps (every run finishes its steps), train_master_fp32 (the optimizer holds
   float32 weights), train_stop_ids (the rollouts' SamplingParams carry the pinned stop ids), train_seeds_differ (the
   two seeds' first rollouts differ: the run seed reaches vLLM). Reported: peak GPU memory of each run
   (torch.cuda.max_memory_allocated, the trainer's side; vLLM's share is its utilization) and seconds per step.

7. vLLM server mode (``--server-steps``, 0 skips it; needs 2 GPUs, else reported as skipped): the real command of a
   server-mode run, ``mtarl train --launch ...`` with ``vllm.mode: server``, gpus_per_run 2 and vllm_server_gpus 1
   (mtarl.launch starts ``trl vllm-serve`` on the second GPU, waits for its /health, trains on the first and stops the
   server), once per seed of ``--train-seeds``. Checks: server_steps (both runs finish and save their model),
   server_seed_in_manifest (the server's engine seed is vllm_seed(run seed, 0)), server_seeds_differ (the first
   step's reward, entropy and mean completion length differ between the seeds: the seed reaches the server's
   sampling), server_stopped (no server answers on the runs' ports afterwards; their logs name the ports).

Output: one line per step and check, then ``RESULT: PASS`` or ``RESULT: FAIL (...)``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Python puts this script's folder first on sys.path, where bench/math_verify.py would shadow the math_verify library.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if importlib.util.find_spec("mtarl") is None:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(HERE.parent / "src"))

import torch  # noqa: E402

ARCH = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True)
DTYPE = "bfloat16"
SUBSET = 8  # prompts sampled alone for the batch-independence report
GREEDY_PROMPTS = 32  # prefixes completed greedily by both backends (the contamination check's completer)
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=128, help="add3 eval prompts")
    parser.add_argument("--n", type=int, default=64, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    parser.add_argument("--time-limit", type=float, default=280.0, help="seconds for the whole check")
    parser.add_argument("--enforce-eager", action="store_true", help="start vLLM without torch.compile/CUDA graphs")
    parser.add_argument("--keep", help="save the tiny model here instead of a temporary directory")
    parser.add_argument("--train-steps", type=int, default=3, help="GRPO steps per training run (0: no step 6)")
    parser.add_argument("--train-seeds", type=int, nargs=2, default=[1, 2], help="the two run seeds of step 6")
    parser.add_argument("--train-vllm-utilization", type=float, default=0.2, help="vLLM's GPU share in step 6")
    parser.add_argument("--train-time-limit", type=float, default=300.0, help="seconds for step 6, both runs")
    parser.add_argument("--server-steps", type=int, default=2, help="GRPO steps per server-mode run (0: no step 7)")
    parser.add_argument("--server-vllm-utilization", type=float, default=0.5, help="the server GPU's vLLM share")
    parser.add_argument("--server-time-limit", type=float, default=600.0, help="seconds for step 7, both runs")
    parser.add_argument("--train-worker", help=argparse.SUPPRESS)  # internal: one run of step 6, JSON here
    parser.add_argument("--train-seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run step 3 and write its JSON here
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------------- 1. environment

def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def report_environment() -> None:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    say(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), transformers "
        f"{version('transformers')}, vllm {version('vllm') or 'NOT INSTALLED'}, GPU: {gpu} "
        f"(x{torch.cuda.device_count()})")


def missing_requirements() -> list[str]:
    missing = []
    if not torch.cuda.is_available():
        missing.append(f"no CUDA GPU visible to torch {torch.__version__} (a CPU build, or no driver/GPU)")
    if importlib.util.find_spec("vllm") is None:
        missing.append("vllm is not installed: pip install 'mtarl[gpu]' or pip install -r envs/gpu.txt")
    return missing


# ------------------------------------------------------------------------------------------------------ 2. the model

def problems(n_eval: int):
    import polars as pl

    from mtarl.prepare import synthetic_splits

    splits = synthetic_splits("add3", "add3", n_train=4000, n_eval=n_eval, seed=0)
    return pl.concat([splits["train"], splits["eval"]]), splits["eval"]


def build_model(steps: int, pretraining, out_dir: str, device: str) -> None:
    """The tiny Qwen2 + character tokenizer, pretrained ``steps`` steps on add3, saved to ``out_dir``."""
    from mtarl.modeling import build_tiny_model, n_parameters
    from mtarl.pretrain import build_corpus, encode_batch, lr_lambda, optimizer_step
    from mtarl.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, seed=0, **ARCH).to(device)
    corpus = build_corpus({"mixture": {"add3": 1.0}, "format_rate": 1.0}, pretraining, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(30, steps))
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        loss = optimizer_step(model, optimizer, schedule, encode_batch(tokenizer, *corpus.batch(128)))
    model.to("cpu").save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    say(f"model: tiny Qwen2 {n_parameters(model):,} parameters, head_dim {ARCH['hidden_size'] // 4}, "
        f"pretrained {steps} steps on {device} (loss {loss.item():.3f}), saved to {out_dir}")


# ------------------------------------------------------------------------------------- sampling and its summaries

def as_rows(outputs) -> list[list[dict]]:
    return [[{"text": c.text, "n_tokens": c.n_tokens, "finish_reason": c.finish_reason} for c in cs] for cs in outputs]


def timed_generate(sampler, prompts: list[str], params) -> tuple[list[list[dict]], float]:
    sampler.generate(prompts[:2], params)  # warm-up: first-call allocations and kernel selection
    started = time.perf_counter()
    outputs = sampler.generate(prompts, params)
    return as_rows(outputs), time.perf_counter() - started


def texts(rows: list[list[dict]]) -> list[list[str]]:
    return [[r["text"] for r in prompt_rows] for prompt_rows in rows]


def summary(rows: list[list[dict]], answers: list[str]) -> dict:
    from mtarl import tasks

    flat = [r for prompt_rows in rows for r in prompt_rows]
    golds = [a for a, prompt_rows in zip(answers, rows) for _ in prompt_rows]
    verdicts = tasks.verify_batch(["add3"] * len(flat), [r["text"] for r in flat], golds)
    return {
        "correct": sum(v.correct for v in verdicts) / len(flat),
        "stopped": sum(r["finish_reason"] == "stop" for r in flat) / len(flat),
        "mean_tokens": sum(r["n_tokens"] for r in flat) / len(flat),
        "all_identical": sum(len(set(t)) == 1 for t in texts(rows)) / len(rows),
    }


# -------------------------------------------------------------------------------------- 3. vLLM (child process)

def vllm_worker(args: argparse.Namespace) -> None:
    """Step 3 in this (child) process; writes the samples and facts to ``args.worker`` as JSON."""
    from mtarl.sampling import SamplingParams
    from mtarl.sampling_vllm import VLLMSampler

    _, eval_split = problems(args.prompts)
    prompts = eval_split["prompt"].to_list()
    params = SamplingParams(n=args.n, max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
                            seed=args.seed)
    started = time.perf_counter()
    sampler = VLLMSampler(args.model_dir, dtype=DTYPE, chat=None, seed=args.seed, tensor_parallel_size=1,
                          gpu_memory_utilization=args.gpu_memory_utilization,
                          max_model_len=ARCH["max_position_embeddings"], enforce_eager=args.enforce_eager)
    startup = time.perf_counter() - started
    say(f"vllm: engine up in {startup:.0f} s")
    rows, seconds = timed_generate(sampler, prompts, params)
    say(f"vllm: {len(prompts) * args.n} samples in {seconds:.2f} s")
    again = as_rows(sampler.generate(prompts, params))
    other = as_rows(sampler.generate(prompts, SamplingParams(**{**params.to_dict(), "seed": args.seed + 1})))
    alone = as_rows(sampler.generate(prompts[:SUBSET], params))
    shard = as_rows(sampler.generate(prompts[SUBSET:], params, first_index=SUBSET))
    greedy = sampler.greedy_completer()(*greedy_inputs(prompts))
    result = {
        "describe": sampler.describe(), "startup_s": startup, "generate_s": seconds, "rows": rows,
        "reproducible": texts(again) == texts(rows), "seed_matters": texts(other) != texts(rows),
        "alone_same": sum(a == b for a, b in zip(texts(alone), texts(rows[:SUBSET]))) / SUBSET,
        "shard_same": sum(a == b for a, b in zip(texts(shard), texts(rows[SUBSET:]))) / max(1, len(shard)),
        "greedy": greedy,
        "enforce_eager": args.enforce_eager,
    }
    Path(args.worker).write_text(json.dumps(result))


def run_vllm_child(args: argparse.Namespace, model_dir: str, out: Path, eager: bool, limit: float) -> str | None:
    """Run step 3 in a child process; None if it wrote its result, else why it did not."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(out), "--model-dir", model_dir,
               "--prompts", str(args.prompts), "--n", str(args.n), "--max-new-tokens", str(args.max_new_tokens),
               "--seed", str(args.seed), "--gpu-memory-utilization", str(args.gpu_memory_utilization)]
    if eager:
        command.append("--enforce-eager")
    out.unlink(missing_ok=True)  # never read a result left by an earlier run
    say(f"vllm: starting the engine in a child process (enforce_eager={eager}, time limit {limit:.0f} s)")
    try:
        code = subprocess.run(command, timeout=limit).returncode
    except subprocess.TimeoutExpired:
        return f"timed out after {limit:.0f} s"
    if code != 0 or not out.exists():
        return f"child exited with code {code} (its traceback is above)"
    return None


def run_vllm(args: argparse.Namespace, model_dir: str, checks: dict) -> dict | None:
    out = Path(model_dir).parent / "vllm_result.json"
    reserve = 45.0  # the HF step and the checks
    failure = run_vllm_child(args, model_dir, out, args.enforce_eager, time_left(args) - reserve)
    if failure and not args.enforce_eager:
        checks["vllm_engine_default"] = (False, f"vLLM with its defaults (torch.compile, CUDA graphs): {failure}")
        if time_left(args) - reserve > 60:
            failure = run_vllm_child(args, model_dir, out, True, time_left(args) - reserve)
    elif not failure:
        checks["vllm_engine_default" if not args.enforce_eager else "vllm_engine_eager"] = (True, "engine started")
    if failure:
        checks["vllm_engine"] = (False, failure)
        return None
    return json.loads(out.read_text())


def time_left(args: argparse.Namespace) -> float:
    return args.time_limit - (time.monotonic() - STARTED)


# ------------------------------------------------------------------------------------------------- 6. training
TRAIN_STOP_IDS: list = []


def train_settings(args: argparse.Namespace, seed: int) -> dict:
    """The miniature's ground-truth settings with the paper's precision, checkpointing and colocated vLLM."""
    from mtarl import config as cfg

    settings = cfg.train_settings(cfg.load(HERE.parent / "config/config.yaml"), "ground_truth", seed)
    return {**settings, "device": "cuda", "dtype": "float32", "mixed_precision": "bf16", "use_vllm": True,
            "gradient_checkpointing": True, "max_steps": args.train_steps, "save_steps": 1000, "val_every": 0,
            "learning_rate": 1e-6, "max_completion_length": args.max_new_tokens,
            # vLLM's max_model_len is max_prompt_tokens + max_completion_length: within the model's 128 positions.
            "max_prompt_tokens": 32,
            "vllm": {"gpu_memory_utilization": args.train_vllm_utilization, "sleep_mode": False}, "chat": None}


def train_worker(args: argparse.Namespace) -> None:
    """One training run of step 6 in this (child) process; writes its facts to ``args.train_worker`` as JSON."""
    from trl.generation import vllm_generation

    from mtarl import train

    work = Path(args.train_worker).parent / f"train-seed{args.train_seed}"
    pretraining, eval_split = problems(64)
    pretraining.write_parquet(work.parent / "train.parquet")
    eval_split.write_parquet(work.parent / "eval.parquet")
    engine_params = vllm_generation.SamplingParams

    def recording(**kwargs):  # the rollouts' sampling parameters, as TRL builds them
        TRAIN_STOP_IDS.append(list(kwargs.get("stop_token_ids") or []))
        return engine_params(**kwargs)

    vllm_generation.SamplingParams = recording
    settings = train_settings(args, args.train_seed)
    trainer, made = train.build_trainer(settings, args.model_dir, str(work.parent / "train.parquet"),
                                        str(work.parent / "eval.parquet"), work)
    first: list[str] = []
    calculate = trainer._calculate_rewards

    def recording_rewards(inputs, prompts, completions, completion_ids_list):
        if not first:
            first.extend(str(c) for c in completions)
        return calculate(inputs, prompts, completions, completion_ids_list)

    trainer._calculate_rewards = recording_rewards
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    result = {"steps": trainer.state.global_step, "seconds_per_step": seconds / max(1, trainer.state.global_step),
              "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
              "master_dtype": train.precision_record(trainer, settings)["master_weights_dtype"],
              "stop_ids": made["stop_token_ids"], "rollout_stop_ids": TRAIN_STOP_IDS[:1], "first_rollouts": first}
    Path(args.train_worker).write_text(json.dumps(result))


def run_train_check(args: argparse.Namespace, model_dir: str, checks: dict) -> None:
    deadline = time.monotonic() + args.train_time_limit
    results = {}
    for seed in args.train_seeds:
        out = Path(model_dir).parent / f"train_result_{seed}.json"
        out.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), "--train-worker", str(out), "--train-seed",
                   str(seed), "--model-dir", model_dir, "--train-steps", str(args.train_steps),
                   "--max-new-tokens", str(args.max_new_tokens),
                   "--train-vllm-utilization", str(args.train_vllm_utilization)]
        say(f"train: {args.train_steps} GRPO steps, seed {seed}, vLLM colocate (child process)")
        try:
            code = subprocess.run(command, timeout=max(1.0, deadline - time.monotonic())).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        if code != 0 or not out.exists():
            checks[f"train_seed{seed}"] = (False, f"training run failed ({code}; its traceback is above)")
            return
        results[seed] = json.loads(out.read_text())
        r = results[seed]
        say(f"train: seed {seed}: {r['steps']} steps, {r['seconds_per_step']:.1f} s/step, peak GPU memory "
            f"{r['peak_gb']:.2f} GB (trainer; vLLM reserves {args.train_vllm_utilization:.0%} of the GPU)")
    runs = list(results.values())
    checks["train_steps"] = (all(r["steps"] == args.train_steps for r in runs), f"{[r['steps'] for r in runs]}")
    checks["train_master_fp32"] = (all(r["master_dtype"] == "float32" for r in runs),
                                   f"{[r['master_dtype'] for r in runs]}")
    stops = all(r["rollout_stop_ids"] and set(r["stop_ids"]) <= set(r["rollout_stop_ids"][0]) for r in runs)
    checks["train_stop_ids"] = (stops, f"pinned {runs[0]['stop_ids']}, rollouts {runs[0]['rollout_stop_ids']}")
    checks["train_seeds_differ"] = (runs[0]["first_rollouts"] != runs[1]["first_rollouts"],
                                    f"first rollouts of seeds {args.train_seeds} differ")


# -------------------------------------------------------------------------------------------- 7. vLLM server mode

def server_settings(args: argparse.Namespace, seed: int) -> dict:
    """Step 6's settings in server mode: 1 training process, the vLLM server on the run's other GPU."""
    return {**train_settings(args, seed), "max_steps": args.server_steps, "processes": 1, "engine": "none",
            "vllm_server_gpus": 1,
            "vllm": {"mode": "server", "gpu_memory_utilization": args.server_vllm_utilization, "sleep_mode": False}}


def server_run(args: argparse.Namespace, model_dir: str, folder: Path, seed: int, timeout: float) -> dict | str:
    """One server-mode run through ``mtarl train --launch`` (as the train rule runs it); its facts or a failure."""
    from mtarl import launch

    settings = server_settings(args, seed)
    out = folder / f"seed{seed}"
    command = [sys.executable, "-m", "mtarl.cli", "train", "--settings", json.dumps(settings), "--model", model_dir,
               "--problems", str(folder / "train.parquet"), "--eval-problems", str(folder / "eval.parquet"),
               "--work", str(out / "work"), "--out", str(out / "model"), "--metrics", str(out / "metrics.jsonl"),
               "--examples", str(out / "examples.jsonl"), "--launch", launch.launcher(settings)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"), os.environ.get("PYTHONPATH")]))}
    log = folder / f"seed{seed}.log"
    say(f"server: {args.server_steps} GRPO steps, seed {seed}, vLLM server on GPU 1 (log {log})")
    try:
        with open(log, "w") as fh:
            code = subprocess.run(command, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    text = log.read_text()
    print(text[-3000:], flush=True)
    if code != 0:
        return f"server-mode run of seed {seed} failed ({code}; its log is above)"
    manifest = json.loads((out / "model" / "mtarl_manifest.json").read_text())
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    ports = [int(line.rsplit(":", 1)[1].split("/")[0]) for line in text.splitlines() if "vLLM server ready at" in line]
    return {"steps": manifest["global_step"], "vllm_seeds": manifest["vllm_seeds"], "ports": ports,
            "first": {k: first.get(k) for k in ("reward", "entropy", "completions/mean_length")}}


def run_server_check(args: argparse.Namespace, model_dir: str, checks: dict) -> None:
    from mtarl import launch

    if torch.cuda.device_count() < 2:
        say(f"server: skipped (vLLM server mode needs 2 GPUs, {torch.cuda.device_count()} visible)")
        return
    folder = Path(model_dir).parent / "server"
    folder.mkdir(exist_ok=True)
    pretraining, eval_split = problems(64)
    pretraining.write_parquet(folder / "train.parquet")
    eval_split.write_parquet(folder / "eval.parquet")
    deadline = time.monotonic() + args.server_time_limit
    runs = {}
    for seed in args.train_seeds:
        result = server_run(args, model_dir, folder, seed, max(1.0, deadline - time.monotonic()))
        if isinstance(result, str):
            checks[f"server_seed{seed}"] = (False, result)
            return
        runs[seed] = result
        say(f"server: seed {seed}: {result['steps']} steps, first step {result['first']}")
    a, b = (runs[s] for s in args.train_seeds)
    checks["server_steps"] = (a["steps"] == b["steps"] == args.server_steps, f"{[a['steps'], b['steps']]}")
    expected = [[launch.vllm_seed(s, 0)] for s in args.train_seeds]
    checks["server_seed_in_manifest"] = ([a["vllm_seeds"], b["vllm_seeds"]] == expected,
                                         f"{[a['vllm_seeds'], b['vllm_seeds']]}, expected {expected}")
    checks["server_seeds_differ"] = (a["first"] != b["first"], f"{a['first']} vs {b['first']}")
    ports = a["ports"] + b["ports"]
    answering = [p for p in ports if launch.healthy(f"http://{launch.SERVER_HOST}:{p}/health")]
    checks["server_stopped"] = (len(ports) == 2 and not answering, f"ports {ports}, still answering {answering}")


# ------------------------------------------------------------------------------------------------- 4. HF on CUDA

def greedy_inputs(prompts: list[str]) -> tuple[list[str], list[int]]:
    """Prefixes and budgets for the contamination check's greedy completer: the first prompts cut in half."""
    chosen = prompts[:GREEDY_PROMPTS]
    return [p[: len(p) // 2] for p in chosen], [len(p) - len(p) // 2 for p in chosen]


def run_hf_greedy(model_dir: str, prompts: list[str]) -> list[str]:
    from mtarl.contamination import hf_greedy_completer
    from mtarl.modeling import load

    model, tokenizer = load(model_dir, dtype=DTYPE)
    return hf_greedy_completer(model.to("cuda"), tokenizer)(*greedy_inputs(prompts))


def run_hf(args: argparse.Namespace, model_dir: str, prompts: list[str]) -> tuple[list[list[dict]], float]:
    from mtarl.modeling import load
    from mtarl.sampling import HFSampler, SamplingParams

    model, tokenizer = load(model_dir, dtype=DTYPE)
    sampler = HFSampler(model.to("cuda"), tokenizer)
    params = SamplingParams(n=args.n, max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
                            seed=args.seed)
    return timed_generate(sampler, prompts, params)


# ---------------------------------------------------------------------------------------------------- 5. checks

def shape_problems(rows: list[list[dict]], n_prompts: int, n: int, max_new: int) -> list[str]:
    problems_found = []
    if len(rows) != n_prompts or any(len(r) != n for r in rows):
        problems_found.append(f"expected {n_prompts} prompts x {n} samples")
    for r in (r for prompt_rows in rows for r in prompt_rows):
        if r["finish_reason"] not in {"stop", "length"} or not 1 <= r["n_tokens"] <= max_new or (
                r["finish_reason"] == "length" and r["n_tokens"] != max_new):
            problems_found.append(f"bad completion {r}")
            break
    return problems_found


def add_checks(checks: dict, args: argparse.Namespace, vllm: dict, hf_rows, answers: list[str]) -> None:
    rows = vllm["rows"]
    found = shape_problems(rows, args.prompts, args.n, args.max_new_tokens)
    checks["vllm_shapes"] = (not found, "; ".join(found) or f"{args.prompts} x {args.n}, reasons and lengths valid")
    v = summary(rows, answers)
    checks["vllm_samples_differ"] = (v["all_identical"] <= 0.5, f"{v['all_identical']:.2f} of prompts have n "
                                                                f"identical samples at T=1 (at most 0.5)")
    checks["vllm_reproducible"] = (vllm["reproducible"], "same seed, same samples")
    checks["vllm_seed_matters"] = (vllm["seed_matters"], "another seed, other samples")
    if hf_rows is None:
        return
    h = summary(hf_rows, answers)
    say(f"vllm: {v}")
    say(f"hf:   {h}")
    for key, tolerance in (("correct", 0.05), ("stopped", 0.05)):
        diff = abs(v[key] - h[key])
        checks[f"agree_{key}"] = (diff <= tolerance, f"vllm {v[key]:.3f} vs hf {h[key]:.3f} (within {tolerance})")
    ratio = v["mean_tokens"] / h["mean_tokens"]
    checks["agree_mean_tokens"] = (abs(ratio - 1) <= 0.10, f"vllm {v['mean_tokens']:.2f} vs hf {h['mean_tokens']:.2f} "
                                                           f"tokens (within 10 %)")


def add_greedy_check(checks: dict, vllm_greedy: list[str], model_dir: str, prompts: list[str]) -> None:
    """The contamination check's completer on vLLM: one completion per prefix; agreement with HF greedy reported."""
    prefixes, _ = greedy_inputs(prompts)
    ok = len(vllm_greedy) == len(prefixes) and all(isinstance(t, str) for t in vllm_greedy)
    try:
        hf_greedy = run_hf_greedy(model_dir, prompts)
        same = sum(a == b for a, b in zip(vllm_greedy, hf_greedy)) / len(prefixes)
        detail = f"{len(vllm_greedy)} completions; equal to HF greedy for {same:.2f} of them (bfloat16; reported)"
    except Exception as exc:  # the vLLM result still counts
        detail = f"{len(vllm_greedy)} completions; HF greedy failed: {type(exc).__name__}: {exc}"
    checks["vllm_greedy_completer"] = (ok, detail)


def finish(checks: dict) -> int:
    failed = [name for name, (ok, _) in checks.items() if not ok]
    for name, (ok, detail) in checks.items():
        say(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    say("RESULT: PASS" if not failed else f"RESULT: FAIL ({', '.join(failed)})")
    return 1 if failed else 0


def main() -> int:
    args = parse_args()
    if args.worker:
        vllm_worker(args)
        return 0
    if args.train_worker:
        train_worker(args)
        return 0
    report_environment()
    missing = missing_requirements()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pretraining, eval_split = problems(args.prompts)
    prompts, answers = eval_split["prompt"].to_list(), eval_split["answer"].to_list()
    with tempfile.TemporaryDirectory(prefix="mtarl_gpu_check_") as tmp:
        model_dir = args.keep or str(Path(tmp) / "model")
        build_model(args.pretrain_steps, pretraining, model_dir, device)
        if missing:
            for reason in missing:
                say(f"CANNOT CHECK: {reason}")
            say("RESULT: NOT RUN (this check needs a CUDA GPU and vLLM)")
            return 2
        torch.cuda.empty_cache()  # the pretraining's cached blocks: vLLM checks free memory at start-up
        checks: dict[str, tuple[bool, str]] = {}
        vllm = run_vllm(args, model_dir, checks)
        say("hf: sampling on cuda")
        total = args.prompts * args.n
        try:
            hf_rows, hf_seconds = run_hf(args, model_dir, prompts)
            say(f"hf: {total} samples in {hf_seconds:.2f} s = {total / hf_seconds:.0f} samples/s")
        except Exception as exc:  # report it with the vLLM checks rather than losing them
            checks["hf_backend"] = (False, f"{type(exc).__name__}: {exc}")
            hf_rows, hf_seconds = None, float("nan")
        if vllm is not None:
            add_checks(checks, args, vllm, hf_rows, answers)
            say(f"vllm: {total} samples in {vllm['generate_s']:.2f} s = {total / vllm['generate_s']:.0f} samples/s "
                f"(engine start {vllm['startup_s']:.0f} s, enforce_eager={vllm['enforce_eager']}); "
                f"vllm/hf throughput: {hf_seconds / vllm['generate_s']:.2f}x")
            say(f"vllm: first {SUBSET} prompts sampled alone give the same samples for "
                f"{vllm['alone_same']:.2f} of them (reported, not checked)")
            say(f"vllm: the other prompts sampled as a shard (first_index={SUBSET}) give the same samples for "
                f"{vllm['shard_same']:.2f} of them (reported, not checked)")
            add_greedy_check(checks, vllm["greedy"], model_dir, prompts)
            say(f"vllm describe(): {json.dumps(vllm['describe'])}")
        if args.train_steps:
            torch.cuda.empty_cache()
            run_train_check(args, model_dir, checks)
        if args.server_steps:
            torch.cuda.empty_cache()
            run_server_check(args, model_dir, checks)
        return finish(checks)


if __name__ == "__main__":
    sys.exit(main())
