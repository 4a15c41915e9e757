"""The study's dataset loaders, run on fixture files in each dataset's real layout (tests/fixtures/, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from mtarl import tasks
from mtarl.datasets import (BadRowError, DatasetError, DatasetUnavailableError, load_problems,
                            synlogic_task_known)
from mtarl.datasets.korbench import TEMPLATES
from mtarl.prepare import PROBLEM_SCHEMA
from mtarl.prompts import KORBENCH_SUFFIX, MATH_TEMPLATE

FIXTURES = Path(__file__).parent / "fixtures"
SYNLOGIC_FAMILIES = ["synlogic:game_of_24", "synlogic:word_sorting", "synlogic:web_of_lies", "math"]
COLUMNS = [*PROBLEM_SCHEMA, "subset", "meta"]


def load(tmp_path, task="t", known_families=SYNLOGIC_FAMILIES, **spec):
    """Load through the public API, with the ``datasets`` cache in the test's temporary folder."""
    return load_problems(task, {"cache_dir": str(tmp_path / "cache"), **spec}, known_families=known_families)


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


GOOD = [
    ({"kind": "deepscaler", "path": str(FIXTURES / "deepscaler" / "deepscaler.json")}, "train", 4),
    ({"kind": "deepscaler", "path": str(FIXTURES / "deepscaler")}, "train", 4),
    ({"kind": "math500", "path": str(FIXTURES / "math500" / "test.jsonl")}, "test", 4),
    ({"kind": "math500", "path": str(FIXTURES / "math500")}, "test", 4),
    ({"kind": "aime24", "path": str(FIXTURES / "aime24")}, "train", 3),
    ({"kind": "amc23", "path": str(FIXTURES / "amc23")}, "test", 3),
    ({"kind": "synlogic", "path": str(FIXTURES / "synlogic"), "config": "easy"}, "train", 4),
    ({"kind": "synlogic", "path": str(FIXTURES / "synlogic"), "name": "easy", "split": "validation"}, "validation", 2),
    ({"kind": "korbench", "path": str(FIXTURES / "korbench")}, "test", 7),
]


@pytest.mark.parametrize("spec, split, n", GOOD, ids=lambda v: v["kind"] if isinstance(v, dict) else None)
def test_every_loader_gives_the_problem_schema_with_unique_ids(tmp_path, spec, split, n):
    table, report = load(tmp_path, task="study", **spec)
    assert table.columns == COLUMNS
    assert all(dtype == pl.String for dtype in table.dtypes)
    assert table.height == n and table["id"].n_unique() == n
    assert table["id"].str.starts_with(f"study-{split}-").all()
    assert (table["task"] == "study").all() and (table["split"] == split).all()
    assert table["source"].str.starts_with(spec["path"]).all()
    assert min(table["prompt"].str.strip_chars().str.len_chars()) > 0
    assert min(table["answer"].str.strip_chars().str.len_chars()) > 0
    assert all(isinstance(json.loads(m), dict) for m in table["meta"])
    assert report["rows_read"] == report["rows_kept"] == n and report["rows_skipped"] == {}
    assert report["kind"] == spec["kind"] and report["split"] == split


def test_ids_are_stable_across_loads(tmp_path):
    spec = {"kind": "math500", "path": str(FIXTURES / "math500" / "test.jsonl")}
    first, _ = load(tmp_path, **spec)
    again, _ = load(tmp_path, **spec)
    assert first.equals(again)


def test_deepscaler_prompt_is_the_math_template_then_the_problem(tmp_path):
    path = FIXTURES / "deepscaler" / "deepscaler.json"
    table, _ = load(tmp_path, kind="deepscaler", path=str(path))
    raw = read_rows(path)
    assert table["prompt"].to_list() == [MATH_TEMPLATE + r["problem"] for r in raw]
    assert table["answer"].to_list() == ["14", "28", "\\frac{3}{4}", "12"]
    assert table["id"].to_list() == [f"t-train-{i:05d}" for i in range(4)]
    assert (table["family"] == "math").all() and table["subset"].is_null().all()
    assert json.loads(table["meta"][2]) == {"index": 2}


def test_deepscaler_file_and_folder_give_the_same_problems(tmp_path):
    from_file, _ = load(tmp_path, kind="deepscaler", path=str(FIXTURES / "deepscaler" / "deepscaler.json"))
    from_folder, _ = load(tmp_path, kind="deepscaler", path=str(FIXTURES / "deepscaler"))
    assert from_file.drop("source").equals(from_folder.drop("source"))


