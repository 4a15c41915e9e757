"""The paper study's plan on a cluster, from dry runs of config/paper.yaml through the SLURM profiles: which jobs
are queued, how big they are, and what runs locally (no cluster, no GPU needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def dry_run(workdir: Path, *extra: str, configfile: Path = REPO / "config/paper.yaml") -> str:
    """``snakemake -n`` of the paper configuration (or ``configfile``) through the site template and the workflow's
    SLURM profile (minus its container keys: no Apptainer here)."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    for key in ("software-deployment-method", "apptainer-args"):
        profile.pop(key)
    (workdir / "workflow-profile").mkdir(exist_ok=True)
    (workdir / "workflow-profile/config.yaml").write_text(yaml.safe_dump(profile))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir / "run"), "-n",
         "--configfile", str(configfile), "--replace-workflow-config",
         "--profile", str(REPO / "workflow/profiles/slurm-site"),
         "--workflow-profile", str(workdir / "workflow-profile"),
         *extra],
        capture_output=True, text=True, timeout=180, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def jobs(output: str, rule: str) -> list[str]:
    """The dry run's job blocks of ``rule``."""
    return [block.split("\n[")[0] for block in output.split(f"\nrule {rule}:\n")[1:]]


def resources(block: str) -> dict[str, str]:
    line = next(l for l in block.splitlines() if l.strip().startswith("resources:"))
    return dict(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> str:
    return dry_run(tmp_path_factory.mktemp("paper"))


def test_one_evaluate_job_per_trained_model(plan):
    # 2 models x 2 tasks x (base + 14 variants): one model load each, instead of one per benchmark (270)
    evaluations = jobs(plan, "evaluate")
    assert len(evaluations) == 60
    qwen_math_gt = next(b for b in evaluations if "wildcards: model=qwen, task=math, job=ground_truth-s1" in b)
    for benchmark in ("math500", "aime24", "amc23"):
        assert f"results/data/math/{benchmark}.parquet" in qwen_math_gt


def test_one_shot_history_run_is_planned_on_its_candidate_subset(plan):
    history = [b for b in jobs(plan, "train") if "job=ground_truth_subset-s1" in b]
    assert len(history) == 4  # 2 models x 2 tasks; trained for one-shot selection only, so never evaluated
    assert "results/train/qwen/math/ground_truth_subset-s1/examples.jsonl" in "".join(jobs(plan, "train"))
    assert not [b for b in jobs(plan, "evaluate") if "ground_truth_subset" in b]


def test_memory_grows_with_each_retry(plan, tmp_path):
    first = {r: resources(jobs(plan, r)[0])["mem_mb"] for r in ("train", "evaluate", "probe_shard")}
    retried = {r: resources(jobs(dry_run(tmp_path, "--attempt", "2"), r)[0])["mem_mb"]
               for r in ("train", "evaluate", "probe_shard")}
    assert first == {"train": "256000", "evaluate": "64000", "probe_shard": "64000"}
    assert retried == {rule: str(2 * int(mb)) for rule, mb in first.items()}


def test_site_keys_come_from_the_site_profile_only(plan):
    workflow_profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    site = yaml.safe_load((REPO / "workflow/profiles/slurm-site/config.yaml").read_text())
    assert "default-resources" not in workflow_profile  # else it would replace the site's (per top-level key)
    assert {"slurm_partition", "slurm_account"} <= set(site["default-resources"])
    assert not re.search(r"slurm_(partition|account)", (REPO / "workflow/profiles/slurm/config.yaml").read_text()
                         .split("set-resources:")[1])
    train = resources(jobs(plan, "train")[0])
    assert (train["slurm_partition"], train["slurm_account"]) == ("CHANGE_ME_partition", "CHANGE_ME_account")
    assert (train["gpu"], train["cpus_per_gpu"], train["runtime"]) == ("8", "8", "2880")  # train.gpus_per_run


def test_only_gpu_work_is_queued():
    """Gathers, per-benchmark tables, data preparation and the analysis run where Snakemake runs."""
    code = (
        "from pathlib import Path\n"
        "from snakemake.api import SnakemakeApi\n"
        "from snakemake.settings.types import ConfigSettings, ResourceSettings\n"
        "with SnakemakeApi() as api:\n"
        f"    wf = api.workflow(resource_settings=ResourceSettings(), snakefile=Path({str(REPO / 'Snakefile')!r}),\n"
        f"        config_settings=ConfigSettings(configfiles=[Path({str(REPO / 'config/paper.yaml')!r})],\n"
        "                                       replace_workflow_config=True))\n"
        "    print(sorted(wf._workflow._localrules))\n"  # the localrules directives, as Snakemake parsed them
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    local = eval(result.stdout.strip().splitlines()[-1])
    assert local == ["analyze", "download", "download_gguf", "prepare", "probe"]


def test_a_server_mode_run_holds_all_its_gpus_and_launches_the_training_processes_only(tmp_path):
    """vLLM server mode: the job still asks for train.gpus_per_run GPUs (the server runs inside it), and its launcher
    starts one training process per GPU not reserved for the server (mtarl.launch)."""
    from mtarl import config as cfg

    override = tmp_path / "server.yaml"
    override.write_text("train: {vllm_server_gpus: 4, defaults: {gradient_accumulation_steps: 64, vllm: {mode: server, "
                        "gpu_memory_utilization: 0.9, sleep_mode: false}}}\n")
    merged = tmp_path / "paper-server.yaml"
    merged.write_text(yaml.safe_dump(cfg.load(REPO / "config/paper.yaml", override)))
    output = dry_run(tmp_path, "-p", "results/train/qwen/math/ground_truth-s1/model", configfile=merged)
    (train,) = jobs(output, "train")
    assert resources(train)["gpu"] == "8"
    assert "--num_processes 4 " in train and '"vllm_server_gpus": 4' in train
