"""The vLLM sampling backend's pure parts, testable without vLLM or a GPU.

vLLM's output objects are replaced by plain stand-ins with the attributes mtarl reads from vLLM's
``RequestOutput`` (``outputs``, ``prompt_token_ids``) and ``CompletionOutput`` (``index``, ``text``, ``token_ids``,
``finish_reason``): a fake of vLLM's output type, not of the code under test. Decoding uses the real tiny tokenizer.
The end-to-end check on a GPU is ``bench/gpu_check.py``.

Run: ``.venv/bin/pytest -q tests/test_sampling_vllm.py``
"""

import importlib.util
import sys
from types import SimpleNamespace

import pytest

from mtarl.modeling import load_tokenizer
from mtarl.sampling import Completion, SamplingParams, make_sampler, stop_token_ids
from mtarl.sampling_vllm import (REQUEST_SEED_BITS, VLLMSampler, check_request_order, completions_of_request,
                                 encode_prompts, extra_stop_ids, generation_config_eos, greedy_kwargs, request_seed,
                                 request_seeds, vllm_sampling_kwargs)


@pytest.fixture(scope="module")
def tokenizer(random_model_dir):
    return load_tokenizer(str(random_model_dir))


def sample(tokenizer, text, finish_reason, index=0, stop=True):
    """A stand-in for vLLM's CompletionOutput: the token ids of ``text`` (plus EOS when it stopped)."""
    ids = tokenizer(text)["input_ids"] + ([tokenizer.eos_token_id] if stop else [])
    return SimpleNamespace(index=index, text="", token_ids=tuple(ids), finish_reason=finish_reason)


def test_every_sampling_setting_is_explicit():
    params = SamplingParams(n=8, max_new_tokens=300, temperature=0.7, top_p=0.9, top_k=0, seed=5)
    kwargs = vllm_sampling_kwargs(params, [1, 7], seed=123)
    assert kwargs == {"n": 8, "max_tokens": 300, "temperature": 0.7, "top_p": 0.9, "top_k": -1, "seed": 123,
                      "stop_token_ids": [1, 7], "skip_special_tokens": True, "detokenize": False}
    assert vllm_sampling_kwargs(SamplingParams(n=2, max_new_tokens=4, top_k=20), [1], 0)["top_k"] == 20


def test_greedy_asks_vllm_for_one_sample():
    kwargs = vllm_sampling_kwargs(SamplingParams(n=16, max_new_tokens=8, temperature=0, top_p=0.5, top_k=3), [1], 0)
    assert (kwargs["n"], kwargs["temperature"], kwargs["top_p"], kwargs["top_k"]) == (1, 0.0, 1.0, -1)


def test_request_seeds_depend_only_on_seed_and_prompt_index():
    seeds = request_seeds(0, 50)
    assert request_seeds(0, 10) == seeds[:10]  # no dependence on how many prompts share the call
    assert request_seed(0, 37) == seeds[37]
    assert len(set(seeds)) == 50
    assert request_seeds(1, 50) != seeds
    assert request_seeds(0, 20, first_index=30) == seeds[30:]  # a shard of the table gets the same seeds
    # vLLM seeds sample j with seed + j in an int64: every seed leaves room for that
    assert all(0 <= s < 2**REQUEST_SEED_BITS for s in seeds + request_seeds(12345, 500))


def test_greedy_continuations_set_every_setting():
    assert greedy_kwargs(7, 2) == {"n": 1, "max_tokens": 7, "temperature": 0.0, "top_p": 1.0, "top_k": -1,
                                   "stop_token_ids": [2], "skip_special_tokens": True, "detokenize": False}


