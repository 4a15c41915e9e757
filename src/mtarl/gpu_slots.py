"""GPU slots for local runs: give each local GPU job its own devices.

Snakemake assigns no GPU ids to local jobs (``--resources gpu=N`` only caps how many run at once), so two GPU jobs
would share device 0. With ``MTARL_LOCAL_GPUS=0,1,2,3`` set, a stage that needs GPUs takes free devices by locking
one file per device (``fcntl.flock``: released by the kernel even if the job is killed), sets
``CUDA_VISIBLE_DEVICES`` to them, and waits while none is free. Without the variable (SLURM sets
``CUDA_VISIBLE_DEVICES`` itself; CPU runs need none) nothing happens.

    MTARL_LOCAL_GPUS=0,1,2,3 snakemake --workflow-profile workflow/profiles/default --resources gpu=4 ...
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

ENV = "MTARL_LOCAL_GPUS"


def _try_lock(path: Path):
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextmanager
def gpu_slots(count: int, devices: list[str] | None = None, lock_dir: str | None = None,
              poll_seconds: float = 1.0) -> Iterator[list[str]]:
    """Hold ``count`` free devices of ``devices`` (default: ``$MTARL_LOCAL_GPUS``) and expose only them."""
    devices = devices if devices is not None else [d for d in os.environ.get(ENV, "").split(",") if d]
    if count <= 0 or not devices:
        yield []
        return
    if count > len(devices):
        raise ValueError(f"a job needs {count} GPUs but {ENV} lists only {len(devices)}: {','.join(devices)}")
    folder = Path(lock_dir or tempfile.gettempdir())
    while True:
        with ExitStack() as held:
            taken = []
            for device in devices:
                handle = _try_lock(folder / f"mtarl-gpu-{device}.lock")
                if handle is not None:
                    held.callback(handle.close)
                    taken.append(device)
                    if len(taken) == count:
                        break
            if len(taken) == count:
                previous = os.environ.get("CUDA_VISIBLE_DEVICES")
                os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(taken)
                try:
                    yield taken
                finally:
                    if previous is None:
                        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                    else:
                        os.environ["CUDA_VISIBLE_DEVICES"] = previous
                return
        time.sleep(poll_seconds)
