"""The vLLM sampling backend (GPU): ``VLLMSampler``, the same interface as ``mtarl.sampling.HFSampler``.

Chosen with ``sampling.backend: vllm`` (``mtarl.sampling.make_sampler`` imports this module only then). This module
imports without vLLM installed; the constructor imports it and, if it is missing, says how to install it
(``pip install 'mtarl[gpu]'`` or ``pip install -r envs/gpu.txt``).

What it does, and why (pitfalls of libraries.md section 2):
- prompts are rendered and tokenized here, exactly as the HF backend does (``sampling.render_prompt``: the chat
  template with the pinned system-turn policy, or the prompt as it is), and handed to vLLM as token ids, so both
  backends feed the model the same tokens (vLLM tokenizing text itself would add a BOS token on top of a chat template
  that already has one). vLLM's own tokenizer is not loaded (``skip_tokenizer_init``): completions are decoded here
  with ``skip_special_tokens=True``, as in the HF backend;
- every sampling setting is explicit: ``max_tokens`` (vLLM's default is 16), ``n``, temperature, top_p, top_k
  (0 -> -1, off), the pinned stop tokens as ``stop_token_ids``;
- every prompt is its own request with its own seed, a function of (params.seed, prompt index) only, so results do not
  depend on how vLLM batches or shards the requests (vLLM seeds sample j of a request with seed + j);
- greedy (temperature 0): vLLM refuses n > 1, so one completion is decoded and repeated n times, as in the HF backend;
- ``describe()`` returns what a run manifest records: vLLM version, GPU, tensor parallel size, seeds, stop tokens.

Used by: ``mtarl probe`` / ``mtarl evaluate`` through ``make_sampler``; checked on a GPU by ``bench/gpu_check.py``.
Tests (no vLLM needed): ``.venv/bin/pytest -q tests/test_sampling_vllm.py``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

from mtarl.sampling import Completion, SamplingParams, chunk_seed, render_prompt, stop_token_ids, until_eos

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the vLLM sampling backend needs vllm, which is not installed here: install the GPU environment with "
    "`pip install 'mtarl[gpu]'` or `pip install -r envs/gpu.txt` (vllm==0.31.0, the newest TRL 1.16 supports), "
    "or set sampling.backend: hf"
)
# vLLM gives sample j of a seeded request the seed ``seed + j`` and keeps seeds in int64; 62 bits leave room for any n.
REQUEST_SEED_BITS = 62
FINISH_REASONS = {"stop": "stop", "length": "length"}


def import_vllm():
    """The vllm module, or an ImportError that says how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return vllm


def request_seed(seed: int, prompt_index: int) -> int:
    """The vLLM seed of the request of prompt ``prompt_index``: depends on nothing else (not on batching)."""
    return chunk_seed(seed, prompt_index) & ((1 << REQUEST_SEED_BITS) - 1)


def request_seeds(seed: int, n_prompts: int, first_index: int = 0) -> list[int]:
    """Seeds of the prompts at positions ``first_index, first_index + 1, ...`` of the problem table."""
    return [request_seed(seed, first_index + i) for i in range(n_prompts)]


def is_greedy(params: SamplingParams) -> bool:
    return params.temperature == 0