def test_math500_keeps_its_ids_subjects_and_levels(tmp_path):
    table, _ = load(tmp_path, kind="math500", path=str(FIXTURES / "math500" / "test.jsonl"))
    assert table["id"].to_list() == ["t-test-test-algebra-101", "t-test-test-number_theory-202",
                                     "t-test-test-precalculus-303", "t-test-test-geometry-404"]
    assert table["subset"].to_list() == ["Algebra", "Number Theory", "Precalculus", "Geometry"]
    assert table["answer"].to_list() == ["7", "2", "2", "5"]
    assert json.loads(table["meta"][1]) == {"level": 3, "unique_id": "test/number_theory/202.json"}
    assert table["prompt"][0] == MATH_TEMPLATE + "If $x+3=10$, what is $x$?"


def test_aime24_uses_its_own_ids_and_string_answers(tmp_path):
    table, _ = load(tmp_path, kind="aime24", path=str(FIXTURES / "aime24"))
    assert table["id"].to_list() == ["t-train-60", "t-train-61", "t-train-62"]
    assert table["answer"].to_list() == ["14", "43", "17"]
    assert json.loads(table["meta"][0]) == {"id": 60, "year": "2024", "url": "https://example.org/fixture/aime/60"}


def test_amc23_reads_the_question_column_and_prints_numeric_answers(tmp_path):
    table, _ = load(tmp_path, kind="amc23", path=str(FIXTURES / "amc23"))
    assert table["prompt"][0] == MATH_TEMPLATE + "What is the value of $3^3$?"
    assert table["answer"].to_list() == ["27", "0.5", "6"]  # float64 on the hub: 27.0 is the integer 27
    assert table["id"].to_list() == ["t-test-0", "t-test-1", "t-test-2"]


def test_synlogic_keeps_the_dataset_prompt_and_the_game_data(tmp_path):
    table, _ = load(tmp_path, kind="synlogic", path=str(FIXTURES / "synlogic"), config="easy")
    raw = read_rows(FIXTURES / "synlogic" / "synlogic_easy" / "train.parquet")
    assert table["prompt"].to_list() == [r["prompt"][0]["content"] for r in raw]
    assert table["subset"].to_list() == ["game_of_24", "word_sorting", "web_of_lies", "word_sorting"]
    assert table["family"].to_list() == [f"synlogic:{t}" for t in table["subset"]]
    stored = [0, 2, 3]
    assert [table["answer"][i] for i in stored] == [raw[i]["extra_info"]["game_data_str"] for i in stored]
    assert all(not json.loads(table["meta"][i])["game_data_rebuilt"] for i in stored)


def test_synlogic_rebuilds_null_game_data_as_the_official_converter(tmp_path):
    table, _ = load(tmp_path, kind="synlogic", path=str(FIXTURES / "synlogic"), config="easy")
    raw = read_rows(FIXTURES / "synlogic" / "synlogic_easy" / "train.parquet")[1]
    assert raw["extra_info"]["game_data_str"] is None
    expected = json.dumps({"question": raw["extra_info"]["original_question"],
                           "answer": raw["extra_info"]["original_answer"], "difficulty": 1, "metadata": {}})
    assert table["answer"][1] == expected
    meta = json.loads(table["meta"][1])
    assert meta["game_data_rebuilt"] is True and meta["index"] == 1 and meta["data_source"] == "word_sorting"


def test_synlogic_validation_strips_the_val_prefix_from_the_task(tmp_path):
    table, _ = load(tmp_path, kind="synlogic", path=str(FIXTURES / "synlogic"), config="easy", split="validation")
    assert table["family"].to_list() == ["synlogic:web_of_lies", "synlogic:word_sorting"]
    assert json.loads(table["meta"][0])["data_source"] == "val/web_of_lies"
    assert table["id"].to_list() == ["t-validation-00000", "t-validation-00001"]


def test_synlogic_task_check_uses_the_given_families():
    assert synlogic_task_known("game_of_24", ["synlogic:game_of_24", "math"])
    assert not synlogic_task_known("game_of_24", ["game_of_24", "synlogic:sudoku"])
    assert not synlogic_task_known("game_of_24", [])


