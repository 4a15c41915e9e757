"""Stage ``pretrain`` (miniature only): build a tiny model and pretrain it from scratch on a task mixture.

Run: ``mtarl pretrain --settings JSON --problems data/*/*.parquet --out MODEL_DIR --curve curve.parquet``

The step at which a tiny model "gets" arithmetic varies from run to run (even with the thread count), so a base model
is never taken at a fixed step: every ``eval_every`` steps the model's pass@k on a selection set (train-split problems
of ``select.task``) is measured, and the first checkpoint whose pass@k lies in ``[select.min, select.max]`` is saved
and training stops. If none does, ``select.on_miss`` decides: ``error``, or ``closest`` (the measured checkpoint
nearest the range, recorded as a miss). The curve of every measurement is written next to the model.

Pretraining text is ``prompt + completion + EOS`` with the loss on the completion and EOS only; problems of every
eval split are never trained on.

The text gives the model latent behaviours of controlled prior (each a ``models.<name>.pretrain`` key, drawn
independently per example; a rate of 0 draws nothing, so the random stream is that of a corpus without the key):
- ``format_rate``: the fraction of completions in the study's format ``<think>..</think><answer>..</answer>``; the
  others are the bare answer (plain style), which the format gate rejects;
- ``scratchpad_rate``: among formatted completions, the fraction that work the answer out inside ``<think>``
  (``arith.Family.scratchpad``); the others answer directly with an empty ``<think></think>``;
- ``answer_noise`` / ``scratchpad_noise``: the fraction of direct (formatted or plain) / scratchpad answers replaced
  by a plausible wrong one (``arith.plausible_wrong``: one digit off by one; the scratchpad itself stays right), so
  the mode stays right while samples at T = 1 are diffuse, and each strategy has its own accuracy.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from mtarl import io, metrics, scoring
from mtarl.modeling import build_tiny_model, n_parameters
from mtarl.sampling import HFSampler, SamplingParams
from mtarl.tasks import arith
from mtarl.tokenizer import build_char_tokenizer


@dataclass
class Corpus:
    """An endless stream of pretraining examples from a weighted mixture of arithmetic families."""

    families: list[arith.Family]
    weights: np.ndarray
    excluded: list[set[tuple[int, int]]]  # eval-split operand pairs, per family
    format_rate: float
    rng: np.random.Generator
    scratchpad_rate: float = 0.0
    answer_noise: float = 0.0
    scratchpad_noise: float = 0.0

    def batch(self, size: int) -> tuple[list[str], list[str]]:
        prompts, completions = [], []
        which = self.rng.choice(len(self.families), size=size, p=self.weights)
        for i in which.tolist():
            fam, excluded = self.families[i], self.excluded[i]
            (a, b), = arith.sample_operands(fam, 1, self.rng, exclude=excluded)
            prompts.append(fam.prompt(a, b))
            formatted = self.rng.random() < self.format_rate
            completions.append(self.completion(fam, a, b, formatted))
        return prompts, completions

    def completion(self, fam: arith.Family, a: int, b: int, formatted: bool) -> str:
        """One completion: the strategy and the answer's noise drawn at their rates (no draw at rate 0)."""
        scratchpad = formatted and self.draw(self.scratchpad_rate)
        answer = fam.answer(a, b)
        if self.draw(self.scratchpad_noise if scratchpad else self.answer_noise):
            answer = arith.plausible_wrong(answer, self.rng)
        return arith.reference_completion(answer, formatted, fam.scratchpad(a, b) if scratchpad else "")

    def draw(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


def operand_pairs(problems: pl.DataFrame) -> set[tuple[int, int]]:
    """The operand pairs of arithmetic prompts such as ``123+456=``."""
    return {tuple(int(x) for x in arith.INTEGER_RE.findall(p)[:2]) for p in problems["prompt"].to_list()}


def build_corpus(settings: dict, problems: pl.DataFrame, seed: int) -> Corpus:
    mixture = settings["mixture"]
    families, excluded = [], []
    for task in mixture:
        rows = problems.filter(pl.col("task") == task)
        if rows.is_empty():
            raise ValueError(f"pretrain mixture names task {task!r}, but no problems of it were given")
        families.append(arith.FAMILIES[rows["family"][0]])
        excluded.append(operand_pairs(rows.filter(pl.col("split") == "eval")))
    weights = np.array([mixture[t] for t in mixture], dtype=float)
    behaviours = {key: settings.get(key, 0.0) for key in ("scratchpad_rate", "answer_noise", "scratchpad_noise")}
    return Corpus(families, weights / weights.sum(), excluded, settings["format_rate"], np.random.default_rng(seed),
                  **behaviours)


def encode_batch(tokenizer, prompts: list[str], completions: list[str]) -> dict[str, torch.Tensor]:
    """Right-padded input ids with labels on completion + EOS only."""
    p_ids = tokenizer(prompts)["input_ids"]
    c_ids = tokenizer(completions)["input_ids"]
    seqs = [p + c + [tokenizer.eos_token_id] for p, c in zip(p_ids, c_ids)]
    width = max(map(len, seqs))
    input_ids = torch.full((len(seqs), width), tokenizer.pad_token_id)
    labels = torch.full((len(seqs), width), -100)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, (p, seq) in enumerate(zip(p_ids, seqs)):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, len(p) : len(seq)] = torch.tensor(seq[len(p) :])
        mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def optimizer_step(model, optimizer, schedule, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One pretraining update on ``batch`` (on the model's device); returns the loss."""
    device = next(model.parameters()).device
    loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def lr_lambda(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def measure(model, tokenizer, selection: pl.DataFrame, select: dict, sampling: dict, seed: int) -> dict:
    """pass@1 and pass@k of the current model on the selection set."""
    model.eval()
    params = SamplingParams(
        n=select["n"], max_new_tokens=sampling["max_new_tokens"], temperature=sampling["temperature"],
        top_p=sampling["top_p"], top_k=sampling["top_k"], seed=seed,
    )
    samples = scoring.sample_and_score(HFSampler(model, tokenizer), selection, params)
    model.train()
    table = metrics.pass_at_k_table(samples, ks=sorted({1, select["k"]}))
    values = dict(zip(table["k"].to_list(), table["pass_at_k"].to_list()))
    return {"pass_at_1": values[1], "pass_at_k": values[select["k"]]}


def distance_to_range(value: float, low: float, high: float) -> float:
    return max(low - value, 0.0, value - high)


def run(settings: dict, sampling: dict, problems: pl.DataFrame, out_dir: str, curve_path: str) -> dict:
    seed = settings["seed"]
    select = settings["select"]
    torch.manual_seed(seed)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, seed, **settings.get("architecture", {}))
    model.train()
    corpus = build_corpus(settings, problems, seed)
    selection = problems.filter((pl.col("task") == select["task"]) & (pl.col("split") == "train")).head(
        select["n_prompts"]
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"], weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(settings["warmup_steps"], settings["max_steps"])
    )
    print(f"pretrain: {n_parameters(model)} parameters, mixture {settings['mixture']}, target "
          f"pass@{select['k']} in [{select['min']}, {select['max']}] on {select['task']}")
    curve, best, started = [], None, time.time()
    for step in range(1, settings["max_steps"] + 1):
        batch = encode_batch(tokenizer, *corpus.batch(settings["batch_size"]))
        loss = optimizer_step(model, optimizer, schedule, batch)
        if step % settings["eval_every"] and step != settings["max_steps"]:
            continue
        point = {"step": step, "loss": loss.item(), **measure(model, tokenizer, selection, select, sampling, seed)}
        point["distance"] = distance_to_range(point["pass_at_k"], select["min"], select["max"])
        curve.append(point)
        print(f"pretrain: step {step} loss {point['loss']:.3f} pass@1 {point['pass_at_1']:.3f} "
              f"pass@{select['k']} {point['pass_at_k']:.3f} ({time.time() - started:.0f}s)", flush=True)
        if best is None or point["distance"] < best[0]["distance"]:
            best = (point, copy.deepcopy(model.state_dict()))
        if point["distance"] == 0:
            break
    chosen, state = best
    if chosen["distance"] > 0 and select["on_miss"] == "error":
        raise RuntimeError(
            f"no checkpoint reached pass@{select['k']} in [{select['min']}, {select['max']}] within "
            f"{settings['max_steps']} steps (closest: {chosen['pass_at_k']:.3f} at step {chosen['step']}); "
            "raise pretrain.max_steps, change the mixture, or set select.on_miss: closest"
        )
    model.load_state_dict(state)
    selected = {"selected_step": chosen["step"], "target_met": chosen["distance"] == 0, **chosen}
    record = io.manifest("pretrain", seed, settings, selection=selected, sampling=sampling,
                         parameters=n_parameters(model), wall_seconds=round(time.time() - started, 1))
    with io.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        io.write_json(record, tmp / "mtarl_manifest.json")
    curve_df = pl.DataFrame(curve).with_columns(selected=pl.col("step") == chosen["step"])
    io.write_parquet(curve_df, curve_path, record)
    verdict = "met" if selected["target_met"] else "MISSED (closest kept)"
    print(f"pretrain: selected step {chosen['step']} (pass@{select['k']} {chosen['pass_at_k']:.3f}, target {verdict})")
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problems", nargs="+", required=True, help="problem parquet files of the mixture's tasks")
    parser.add_argument("--out", required=True, help="output model directory (save_pretrained layout)")
    parser.add_argument("--curve", required=True, help="output parquet of the selection curve")


def main(args: argparse.Namespace) -> None:
    problems = pl.concat([pl.read_parquet(p) for p in args.problems])
    run(args.settings["pretrain"], args.settings["sampling"], problems, args.out, args.curve)
