"""Evaluation: one job scores every benchmark of a task (one model load); per-benchmark tables are cut from it."""

from __future__ import annotations

import polars as pl
import pytest

from mtarl import evaluate, io
from mtarl.scoring import SAMPLE_SCHEMA


def test_best_validation_names_its_step():
    log = [{"step": 1, "loss": 0.1}, {"step": 40, "val/avg@1": 0.30}, {"step": 80, "val/avg@1": 0.55},
           {"step": 120, "val/avg@1": 0.55}, {"step": 160, "val/avg@1": 0.40}]
    assert evaluate.best_validation(log) == {"metric": "best_val@1", "k": 1, "value": 0.55, "checkpoint": "step-80"}
    assert evaluate.best_validation([{"step": 1, "loss": 0.1}]) is None


def test_score_table_adds_greedy_accuracy_beside_avg_and_pass_at_k():
    samples = pl.DataFrame({"problem_id": ["a", "a", "b", "b"], "correct": [True, False, False, False]})
    greedy = pl.DataFrame({"problem_id": ["a", "b"], "correct": [True, True]})
    table = evaluate.score_table(samples, greedy)
    assert dict(zip(table["metric"], table["value"])) == {"avg@2": 0.25, "pass@1": 0.25, "pass@2": 0.5, "greedy": 1.0}
    assert table["checkpoint"].null_count() == table.height


def test_one_job_scores_every_benchmark_and_each_gets_its_tables(tmp_path, random_model_dir, add3_problems):
    eval_problems = pl.read_parquet(add3_problems["eval"])
    paths = []
    for name, rows in (("first", eval_problems.head(3)), ("second", eval_problems.slice(3, 2))):
        paths.append(str(tmp_path / f"{name}.parquet"))
        rows.write_parquet(paths[-1])
    io.append_jsonl({"step": 2, "val/avg@4": 0.25}, tmp_path / "metrics.jsonl")
    settings = {"evaluate": {"n": 4, "n_problems": None, "top_p": 0.7, "seed": 0},
                "sampling": {"backend": "hf", "chat_template": False, "dtype": "float32",
                             "max_new_tokens": 6, "temperature": 1.0, "top_p": 1.0, "top_k": 0,
                             "max_batch_sequences": 64}}
    out = {name: str(tmp_path / f"all_{name}.parquet") for name in ("samples", "greedy", "scores")}
    scores = evaluate.run(settings, [str(random_model_dir)], "tiny", "add3", ["ground_truth-s1"], ["first", "second"],
                          paths, out["samples"], out["greedy"], out["scores"], [str(tmp_path / "metrics.jsonl")])
    by_benchmark = {b: rows["metric"].to_list() for (b,), rows in scores.group_by("benchmark", maintain_order=True)}
    assert by_benchmark == {"first": ["avg@4", "pass@1", "pass@2", "pass@4", "greedy", "best_val@4"],
                            "second": ["avg@4", "pass@1", "pass@2", "pass@4", "greedy"]}
    best = scores.filter(pl.col("metric") == "best_val@4")
    assert (best["value"][0], best["checkpoint"][0], best["variant"][0], best["seed"][0]) == (0.25, "step-2",
                                                                                               "ground_truth", 1)
    assert pl.read_parquet(out["greedy"]).group_by("benchmark").len().sort("benchmark")["len"].to_list() == [3, 2]

    samples = pl.read_parquet(out["samples"])
    # the probe's sample schema, plus the benchmark and the run
    assert samples.columns == [*SAMPLE_SCHEMA, "benchmark", "variant", "seed"]
    assert samples.group_by("benchmark").len().sort("benchmark")["len"].to_list() == [3 * 4, 2 * 4]


def test_a_cell_job_scores_the_base_model_and_gives_each_trained_run_its_own_log(tmp_path, random_model_dir,
                                                                                  add3_problems):
    """batch_evaluation's ``cell`` job: base first, then the trained runs; training logs belong to trained runs only."""
    io.append_jsonl({"step": 4, "val/avg@2": 0.5}, tmp_path / "s1.jsonl")
    io.append_jsonl({"step": 6, "val/avg@2": 0.75}, tmp_path / "s2.jsonl")
    settings = {"evaluate": {"n": 2, "n_problems": 2, "top_p": 0.7, "seed": 0},
                "sampling": {"backend": "hf", "chat_template": False, "dtype": "float32",
                             "max_new_tokens": 4, "temperature": 1.0, "top_p": 1.0, "top_k": 0,
                             "max_batch_sequences": 64}}
    out = {name: str(tmp_path / f"{name}.parquet") for name in ("samples", "greedy", "scores")}
    runs = ["base", "nsr-s1", "nsr-s2"]
    scores = evaluate.run(settings, [str(random_model_dir)] * 3, "tiny", "add3", runs, ["add3"],
                          [add3_problems["eval"]], out["samples"], out["greedy"], out["scores"],
                          [str(tmp_path / "s1.jsonl"), str(tmp_path / "s2.jsonl")])
    best = scores.filter(pl.col("metric") == "best_val@2").select("seed", "value", "checkpoint").rows()
    assert best == [(1, 0.5, "step-4"), (2, 0.75, "step-6")]
    assert scores.filter(pl.col("variant") == "base")["seed"].is_null().all()
    assert pl.read_parquet(out["samples"]).group_by("variant", "seed").len().height == 3
    with pytest.raises(ValueError, match=r"3 runs .* \(2 trained\) but 3 models and 1 training logs"):
        evaluate.run(settings, [str(random_model_dir)] * 3, "tiny", "add3", runs, ["add3"], [add3_problems["eval"]],
                     out["samples"], out["greedy"], out["scores"], [str(tmp_path / "s1.jsonl")])


def test_prompts_over_the_cap_are_dropped_and_counted(repo, add3_problems):
    """study.md 5.4 caps prompts at 2048 tokens; TRL has no max_prompt_length. The character tokenizer gives one token
    per character, so "12+3=" has 5 tokens and "100+200=" 8."""
    from mtarl import config as cfg, scoring, train
    from mtarl.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer()
    problems = pl.DataFrame({"id": ["a", "b"], "prompt": ["12+3=", "100+200="]})
    kept, dropped = scoring.drop_overlong(problems, tokenizer, None, 5)
    assert kept["id"].to_list() == ["a"] and dropped == 1
    assert scoring.drop_overlong(problems, tokenizer, None, None) == (problems, 0)
    settings = {**cfg.train_settings(cfg.load(repo / "config/config.yaml"), "ground_truth", 1), "max_prompt_tokens": 7}
    assert settings["max_prompt_tokens"] == 7
    table, record = train.training_problems(settings, str(add3_problems["train"]), None, tokenizer)
    # add3 prompts "abc+def=" are 8 characters: every one is over a cap of 7
    assert table.height == 0 and record["overlong_prompts"] == 400
