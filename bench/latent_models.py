"""Bench: pretrain candidate base models with latent behaviours of controlled prior, print their profiles, and
optionally run a short GRPO check of a few variants on one of them (exploration for issue 11; not a test).

Run (from the repository root, one candidate per process so that several can share the machine):
    .venv/bin/python bench/latent_models.py --candidate noisy_partial_format --out /tmp/latent --threads 1
    .venv/bin/python bench/latent_models.py --candidate noisy_partial_format --out /tmp/latent --threads 1 \\
        --grpo ground_truth random format majority --grpo-steps 100

A candidate is a set of overrides of ``models.<model>.pretrain`` of the configuration (``--config``, default
config/config.yaml, plus ``--override`` files merged over it, e.g. config/mechanisms.yaml). Its profile is measured
like the probe's (``mtarl.metrics.probe_metrics_table`` and ``profile_table``): pass@1, pass@16, maj@16, greedy@1,
format rate and strategy share on the first ``--n-problems`` eval problems of the selection task, 16 samples each at
the rollout settings. The GRPO check trains each variant for ``--grpo-steps`` steps (settings of the configuration's
``train`` section, one seed) and prints the change of avg@16 at the evaluation settings, with the per-step
diagnostics of metrics.jsonl averaged over the run (clip fraction, entropy) and at its end (format rate, strategy
share). Numbers are printed, never asserted; the pretraining jump's timing varies from run to run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl
import torch

from mtarl import config as mconfig
from mtarl import metrics, pretrain, prepare, scoring, train
from mtarl.modeling import load
from mtarl.sampling import HFSampler

# Overrides of the configuration's pretrain settings of `base` (a model name). Select on pass@16 as the default does.
CANDIDATES = {
    # today's aligned model (format_rate 0.95, exact answers), for reference
    "plain": {"base": "aligned"},
    # formats as today, noisy answers whose mode is right
    "noisy": {"base": "aligned", "answer_noise": 0.3},
    # knows the task, formats a third of the time, noisy answers whose mode is right
    "noisy_partial_format": {"base": "aligned", "format_rate": 0.3, "answer_noise": 0.3},
    # formats always; a scratchpad strategy (accurate) at low prior beside noisy direct answers
    "scratchpad_minority": {"base": "aligned", "format_rate": 1.0, "scratchpad_rate": 0.3, "answer_noise": 0.4,
                            "scratchpad_noise": 0.05},
    # the same two strategies with the accurate one at high prior
    "scratchpad_majority": {"base": "aligned", "format_rate": 1.0, "scratchpad_rate": 0.7, "answer_noise": 0.4,
                            "scratchpad_noise": 0.05},
    # aligned with a format prior (knows add3, formats 60% of the time) and answer noise (mode right), selected
    # near convergence by pass@1 (pass@16 saturates early in the jump)
    "format_prior": {"base": "aligned", "format_rate": 0.6, "answer_noise": 0.15,
                     "select": {"k": 1, "min": 0.4, "max": 1.0}},
    # the weak mixture model selected a little later in its add3 jump (weak but learnable)
    "weak_later": {"base": "weak", "select": {"min": 0.35, "max": 0.55}},
    # ... and later still
    "weak_more": {"base": "weak", "select": {"min": 0.5, "max": 0.7}},
    # weak with an accurate strategy at low prior (scratchpads) beside direct answers it does not know yet
    "weak_scratch05": {"base": "weak", "scratchpad_rate": 0.05},
    "weak_scratch15": {"base": "weak", "scratchpad_rate": 0.15},
    # weak but learnable: add3 only, just before its jump (miniature.md's prototype: pass@64 0.70)
    "weak_add3": {"base": "aligned", "format_rate": 0.95, "answer_noise": 0.0,
                  "select": {"k": 16, "min": 0.3, "max": 0.5}},
    # mostly add3 with some mul2, before the add3 jump
    "weak_mix82": {"base": "weak", "mixture": {"add3": 0.8, "mul2": 0.2}, "select": {"min": 0.3, "max": 0.5}},
    # weak: mostly mul2, with partial-product scratchpads, selected early
    "weak_scratchpad": {"base": "weak", "scratchpad_rate": 0.5, "select": {"min": 0.2, "max": 0.5}},
}


def candidate_settings(cfg: dict, name: str, args: argparse.Namespace) -> dict:
    overrides = dict(CANDIDATES[name])
    base = overrides.pop("base")
    settings = mconfig.merge(cfg["models"][base]["pretrain"], overrides)
    settings["eval_every"] = args.eval_every
    settings["select"] = {**settings["select"], "n_prompts": args.select_prompts}
    settings["select"]["n"] = max(settings["select"]["n"], settings["select"]["k"])
    if args.max_steps:
        settings["max_steps"] = args.max_steps
    if args.select_min is not None:
        settings["select"] = {**settings["select"], "min": args.select_min, "max": 1.0}
    return settings


def problem_tables(cfg: dict, tasks: list[str], out: Path) -> dict[str, dict[str, Path]]:
    """Train and eval splits of ``tasks``, written by the real prepare stage (reused when present)."""
    paths = {}
    for task in tasks:
        paths[task] = {split: out / "data" / f"{task}-{split}.parquet" for split in ("train", "eval")}
        for split, path in paths[task].items():
            if not path.exists():
                prepare.run(task, "train" if split == "train" else task, cfg["tasks"][task], str(path))
    return paths


def profile(model_dir: Path, problems: pl.DataFrame, sampling: dict, n: int = 16) -> dict:
    """pass@1, pass@n, maj@n, greedy@1, format rate and strategy share, as the probe measures them."""
    model, tokenizer = load(str(model_dir))
    sampler = HFSampler(model, tokenizer, max_batch_sequences=sampling["max_batch_sequences"])
    samples = scoring.sample_and_score(sampler, problems, scoring.sampling_params(sampling, n=n, seed=0))
    greedy = scoring.sample_and_score(sampler, problems, scoring.sampling_params(sampling, n=1, seed=0,
                                                                                  temperature=0.0))
    table = pl.concat([metrics.probe_metrics_table(samples, ks=[1, n], n_boot=200),
                       metrics.profile_table(samples, greedy, n_boot=200)])
    return {f"{m}" if m in ("greedy@1", "format_rate", "strategy_share") else m.replace("k", str(k)): v
            for m, k, v in table.select("metric", "k", "value").rows()}


def avg_at_n(model_dir: Path, problems: pl.DataFrame, cfg: dict) -> float:
    evaluation, sampling = cfg["evaluate"], cfg["sampling"]
    model, tokenizer = load(str(model_dir))
    params = scoring.sampling_params(sampling, n=evaluation["n"], seed=evaluation["seed"], top_p=evaluation["top_p"])
    return metrics.avg_at_k(scoring.sample_and_score(HFSampler(model, tokenizer), problems, params))


def grpo_check(cfg: dict, model_dir: Path, paths: dict, task: str, variants: list[str], steps: int, out: Path,
               eval_problems: pl.DataFrame, seed: int = 1) -> list[dict]:
    base = avg_at_n(model_dir, eval_problems, cfg)
    print(f"grpo: base avg@{cfg['evaluate']['n']} {base:.3f}", flush=True)
    rows = []
    for variant in variants:
        settings = {**mconfig.train_settings(cfg, variant, seed=seed), "max_steps": steps, "chat": None,
                    "val_every": 0}
        if settings["one_shot"] and settings["one_shot"]["select"] == "historical_variance":
            settings["one_shot"] = {**settings["one_shot"], "select": "random"}  # no history run in a bench
        run_dir = out / "grpo" / f"{variant}-s{seed}"
        started = time.time()
        train.run(settings, str(model_dir), str(paths[task]["train"]), str(paths[task]["eval"]), str(run_dir / "work"),
                  str(run_dir / "model"), str(run_dir / "metrics.jsonl"), str(run_dir / "examples.jsonl"))
        log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        last = log[-10:]

        def mean(records, key):
            values = [r[key] for r in records if key in r]
            return sum(values) / len(values) if values else float("nan")

        trained = avg_at_n(run_dir / "model", eval_problems, cfg)
        row = {"variant": variant, "delta": trained - base, "trained": trained,
               "clip_fraction": mean(log, "clip_ratio/region_mean"), "entropy": mean(log, "entropy"),
               "format_rate_end": mean(last, "format_rate"), "strategy_share_end": mean(last, "strategy_share"),
               "seconds": round(time.time() - started)}
        rows.append(row)
        print("grpo: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", required=True, choices=sorted(CANDIDATES))
    parser.add_argument("--out", required=True, help="work directory (problems, models, logs)")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--override", nargs="*", default=[], help="config files merged over --config")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-steps", type=int, help="override the candidate's pretrain.max_steps")
    parser.add_argument("--eval-every", type=int, default=100, help="pretrain.eval_every (selection cost)")
    parser.add_argument("--select-prompts", type=int, default=64, help="pretrain.select.n_prompts")
    parser.add_argument("--select-min", type=float, help="pretrain.select.min (max 1); e.g. 1 trains to max_steps")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="sampling.max_new_tokens (scratchpads)")
    parser.add_argument("--n-problems", type=int, default=100, help="eval problems of the profile")
    parser.add_argument("--grpo", nargs="*", default=[], help="variants of a short GRPO check on this candidate")
    parser.add_argument("--grpo-steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1, help="training seed of the GRPO check")
    parser.add_argument("--task", help="task of the profile and GRPO check (default: the selection task)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = mconfig.load(args.config, *args.override)
    cfg["sampling"]["max_new_tokens"] = args.max_new_tokens
    settings = candidate_settings(cfg, args.candidate, args)
    out = Path(args.out)
    paths = problem_tables(cfg, sorted({*settings["mixture"], *([args.task] if args.task else [])}), out)
    problems = pl.concat([pl.read_parquet(p) for task in paths.values() for p in task.values()])
    model_dir = out / "models" / args.candidate
    started = time.time()
    if not model_dir.exists():
        pretrain.run(settings, cfg["sampling"], problems, str(model_dir), str(out / f"{args.candidate}-curve.parquet"))
    task = args.task or settings["select"]["task"]
    eval_problems = pl.read_parquet(paths[task]["eval"]).head(args.n_problems)
    values = profile(model_dir, eval_problems, cfg["sampling"])
    print(f"profile {args.candidate} ({time.time() - started:.0f}s, {json.dumps(CANDIDATES[args.candidate])}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in values.items()), flush=True)
    if args.grpo:
        grpo_check(cfg, model_dir, paths, task, args.grpo, args.grpo_steps, out / args.candidate / task,
                   eval_problems, args.seed)


if __name__ == "__main__":
    main()
