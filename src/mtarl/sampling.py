"""Sampling backends behind one small interface.

A backend turns prompts into ``n`` completions each:
``Sampler.generate(prompts, params, first_index=0) -> list[list[Completion]]``, where ``first_index`` is the position of
``prompts[0]`` in the whole problem table: seeds follow that position, so a shard of a table samples exactly what the
same rows sample in one call (``seed_block`` says where shard boundaries may fall).
- ``hf``: batched ``model.generate`` with a KV cache (CPU or GPU), many prompts x ``n`` sequences per call;
- ``vllm``: the GPU backend for the paper configuration (issue: alignment probe); imported only when chosen, so CPU
  runs never need vLLM installed.

Sampling settings are always explicit (temperature, top_p, top_k off, max_new_tokens): no library default decides
a result (vLLM's default max_tokens is 16, HF's default top_k is 50).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from tqdm.auto import tqdm

from mtarl.shards import seed_block


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

    def generate(self, prompts: list[str], params: SamplingParams, first_index: int = 0) -> list[list[Completion]]: ...

    def greedy_completer(self): ...

    def describe(self) -> dict: ...


def chunk_seed(seed: int, first_prompt_index: int) -> int:
    """The torch seed of the chunk that starts at ``first_prompt_index``: results do not depend on earlier chunks."""
    digest = hashlib.sha256(f"{seed}:{first_prompt_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def until_eos(ids: list[int], eos: int | None) -> list[int]:
    """The token ids before the first ``eos`` (all of them if it never came)."""
    return ids[: ids.index(eos)] if eos is not None and eos in ids else ids


def progress_bar(total: int, description: str):
    """A progress bar on stderr (the job's log): updates at most every 10 s, so logs stay readable."""
    return tqdm(total=total, desc=description, unit="prompt", file=sys.stderr, mininterval=10, disable=total == 0)


def stop_token_ids(tokenizer, chat: dict | None) -> list[int]:
    """EOS plus the pinned stop tokens of the model's chat settings (mtarl.prompts.CHAT_SETTINGS)."""
    ids = [tokenizer.eos_token_id]
    for token in (chat or {}).get("stop_tokens", []):
        token_id = tokenizer.convert_tokens_to_ids(token)
        # An unknown token maps to the unk id; the unk token itself is known (SmolLM2's unk is <|endoftext|>).
        if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
            raise ValueError(f"stop token {token!r} of the chat settings is not in the tokenizer's vocabulary")
        if token_id not in ids:
            ids.append(token_id)
    return ids


def render_prompt(tokenizer, prompt: str, chat: dict | None) -> str:
    """The text the model sees: the prompt itself, or the chat template around it with the pinned system turn."""
    if chat is None:
        return prompt
    from mtarl.prompts import chat_messages

    messages = chat_messages(prompt, chat["system_prompt"])
    return tokenizer.apply_chat_template(messages, add_generation_prompt=chat["add_generation_prompt"], tokenize=False)


class HFSampler:
    """Batched sampling with ``transformers`` ``generate``: ``max_batch_sequences`` sequences per call.

    ``chat``: the model's pinned chat settings (``mtarl.prompts.CHAT_SETTINGS``), or None to feed prompts as they are.
    """

    name = "hf"

    def __init__(self, model, tokenizer, max_batch_sequences: int = 4096, chat: dict | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_sequences = max_batch_sequences
        self.chat = chat
        self.stop_ids = stop_token_ids(tokenizer, chat)

    @property
    def chat_template(self) -> bool:
        return self.chat is not None

    def render(self, prompt: str) -> str:
        return render_prompt(self.tokenizer, prompt, self.chat)

    @torch.no_grad()
    def generate(self, prompts: list[str], params: SamplingParams, first_index: int = 0) -> list[list[Completion]]:
        per_chunk = seed_block(self.name, self.max_batch_sequences, params.n)
        if first_index % per_chunk:
            raise ValueError(f"first_index {first_index} is not a multiple of the seed block {per_chunk}: the samples "
                             "would differ from an unsharded run (see mtarl.shards.seed_block)")
        results: list[list[Completion]] = []
        with progress_bar(len(prompts), f"sampling n={params.n}") as bar:
            for start in range(0, len(prompts), per_chunk):
                torch.manual_seed(chunk_seed(params.seed, first_index + start))
                results.extend(self._generate_chunk(prompts[start : start + per_chunk], params))
                bar.update(min(per_chunk, len(prompts) - start))
        return results

    def describe(self) -> dict:
        """What a run manifest records about this backend: transformers version, device, dtype, batching."""
        import transformers

        device = self.model.device
        return {
            "backend": self.name,
            "transformers_version": transformers.__version__,
            "device": str(device),
            "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "max_batch_sequences": self.max_batch_sequences,
            "stop_token_ids": list(self.stop_ids),
            "seeds": "torch.manual_seed(sha256(f'{seed}:{first prompt index of each generate call}'))",
        }

    def greedy_completer(self):
        """``complete(prefixes, max_new_tokens) -> texts``: greedy continuations of raw text (contamination check)."""
        from mtarl.contamination import hf_greedy_completer

        return hf_greedy_completer(self.model, self.tokenizer)

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
            eos_token_id=self.stop_ids,
        )
        generated = output[:, batch["input_ids"].shape[1] :]
        completions = [self._completion(row) for row in generated]
        if greedy:  # one decode per prompt; its n copies are identical by definition
            completions = [c for c in completions for _ in range(params.n)]
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def _completion(self, token_ids: torch.Tensor) -> Completion:
        ids = token_ids.tolist()
        stop = next((i for i, t in enumerate(ids) if t in self.stop_ids), None)
        if stop is not None:
            ids = ids[: stop + 1]
            reason = "stop"
        else:
            reason = "length"
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(text=text, n_tokens=len(ids), finish_reason=reason)


def make_sampler(backend: str, model_path: str, *, max_batch_sequences: int = 4096, chat: dict | None = None,
                 dtype: str = "float32") -> Sampler:
    """The configured backend for the model at ``model_path`` (``chat``: its pinned chat settings, or None)."""
    if backend == "hf":
        from mtarl.modeling import load

        model, tokenizer = load(model_path, dtype=dtype)
        return HFSampler(model, tokenizer, max_batch_sequences=max_batch_sequences, chat=chat)
    if backend == "vllm":
        from mtarl.sampling_vllm import VLLMSampler  # imported only when chosen: CPU runs never need vLLM

        return VLLMSampler(model_path, dtype=dtype, chat=chat)
    raise ValueError(f"unknown sampling backend {backend!r}: choose 'hf' or 'vllm'")
