"""The smoke study on a real single-node SLURM cluster, through the project's SLURM profile.

    pytest tests/test_slurm.py        # as root on Debian: starts the cluster itself (infra/start-slurm.sh)

The module fixture installs (apt) and starts munge, MariaDB + slurmdbd, slurmctld and slurmd with two fake GPUs
(idempotent; about 35 s the first time on a new machine, < 1 s when already up), then runs
`snakemake --profile workflow/profiles/slurm --profile tests/profiles/slurm-test --configfile config/smoke.yaml`
once. The project profile is used as it is, minus its container keys (the image is tests/test_containers.py's
business); tests/profiles/slurm-test only replaces the site values (partition, account, sizes) with the test
cluster's, and marks probe_shard/train/evaluate as GPU jobs. Training runs with two processes per job
(``train.gpus_per_run: 2``, torchrun on CPU) through the launch path of a paper run (mtarl.launch).
The tests then read the run's sbatch calls (--verbose),
SLURM's own accounting (sacct) and the outputs, which must equal those of a local run.
Skipped only where the cluster cannot be started (not root, no apt); under CI it must run.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
import yaml

from mtarl import config as mtarl_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Upper bound of the SLURM run: the executor plugin waits forever if sacct fails, and ignores SIGTERM while
# jobs run, so the run is killed with SIGKILL. It took 430 s beside make test's other test process (pytest-xdist) on
# 2 cores, 380 s alone; on a slower machine, raise the bound with MTARL_SLURM_RUN_LIMIT_S.
RUN_LIMIT_S = int(os.environ.get("MTARL_SLURM_RUN_LIMIT_S", "1200"))
GPU_RULES = {"probe_shard", "train", "evaluate"}
LOCAL_RULES = {"prepare", "probe", "analyze"}  # workflow/rules/*.smk: localrules
# Tables that depend on nothing but config and seeds (one thread per job in both runs), compared with a local run.
DETERMINISTIC = ["results/data/*/*.parquet", "results/models/*/curve.parquet",
                 "results/probe/*/*/*/samples.parquet", "results/probe/*/*/*/passk.parquet"]


def _env() -> dict[str, str]:
    # The venv first on PATH: sbatch --export=ALL hands it to the jobs, which run `mtarl` and the jobstep.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _daemon_alive(name: str) -> bool:
    check = f"source {REPO}/infra/slurm-lib.sh && alive /run/slurm/{name}.pid {name}"
    return subprocess.run(["bash", "-c", check]).returncode == 0


@pytest.fixture(scope="module")
def cluster():
    """The test cluster, started by the project's script; stopped afterwards only if this fixture started it."""
    missing = [why for why, bad in [("it must run as root", os.geteuid() != 0),
                                    ("apt-get is not available", shutil.which("apt-get") is None)] if bad]
    if missing:
        message = f"cannot start the SLURM test cluster: {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message + " (under CI this test must run)")
        pytest.skip(message)
    was_running = _daemon_alive("slurmctld")
    start = subprocess.run(["bash", str(REPO / "infra/start-slurm.sh")], capture_output=True, text=True,
                           timeout=900)
    assert start.returncode == 0, start.stdout[-3000:] + start.stderr[-3000:]
    yield
    if not was_running:
        subprocess.run(["bash", str(REPO / "infra/stop-slurm.sh")], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> SimpleNamespace:
    """The smoke study submitted to the cluster, job by job, with the sbatch calls in the --verbose log."""
    base = tmp_path_factory.mktemp("slurm")
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    for key in ("software-deployment-method", "apptainer-args"):  # no containers in this test
        profile.pop(key)
    (base / "profile").mkdir()
    (base / "profile/config.yaml").write_text(yaml.safe_dump(profile))
    (base / "two-processes.yaml").write_text("train: {gpus_per_run: 2}\n")
    workdir = base / "run"
    command = ["timeout", "-s", "KILL", str(RUN_LIMIT_S), sys.executable, "-m", "snakemake",
               "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--profile", str(base / "profile"), "--profile", str(REPO / "tests/profiles/slurm-test"),
               "--configfile", str(REPO / "config/smoke.yaml"), str(base / "two-processes.yaml"), "--verbose"]
    started = time.monotonic()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    seconds = time.monotonic() - started
    (base / "snakemake.log").write_text(result.stdout)
    uuid = re.search(r"SLURM run ID: (\S+)", result.stdout)
    if result.returncode != 0 and uuid:  # a killed run leaves its jobs behind: cancel them (all carry the run ID)
        subprocess.run(["scancel", "--name", uuid[1]], capture_output=True, timeout=60)
    return SimpleNamespace(rc=result.returncode, log=result.stdout, logfile=base / "snakemake.log",
                           workdir=workdir, uuid=uuid[1] if uuid else None, seconds=seconds)


@pytest.fixture(scope="module")
def local_run(smoke_study) -> Path:
    """The same config run locally: the session's smoke study (tests/conftest.py), whose deterministic stages (prepare,
    pretrain and probe) this compares; test_workflow.py, which changes its files, runs after this module."""
    workdir, _ = smoke_study
    return workdir


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table: jobs per rule."""
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m[1] != "total"}


def sbatch_calls(output: str) -> dict[str, list[str]]:
    """The sbatch command lines the executor ran (logged at debug level), by rule (from --comment)."""
    calls = collections.defaultdict(list)
    for line in re.findall(r"sbatch call: (sbatch .*)", output):
        calls[rule_of(re.search(r"--comment '?(rule_\S+?)'?(?:\s|$)", line)[1])].append(line.split(" --wrap=")[0])
    return calls


def sacct_jobs(uuid: str) -> list[dict[str, str]]:
    """SLURM's accounting records of the run's jobs (the executor names every job after the run ID)."""
    fields = ["JobID", "JobName", "Comment", "State", "AllocTRES"]
    out = subprocess.run(["sacct", "-X", "-P", "-n", "--name", uuid, "-S", "now-1days",
                          "-o", ",".join(f"{f}%300" for f in fields)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]


def rule_of(comment: str) -> str:
    """'rule_train_wildcards_aligned_add3_ground_truth-s1' -> 'train' (the plugin's --comment)."""
    return re.fullmatch(r"rule_([a-z_]+?)(?:_wildcards_.*)?", comment)[1]


def test_smoke_study_succeeds_on_slurm(slurm_run):
    assert slurm_run.rc == 0, f"rc {slurm_run.rc} after {slurm_run.seconds:.0f} s; log: {slurm_run.logfile}\n" \
                              + slurm_run.log[-5000:]
    assert slurm_run.uuid, "the SLURM executor did not start"
    for name in ("summary.parquet", "passk.png", "summary.md"):
        assert (slurm_run.workdir / "results/analysis" / name).stat().st_size > 0
    print(f"SLURM smoke run: {slurm_run.seconds:.0f} s")


def test_every_job_ran_as_a_completed_slurm_job(slurm_run):
    assert slurm_run.rc == 0, f"see test_smoke_study_succeeds_on_slurm; log: {slurm_run.logfile}"
    planned = job_stats(slurm_run.log)
    planned.pop("all")  # the target rule has no command: Snakemake finishes it itself
    assert planned == {"prepare": 4, "pretrain": 3, "probe_shard": 6, "probe": 3, "train": 6, "evaluate": 3,
                       "analyze": 1}
    # the localrules run on the submit host; everything else is a SLURM job
    queued = {rule: n for rule, n in planned.items() if rule not in LOCAL_RULES}

    jobs = sacct_jobs(slurm_run.uuid)
    assert collections.Counter(rule_of(job["Comment"]) for job in jobs) == queued
    assert {job["State"] for job in jobs} == {"COMPLETED"}, jobs
    assert len({job["JobID"] for job in jobs}) == sum(queued.values())

    calls = sbatch_calls(slurm_run.log)
    assert {rule: len(lines) for rule, lines in calls.items()} == queued
    for line in (line for lines in calls.values() for line in lines):
        # the test cluster's partition and account (tests/profiles/slurm-test), and the profile's --requeue
        assert " -p debug" in line and " -A testacct" in line and " --requeue" in line, line


def test_gpu_rules_asked_for_gpus(slurm_run):
    assert slurm_run.rc == 0, f"see test_smoke_study_succeeds_on_slurm; log: {slurm_run.logfile}"
    for rule, lines in sbatch_calls(slurm_run.log).items():
        for line in lines:
            if rule in GPU_RULES:
                assert "--gpus=1" in line and "--cpus-per-gpu=1" in line, line
            else:
                assert "--gpus" not in line and "--gres" not in line and "--cpus-per-task=1" in line, line
    # what SLURM allocated: one of the two fake GPUs for each GPU job, none for the others
    for job in sacct_jobs(slurm_run.uuid):
        gpus = re.search(r"gres/gpu=(\d+)", job["AllocTRES"])
        assert (int(gpus[1]) if gpus else 0) == (rule_of(job["Comment"]) in GPU_RULES), job


def test_training_ran_two_processes_through_the_launcher(slurm_run):
    assert slurm_run.rc == 0, f"see test_smoke_study_succeeds_on_slurm; log: {slurm_run.logfile}"
    manifests = sorted(slurm_run.workdir.glob("results/train/*/*/*/model/mtarl_manifest.json"))
    assert len(manifests) == 6  # 3 cells x 2 variants x 1 seed
    for path in manifests:
        precision = yaml.safe_load(path.read_text())["precision"]  # JSON is YAML
        assert (precision["processes"], precision["distributed_type"]) == (2, "MULTI_CPU"), path
        variant, _ = mtarl_config.parse_run(path.parts[-3])  # smoke: batch_seeds, one job (and log) per variant
        log = slurm_run.workdir / "logs/train" / path.parts[-5] / path.parts[-4] / f"{variant}.log"
        assert "train: launching torchrun --standalone --nproc_per_node 2 -m mtarl.cli train" in log.read_text()


def test_outputs_match_a_local_run(slurm_run, local_run):
    assert slurm_run.rc == 0, f"see test_smoke_study_succeeds_on_slurm; log: {slurm_run.logfile}"
    config = mtarl_config.load(REPO / "config/config.yaml", REPO / "config/smoke.yaml")
    expected = {(model, task, variant, seed, benchmark)
                for model, task in mtarl_config.cells(config)
                for variant in config["train"]["variants"] for seed in config["seeds"]
                for benchmark in mtarl_config.benchmarks(config, task)}
    summary = pl.read_parquet(slurm_run.workdir / "results/analysis/summary.parquet")
    rows = summary.select("model", "task", "variant", "seed", "benchmark").rows()
    assert len(rows) == len(expected) and set(rows) == expected

    compared = 0
    for pattern in DETERMINISTIC:
        local_files = sorted(local_run.glob(pattern))
        assert local_files, pattern
        assert len(local_files) == len(list(slurm_run.workdir.glob(pattern))), pattern
        for local_file in local_files:
            on_slurm = pl.read_parquet(slurm_run.workdir / local_file.relative_to(local_run))
            assert on_slurm.equals(pl.read_parquet(local_file)), local_file.relative_to(local_run)
            compared += 1
    assert compared == 4 + 3 + 3 + 3  # data splits, pretraining curves, probe samples and pass@k per cell
