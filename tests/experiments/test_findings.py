"""Findings: the registry's specs, the verdict logic on hand-worked run folders, a tiny finding end to end.

The verdicts are checked against figures worked out by hand from crafted ``eval/*.csv`` files (IQMs of
a few numbers, a least-squares slope, the power formula), not against the module's own arithmetic.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from heldout.analysis.runs import find_run_folders, load_run_record
from heldout.analysis.stats import Estimate
from heldout.experiments.findings import FINDINGS, SCALES, Finding, Scale
from heldout.experiments.findings.verdict import VERDICTS, compute, decide, lines, seeds_needed

REPRODUCED, OPPOSITE, INCONCLUSIVE = VERDICTS


def _write_run(folder: Path, config: dict, train: list[float], test: list[float]) -> None:
    """A finished run folder as far as the analysis reads it: config, summary, both evaluation CSVs."""
    import yaml

    (folder / "eval").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"env": "cartpole", "agent": "ppo", **config}))
    splits = {
        name: {"mean": sum(r) / len(r), "episodes": len(r)} for name, r in (("train", train), ("test", test))
    }
    (folder / "summary.json").write_text(json.dumps({"timesteps": 1000, "splits": splits}))
    for split, returns in (("train", train), ("test", test)):
        rows = "".join(f"{i},{i},{r}\n" for i, r in enumerate(returns))
        (folder / "eval" / f"{split}.csv").write_text("episode,level,return\n" + rows)


def _finding(statistic: str, key: str | None, values: tuple, direction: int = 1) -> Finding:
    scale = Scale(base={"preset": "cartpole-gravity-extrapolation"}, values=values, seeds=2)
    return Finding("t", "a test", "a claim", direction, statistic, key, {s: scale for s in SCALES})


def _records(root: Path) -> list:
    return [load_run_record(p) for p in find_run_folders([root])]


def test_a_gap_is_the_iqm_of_train_minus_test_and_is_reproduced_when_every_seed_shows_it(tmp_path):
    tests = [0.2, 0.4, 0.3, 0.5]  # train 1.0 each: gaps 0.8, 0.6, 0.7, 0.5 -> IQM (0.6 + 0.7) / 2
    for seed, t in enumerate(tests):
        _write_run(tmp_path / f"seed{seed}", {"seed": seed}, [1.0, 1.0], [t, t])
    v = compute(_finding("gap", None, ()), "cpu", _records(tmp_path))
    assert v.estimate.value == pytest.approx(0.65)
    assert 0.5 <= v.estimate.ci[0] <= v.estimate.ci[1] <= 0.8
    assert (v.verdict, v.seeds, v.seeds_needed) == (REPRODUCED, 4, None)
    # a claim that test > train (gap < 0) is contradicted by the same runs
    assert compute(_finding("gap", None, (), direction=-1), "cpu", _records(tmp_path)).verdict == OPPOSITE


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ([0.9, 1.0, 0.8, 0.9, 1.0], [0.1, 0.0, 0.2, 0.1, 0.0], REPRODUCED),
        ([0.1, 0.0, 0.2, 0.1, 0.0], [0.9, 1.0, 0.8, 0.9, 1.0], OPPOSITE),
        ([0.0, 1.0, 0.0, 1.0, 0.5], [1.0, 0.0, 1.0, 0.0, 0.4], INCONCLUSIVE),
    ],
)
def test_a_difference_of_test_iqms_decides_by_the_side_of_zero_its_ci_is_on(tmp_path, a, b, verdict):
    for arm, returns in (("plr", a), ("uniform", b)):
        for seed, r in enumerate(returns):
            _write_run(tmp_path / arm / f"seed{seed}", {"seed": seed, "level_sampler": arm}, [1.0], [r])
    finding = _finding("difference", "level_sampler", ("plr", "uniform"))
    v = compute(finding, "cpu", _records(tmp_path))
    # IQM of 5 scores trims int(1.25) = 1 from each end: the mean of the middle three
    iqm = lambda xs: float(np.mean(sorted(xs)[1:4]))  # noqa: E731
    assert v.estimate.value == pytest.approx(iqm(a) - iqm(b))
    assert v.verdict == verdict
    assert v.groups["plr"]["test"] == a and v.groups["uniform"]["test"] == b
    if verdict == INCONCLUSIVE:  # effect 0.5 - 0.4667 = 0.0333, a wide CI: many seeds asked for
        assert v.seeds_needed is not None and v.seeds_needed > 5
        # the printed verdict gives the command that runs that many
        assert lines(finding, v)[-1].endswith(f"heldout findings run t --scale cpu --seeds {v.seeds_needed})")


def test_a_slope_is_the_least_squares_slope_of_the_mean_gap_on_log_levels(tmp_path):
    gaps = {1: 0.6, 10: 0.4, 100: 0.2}  # log10 steps equal: slope -0.2 per ln(10)
    for n, gap in gaps.items():
        for seed, wobble in enumerate((-0.05, 0.05)):
            _write_run(
                tmp_path / f"n{n}" / f"seed{seed}",
                {"seed": seed, "num_levels": n},
                [1.0],
                [1.0 - gap - wobble],
            )
    v = compute(_finding("slope", "num_levels", (1, 10, 100), direction=-1), "cpu", _records(tmp_path))
    assert v.estimate.value == pytest.approx(-0.2 / math.log(10))
    assert v.verdict == REPRODUCED and v.estimate.ci[1] < 0


def test_arms_told_apart_by_a_nested_boolean_are_read_from_the_run_config(tmp_path):
    """srym-vs-poincare-minigrid's arms differ in ``agent_kwargs.s_rym`` (True first): the arm of a run is
    read from its config.yaml's nested mapping, and a YAML boolean is the arm the catalog names."""
    a, b = [0.3, 0.2, 0.4, 0.3], [0.0, 0.0, 0.1, 0.0]
    for on, returns in ((True, a), (False, b)):
        for seed, r in enumerate(returns):
            config = {"seed": seed, "agent_kwargs": {"representation": "poincare", "s_rym": on}}
            _write_run(tmp_path / f"{on}" / f"seed{seed}", config, [0.5], [r])
    finding = FINDINGS["srym-vs-poincare-minigrid"]
    v = compute(finding, "cpu", _records(tmp_path))
    # IQM of 4 scores trims one from each end: the mean of the middle two
    assert v.estimate.value == pytest.approx((0.3 + 0.3) / 2 - (0.0 + 0.0) / 2)
    assert v.groups["True"]["test"] == a and v.groups["False"]["test"] == b
    assert "  P(s_rym=True > s_rym=False) on test: 1.00" in lines(finding, v)[3]


