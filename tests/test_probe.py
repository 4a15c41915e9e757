"""The probe stage: shard layout, sharded == unsharded samples, gathering checks, and a rerun of one shard.

Real stages on a tiny randomly initialised model (conftest.random_model_dir) and add3 problems from the prepare stage.
Run: ``.venv/bin/pytest -q tests/test_probe.py``
"""

from __future__ import annotations

import copy
import subprocess
import sys

import polars as pl
import pytest

from mtarl import io, probe, probe_shard
from mtarl.shards import layout, probe_problems, seed_block, shard_ranges

SETTINGS = {
    "probe": {
        "n": 4, "n_problems": 14, "seed": 0, "n_boot": 20,
        "contamination": {"enabled": True, "ratios": [0.5], "n_problems": 5},
        "alignment": {"k": 2, "strong_threshold": 0.5, "contamination_ratio": 0.5, "rouge_l_threshold": 0.5,
                      "em_threshold": None},
    },
    # 8 sequences per generate call of n = 4: seed blocks of 2 prompts, so 14 problems make 7 blocks
    "sampling": {"backend": "hf", "chat_template": False, "dtype": "float32", "max_new_tokens": 6,
                 "temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_batch_sequences": 8},
    "chat": None,
    "shards": 1,
}


def with_shards(shards: int) -> dict:
    settings = copy.deepcopy(SETTINGS)
    settings["shards"] = shards
    return settings


def run_probe(settings: dict, model: str, problems: str, out) -> dict[str, pl.DataFrame]:
    """Every shard, then the gather, as the workflow runs them; returns the gathered tables."""
    shards = [(out / f"shard{i}-samples.parquet", out / f"shard{i}-contamination.parquet",
               out / f"shard{i}-greedy.parquet") for i in range(settings["shards"])]
    for i, (samples, checked, greedy) in enumerate(shards):
        probe_shard.run(settings, model, "add3", "add3", problems, i, str(samples), str(checked), str(greedy))
    tables = ("samples", "passk", "metrics", "contamination", "alignment")
    paths = {name: out / f"{name}.parquet" for name in tables}
    probe.run(settings, "tiny", "add3", "add3", problems, [str(s) for s, _, _ in shards],
              [str(c) for _, c, _ in shards], *(str(paths[name]) for name in tables),
              shard_greedy=[str(g) for _, _, g in shards])
    return {name: pl.read_parquet(path) for name, path in paths.items()}


@pytest.mark.parametrize(
    ("n_rows", "shards", "block", "expected"),
    [
        (14, 3, 2, [(0, 4), (4, 8), (8, 14)]),  # 7 blocks: 2, 2 and 3 of them
        (10, 2, 4, [(0, 4), (4, 10)]),  # 3 blocks, the last one short
        (3, 4, 2, [(0, 0), (0, 2), (2, 2), (2, 3)]),  # more shards than blocks: some are empty
        (5, 1, 64, [(0, 5)]),
        (0, 2, 1, [(0, 0), (0, 0)]),
    ],
)
def test_shard_ranges_are_whole_seed_blocks(n_rows, shards, block, expected):
    assert shard_ranges(n_rows, shards, block) == expected


def test_seed_blocks_of_the_backends():
    assert seed_block("hf", 4096, 64) == 64 and seed_block("hf", 8, 4) == 2 and seed_block("hf", 8, 16) == 1
    assert seed_block("vllm", 4096, 64) == 1  # every request has its own seed


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory, random_model_dir, add3_problems):
    out = tmp_path_factory.mktemp("unsharded")
    return run_probe(with_shards(1), str(random_model_dir), str(add3_problems["eval"]), out)


def test_sharded_and_unsharded_probes_store_identical_samples(unsharded, tmp_path, random_model_dir, add3_problems):
    sharded = run_probe(with_shards(3), str(random_model_dir), str(add3_problems["eval"]), tmp_path)
    assert unsharded["samples"].height == 14 * 4
    assert sharded["samples"].equals(unsharded["samples"])
    assert sharded["contamination"].equals(unsharded["contamination"])
    assert sharded["contamination"]["problem_id"].n_unique() == 5  # probe.contamination.n_problems, across shards
    for name in ("passk", "metrics", "alignment"):
        assert sharded[name].equals(unsharded[name]), name


