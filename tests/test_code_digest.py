"""mtarl.code_digest: the modules each stage imports, found statically, and the digest that reruns its jobs."""

from __future__ import annotations

import shutil
import subprocess
import sys

from mtarl.code_digest import stage_digest, stage_modules


def write(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_closure_follows_every_import_form(tmp_path):
    """Absolute, from-package, relative and in-function imports; parent packages; names that are not modules."""
    write(tmp_path / "mtarl", {
        "__init__.py": "",
        "cli.py": "import json\n",
        "train.py": "from mtarl import io\nfrom mtarl.tasks import Verdict\n\ndef f():\n    from .rewards import r\n",
        "io.py": "",
        "rewards.py": "import mtarl.tasks.math\n",
        "tasks/__init__.py": "Verdict = 1\n",
        "tasks/math.py": "from ..io import write\n",
        "unused.py": "",
        "probe.py": "from mtarl import io\n",
    })
    names = lambda stage: set(stage_modules(tmp_path, stage))  # noqa: E731
    assert names("train") == {"mtarl", "mtarl.cli", "mtarl.train", "mtarl.io", "mtarl.rewards", "mtarl.tasks",
                              "mtarl.tasks.math"}
    assert names("probe") == {"mtarl", "mtarl.cli", "mtarl.probe", "mtarl.io"}


def test_real_stages_import_what_they_run(repo):
    src = repo / "src"
    train, probe_shard = stage_modules(src, "train"), stage_modules(src, "probe_shard")
    assert {"mtarl.rewards", "mtarl.rl", "mtarl.train", "mtarl.tasks.math", "mtarl.gpu_slots"} <= set(train)
    # the reward functions are the training's; probes sample and verify without them
    assert "mtarl.rewards" not in probe_shard and "mtarl.rewards" not in stage_modules(src, "evaluate")
    assert {"mtarl.sampling", "mtarl.contamination", "mtarl.tasks.synlogic.grids"} <= set(probe_shard)
    # pretraining code runs in the pretrain stage only
    others = ("prepare", "probe_shard", "probe", "train", "evaluate", "analyze")
    assert all("mtarl.pretrain" not in stage_modules(src, stage) for stage in others)


def test_digest_changes_exactly_with_the_stage_code(repo, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(repo / "src/mtarl", src / "mtarl", ignore=shutil.ignore_patterns("__pycache__"))
    stages = ("prepare", "pretrain", "probe_shard", "train", "evaluate")
    before = {stage: stage_digest(src, stage) for stage in stages}
    assert before == {stage: stage_digest(repo / "src", stage) for stage in stages}, "the digest depends on the path"
    rewards = src / "mtarl/rewards.py"
    rewards.write_text(rewards.read_text() + "\n# edited\n")
    after = {stage: stage_digest(src, stage) for stage in stages}
    assert [stage for stage in stages if after[stage] != before[stage]] == ["train"]


def test_digest_needs_no_package_install(repo):
    """The workflow computes it from src/ with a bare interpreter: nothing heavy is imported."""
    code = ("import sys; sys.path.insert(0, 'src'); from mtarl.code_digest import stage_digest; "
            "stage_digest('src', 'train'); from mtarl import config; "
            "heavy = {'torch', 'transformers', 'trl', 'polars', 'datasets'} & set(sys.modules); print(sorted(heavy))")
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