def test_synlogic_task_check_defaults_to_the_registered_verifiers(monkeypatch):
    assert not synlogic_task_known("fixture_task")
    monkeypatch.setitem(tasks._CHECKERS, "synlogic:fixture_task", lambda extracted, gold: extracted == gold)
    assert synlogic_task_known("fixture_task")


def test_synlogic_task_without_a_verifier_is_an_error_naming_file_and_row(tmp_path):
    path = FIXTURES / "synlogic" / "synlogic_easy" / "train.parquet"
    with pytest.raises(BadRowError) as err:
        load(tmp_path, known_families=["synlogic:game_of_24"], kind="synlogic", path=str(path))
    assert f"file '{path}', row 1: SynLogic task 'word_sorting' has no verifier" in str(err.value)
    assert "[reason: unknown_task" in str(err.value)


def test_synlogic_skipped_unknown_task_is_reported_with_its_row(tmp_path):
    path = FIXTURES / "synlogic_bad" / "train.parquet"
    _, report = load(tmp_path, kind="synlogic", path=str(path), on_bad_row="skip")
    (message,) = [e["message"] for e in report["skipped_examples"] if e["reason"] == "unknown_task"]
    assert message.startswith(f"file '{path}', row 3: SynLogic task 'mirror_maze' has no verifier")


BAD = [
    ("deepscaler", FIXTURES / "deepscaler_bad" / "deepscaler.json", "row 1: no answer (column 'answer')",
     {"empty_prompt": 1, "missing_answer": 2}, 5, ["t-train-00000", "t-train-00004"]),
    ("math500", FIXTURES / "math500_bad" / "test.jsonl", "row 1 (line 2): no answer (column 'answer')",
     {"duplicate_id": 1, "empty_prompt": 1, "missing_answer": 1}, 4, ["t-test-test-prealgebra-11"]),
    ("synlogic", FIXTURES / "synlogic_bad" / "train.parquet", "row 1: empty prompt",
     {"bad_game_data": 1, "empty_prompt": 1, "missing_answer": 1, "unknown_task": 1}, 5, ["t-train-00000"]),
    ("korbench", FIXTURES / "korbench_bad" / "data" / "puzzle" / "sample.jsonl",
     "row 1 (line 2): rule_id '9' is not in the puzzle rule file",
     {"empty_prompt": 1, "missing_answer": 1, "unknown_rule": 1}, 4, ["t-test-puzzle-1"]),
]


@pytest.mark.parametrize("kind, path, message, _skips, _read, _kept", BAD, ids=[b[0] for b in BAD])
def test_a_bad_row_is_an_error_naming_the_file_and_the_row(tmp_path, kind, path, message, _skips, _read, _kept):
    spec_path = FIXTURES / "korbench_bad" if kind == "korbench" else path
    with pytest.raises(BadRowError) as err:
        load(tmp_path, kind=kind, path=str(spec_path), category="puzzle" if kind == "korbench" else None)
    assert f"file '{path}', {message}" in str(err.value)
    assert "on_bad_row: skip" in str(err.value)


@pytest.mark.parametrize("kind, path, _message, skips, read, kept", BAD, ids=[b[0] for b in BAD])
def test_skipped_bad_rows_are_counted_by_reason(tmp_path, kind, path, _message, skips, read, kept):
    spec_path = FIXTURES / "korbench_bad" if kind == "korbench" else path
    table, report = load(tmp_path, kind=kind, path=str(spec_path), on_bad_row="skip",
                         category="puzzle" if kind == "korbench" else None)
    assert table["id"].to_list() == kept
    assert report["rows_skipped"] == skips
    assert report["rows_read"] == read and report["rows_kept"] == len(kept)
    assert report["rows_read"] == report["rows_kept"] + sum(report["rows_skipped"].values())
    assert len(report["skipped_examples"]) == sum(skips.values())
    assert all(str(path) in e["message"] for e in report["skipped_examples"])


def test_a_duplicate_id_names_the_row_that_had_it_first(tmp_path):
    path = FIXTURES / "math500_bad" / "test.jsonl"
    _, report = load(tmp_path, kind="math500", path=str(path), on_bad_row="skip")
    (duplicate,) = [e["message"] for e in report["skipped_examples"] if e["reason"] == "duplicate_id"]
    assert duplicate.startswith(f"file '{path}', row 3 (line 5)") and f"file '{path}', row 0" in duplicate


