"""How one training run starts its processes: one per GPU under ``accelerate launch``, or ``torchrun`` on CPU.

``launcher(settings)`` is the command prefix the train rule passes as ``mtarl train --launch``; ``mtarl train``
then prepares its work directory once and re-runs itself under the launcher (``relaunch``), each process seeing
``LOCAL_RANK`` (``inside_launch``). The same command runs in a SLURM job step (all of the job's GPUs on one node) and
on a local GPU box (``MTARL_LOCAL_GPUS``: the parent holds the GPU slots, the processes inherit them).

| settings                          | launcher                                                                  |
|-----------------------------------|---------------------------------------------------------------------------|
| one process, engine none          | none: ``mtarl train`` runs in place                                       |
| cuda, ``engine`` fsdp2 or zero3   | ``accelerate launch --config_file workflow/accelerate/<engine>.yaml ...`` |
| cuda, engine none, N > 1          | ``accelerate launch --multi_gpu ...`` (DDP; fits small models only)       |
| cpu, N > 1                        | ``torchrun --standalone --nproc_per_node N`` (gloo; accelerate --cpu starts one) |

Ports: ``--main_process_port 0`` and ``--standalone`` let the OS pick a free rendezvous port, so two jobs on one
node never collide (accelerate's default 29500 would).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ACCELERATE_CONFIGS = Path(__file__).resolve().parents[2] / "workflow" / "accelerate"
ENGINES = ("none", "fsdp2", "zero3")


def launcher(settings: dict) -> str:
    """The launcher prefix of a run with ``settings`` (``processes``, ``engine``, ``device``, ``mixed_precision``)."""
    processes, engine = settings.get("processes", 1), settings.get("engine", "none")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if settings["device"] == "cpu":
        if engine != "none":
            raise ValueError(f"engine {engine!r} needs GPUs; on CPU use engine 'none'")
        return "" if processes == 1 else f"torchrun --standalone --nproc_per_node {processes}"
    if processes == 1 and engine == "none":
        return ""
    where = f"--config_file {ACCELERATE_CONFIGS / (engine + '.yaml')}" if engine != "none" else "--multi_gpu"
    return (f"accelerate launch {where} --num_processes {processes} --num_machines 1 --main_process_port 0 "
            f"--mixed_precision {settings.get('mixed_precision', 'no')}")


def inside_launch() -> bool:
    """Whether this process was started by a launcher (torchrun and accelerate set LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ


def rank_command(prefix: str, argv: list[str]) -> list[str]:
    """The launcher command that runs ``mtarl <argv>`` in every process (``--launch`` removed from ``argv``)."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--launch":
            skip = True
        elif not arg.startswith("--launch="):
            rest.append(arg)
    return [*shlex.split(prefix), "-m", "mtarl.cli", *rest]


def relaunch(prefix: str, argv: list[str] | None = None) -> None:
    """Run this ``mtarl`` command again under the launcher ``prefix``; exit with its status if it fails."""
    command = rank_command(prefix, sys.argv[1:] if argv is None else argv)
    print("train: launching", shlex.join(command), flush=True)
    # Which devices the processes will share (SLURM sets this for the job step; whether a step sees all of the
    # job's GPUs by default is site configuration: check it here in the job's log).
    print(f"train: CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}", flush=True)
    status = subprocess.call(command)
    if status:
        sys.exit(status)
