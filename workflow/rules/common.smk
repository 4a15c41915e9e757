# Helpers shared by the rules: config validation, paths, and the settings each job receives.
# Python logic lives in mtarl.config; these functions only map wildcards to it.
import json
import os

from mtarl import config as mtarl_config

try:
    mtarl_config.validate(config, workflow.source_path("../schemas/config.schema.yaml"))
except mtarl_config.ConfigError as err:
    raise WorkflowError(str(err)) from None


wildcard_constraints:
    model=r"[A-Za-z][A-Za-z0-9_.]*",
    task=r"[A-Za-z][A-Za-z0-9_.]*",
    run=r"base|[A-Za-z][A-Za-z0-9_.]*-s\d+",
    split=r"[A-Za-z][A-Za-z0-9_.]*",
    benchmark=r"[A-Za-z][A-Za-z0-9_.]*",
    shard=r"\d+",


RESULTS = "results"
# One model's probe on one benchmark: the gathered tables, and its shards under shards/<i>/.
PROBE = f"{RESULTS}/probe/{{model}}/{{task}}/{{benchmark}}"


def problems(task, split):
    return f"{RESULTS}/data/{task}/{split}.parquet"


def is_pretrained(model):
    return config["models"][model]["source"] == "pretrain"


def base_model(model):
    """Where a base model loads from: the pretrain output (miniature) or a hub id / local path (paper)."""
    if is_pretrained(model):
        return f"{RESULTS}/models/{model}/model"
    return config["models"][model]["path"]


def base_model_param(wildcards):
    return base_model(wildcards.model)


def base_model_input(wildcards):
    return [base_model(wildcards.model)] if is_pretrained(wildcards.model) else []


def benchmarks(task):
    return mtarl_config.benchmarks(config, task)


def task_splits(task):
    """The files of a task: its training set and each benchmark."""
    return [problems(task, split) for split in ["train", *benchmarks(task)]]


def pretrain_problems(wildcards):
    spec = config["models"][wildcards.model]["pretrain"]
    tasks = sorted({*spec["mixture"], spec["select"]["task"]})
    return [path for task in tasks for path in task_splits(task)]


def history_file(wildcards):
    """The ground-truth run's per-example history that one-shot selection reads (None if not needed)."""
    variant, seed = mtarl_config.parse_run(wildcards.run)
    source = mtarl_config.history_run(config, variant)
    if source is None:
        return None
    return f"{RESULTS}/train/{wildcards.model}/{wildcards.task}/{source}-s{seed}/examples.jsonl"


def train_inputs(wildcards):
    inputs = {
        "model": base_model_input(wildcards),
        "problems": problems(wildcards.task, "train"),
        "eval_problems": problems(wildcards.task, benchmarks(wildcards.task)[0]),
    }
    history = history_file(wildcards)
    if history:
        inputs["history"] = history
    return inputs


def history_option(wildcards):
    history = history_file(wildcards)
    return f"--history {history}" if history else ""


def evaluated_model(wildcards):
    if wildcards.run == "base":
        return base_model(wildcards.model)
    return f"{RESULTS}/train/{wildcards.model}/{wildcards.task}/{wildcards.run}/model"


def evaluated_model_input(wildcards):
    if wildcards.run == "base":
        return base_model_input(wildcards)
    return [evaluated_model(wildcards)]


def image(kind):
    return config["images"][kind]


def uses_gpu(stage):
    """GPUs a job of ``stage`` needs: training on CUDA (train.gpus_per_run), sampling with vLLM or on CUDA (one)."""
    on_cuda = config["train"]["defaults"]["device"] == "cuda"
    if stage == "train":
        return config["train"].get("gpus_per_run", 1) if on_cuda else 0
    return int(on_cuda or config["sampling"]["backend"] == "vllm")


def train_launch(wildcards):
    """``--launch`` and the launcher of a training run's processes (mtarl.launch), or nothing for one process."""
    import shlex

    from mtarl.launch import launcher

    variant, seed = mtarl_config.parse_run(wildcards.run)
    prefix = launcher(mtarl_config.train_settings(config, variant, seed))
    return f"--launch {shlex.quote(prefix)}" if prefix else ""


def stage_kind():
    """Probe, train and evaluate run in the GPU environment when the study trains on CUDA."""
    return "gpu" if config["train"]["defaults"]["device"] == "cuda" else "cpu"


def conda_env(kind):
    """The conda environment file of ``kind`` (for --sdm conda), made from envs/<kind>.txt."""
    return os.path.join(workflow.basedir, "envs", f"{kind}.yaml")


# -- settings passed to each command as JSON (params: a change reruns exactly the jobs that use it) --------------
def prepare_settings(wildcards):
    if wildcards.split != "train" and wildcards.split not in benchmarks(wildcards.task):
        raise WorkflowError(f"task {wildcards.task!r} has no split {wildcards.split!r}")
    return json.dumps(config["tasks"][wildcards.task], sort_keys=True)


def pretrain_settings(wildcards):
    return json.dumps(mtarl_config.pretrain_settings(config, wildcards.model), sort_keys=True)


def chat_name(model):
    return config["models"][model].get("chat")


def probe_shard_settings(wildcards):
    settings = mtarl_config.probe_settings(config, wildcards.benchmark, chat_name(wildcards.model), shard=True)
    return json.dumps(settings, sort_keys=True)


def probe_settings(wildcards):
    settings = mtarl_config.probe_settings(config, wildcards.benchmark, chat_name(wildcards.model), shard=False)
    return json.dumps(settings, sort_keys=True)


def probe_shard_files(wildcards, table):
    """The ``table`` parquet of every shard of a probe, in shard order."""
    shards = mtarl_config.probe_shards(config, wildcards.benchmark)
    probe = PROBE.format(model=wildcards.model, task=wildcards.task, benchmark=wildcards.benchmark)
    return [f"{probe}/shards/{i}/{table}.parquet" for i in range(shards)]


def train_settings(wildcards):
    variant, seed = mtarl_config.parse_run(wildcards.run)
    settings = mtarl_config.train_settings(config, variant, seed)
    chat = chat_name(wildcards.model) if config["sampling"]["chat_template"] else None
    return json.dumps({**settings, "chat": chat}, sort_keys=True)


def evaluate_settings(wildcards):
    settings = mtarl_config.stage_settings(config, "evaluate", "sampling")
    return json.dumps({**settings, "chat": chat_name(wildcards.model)}, sort_keys=True)


def analyze_settings(wildcards):
    return json.dumps(mtarl_config.stage_settings(config, "analyze"), sort_keys=True)


# -- the targets of the whole study -------------------------------------------------------------------------------
def all_probes(table):
    return [
        f"{PROBE.format(model=model, task=task, benchmark=benchmark)}/{table}.parquet"
        for model in config["models"]
        for task in config["tasks"]
        for benchmark in benchmarks(task)
    ]


def all_scores():
    return [
        f"{RESULTS}/evaluate/{model}/{task}/{run}/{benchmark}/scores.parquet"
        for model in config["models"]
        for task in config["tasks"]
        for run in ["base", *mtarl_config.run_names(config)]
        for benchmark in benchmarks(task)
    ]


def final_outputs():
    names = ("summary.parquet", "alignment.parquet", "passk.png", "summary.md")
    return [f"{RESULTS}/analysis/{name}" for name in names]
