"""Load and validate a study configuration, and derive the settings each job receives.

``validate(config)`` runs the JSON Schema (``workflow/schemas/config.schema.yaml``) and then the cross-field rules
that a schema cannot express, and raises one ``ConfigError`` listing every problem, each naming its key, e.g.
``config key 'train.defaults.max_steps': 'ten' is not of type 'integer'``. The Snakefile calls it before planning
any job; tests call it directly.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
# A hub repository id: one "org/name" (a local path is absolute, starts with "." or "~", exists, or names a file).
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
LOCAL_FILE_SUFFIXES = (".parquet", ".jsonl", ".json")


class ConfigError(ValueError):
    pass


# The evaluate job of a whole cell (its base model and every trained run) under ``batch_evaluation``.
CELL_JOB = "cell"


def load(path: str | Path, *overrides: str | Path) -> dict:
    """Read a config file, deep-merging each override file over it as ``snakemake --configfile`` does."""
    with open(path) as fh:
        config = yaml.safe_load(fh)
    for override in overrides:
        with open(override) as fh:
            config = merge(config, yaml.safe_load(fh) or {})
    return config


def merge(base: dict, override: dict) -> dict:
    """Recursive dict update (Snakemake's ``update_config``): mappings merge, other values replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def key_name(path) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def describe(error: ValidationError) -> list[str]:
    """One message per offending key: unknown and missing keys are named as keys, with a suggestion."""
    where = key_name(error.absolute_path)
    prefix = "" if where == "(top level)" else where + "."
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        messages = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
            messages.append(f"config key '{prefix}{key}' is not a known key{hint}")
        return messages
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return [f"config key '{prefix}{missing}' is missing"]
    if error.validator == "propertyNames":
        return [f"config key '{prefix}{error.instance}': {error.message}"]
    return [f"config key '{where}': {error.message}"]


def schema_errors(config: dict, schema_path: Path = SCHEMA_PATH) -> list[str]:
    schema = load(schema_path)
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    return [m for e in errors for m in describe(e)]


def scratchpad_length_errors(config: dict, name: str, pre: dict, synthetic: set[str]) -> list[str]:
    """A model that writes scratchpads must be sampled with room for them: the longest completion of its mixture
    (largest operands; one token per character and tag, plus EOS) within ``sampling.max_new_tokens``."""
    if not pre.get("scratchpad_rate"):
        return []
    from mtarl.tasks import arith

    longest = 0
    for task in pre["mixture"]:
        if task in synthetic and config["tasks"][task].get("family") in arith.FAMILIES:
            family = arith.FAMILIES[config["tasks"][task]["family"]]
            text = arith.reference_completion(family.answer(family.high, family.high), True,
                                              family.scratchpad(family.high, family.high))
            longest = max(longest, len(text) - sum(len(t) - 1 for t in ("<think>", "</think>", "<answer>",
                                                                        "</answer>")) + 1)
    if longest > config["sampling"]["max_new_tokens"]:
        return [f"config key 'sampling.max_new_tokens': {config['sampling']['max_new_tokens']} tokens cut the "
                f"scratchpad completions of model '{name}' (up to {longest} tokens with EOS); raise it"]
    return []


def cross_field_errors(config: dict) -> list[str]:
    errors = []
    tasks = config["tasks"]
    synthetic = {t for t, spec in tasks.items() if spec["source"] == "synthetic"}
    for name, model in config["models"].items():
        pre = model.get("pretrain")
        if model["source"] != "pretrain" or pre is None:
            continue
        for task in pre["mixture"]:
            if task not in synthetic:
                errors.append(f"config key 'models.{name}.pretrain.mixture.{task}': no synthetic task '{task}' in "
                              "'tasks' (pretraining generates its text)")
        select = pre["select"]
        if select["task"] not in synthetic:
            errors.append(f"config key 'models.{name}.pretrain.select.task': no synthetic task '{select['task']}' "
                          "in 'tasks'")
        if select["n"] < select["k"]:
            errors.append(f"config key 'models.{name}.pretrain.select.n': {select['n']} samples cannot estimate "
                          f"pass@{select['k']}; set n >= k")
        if select["min"] > select["max"]:
            errors.append(f"config key 'models.{name}.pretrain.select.min': {select['min']} > max {select['max']}")
        if config["sampling"]["chat_template"]:
            errors.append(f"config key 'sampling.chat_template': model '{name}' is pretrained here and its "
                          "tokenizer has no chat template; set it to false")
        errors += scratchpad_length_errors(config, name, pre, synthetic)
    errors += pinning_errors(config)
    for name, model in config["models"].items():
        for task in model.get("tasks", []):
            if task not in tasks:
                errors.append(f"config key 'models.{name}.tasks': no task '{task}' in 'tasks' (defined: "
                              f"{', '.join(tasks)})")
        if model["source"] != "pretrain" and config["sampling"]["chat_template"] and not model.get("chat"):
            errors.append(f"config key 'models.{name}.chat' is missing: sampling.chat_template is on, so the model's "
                          "pinned chat settings must be named (qwen2.5, llama3.1 or smollm2)")
    for variant in config["train"]["variants"]:
        if variant in ("base", CELL_JOB):
            errors.append(f"config key 'train.variants': '{variant}' names an evaluate job (the base model, or a "
                          "whole cell under batch_evaluation); give the variant another name")
            continue
        if variant not in config["train"]["variant_settings"]:
            known = ", ".join(config["train"]["variant_settings"])
            errors.append(f"config key 'train.variants': unknown variant '{variant}' (define it under "
                          f"'train.variant_settings'; defined: {known})")
            continue
        errors += variant_errors(config, variant)
    errors += device_errors(config)
    errors += vllm_server_errors(config)
    probe = config["probe"]
    if probe["alignment"]["k"] > probe["n"]:
        errors.append(f"config key 'probe.alignment.k': {probe['alignment']['k']} exceeds probe.n = {probe['n']}")
    check = probe["alignment"]
    if probe["contamination"]["enabled"]:
        if check["rouge_l_threshold"] is None and check["em_threshold"] is None:
            errors.append("config key 'probe.alignment.rouge_l_threshold': set it or em_threshold, since "
                          "probe.contamination is enabled")
        if check["contamination_ratio"] not in probe["contamination"]["ratios"]:
            errors.append(f"config key 'probe.alignment.contamination_ratio': {check['contamination_ratio']} is not "
                          "one of probe.contamination.ratios")
    known = {b for task in config["tasks"] for b in benchmarks(config, task)}
    for name in sorted(set(probe.get("benchmark_shards", {})) - known):
        errors.append(f"config key 'probe.benchmark_shards.{name}': no task has a benchmark {name!r} "
                      f"(benchmarks: {', '.join(sorted(known))})")
    return errors


def device_errors(config: dict) -> list[str]:
    """Contradictory device settings. ``train.defaults.device`` picks every GPU stage's image and environment
    (workflow/rules/common.smk: stage_kind), so vLLM (sampling or rollouts) needs it to be cuda, and no variant may
    train on another device than the defaults."""
    errors, device = [], config["train"]["defaults"]["device"]
    if config["sampling"]["backend"] == "vllm" and device != "cuda":
        errors.append(f"config key 'sampling.backend': 'vllm' needs a GPU, but train.defaults.device is {device!r} "
                      "(the stages would run in the CPU image); set device: cuda or backend: hf")
    if config["train"]["defaults"]["use_vllm"] and device != "cuda":
        errors.append(f"config key 'train.defaults.use_vllm': vLLM rollouts need device: cuda, not {device!r}")
    for name, overrides in config["train"]["variant_settings"].items():
        merged = merge(config["train"]["defaults"], overrides)
        if merged["device"] != device:
            errors.append(f"config key 'train.variant_settings.{name}.device': {merged['device']!r} differs from "
                          f"train.defaults.device {device!r}, which picks the stages' image; set it there")
        elif merged["use_vllm"] and device != "cuda":
            errors.append(f"config key 'train.variant_settings.{name}.use_vllm': vLLM rollouts need device: cuda")
    return errors


def server_gpus(config: dict) -> int:
    """GPUs of each training run reserved for its vLLM server (``train.vllm_server_gpus``; 0: colocate)."""
    return config["train"].get("vllm_server_gpus", 0)


def training_processes(config: dict) -> int:
    """Training processes of each run: one per GPU that does not serve vLLM."""
    return config["train"].get("gpus_per_run", 1) - server_gpus(config)


def vllm_server_errors(config: dict) -> list[str]:
    """vLLM server mode (``vllm.mode: server``) runs on ``train.vllm_server_gpus`` GPUs of each run, beside at least
    one training GPU: the mode and the reservation come together, for every variant (the reservation is the run's
    layout, not a variant's), and need vLLM rollouts on CUDA."""
    errors, reserved, gpus = [], server_gpus(config), config["train"].get("gpus_per_run", 1)
    if reserved and reserved >= gpus:
        errors.append(f"config key 'train.vllm_server_gpus': {reserved} server GPUs leave none of "
                      f"train.gpus_per_run = {gpus} to train; reserve fewer or raise gpus_per_run")
    if reserved and config.get("batch_seeds", False) and len(config["seeds"]) > 1:
        errors.append("config key 'batch_seeds': a job's vLLM server serves one run's seed (train.vllm_server_gpus "
                      f"{reserved}), so server mode trains one seed per job; set batch_seeds: false")
    defaults = config["train"]["defaults"]
    for name, overrides in config["train"]["variant_settings"].items():
        merged = merge(defaults, overrides)
        vllm = merged.get("vllm", {})
        where = ("train.variant_settings." + name) if "mode" in overrides.get("vllm", {}) else "train.defaults"
        mode = vllm.get("mode", "colocate")
        if mode == "colocate":
            if reserved:
                errors.append(f"config key '{where}.vllm.mode': colocate, but train.vllm_server_gpus reserves "
                              f"{reserved} GPU{'s' * (reserved > 1)} for a vLLM server; set mode: server or "
                              "vllm_server_gpus: 0")
            continue
        if not reserved:
            errors.append(f"config key '{where}.vllm.mode': server mode needs GPUs for the server; set "
                          "train.vllm_server_gpus (at least 1, fewer than train.gpus_per_run)")
        if not merged["use_vllm"] or merged["device"] != "cuda":
            errors.append(f"config key '{where}.vllm.mode': server mode serves vLLM rollouts on GPUs; variant "
                          f"'{name}' has use_vllm {merged['use_vllm']} and device {merged['device']!r} (needs true "
                          "and cuda)")
        if vllm.get("sleep_mode", False):
            errors.append(f"config key '{where}.vllm.sleep_mode': sleep mode frees a colocated engine's memory "
                          "during training; a server keeps its GPUs, so set it false in server mode")
    return list(dict.fromkeys(errors))  # a defaults-level problem is found once per variant: report it once


def history_epoch_errors(config: dict, source: str) -> list[str]:
    """Historical variance needs each candidate in several epochs of the history run: at least 2 on every task."""
    settings = merge(config["train"]["defaults"], config["train"]["variant_settings"][source])
    key = f"config key 'train.variant_settings.{source}.train_subset'"
    visits = settings["max_steps"] // settings["steps_per_generation"] * settings["prompts_per_step"]
    errors = []
    for task, spec in config["tasks"].items():
        rows = settings["train_subset"]
        if spec["source"] == "synthetic":
            rows = min(rows or spec["n_train"], spec["n_train"])
        elif rows is None:
            errors.append(f"{key}: one-shot selection by historical variance needs a candidate subset small enough "
                          f"to visit for several epochs (task {task!r} trains on a whole dataset); set it, e.g. "
                          "1209 (One-Shot-RLVR's DSR-sub)")
            continue
        if visits < 2 * rows:
            errors.append(f"{key}: {rows} problems of task {task!r} get {visits / rows:.1f} epochs in "
                          f"{settings['max_steps']} steps; historical variance needs at least 2")
    return errors


def pinning_errors(config: dict) -> list[str]:
    """Every hub model and dataset names the revision it is fetched at; every dataset names where it is."""
    errors = []
    for name, model in config["models"].items():
        if model["source"] == "hub" and is_hub_id(model["path"]) and not model.get("revision"):
            errors.append(f"config key 'models.{name}.revision' is missing: {model['path']!r} is a hub id (no such "
                          "local directory), fetched at a pinned revision (a commit; a branch or tag is resolved "
                          "and its commit recorded)")
    for task, spec in config["tasks"].items():
        if spec["source"] != "datasets":
            continue
        for split, where in [("train", f"tasks.{task}.train"),
                             *[(b, f"tasks.{task}.benchmarks.{b}") for b in spec["benchmarks"]]]:
            dataset = dataset_spec(config, task, split)
            if not dataset.get("path"):
                errors.append(f"config key '{where}.path' is missing: a hub id (fetched at 'revision') or a local "
                              "file or folder")
            elif dataset_downloads(dataset) and not dataset.get("revision"):
                errors.append(f"config key '{where}.revision' is missing: {dataset['path']!r} is a hub id (no such "
                              "local file or folder), fetched at a pinned revision")
    return errors


def variant_errors(config: dict, variant: str) -> list[str]:
    errors, path = [], f"train.variant_settings.{variant}"
    key = f"config key '{path}'"
    merged = merge(config["train"]["defaults"], config["train"]["variant_settings"][variant])
    batch = merged["prompts_per_step"] * merged["num_generations"]
    micro = merged["steps_per_generation"] * merged["gradient_accumulation_steps"]
    if batch % micro:
        errors.append(f"{key}: prompts_per_step x num_generations = {batch} is not divisible by "
                      f"steps_per_generation x gradient_accumulation_steps = {micro}")
    one_shot = merged["one_shot"]
    if one_shot and one_shot["select"] == "historical_variance":
        source = one_shot["history_variant"]
        source_settings = config["train"]["variant_settings"].get(source)
        if source_settings is None:
            errors.append(f"config key '{path}.one_shot.history_variant': no variant '{source}' in "
                          "'train.variant_settings'")
        elif merge(config["train"]["defaults"], source_settings)["one_shot"]:
            errors.append(f"config key '{path}.one_shot.history_variant': '{source}' must be a full-data run, "
                          "not one-shot")
        else:
            errors += history_epoch_errors(config, source)
    processes = training_processes(config)
    if processes >= 1 and batch % (micro * processes):
        which = (f"{processes} processes" if not server_gpus(config) else
                 f"{processes} training processes (gpus_per_run {processes + server_gpus(config)} - "
                 f"vllm_server_gpus {server_gpus(config)})")
        errors.append(f"config key 'train.gpus_per_run': {which} do not split the micro-batches of "
                      f"variant '{variant}' evenly (prompts_per_step x num_generations = {batch}, "
                      f"steps_per_generation x gradient_accumulation_steps = {micro})")
    if merged["dtype"] == "bfloat16" and config["train"].get("engine", "none") == "none":
        errors.append(f"config key '{path}.dtype': bfloat16 weights without a sharded engine are updated in bf16 "
                      "and small steps are lost; load float32 and set mixed_precision: bf16 (or train.engine "
                      "fsdp2/zero3, which keep fp32 master weights)")
    if config["train"].get("engine", "none") != "none" and merged["device"] != "cuda":
        errors.append(f"config key 'train.engine': {config['train']['engine']} needs device cuda")
    if merged["reward"] == "constant" and merged["entropy_coef"] >= 0:
        errors.append(f"{key}: reward 'constant' trains on nothing unless entropy_coef < 0")
    return errors


def validate(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Return ``config`` if valid; otherwise raise ``ConfigError`` naming every offending key."""
    if not isinstance(config, dict):
        raise ConfigError("the configuration must be a mapping of keys to values")
    errors = schema_errors(config, schema_path)
    if not errors:
        errors = cross_field_errors(config)
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    return config


# -- settings handed to each job (the rule's params, so that a changed value reruns exactly its jobs) --------------

def pretrain_settings(config: dict, model: str) -> dict:
    return {"pretrain": config["models"][model]["pretrain"], "sampling": config["sampling"]}


def train_settings(config: dict, variant: str, seed: int) -> dict:
    """The settings of one training run: defaults deep-merged with the variant's overrides."""
    merged = merge(config["train"]["defaults"], config["train"]["variant_settings"][variant])
    settings = {**merged, "variant": variant, "seed": seed,
                "max_completion_length": config["sampling"]["max_new_tokens"],
                "max_prompt_tokens": config["sampling"]["max_prompt_tokens"]}
    # The launch layout, when not the default single process (the defaults leave existing runs' settings alone).
    # In server mode ``processes`` counts the training processes; the server's GPUs are ``vllm_server_gpus``.
    processes, engine = training_processes(config), config["train"].get("engine", "none")
    if processes != 1 or engine != "none" or server_gpus(config):
        settings.update(processes=processes, engine=engine)
    if server_gpus(config):
        settings["vllm_server_gpus"] = server_gpus(config)
    return settings


def history_run(config: dict, variant: str) -> str | None:
    """The run name of the ground-truth run whose history one-shot selection reads, if the variant needs one."""
    one_shot = merge(config["train"]["defaults"], config["train"]["variant_settings"][variant])["one_shot"]
    if one_shot and one_shot["select"] == "historical_variance":
        return one_shot["history_variant"]
    return None


def benchmarks(config: dict, task: str) -> list[str]:
    """A task's benchmarks: its own name for synthetic tasks, else the keys of ``benchmarks``."""
    spec = config["tasks"][task]
    return [task] if spec["source"] == "synthetic" else list(spec["benchmarks"])


def cells(config: dict) -> list[tuple[str, str]]:
    """The study's (model, task) cells: each model on its ``tasks`` (every task when absent), in config order."""
    return [(model, task) for model, spec in config["models"].items()
            for task in config["tasks"] if task in spec.get("tasks", config["tasks"])]


def run_names(config: dict) -> list[str]:
    """Every trained run, named ``<variant>-s<seed>``."""
    return [f"{v}-s{s}" for v in config["train"]["variants"] for s in config["seeds"]]


def job_names(config: dict) -> list[str]:
    """The train (and evaluate) jobs of the trained runs: one per variant, for all its seeds, under ``batch_seeds``;
    else one per run (``<variant>-s<seed>``)."""
    if config.get("batch_seeds", False):
        return list(config["train"]["variants"])
    return run_names(config)


def evaluate_job_names(config: dict) -> list[str]:
    """The evaluate jobs of a cell: one for its base model and all its trained runs (``cell``) under
    ``batch_evaluation``; else one for the base model and one per train job."""
    if config.get("batch_evaluation", False):
        return [CELL_JOB]
    return ["base", *job_names(config)]


def job_runs(config: dict, job: str) -> list[str]:
    """The runs of a job: ``base`` -> [base]; ``nsr-s2`` -> [nsr-s2]; ``nsr`` (every seed) -> [nsr-s1, nsr-s2, ...];
    ``cell`` -> base and every trained run of the cell."""
    if job == "base" or is_run(job):
        return [job]
    if job == CELL_JOB:
        return ["base", *run_names(config)]
    return [f"{job}-s{seed}" for seed in config["seeds"]]


def is_run(name: str) -> bool:
    variant, sep, seed = name.rpartition("-s")
    return bool(sep and variant and seed.isdigit())


def parse_run(run: str) -> tuple[str, int | None]:
    """``base`` -> ("base", None); ``ground_truth-s3`` -> ("ground_truth", 3)."""
    if run == "base":
        return "base", None
    if not is_run(run):
        raise ValueError(f"run {run!r} is neither 'base' nor '<variant>-s<seed>'")
    variant, _, seed = run.rpartition("-s")
    return variant, int(seed)


def is_hub_id(path: str) -> bool:
    """``path`` names a hub repository (``org/name``), not a local file or folder."""
    return (bool(HUB_ID.fullmatch(path)) and not path.endswith(LOCAL_FILE_SUFFIXES)
            and not Path(path).expanduser().exists())


def dataset_spec(config: dict, task: str, split: str) -> dict | None:
    """The dataset spec of one split of a dataset task (None for a synthetic task)."""
    spec = config["tasks"][task]
    if spec["source"] != "datasets":
        return None
    return spec["train"] if split == "train" else spec["benchmarks"][split]


def dataset_downloads(spec: dict) -> bool:
    """Whether the workflow fetches this dataset: a hub id (for KOR-Bench, not on the hub, a GitHub ``org/name``)."""
    return bool(spec.get("path")) and is_hub_id(spec["path"])


def local_task(config: dict, task: str, locate) -> dict:
    """A task's settings with each dataset's ``path`` replaced by ``locate(task, spec)``, where the job reads it."""
    spec = config["tasks"][task]
    if spec["source"] != "datasets":
        return spec

    def local(dataset: dict) -> dict:
        return {**dataset, "path": locate(task, dataset)}

    return {**spec, "train": local(spec["train"]),
            "benchmarks": {name: local(dataset) for name, dataset in spec["benchmarks"].items()}}


def stage_settings(config: dict, *sections: str) -> dict:
    return {section: config[section] for section in sections}


# The probe settings a shard's samples depend on (mtarl.probe_shard): a change of any other probe setting
# (bootstrap, alignment thresholds) reruns only the gathering job.
PROBE_SAMPLING_KEYS = ("n", "n_problems", "seed", "contamination")


def probe_shards(config: dict, benchmark: str) -> int:
    """How many shards the probe of ``benchmark`` is split into: its ``probe.benchmark_shards`` entry or
    ``probe.shards``."""
    return config["probe"].get("benchmark_shards", {}).get(benchmark, config["probe"]["shards"])


def probe_settings(config: dict, benchmark: str, chat: str | None, *, shard: bool) -> dict:
    """The settings of a probe job of ``benchmark``: a shard's (what its samples depend on) or the gather's (all)."""
    probe = {k: v for k, v in config["probe"].items() if k not in ("shards", "benchmark_shards")}
    if shard:
        probe = {k: probe[k] for k in PROBE_SAMPLING_KEYS}
    return {"probe": probe, "sampling": config["sampling"], "chat": chat, "shards": probe_shards(config, benchmark)}
