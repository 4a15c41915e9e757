"""The GPU image builds from envs/gpu.txt and holds exactly the locked environment (no GPU needed to build it).

    MTARL_GPU_IMAGE_TEST=1 pytest tests/test_gpu_image.py      # as root; opt-in: about 6 GB of wheels from PyPI

Builds containers/gpu.Containerfile FROM the local Debian base of infra/setup-podman.sh as localhost/mtarl-gpu:test
and reads the installed versions inside it. Running vLLM in the image needs a GPU: bench/gpu_check.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE = "localhost/bookworm-minbase:latest"
IMAGE = "localhost/mtarl-gpu:test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

pytestmark = pytest.mark.skipif(os.environ.get("MTARL_GPU_IMAGE_TEST") != "1",
                                reason="downloads about 6 GB: set MTARL_GPU_IMAGE_TEST=1 to run")


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "envs/gpu.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_gpu_image_has_the_locked_environment():
    if os.geteuid() != 0 or shutil.which("podman") is None:
        pytest.skip("rootful podman needed")
    setup = subprocess.run(["bash", str(REPO / "infra/setup-podman.sh"), BASE], capture_output=True, text=True,
                           timeout=900)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    command = ["podman", "build", "-f", str(REPO / "containers/gpu.Containerfile"), "--build-arg", f"BASE={BASE}",
               "-t", IMAGE]
    if CA_BUNDLE.is_file():
        command += ["--secret", f"id=ca,src={CA_BUNDLE}"]
    started = time.monotonic()
    build = subprocess.run([*command, str(REPO)], capture_output=True, text=True, timeout=3600)
    print(f"GPU image build: {time.monotonic() - started:.0f} s")
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    script = ("import importlib.metadata as m, torch; "
              "print(*(m.version(p) for p in ('vllm', 'trl', 'torch', 'transformers', 'deepspeed', 'mtarl')), "
              "torch.version.cuda)")
    result = subprocess.run(["podman", "run", "--rm", IMAGE, "python", "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    vllm, trl, torch, transformers, deepspeed, mtarl, cuda = result.stdout.split()
    pins = locked_versions()
    assert (vllm, trl, torch, transformers) == (pins["vllm"], pins["trl"], pins["torch"], pins["transformers"])
    assert deepspeed == pins["deepspeed"], "train.engine: zero3 needs DeepSpeed in the image"
    assert cuda != "None", "torch in the GPU image must be a CUDA build"
    assert mtarl == "0.1.0"
