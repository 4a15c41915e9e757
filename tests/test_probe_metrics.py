"""maj@k, bootstrap intervals and the probe's long metrics table, against hand-computed values."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mtarl.metrics import (
    PROBE_METRICS_SCHEMA,
    avg_at_k,
    avg_at_k_ci_table,
    bootstrap_ci,
    maj_at_k_per_problem,
    maj_at_k_table,
    normalize_answer,
    pass_at_k_ci_table,
    pass_at_k_table,
    probe_metrics_table,
    profile_table,
)


def table(problems: dict[str, list[tuple[str | None, bool, bool]]]) -> pl.DataFrame:
    """A per-sample table from {problem_id: [(extracted, format_ok, correct), ...]} in sample order."""
    rows = [
        {"problem_id": pid, "sample": i, "extracted": ext, "format_ok": fmt, "correct": ok}
        for pid, samples in problems.items()
        for i, (ext, fmt, ok) in enumerate(samples)
    ]
    return pl.DataFrame(rows, schema={"problem_id": pl.String, "sample": pl.Int64, "extracted": pl.String,
                                      "format_ok": pl.Boolean, "correct": pl.Boolean})


def answers(values: list[str | None], gold: str) -> list[tuple[str | None, bool, bool]]:
    """Formatted samples with the given answers, correct where the answer is the gold one."""
    return [(v, True, v == gold) for v in values]


def maj(samples: pl.DataFrame, k: int, **kwargs) -> float:
    _, values = maj_at_k_per_problem(samples, [k], **kwargs)
    return float(values.mean())


# --- maj@k -------------------------------------------------------------------------------------------------------


def test_maj_at_k_hand_computed():
    # 7 is gold; sample 3 has no answer.
    samples = table({"p": answers(["7", "7", "3", None], gold="7")})
    assert maj(samples, 4) == 1.0  # 7 has two votes, 3 one
    assert maj(samples, 1) == pytest.approx(0.5)  # {0} {1} right; {2} wrong answer; {3} no voter -> wrong
    # the 6 pairs: {0,1} 7; {0,2} tie -> 7 (first); {0,3} 7; {1,2} tie -> 7 (first); {1,3} 7; {2,3} 3
    assert maj(samples, 2) == pytest.approx(5 / 6)


def test_maj_at_k_ties_go_to_the_first_occurring_answer():
    assert maj(table({"p": answers(["3", "7", "7", "3"], gold="7")}), 4) == 0.0  # 2-2 tie, 3 occurs first
    assert maj(table({"p": answers(["7", "3", "3", "7"], gold="7")}), 4) == 1.0
    # pairs of 3,7,7,3: {0,1} tie->3; {0,2} tie->3; {0,3} 3; {1,2} 7; {1,3} tie->7; {2,3} tie->7
    assert maj(table({"p": answers(["3", "7", "7", "3"], gold="7")}), 2) == pytest.approx(3 / 6)


def test_maj_at_k_tie_uses_first_occurrence_within_the_subset():
    # 3 occurs first overall (sample 0), but in the pair {1, 2} the tie 7 vs 3 goes to 7, which occurs first there.
    samples = table({"p": answers(["3", "7", "3", "7"], gold="7")})
    # pairs: {0,1} tie->3; {0,2} 3; {0,3} tie->3; {1,2} tie->7; {1,3} 7; {2,3} tie->3 -> 2/6 (first overall: 1/6)
    assert maj(samples, 2) == pytest.approx(2 / 6)


def test_maj_at_k_without_voters_is_wrong():
    samples = table({"p": [(None, True, False), ("  ", True, False), (None, False, False)]})
    assert [maj(samples, k) for k in (1, 2, 3)] == [0.0, 0.0, 0.0]


def test_maj_at_k_groups_answers_after_whitespace_normalisation():
    samples = table({"p": answers([" 1  2", "1 2", "12"], gold="12")})
    assert maj(samples, 3) == 0.0  # "1 2" has two votes against one for "12"
    assert normalize_answer(" 1 \n 2 ") == "1 2" and normalize_answer(" \t") is None and normalize_answer(None) is None


def test_maj_at_k_voters_need_the_format_gate_by_default():
    # Sample 0 is formatted and right; samples 1, 2 answer 3 but fail the format gate.
    samples = table({"p": [("7", True, True), ("3", False, False), ("3", False, False), (None, True, False)]})
    assert maj(samples, 4) == 1.0  # only sample 0 votes
    assert maj(samples, 4, require_format=False) == 0.0  # 3 wins two votes to one


def test_maj_at_1_equals_avg_at_n_when_voters_are_gated():
    rng = np.random.default_rng(3)
    problems = {
        f"p{i}": [(str(a), bool(f), bool(f and a == 0)) for a, f in zip(rng.integers(0, 3, 8), rng.random(8) > 0.2)]
        for i in range(20)
    }
    samples = table(problems)
    assert maj(samples, 1) == pytest.approx(avg_at_k(samples), abs=1e-12)


def test_maj_at_k_table_averages_problems_over_default_ks():
    samples = table({"a": answers(["7", "7", "3", None], gold="7"), "b": answers(["1", "2", "2", "2"], gold="1")})
    result = maj_at_k_table(samples)
    # b: maj@1 = 1/4; maj@2: pairs {0,1} tie->1, {0,2} tie->1, {0,3} tie->1, others 2 -> 3/6; maj@4: 2 wins -> 0
    assert result["k"].to_list() == [1, 2, 4]
    assert result["maj_at_k"].to_list() == pytest.approx([(0.5 + 0.25) / 2, (5 / 6 + 0.5) / 2, (1 + 0) / 2])
    assert set(result["n"]) == {4} and set(result["n_problems"]) == {2}
    assert "ci_low" not in result.columns


def test_maj_at_k_sampled_subsets_are_seeded_and_close_to_exact():
    rng = np.random.default_rng(0)
    problems = {f"p{i}": answers([str(a) for a in rng.integers(0, 3, 12)], gold="0") for i in range(5)}
    samples = table(problems)
    # C(12, 6) = 924: exact with 1000 subsets, sampled with 500
    exact = maj_at_k_per_problem(samples, [6], n_subsets=1000)[1]
    sampled = maj_at_k_per_problem(samples, [6], n_subsets=500, seed=1)[1]
    assert np.abs(sampled - exact).max() < 0.08  # 3 standard errors of a mean of 500 draws
    assert np.array_equal(sampled, maj_at_k_per_problem(samples, [6], n_subsets=500, seed=1)[1])
    assert not np.array_equal(sampled, maj_at_k_per_problem(samples, [6], n_subsets=500, seed=2)[1])
    # k = n is one subset, exact whatever the seed
    assert np.array_equal(maj_at_k_per_problem(samples, [12], n_subsets=5, seed=1)[1],
                          maj_at_k_per_problem(samples, [12], n_subsets=5, seed=9)[1])


def test_maj_at_k_does_not_depend_on_row_order():
    rng = np.random.default_rng(1)
    problems = {f"p{i}": answers([str(a) for a in rng.integers(0, 3, 12)], gold="0") for i in range(4)}
    samples = table(problems)
    shuffled = samples.sample(fraction=1.0, shuffle=True, seed=5)
    ordered = maj_at_k_table(samples, n_subsets=100, seed=3)
    assert maj_at_k_table(shuffled, n_subsets=100, seed=3).sort("k").equals(ordered)


def test_maj_at_k_refuses_unequal_counts_and_bad_k():
    with pytest.raises(ValueError, match="same number of samples"):
        maj_at_k_table(table({"a": answers(["1", "2"], "1"), "b": answers(["1"], "1")}))
    with pytest.raises(ValueError, match="1 <= k <= n"):
        maj_at_k_per_problem(table({"a": answers(["1", "2"], "1")}), [3])
    with pytest.raises(ValueError, match="format_ok"):
        maj_at_k_table(table({"a": answers(["1", "2"], "1")}).drop("format_ok"))
    assert maj_at_k_table(table({"a": answers(["1", "2"], "1")}).drop("format_ok"), require_format=False)[
        "maj_at_k"].to_list() == pytest.approx([0.5, 1.0])  # k = 2: tie, "1" occurs first


# --- bootstrap ---------------------------------------------------------------------------------------------------


def bernoulli_samples(n_problems: int, p: float, n: int = 8, seed: int = 0) -> pl.DataFrame:
    """Problems whose samples are each correct with probability p (answer "1" right, "0" wrong)."""
    hits = np.random.default_rng(seed).random((n_problems, n)) < p
    return table({f"p{i}": [("1" if h else "0", True, bool(h)) for h in row] for i, row in enumerate(hits)})


def test_bootstrap_interval_of_constant_values_is_a_point():
    low, high = bootstrap_ci(np.full((50, 2), 0.25), n_boot=200)
    assert low.tolist() == pytest.approx([0.25, 0.25]) and high.tolist() == pytest.approx([0.25, 0.25])


def test_bootstrap_interval_of_two_problems_matches_the_resampling_distribution():
    # Resampled means of values {0, 1} are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4.
    low, high = bootstrap_ci(np.array([0.0, 1.0]), n_boot=4000, level=0.95)
    assert (low[0], high[0]) == (0.0, 1.0)
    low, high = bootstrap_ci(np.array([0.0, 1.0]), n_boot=4000, level=0.4)  # quantiles 0.3, 0.7 fall on 1/2
    assert (low[0], high[0]) == (0.5, 0.5)


def test_avg_at_k_interval_covers_the_true_rate_and_shrinks_with_more_problems():
    p = 0.3
    small = avg_at_k_ci_table(bernoulli_samples(100, p, seed=1), n_boot=1000, seed=0).row(0, named=True)
    large = avg_at_k_ci_table(bernoulli_samples(1600, p, seed=2), n_boot=1000, seed=0).row(0, named=True)
    for row in (small, large):
        assert row["ci_low"] <= p <= row["ci_high"]
        assert row["ci_low"] <= row["avg_at_k"] <= row["ci_high"]
    # the standard error falls as 1/sqrt(problems): 16x the problems, about 1/4 the width
    width = {name: r["ci_high"] - r["ci_low"] for name, r in (("small", small), ("large", large))}
    assert width["large"] < width["small"] / 2.5
    assert small["n"] == 8 and small["n_problems"] == 100 and small["k"] == 8


def test_pass_at_k_interval_covers_the_true_pass_at_k():
    p, n = 0.3, 8
    result = pass_at_k_ci_table(bernoulli_samples(800, p, n=n, seed=4), ks=[1, 4], n_boot=1000)
    truth = {1: p, 4: 1 - (1 - p) ** 4}  # every problem has the same success probability
    for row in result.iter_rows(named=True):
        assert row["ci_low"] <= truth[row["k"]] <= row["ci_high"]
    # the point values are pass_at_k_table's, unchanged
    assert result.drop("ci_low", "ci_high").equals(pass_at_k_table(bernoulli_samples(800, p, n=n, seed=4), [1, 4]))


def test_intervals_are_deterministic_with_a_seed():
    samples = bernoulli_samples(60, 0.4, seed=5)
    first = probe_metrics_table(samples, n_subsets=50, n_boot=300, seed=7)
    assert probe_metrics_table(samples, n_subsets=50, n_boot=300, seed=7).equals(first)
    other = probe_metrics_table(samples, n_subsets=50, n_boot=300, seed=8)
    assert not other["ci_low"].equals(first["ci_low"])


def test_bootstrap_rejects_a_level_outside_0_1():
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(np.zeros(3), level=95)


# --- the long table ----------------------------------------------------------------------------------------------


def test_probe_metrics_table_long_form_matches_each_metric():
    samples = table({
        "a": answers(["7", "7", "3", None], gold="7"),
        "b": answers(["1", "2", "2", "2"], gold="1"),
        "c": answers(["5", "5", "5", "5"], gold="5"),
    })
    result = probe_metrics_table(samples, n_boot=500, seed=0)
    assert result.schema == pl.Schema(PROBE_METRICS_SCHEMA)
    assert result.select("metric", "k").rows() == [
        ("pass@k", 1), ("pass@k", 2), ("pass@k", 4), ("maj@k", 1), ("maj@k", 2), ("maj@k", 4), ("avg@k", 4)
    ]
    values = {(m, k): v for m, k, v in result.select("metric", "k", "value").rows()}
    passk = dict(zip(pass_at_k_table(samples)["k"], pass_at_k_table(samples)["pass_at_k"]))
    assert [values[("pass@k", k)] for k in (1, 2, 4)] == pytest.approx([passk[1], passk[2], passk[4]])
    # maj@k: a 1/2, 5/6, 1; b 1/4, 1/2, 0; c 1, 1, 1
    assert [values[("maj@k", k)] for k in (1, 2, 4)] == pytest.approx([1.75 / 3, (5 / 6 + 1.5) / 3, 2 / 3])
    assert values[("avg@k", 4)] == pytest.approx(avg_at_k(samples)) == pytest.approx((0.5 + 0.25 + 1) / 3)
    assert (result["ci_low"] <= result["value"] + 1e-12).all() and (result["value"] <= result["ci_high"] + 1e-12).all()
    assert set(result["n"]) == {4} and set(result["n_problems"]) == {3}


def test_math_maj_at_k_votes_by_equivalence_as_the_majority_reward():
    """Gold 1/2: three equivalent right answers written three ways, two identical wrong ones. By text, "3" leads
    (2 votes to 1 each); by math-verify equivalence, as the majority-vote reward votes, 1/2 leads 3 to 2."""
    from mtarl import rewards

    values = ["0.5", "3", "\\frac{1}{2}", "3", "1/2"]
    rows = answers(values, gold="x")
    rows = [(v, True, v != "3") for v, _, _ in rows]
    samples = table({"p": rows})
    assert maj(samples.with_columns(family=pl.lit("math")), 5) == 1.0
    assert maj(samples, 5) == 0.0  # without a family: by text, the old (biased low) vote
    keys = rewards.vote_keys("math", values)
    assert rewards.majority_rewards(keys, [True] * 5, 5) == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_profile_table_holds_greedy_accuracy_format_rate_and_strategy_share():
    texts = {
        "a": ["<think>90 70 50</think><answer>579</answer>", "<think></think><answer>579</answer>", "579", "57"],
        "b": ["<think>51 41 21</think><answer>1245</answer>", "<think>51 41 21</think><answer>1244</answer>",
              "<think></think><answer>1245</answer>", "<think></think><answer>1245</answer>"],
    }
    from mtarl.tasks import has_format

    samples = pl.DataFrame([{"problem_id": pid, "sample": i, "completion": c, "format_ok": has_format(c),
                             "correct": False} for pid, cs in texts.items() for i, c in enumerate(cs)])
    greedy = pl.DataFrame({"problem_id": ["a", "b"], "sample": [0, 0], "correct": [True, False]})
    result = profile_table(samples, greedy, n_boot=200, seed=0)
    assert result.schema == pl.Schema(PROBE_METRICS_SCHEMA)
    assert result.select("metric", "k", "n", "n_problems").rows() == [
        ("greedy@1", 1, 1, 2), ("format_rate", 4, 4, 2), ("strategy_share", 4, 4, 2)]
    # greedy: a right, b wrong; format: a 2/4, b 4/4; scratchpad: a 1/4, b 2/4
    assert result["value"].to_list() == pytest.approx([0.5, 0.75, 0.375])
    assert result.row(0, named=True)["ci_low"] == 0.0 and result.row(0, named=True)["ci_high"] == 1.0
    with pytest.raises(ValueError, match="one greedy decode per problem"):
        profile_table(samples, greedy.head(1))
