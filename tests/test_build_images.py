"""containers/build-images.sh (make images): what it would run, checked with --dry-run (building takes minutes and
is the opt-in tests/test_containers.py), and the configurations' default images."""

from __future__ import annotations

import os
import subprocess

import yaml

from mtarl import config as cfg


def dry_run(repo, tmp_path, apptainer_version: str | None, *args: str) -> subprocess.CompletedProcess:
    """The script's plan, with a stand-in `apptainer` printing ``apptainer_version`` on PATH (None: no apptainer)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if apptainer_version:
        (bin_dir / "apptainer").write_text(f"#!/bin/sh\necho '{apptainer_version}'\n")
        (bin_dir / "apptainer").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(["bash", str(repo / "containers/build-images.sh"), "--dry-run", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_with_apptainer_both_images_become_local_sif_files(repo, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    result = dry_run(repo, tmp_path, "apptainer version 1.3.6", "--torch-wheels", str(wheels))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    builds = [line for line in lines if line.startswith("podman build")]
    assert len(builds) == 2
    assert "-f containers/cpu.Containerfile -t localhost/mtarl-cpu:0.1.0" in builds[0]
    assert f"--build-context wheels={wheels}" in builds[0] and "--build-context" not in builds[1]
    assert not any("pip download" in line for line in lines), "the wheel is there already"
    for kind in ("cpu", "gpu"):
        assert (f"apptainer build --force resources/images/mtarl-{kind}.sif "
                f"docker-archive://resources/images/mtarl-{kind}.tar") in lines
    images = yaml.safe_load("\n".join(lines[lines.index("images:") - 2:]))["images"]
    assert images == {kind: str(repo / f"resources/images/mtarl-{kind}.sif") for kind in ("cpu", "gpu")}


def test_without_apptainer_the_podman_images_are_named(repo, tmp_path):
    """No Apptainer, or only the podman test stand-in: no .sif, the local podman image instead; the wheel is fetched."""
    for version in (None, "apptainer version 1.3.6-podman-shim"):
        result = dry_run(repo, tmp_path, version, "--only", "cpu", "--tag", "test", "--torch-wheels",
                         str(tmp_path / "none"), "--base", "localhost/bookworm-minbase:latest")
        assert result.returncode == 0, result.stderr
        assert "apptainer build" not in result.stdout
        assert f"pip download torch==2.13.0 --no-deps -d {tmp_path / 'none'}" in result.stdout
        assert "--build-arg BASE=localhost/bookworm-minbase:latest" in result.stdout
        images = yaml.safe_load(result.stdout[result.stdout.index("# Written"):])["images"]
        assert images == {"cpu": "docker://localhost/mtarl-cpu:test"}


def test_a_bad_option_stops(repo, tmp_path):
    result = dry_run(repo, tmp_path, None, "--only", "tpu")
    assert result.returncode == 2 and "--only takes cpu or gpu" in result.stderr


def test_default_images_are_local_files_or_digests(repo):
    """No configuration names an image tag that cannot be pulled: a .sif that make images builds, or a digest."""
    for name in ("config.yaml", "paper.yaml"):
        images = cfg.load(repo / "config" / name)["images"]
        for ref in images.values():
            assert ref.endswith(".sif") or "@sha256:" in ref, f"{name}: {ref}"
