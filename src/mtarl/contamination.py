"""Contamination probe (study.md section 2.4, the protocol of Wu et al. 2025, arXiv 2507.10532).

For each raw problem statement (no chat template, no instruction) and each prefix ratio r:
1. tokenize the statement (no special tokens) into T tokens and cut it after P = floor(r * T) tokens, kept within
   [1, T - 1] so that both the prefix and the remainder are non-empty;
2. complete the prefix greedily with max_new_tokens = L = T - P, the remainder's token count;
3. score the completion, cut to its first L tokens, against the true remainder:
   - ``em``: 1 if the cut completion equals the remainder after whitespace normalisation, else 0;
   - ``rouge_l``: ROUGE-L F1 (longest common subsequence) at word level, from the ``rouge-score`` package. Words are
     those of rouge-score's default tokenizer (lower-cased runs of [a-z0-9]; no stemming) or, with
     ``rouge_tokenizer="whitespace"``, whitespace-separated words as written. A remainder with no words (e.g. "=?")
     has no defined ROUGE-L: the value is null and ``summarize_contamination`` leaves it out of the mean.

The model is reached through a completion callable, ``complete(prefixes, max_new_tokens) -> completions``, so any
backend fits; ``hf_greedy_completer`` is the transformers one. Only it needs torch, so it imports torch itself: the
probe's gather (``mtarl probe``) summarises contamination tables without loading torch.
"""

from __future__ import annotations

from typing import Callable, Sequence

import polars as pl
from rouge_score import rouge_scorer, tokenizers

DEFAULT_RATIOS = (0.4, 0.6, 0.8)

Completer = Callable[[list[str], list[int]], list[str]]

CONTAMINATION_SCHEMA = {
    "problem_id": pl.String,
    "ratio": pl.Float64,
    "n_tokens": pl.Int64,
    "prefix_tokens": pl.Int64,
    "remainder_tokens": pl.Int64,
    "prefix": pl.String,
    "remainder": pl.String,
    "completion": pl.String,
    "em": pl.Int64,
    "rouge_l": pl.Float64,
}


def normalize_whitespace(text: str) -> str:
    return " ".join(text.split())


def token_ids(tokenizer, text: str) -> list[int]:
    """The text's own tokens: no BOS or other special tokens, which are not part of the statement."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def decode(tokenizer, ids: Sequence[int]) -> str:
    # No clean-up of tokenization spaces: the prefix and remainder must be the statement's text as written.
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def prefix_length(n_tokens: int, ratio: float) -> int:
    """Tokens kept in the prefix: floor(ratio * n_tokens), within [1, n_tokens - 1]."""
    if not 0 < ratio < 1:
        raise ValueError(f"prefix ratio must be in (0, 1), got {ratio}")
    if n_tokens < 2:
        raise ValueError(f"a statement needs at least 2 tokens to split, got {n_tokens}")
    return min(max(int(ratio * n_tokens), 1), n_tokens - 1)


class _WhitespaceWords(tokenizers.Tokenizer):
    """rouge-score tokenizer: whitespace-separated words, case and punctuation kept."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def rouge_l_scorer(rouge_tokenizer: str = "rouge") -> Callable[[str, str], float | None]:
    """``score(reference, prediction)``: ROUGE-L F1 at word level, or ``None`` when the reference has no words."""
    if rouge_tokenizer == "rouge":
        words = tokenizers.DefaultTokenizer(use_stemmer=False)
    elif rouge_tokenizer == "whitespace":
        words = _WhitespaceWords()
    else:
        raise ValueError(f"rouge_tokenizer must be 'rouge' or 'whitespace', got {rouge_tokenizer!r}")
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=words)

    def score(reference: str, prediction: str) -> float | None:
        # rouge-score returns 0 for an empty reference even against an empty prediction; undefined is more honest.
        if not words.tokenize(reference):
            return None
        return float(scorer.score(reference, prediction)["rougeL"].fmeasure)

    return score


def split_statement(tokenizer, text: str, ratio: float) -> tuple[list[int], list[int]]:
    """The statement's token ids cut at ``ratio``: (prefix ids, remainder ids)."""
    ids = token_ids(tokenizer, text)
    cut = prefix_length(len(ids), ratio)
    return ids[:cut], ids[cut:]


def exact_match(tokenizer, completion: str, remainder: str, n_remainder: int) -> tuple[str, int]:
    """The completion cut to its first ``n_remainder`` tokens, and 1 if it equals the remainder (whitespace
    normalised), else 0. Cutting makes a backend that overruns max_new_tokens score like one that does not."""
    cut = decode(tokenizer, token_ids(tokenizer, completion)[:n_remainder])
    return cut, int(normalize_whitespace(cut) == normalize_whitespace(remainder))


