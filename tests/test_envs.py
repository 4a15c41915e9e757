"""envs/ is the single source of the environments: every package pinned exactly, and every dependency declared by
the package (pyproject.toml) pinned there."""

import re
import tomllib


def pins(path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{path.name}: {line!r} is not pinned with =="
            found[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return found


def test_cpu_environment_pins_every_dependency(repo):
    cpu = pins(repo / "envs/cpu.txt")
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=! ]", requirement)[0]).lower()
        assert name in cpu, f"{name} (pyproject.toml) is not pinned in envs/cpu.txt"
    assert cpu["torch"] == "2.13.0" and cpu["trl"] == "1.16.0" and cpu["snakemake"] == "9.27.1"


def test_gpu_environment_is_pinned_and_within_trl_vllm_range(repo):
    gpu = pins(repo / "envs/gpu.txt")
    major, minor, _ = (int(x) for x in gpu["vllm"].split("."))
    assert (0, 22) <= (major, minor) <= (0, 31), "TRL 1.16 supports vllm >=0.22.0,<=0.31.0"
    cpu = pins(repo / "envs/cpu.txt")
    assert gpu["trl"] == cpu["trl"] and gpu["torch"] == cpu["torch"]


def test_gpu_lock_is_made_from_its_top_level_requirements(repo):
    """envs/gpu.txt is the full lock of envs/gpu.in (make lock-gpu): each top-level pin is kept, and the lock holds
    every dependency, torch and its CUDA libraries included."""
    lock = pins(repo / "envs/gpu.txt")
    for name, version in pins(repo / "envs/gpu.in").items():
        assert lock.get(name) == version, f"{name}=={version} (envs/gpu.in) is not in the lock; run make lock-gpu"
    assert {"torch", "transformers", "accelerate", "datasets", "numpy", "deepspeed"} <= set(lock)
    assert any(name.startswith("nvidia-") for name in lock), "the lock has no CUDA libraries"


def conda_pip_pins(path) -> dict[str, str]:
    import yaml

    spec = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    found = {}
    for line in pip:
        if line.startswith("--"):
            continue
        name, _, version = line.partition("==")
        found[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return found


def test_conda_environments_match_the_pinned_lists(repo):
    for kind in ("cpu", "gpu"):
        assert conda_pip_pins(repo / f"envs/{kind}.yaml") == pins(repo / f"envs/{kind}.txt"), kind


def test_every_rule_names_its_conda_environment_and_container(repo):
    for rule_file in (repo / "workflow/rules").glob("*.smk"):
        text = rule_file.read_text()
        for rule in re.findall(r"^rule (\w+):", text, re.MULTILINE):
            body = text.split(f"rule {rule}:")[1].split("\nrule ")[0]
            assert "conda:" in body and "container:" in body, f"rule {rule} lacks conda: or container:"
