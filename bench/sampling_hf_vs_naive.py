"""Benchmark of sampling on CPU: the batched HF backend (mtarl.sampling.HFSampler) vs a naive per-sample loop.

The workload is a miniature probe: ``--prompts`` add3 eval prompts (mtarl.prepare.synthetic_splits) x ``--n``
samples each (default 100 x 64) at temperature 1, ``--max-new-tokens`` tokens at most (default 12, the miniature's
setting). The model is the miniature's tiny Qwen2 (mtarl.modeling.build_tiny_model with its defaults, 0.86 M
parameters) and character tokenizer, built here and pretrained for ``--pretrain-steps`` steps on add3 (default 100) so
that it writes the answer format and stops with EOS at realistic lengths instead of always running to the limit.

Timed on the same model, prompts and sampling settings, each after one untimed warm-up call:
  (a) batched: ``HFSampler.generate`` (many prompts x n sequences per ``model.generate`` call, KV cache);
  (b) naive: one ``model.generate`` call per prompt per sample (``num_return_sequences=1``), each decoded. That takes
      minutes on the full workload, so it runs on the first ``--naive-prompts`` prompts (all n samples each) and its
      samples/s is extrapolated to the full workload; the output says so.
Both report the share of correct samples (same model, same distribution: they should agree within noise).

Threads: torch.set_num_threads(--threads), default 2 (the project's CPU machine).
Run: ``.venv/bin/python bench/sampling_hf_vs_naive.py [--prompts 100] [--n 64] [--naive-prompts 5] [--threads 2]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Python puts this script's folder first on sys.path, where bench/math_verify.py would shadow the math_verify library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import polars as pl  # noqa: E402
import torch  # noqa: E402

from mtarl import tasks  # noqa: E402
from mtarl.modeling import build_tiny_model, n_parameters  # noqa: E402
from mtarl.prepare import synthetic_splits  # noqa: E402
from mtarl.pretrain import build_corpus, encode_batch, lr_lambda, optimizer_step  # noqa: E402
from mtarl.sampling import Completion, HFSampler, SamplingParams, stop_token_ids  # noqa: E402
from mtarl.tokenizer import build_char_tokenizer  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100, help="add3 prompts (eval split)")
    parser.add_argument("--n", type=int, default=64, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--pretrain-steps", type=int, default=100)
    parser.add_argument("--naive-prompts", type=int, default=5, help="prompts the naive loop is timed on")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def problem_tables(n_eval: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """add3 pretraining problems (train and eval splits, as the pretrain stage takes them) and the eval prompts."""
    splits = synthetic_splits("add3", "add3", n_train=2000, n_eval=n_eval, seed=0)
    return pl.concat([splits["train"], splits["eval"]]), splits["eval"]


def pretrain_briefly(model, tokenizer, problems: pl.DataFrame, steps: int) -> float:
    """A few steps of the pretrain stage's objective (completion + EOS of add3 problems); returns the last loss."""
    settings = {"mixture": {"add3": 1.0}, "format_rate": 1.0}
    corpus = build_corpus(settings, problems, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(20, steps))
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        loss = optimizer_step(model, optimizer, schedule, encode_batch(tokenizer, *corpus.batch(64)))
    model.eval()
    return loss.item()


@torch.no_grad()
def naive_generate(model, tokenizer, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
    """One generate call per prompt per sample: the loop the batched backend replaces."""
    stop_ids = stop_token_ids(tokenizer, None)
    sampler = HFSampler(model, tokenizer)  # only for its completion parsing (stop detection, decoding)
    torch.manual_seed(params.seed)
    results = []
    for prompt in prompts:
        batch = tokenizer([prompt], return_tensors="pt")
        completions = []
        for _ in range(params.n):
            output = model.generate(**batch, do_sample=True, temperature=params.temperature, top_p=params.top_p,
                                    top_k=params.top_k, max_new_tokens=params.max_new_tokens,
                                    num_return_sequences=1, pad_token_id=tokenizer.pad_token_id,
                                    eos_token_id=stop_ids)
            completions.append(sampler._completion(output[0, batch["input_ids"].shape[1]:]))
        results.append(completions)
    return results


def timed(fn, *args) -> tuple[object, float]:
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def accuracy(outputs: list[list[Completion]], answers: list[str]) -> float:
    texts = [c.text for completions in outputs for c in completions]
    golds = [a for a, completions in zip(answers, outputs) for _ in completions]
    verdicts = tasks.verify_batch(["add3"] * len(texts), texts, golds)
    return sum(v.correct for v in verdicts) / len(verdicts)


def mean_tokens(outputs: list[list[Completion]]) -> float:
    counts = [c.n_tokens for completions in outputs for c in completions]
    return sum(counts) / len(counts)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torch.set_num_threads({args.threads}), CPU")
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, seed=0)
    pretraining, eval_split = problem_tables(args.prompts)
    loss, seconds = timed(pretrain_briefly, model, tokenizer, pretraining, args.pretrain_steps)
    print(f"model: tiny Qwen2, {n_parameters(model):,} parameters, pretrained {args.pretrain_steps} steps on add3 "
          f"(loss {loss:.3f}, {seconds:.0f} s)")
    prompts, answers = eval_split["prompt"].to_list(), eval_split["answer"].to_list()
    params = SamplingParams(n=args.n, max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0, seed=0)
    total = len(prompts) * args.n
    print(f"workload: {len(prompts)} add3 prompts x n={args.n} = {total} samples, T=1, "
          f"max_new_tokens={args.max_new_tokens}")

    batched = HFSampler(model, tokenizer)
    batched.generate(prompts[:2], params)  # warm-up (first-call allocations)
    out_a, t_a = timed(batched.generate, prompts, params)
    rate_a = total / t_a

    subset = prompts[: args.naive_prompts]
    naive_generate(model, tokenizer, subset[:1], SamplingParams(n=2, max_new_tokens=args.max_new_tokens))  # warm-up
    out_b, t_b = timed(naive_generate, model, tokenizer, subset, params)
    rate_b = len(subset) * args.n / t_b
    extrapolated = len(subset) < len(prompts)

    k = len(subset)
    print(f"(a) batched HFSampler: {total} samples in {t_a:.1f} s = {rate_a:.0f} samples/s "
          f"(mean {mean_tokens(out_a):.1f} tokens/sample, correct {accuracy(out_a, answers):.3f}; "
          f"on the naive subset: correct {accuracy(out_a[:k], answers[:k]):.3f})")
    note = (f"timed on the first {k} prompts ({k * args.n} samples) in {t_b:.1f} s; full workload extrapolated: "
            f"{total / rate_b:.0f} s" if extrapolated else f"{total} samples in {t_b:.1f} s")
    print(f"(b) naive loop:        {rate_b:.1f} samples/s ({note}; mean {mean_tokens(out_b):.1f} tokens/sample, "
          f"correct {accuracy(out_b, answers[:k]):.3f})")
    print(f"speed-up (a)/(b): {rate_a / rate_b:.1f}x (goal: 5x or more)")


if __name__ == "__main__":
    main()
