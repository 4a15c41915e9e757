"""Sampling backends behind one small interface.

A backend turns prompts into ``n`` completions each: ``Sampler.generate(prompts, params) -> list[list[Completion]]``.
- ``hf``: batched ``model.generate`` with a KV cache (CPU or GPU), many prompts x ``n`` sequences per call;
- ``vllm``: the GPU backend for the paper configuration (issue: alignment probe); imported only when chosen, so CPU
  runs never need vLLM installed.

Sampling settings are always explicit (temperature, top_p, top_k off, max_new_tokens): no library default decides
a result (vLLM's default max_tokens is 16, HF's default top_k is 50).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class SamplingParams:
    n: int
    max_new_tokens: int
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int
    finish_reason: str  # "stop" (EOS sampled) or "length" (max_new_tokens reached)


class Sampler(Protocol):
    name: str

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]: ...


def chunk_seed(seed: int, first_prompt_index: int) -> int:
    """The torch seed of the chunk that starts at ``first_prompt_index``: results do not depend on earlier chunks."""
    digest = hashlib.sha256(f"{seed}:{first_prompt_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class HFSampler:
    """Batched sampling with ``transformers`` ``generate``: ``max_batch_sequences`` sequences per call."""

    name = "hf"

    def __init__(self, model, tokenizer, max_batch_sequences: int = 4096, chat_template: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_sequences = max_batch_sequences
        self.chat_template = chat_template

    def render(self, prompt: str) -> str:
        if not self.chat_template:
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    @torch.no_grad()
    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        per_chunk = max(1, self.max_batch_sequences // params.n)
        results: list[list[Completion]] = []
        for start in range(0, len(prompts), per_chunk):
            torch.manual_seed(chunk_seed(params.seed, start))
            results.extend(self._generate_chunk(prompts[start : start + per_chunk], params))
        return results

    def _generate_chunk(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        batch = self.tokenizer(
            [self.render(p) for p in prompts],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not self.chat_template,
        ).to(self.model.device)
        greedy = params.temperature == 0
        output = self.model.generate(
            **batch,
            do_sample=not greedy,
            temperature=None if greedy else params.temperature,
            top_p=None if greedy else params.top_p,
            top_k=None if greedy else params.top_k,
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=1 if greedy else params.n,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        generated = output[:, batch["input_ids"].shape[1] :]
        completions = [self._completion(row) for row in generated]
        if greedy:  # one decode per prompt; its n copies are identical by definition
            completions = [c for c in completions for _ in range(params.n)]
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def _completion(self, token_ids: torch.Tensor) -> Completion:
        ids = token_ids.tolist()
        eos = self.tokenizer.eos_token_id
        if eos in ids:
            ids = ids[: ids.index(eos) + 1]
            reason = "stop"
        else:
            reason = "length"
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(text=text, n_tokens=len(ids), finish_reason=reason)


def make_sampler(backend: str, model_path: str, *, max_batch_sequences: int = 4096, chat_template: bool = False,
                 dtype: str = "float32") -> Sampler:
    """The configured backend for the model at ``model_path``."""
    if backend == "hf":
        from mtarl.modeling import load

        model, tokenizer = load(model_path, dtype=dtype)
        return HFSampler(model, tokenizer, max_batch_sequences=max_batch_sequences, chat_template=chat_template)
    if backend == "vllm":
        raise NotImplementedError(
            "sampling.backend 'vllm' is planned (alignment-probe issue); use backend 'hf' for now"
        )
    raise ValueError(f"unknown sampling backend {backend!r}: choose 'hf' or 'vllm'")
