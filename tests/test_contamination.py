"""The contamination probe: statement splits, EM and ROUGE-L against hand-computed values, and a real tiny model."""

from __future__ import annotations

import polars as pl
import pytest

from mtarl.contamination import (
    CONTAMINATION_SCHEMA,
    contamination_table,
    hf_greedy_completer,
    prefix_length,
    rouge_l_scorer,
    split_statement,
    summarize_contamination,
)
from mtarl.tokenizer import build_char_tokenizer

STATEMENTS = [("cat", "the cat sat on the mat"), ("sum", "what is 12+34? add them")]


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()  # one token per character: splits are easy to count by hand


def oracle(problems):
    """A completer that knows every statement and returns the true remainder of each prefix."""
    texts = [text for _, text in problems]

    def complete(prefixes, budgets):
        return [next(t[len(p):] for t in texts if t.startswith(p)) for p in prefixes]

    return complete


def constant(text):
    return lambda prefixes, budgets: [text] * len(prefixes)


@pytest.mark.parametrize("n_tokens, ratio, expected", [(10, 0.4, 4), (22, 0.4, 8), (22, 0.6, 13), (22, 0.8, 17),
                                                       (2, 0.4, 1), (3, 0.1, 1), (3, 0.99, 2)])
def test_prefix_length_is_floor_within_one_and_n_minus_one(n_tokens, ratio, expected):
    assert prefix_length(n_tokens, ratio) == expected


def test_prefix_length_rejects_bad_inputs():
    with pytest.raises(ValueError, match="ratio"):
        prefix_length(10, 1.0)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        prefix_length(1, 0.5)


def test_split_statement_cuts_tokens(tokenizer):
    prefix, remainder = split_statement(tokenizer, "the cat sat on the mat", 0.4)  # 22 characters -> 8 + 14
    assert tokenizer.decode(prefix) == "the cat " and tokenizer.decode(remainder) == "sat on the mat"


def test_true_remainder_scores_one(tokenizer):
    result = contamination_table(STATEMENTS, tokenizer, oracle(STATEMENTS))
    assert result.schema == pl.Schema(CONTAMINATION_SCHEMA)
    assert result.height == 6 and sorted(set(result["ratio"])) == [0.4, 0.6, 0.8]
    assert set(result["em"]) == {1}
    assert result["rouge_l"].to_list() == pytest.approx([1.0] * 6)
    cat = result.filter(pl.col("problem_id") == "cat", pl.col("ratio") == 0.4).row(0, named=True)
    assert (cat["prefix"], cat["remainder"], cat["n_tokens"], cat["prefix_tokens"], cat["remainder_tokens"]) == (
        "the cat ", "sat on the mat", 22, 8, 14)


def test_unrelated_text_scores_zero(tokenizer):
    result = contamination_table(STATEMENTS, tokenizer, constant("zzz qqq"))
    assert set(result["em"]) == {0}
    assert result["rouge_l"].to_list() == [0.0] * 6


def test_partial_overlap_hand_computed(tokenizer):
    # remainder "sat on the mat" (4 words) vs "sat in a mat" (4 words): LCS = sat, mat -> P = R = 2/4, F1 = 0.5
    result = contamination_table([STATEMENTS[0]], tokenizer, constant("sat in a mat"), ratios=[0.4])
    assert result.select("em", "rouge_l").row(0) == (0, pytest.approx(0.5))


def test_rouge_l_hand_computed():
    score = rouge_l_scorer()
    # LCS of "the cat sat on the mat" and "the cat on a mat" is "the cat on mat": P = 4/5, R = 4/6, F1 = 8/11
    assert score("the cat sat on the mat", "the cat on a mat") == pytest.approx(8 / 11)
    # rouge-score's words are lower-cased [a-z0-9] runs: "12+34?" is the words 12 and 34
    assert score("12+34?", "12 34") == pytest.approx(1.0)
    assert rouge_l_scorer("whitespace")("12+34?", "12 34") == 0.0  # as written, "12+34?" is one word
    assert score("= ?", "= ?") is None  # no words in the reference: undefined


