"""The workflow plans with Snakemake alone: a login node with only `snakemake` and the SLURM executor plugin (the
usual `--sdm apptainer` setup, no torch, no installed mtarl) dry-runs every configuration.

The venv is made once and kept in pytest's cache (`.pytest_cache/d/snakemake-only-venv`); pip's cache makes a new
one quick.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ("snakemake", "snakemake-executor-plugin-slurm")
CONFIGS = {"config.yaml": [], "smoke.yaml": ["--configfile", "config/smoke.yaml"],
           "paper.yaml": ["--configfile", "config/paper.yaml", "--replace-workflow-config"],
           "real-smoke.yaml": ["--configfile", "config/real-smoke.yaml", "--replace-workflow-config"]}


def pinned(repo: Path, name: str) -> str:
    for line in (repo / "envs/cpu.txt").read_text().splitlines():
        if line.lower().startswith(name + "=="):
            return line.strip()
    raise AssertionError(f"{name} is not pinned in envs/cpu.txt")


@pytest.fixture(scope="module")
def snakemake_only(repo, request) -> Path:
    """A venv with the pinned snakemake and SLURM plugin and nothing else of the project."""
    requirements = [pinned(repo, name) for name in PACKAGES]
    venv = request.config.cache.mkdir("snakemake-only-venv")
    stamp = venv / "installed.txt"
    if not stamp.exists() or stamp.read_text() != "\n".join(requirements):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", *requirements], check=True, timeout=600)
        stamp.write_text("\n".join(requirements))
    return venv


@pytest.mark.parametrize("config", CONFIGS)
def test_dry_run_with_snakemake_alone(repo, snakemake_only, tmp_path, config):
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{snakemake_only / 'bin'}{os.pathsep}/usr/bin:/bin"
    python = snakemake_only / "bin/python"
    bare = subprocess.run([str(python), "-c", "import mtarl"], capture_output=True, env=env)
    assert bare.returncode != 0, "the venv must not see an installed mtarl"
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/fixtures").symlink_to(repo / "tests/fixtures")  # real-smoke's datasets: ../tests/fixtures
    result = subprocess.run(
        [str(python), "-m", "snakemake", "-n", "-s", str(repo / "Snakefile"), "-d", str(tmp_path / "run"),
         *[str(repo / arg) if arg.startswith("config/") else arg for arg in CONFIGS[config]]],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "rule analyze:" in result.stdout, "the whole study is planned"
    heavy = subprocess.run([str(python), "-c", "import torch"], capture_output=True, env=env)
    assert heavy.returncode != 0, "planning must not need torch"