class FakeEngine:
    """A stand-in for ``vllm.LLM`` that answers each request with fixed token ids and records what it was asked."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def generate(self, requests, params, use_tqdm):
        self.calls.append((requests, params))
        return [SimpleNamespace(prompt_token_ids=r["prompt_token_ids"], outputs=[SimpleNamespace(token_ids=ids)])
                for r, ids in zip(requests, self.answers)]


def test_contamination_completer_encodes_budgets_and_cuts_at_eos(tokenizer):
    eos = tokenizer.eos_token_id
    sampler = object.__new__(VLLMSampler)  # no engine start: the engine and vllm.SamplingParams are stand-ins
    sampler.tokenizer, sampler._vllm = tokenizer, SimpleNamespace(SamplingParams=dict)
    sampler.llm = FakeEngine([tokenizer("34")["input_ids"] + [eos] + tokenizer("9")["input_ids"],
                              tokenizer("5 6")["input_ids"]])
    assert sampler.greedy_completer()(["12+", "x="], [3, 2]) == ["34", "5 6"]
    requests, params = sampler.llm.calls[0]
    # the prefix is encoded as the HF completer encodes raw text, with its own token budget
    assert [r["prompt_token_ids"] for r in requests] == tokenizer(["12+", "x="])["input_ids"]
    assert [p["max_tokens"] for p in params] == [3, 2] and all(p["temperature"] == 0.0 for p in params)


def test_completions_are_decoded_counted_and_ordered(tokenizer):
    request = SimpleNamespace(prompt_token_ids=[7, 8], outputs=[
        sample(tokenizer, "<think></think><answer>579</answer>", "stop", index=1),
        sample(tokenizer, "<answer>12", "length", index=0, stop=False),
    ])
    params = SamplingParams(n=2, max_new_tokens=4)
    out = completions_of_request(request, params, lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    assert out == [
        Completion(text="<answer>12", n_tokens=3, finish_reason="length"),
        # the EOS that stopped the sample is counted (as in the HF backend) and not decoded (special token)
        Completion(text="<think></think><answer>579</answer>", n_tokens=8, finish_reason="stop"),
    ]


def test_greedy_completion_is_repeated_n_times(tokenizer):
    request = SimpleNamespace(outputs=[sample(tokenizer, "42", "stop")])
    out = completions_of_request(request, SamplingParams(n=3, max_new_tokens=5, temperature=0),
                                 lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    assert out == [Completion("42", 3, "stop")] * 3


def test_unfinished_or_missing_samples_are_errors(tokenizer):
    decode = tokenizer.decode
    aborted = SimpleNamespace(outputs=[sample(tokenizer, "4", "abort")])
    with pytest.raises(RuntimeError, match="reason 'abort'"):
        completions_of_request(aborted, SamplingParams(n=1, max_new_tokens=4), decode)
    short = SimpleNamespace(outputs=[sample(tokenizer, "4", "stop")])
    with pytest.raises(RuntimeError, match="1 samples for a prompt, expected 4"):
        completions_of_request(short, SamplingParams(n=4, max_new_tokens=4), decode)


def test_outputs_must_follow_prompt_order():
    outputs = [SimpleNamespace(prompt_token_ids=[1, 2]), SimpleNamespace(prompt_token_ids=[3])]
    check_request_order(outputs, [[1, 2], [3]])
    with pytest.raises(RuntimeError, match="output 0 is not the output of prompt 0"):
        check_request_order(outputs[::-1], [[1, 2], [3]])
    with pytest.raises(RuntimeError, match="1 outputs for 2 prompts"):
        check_request_order(outputs[:1], [[1, 2], [3]])


def test_prompts_are_tokenized_like_the_hf_backend(tokenizer):
    assert encode_prompts(tokenizer, ["12+34="], None) == [tokenizer("12+34=")["input_ids"]]
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }};{% endfor %}a:"
    try:
        chat = {"system_prompt": "be", "add_generation_prompt": True, "stop_tokens": []}
        assert encode_prompts(tokenizer, ["1+1="], chat) == [tokenizer("s:be;u:1+1=;a:")["input_ids"]]
    finally:
        tokenizer.chat_template = None


def test_stops_beyond_the_pinned_ones_are_reported(random_model_dir, tokenizer):
    # the tiny model's generation config has the tokenizer's EOS: nothing beyond the pinned stop tokens
    assert generation_config_eos(str(random_model_dir)) == [tokenizer.eos_token_id]
    assert extra_stop_ids([tokenizer.eos_token_id], stop_token_ids(tokenizer, None)) == []
    # Llama 3.1 Instruct: generation_config eos [128001, 128008, 128009], pinned stops <|eot_id|> <|end_of_text|>
    assert extra_stop_ids([128001, 128008, 128009], [128009, 128001]) == [128008]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_kwargs_are_accepted_by_vllm():
    import vllm

    for params in (SamplingParams(n=4, max_new_tokens=9, top_k=5, seed=3), SamplingParams(n=4, max_new_tokens=9,
                                                                                         temperature=0)):
        made = vllm.SamplingParams(**vllm_sampling_kwargs(params, [1, 2], request_seed(3, 0)))
        assert made.max_tokens == 9 and list(made.stop_token_ids) == [1, 2]
    assert vllm.SamplingParams(**greedy_kwargs(5, 2)).max_tokens == 5


def test_module_imports_without_vllm():
    assert "mtarl.sampling_vllm" in sys.modules
    if importlib.util.find_spec("vllm") is None:
        assert "vllm" not in sys.modules


def test_without_vllm_the_sampler_says_how_to_install_it(monkeypatch, random_model_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` fails, as on a machine without it
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the sampler sets it if unset; keep the env clean
    with pytest.raises(ImportError, match=r"pip install 'mtarl\[gpu\]'.*envs/gpu.txt"):
        VLLMSampler(str(random_model_dir))
    with pytest.raises(ImportError, match=r"pip install 'mtarl\[gpu\]'"):
        make_sampler("vllm", str(random_model_dir), chat=None, dtype="bfloat16")
