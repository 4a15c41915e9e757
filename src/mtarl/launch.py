"""How one training run starts its processes: one per GPU under ``accelerate launch``, or ``torchrun`` on CPU; and,
in vLLM server mode, the ``trl vllm-serve`` process that generates its rollouts on GPUs reserved for it.

``launcher(settings)`` is the command prefix the train rule passes as ``mtarl train --launch``; ``mtarl train``
then prepares its work directory once and re-runs itself under the launcher (``relaunch``), each process seeing
``LOCAL_RANK`` (``inside_launch``). The same command runs in a SLURM job step (all of the job's GPUs on one node) and
on a local GPU box (``MTARL_LOCAL_GPUS``: the parent holds the GPU slots, the processes inherit them).

| settings                          | launcher                                                                  |
|-----------------------------------|---------------------------------------------------------------------------|
| one process, engine none          | none: ``mtarl train`` runs in place                                       |
| cuda, ``engine`` fsdp2 or zero3   | ``accelerate launch --config_file workflow/accelerate/<engine>.yaml ...`` |
| cuda, engine none, N > 1          | ``accelerate launch --multi_gpu ...`` (DDP; fits small models only)       |
| cuda, vLLM server mode, N = 1     | ``accelerate launch --num_processes 1 ...``: relaunch starts the server   |
| cpu, N > 1                        | ``torchrun --standalone --nproc_per_node N`` (gloo; accelerate --cpu starts one) |

**Server mode** (``vllm.mode: server``, ``vllm_server_gpus`` = K of the run's G GPUs; mtarl.config sets
``processes`` = G - K). ``relaunch`` splits the job's devices (``CUDA_VISIBLE_DEVICES``, else 0..G-1): the first
G - K train, the last K run ``trl vllm-serve`` with tensor parallelism K (TRL 1.16's server runs vLLM's own
``vllm serve``, whose data parallelism errors out for dense models). It waits for the server's ``/health``, runs the
training launcher, and stops the server (its whole process group) when training ends, fails or is interrupted. The
server samples with engine seed ``vllm_seed(run seed, 0)`` (``--seed``, forwarded by ``trl vllm-serve`` to
``vllm serve``): rank 0 sends each prompt once with ``n`` = num_generations and no per-request seed, so the engine's
generator decides the samples, as the colocated engines' ``LLM(seed=...)`` does in colocate mode.

**Ports.** ``relaunch`` binds three ports to port 0 at once (so the OS gives three distinct free ones) and passes them
explicitly: the torch rendezvous port (``--main_process_port``, replacing the planned ``0``), the server's HTTP port
and the NCCL weight-sync group port (``MTARL_VLLM_SERVER_PORT`` / ``MTARL_VLLM_GROUP_PORT`` for the training
processes, read by ``vllm_fields``). Two jobs on one node therefore never use the fixed defaults (29500, 8000, 51216).
A port is free when chosen and bound later (the group port only after the model loads), so another program could
take it in between: the OS hands out bind-to-0 ports in rotation, which makes that unlikely, not impossible.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ACCELERATE_CONFIGS = Path(__file__).resolve().parents[2] / "workflow" / "accelerate"
ENGINES = ("none", "fsdp2", "zero3")
# The server listens on the loopback interface only: the training processes run on the same node.
SERVER_HOST = "127.0.0.1"
SERVER_PORT_ENV, GROUP_PORT_ENV = "MTARL_VLLM_SERVER_PORT", "MTARL_VLLM_GROUP_PORT"
# Loading a 7-8B model, profiling memory and capturing CUDA graphs takes minutes; a server not up by then has failed.
SERVER_START_SECONDS = 1800.0
SERVER_STOP_SECONDS = 30.0
# How long TRL's client retries once the server answered /health here (it is up: a short wait suffices).
CLIENT_TIMEOUT_SECONDS = 120.0


def vllm_seed(run_seed: int, engine: int) -> int:
    """The seed of vLLM engine ``engine`` (colocate: TRL's ``process_index // tp``; server: 0) of a run of
    ``run_seed``: different runs seeds, different rollouts."""
    return run_seed * 100_003 + engine


def server_mode(settings: dict) -> bool:
    """Whether the run's rollouts come from a vLLM server on reserved GPUs (mtarl.config validates the pairing)."""
    return bool(settings.get("use_vllm")) and settings.get("vllm", {}).get("mode", "colocate") == "server"


def launcher(settings: dict) -> str:
    """The launcher prefix of a run with ``settings`` (``processes``, ``engine``, ``device``, ``mixed_precision``)."""
    processes, engine = settings.get("processes", 1), settings.get("engine", "none")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if settings["device"] == "cpu":
        if engine != "none":
            raise ValueError(f"engine {engine!r} needs GPUs; on CPU use engine 'none'")
        if server_mode(settings):
            raise ValueError("vLLM server mode needs GPUs (and vLLM rollouts); on CPU use_vllm is false")
        return "" if processes == 1 else f"torchrun --standalone --nproc_per_node {processes}"
    if processes == 1 and engine == "none" and not server_mode(settings):
        return ""
    if engine != "none":
        where = f"--config_file {ACCELERATE_CONFIGS / (engine + '.yaml')} "
    else:
        where = "--multi_gpu " if processes > 1 else ""
    return (f"accelerate launch {where}--num_processes {processes} --num_machines 1 --main_process_port 0 "
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


# -- ports ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ports:
    """The ports of one run: torch rendezvous, vLLM server HTTP, NCCL weight-sync group."""

    master: int
    server: int
    group: int


def free_ports(host: str = "") -> Ports:
    """Three distinct ports free now: bound to port 0 together (the OS picks), then released for their users. On
    every interface by default: the rendezvous and weight-sync stores listen beyond the loopback."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(3)]
        for sock in sockets:
            sock.bind((host, 0))
        return Ports(*(sock.getsockname()[1] for sock in sockets))


def with_master_port(command: list[str], port: int) -> list[str]:
    """``command`` with accelerate's ``--main_process_port 0`` (pick one yourself) replaced by ``port``."""
    out = list(command)
    for i, arg in enumerate(out[:-1]):
        if arg == "--main_process_port" and out[i + 1] == "0":
            out[i + 1] = str(port)
    return out


# -- server mode: devices, command, lifecycle ----------------------------------------------------------------------

def split_devices(settings: dict, visible: str | None) -> tuple[list[str], list[str]]:
    """(training devices, server devices) of a server-mode run: the first ``processes`` of the visible devices
    train, the next ``vllm_server_gpus`` serve. ``visible`` is ``CUDA_VISIBLE_DEVICES`` (unset: 0, 1, ...)."""
    train, serve = settings.get("processes", 1), settings["vllm_server_gpus"]
    devices = [d for d in (visible or "").split(",") if d] or [str(i) for i in range(train + serve)]
    if len(devices) < train + serve:
        raise RuntimeError(f"train: {train} training processes and {serve} vLLM server GPUs need {train + serve} "
                           f"GPUs, but CUDA_VISIBLE_DEVICES lists {len(devices)}: {visible}")
    return devices[:train], devices[train:train + serve]


def max_model_len(settings: dict) -> int:
    """The longest sequence a rollout can be: prompt cap (2048 if none) plus completion (as colocate's engines)."""
    return (settings.get("max_prompt_tokens") or 2048) + settings["max_completion_length"]


def server_command(settings: dict, model: str, port: int) -> list[str]:
    """``trl vllm-serve`` for a run: TRL 1.16's flags (``trl/scripts/vllm_serve.py``), the unknown ``--seed``
    forwarded as-is to ``vllm serve``. dtype stays ``auto`` (the checkpoint's), as colocate's ``LLM`` loads it."""
    gpus = settings["vllm_server_gpus"]
    vllm = settings.get("vllm", {})
    return ["trl", "vllm-serve", "--model", model, "--host", SERVER_HOST, "--port", str(port),
            "--tensor_parallel_size", str(gpus), "--data_parallel_size", "1",
            "--gpu_memory_utilization", str(vllm.get("gpu_memory_utilization", 0.9)),
            "--max_model_len", str(max_model_len(settings)),
            "--seed", str(vllm_seed(settings["seed"], 0))]


def vllm_fields(settings: dict) -> dict:
    """GRPOConfig's vLLM mode fields of a run: colocate, or the server ``relaunch`` started (its ports from the
    environment it gave the training processes)."""
    if not server_mode(settings):
        return {"vllm_mode": "colocate"}
    if SERVER_PORT_ENV not in os.environ or GROUP_PORT_ENV not in os.environ:
        raise RuntimeError("train: vllm.mode server needs the vLLM server that `mtarl train --launch` starts "
                           f"({SERVER_PORT_ENV} and {GROUP_PORT_ENV} are unset); run it with --launch")
    return {"vllm_mode": "server", "vllm_server_host": SERVER_HOST,
            "vllm_server_port": int(os.environ[SERVER_PORT_ENV]), "vllm_group_port": int(os.environ[GROUP_PORT_ENV]),
            "vllm_server_timeout": CLIENT_TIMEOUT_SECONDS}


def vllm_seeds(settings: dict, processes: int) -> list[int] | None:
    """The seeds of a run's vLLM engines, for its manifest: one per process (colocate), or the server's."""
    if not settings.get("use_vllm"):
        return None
    engines = 1 if server_mode(settings) else processes
    return [vllm_seed(settings["seed"], e) for e in range(engines)]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_healthy(process: subprocess.Popen, url: str, timeout: float, poll: float = 1.0) -> None:
    """Return once ``url`` answers 200; raise as soon as the server exits, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if process.poll() is not None:
            raise RuntimeError(f"train: the vLLM server exited with status {process.returncode} before answering "
                               f"{url} (its output is above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"train: the vLLM server did not answer {url} within {timeout:.0f} s")
        time.sleep(poll)


def stop(process: subprocess.Popen, grace: float = SERVER_STOP_SECONDS) -> None:
    """End the server and the engine processes it started (its own process group), politely first."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
    # vLLM's workers share the group; kill any left after the server itself exited.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def vllm_server(command: list[str], env: dict, url: str, timeout: float = SERVER_START_SECONDS
                ) -> Iterator[subprocess.Popen]:
    """Run the server ``command`` in its own session (so that stopping it reaches its workers and not us) until the
    block ends, however it ends; enter the block once ``url`` answers."""
    print("train: starting the vLLM server:", shlex.join(command), flush=True)
    print(f"train: vLLM server CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '(unset)')}", flush=True)
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        wait_until_healthy(process, url, timeout)
        print(f"train: vLLM server ready at {url}", flush=True)
        yield process
    finally:
        stop(process)
        print("train: vLLM server stopped", flush=True)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM (scancel, a SLURM time limit, snakemake's kill) raises SystemExit, so ``finally`` blocks stop the
    server; Python's default would end this process at once and leave the server running."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv``."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def relaunch(prefix: str, argv: list[str] | None = None) -> None:
    """Run this ``mtarl`` command again under the launcher ``prefix``, with a vLLM server beside it in server mode
    (the run's ``--settings`` and ``--model`` in ``argv`` say); exit with the launcher's status if it fails."""
    argv = sys.argv[1:] if argv is None else argv
    ports = free_ports()
    command = with_master_port(rank_command(prefix, argv), ports.master)
    settings = json.loads(option(argv, "--settings") or "{}")
    if "seeds" in settings:  # one run per job in server mode (mtarl.config: batch_seeds)
        settings = {**settings, "seed": settings["seeds"][0]}
    env = dict(os.environ)
    with terminate_as_exit():
        if not server_mode(settings):
            status = run_processes(command, env)
        else:
            train_devices, server_devices = split_devices(settings, env.get("CUDA_VISIBLE_DEVICES"))
            server_env = {**env, "CUDA_VISIBLE_DEVICES": ",".join(server_devices)}
            env.update({"CUDA_VISIBLE_DEVICES": ",".join(train_devices), SERVER_PORT_ENV: str(ports.server),
                        GROUP_PORT_ENV: str(ports.group)})
            model = option(argv, "--model")
            if not model:
                raise RuntimeError("train: vLLM server mode needs the run's --model to serve")
            server = server_command(settings, model, ports.server)
            with vllm_server(server, server_env, f"http://{SERVER_HOST}:{ports.server}/health"):
                status = run_processes(command, env)
    if status:
        sys.exit(status)


def run_processes(command: list[str], env: dict, grace: float = SERVER_STOP_SECONDS) -> int:
    """Run the training launcher; its exit status. Interrupted, it gets SIGTERM first, which torch's elastic agent
    passes on to the training processes (a bare kill would orphan them)."""
    print("train: launching", shlex.join(command), flush=True)
    # Which devices the processes will share (SLURM sets this for the job step; whether a step sees all of the
    # job's GPUs by default is site configuration: check it here in the job's log).
    print(f"train: CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '(unset)')}", flush=True)
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    except BaseException:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
