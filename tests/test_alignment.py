"""The alignment verdict and the colour partition, on hand-made pass@k and contamination tables."""

from __future__ import annotations

import polars as pl
import pytest

from mtarl.alignment import ALIGNMENT_SCHEMA, AlignmentRule, alignment_labels, alignment_table, contamination_flags


def curves(cells: dict[tuple[str, str], list[float]], ks=(1, 4, 16)) -> pl.DataFrame:
    """A probe passk table from {(model, task): pass@k at each of ks}."""
    rows = [
        {"model": m, "task": t, "k": k, "pass_at_k": v, "n": 16, "n_problems": 10}
        for (m, t), values in cells.items()
        for k, v in zip(ks, values, strict=True)
    ]
    return pl.DataFrame(rows)


def summary(cells: dict[tuple[str, str], tuple[float, float]], ratios=(0.4, 0.6, 0.8)) -> pl.DataFrame:
    """A contamination summary from {(model, task): (mean_em, mean_rouge_l)}, the same values at every ratio except
    0.4, where everything reads as contaminated (so a test using the wrong ratio fails)."""
    rows = [
        {"model": m, "task": t, "ratio": r, "mean_em": 1.0 if r == 0.4 else em,
         "mean_rouge_l": 1.0 if r == 0.4 else rl, "n_problems": 10, "n_rouge": 10}
        for (m, t), (em, rl) in cells.items()
        for r in ratios
    ]
    return pl.DataFrame(rows)


PASSK = curves({
    ("qwen", "math"): [0.40, 0.80, 0.95],  # strong
    ("qwen", "kor_op"): [0.30, 0.60, 0.70],  # strong
    ("llama", "math"): [0.05, 0.15, 0.30],  # weak
    ("llama", "kor_puzzle"): [0.01, 0.03, 0.05],  # weak
})
RULE = AlignmentRule(k=16, strong_threshold=0.5, contamination_ratio=0.6, rouge_l_threshold=0.5, em_threshold=0.2)


def test_strong_when_pass_at_k_reaches_the_threshold():
    labels = alignment_labels(PASSK, AlignmentRule(k=16, strong_threshold=0.7))
    assert labels.select("model", "task", "pass_at_k", "alignment").rows() == [
        ("qwen", "math", 0.95, "strong"),
        ("qwen", "kor_op", 0.70, "strong"),  # exactly at the threshold: strong
        ("llama", "math", 0.30, "weak"),
        ("llama", "kor_puzzle", 0.05, "weak"),
    ]
    assert set(labels["alignment_k"]) == {16} and set(labels["strong_threshold"]) == {0.7}


def test_the_configured_k_decides():
    at_4 = alignment_labels(PASSK, AlignmentRule(k=4, strong_threshold=0.7))
    assert at_4["alignment"].to_list() == ["strong", "weak", "weak", "weak"]  # qwen/kor_op has 0.60 at k = 4


def test_k_must_be_probed():
    with pytest.raises(ValueError, match="no pass@8"):
        alignment_labels(PASSK, AlignmentRule(k=8, strong_threshold=0.5))


def test_long_metrics_table_is_accepted():
    long = PASSK.select("model", "task", "k", value="pass_at_k").with_columns(metric=pl.lit("pass@k"))
    maj = long.with_columns(metric=pl.lit("maj@k"), value=pl.lit(0.0))  # must be ignored
    labels = alignment_labels(pl.concat([long, maj]), RULE)
    assert labels["alignment"].to_list() == ["strong", "strong", "weak", "weak"]


def test_contamination_flag_rule():
    flags = contamination_flags(summary({
        ("a", "t"): (0.25, 0.10),  # EM at its threshold 0.2 or above: flagged
        ("b", "t"): (0.00, 0.50),  # ROUGE-L exactly at 0.5: flagged
        ("c", "t"): (0.19, 0.49),  # both below: clean
    }), RULE)
    assert flags.select("model", "mean_em", "mean_rouge_l", "contaminated").rows() == [
        ("a", 0.25, 0.10, True), ("b", 0.00, 0.50, True), ("c", 0.19, 0.49, False)
    ]
    assert set(flags["contamination_ratio"]) == {0.6}


def test_a_threshold_left_unset_is_not_used():
    table = summary({("a", "t"): (0.9, 0.1)})
    rouge_only = AlignmentRule(k=16, strong_threshold=0.5, rouge_l_threshold=0.5)
    assert contamination_flags(table, rouge_only)["contaminated"].to_list() == [False]  # EM 0.9 is not looked at
    with pytest.raises(ValueError, match="needs rouge_l_threshold or em_threshold"):
        contamination_flags(table, AlignmentRule(k=16, strong_threshold=0.5))


def test_undefined_rouge_does_not_flag():
    table = summary({("a", "t"): (0.0, None)}).with_columns(pl.col("mean_rouge_l").cast(pl.Float64))
    assert contamination_flags(table.filter(pl.col("ratio") == 0.6), RULE)["contaminated"].to_list() == [False]


def test_missing_ratio_is_an_error():
    with pytest.raises(ValueError, match="no rows at ratio 0.6"):
        contamination_flags(summary({("a", "t"): (0.0, 0.0)}, ratios=(0.4, 0.8)), RULE)


def test_three_colour_partition_and_the_contaminated_weak_label():
    contamination = summary({
        ("qwen", "math"): (0.45, 0.70),  # contaminated, strong -> red
        ("qwen", "kor_op"): (0.00, 0.20),  # clean, strong -> green
        ("llama", "math"): (0.00, 0.15),  # clean, weak -> gray
        ("llama", "kor_puzzle"): (0.30, 0.60),  # contaminated yet weak -> its own label
    })
    result = alignment_table(PASSK, RULE, contamination)
    assert result.schema == pl.Schema(ALIGNMENT_SCHEMA)
    assert result.select("model", "task", "pass_at_k", "mean_em", "mean_rouge_l", "partition", "colour").rows() == [
        ("qwen", "math", 0.95, 0.45, 0.70, "contaminated_strong", "red"),
        ("qwen", "kor_op", 0.70, 0.00, 0.20, "clean_strong", "green"),
        ("llama", "math", 0.30, 0.00, 0.15, "clean_weak", "gray"),
        ("llama", "kor_puzzle", 0.05, 0.30, 0.60, "contaminated_weak", "orange"),
    ]
    assert result.select("alignment_k", "strong_threshold", "contamination_ratio", "rouge_l_threshold",
                         "em_threshold").unique().rows() == [(16, 0.5, 0.6, 0.5, 0.2)]


def test_without_contamination_only_strong_and_weak():
    result = alignment_table(PASSK, RULE)
    assert result.schema == pl.Schema(ALIGNMENT_SCHEMA)
    assert result["alignment"].to_list() == ["strong", "strong", "weak", "weak"]
    assert result["partition"].null_count() == 4 and result["contaminated"].null_count() == 4


def test_every_cell_needs_a_contamination_row():
    partial = summary({("qwen", "math"): (0.0, 0.0)})
    with pytest.raises(ValueError, match=r"no contamination result at ratio 0.6 for .*llama"):
        alignment_table(PASSK, RULE, partial)


def test_duplicate_contamination_rows_are_an_error():
    doubled = pl.concat([summary({("qwen", "math"): (0.0, 0.0)})] * 2)
    with pytest.raises(ValueError, match="several contamination rows"):
        alignment_table(PASSK.filter(pl.col("model") == "qwen", pl.col("task") == "math"), RULE, doubled)
