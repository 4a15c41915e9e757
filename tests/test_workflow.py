"""The Snakemake workflow: lint, the planned DAG, and the whole study end to end on the smoke configuration."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import run_snakemake

RULES = ("prepare", "pretrain", "probe_shard", "probe", "train", "evaluate", "analyze")


def snakemake(repo: Path, workdir: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, *args, timeout=timeout, snakefile=repo / "Snakefile")


def job_counts(output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table."""
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m[1] != "total"}


def test_lint_is_clean(repo, tmp_path):
    result = snakemake(repo, tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_dry_run_plans_every_rule(repo, tmp_path):
    result = snakemake(repo, tmp_path, "-n")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    # 3 cells (aligned x add3, weak x add3, weak_mul2 x mul2: each model's tasks) x 8 variants x 3 seeds:
    # one probe per cell (1 shard); with batch_seeds one train job per variant for its 3 seeds (3x8), with
    # batch_evaluation one evaluate job per cell for its base model and all its trained runs
    assert counts == {"prepare": 4, "pretrain": 3, "probe_shard": 3, "probe": 3, "train": 24, "evaluate": 3,
                      "analyze": 1, "all": 1}
    (tmp_path / "per_variant.yaml").write_text("batch_evaluation: false\n")
    per_variant = job_counts(snakemake(repo, tmp_path, "-n", "--configfile", str(tmp_path / "per_variant.yaml")).stdout)
    assert (per_variant["train"], per_variant["evaluate"]) == (24, 27), "one evaluate job per variant: 3x(1 + 8)"
    (tmp_path / "apart.yaml").write_text("batch_seeds: false\nbatch_evaluation: false\n")
    apart = job_counts(snakemake(repo, tmp_path, "-n", "--configfile", str(tmp_path / "apart.yaml")).stdout)
    assert (apart["train"], apart["evaluate"]) == (72, 75), "one job per seed: 3x8x3 and 3x(1 + 8x3)"


def test_smoke_study_runs_end_to_end(repo, smoke_study):
    tmp_path, result = smoke_study
    for rule in RULES:
        assert f"rule {rule}:" in result.stdout + result.stderr, f"rule {rule} did not run"

    summary = pl.read_parquet(tmp_path / "results/analysis/summary.parquet")
    assert summary.height == 6  # 3 cells x (ground_truth, one_shot) x seed 1
    assert set(summary["variant"]) == {"ground_truth", "one_shot"} and set(summary["seed"]) == {1}
    for row in summary.iter_rows(named=True):
        assert row["delta"] == pytest.approx(row["trained_score"] - row["base_score"])
        assert 0 <= row["base_pass_at_1"] <= row["base_pass_at_k"] <= 1
    assert (tmp_path / "results/analysis/passk.png").read_bytes()[:4] == b"\x89PNG"
    assert "# mtarl study summary" in (tmp_path / "results/analysis/summary.md").read_text()
    predictions = pl.read_parquet(tmp_path / "results/analysis/predictions.parquet")
    assert set(predictions["id"]) == {f"P{i}" for i in range(1, 11)}

    samples = pl.read_parquet(tmp_path / "results/probe/aligned/add3/add3/samples.parquet")
    assert {"problem_id", "sample", "completion", "extracted", "correct", "n_tokens"} <= set(samples.columns)
    assert samples.height == 8 * 8  # smoke: 8 eval problems x probe.n 8

    again = snakemake(repo, tmp_path, "-n", "--configfile", str(repo / "config/smoke.yaml"))
    assert "Nothing to be done" in again.stdout + again.stderr, "a finished study must not rerun"

    assert_only_changed_jobs_rerun(repo, tmp_path)
    assert_code_edits_rerun_their_stages(repo, tmp_path)
    assert_a_lost_probe_shard_alone_is_resampled(repo, tmp_path)


def assert_a_lost_probe_shard_alone_is_resampled(repo: Path, workdir: Path) -> None:
    """The state a failed or killed shard job leaves (its shard missing, the gather and the analysis not run): the next
    run samples that shard alone, then gathers it and analyses, and gathers the same samples as before."""
    probe = workdir / "results/probe/aligned/add3/add3"
    lost, kept = probe / "shards/1/samples.parquet", probe / "shards/0/samples.parquet"
    gathered, kept_mtime = pl.read_parquet(probe / "samples.parquet"), kept.stat().st_mtime_ns
    for path in [lost, *probe.glob("*.parquet")]:
        path.unlink()
    shutil.rmtree(workdir / "results/analysis")
    rerun = snakemake(repo, workdir, "--cores", "2", "--configfile", str(repo / "config/smoke.yaml"), timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert job_counts(rerun.stdout + rerun.stderr) == {"probe_shard": 1, "probe": 1, "analyze": 1, "all": 1}
    assert kept.stat().st_mtime_ns == kept_mtime, "the other shard was resampled"
    assert pl.read_parquet(probe / "samples.parquet").equals(gathered)


def assert_only_changed_jobs_rerun(repo: Path, workdir: Path) -> None:
    """After a finished smoke study, a changed setting replans exactly the jobs that use it."""
    changes = {
        # evaluation samples: every evaluation (one job per cell), then the analysis
        "evaluate: {n: 2}\n": {"evaluate": 3, "analyze": 1, "all": 1},
        # one variant's learning rate: its 3 trainings (one per cell), their cells' evaluations, the analysis
        "train: {variant_settings: {one_shot: {learning_rate: 1.0e-4}}}\n":
            {"train": 3, "evaluate": 3, "analyze": 1, "all": 1},
        # the probe's n: the 3 probes (6 shards, 3 gathers) and the analysis
        "probe: {n: 4}\n": {"probe_shard": 6, "probe": 3, "analyze": 1, "all": 1},
        # an alignment threshold changes no sample: the 3 gathers and the analysis
        "probe: {alignment: {strong_threshold: 0.9}}\n": {"probe": 3, "analyze": 1, "all": 1},
    }
    for i, (change, expected) in enumerate(changes.items()):
        (workdir / f"change{i}.yaml").write_text(change)
        plan = snakemake(repo, workdir, "-n", "--configfile", str(repo / "config/smoke.yaml"),
                         str(workdir / f"change{i}.yaml"))
        assert job_counts(plan.stdout) == expected, f"{change}: {plan.stdout[-2000:]}"


def copy_workflow(repo: Path, dest: Path) -> Path:
    """The workflow and the package source, as a user's checkout to edit."""
    dest.mkdir()
    for name in ("Snakefile", "README.md", "workflow", "config", "envs", "src"):
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, dest / name)
    return dest


def assert_code_edits_rerun_their_stages(repo: Path, workdir: Path) -> None:
    """After a finished smoke study, an edited module replans exactly the stages that import it, and what follows."""
    copy = copy_workflow(repo, workdir / "checkout")

    def plan() -> dict[str, int]:
        result = snakemake(copy, workdir, "-n", "--configfile", str(copy / "config/smoke.yaml"))
        assert result.returncode == 0, result.stderr[-2000:]
        return job_counts(result.stdout) if "Job stats:" in result.stdout else {}

    def edit(path: Path, old: str, new: str) -> str:
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
        return text

    assert plan() == {}, "the same code in another checkout reruns nothing"
    # a reward function: the 6 trainings (3 cells x 2 variants), the cells' evaluations, the analysis
    rewards = copy / "src/mtarl/rewards.py"
    original = edit(rewards, "return [None if v.correct is None else float(v.correct) for v in verdicts]",
                    "return [None if v.correct is None else 1.0 * v.correct for v in verdicts]")  # ground truth
    assert plan() == {"train": 6, "evaluate": 3, "analyze": 1, "all": 1}
    rewards.write_text(original)
    # the pretraining code: the three pretrainings and everything downstream; the data stays
    pretrain = copy / "src/mtarl/pretrain.py"
    original = edit(pretrain, "return max(low - value, 0.0, value - high)", "return max(0.0, low - value, value - high)")
    assert plan() == {"pretrain": 3, "probe_shard": 6, "probe": 3, "train": 6, "evaluate": 3, "analyze": 1,
                      "all": 1}
    pretrain.write_text(original)
    (copy / "README.md").write_text((copy / "README.md").read_text() + "\nAn edit.\n")
    assert plan() == {}, "a README edit reruns nothing"


def test_edited_rule_code_reruns_its_jobs(repo, tmp_path):
    """Snakemake's code trigger: a rule whose command changed reruns, on a copy of the workflow."""
    copy = copy_workflow(repo, tmp_path / "workflow_copy")
    work = tmp_path / "run"
    first = snakemake(copy, work, "--cores", "2", "--configfile", str(copy / "config/smoke.yaml"),
                      "--until", "prepare", timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    rule = copy / "workflow/rules/prepare.smk"
    rule.write_text(rule.read_text().replace("> {log} 2>&1", ">> {log} 2>&1"))
    plan = snakemake(copy, work, "-n", "--configfile", str(copy / "config/smoke.yaml"), "--until", "prepare")
    assert job_counts(plan.stdout) == {"prepare": 4}, plan.stdout[-2000:]
    assert "Code has changed since last execution" in plan.stdout


PAPER_JOBS = {
    # 2 models, 5 hub datasets (SynLogic's two splits share one) and KOR-Bench from GitHub, each at its revision
    "download": 8,
    # 2 train sets + MATH500, AIME24, AMC23, SynLogic validation and 5 KOR-Bench categories
    "prepare": 11,
    # 2 models x (8 benchmarks in 1 shard + MATH500 in 4)
    "probe_shard": 24,
    # 2 models x 9 benchmarks
    "probe": 18,
    # 2 models x 2 domains x (9 official variants + one_shot_random, entropy_token + 3 Zhu et al. variants) x 1 seed,
    # + one-shot's history run on a 1,209-problem candidate subset per model x domain
    "train": 60,
    # 2 models x 2 tasks x (base + 14 trained runs): one model load for all the task's benchmarks
    "evaluate": 60,
    "analyze": 1,
    "all": 1,
}


def paper_args(repo: Path, *extra: str) -> list[str]:
    return ["--configfile", str(repo / "config/paper.yaml"), *extra, "--replace-workflow-config"]


def test_paper_configuration_plans_the_whole_study(repo, tmp_path):
    result = snakemake(repo, tmp_path, "-n", "-p", *paper_args(repo))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert job_counts(result.stdout) == PAPER_JOBS
    train_jobs = [job.split("rule ")[0] for job in result.stdout.split("rule train:")[1:]]
    assert all("gpu=8" in job for job in train_jobs), "every training job asks for the node's 8 GPUs"
    launcher = "--launch 'accelerate launch --config_file {}/workflow/accelerate/fsdp2.yaml --num_processes 8 "
    assert all(launcher.format(repo) in job for job in train_jobs), "and starts 8 FSDP2 processes"
    assert_downloads_come_first_and_feed_the_jobs(result.stdout)
    lint = snakemake(repo, tmp_path, "--lint", *paper_args(repo))
    assert "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr


def assert_downloads_come_first_and_feed_the_jobs(plan: str) -> None:
    """The download jobs are the first stage, and each job that loads a model or reads a dataset has it as input."""
    jobs = [(m[1], m[2]) for m in re.finditer(r"^rule (\w+):\n((?:    .*\n)+)", plan, re.MULTILINE)]
    rules = [rule for rule, _ in jobs]
    assert rules[:PAPER_JOBS["download"]] == ["download"] * PAPER_JOBS["download"]
    inputs = {(rule, body): re.search(r"^    input: (.*)$", body, re.MULTILINE) for rule, body in jobs}
    models = {"qwen": "resources/hub/models/Qwen--Qwen2.5-7B/main",
              "llama": "resources/hub/models/meta-llama--Llama-3.1-8B-Instruct/main"}
    for (rule, body), found in inputs.items():
        model = re.search(r"wildcards: model=(\w+)", body)
        base = rule in ("probe_shard", "train") or (rule == "evaluate" and "job=base" in body)
        if base:
            assert found and models[model[1]] in found[1].split(", "), f"{rule} job without its model: {body}"
        if rule == "prepare":
            assert found and found[1].startswith("resources/hub/"), f"prepare job without its dataset: {body}"


def test_paper_prepare_runs_on_local_dataset_copies(repo, tmp_path):
    fixtures = repo / "tests/fixtures"
    local = {
        "tasks": {
            "math": {
                # the paper's on_bad_row (skip) on rows without an answer or a prompt
                "train": {"path": str(fixtures / "deepscaler_bad/deepscaler.json")},
                "benchmarks": {
                    "math500": {"path": str(fixtures / "math500/test.jsonl")},
                    "aime24": {"path": str(fixtures / "aime24")},
                    "amc23": {"path": str(fixtures / "amc23")},
                },
            },
            "logic": {
                "train": {"path": str(fixtures / "synlogic")},
                "benchmarks": {name: {"path": str(fixtures / "korbench")} for name in
                               ("kor_operation", "kor_logic", "kor_cipher", "kor_puzzle", "kor_counterfactual")}
                | {"synlogic": {"path": str(fixtures / "synlogic")}},
            },
        }
    }
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(local))
    env_args = paper_args(repo, str(tmp_path / "local.yaml"))
    result = snakemake(repo, tmp_path, "--cores", "2", "--until", "prepare", *env_args, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == {"prepare": 11}
    math500 = pl.read_parquet(tmp_path / "results/data/math/math500.parquet")
    assert set(math500["family"]) == {"math"} and set(math500["split"]) == {"eval"}
    assert math500["prompt"][0].startswith("Solve the following problem step by step.")
    operation = pl.read_parquet(tmp_path / "results/data/logic/kor_operation.parquet")
    assert set(operation["family"]) == {"korbench:operation"}
    from mtarl import io

    report = io.read_manifest(tmp_path / "results/data/math/train.parquet")["report"]
    assert report["rows_skipped"] == {"empty_prompt": 1, "missing_answer": 2}
    assert report["rows_read"] == 5 and report["rows_kept"] == 2
    train = pl.read_parquet(tmp_path / "results/data/logic/train.parquet")
    assert all(f.startswith("synlogic:") for f in train["family"]) and set(train["split"]) == {"train"}
