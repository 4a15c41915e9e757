"""The smoke study with every rule run in the project's CPU image, through Snakemake's real `--sdm apptainer` path.

    MTARL_CONTAINER_TESTS=1 pytest tests/test_containers.py      # as root; opt-in: an image build takes minutes

Apptainer cannot be installed on the project's machines, so `apptainer` is a TEST STAND-IN here:
tests/apptainer-podman-shim, put on PATH for this run only, runs each job with rootful podman. What is real:
Snakemake's apptainer code path (version check, pull, exec command), the image built from
containers/cpu.Containerfile, and the rules' commands running in it. What is not: Apptainer itself, .sif files,
--nv (see the shim's header). The module fixture runs infra/setup-podman.sh (podman fixes, debootstrap base
image), builds localhost/mtarl-cpu:test FROM that base with the CPU torch wheel as build input (podman's layer
cache reuses what did not change), and runs the smoke study with the image URIs overridden by a config file.
Measured on the 2-core machine: setup 66 s the first time, first build about 2 min, run 2.5-4 min.

That the jobs ran in the image, not on the host, is checked two ways that do not rely on the stand-in's word:
a host `mtarl` that fails is first on PATH (the image's PATH finds /opt/mtarl/bin/mtarl instead), and podman's
own event log lists one container started from the image per job.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# Register the marker in pyproject.toml: markers = [..., "container: ... (MTARL_CONTAINER_TESTS=1)"]
pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(os.environ.get("MTARL_CONTAINER_TESTS") != "1",
                       reason="builds a container image (minutes): set MTARL_CONTAINER_TESTS=1 to run"),
]

BASE = "localhost/bookworm-minbase:latest"
IMAGE = "localhost/mtarl-cpu:test"
# Directory holding torch-2.13.0+cpu-cp311-*.whl, the image's torch (a build input, see the Containerfile).
WHEELS = Path(os.environ.get("MTARL_TORCH_WHEELS", "/opt/wheels"))
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUN_LIMIT_S = 900
HOST_SENTINEL = "mtarl was called on the host"


def podman(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> SimpleNamespace:
    """localhost/mtarl-cpu:test, built from containers/cpu.Containerfile (podman's layer cache makes a rebuild of
    an unchanged tree take about a second, and a changed src/ about 20 s)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("rootful podman needs root and apt-get")
    if not list(WHEELS.glob("torch-2.13.0+cpu-cp311-*.whl")):
        pytest.skip(f"no CPU torch wheel in {WHEELS} (set MTARL_TORCH_WHEELS)")
    setup = subprocess.run(["bash", str(REPO / "infra/setup-podman.sh"), BASE], capture_output=True, text=True,
                           timeout=900)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    # the project's image command (make images), for the CPU image only; no Apptainer here, so no .sif
    command = ["bash", str(REPO / "containers/build-images.sh"), "--only", "cpu", "--tag", IMAGE.rpartition(":")[2],
               "--base", BASE, "--torch-wheels", str(WHEELS), "--out", str(Path(tempfile.mkdtemp()))]
    if CA_BUNDLE.is_file():  # pip behind the TLS-intercepting proxy
        command += ["--ca", str(CA_BUNDLE)]
    started = time.monotonic()
    build = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    build_seconds = time.monotonic() - started
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"image build: {build_seconds:.0f} s")
    return SimpleNamespace(ref=IMAGE, build_seconds=build_seconds)


@pytest.fixture(scope="module")
def container_run(image, tmp_path_factory) -> SimpleNamespace:
    """The smoke study with --sdm apptainer, the stand-in as `apptainer`, and the images set to the test image."""
    base = tmp_path_factory.mktemp("containers")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    shutil.copy(REPO / "tests/apptainer-podman-shim", bin_dir / "apptainer")
    # A job that ran on the host instead of in the image would find this `mtarl` first, and fail.
    (bin_dir / "mtarl").write_text(f"#!/bin/sh\necho '{HOST_SENTINEL}' >&2\nexit 97\n")
    for tool in ("apptainer", "mtarl"):
        (bin_dir / tool).chmod(0o755)
    # The smoke study runs every stage on CPU; gpu is set to the same image so that nothing is pulled.
    images = {"images": {"cpu": f"docker://{image.ref}", "gpu": f"docker://{image.ref}"}}
    (base / "images.yaml").write_text(yaml.safe_dump(images))

    workdir = base / "run"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.monotonic()
    result = subprocess.run(
        ["timeout", "-s", "KILL", str(RUN_LIMIT_S), sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
         "-d", str(workdir), "--cores", "2", "--configfile", str(REPO / "config/smoke.yaml"),
         str(base / "images.yaml"), "--sdm", "apptainer"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seconds = time.monotonic() - started
    print(f"smoke study in containers: {seconds:.0f} s")
    (base / "snakemake.log").write_text(result.stdout)
    events = podman("events", "--stream=false", "--since", since, "--filter", "event=start",
                    "--format", "{{.Image}}").stdout.split()
    return SimpleNamespace(rc=result.returncode, log=result.stdout, logfile=base / "snakemake.log",
                           workdir=workdir, seconds=seconds, started_images=events)


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table: jobs per rule."""
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m[1] != "total"}


def test_image_has_the_pinned_environment(image):
    script = ("import sys, torch, trl, transformers, mtarl; "
              "print(sys.version.split()[0], torch.__version__, trl.__version__, transformers.__version__)")
    result = podman("run", "--rm", image.ref, "python", "-c", script)
    assert result.returncode == 0, result.stderr
    python, torch, trl, transformers = result.stdout.split()
    pins = dict(line.split("==") for line in (REPO / "envs/cpu.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert python.startswith("3.11.")
    assert torch == "2.13.0+cpu" and trl == pins["trl"] and transformers == pins["transformers"]


def test_smoke_study_runs_in_the_image(container_run):
    assert container_run.rc == 0, f"rc {container_run.rc}; log: {container_run.logfile}\n" + container_run.log[-5000:]
    assert f"docker://{IMAGE}" in container_run.log  # Snakemake pulled (here: found) the test image
    summary = pl.read_parquet(container_run.workdir / "results/analysis/summary.parquet")
    assert summary.height == 6  # 3 cells x (ground_truth, one_shot) x seed 1
    assert (container_run.workdir / "results/analysis/passk.png").read_bytes()[:4] == b"\x89PNG"


def test_every_job_ran_in_a_container(container_run):
    assert container_run.rc == 0, f"see test_smoke_study_runs_in_the_image; log: {container_run.logfile}"
    jobs = job_stats(container_run.log)
    jobs.pop("all")  # no command: Snakemake finishes it itself
    # podman's own record: one container from the test image per job
    assert container_run.started_images.count(IMAGE) == sum(jobs.values()) == 39
    # none of the commands reached the failing host `mtarl` (the image's PATH has its own)
    for log in (container_run.workdir / "logs").rglob("*.log"):
        assert HOST_SENTINEL not in log.read_text(errors="replace"), log