def vllm_sampling_kwargs(params: SamplingParams, stop_ids: Sequence[int], seed: int) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one prompt's request; nothing is left to vLLM's defaults."""
    greedy = is_greedy(params)
    return {
        "n": 1 if greedy else params.n,  # vLLM rejects n > 1 when greedy; generate() repeats the one decode
        "max_tokens": params.max_new_tokens,
        "temperature": 0.0 if greedy else float(params.temperature),
        "top_p": 1.0 if greedy else float(params.top_p),
        "top_k": -1 if greedy or params.top_k == 0 else int(params.top_k),  # -1 = off in every vLLM version
        "seed": seed,
        "stop_token_ids": list(stop_ids),
        "skip_special_tokens": True,
        # Text is decoded here with the same tokenizer as the HF backend, so vLLM does not detokenize (it has no
        # tokenizer loaded at all: skip_tokenizer_init).
        "detokenize": False,
    }


def completion_from_output(output: Any, decode: Callable[[list[int]], str]) -> Completion:
    """A Completion from one vLLM ``CompletionOutput`` (``token_ids``, ``finish_reason``).

    ``token_ids`` ends with the stop token when one stopped the sample, and counts it, as the HF backend does.
    """
    reason = FINISH_REASONS.get(output.finish_reason)
    if reason is None:  # "abort" (or a new reason): never score a sample that did not finish normally
        raise RuntimeError(f"vLLM finished a sample with reason {output.finish_reason!r}; expected 'stop' or 'length'")
    ids = list(output.token_ids)
    return Completion(text=decode(ids), n_tokens=len(ids), finish_reason=reason)


def completions_of_request(request_output: Any, params: SamplingParams,
                           decode: Callable[[list[int]], str]) -> list[Completion]:
    """The ``params.n`` Completions of one prompt from its vLLM ``RequestOutput`` (``outputs``, in sample order)."""
    outputs = sorted(request_output.outputs, key=lambda o: getattr(o, "index", 0))
    expected = 1 if is_greedy(params) else params.n
    if len(outputs) != expected:
        raise RuntimeError(f"vLLM returned {len(outputs)} samples for a prompt, expected {expected}")
    completions = [completion_from_output(o, decode) for o in outputs]
    if is_greedy(params):  # one decode per prompt; its n copies are identical by definition
        completions = completions * params.n
    return completions


def greedy_kwargs(max_new_tokens: int, eos: int | None) -> dict[str, Any]:
    """vLLM SamplingParams of one greedy continuation (contamination check): every setting explicit."""
    return {"n": 1, "max_tokens": max_new_tokens, "temperature": 0.0, "top_p": 1.0, "top_k": -1,
            "stop_token_ids": [] if eos is None else [eos], "skip_special_tokens": True, "detokenize": False}


def check_request_order(request_outputs: Sequence[Any], prompt_ids: Sequence[list[int]]) -> None:
    """Fail unless output i belongs to prompt i (vLLM returns them in request order; this checks, cheaply)."""
    if len(request_outputs) != len(prompt_ids):
        raise RuntimeError(f"vLLM returned {len(request_outputs)} outputs for {len(prompt_ids)} prompts")
    for i, (out, ids) in enumerate(zip(request_outputs, prompt_ids)):
        got = getattr(out, "prompt_token_ids", None)
        if got is not None and list(got) != list(ids):
            raise RuntimeError(f"vLLM output {i} is not the output of prompt {i}: prompt tokens differ")


def encode_prompts(tokenizer, prompts: Sequence[str], chat: dict | None) -> list[list[int]]:
    """Token ids of the rendered prompts, exactly as the HF backend tokenizes them (no BOS on a chat template)."""
    texts = [render_prompt(tokenizer, p, chat) for p in prompts]
    return tokenizer(texts, add_special_tokens=chat is None)["input_ids"]


def generation_config_eos(model_path: str) -> list[int]:
    """EOS ids of the model's generation_config.json (vLLM stops on these too, besides our stop_token_ids)."""
    try:
        from transformers import GenerationConfig

        eos = GenerationConfig.from_pretrained(model_path).eos_token_id
    except (OSError, ValueError):
        return []
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)


def extra_stop_ids(generation_eos: Sequence[int], stop_ids: Sequence[int]) -> list[int]:
    """Ids that vLLM stops on although they are not among the pinned stop tokens."""
    return sorted(set(generation_eos) - set(stop_ids))


