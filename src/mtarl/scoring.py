"""Sample completions for a problem table and verify them: the per-sample table shared by probe and evaluate.

Per-sample schema (one row per problem x sample):
``problem_id`` str, ``sample`` int, ``completion`` str, ``extracted`` str|null, ``format_ok`` bool,
``correct`` bool (gated: format and answer), ``n_tokens`` int, ``finish_reason`` str.
"""

from __future__ import annotations

import polars as pl

from mtarl import tasks
from mtarl.sampling import Sampler, SamplingParams, render_prompt
from mtarl.sampling import make_sampler  # noqa: F401  (the stages reach it here)

SAMPLE_SCHEMA = {
    "problem_id": pl.String,
    "sample": pl.Int64,
    "completion": pl.String,
    "extracted": pl.String,
    "format_ok": pl.Boolean,
    "correct": pl.Boolean,
    "n_tokens": pl.Int64,
    "finish_reason": pl.String,
}


def sample_and_score(sampler: Sampler, problems: pl.DataFrame, params: SamplingParams,
                     first_index: int = 0) -> pl.DataFrame:
    """``params.n`` scored samples for every row of ``problems`` (columns ``id``, ``prompt``, ``answer``, ``family``);
    ``first_index``: the position of the first row in its whole table (a shard's offset; seeds follow it)."""
    outputs = sampler.generate(problems["prompt"].to_list(), params, first_index)
    flat = [(problem, index, completion) for problem, completions in zip(problems.iter_rows(named=True), outputs,
                                                                         strict=True)
            for index, completion in enumerate(completions)]
    verdicts = tasks.verify_batch([p["family"] for p, _, _ in flat], [c.text for _, _, c in flat],
                                  [p["answer"] for p, _, _ in flat])
    rows = []
    for (problem, index, completion), verdict in zip(flat, verdicts):
        rows.append(
            {
                "problem_id": problem["id"],
                "sample": index,
                "completion": completion.text,
                "extracted": verdict.extracted,
                "format_ok": verdict.format_ok,
                "correct": verdict.correct,
                "n_tokens": completion.n_tokens,
                "finish_reason": completion.finish_reason,
            }
        )
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA)


def drop_overlong(problems: pl.DataFrame, tokenizer, chat: dict | None,
                  max_tokens: int | None) -> tuple[pl.DataFrame, int]:
    """The problems whose prompt, as the model sees it (chat template included, tokenized as the samplers do), has at
    most ``max_tokens`` tokens, and how many were dropped (study.md 5.4: prompts are capped at 2048 tokens, and
    TRL 1.16 has no max_prompt_length). None keeps every problem."""
    if max_tokens is None or problems.is_empty():
        return problems, 0
    texts = [render_prompt(tokenizer, prompt, chat) for prompt in problems["prompt"]]
    keep = [len(ids) <= max_tokens for ids in tokenizer(texts, add_special_tokens=chat is None)["input_ids"]]
    return problems.filter(pl.Series(keep, dtype=pl.Boolean)), keep.count(False)


def sampling_params(sampling: dict, n: int, seed: int, **overrides) -> SamplingParams:
    """SamplingParams from the config's ``sampling`` section, ``n`` and ``seed`` (plus per-stage overrides)."""
    values = {k: sampling[k] for k in ("max_new_tokens", "temperature", "top_p", "top_k")}
    return SamplingParams(n=n, seed=seed, **{**values, **overrides})


def chat_for(sampling: dict, chat_name: str | None) -> dict | None:
    """The pinned chat settings the sampler applies: none unless ``sampling.chat_template`` is on."""
    if not sampling["chat_template"]:
        return None
    from mtarl.prompts import chat_settings

    if chat_name is None:
        raise ValueError("sampling.chat_template is on but the model has no 'chat' key naming its pinned settings")
    return chat_settings(chat_name)
