"""Experiment identity (seeds of one experiment are one row, different experiments never are) and the
per-context results of contextual experiments (bins, gap per bin, grid, the report's section)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_runs import make_context_run, make_run  # noqa: E402

from heldout.analysis.contexts import context_results  # noqa: E402
from heldout.analysis.experiment import experiment_identity, experiment_labels  # noqa: E402
from heldout.analysis.report import group_runs, load_run_record, write_report  # noqa: E402

EXTRAPOLATION = {"mode": "extrapolation", "train": {"gravity": "4.9:14.7"}, "test": {"gravity": "14.7:29.4"}}
INTERPOLATION = {
    "mode": "interpolation",
    "train": {"gravity": "4.9:7.35|12.25:14.7"},
    "test": {"gravity": "7.35:12.25"},
}


def test_identity_ignores_how_a_run_ran_but_not_what_it_ran():
    base = {"env": "cartpole", "agent": "ppo", "timesteps": 4096, "contexts": EXTRAPOLATION}
    same = experiment_identity(base)
    # the seed, device, threads, checkpointing and output folder are not the experiment
    other_run = {**base, "seed": 3, "device": "cpu", "torch_threads": 2, "checkpoint_keep": 5, "out": "/x"}
    assert experiment_identity(other_run) == same
    # one distribution written two ways is one experiment; a missing mode is the default one
    spelled = {
        **base,
        "contexts": {"train": {"gravity": {"uniform": [4.9, 14.7]}}, "test": {"gravity": "14.7:29.4"}},
    }
    assert experiment_identity(spelled) == same
    # a partial config.yaml equals the full one with the defaults written out
    from heldout.protocol.config import TrainConfig

    full = TrainConfig(**{**base, "seed": 0}).to_dict()
    assert experiment_identity(full) == same
    # but what was run is
    for change in (
        {"contexts": INTERPOLATION},
        {"timesteps": 8192},
        {"agent_kwargs": {"n_steps": 64}},
        {"visible_context": "concat"},
        {"eval_episodes": 50},
        {"env": "pendulum"},
        {"agent": "drac"},
    ):
        assert experiment_identity({**base, **change}) != same, change


def test_level_identity_covers_the_level_protocol():
    base = {"env": "coinrun", "agent": "ppo", "timesteps": 1000}
    ident = experiment_identity(base)
    assert ident.kind == "levels"
    for change in (
        {"num_levels": 500},
        {"start_level": 7},
        {"distribution_mode": "hard"},
        {"env_options": {"use_backgrounds": False}},
    ):
        assert experiment_identity({**base, **change}) != ident, change
    assert experiment_identity({**base, "seed": 9, "eval_freq": 100}) == ident


def test_labels_name_the_preset_or_the_fields_that_differ():
    a = experiment_identity({"env": "cartpole", "contexts": EXTRAPOLATION})
    b = experiment_identity({"env": "cartpole", "contexts": INTERPOLATION})
    labels = experiment_labels(
        [(1, "ppo", "cartpole", a, None), (2, "ppo", "cartpole", b, None), (3, "ppo", "cartpole", a, None)]
    )
    assert labels[1] == labels[3] != labels[2]
    assert labels[1] == "ppo (extrapolation: train gravity U[4.9, 14.7]; test gravity U[14.7, 29.4])"
    assert "interpolation: train gravity U[4.9, 7.35]u[12.25, 14.7]" in labels[2]
    named = experiment_labels(
        [
            (1, "ppo", "cartpole", a, "cartpole-gravity-extrapolation"),
            (2, "ppo", "cartpole", b, "cartpole-gravity-interpolation"),
        ]
    )
    assert named == {1: "ppo (cartpole-gravity-extrapolation)", 2: "ppo (cartpole-gravity-interpolation)"}
    # one experiment per env: the agent alone
    assert experiment_labels([(1, "ppo", "cartpole", a, None), (2, "ppo", "pendulum", b, None)]) == {
        1: "ppo",
        2: "ppo",
    }


def test_two_contextual_experiments_are_two_rows_and_two_seeds_one(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_context_run(runs, EXTRAPOLATION, seed=seed, offset=10.0 * seed)
    make_context_run(runs, INTERPOLATION, seed=0)
    report = write_report([runs], tmp_path / "rep", reps=200)
    header, rows = report.tables["per_game"]
    assert len(rows) == 2
    col = {h: i for i, h in enumerate(header)}
    seeds = sorted(r[col["seeds"]] for r in rows)
    assert seeds == [1, 2]
    for r in rows:  # no Procgen protocol columns for contextual rows; the split instead
        assert r[col["distribution_mode"]] is None and r[col["num_levels"]] is None
        assert r[col["kind"]] == "contexts" and r[col["split"]].split(":")[0] in (
            "extrapolation",
            "interpolation",
        )
    assert len({r[col["experiment"]] for r in rows}) == 2
    md = report.markdown
    assert "2 experiment(s)" in md
    # contextual rows carry their split, never the Procgen protocol
    assert "levels from" not in md and "training levels" not in md and "[0, 200)" not in md
    assert "extrapolation: train gravity U[4.9, 14.7]; test gravity U[14.7, 29.4]" in md
    assert "Per-level returns" not in md and not list((tmp_path / "rep").glob("levels_*.png"))
    assert "## Per context" in md
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("contexts_*.png"))
    assert len(pngs) == 2, pngs  # one figure per experiment; one feature each, so no grid
    assert "per_context" in report.tables


def test_a_report_of_level_and_context_runs_keeps_each_wording(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "coinrun", "ppo", 0, 0.4)
    make_context_run(runs, EXTRAPOLATION, seed=0)
    md = write_report([runs], tmp_path / "rep", reps=100).markdown
    assert "held-out test levels or held-out test contexts" in md
    assert "easy, levels [0, 200)" in md  # the Procgen row
    assert "Per-level returns, coinrun" in md and "Per-level returns, cartpole" not in md


def test_bins_are_the_mean_over_runs_of_each_runs_bin_mean(tmp_path):
    runs = tmp_path / "runs"
    paths = [make_context_run(runs, EXTRAPOLATION, seed=s, offset=10.0 * s, episodes=30) for s in (0, 1)]
    records = [load_run_record(p) for p in paths]
    res = context_results("cartpole", "ppo", records, reps=200, bins=5)
    assert res is not None and res.features == ["gravity"] and res.runs == 2
    assert res.train_support["gravity"] == ((4.9, 14.7),)
    # by hand: return = gravity + offset; the same contexts in both runs
    g = records[0].contexts["test"]["gravity"]
    edges = np.linspace(14.7, 29.4, 6)
    for b, cell in enumerate(res.bins["test"]["gravity"]):
        inside = (g >= edges[b]) & ((g < edges[b + 1]) if b < 4 else (g <= edges[b + 1]))
        assert cell.episodes == int(inside.sum())
        if not inside.any():
            assert cell.mean is None
            continue
        per_run = [g[inside].mean() + 0.0, g[inside].mean() + 10.0]
        assert cell.mean.value == pytest.approx(np.mean(per_run))
        assert cell.x == pytest.approx(g[inside].mean())
        # gap: each run's train mean minus its bin mean, averaged over runs
        gaps = [records[k].mean("train") - per_run[k] for k in (0, 1)]
        assert cell.gap.value == pytest.approx(np.mean(gaps))
        assert cell.mean.ci is not None and cell.mean.ci[0] <= cell.mean.value <= cell.mean.ci[1]
    assert all(cell.gap is None for cell in res.bins["train"]["gravity"])


def test_an_interpolation_hole_leaves_its_training_bins_empty(tmp_path):
    rec = load_run_record(make_context_run(tmp_path / "runs", INTERPOLATION, episodes=60))
    res = context_results("cartpole", "ppo", [rec], reps=50, bins=5)
    # training hull [4.9, 14.7] in 5 bins of 1.96: the middle one [8.82, 10.78) lies in the hole
    middle = res.bins["train"]["gravity"][2]
    assert (middle.lo, middle.episodes, middle.mean) == (pytest.approx(8.82), 0, None)
    assert res.train_support["gravity"] == ((4.9, 7.35), (12.25, 14.7))


def test_two_feature_splits_get_a_grid_with_the_training_boxes(tmp_path):
    contexts = {
        "mode": "combinatorial",
        "train": [
            {"gravity": "4.9:9.8", "length": "0.25:0.75"},
            {"gravity": "4.9:14.7", "length": "0.25:0.5"},
        ],
        "test": {"gravity": "9.8:14.7", "length": "0.5:0.75"},
    }
    rec = load_run_record(make_context_run(tmp_path / "runs", contexts, episodes=80))
    res = context_results("cartpole", "ppo", [rec], reps=50, bins=4)
    grid = res.grid
    assert grid["features"] == ("gravity", "length")
    assert grid["train_boxes"] == [((4.9, 9.8), (0.25, 0.75)), ((4.9, 14.7), (0.25, 0.5))]
    assert grid["test_boxes"] == [((9.8, 14.7), (0.5, 0.75))]
    # every box edge is a cell edge: no cell straddles train and test
    assert np.any(np.isclose(grid["x_edges"], 9.8)) and np.any(np.isclose(grid["y_edges"], 0.5))
    # a cell by hand: return = gravity + length over train and test episodes in it
    xs = np.concatenate([rec.contexts[s]["gravity"] for s in ("train", "test")])
    ys = np.concatenate([rec.contexts[s]["length"] for s in ("train", "test")])
    xe, ye = grid["x_edges"], grid["y_edges"]
    inside = (xs >= xe[0]) & (xs < xe[1]) & (ys >= ye[0]) & (ys < ye[1])
    assert inside.any()
    assert grid["mean"][0, 0] == pytest.approx(np.mean(xs[inside] + ys[inside]))
    # the top-right cell holds test contexts only, the top-left train ones only: both seen
    assert np.isfinite(grid["mean"][-1, -1]) and np.isfinite(grid["mean"][-1, 0])


def test_group_runs_puts_seeds_of_one_experiment_in_one_cell(tmp_path):
    runs = tmp_path / "runs"
    recs = [load_run_record(make_context_run(runs, EXTRAPOLATION, seed=s)) for s in (0, 1, 2)]
    recs.append(load_run_record(make_context_run(runs, EXTRAPOLATION, seed=0, timesteps=8192)))
    groups = group_runs(recs)
    cells = sorted((label, len(rs)) for label, envs in groups.items() for rs in envs.values())
    assert cells == [("ppo (4.1k steps)", 3), ("ppo (8.19k steps)", 1)]