def test_a_missing_arm_is_named():
    with pytest.raises(ValueError, match="level_sampler=uniform"):
        compute(_finding("difference", "level_sampler", ("plr", "uniform")), "cpu", [])


def test_under_a_shift_the_test_return_is_read_from_the_shifted_evaluation(tmp_path):
    """A finding with a shift compares its arms on eval/test-wrapper-<slug>.csv, keeps the clean test
    beside it, and names the command that evaluates a run that lacks the shifted file."""
    shifted = Finding(
        "t", "a test", "a claim", 1, "difference", "agent", {s: Scale(base={}, values=("a", "b")) for s in SCALES},
        shift="color-jitter:hue=0.5",
    )  # fmt: skip
    assert shifted.test_split == "test-wrapper-color-jitter-hue=0.5"
    # clean test: a ahead of b by 0.3; under the shift: b ahead of a by 0.4 (4 seeds, IQM of equal values)
    for arm, clean, moved in (("a", 0.9, 0.2), ("b", 0.6, 0.6)):
        for seed in range(4):
            run = tmp_path / arm / f"seed{seed}"
            _write_run(run, {"seed": seed, "agent": arm}, [1.0], [clean])
            (run / "eval" / f"{shifted.test_split}.csv").write_text(f"episode,level,return\n0,0,{moved}\n")
    records = [load_run_record(p, (shifted.test_split,)) for p in find_run_folders([tmp_path])]
    v = compute(shifted, "cpu", records)
    assert v.estimate.value == pytest.approx(0.2 - 0.6) and v.verdict == OPPOSITE
    assert v.groups["a"]["clean test"] == [0.9] * 4 and v.groups["a"]["test"] == [0.2] * 4
    assert v.extra["shift"] == "color-jitter:hue=0.5"
    assert "the held-out levels under color-jitter:hue=0.5" in "\n".join(lines(shifted, v))
    # the same runs without the shift: a ahead
    assert compute(_finding("difference", "agent", ("a", "b")), "cpu", records).verdict == REPRODUCED
    (tmp_path / "b" / "seed2" / "eval" / f"{shifted.test_split}.csv").unlink()
    records = [load_run_record(p, (shifted.test_split,)) for p in find_run_folders([tmp_path])]
    with pytest.raises(
        ValueError, match=r"b/seed2.*no eval/test-wrapper-color-jitter-hue=0.5.csv.*heldout findings run t"
    ):
        compute(shifted, "cpu", records)


