"""The alignment verdict per model x task: strong/weak from the pass@k curve, and the paper's colour partition.

The paper assigns strong and weak alignment by inspecting pass@k curves and gives no threshold (study.md 2.1); mtarl
needs an automatic label, so the rule is a project choice with configured values (``AlignmentRule``):

- **alignment**: ``strong`` when the base model's pass@k at ``k`` is >= ``strong_threshold``, else ``weak``
  (the same rule as ``analyze.base_alignment``). ``k`` must be one of the probed k; nothing is interpolated.
- **contaminated** (study.md 2.4): at the prefix ratio ``contamination_ratio``, mean ROUGE-L >=
  ``rouge_l_threshold`` or mean EM >= ``em_threshold``. A threshold left at ``None`` is not used; at least one is
  needed. A mean that is undefined (no remainder had words) does not flag.
- **partition** (study.md 2.5), only with a contamination summary:

  | partition | colour | meaning |
  |---|---|---|
  | ``contaminated_strong`` | red | possibly contaminated, strong alignment |
  | ``clean_strong`` | green | clean, strong alignment: the cells that argue against "it is all contamination" |
  | ``clean_weak`` | gray | clean, weak alignment |
  | ``contaminated_weak`` | orange | flagged as contaminated yet weak: no such cell in the paper; kept visible |

Without a contamination summary the contamination columns, ``partition`` and ``colour`` are null.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

PARTITION_COLOURS = {
    "contaminated_strong": "red",
    "clean_strong": "green",
    "clean_weak": "gray",
    "contaminated_weak": "orange",
}

ALIGNMENT_SCHEMA = {
    "model": pl.String,
    "task": pl.String,
    "alignment_k": pl.Int64,
    "pass_at_k": pl.Float64,
    "strong_threshold": pl.Float64,
    "alignment": pl.String,
    "contamination_ratio": pl.Float64,
    "mean_em": pl.Float64,
    "mean_rouge_l": pl.Float64,
    "rouge_l_threshold": pl.Float64,
    "em_threshold": pl.Float64,
    "contaminated": pl.Boolean,
    "partition": pl.String,
    "colour": pl.String,
}


@dataclass(frozen=True)
class AlignmentRule:
    """The configured thresholds of the verdict (see the module docstring for the rules)."""

    k: int
    strong_threshold: float
    contamination_ratio: float = 0.6
    rouge_l_threshold: float | None = None
    em_threshold: float | None = None


def pass_at_k_curves(passk: pl.DataFrame) -> pl.DataFrame:
    """``model``, ``task``, ``k``, ``pass_at_k`` from either the probe's passk table (``k``, ``pass_at_k``) or the
    long metrics table of ``metrics.probe_metrics_table`` with ``model`` and ``task`` added (``metric``, ``value``)."""
    if "metric" in passk.columns:
        passk = passk.filter(pl.col("metric") == "pass@k").rename({"value": "pass_at_k"})
    return passk.select("model", "task", "k", "pass_at_k")


def alignment_labels(passk: pl.DataFrame, rule: AlignmentRule) -> pl.DataFrame:
    """Per (model, task): ``alignment_k``, ``pass_at_k`` at that k, ``strong_threshold`` and ``alignment``."""
    curves = pass_at_k_curves(passk)
    pairs = curves.select("model", "task").unique(maintain_order=True)
    at_k = curves.filter(pl.col("k") == rule.k)
    missing = pairs.join(at_k, on=["model", "task"], how="anti")
    if not missing.is_empty():
        raise ValueError(f"no pass@{rule.k} for {missing.rows()}: alignment k must be one of the probed k")
    return pairs.join(at_k, on=["model", "task"], how="left", maintain_order="left").select(
        "model", "task",
        alignment_k=pl.lit(rule.k, dtype=pl.Int64),
        pass_at_k=pl.col("pass_at_k").cast(pl.Float64),
        strong_threshold=pl.lit(rule.strong_threshold, dtype=pl.Float64),
        alignment=pl.when(pl.col("pass_at_k") >= rule.strong_threshold)
        .then(pl.lit("strong"))
        .otherwise(pl.lit("weak")),
    )


def contamination_flags(summary: pl.DataFrame, rule: AlignmentRule) -> pl.DataFrame:
    """Per (model, task) of ``summary`` (``contamination.summarize_contamination`` with ``model`` and ``task``):
    ``contamination_ratio``, ``mean_em``, ``mean_rouge_l``, the thresholds and ``contaminated``."""
    if rule.rouge_l_threshold is None and rule.em_threshold is None:
        raise ValueError("the contamination flag needs rouge_l_threshold or em_threshold (or both)")
    # Ratios are floats from config and from the probe: compare with a tolerance, not ==.
    at_ratio = summary.filter((pl.col("ratio") - rule.contamination_ratio).abs() < 1e-9)
    if at_ratio.is_empty():
        raise ValueError(f"the contamination summary has no rows at ratio {rule.contamination_ratio}; "
                         f"it has {sorted(summary['ratio'].unique().to_list())}")
    duplicated = at_ratio.group_by("model", "task").len().filter(pl.col("len") > 1)
    if not duplicated.is_empty():  # e.g. several benchmarks per task: the caller decides which one is the task's
        raise ValueError(f"several contamination rows per (model, task) at ratio {rule.contamination_ratio}: "
                         f"{duplicated.select('model', 'task').rows()}")
    flags = []
    if rule.rouge_l_threshold is not None:
        flags.append((pl.col("mean_rouge_l") >= rule.rouge_l_threshold).fill_null(False))
    if rule.em_threshold is not None:
        flags.append((pl.col("mean_em") >= rule.em_threshold).fill_null(False))
    return at_ratio.select(
        "model", "task",
        contamination_ratio=pl.lit(rule.contamination_ratio, dtype=pl.Float64),
        mean_em=pl.col("mean_em").cast(pl.Float64),
        mean_rouge_l=pl.col("mean_rouge_l").cast(pl.Float64),
        rouge_l_threshold=pl.lit(rule.rouge_l_threshold, dtype=pl.Float64),
        em_threshold=pl.lit(rule.em_threshold, dtype=pl.Float64),
        contaminated=pl.any_horizontal(flags),
    )


def alignment_table(passk: pl.DataFrame, rule: AlignmentRule,
                    contamination: pl.DataFrame | None = None) -> pl.DataFrame:
    """The verdict per (model, task), columns ``ALIGNMENT_SCHEMA``: the pass@k used, ``alignment``, and with a
    contamination summary the means used, ``contaminated``, ``partition`` and ``colour``.

    Every (model, task) of ``passk`` must have a contamination row when a summary is given: a cell silently left
    out of the partition would read as if it had been checked.
    """
    labels = alignment_labels(passk, rule)
    if contamination is None:
        unused = [c for c in ALIGNMENT_SCHEMA if c not in labels.columns]
        return labels.with_columns(pl.lit(None, dtype=ALIGNMENT_SCHEMA[c]).alias(c) for c in unused)
    flags = contamination_flags(contamination, rule)
    missing = labels.join(flags, on=["model", "task"], how="anti")
    if not missing.is_empty():
        raise ValueError(f"no contamination result at ratio {rule.contamination_ratio} "
                         f"for {missing.select('model', 'task').rows()}")
    table = labels.join(flags, on=["model", "task"], how="left", maintain_order="left")
    partition = (pl.when(pl.col("contaminated")).then(pl.lit("contaminated_")).otherwise(pl.lit("clean_"))
                 + pl.col("alignment"))
    table = table.with_columns(partition=partition).with_columns(
        colour=pl.col("partition").replace_strict(PARTITION_COLOURS, return_dtype=pl.String)
    )
    return table.select(list(ALIGNMENT_SCHEMA)).cast(ALIGNMENT_SCHEMA)
