"""Predictions on constructed studies: a clear effect is supported, a clear opposite contradicted, noise inconclusive."""

import pytest
from study_fixture import write_study

from mtarl.analysis import cells as cell_estimates
from mtarl.analysis import predictions, training
from mtarl.analyze import read_all

N_PROBLEMS = 20
BASE = [8] * N_PROBLEMS  # 8 of 16 correct: accuracy 0.5 on every problem
TWO_CELLS = {("aligned", "add3"): (0.9, "strong", 0.0, 0.4), ("weak", "add3"): (0.1, "weak", 0.0, 0.0)}


def evidence(tmp_path, cells, trained, entropy=None, n_boot=400):
    inputs = write_study(tmp_path, cells, {cell: BASE for cell in cells}, trained, entropy)
    estimates, gains = cell_estimates.estimate(
        cell_estimates.load_cells(cell_estimates.read_evaluations(inputs.scores, inputs.samples)), n_boot, 0)
    profiles = cell_estimates.base_profiles(read_all(inputs.alignment), read_all(inputs.probe_metrics))
    logs = training.read_training_logs(inputs.train_metrics)
    return predictions.Evidence(
        gains=gains, point={tuple(r[:4]): r[4] for r in estimates.select(
            "model", "task", "benchmark", "variant", "gain").iter_rows()},
        seeds={tuple(r[:4]): r[4] for r in estimates.select(
            "model", "task", "benchmark", "variant", "n_seeds").iter_rows()},
        profiles=profiles, entropy=training.mean_replicates(logs, "entropy", n_boot, 0), n_boot=n_boot)


def verdicts(table, pid):
    rows = table.filter(table["id"] == pid)
    return rows["prediction_verdict"][0], rows["verdict"].to_list()


def three_seeds(counts):
    return {1: counts, 2: counts, 3: counts}


def test_random_reward_helping_only_the_aligned_cell_is_supported(tmp_path):
    trained = {("aligned", "add3", "random"): three_seeds([13] * N_PROBLEMS),  # +0.3125
               ("weak", "add3", "random"): three_seeds([7] * N_PROBLEMS)}  # -0.0625
    table = predictions.evaluate_predictions(evidence(tmp_path, TWO_CELLS, trained))
    assert verdicts(table, "P2") == ("supported", ["supported", "supported"])
    row = table.filter(table["claim"] == "random helps strongly aligned cells").row(0, named=True)
    assert row["value"] == pytest.approx(5 / 16) and row["low"] == pytest.approx(5 / 16) and row["n_seeds"] == 3
    assert verdicts(table, "P1")[0] == "not tested"  # no ground-truth run in this study


def test_the_opposite_effect_is_contradicted(tmp_path):
    trained = {("aligned", "add3", "random"): three_seeds([3] * N_PROBLEMS),  # -0.3125
               ("weak", "add3", "random"): three_seeds([13] * N_PROBLEMS)}  # +0.3125
    table = predictions.evaluate_predictions(evidence(tmp_path, TWO_CELLS, trained))
    assert verdicts(table, "P2") == ("contradicted", ["contradicted", "contradicted"])


def test_noise_is_inconclusive(tmp_path):
    # each seed gains +0.5 on half the problems and loses 0.5 on the other half: mean 0, wide interval
    noisy = {1: [16, 0] * (N_PROBLEMS // 2), 2: [0, 16] * (N_PROBLEMS // 2), 3: [16, 0] * (N_PROBLEMS // 2)}
    trained = {("aligned", "add3", "random"): noisy, ("weak", "add3", "random"): noisy}
    table = predictions.evaluate_predictions(evidence(tmp_path, TWO_CELLS, trained))
    assert verdicts(table, "P2") == ("inconclusive", ["inconclusive", "inconclusive"])


def test_ground_truth_everywhere_and_nsr_entropy(tmp_path):
    trained = {(m, "add3", v): three_seeds([12] * N_PROBLEMS) for m in ("aligned", "weak")
               for v in ("ground_truth", "nsr", "psr")}
    entropy = {(m, "add3", v): {1: h, 2: h + 0.1, 3: h - 0.1} for m in ("aligned", "weak")
               for v, h in (("ground_truth", 0.5), ("psr", 0.4), ("nsr", 1.5))}
    table = predictions.evaluate_predictions(evidence(tmp_path, TWO_CELLS, trained, entropy))
    assert verdicts(table, "P1") == ("supported", ["supported", "supported"])
    assert verdicts(table, "P9") == ("supported", ["supported", "supported"])
    row = table.filter(table["claim"] == "NSR entropy above ground_truth").row(0, named=True)
    assert row["value"] == pytest.approx(1.0)
    # NSR gains as much as ground truth in the weak cell: "NSR does not help weak cells" is contradicted
    assert verdicts(table, "P8")[0] == "contradicted"


def test_alignment_ranks_gains_better_than_a_flat_contamination_check(tmp_path):
    cells = {(f"m{i}", "add3"): (p, "strong" if p >= 0.5 else "weak", 0.0, 0.0)
             for i, p in enumerate([0.9, 0.7, 0.6, 0.3, 0.2, 0.1])}
    # every trick gains more the higher the base model's pass@k
    trained = {(f"m{i}", "add3", trick): three_seeds([8 + 6 - i] * N_PROBLEMS)
               for i in range(6) for trick in ("random", "one_shot")}
    table = predictions.evaluate_predictions(evidence(tmp_path, cells, trained))
    row = table.filter(table["id"] == "P10").row(0, named=True)
    assert row["value"] == pytest.approx(1.0)  # Spearman 1 for pass@k, 0 for a constant contamination statistic
    assert row["verdict"] == "supported"


def test_base_profiles_record_the_latent_behaviours(tmp_path):
    """Each cell's profile carries the probe's greedy accuracy, format rate and strategy share beside pass@k."""
    ev = evidence(tmp_path, TWO_CELLS, {})
    row = ev.profiles.filter(ev.profiles["model"] == "aligned").row(0, named=True)
    assert row["base_pass_at_1"] == pytest.approx(0.3) and row["maj_gap"] == pytest.approx(0.4)
    assert row["base_greedy"] == pytest.approx(0.7)
    assert (row["base_format_rate"], row["base_strategy_share"]) == (0.6, 0.25)