def test_the_power_estimate_worked_by_hand():
    # se = 0.4 / (2 * 1.96) = 0.10204; 5 * (2.8016 * 0.10204 / 0.1)^2 = 40.86 -> 41
    assert seeds_needed(Estimate(0.1, (-0.1, 0.3)), 5) == 41
    assert seeds_needed(Estimate(0.0, (-0.1, 0.1)), 5) is None
    assert seeds_needed(Estimate(0.1, None), 1) is None
    assert decide(Estimate(0.1, (0.01, 0.2)), -1, 5) == (OPPOSITE, None)
    assert decide(Estimate(-0.1, (-0.2, -0.01)), -1, 5) == (REPRODUCED, None)


@pytest.mark.parametrize("name", sorted(FINDINGS))
def test_every_finding_expands_to_a_valid_sweep_at_every_scale(name):
    from heldout.envs.minihack import missing as minihack_missing
    from heldout.sweep.spec import build_runs, parse_spec, validate_runs

    finding = FINDINGS[name]
    for scale in SCALES:
        s = finding.scales[scale]
        runs = build_runs(parse_spec(finding.spec(scale)))
        if runs[0].config.env.startswith("minihack-") and minihack_missing():
            # a MiniHack scale needs the minihack extra: refused in one line naming it
            with pytest.raises(ValueError, match=r"'minihack' extra"):
                validate_runs(runs, name)
        else:
            validate_runs(runs, name)
            if finding.shift:  # the shift applies to this scale's env and keeps what the policy takes
                from heldout.protocol.families import family_for

                config = runs[0].config
                family_for(config.env).check_eval_wrappers(config, [finding.shift])
        assert len(runs) == s.seeds * max(len(s.values), 1)
        assert {finding.arm_of(r.config.to_dict()) for r in runs} == (set(s.values) or {None})
        assert s.protocol


def test_the_registry_has_the_six_kinds_the_issue_asks_for():
    statistics = {f.statistic for f in FINDINGS.values()}
    keys = {f.key for f in FINDINGS.values()}
    assert len(FINDINGS) >= 6 and statistics == {"gap", "difference", "slope"}
    assert {"level_sampler", "visible_context", "agent", "num_levels"} <= keys


