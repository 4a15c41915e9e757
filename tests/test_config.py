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
        (["probe", "alignment", "k"], 128, False, "config key 'probe.alignment.k': 128 exceeds probe.n = 64"),
        (["probe", "shards"], 0, False, "config key 'probe.shards': 0 is less than the minimum of 1"),
        (["probe", "benchmark_shards"], {"math500": 4}, False,
         "config key 'probe.benchmark_shards.math500': no task has a benchmark 'math500' (benchmarks: add3, mul2)"),
    ],
)
def test_bad_values_name_their_key(default, path, value, delete, message):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(broken(default, path, value, delete))
    assert message in str(err.value)


def test_probe_shards_per_benchmark_and_what_a_shard_depends_on(default):
    config = broken(default, ["probe", "benchmark_shards"], {"mul2": 5})
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


def test_cli_offers_the_six_stages():
    from mtarl.cli import STAGES, build_parser

    assert tuple(STAGES) == ("prepare", "pretrain", "probe_shard", "probe", "train", "evaluate", "analyze", "plan")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--settings", "[1, 2]"])
