"""The ``mtarl`` command: one subcommand per stage of the study.

Run ``mtarl <stage> --help``. Every stage takes ``--settings`` (the JSON of its config section, as the Snakemake rule
passes it, so that a changed setting reruns exactly the jobs that use it), ``--threads`` and its input/output paths.
Only the chosen stage's module is imported: a job does not pay for the imports of the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

STAGES = {
    "download": "fetch a hub model or dataset at a pinned revision into resources/ (run where the network is)",
    "prepare": "write a task's train and eval problem tables",
    "pretrain": "pretrain a tiny base model and select its checkpoint by pass@k (miniature)",
    "probe_shard": "sample and verify one shard of a base model's probe on a benchmark",
    "probe": "gather probe shards: pass@k, maj@k, avg@k, contamination and the alignment verdict",
    "train": "GRPO training of one variant with TRL, resumable",
    "evaluate": "score a base or trained model on every benchmark of its task (one model load)",
    "analyze": "aggregate probes and evaluations into the summary table, figure and report",
    "plan": "print every GPU job of a configuration with its estimated peak memory per GPU; reject a misfit",
}


def settings_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--settings is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--settings must be a JSON object")
    return value


def build_parser(stage: str | None = None) -> argparse.ArgumentParser:
    """The parser of one stage (importing only its module), or of the command when ``stage`` is None."""
    parser = argparse.ArgumentParser(prog="mtarl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True, metavar="{" + ",".join(STAGES) + "}")
    for name, summary in STAGES.items():
        if stage is not None and name != stage:
            sub.add_parser(name, help=summary)
            continue
        if stage is None:
            sub.add_parser(name, help=summary)
            continue
        module = importlib.import_module(f"mtarl.{name}")
        p = sub.add_parser(name, help=summary, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--settings", type=settings_arg, default={}, help="JSON object of the stage's settings")
        p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
        p.add_argument("--gpus", type=int, default=0, help="GPUs the job needs (local slots: mtarl.gpu_slots)")
        module.add_arguments(p)
        p.set_defaults(module=module)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    stage = argv[0] if argv and argv[0] in STAGES else None
    args = build_parser(stage).parse_args(argv)
    from mtarl.gpu_slots import gpu_slots
    from mtarl.launch import inside_launch

    # A launched process inherits the GPUs its parent holds; the parent's threads are shared by its processes.
    with gpu_slots(0 if inside_launch() else args.gpus):  # before torch initialises CUDA
        if getattr(args.module, "USES_TORCH", True):  # a table-only stage skips torch's import (seconds per job)
            import torch

            torch.set_num_threads(max(1, args.threads // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
        args.module.main(args)


if __name__ == "__main__":
    sys.exit(main())