def test_metrics_hold_the_base_model_profile(unsharded, tmp_path, random_model_dir, add3_problems):
    """greedy@1 is the accuracy of one greedy decode per problem; format and strategy shares are those of the samples."""
    from mtarl import scoring
    from mtarl.modeling import load
    from mtarl.sampling import HFSampler, SamplingParams
    from mtarl.tasks import has_scratchpad

    rows = unsharded["metrics"].filter(pl.col("metric").is_in(["greedy@1", "format_rate", "strategy_share"]))
    assert rows.select("metric", "k", "n", "n_problems").rows() == [
        ("greedy@1", 1, 1, 14), ("format_rate", 4, 4, 14), ("strategy_share", 4, 4, 14)]
    values = dict(zip(rows["metric"], rows["value"]))
    model, tokenizer = load(str(random_model_dir))
    problems = pl.read_parquet(add3_problems["eval"]).head(14)
    greedy = scoring.sample_and_score(HFSampler(model, tokenizer), problems, SamplingParams(n=1, max_new_tokens=6,
                                                                                           temperature=0.0))
    assert values["greedy@1"] == pytest.approx(greedy["correct"].mean())
    samples = unsharded["samples"]
    assert values["format_rate"] == pytest.approx(samples["format_ok"].mean())
    assert values["strategy_share"] == pytest.approx(samples["completion"].map_elements(has_scratchpad).mean())


def test_gathered_manifest_records_the_shard_layout(tmp_path, random_model_dir, add3_problems):
    run_probe(with_shards(3), str(random_model_dir), str(add3_problems["eval"]), tmp_path)
    record = io.read_manifest(tmp_path / "passk.parquet")
    assert [(s["index"], s["start"], s["stop"]) for s in record["shards"]] == [(0, 0, 4), (1, 4, 8), (2, 8, 14)]
    assert record["backend"]["backend"] == "hf" and record["backend"]["max_batch_sequences"] == 8
    assert record["model_revision"].startswith("local:")
    assert record["sampling"] == {"n": 4, "max_new_tokens": 6, "temperature": 1.0, "top_p": 1.0, "top_k": 0,
                                  "seed": 0}
    assert {"versions", "hardware"} <= set(record) and "torch" in record["versions"]


def test_a_deleted_shard_is_resampled_identically(tmp_path, random_model_dir, add3_problems):
    settings, model, problems = with_shards(3), str(random_model_dir), str(add3_problems["eval"])
    run_probe(settings, model, problems, tmp_path)
    lost = tmp_path / "shard1-samples.parquet"
    before = pl.read_parquet(lost)
    lost.unlink()
    probe_shard.run(settings, model, "add3", "add3", problems, 1, str(lost), str(tmp_path / "c1.parquet"))
    assert pl.read_parquet(lost).equals(before)


def test_gather_refuses_shards_of_another_layout(tmp_path, random_model_dir, add3_problems):
    settings, model, problems = with_shards(3), str(random_model_dir), str(add3_problems["eval"])
    run_probe(settings, model, problems, tmp_path)
    shards = [str(tmp_path / f"shard{i}-samples.parquet") for i in range(3)]
    problem_table = probe_problems(problems, settings["probe"])
    with pytest.raises(probe.IncompleteProbe, match="3 shard files for a probe of 2 shards"):
        probe.read_shards(shards, with_shards(2), problem_table)
    with pytest.raises(probe.IncompleteProbe, match="expected shard 0 with rows"):
        probe.read_shards(shards[::-1], settings, problem_table)
    more = copy.deepcopy(settings)
    more["probe"]["n_problems"] = 16
    with pytest.raises(probe.IncompleteProbe, match="another layout"):
        probe.read_shards(shards, more, probe_problems(problems, more["probe"]))


def test_an_empty_shard_loads_no_model_and_writes_empty_tables(tmp_path, add3_problems):
    settings = with_shards(8)  # 7 seed blocks: shard 0 has none
    assert layout(settings, 14)[0] == (0, 0)
    samples, checked = tmp_path / "s.parquet", tmp_path / "c.parquet"
    probe_shard.run(settings, "no/such-model", "add3", "add3", str(add3_problems["eval"]), 0, str(samples),
                    str(checked))
    assert pl.read_parquet(samples).height == 0 and pl.read_parquet(checked).height == 0
    with pytest.raises(ValueError, match="shard 8 does not exist: the probe has 8 shards"):
        probe_shard.run(settings, "no/such-model", "add3", "add3", str(add3_problems["eval"]), 8, str(samples),
                        str(checked))


@pytest.mark.parametrize("stage", ["probe", "analyze"])
def test_table_only_stages_start_without_torch(repo, stage):
    """Gathering a probe and the analysis read tables: their jobs do not pay torch's and transformers' import (about
    10 s of every job's start-up on a 2-core machine), and the CLI skips torch for them."""
    code = (f"import sys; from mtarl import cli; args = cli.build_parser('{stage}'); import mtarl.{stage} as m; "
            "print(sorted({'torch', 'transformers', 'trl'} & set(sys.modules)), m.USES_TORCH)")
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] False"
