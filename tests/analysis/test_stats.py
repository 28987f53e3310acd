"""Statistics: each on hand-checkable inputs, the bootstrap, and the published Procgen aggregates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from heldout.analysis import stats as S

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
PUBLISHED_RUNS = REFERENCE / "published_runs_easy200_25M.json"
BASELINES = REFERENCE / "BASELINES.md"
nan = np.nan


# --- each statistic on inputs small enough to check by hand ------------------------------------------


def test_iqm_trims_a_quarter_from_each_end_of_all_runs_pooled() -> None:
    # 8 scores 1..8 over 4 runs x 2 tasks: drop 1,2 and 7,8 -> mean(3,4,5,6) = 4.5
    scores = np.array([[1, 8], [5, 2], [3, 6], [7, 4]], dtype=float)
    assert S.aggregate_iqm(scores) == pytest.approx(4.5)
    # 10 scores: int(2.5) = 2 cut each end -> mean(3..8) = 5.5; an outlier does not move it
    ten = np.arange(1, 11, dtype=float).reshape(5, 2)
    assert S.aggregate_iqm(ten) == pytest.approx(5.5)
    ten[0, 0] = 1e6  # now 2..10 and 1e6: drop 2, 3 and 10, 1e6 -> mean(4..9)
    assert S.aggregate_iqm(ten) == pytest.approx(6.5)


def test_iqm_leaves_missing_runs_out() -> None:
    scores = np.array([[1, 2], [3, 4], [5, nan], [7, nan]])  # 6 scores: cut 1 -> mean(2,3,4,5)
    assert S.aggregate_iqm(scores) == pytest.approx(3.5)


def test_mean_and_median_are_over_per_task_means() -> None:
    # ragged: task A has runs 0 and 1 (mean 0.5), task B one run of 1 -> 0.75, not the pooled 2/3
    scores = np.array([[0.0, 1.0], [1.0, nan]])
    assert S.aggregate_mean(scores) == pytest.approx(0.75)
    assert S.aggregate_median(np.array([[0.1, 0.9, 0.5]])) == pytest.approx(0.5)
    assert S.aggregate_median(np.array([[0.0, 3.0, 1.0, 2.0], [0.0, 3.0, 1.0, 2.0]])) == pytest.approx(1.5)


def test_optimality_gap_counts_only_the_shortfall_below_one() -> None:
    scores = np.array([[0.5, 1.2], [0.0, 0.9]])  # shortfalls 0.5, 0, 1, 0.1
    assert S.aggregate_optimality_gap(scores) == pytest.approx(0.4)
    assert S.aggregate_optimality_gap(scores, gamma=0.5) == pytest.approx(0.5 / 4)


def test_probability_of_improvement_counts_ties_as_half() -> None:
    x = np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0]])
    y = np.array([[2.0, 5.0], [2.0, 6.0], [0.0, 7.0]])
    # task 0: wins 1 + (0.5 + 0.5 + 1) + 3 = 6 of 9; task 1 identical samples -> 1/2
    assert S.probability_of_improvement(x, y) == pytest.approx((6 / 9 + 0.5) / 2)
    assert S.probability_of_improvement(x, y) + S.probability_of_improvement(y, x) == pytest.approx(1.0)
    # different run counts and a missing run
    assert S.probability_of_improvement(np.array([[3.0], [1.0]]), np.array([[2.0], [nan]])) == 0.5


def test_probability_of_improvement_needs_the_same_tasks() -> None:
    with pytest.raises(ValueError, match="tasks"):
        S.probability_of_improvement(np.zeros((2, 3)), np.zeros((2, 2)))


def test_score_distribution_is_the_fraction_of_runs_above_tau() -> None:
    scores = np.array([[0.1, 0.5], [0.9, nan]])
    np.testing.assert_allclose(S.score_distribution(scores, [0.0, 0.5, 1.0]), [1.0, 1 / 3, 0.0])


def test_min_max_and_reference_normalisation() -> None:
    out = S.min_max_normalize({"coinrun": [7.5, 10.0], "bigfish": [1.0]}, "easy")
    np.testing.assert_allclose(out["coinrun"], [0.5, 1.0])
    assert out["bigfish"][0] == pytest.approx(0.0)
    assert S.min_max_normalize({"bigfish": [10.0]}, "hard")["bigfish"][0] == pytest.approx(0.25)
    rel = S.reference_normalize({"coinrun": [3.0, 6.0]}, {"coinrun": [2.0, 4.0]})
    np.testing.assert_allclose(rel["coinrun"], [1.0, 2.0])


def test_normalisation_errors_name_the_bad_value_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'medium'.*easy, hard"):
        S.min_max_normalize({"coinrun": [1.0]}, "medium")
    with pytest.raises(ValueError, match=r"cartpole.*bigfish"):
        S.min_max_normalize({"cartpole": [1.0]}, "easy")
    with pytest.raises(KeyError, match="coinrun"):
        S.reference_normalize({"coinrun": [1.0]}, {"maze": [1.0]})
    with pytest.raises(ValueError, match="repetitions"):
        S.aggregate_estimates({"a": np.ones((3, 2))}, reps=0)
    with pytest.raises(ValueError, match=r"'mode'.*iqm"):
        S.aggregate_estimates({"a": np.ones((3, 2))}, metrics=["mode"])


def test_score_matrix_pads_ragged_tasks_with_nan() -> None:
    m = S.score_matrix({"b": [1.0], "a": [2.0, 3.0]})
    np.testing.assert_array_equal(m, [[2.0, 1.0], [3.0, nan]])
    with pytest.raises(KeyError, match="'?c'?.*a, b"):
        S.score_matrix({"b": [1.0], "a": [2.0]}, ["a", "c"])


# --- the bootstrap -------------------------------------------------------------------------------------


def test_stratified_resample_draws_each_task_from_its_own_runs() -> None:
    scores = np.array([[1.0, 10.0, 100.0], [2.0, 20.0, nan], [3.0, 30.0, nan]])
    samples = S.stratified_resample(scores, 500, np.random.default_rng(0))
    assert samples.shape == (500, 3, 3)
    assert set(np.unique(samples[:, :, 0])) == {1.0, 2.0, 3.0}
    assert set(np.unique(samples[:, :, 1])) == {10.0, 20.0, 30.0}
    assert np.all(samples[:, 0, 2] == 100.0) and np.all(np.isnan(samples[:, 1:, 2]))


def test_bootstrap_is_reproducible_under_a_seed() -> None:
    scores = np.random.default_rng(1).normal(size=(5, 4))
    a = S.aggregate_estimates({"x": scores}, reps=300, seed=7)
    b = S.aggregate_estimates({"x": scores}, reps=300, seed=7)
    c = S.aggregate_estimates({"x": scores}, reps=300, seed=8)
    assert a == b
    assert a["x"]["iqm"].ci != c["x"]["iqm"].ci
    assert a["x"]["mean"].value == c["x"]["mean"].value == pytest.approx(scores.mean())
    lo, hi = a["x"]["mean"].ci
    assert lo < scores.mean() < hi


def test_no_ci_with_a_single_run() -> None:
    est = S.aggregate_estimates({"x": np.array([[0.2, 0.4]])}, reps=100)["x"]
    assert est["mean"].value == pytest.approx(0.3) and est["mean"].ci is None
    assert est["mean"].format() == "0.300 (no CI)"
    assert S.mean_ci_over_seeds([5.0]).ci is None
    assert S.probability_of_improvement_ci(np.ones((1, 2)), np.ones((3, 2)), reps=50).ci is None


def test_bootstrap_ci_coverage_is_near_nominal_on_synthetic_data() -> None:
    """95% CIs of the mean of 10 runs x 5 tasks of N(mu_task, 1) cover the true value ~95% of the time."""
    rng = np.random.default_rng(123)
    task_means = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    truth = task_means.mean()
    trials, covered, widths = 200, 0, []
    for k in range(trials):
        scores = rng.normal(task_means, 1.0, size=(10, 5))
        est = S.bootstrap_ci(scores, S.aggregate_mean, reps=500, seed=k)
        covered += est.ci[0] <= truth <= est.ci[1]
        widths.append(est.ci[1] - est.ci[0])
    # percentile intervals under-cover a little at n=10; the normal-theory width is 2*1.96/sqrt(50)
    assert 0.85 <= covered / trials <= 0.99
    assert np.mean(widths) == pytest.approx(2 * 1.96 / np.sqrt(50), rel=0.15)


def test_probability_of_improvement_ci_brackets_the_estimate_and_orders_agents() -> None:
    rng = np.random.default_rng(0)
    better, worse = rng.normal(1.0, 1.0, size=(10, 4)), rng.normal(0.0, 1.0, size=(10, 4))
    est = S.probability_of_improvement_ci(better, worse, reps=500, seed=0)
    assert est.ci[0] <= est.value <= est.ci[1]
    assert est.ci[0] > 0.5


def test_performance_profile_is_monotone_with_cis() -> None:
    scores = np.random.default_rng(0).uniform(size=(6, 3))
    taus = np.linspace(0, 1, 11)
    profile, cis = S.performance_profile(scores, taus, reps=200)
    assert profile[0] == 1.0 and profile[-1] == 0.0 and np.all(np.diff(profile) <= 0)
    assert cis.shape == (2, 11) and np.all(cis[0] <= profile + 1e-12) and np.all(profile <= cis[1] + 1e-12)


def test_load_scores_rejects_other_layouts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"PPO": {"coinrun": "7.5"}}))
    with pytest.raises(ValueError, match=r"'PPO'.*'coinrun'.*list of numbers"):
        S.load_scores(bad)
    with pytest.raises(ValueError, match="cannot read"):
        S.load_scores(tmp_path / "missing.json")


# --- the published Procgen aggregates (BASELINES.md) -----------------------------------------------------


def _baselines_table() -> dict[str, dict[str, tuple[float, ...]]]:
    """The aggregate table of BASELINES.md: {algorithm: {"mean"|"iqm": (value[, low, high]), "ppo": (%,)}}."""
    rows = {}
    number = r"(\d+\.\d+)(?: \[(\d+\.\d+), (\d+\.\d+)\])?"
    pattern = re.compile(rf"^\| ([\w-]+) \| {number} \| {number} \| (\d+)% \|$")
    for line in BASELINES.read_text().splitlines():
        m = pattern.match(line.strip())
        if m:
            g = m.groups()
            rows[g[0]] = {
                "mean": tuple(float(v) for v in g[1:4] if v is not None),
                "iqm": tuple(float(v) for v in g[4:7] if v is not None),
                "ppo": (float(g[7]) / 100,),
            }
    return rows


@pytest.mark.skipif(not PUBLISHED_RUNS.is_file(), reason=f"{PUBLISHED_RUNS} is absent")
def test_published_procgen_aggregates_are_reproduced() -> None:
    """Agarwal et al. (2021)'s Procgen numbers: 6 agents x 16 games x 10 runs, 2000 resamples."""
    assert BASELINES.is_file(), f"{BASELINES} should sit beside {PUBLISHED_RUNS.name}"
    table = _baselines_table()
    assert set(table) == {"PPO", "MixReg", "UCB-DrAC", "PLR", "PPG", "IDAAC"}
    runs = S.load_scores(PUBLISHED_RUNS)
    games = S.common_tasks(runs)
    assert len(games) == 16
    normalised = {a: S.score_matrix(S.min_max_normalize(runs[a], "easy"), games) for a in table}
    est = S.aggregate_estimates(normalised, ["mean", "iqm"], reps=2000, seed=0)
    checked_cis = 0
    for agent, row in table.items():
        for metric in ("mean", "iqm"):
            assert est[agent][metric].value == pytest.approx(row[metric][0], abs=0.005), (agent, metric)
            if len(row[metric]) == 3:
                checked_cis += 1
                assert est[agent][metric].ci == pytest.approx(row[metric][1:], abs=0.01), (agent, metric)
        rel = S.score_matrix(S.reference_normalize(runs[agent], runs["PPO"]), games)
        assert S.aggregate_mean(rel) == pytest.approx(row["ppo"][0], abs=0.005), agent
    assert checked_cis == 6


