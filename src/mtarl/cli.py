"""The ``mtarl`` command: one subcommand per stage of the study.

Run ``mtarl <stage> --help``. Every stage takes ``--settings`` (the JSON of its config section, as the Snakemake rule
passes it, so that a changed setting reruns exactly the jobs that use it), ``--threads`` and its input/output paths.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

STAGES = ("prepare", "pretrain", "probe", "train", "evaluate", "analyze")


def settings_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--settings is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--settings must be a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtarl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    for stage in STAGES:
        module = importlib.import_module(f"mtarl.{stage}")
        p = sub.add_parser(stage, help=module.__doc__.splitlines()[0], description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--settings", type=settings_arg, default={}, help="JSON object of the stage's settings")
        p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
        module.add_arguments(p)
        p.set_defaults(module=module)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    args.module.main(args)


if __name__ == "__main__":
    sys.exit(main())