class VLLMSampler:
    """Sampling with vLLM's offline ``LLM``: one request per prompt (n samples, its own seed), all in one call.

    ``chat``: the model's pinned chat settings (``mtarl.prompts.CHAT_SETTINGS``), or None to feed prompts as they are.
    ``seed``: vLLM's engine seed (samples are seeded per request; this only matters for unseeded randomness).
    ``engine_kwargs``: further ``vllm.LLM`` arguments, e.g. ``max_model_len`` or ``enforce_eager``.
    """

    name = "vllm"

    def __init__(self, model_path: str, dtype: str = "bfloat16", chat: dict | None = None, seed: int = 0,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9, **engine_kwargs):
        # Scheduling is deterministic only with the engine in this process (vLLM PR #18741); set before vLLM is
        # imported or started, and only if the caller has not chosen otherwise.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self._vllm = import_vllm()
        from mtarl.modeling import load_tokenizer

        self.model_path = model_path
        self.dtype = dtype
        self.chat = chat
        self.seed = seed
        self.tensor_parallel_size = tensor_parallel_size
        self.gpu_memory_utilization = gpu_memory_utilization
        self.engine_kwargs = engine_kwargs
        self.tokenizer = load_tokenizer(model_path)
        self.stop_ids = stop_token_ids(self.tokenizer, chat)
        self.extra_stop_ids = extra_stop_ids(generation_config_eos(model_path), self.stop_ids)
        if self.extra_stop_ids:
            log.warning("vLLM will also stop on the EOS ids %s of %s/generation_config.json, which are not among the "
                        "pinned stop tokens %s (the HF backend does not)", self.extra_stop_ids, model_path,
                        self.stop_ids)
        self.llm = self._vllm.LLM(
            model=model_path,
            dtype=dtype,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            skip_tokenizer_init=True,  # prompts arrive as token ids; completions are decoded here
            **engine_kwargs,
        )

    def generate(self, prompts: list[str], params: SamplingParams, first_index: int = 0) -> list[list[Completion]]:
        prompt_ids = encode_prompts(self.tokenizer, prompts, self.chat)
        requests = [{"prompt_token_ids": ids} for ids in prompt_ids]
        per_request = [self._vllm.SamplingParams(**vllm_sampling_kwargs(params, self.stop_ids, seed))
                       for seed in request_seeds(params.seed, len(prompts), first_index)]
        outputs = self.llm.generate(requests, per_request, use_tqdm=True)
        check_request_order(outputs, prompt_ids)
        return [completions_of_request(out, params, self._decode) for out in outputs]

    def greedy_completer(self) -> Callable[[list[str], list[int]], list[str]]:
        """``complete(prefixes, max_new_tokens) -> texts`` for the contamination check: greedy continuations of raw
        text, each with its own budget, cut at the first EOS; the prefix is encoded as the HF completer does it."""
        eos = self.tokenizer.eos_token_id

        def complete(prefixes: list[str], max_new_tokens: list[int]) -> list[str]:
            prompt_ids = self.tokenizer(list(prefixes))["input_ids"]
            requests = [{"prompt_token_ids": ids} for ids in prompt_ids]
            per_request = [self._vllm.SamplingParams(**greedy_kwargs(budget, eos)) for budget in max_new_tokens]
            outputs = self.llm.generate(requests, per_request, use_tqdm=True)
            check_request_order(outputs, prompt_ids)
            return [self._decode(until_eos(list(out.outputs[0].token_ids), eos)) for out in outputs]

        return complete

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def describe(self) -> dict[str, Any]:
        """What a run manifest records about this backend (outputs depend on vLLM version, GPU and shard layout)."""
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() \
            else []
        return {
            "backend": self.name,
            "vllm_version": getattr(self._vllm, "__version__", "unknown"),
            "gpu_name": gpus[0] if gpus else None,
            "gpus_visible": gpus,
            "tensor_parallel_size": self.tensor_parallel_size,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "dtype": self.dtype,
            "engine_seed": self.seed,
            "request_seeds": "sha256(f'{seed}:{prompt_index}') -> 62 bits; sample j of a request: seed + j (vLLM)",
            "stop_token_ids": list(self.stop_ids),
            "extra_stop_ids_from_generation_config": self.extra_stop_ids,
            "engine_kwargs": {k: repr(v) for k, v in self.engine_kwargs.items()},
            "VLLM_ENABLE_V1_MULTIPROCESSING": os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING"),
        }
