"""Shared fixtures: the repository, problem tables, and tiny models built locally (no hub, no network)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# `make test` runs the suite in two processes (pytest-xdist: -n 2 --dist loadscope); each process builds its own
# session fixtures. The modules that use one of the session fixtures that take minutes (below) therefore run in one
# process, as one unit, in file order (test files that change the smoke study's files run after those that only read
# them); every other module is a unit of its own, so that its module fixtures are built once. Checked at collection.
SHARED_FIXTURE_MODULES = {
    "smoke_study": ("test_containers.py", "test_report.py", "test_slurm.py", "test_workflow.py"),
    "aligned_model_dir": ("test_train.py",),
}
UNIT_OF_MODULE = {module: fixture for fixture, modules in SHARED_FIXTURE_MODULES.items() for module in modules}
# Units started first, longest first (measured with --durations), so that no long one is left for the end.
LONG_UNITS = ("smoke_study", "test_real_smoke.py", "aligned_model_dir", "test_plan_with_snakemake_only.py",
              "test_paper_plan.py")


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, modules in SHARED_FIXTURE_MODULES.items():
            if fixture in item.fixturenames and item.path.name not in modules:
                raise pytest.UsageError(f"{item.nodeid} uses the session fixture {fixture}: add {item.path.name} to "
                                        f"SHARED_FIXTURE_MODULES[{fixture!r}] in tests/conftest.py")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist
def pytest_xdist_make_scheduler(config, log):
    """The units above. (pytest-xdist 3.8's --dist loadgroup does not group under pytest 9: it renames a test's node
    id through an attribute pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0].rsplit("/", 1)[-1]
            return UNIT_OF_MODULE.get(module, module)

        def _assign_work_unit(self, node) -> None:
            for unit in reversed(LONG_UNITS):
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
            super()._assign_work_unit(node)

    return ModuleUnits(config, log)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def add3_problems(tmp_path_factory) -> dict[str, Path]:
    """add3 train/eval splits written by the real prepare stage."""
    from mtarl import prepare

    out = tmp_path_factory.mktemp("data")
    paths = {"train": out / "train.parquet", "eval": out / "eval.parquet"}
    settings = {"source": "synthetic", "family": "add3", "n_train": 400, "n_eval": 64, "seed": 0}
    prepare.run("add3", "train", settings, str(paths["train"]))
    prepare.run("add3", "add3", settings, str(paths["eval"]))
    return paths


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory) -> Path:
    """An untrained tiny Qwen2 model with the character tokenizer, saved like a hub model."""
    from mtarl.modeling import build_tiny_model
    from mtarl.tokenizer import build_char_tokenizer

    out = tmp_path_factory.mktemp("random_model")
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, seed=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=2)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def aligned_model_dir(tmp_path_factory, add3_problems) -> Path:
    """A tiny model pretrained on add3 until its pass@16 reaches 0.6 (about 700 steps, 1-2 minutes)."""
    import torch

    from mtarl import pretrain

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("aligned")
    problems = pl.concat([pl.read_parquet(p) for p in add3_problems.values()])
    settings = {
        "mixture": {"add3": 1.0}, "format_rate": 1.0, "max_steps": 2000, "batch_size": 128,
        "learning_rate": 2e-3, "warmup_steps": 50, "eval_every": 25, "seed": 0, "architecture": {},
        "select": {"task": "add3", "k": 16, "n": 16, "n_prompts": 32, "min": 0.6, "max": 1.0, "on_miss": "error"},
    }
    sampling = {"max_new_tokens": 12, "temperature": 1.0, "top_p": 1.0, "top_k": 0}
    pretrain.run(settings, sampling, problems, str(out / "model"), str(out / "curve.parquet"))
    return out / "model"


def run_snakemake(workdir: Path, *args: str, timeout: int = 120, snakefile: Path = REPO / "Snakefile"):
    """Snakemake on the workflow, from the test's environment (its ``mtarl`` on PATH), in ``workdir``."""
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """The whole smoke study run once for the session: (working directory, the run's CompletedProcess).
    Tests that change its files run after the ones that only read them (test files run in name order)."""
    workdir = tmp_path_factory.mktemp("smoke")
    result = run_snakemake(workdir, "--cores", "2", "--configfile", str(REPO / "config/smoke.yaml"), timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, result
