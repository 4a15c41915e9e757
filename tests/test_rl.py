"""Advantage estimators, reward functions, one-shot selection and dynamic sampling, against hand-computed values."""

import math

import polars as pl
import pytest
import torch

from mtarl import oneshot, rewards
from mtarl.rl import advantages, choose_groups
from mtarl.tasks import Verdict

T = torch.tensor


def approx(values):
    return pytest.approx(values, abs=1e-4)


# -- advantages ----------------------------------------------------------------------------------------------------
# One group of four, one correct: mean 0.25, unbiased std sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5.
ONE_CORRECT = T([1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "estimator, expected",
    [
        ("grpo", [1.5, -0.5, -0.5, -0.5]),
        ("nsr", [0.0, -0.5, -0.5, -0.5]),  # kept only where R < 1
        ("psr", [1.5, 0.0, 0.0, 0.0]),  # kept only where R > 0
        ("zhu_psr", [1.0, 0.0, 0.0, 0.0]),  # A = R
        ("zhu_nsr", [0.0, -1.0, -1.0, -1.0]),  # A = R - 1
        ("w_reinforce", [0.1, -1.0, -1.0, -1.0]),  # lambda = 0.1 for correct, -1 otherwise
    ],
)
def test_estimators_on_one_correct_sample(estimator, expected):
    assert advantages(ONE_CORRECT, 4, estimator).tolist() == approx(expected)


@pytest.mark.parametrize("estimator", ["grpo", "nsr", "psr"])
@pytest.mark.parametrize("value", [0.0, 1.0])
def test_all_equal_groups_have_zero_group_normalised_advantage(estimator, value):
    assert advantages(torch.full((4,), value), 4, estimator).tolist() == approx([0.0] * 4)


def test_zhu_variants_learn_from_uniform_groups():
    assert advantages(T([1.0, 1.0]), 2, "zhu_psr").tolist() == approx([1.0, 1.0])
    assert advantages(T([0.0, 0.0]), 2, "zhu_nsr").tolist() == approx([-1.0, -1.0])
    assert advantages(T([1.0, 0.0]), 2, "w_reinforce", lam=0.5).tolist() == approx([0.5, -1.0])


def test_groups_are_contiguous_and_independent():
    adv = advantages(T([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]), 4, "grpo")
    assert adv.tolist() == approx([1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 0.0, 0.0])


def test_non_binary_rewards_use_unbiased_std():
    # mean 2, unbiased std 1 for [1, 2, 3]
    assert advantages(T([1.0, 2.0, 3.0]), 3, "grpo").tolist() == approx([-1.0, 0.0, 1.0])


def test_nan_rewards_get_zero_advantage_and_leave_the_statistics():
    adv = advantages(T([1.0, float("nan"), 0.0, 0.0]), 4, "grpo")
    third = 1 / math.sqrt(3)  # valid [1, 0, 0]: mean 1/3, unbiased std sqrt(1/3)
    assert adv.tolist() == approx([(2 / 3) / third, 0.0, -(1 / 3) / third, -(1 / 3) / third])


def test_group_of_one_uses_mean_zero_std_one():
    assert advantages(T([1.0, 0.0]), 1, "grpo").tolist() == approx([1.0, 0.0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of group_size"):
        advantages(T([1.0, 0.0, 1.0]), 2, "grpo")
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        advantages(ONE_CORRECT, 4, "ppo")


# -- rewards -------------------------------------------------------------------------------------------------------
def v(fmt: bool, acc: bool, extracted: str | None = "1") -> Verdict:
    return Verdict(extracted=extracted, format_ok=fmt, accurate=acc)


VERDICTS = [v(True, True), v(True, False), v(False, True), v(False, False)]


def test_ground_truth_incorrect_and_format_rewards():
    assert rewards.ground_truth(VERDICTS) == [1.0, 0.0, 0.0, 0.0]
    assert rewards.incorrect(VERDICTS, gate=True) == [0.0, 1.0, 0.0, 0.0]
    assert rewards.incorrect(VERDICTS, gate=False) == [0.0, 1.0, 0.0, 1.0]
    assert rewards.format_only(VERDICTS) == [1.0, 1.0, 0.0, 0.0]


def test_random_reward_gate_and_reproducibility():
    draws = [True, True, True, False]
    assert rewards.random_reward(VERDICTS, draws, gate=True) == [1.0, 1.0, 0.0, 0.0]
    assert rewards.random_reward(VERDICTS, draws, gate=False) == [1.0, 1.0, 1.0, 0.0]
    ids = [f"p{i // 8}" for i in range(800)]
    a = rewards.bernoulli_draws(seed=1, step=5, prompt_ids=ids, p=0.5)
    assert a == rewards.bernoulli_draws(seed=1, step=5, prompt_ids=ids, p=0.5)
    assert a != rewards.bernoulli_draws(seed=2, step=5, prompt_ids=ids, p=0.5)
    assert a != rewards.bernoulli_draws(seed=1, step=6, prompt_ids=ids, p=0.5)
    assert 0.44 < sum(a) / len(a) < 0.56
    assert 0.15 < sum(rewards.bernoulli_draws(1, 5, ids, p=0.2)) / len(ids) < 0.25


def test_sample_index_counts_within_prompt():
    assert rewards.sample_indices(["a", "a", "b", "a", "b"]) == [0, 1, 0, 2, 1]


def test_majority_vote_sees_the_whole_group_split_across_processes():
    # One group of 8 split over two processes: process 0 holds [7, 7, 7, none], process 1 holds [9, 9, 9, 9].
    keys = ["7", "7", "7", None, "9", "9", "9", "9"]
    formats = [True] * 8
    whole = rewards.majority_rewards(keys, formats, group_size=8)
    assert whole == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]  # the group's majority is 9
    first_half_alone = rewards.majority_rewards(keys[:4], formats[:4], group_size=4)
    assert first_half_alone == [1.0, 1.0, 1.0, 0.0]  # what a per-process vote would wrongly reward
    with pytest.raises(ValueError, match="whole groups"):
        rewards.majority_rewards(keys[:3], formats[:3], group_size=8)


def test_majority_vote_ties_voters_and_gate():
    # tie 1-1: the answer voted first wins
    assert rewards.majority_rewards(["5", "6"], [True, True], 2) == [1.0, 0.0]
    # unformatted samples do not vote, and the gate zeroes their reward
    assert rewards.majority_rewards(["5", "6", "6"], [True, False, False], 3) == [1.0, 0.0, 0.0]
    assert rewards.majority_rewards(["5", "6", "6"], [True, False, False], 3, gate=False, voters="all") == [0.0, 1.0, 1.0]
    # nobody votes: zero for the whole group
    assert rewards.majority_rewards([None, None], [True, True], 2) == [0.0, 0.0]


def test_canonical_answers_vote_together():
    assert rewards.canonical_answer("add3", " 0579 ") == rewards.canonical_answer("add3", "579") == "579"
    assert rewards.canonical_answer("synlogic:x", "a  b\n c") == "a b c"
    assert rewards.canonical_answer("add3", None) is None


def test_math_answers_vote_by_equivalence():
    keys = rewards.vote_keys("math", ["\\frac{1}{2}", "0.5", "2", None, "1/2"])
    assert keys[0] == keys[1] == keys[4] and keys[2] != keys[0] and keys[3] is None
    assert rewards.majority_rewards(keys, [True] * 5, 5) == [1.0, 1.0, 0.0, 0.0, 1.0]


GOOD, WRONG, BARE = ("<think>ok</think><answer>579</answer>", "<think>ok</think><answer>578</answer>",
                     "<answer>579</answer>")


@pytest.mark.parametrize(
    "reward, gate, expected",
    [
        ("ground_truth", True, [1.0, 0.0, 0.0]),
        ("incorrect", True, [0.0, 1.0, 0.0]),
        ("incorrect", False, [0.0, 1.0, 0.0]),  # the bare answer is right, so ungated incorrect is 0 too
        ("format", True, [1.0, 1.0, 0.0]),
        ("constant", True, [0.0, 0.0, 0.0]),
    ],
)
def test_reward_functions_on_crafted_completions(reward, gate, expected):
    fn = rewards.RewardFunction(reward, gate=gate)
    logged = {}
    out = fn([GOOD, WRONG, BARE], answer=["579"] * 3, family=["add3"] * 3, id=["a", "b", "c"],
             log_metric=lambda name, value: logged.setdefault(name, value))
    assert out == expected
    assert logged == {"gt_accuracy": pytest.approx(1 / 3), "format_rate": pytest.approx(2 / 3),
                      "strategy_share": pytest.approx(2 / 3)}  # GOOD and WRONG write in <think>
    fn(["<think></think><answer>579</answer>", GOOD], answer=["579"] * 2, family=["add3"] * 2, id=["a", "b"],
       log_metric=lambda name, value: logged.update({name: value}))
    assert logged["strategy_share"] == 0.5  # a direct answer after an empty <think>, and a scratchpad


def test_random_reward_function_is_gated_and_seeded():
    class State:
        global_step = 7

    completions = [GOOD, BARE] * 50
    ids = [f"p{i // 2}" for i in range(100)]
    gated = rewards.RewardFunction("random", seed=1, gate=True)(completions, ["579"] * 100, ["add3"] * 100, ids,
                                                                  trainer_state=State())
    ungated = rewards.RewardFunction("random", seed=1, gate=False)(completions, ["579"] * 100, ["add3"] * 100, ids,
                                                                    trainer_state=State())
    assert all(g == 0.0 for g in gated[1::2])  # unformatted samples never get the gated random reward
    assert gated[0::2] == ungated[0::2] and 0 < sum(ungated) < 100
    assert ungated == rewards.RewardFunction("random", seed=1, gate=False)(
        completions, ["579"] * 100, ["add3"] * 100, ids, trainer_state=State())


def test_reward_function_rejects_unknown_reward():
    with pytest.raises(ValueError, match="unknown reward 'lucky'"):
        rewards.RewardFunction("lucky")


# -- one-shot selection -------------------------------------------------------------------------------------------
HISTORY = [
    {"step": 0, "accuracy": {"a": 0.0, "b": 0.5, "c": 1.0}},
    {"step": 10, "accuracy": {"a": 1.0, "b": 0.5, "d": 0.0}},  # a: var 0.25, b: var 0, c and d: one visit
    {"step": 20, "accuracy": {"a": 0.0, "c": 0.0}},  # a: [0, 1, 0] var 2/9; c: [1, 0] var 0.25
]


def test_historical_variance_picks_most_variable_example():
    history = oneshot.accuracy_history(HISTORY)
    assert history["a"] == [0.0, 1.0, 0.0] and history["c"] == [1.0, 0.0]
    pid, score = oneshot.historical_variance(history)
    assert (pid, score) == ("c", pytest.approx(0.25))  # c beats a (2/9); b never varies; d was seen once


def test_historical_variance_ties_and_no_repeats():
    assert oneshot.historical_variance({"z": [0, 1], "y": [1, 0]})[0] == "y"
    with pytest.raises(ValueError, match="visited in two epochs"):
        oneshot.historical_variance({"a": [1.0], "b": [0.0]})


def test_historical_variance_reads_per_epoch_accuracies():
    records = [
        {"step": 0, "epoch": 0, "accuracy": {"a": 0.0, "b": 1.0}},
        {"step": 0, "epoch": 0, "accuracy": {"a": 1.0, "b": 0.0}},  # a dynamic-sampling draw in the same epoch
        {"step": 2, "epoch": 1, "accuracy": {"a": 1.0}},
    ]
    history = oneshot.accuracy_history(records)
    assert history == {"a": [0.5, 1.0], "b": [0.5]}  # b: two visits, one epoch: no variance, no candidate
    assert oneshot.historical_variance(history) == ("a", pytest.approx(0.0625))


def test_candidate_subset_depends_on_ids_only():
    problems = pl.DataFrame({"id": [f"p{i}" for i in range(50)]})
    subset = oneshot.candidate_subset(problems, 7)
    assert subset.height == 7 and set(subset["id"]) == set(oneshot.candidate_subset(problems.reverse(), 7)["id"])
    assert oneshot.candidate_subset(problems, None).equals(problems)


def test_random_selection_is_seeded_and_replication_keeps_ids_distinct():
    problems = pl.DataFrame({"id": [f"p{i}" for i in range(50)], "prompt": ["x"] * 50})
    first = oneshot.select(problems, "random", seed=3)
    assert first == oneshot.select(problems, "random", seed=3)
    copies = oneshot.replicate(problems, first["id"], 4)
    assert copies["id"].to_list() == [f"{first['id']}#{k}" for k in range(4)]
    with pytest.raises(ValueError, match="not in the training set"):
        oneshot.replicate(problems, "nope", 2)


# -- dynamic sampling ---------------------------------------------------------------------------------------------
def test_dynamic_sampling_keeps_informative_groups_then_duplicates():
    first = T([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # groups of 2: informative, all-1, all-0
    second = T([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])  # all-0, informative, all-1
    chosen, kept, duplicated = choose_groups([first, second], 2, n_groups=3)
    assert (chosen, kept, duplicated) == ([(0, 0), (1, 1), (0, 0)], 2, 1)


def test_dynamic_sampling_zero_std_fill_and_nothing_informative():
    first = T([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    chosen, kept, duplicated = choose_groups([first], 2, n_groups=3, fill="zero_std")
    assert (chosen, kept, duplicated) == ([(0, 0), (0, 1), (0, 2)], 1, 0)
    flat = T([1.0, 1.0, 0.0, 0.0])
    assert choose_groups([flat, flat], 2, n_groups=2) == ([(1, 0), (1, 1)], 0, 0)