def test_korbench_prompt_is_its_zero_shot_prompt_then_the_study_instruction(tmp_path):
    table, _ = load(tmp_path, kind="korbench", path=str(FIXTURES / "korbench"), category="operation")
    expected = (
        "You are an intelligent assistant specializing in evaluating custom operations. Below is a specific rule "
        "defined for a custom operation. Your task is to apply this rule accurately to the provided question.\n\n"
        "### Instructions:\n\n"
        "1. Carefully read and understand the definitions of the new operations in the rule.\n"
        "2. If the question does not specifically ask for it, your answer should be a number or a group of numbers.\n"
        "3. Double-check your final answer to ensure it follows the rule accurately.\n\n"
        "### Operation Rule:\n\na★b = 2a + b.\nAll numbers are integers.\n\n"
        "### Question:\nCompute 3★4.\nPlease provide your answer in the format [[number]].\n\n"
        "### Answer:\n\n"
        "First, think about the reasoning process in the mind and then provide the answer. The reasoning process is "
        "enclosed within <think> </think> and the final answer is enclosed within <answer> </answer> tags, "
        "respectively, i.e., <think> reasoning process here </think> <answer> answer here</answer>."
    )
    assert table["prompt"][0] == expected
    # the gold carries rule_id and idx, which KOR-Bench's rule-specific scoring needs (tasks/korbench.parse_gold)
    assert [json.loads(a) for a in table["answer"]] == [{"answer": "[[10]]", "rule_id": "1", "idx": "1"},
                                                        {"answer": "[[5]]", "rule_id": "2", "idx": "2"}]
    assert json.loads(table["meta"][1]) == {"idx": "2", "rule_id": "2"}


def test_korbench_every_category_fills_its_template(tmp_path):
    table, _ = load(tmp_path, kind="korbench", path=str(FIXTURES / "korbench"))
    for category in ("operation", "logic", "cipher", "puzzle", "counterfactual"):
        folder = FIXTURES / "korbench" / "data" / category
        rules = {r["idx"]: r["rule_content"] for r in read_rows(folder / "rule.jsonl")}
        samples = read_rows(folder / "sample.jsonl")
        rows = table.filter(pl.col("subset") == category)
        assert (rows["family"] == f"korbench:{category}").all()
        assert rows["prompt"].to_list() == [TEMPLATES[category].format(rules[s["rule_id"]], s["question"])
                                            + KORBENCH_SUFFIX for s in samples]
        assert [json.loads(a) for a in rows["answer"]] == [
            {"answer": s["answer"], "rule_id": s["rule_id"], "idx": s["idx"]} for s in samples]
    counterfactual = table.filter(pl.col("subset") == "counterfactual")
    assert json.loads(counterfactual["meta"][0])["real_life_answer"] == "[[B]]"  # KOR-Bench's scoring reports it
    cipher = table.filter(pl.col("subset") == "cipher")
    assert json.loads(cipher["meta"][1])["category"] == "Decryption"  # a sample field of its own, kept as is


@pytest.mark.parametrize("relative", ["", "data", "data/cipher"])
def test_korbench_path_may_be_the_checkout_its_data_or_a_category_folder(tmp_path, relative):
    table, _ = load(tmp_path, kind="korbench", path=str(FIXTURES / "korbench" / relative), category="cipher")
    assert table["id"].to_list() == ["t-test-cipher-1", "t-test-cipher-2"]


def test_korbench_category_list_and_errors(tmp_path):
    table, _ = load(tmp_path, kind="korbench", path=str(FIXTURES / "korbench"), category=["logic", "puzzle"])
    assert table["subset"].to_list() == ["logic", "puzzle"]
    with pytest.raises(DatasetError, match="category .*'riddle'.* unknown"):
        load(tmp_path, kind="korbench", path=str(FIXTURES / "korbench"), category="riddle")
    with pytest.raises(DatasetError, match="no rule and sample files of category 'logic'"):
        load(tmp_path, kind="korbench", path=str(FIXTURES / "korbench_bad"), category="logic")
    with pytest.raises(DatasetError, match="not on the Hugging Face Hub.*github.com/KOR-Bench/KOR-Bench"):
        load(tmp_path, kind="korbench")  # no default path: a local checkout is required


def test_limit_reads_only_the_first_rows(tmp_path):
    table, report = load(tmp_path, kind="math500", path=str(FIXTURES / "math500" / "test.jsonl"), limit=2)
    assert table.height == 2 and report["rows_read"] == 2
    assert table["id"].to_list() == ["t-test-test-algebra-101", "t-test-test-number_theory-202"]


