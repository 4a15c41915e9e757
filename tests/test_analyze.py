"""The analysis: deltas, alignment labels and the figure, from hand-made probe and score tables."""

import json
from pathlib import Path

import polars as pl
import pytest
from study_fixture import write_study

from mtarl import analyze, io

REPO = Path(__file__).resolve().parents[1]


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


def test_run_writes_every_table_figure_and_both_reports(tmp_path):
    cells = {("aligned", "add3"): (0.9, "strong", 0.0, 0.4), ("weak", "add3"): (0.1, "weak", 0.0, 0.0)}
    trained = {(m, "add3", v): {1: [12] * 10, 2: [10] * 10} for m in ("aligned", "weak")
               for v in ("ground_truth", "one_shot")}
    inputs = write_study(tmp_path / "results", cells, {cell: [8] * 10 for cell in cells}, trained)
    inputs.data = [str(tmp_path / "train.parquet")]  # a dataset split with bad rows, as its prepare manifest says
    io.write_parquet(pl.DataFrame({"id": ["a"]}), inputs.data[0], {"task": "math", "split": "train", "report": {
        "rows_read": 5, "rows_kept": 2, "rows_skipped": {"empty_prompt": 1, "missing_answer": 2}}})
    out = tmp_path / "analysis"
    result = analyze.run({"analyze": {"dpi": 40, "n_boot": 200, "seed": 0}, "study": "test"}, inputs, str(out))
    for rel in analyze.OUTPUTS.values():
        assert (out / rel).exists(), rel
    for png in [out / "passk.png", *(out / "figures").glob("*.png"), *(out / "training").glob("*.png")]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert sorted(p.name for p in (out / "training").iterdir()) == ["aligned.add3.png", "weak.add3.png"]

    estimates = result["estimates"]
    gt = estimates.filter((pl.col("model") == "aligned") & (pl.col("variant") == "ground_truth")).row(0, named=True)
    assert gt["score"] == pytest.approx(11 / 16) and gt["gain"] == pytest.approx(3 / 16) and gt["n_seeds"] == 2
    assert gt["score_low"] == pytest.approx(10 / 16) and gt["score_high"] == pytest.approx(12 / 16)

    rq1 = (out / "tables/rq1_rewards.html").read_text()
    assert "0.688 [0.625, 0.750]" in rq1 and "2 seeds" in rq1
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6  # passk, trained pass@k, 2 alignment-gain, 2 training figures
    assert 'id="predictions"' in page and "Model-Task Alignment" in page  # the workflow description as intro
    assert "<td>5</td><td>2</td><td>3</td><td>empty_prompt: 1, missing_answer: 2</td>" in (
        out / "tables/data.html").read_text()
    markdown = (out / "summary.md").read_text()
    assert "| P1 | Ground-truth RL helps every model x task cell | supported |" in markdown
    assert "| aligned | add3 | ground_truth | 1 | add3 | avg@16 | 0.500 | 0.750 | 0.250 |" in markdown


def test_diagnostics_show_how_the_latent_behaviours_moved(tmp_path):
    """Start and end windows of each run, then the mean over seeds: hand-computed from two 12-step runs."""
    from mtarl.analysis import training

    paths = []
    for seed, shift in ((1, 0.0), (2, 0.1)):
        folder = tmp_path / "train" / "aligned" / "add3" / f"random-s{seed}"
        folder.mkdir(parents=True)
        lines = [{"step": step, "format_rate": 0.5 + shift + 0.03 * step, "strategy_share": 0.0,
                  "gt_accuracy": 0.4, "clip_ratio/region_mean": 0.002 if step == 12 else 0.0, "entropy": 0.3}
                 for step in range(1, 13)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        paths.append(str(folder / "metrics.jsonl"))
    row = training.diagnostics(training.read_training_logs(paths), window=10).row(0, named=True)
    # steps 1-10: mean 5.5 -> 0.5 + 0.165 (+0.1 for seed 2); steps 3-12: mean 7.5 -> 0.5 + 0.225
    assert row["format_rate_start"] == pytest.approx(0.5 + 0.165 + 0.05)
    assert row["format_rate_end"] == pytest.approx(0.5 + 0.225 + 0.05)
    assert row["gt_accuracy_end"] == pytest.approx(0.4) and row["strategy_share_end"] == 0.0
    assert row["clip_percent_mean"] == pytest.approx(100 * 0.002 / 12) and row["clip_percent_max"] == pytest.approx(0.2)
    assert (row["variant"], row["n_seeds"]) == ("random", 2)