# --- the same conventions as scipy (which rliable calls) ---------------------------------------------------


def test_iqm_and_probability_of_improvement_agree_with_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for runs, tasks in [(3, 2), (5, 7), (10, 16), (4, 1)]:
        scores = rng.integers(0, 5, size=(runs, tasks)).astype(float)  # many ties
        assert S.aggregate_iqm(scores) == pytest.approx(scipy_stats.trim_mean(scores, 0.25, axis=None))
        other = rng.integers(0, 5, size=(runs + 1, tasks)).astype(float)
        u = [
            scipy_stats.mannwhitneyu(scores[:, t], other[:, t], alternative="greater").statistic
            for t in range(tasks)
        ]
        expected = np.mean(np.array(u) / (runs * (runs + 1)))
        assert S.probability_of_improvement(scores, other) == pytest.approx(expected)


def test_iqm_difference_ci_is_the_difference_of_trimmed_means() -> None:
    from scipy.stats import trim_mean

    from heldout.analysis.stats import iqm_difference_ci

    rng = np.random.default_rng(3)
    x, y = rng.random((5, 1)), rng.random((7, 1))
    est = iqm_difference_ci(x, y)
    assert est.value == pytest.approx(trim_mean(x[:, 0], 0.25) - trim_mean(y[:, 0], 0.25))
    assert est.ci is not None and est.ci[0] <= est.value <= est.ci[1]
    # the same resamples: moving Y by c moves the difference and both ends of its CI by -c
    moved = iqm_difference_ci(x, y + 0.5)
    assert moved.value == pytest.approx(est.value - 0.5)
    assert moved.ci == pytest.approx((est.ci[0] - 0.5, est.ci[1] - 0.5))
    # arms without spread: no sampling error
    flat = iqm_difference_ci(np.full((5, 1), 0.9), np.full((5, 1), 0.4))
    assert flat.value == pytest.approx(0.5) and flat.ci == pytest.approx((0.5, 0.5))
    assert iqm_difference_ci(x[:1], y).ci is None  # one run: no interval