def contamination_table(problems: list[tuple[str, str]], tokenizer, complete: Completer,
                        ratios: Sequence[float] = DEFAULT_RATIOS, rouge_tokenizer: str = "rouge") -> pl.DataFrame:
    """One row per (problem, ratio): the split, the greedy completion and its ``em`` and ``rouge_l``.

    ``problems`` are (id, raw statement) pairs; ``complete(prefixes, max_new_tokens)`` returns one greedy completion
    (the continuation only) per prefix, each within its own token budget. All prefixes go to ``complete`` in one call
    so the backend can batch them. Columns: see ``CONTAMINATION_SCHEMA``.
    """
    splits = []
    for problem_id, text in problems:
        for ratio in ratios:
            prefix_ids, remainder_ids = split_statement(tokenizer, text, ratio)
            splits.append((problem_id, ratio, prefix_ids, remainder_ids))
    prefixes = [decode(tokenizer, s[2]) for s in splits]
    budgets = [len(s[3]) for s in splits]
    completions = complete(prefixes, budgets) if splits else []
    if len(completions) != len(splits):
        raise ValueError(f"the completer returned {len(completions)} completions for {len(splits)} prefixes")
    rouge_l = rouge_l_scorer(rouge_tokenizer)
    rows = []
    for (problem_id, ratio, prefix_ids, remainder_ids), prefix, completion in zip(splits, prefixes, completions):
        remainder = decode(tokenizer, remainder_ids)
        cut, em = exact_match(tokenizer, completion, remainder, len(remainder_ids))
        rows.append({
            "problem_id": problem_id, "ratio": float(ratio), "n_tokens": len(prefix_ids) + len(remainder_ids),
            "prefix_tokens": len(prefix_ids), "remainder_tokens": len(remainder_ids), "prefix": prefix,
            "remainder": remainder, "completion": cut, "em": em, "rouge_l": rouge_l(remainder, cut),
        })
    return pl.DataFrame(rows, schema=CONTAMINATION_SCHEMA)


def summarize_contamination(table: pl.DataFrame) -> pl.DataFrame:
    """Mean EM and mean ROUGE-L per ratio (and per ``model``, ``task``, ``benchmark`` where the table has them).

    Columns: the group keys, ``ratio``, ``mean_em``, ``mean_rouge_l`` (over rows with a defined ROUGE-L),
    ``n_problems`` and ``n_rouge`` (rows that entered ``mean_rouge_l``).
    """
    keys = [c for c in ("model", "task", "benchmark") if c in table.columns] + ["ratio"]
    return (
        table.group_by(keys, maintain_order=True)
        .agg(
            mean_em=pl.col("em").cast(pl.Float64).mean(),
            mean_rouge_l=pl.col("rouge_l").mean(),
            n_problems=pl.len().cast(pl.Int64),
            n_rouge=pl.col("rouge_l").is_not_null().sum().cast(pl.Int64),
        )
        .sort(keys)
    )


def hf_greedy_completer(model, tokenizer, batch_size: int = 32) -> Completer:
    """``complete`` with batched transformers ``generate``: greedy, left padding, each prefix its own budget.

    Prefixes are sorted by budget and batched, so a batch generates up to its largest budget; each row is then cut
    to its own budget and at the first EOS. The prefix is encoded with the tokenizer's special tokens (a BOS where
    the model expects one), as for any raw-text prompt. The model should be in eval mode and the tokenizer needs a
    pad token, as ``mtarl.modeling.load`` returns them.
    """
    import torch

    if tokenizer.pad_token_id is None:  # batching pads; fail here rather than inside the first generate call
        raise ValueError("the tokenizer has no pad token: load it with mtarl.modeling.load, which pads with EOS")

    @torch.no_grad()
    def complete(prefixes: list[str], max_new_tokens: list[int]) -> list[str]:
        order = sorted(range(len(prefixes)), key=lambda i: max_new_tokens[i])
        out: list[str] = [""] * len(prefixes)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            texts = _generate_batch(model, tokenizer, [prefixes[i] for i in chunk], [max_new_tokens[i] for i in chunk])
            for i, text in zip(chunk, texts):
                out[i] = text
        return out

    return complete


def _generate_batch(model, tokenizer, prefixes: list[str], budgets: list[int]) -> list[str]:
    from mtarl.sampling import until_eos  # torch: see the module's docstring

    batch = tokenizer(prefixes, return_tensors="pt", padding=True, padding_side="left").to(model.device)
    output = model.generate(
        **batch,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        max_new_tokens=max(budgets),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    generated = output[:, batch["input_ids"].shape[1] :].tolist()
    eos = tokenizer.eos_token_id
    return [decode(tokenizer, until_eos(ids[:budget], eos)) for ids, budget in zip(generated, budgets, strict=True)]
