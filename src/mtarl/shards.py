"""How a probe's problems split into shard jobs: table logic only, shared by ``mtarl probe_shard`` (which samples one
shard) and ``mtarl probe`` (which gathers them), so that gathering imports no torch.

A probe of one model x benchmark covers the first ``probe.n_problems`` rows of the benchmark's table (all if null),
split into ``shards`` runs of whole seed blocks: the sampler seeds each block of consecutive prompts on its own, so a
sharded probe samples exactly what an unsharded one does.
"""

from __future__ import annotations

import polars as pl


def seed_block(backend: str, max_batch_sequences: int, n: int) -> int:
    """How many consecutive prompts share one random stream: a shard of a problem table samples exactly what the same
    rows sample in an unsharded run when its first row is a multiple of this.

    The hf backend seeds each generate call of ``max_batch_sequences // n`` prompts (one stream per call: per-row
    streams are not possible inside ``model.generate``); vLLM seeds every prompt's request on its own.
    """
    if backend == "vllm":
        return 1
    return max(1, max_batch_sequences // n)


def probe_problems(path: str, probe: dict) -> pl.DataFrame:
    """The probed rows of a benchmark's problem table: its first ``probe['n_problems']`` (all if null)."""
    table = pl.read_parquet(path)
    return table.head(probe["n_problems"]) if probe.get("n_problems") else table


def shard_ranges(n_rows: int, shards: int, block: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of ``shards`` shards of ``n_rows`` rows, each a run of whole ``block``-row
    blocks, as even as blocks allow (trailing shards are empty when there are fewer blocks than shards)."""
    if shards < 1 or block < 1:
        raise ValueError(f"shards ({shards}) and block ({block}) must be positive")
    n_blocks = -(-n_rows // block)
    edges = [min(n_rows, (i * n_blocks // shards) * block) for i in range(shards + 1)]
    return list(zip(edges[:-1], edges[1:]))


def layout(settings: dict, n_rows: int) -> list[tuple[int, int]]:
    """The shard ranges of a probe with these settings over ``n_rows`` problems."""
    sampling = settings["sampling"]
    block = seed_block(sampling["backend"], sampling["max_batch_sequences"], settings["probe"]["n"])
    return shard_ranges(n_rows, settings["shards"], block)