def test_exact_match_compares_the_first_remainder_tokens(tokenizer):
    problems = [("cat", "the cat sat on the mat")]
    # at 0.8 the remainder is the last 5 characters, "e mat"; a completion running past 5 tokens is cut there
    row = contamination_table(problems, tokenizer, constant("e mat and more"), ratios=[0.8]).row(0, named=True)
    assert (row["remainder"], row["completion"], row["em"]) == ("e mat", "e mat", 1)
    # "e  mat" and " e mat" are 6 tokens: their first 5 ("e  ma", " e ma") are not the remainder
    for completion in ("e  mat", " e mat"):
        assert contamination_table(problems, tokenizer, constant(completion), ratios=[0.8])["em"].to_list() == [0]


def test_exact_match_ignores_whitespace_differences_within_the_first_tokens(tokenizer):
    problems = [("s", "ab cd  ef")]  # 9 characters; at 0.5 the prefix is "ab c" and the remainder "d  ef" (5 tokens)
    result = contamination_table(problems, tokenizer, constant("d ef "), ratios=[0.5])
    assert result.select("remainder", "completion", "em").row(0) == ("d  ef", "d ef ", 1)


def test_completer_must_answer_every_prefix(tokenizer):
    with pytest.raises(ValueError, match="returned 1 completions for 3"):
        contamination_table([STATEMENTS[0]], tokenizer, lambda prefixes, budgets: ["x"])


def test_completer_receives_each_remainder_length(tokenizer):
    seen = {}

    def recording(prefixes, budgets):
        seen.update(zip(prefixes, budgets))
        return [""] * len(prefixes)

    contamination_table([STATEMENTS[0]], tokenizer, recording)
    assert seen == {"the cat ": 14, "the cat sat o": 9, "the cat sat on th": 5}


def test_summary_means_per_ratio_and_model():
    table = pl.DataFrame({
        "model": ["a", "a", "a", "a", "b", "b"],
        "problem_id": ["p", "q", "p", "q", "p", "q"],
        "ratio": [0.4, 0.4, 0.8, 0.8, 0.4, 0.4],
        "em": [1, 0, 1, 1, 0, 0],
        "rouge_l": [1.0, 0.5, 1.0, None, 0.2, 0.0],
    })
    summary = summarize_contamination(table)
    assert summary.columns == ["model", "ratio", "mean_em", "mean_rouge_l", "n_problems", "n_rouge"]
    assert summary.rows() == [
        ("a", 0.4, 0.5, pytest.approx(0.75), 2, 2),
        ("a", 0.8, 1.0, pytest.approx(1.0), 2, 1),
        ("b", 0.4, 0.0, pytest.approx(0.1), 2, 2),
    ]


def test_real_tiny_model_run(tokenizer):
    from mtarl.modeling import build_tiny_model

    model = build_tiny_model(tokenizer, seed=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=2).eval()
    problems = [("p1", "what is 12+34?"), ("p2", "compute 7*8 = ?"), ("p3", "find x: x+5 = 9"), ("p4", "1+1=")]
    complete = hf_greedy_completer(model, tokenizer, batch_size=3)
    result = contamination_table(problems, tokenizer, complete)
    assert result.height == 4 * 3
    assert result.select("problem_id", "ratio").unique().height == 12
    assert ((result["prefix_tokens"] + result["remainder_tokens"]) == result["n_tokens"]).all()
    assert result["em"].is_in([0, 1]).all()
    rouge = result["rouge_l"].drop_nulls()
    assert ((rouge >= 0) & (rouge <= 1)).all()
    lengths = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in result["completion"]]
    assert all(n <= budget for n, budget in zip(lengths, result["remainder_tokens"]))
    summary = summarize_contamination(result)
    assert summary["ratio"].to_list() == [0.4, 0.6, 0.8] and set(summary["n_problems"]) == {4}
    # greedy with left padding: a completion does not depend on what else is in its batch
    prefixes, budgets = result["prefix"].to_list(), result["remainder_tokens"].to_list()
    assert hf_greedy_completer(model, tokenizer, batch_size=1)(prefixes, budgets) == complete(prefixes, budgets)