def _main(argv: list[str]) -> tuple[int, str, str]:
    from heldout.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_a_tiny_finding_runs_end_to_end_resumes_and_reports(tmp_path, monkeypatch):
    """A gap finding on CartPole contexts, 2 seeds x 128 steps, through the real CLI and sweep pool."""
    tiny = Scale(
        base={
            "preset": "cartpole-gravity-extrapolation", "timesteps": 128, "num_envs": 2, "eval_episodes": 3,
            "eval_freq": 0, "checkpoint_freq": 0, "torch_threads": 1,
            "agent_kwargs": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
        },
        seeds=2,
        protocol="tiny",
    )  # fmt: skip
    finding = Finding("tiny", "a test", "train > test", 1, "gap", None, {s: tiny for s in SCALES})
    monkeypatch.setitem(FINDINGS, "tiny", finding)
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(["findings", "run", "tiny", "--workers", "2", "--no-progress"])
    assert code == 0, err
    folder = tmp_path / "findings" / "tiny-cpu"
    verdict = json.loads((folder / "verdict.json").read_text())
    # the gap recomputed from the evaluation CSVs: with 2 seeds the IQM trims nothing, so it is the mean
    gaps = []
    for run in sorted(folder.glob("cartpole/ppo/seed*")):
        means = {s: np.mean([float(r.split(",")[2]) for r in (run / "eval" / f"{s}.csv").read_text().splitlines()[1:]])
                 for s in ("train", "test")}  # fmt: skip
        gaps.append(means["train"] - means["test"])
    assert len(gaps) == 2
    assert verdict["estimate"]["value"] == pytest.approx(float(np.mean(gaps)))
    assert verdict["verdict"] in VERDICTS and verdict["seeds"] == 2
    assert (folder / "verdict.png").stat().st_size > 1000
    assert "verdict: " in out
    # run again: both runs skipped (the sweep's plan), the same verdict
    before = {p: p.stat().st_mtime_ns for p in folder.glob("cartpole/ppo/seed*/summary.json")}
    code, out2, _ = _main(["findings", "run", "tiny", "--no-progress"])
    assert code == 0 and "2 skipped" in out2
    assert before == {p: p.stat().st_mtime_ns for p in folder.glob("cartpole/ppo/seed*/summary.json")}
    assert json.loads((folder / "verdict.json").read_text())["estimate"] == verdict["estimate"]
    assert os.listdir(tmp_path) == ["findings"]
    # one run unfinished: report refuses in one line naming the flag it suggests, and the flag is accepted
    (folder / "cartpole/ppo/seed1/summary.json").unlink()
    code, _, err = _main(["findings", "report", "tiny"])
    assert code == 2 and "--include-incomplete" in err and len(err.strip().splitlines()) == 1
    code, out3, err = _main(["findings", "report", "tiny", "--include-incomplete"])
    assert code == 0, err
    kept = json.loads((folder / "verdict.json").read_text())
    assert kept["seeds"] == 1 and kept["estimate"]["value"] == pytest.approx(gaps[0])
    assert kept["command"] == "heldout findings run tiny --scale cpu"  # what made the runs, not --seeds 1


def test_a_finding_with_a_shift_evaluates_each_run_under_it_once(tmp_path, monkeypatch):
    """MiniGrid pixels, 2 seeds x 64 steps: run trains, evaluates each run's test levels under the
    shift (the file heldout eval --wrapper writes) and decides on those returns; run again re-evaluates
    nothing; a run without the file makes report name the command that evaluates it."""
    tiny = Scale(
        base={
            "env": "minigrid-doorkey-5x5-rgb", "num_levels": 3, "timesteps": 64, "num_envs": 2,
            "eval_episodes": 2, "eval_freq": 0, "checkpoint_freq": 0, "torch_threads": 1,
            "agent_kwargs": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
        },
        seeds=2,
        protocol="tiny",
    )  # fmt: skip
    finding = Finding("tiny-shift", "a test", "train > test", 1, "gap", None, {s: tiny for s in SCALES},
                      shift="color-jitter:hue=0.5")  # fmt: skip
    monkeypatch.setitem(FINDINGS, "tiny-shift", finding)
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(["findings", "run", "tiny-shift", "--workers", "2", "--no-progress"])
    assert code == 0, err
    assert "evaluating 2 run(s) on their test levels under color-jitter:hue=0.5" in out
    folder = tmp_path / "findings" / "tiny-shift-cpu"
    verdict = json.loads((folder / "verdict.json").read_text())
    runs = sorted(folder.glob("minigrid-doorkey-5x5-rgb/ppo/seed*"))
    gaps = []
    for run in runs:
        shifted = json.loads((run / "eval" / f"{finding.test_split}.json").read_text())
        assert shifted["wrappers"]["eval"] == ["color-jitter:hue=0.5"]
        returns = {s: [float(r.split(",")[2]) for r in (run / "eval" / f"{s}.csv").read_text().splitlines()[1:]]
                   for s in ("train", finding.test_split)}  # fmt: skip
        assert len(returns[finding.test_split]) == 2
        gaps.append(np.mean(returns["train"]) - np.mean(returns[finding.test_split]))
    assert verdict["estimate"]["value"] == pytest.approx(float(np.mean(gaps)))
    assert verdict["shift"] == "color-jitter:hue=0.5"
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob(f"*/*/seed*/eval/{finding.test_split}.csv")}
    code, out2, _ = _main(["findings", "run", "tiny-shift", "--no-progress"])
    assert code == 0 and "2 skipped" in out2 and "evaluating" not in out2
    assert stamps == {
        p: p.stat().st_mtime_ns for p in folder.glob(f"*/*/seed*/eval/{finding.test_split}.csv")
    }
    (runs[1] / "eval" / f"{finding.test_split}.csv").unlink()
    code, _, err = _main(["findings", "report", "tiny-shift"])
    assert code == 2 and "heldout findings run tiny-shift --scale cpu" in err
    assert len(err.strip().splitlines()) == 1


