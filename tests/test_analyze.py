"""The analysis: deltas, alignment labels and the figure, from hand-made probe and score tables."""

import polars as pl
import pytest

from mtarl import analyze


def passk_rows(model, task, values):
    return [{"model": model, "task": task, "benchmark": task, "k": k, "pass_at_k": v} for k, v in zip([1, 2, 4], values)]


@pytest.fixture
def tables():
    passk = pl.DataFrame(passk_rows("aligned", "add3", [0.3, 0.5, 0.8]) + passk_rows("weak", "add3", [0.01, 0.02, 0.1]))
    scores = pl.DataFrame(
        [
            {"metric": "avg@4", "k": 4, "value": 0.30, "model": "aligned", "task": "add3", "variant": "base", "seed": None},
            {"metric": "pass@1", "k": 1, "value": 0.30, "model": "aligned", "task": "add3", "variant": "base", "seed": None},
            {"metric": "avg@4", "k": 4, "value": 0.45, "model": "aligned", "task": "add3", "variant": "ground_truth", "seed": 1},
            {"metric": "avg@4", "k": 4, "value": 0.40, "model": "aligned", "task": "add3", "variant": "ground_truth", "seed": 2},
            {"metric": "avg@4", "k": 4, "value": 0.02, "model": "weak", "task": "add3", "variant": "base", "seed": None},
            {"metric": "avg@4", "k": 4, "value": 0.01, "model": "weak", "task": "add3", "variant": "ground_truth", "seed": 1},
        ],
        schema_overrides={"seed": pl.Int64},
    ).with_columns(benchmark=pl.col("task"))
    alignment_rows = pl.DataFrame(
        {"model": ["aligned", "weak"], "task": ["add3", "add3"], "benchmark": ["add3", "add3"], "alignment_k": [4, 4],
         "pass_at_k": [0.8, 0.1], "alignment": ["strong", "weak"], "mean_em": [0.0, 0.0], "mean_rouge_l": [0.1, 0.1],
         "partition": ["clean_strong", "clean_weak"]})
    return passk, scores, alignment_rows


def test_summary_rows_deltas_and_alignment(tables):
    summary = analyze.summarize(*tables)
    assert summary.height == 3
    rows = {(r["model"], r["seed"]): r for r in summary.iter_rows(named=True)}
    assert rows[("aligned", 1)]["delta"] == pytest.approx(0.15)
    assert rows[("aligned", 2)]["delta"] == pytest.approx(0.10)
    assert rows[("weak", 1)]["delta"] == pytest.approx(-0.01)
    assert rows[("aligned", 1)]["alignment"] == "strong" and rows[("weak", 1)]["alignment"] == "weak"
    assert rows[("aligned", 1)]["partition"] == "clean_strong" and rows[("aligned", 1)]["base_pass_at_1"] == 0.3
    assert rows[("aligned", 1)]["base_pass_at_k"] == pytest.approx(0.8)
    assert rows[("aligned", 1)]["metric"] == "avg@4" and rows[("aligned", 1)]["benchmark"] == "add3"


def test_missing_base_evaluation_is_an_error(tables):
    passk, scores, alignment = tables
    with pytest.raises(ValueError, match="no base-model evaluation"):
        analyze.summarize(passk, scores.filter(~((pl.col("model") == "weak") & (pl.col("variant") == "base"))),
                          alignment)


def test_run_writes_summary_figure_and_report(tables, tmp_path):
    passk, scores, alignment = tables
    passk.write_parquet(tmp_path / "p.parquet")
    scores.write_parquet(tmp_path / "s.parquet")
    alignment.write_parquet(tmp_path / "a.parquet")
    out = {name: tmp_path / name for name in ("summary.parquet", "alignment.parquet", "passk.png", "summary.md")}
    analyze.run({"analyze": {"dpi": 60}}, [str(tmp_path / "p.parquet")], [str(tmp_path / "a.parquet")],
                [str(tmp_path / "s.parquet")], str(out["summary.parquet"]), str(out["alignment.parquet"]),
                str(out["passk.png"]), str(out["summary.md"]))
    assert pl.read_parquet(out["summary.parquet"]).height == 3
    assert out["passk.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = out["summary.md"].read_text()
    assert "| aligned | add3 | ground_truth | 1 | add3 | avg@4 | 0.300 | 0.450 | 0.150 |" in report
    assert "| aligned | add3 | add3 | ground_truth | strong | 2 | 0.125 |" in report  # mean delta over 2 seeds
    assert pl.read_parquet(out["alignment.parquet"]).height == 2
