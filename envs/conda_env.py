"""Write envs/<kind>.yaml, the conda environment of a rule (snakemake --sdm conda), from envs/<kind>.txt.

Run: ``python envs/conda_env.py cpu gpu`` (``make conda-envs``). envs/<kind>.txt stays the single source;
tests/test_envs.py fails if a yaml file drifts from it.
"""

import sys
from pathlib import Path

ENVS = Path(__file__).resolve().parent
HEADERS = {
    "cpu": "Conda environment of every stage of the miniature and the CPU stages of the paper study",
    "gpu": "Conda environment of probe_shard/train/evaluate of the paper study on GPUs",
}
# pip options the environment needs: the CPU build of torch lives on PyTorch's own index.
PIP_OPTIONS = {"cpu": ["--extra-index-url https://download.pytorch.org/whl/cpu"], "gpu": []}


def pinned(kind: str) -> list[str]:
    lines = (ENVS / f"{kind}.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.split("#")[0].strip()]


def conda_yaml(kind: str) -> str:
    pip = [*PIP_OPTIONS[kind], *pinned(kind)]
    return "\n".join([
        f"# {HEADERS[kind]},",
        "# for clusters that run `snakemake --sdm conda`. Made from envs/" + kind + ".txt by envs/conda_env.py, the",
        "# single source; tests/test_envs.py fails if the two drift apart.",
        f"name: mtarl-{kind}",
        "channels: [conda-forge]",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *(f"      - {line}" for line in pip),
        "",
    ])


if __name__ == "__main__":
    for kind in sys.argv[1:] or ["cpu", "gpu"]:
        (ENVS / f"{kind}.yaml").write_text(conda_yaml(kind))