def test_spec_errors_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="kind 'gsm8k' unknown"):
        load(tmp_path, kind="gsm8k")
    with pytest.raises(DatasetError, match=r"keys \['splits'\] unknown"):
        load(tmp_path, kind="math500", splits="test")
    with pytest.raises(DatasetError, match="on_bad_row must be one of error, skip"):
        load(tmp_path, kind="math500", path=str(FIXTURES / "math500" / "test.jsonl"), on_bad_row="drop")
    with pytest.raises(DatasetError, match="local path './missing/test.jsonl' does not exist"):
        load(tmp_path, kind="math500", path="./missing/test.jsonl")
    with pytest.raises(DatasetError, match="no column 'problem'"):  # an AMC file is not a MATH500 file
        load(tmp_path, kind="math500", path=str(FIXTURES / "amc23" / "data" / "test-00000-of-00001.parquet"))


def test_synlogic_rows_read_as_struct_of_lists_or_json_strings_convert_the_same():
    from mtarl.datasets import synlogic
    from mtarl.datasets.common import RawRow

    game = json.dumps({"question": "q", "answer": "4", "difficulty": 1, "metadata": {}})
    nested = {"data_source": "word_sorting", "prompt": [{"content": "Count.", "role": "user"}],
              "extra_info": {"game_data_str": game, "index": 7}}
    flattened = {"data_source": "word_sorting", "prompt": {"content": ["Count."], "role": ["user"]},
                 "extra_info": json.dumps({"game_data_str": game, "index": 7})}
    convert = synlogic.converter(["synlogic:word_sorting"])
    assert convert(RawRow("row 0", nested, 0)) == convert(RawRow("row 0", flattened, 0))


def registered(*families: str) -> bool:
    return set(families) <= set(tasks.known_families())


@pytest.mark.skipif(not registered("math", "korbench:operation", "synlogic:word_sorting", "synlogic:web_of_lies",
                                   "synlogic:game_of_24"),
                    reason="the paper's verifier families are not registered in mtarl.tasks")
def test_loaded_problems_are_scored_by_the_registered_verifiers(tmp_path):
    math, _ = load(tmp_path, kind="deepscaler", path=str(FIXTURES / "deepscaler" / "deepscaler.json"))
    assert tasks.verify(math["family"][2], "<think>6/8</think><answer>\\frac{3}{4}</answer>", math["answer"][2]).correct
    korbench, _ = load(tmp_path, kind="korbench", path=str(FIXTURES / "korbench"), category="operation")
    right = tasks.verify(korbench["family"][0], "<think>6+4</think><answer>[[10]]</answer>", korbench["answer"][0])
    assert right.correct
    assert not tasks.verify(korbench["family"][0], "<think>6+4</think><answer>[[11]]</answer>",
                            korbench["answer"][0]).accurate
    # SynLogic tasks are checked against the registry itself when no family list is given
    synlogic, report = load_problems("t", {"kind": "synlogic", "path": str(FIXTURES / "synlogic"),
                                           "cache_dir": str(tmp_path / "cache")})
    assert report["rows_kept"] == 4 and synlogic["family"].to_list()[1] == "synlogic:word_sorting"


@pytest.mark.parametrize("spec, split, n", GOOD, ids=lambda v: v["kind"] if isinstance(v, dict) else None)
def test_the_contamination_check_cuts_the_raw_statement(tmp_path, spec, split, n):
    """study.md 2.4: no template, no instruction; at a cut of 80% a fixed instruction would make most of the remainder
    and push EM and ROUGE-L toward "clean"."""
    from mtarl.probe_shard import problem_statements

    table, _ = load(tmp_path, task="study", **spec)
    statements = problem_statements(table)
    for prompt, statement in zip(table["prompt"], statements, strict=True):
        assert statement.strip() and statement != prompt
        for instruction in ("<think>", "<answer>", "### Answer", "### Question", "Solve the following problem"):
            assert instruction not in statement
    if spec["kind"] in ("deepscaler", "math500", "aime24", "amc23"):
        assert all(prompt.endswith(s) for prompt, s in zip(table["prompt"], statements))
    if spec["kind"] == "korbench":  # the rule, then the question, as KOR-Bench's prompt has them
        assert statements[0] == ("a★b = 2a + b.\nAll numbers are integers.\n\nCompute 3★4.\n"
                                 "Please provide your answer in the format [[number]].")
