"""The Snakemake workflow: lint, the planned DAG, and the whole study end to end on the smoke configuration."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

RULES = ("prepare", "pretrain", "probe", "train", "evaluate", "analyze")


def snakemake(repo: Path, workdir: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def job_counts(output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table."""
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m[1] != "total"}


def test_lint_is_clean(repo, tmp_path):
    result = snakemake(repo, tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_dry_run_plans_the_six_rules(repo, tmp_path):
    result = snakemake(repo, tmp_path, "-n")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    # 2 tasks x 2 base models x 13 variants x 1 seed: probes 2x2, trainings 2x2x13, evaluations 2x2x(base + 13)
    assert counts == {"prepare": 4, "pretrain": 2, "probe": 4, "train": 52, "evaluate": 56, "analyze": 1, "all": 1}


def test_smoke_study_runs_end_to_end(repo, tmp_path):
    result = snakemake(repo, tmp_path, "--cores", "2", "--configfile", str(repo / "config/smoke.yaml"),
                       timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for rule in RULES:
        assert f"rule {rule}:" in result.stdout + result.stderr, f"rule {rule} did not run"

    summary = pl.read_parquet(tmp_path / "results/analysis/summary.parquet")
    assert summary.height == 8  # 2 models x 2 tasks x (ground_truth, one_shot) x seed 1
    assert set(summary["variant"]) == {"ground_truth", "one_shot"} and set(summary["seed"]) == {1}
    for row in summary.iter_rows(named=True):
        assert row["delta"] == pytest.approx(row["trained_score"] - row["base_score"])
        assert 0 <= row["base_pass_at_1"] <= row["base_pass_at_k"] <= 1
    assert (tmp_path / "results/analysis/passk.png").read_bytes()[:4] == b"\x89PNG"
    assert "# mtarl study summary" in (tmp_path / "results/analysis/summary.md").read_text()

    samples = pl.read_parquet(tmp_path / "results/probe/aligned/add3/add3/samples.parquet")
    assert {"problem_id", "sample", "completion", "extracted", "correct", "n_tokens"} <= set(samples.columns)
    assert samples.height == 8 * 8  # smoke: 8 eval problems x probe.n 8

    again = snakemake(repo, tmp_path, "-n", "--configfile", str(repo / "config/smoke.yaml"))
    assert "Nothing to be done" in again.stdout + again.stderr, "a finished study must not rerun"

    (tmp_path / "fewer_samples.yaml").write_text("evaluate: {n: 2}\n")
    changed = snakemake(repo, tmp_path, "-n", "--configfile", str(repo / "config/smoke.yaml"),
                        str(tmp_path / "fewer_samples.yaml"))
    assert job_counts(changed.stdout) == {"evaluate": 12, "analyze": 1, "all": 1}, changed.stdout[-2000:]