def test_seeds_replaces_the_scales_seed_count_in_the_plan(tmp_path, monkeypatch):
    """--seeds 7 plans 7 seeds an arm of a finding registered with 270, in its folder; 0 is refused."""
    monkeypatch.chdir(tmp_path)
    name = "plr-vs-uniform-minigrid"
    code, out, err = _main(["findings", "run", name, "--seeds", "7", "--dry-run"])
    assert code == 0, err
    steps = FINDINGS[name].scales["cpu"].base["timesteps"]
    assert f"compute: 14 runs x {steps:,} env steps" in out
    assert "seed6" in out and "seed7" not in out and os.listdir(tmp_path) == []
    spec = FINDINGS[name].spec("cpu", seeds=7)
    assert spec["grid"]["seed"] == list(range(7)) and spec["folder"] == FINDINGS[name].folder("cpu")
    code, _, err = _main(["findings", "run", name, "--seeds", "0", "--dry-run"])
    assert code == 2 and "--seeds" in err and len(err.strip().splitlines()) == 1


#: The CPU verdicts recorded in docs/findings.md and the README (None: not measured yet).
RECORDED: dict[str, str | None] = {
    "gap-few-levels": REPRODUCED,
    "gap-vs-levels-minigrid": REPRODUCED,
    "gap-vs-levels-procgen": OPPOSITE,
    "plr-vs-uniform-minigrid": OPPOSITE,
    "carl-visible-context": OPPOSITE,
    "rad-vs-ppo-coinrun": INCONCLUSIVE,
    "ucb-drac-vs-ppo-procgen": INCONCLUSIVE,
    "color-jitter-vs-identity-minigrid": REPRODUCED,
    "episodic-vs-global-bonus-minigrid": REPRODUCED,
    "srym-vs-poincare-minigrid": REPRODUCED,
}
#: The recorded verdicts the slow suite re-runs: the MiniGrid and CartPole ones, 3-20 minutes each with 2
#: workers on 2 quiet cores (the Procgen ones take an hour or more each at their CPU budgets, and PLR vs
#: uniform's 270 seeds an arm about two hours).
RERUN = (
    "gap-few-levels",
    "gap-vs-levels-minigrid",
    "carl-visible-context",
    "episodic-vs-global-bonus-minigrid",
    "srym-vs-poincare-minigrid",
)


def _verdict_cells(path: Path, column: int) -> dict[str, str]:
    """``{finding: cell}`` of a Markdown table's rows whose first cell is a finding's name in backticks."""
    cells = {}
    for line in path.read_text().splitlines():
        row = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(row) > column and row[0].strip("`") in FINDINGS and row[0].startswith("`"):
            cells[row[0].strip("`")] = row[column]
    return cells


@pytest.mark.parametrize(("doc", "column"), [("docs/findings.md", 1), ("README.md", 2)])
def test_the_docs_record_the_verdicts_the_slow_suite_checks(doc, column):
    """Every finding has a verdict row, and its bold verdict is RECORDED's (the docs' last table wins)."""
    root = Path(__file__).resolve().parents[2]
    cells = _verdict_cells(root / doc, column)
    assert set(cells) == set(FINDINGS) == set(RECORDED)
    for name, cell in cells.items():
        shown = cell.split("**")[1] if cell.startswith("**") else None
        assert shown == RECORDED[name], f"{doc}: {name}: {cell!r}"


def test_the_rerun_findings_have_a_recorded_verdict():
    assert all(RECORDED[name] is not None for name in RERUN)


@pytest.mark.slow
@pytest.mark.parametrize("name", RERUN)
def test_a_real_cpu_finding_keeps_its_recorded_verdict(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(["findings", "run", name, "--workers", "2", "--no-progress"])
    assert code == 0, err
    verdict = json.loads((tmp_path / FINDINGS[name].folder("cpu") / "verdict.json").read_text())
    assert verdict["verdict"] == RECORDED[name], out
