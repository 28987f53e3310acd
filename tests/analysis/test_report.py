"""``heldout report`` and ``heldout stats`` on small fake run folders and score files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from fake_runs import make_run, make_runs

from heldout.analysis.report import find_run_folders, load_run_record, write_report
from heldout.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_run(
    root: Path,
    env: str,
    agent: str,
    seed: int,
    train: list[float],
    test: list[float],
    timesteps: int = 8192,
    num_levels: int = 200,
    curve: bool = True,
) -> Path:
    """A run folder as ``heldout train`` writes it, with made-up returns (one episode per level)."""
    path = root / env / agent / f"seed{seed}-20260101-000000"
    (path / "eval").mkdir(parents=True)
    config = {"env": env, "agent": agent, "seed": seed, "timesteps": timesteps, "num_levels": num_levels}
    config.update(start_level=0, distribution_mode="easy", test_start=100_000_000)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    for split, returns, first in (("train", train, 0), ("test", test, 100_000_000)):
        with open(path / "eval" / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["episode", "level", "return", "length", "completed"])
            for i, r in enumerate(returns):
                w.writerow([i, first + i, r, 100, int(r > 5)])
    summary = {"env": env, "agent": agent, "seed": seed, "timesteps": timesteps, "splits": {}}
    (path / "summary.json").write_text(json.dumps(summary))
    if curve:
        with open(path / "progress.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(
                [
                    "rollout/ep_rew_mean",
                    "time/total_timesteps",
                    "eval/train/mean_return",
                    "eval/test/mean_return",
                ]
            )
            w.writerow([1.0, 2048, "", ""])
            w.writerow([2.0, 4096, np.mean(train) / 2, np.mean(test) / 2])
            w.writerow([3.0, timesteps, 0.0, 0.0])  # the last periodic evaluation (few episodes)
            w.writerow(["", "", np.mean(train), np.mean(test)])  # the final one, logged without a step
    return path


@pytest.fixture
def two_agents(tmp_path: Path) -> Path:
    """coinrun x {ppo: 3 seeds, drac: 2 seeds} and starpilot x ppo: 1 seed (too few for a CI)."""
    root = tmp_path / "runs"
    for seed, (tr, te) in enumerate([(9.0, 7.0), (8.0, 6.0), (10.0, 8.0)]):
        fake_run(root, "coinrun", "ppo", seed, [tr, tr, tr + 1, tr - 1], [te, te, te + 1, te - 1])
    for seed, (tr, te) in enumerate([(9.5, 9.0), (10.0, 8.5)]):
        fake_run(root, "coinrun", "drac", seed, [tr] * 4, [te] * 4)
    fake_run(root, "starpilot", "ppo", 0, [20.0, 30.0], [10.0, 20.0])
    return root


def test_report_writes_every_file(two_agents: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    report = write_report([two_agents], out, reps=200, seed=0)
    names = {p.name for p in report.files}
    expected = {
        "report.md", "per_game.csv", "aggregate.csv", "probability_of_improvement.csv",
        "published_comparison.csv", "scores_test.json", "scores_train.json", "curves_coinrun.png",
        "curves_starpilot.png", "levels_coinrun.png", "levels_starpilot.png", "aggregate_test.png", "profile_test.png",
        "published_comparison.png",
    }  # fmt: skip
    assert expected <= names, expected - names
    for name in expected:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    plt = pytest.importorskip("matplotlib.pyplot")
    for png in out.glob("*.png"):
        head = png.read_bytes()[:24]
        assert head[:8] == PNG_MAGIC, png
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        assert width > 100 and height > 100, png
        image = plt.imread(png)  # decodes: a real PNG, not just its header
        assert image.shape[:2] == (height, width) and image.std() > 0, png
    md = (out / "report.md").read_text()
    for image in out.glob("*.png"):
        assert f"]({image.name})" in md
    assert not list(out.glob(".*")), "temporary files left behind"


def test_report_tables_hold_the_hand_computed_numbers(two_agents: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report([two_agents], out, reps=200, seed=0, plots=False)
    rows = {(r["game"], r["agent"]): r for r in csv.DictReader(open(out / "per_game.csv"))}
    ppo = rows[("coinrun", "ppo")]
    assert int(ppo["seeds"]) == 3
    assert float(ppo["train_mean"]) == pytest.approx(9.0) and float(ppo["test_mean"]) == pytest.approx(7.0)
    assert float(ppo["gap_mean"]) == pytest.approx(2.0)
    assert float(ppo["test_ci_low"]) <= 7.0 <= float(ppo["test_ci_high"])
    assert 6.0 <= float(ppo["test_ci_low"]) and float(ppo["test_ci_high"]) <= 8.0
    assert float(ppo["test_normalized"]) == pytest.approx((7.0 - 5) / (10 - 5))
    star = rows[("starpilot", "ppo")]
    assert star["seeds"] == "1" and star["test_ci_low"] == "" and float(star["test_mean"]) == 15.0

    scores = json.loads((out / "scores_test.json").read_text())
    assert scores == {
        "drac": {"coinrun": [9.0, 8.5]},
        "ppo": {"coinrun": [7.0, 6.0, 8.0], "starpilot": [15.0]},
    }

    poi = list(csv.DictReader(open(out / "probability_of_improvement.csv")))
    assert len(poi) == 1 and poi[0]["games"] == "1"
    # drac [9, 8.5] vs ppo [7, 6, 8] on coinrun: drac wins all 6 pairs
    assert {poi[0]["x"], poi[0]["y"]} == {"drac", "ppo"}
    p = float(poi[0]["p_x_better"])
    assert p == pytest.approx(1.0 if poi[0]["x"] == "drac" else 0.0)

    agg = {(r["agent"], r["split"], r["metric"]): r for r in csv.DictReader(open(out / "aggregate.csv"))}
    # ppo test normalised: coinrun mean 0.4 ((7-5)/5), starpilot (15-2.5)/61.5 -> mean over games
    assert float(agg[("ppo", "test", "mean")]["value"]) == pytest.approx((0.4 + 12.5 / 61.5) / 2)
    assert agg[("ppo", "test", "mean")]["ci_low"] == ""  # starpilot has a single run: no CI
    assert agg[("drac", "test", "mean")]["ci_low"] != ""


def test_report_says_plainly_when_seeds_are_too_few(two_agents: Path, tmp_path: Path) -> None:
    md = write_report([two_agents], tmp_path / "r", reps=100, plots=False).markdown
    assert "Too few seeds for a confidence interval" in md
    assert "n=1, no CI" in md


def test_report_sets_published_figures_beside_ours_with_the_budget(two_agents: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    md = write_report([two_agents], out, reps=100, plots=False).markdown
    assert "Not a reproduction" in md and "8,192" in md and "25,000,000" in md
    rows = list(csv.DictReader(open(out / "published_comparison.csv")))
    published = {(r["game"], r["published_agent"], r["split"]): float(r["published"]) for r in rows}
    # BASELINES.md / published_test_easy200_25M.csv: coinrun PPO 8.60, IDAAC 9.39; starpilot PPG 48.05
    assert published[("coinrun", "PPO", "test")] == pytest.approx(8.60)
    assert published[("coinrun", "IDAAC", "test")] == pytest.approx(9.39)
    assert published[("starpilot", "PPG", "test")] == pytest.approx(48.05)
    # a 8192-step run is set beside train-procgen's PPO at 1M, its closest published budget
    curve = [r for r in rows if r["published_agent"] == "PPO (train-procgen)" and r["game"] == "coinrun"]
    assert {r["published_steps"] for r in curve} == {"1000000"}


def test_runs_off_the_published_protocol_get_no_published_comparison(tmp_path: Path) -> None:
    fake_run(tmp_path / "runs", "coinrun", "ppo", 0, [9.0], [7.0], num_levels=500)
    md = write_report([tmp_path / "runs"], tmp_path / "r", reps=50, plots=False).markdown
    assert "published Procgen runs" not in md


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a heldout run folder" in err and "empty" in err
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("env: coinrun\n")
    assert main(["report", str(unfinished), "--out", str(tmp_path / "r")]) == 2
    assert "not complete" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _status(run: Path, state: str, step: int = 100) -> None:
    (run / "status.json").write_text(json.dumps({"state": state, "step": step, "total": 1000}))


def test_report_refuses_incomplete_runs_unless_told_and_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs = [make_run(tmp_path / "runs", "coinrun", "ppo", seed, 0.5) for seed in range(3)]
    (runs[2] / "summary.json").unlink()
    _status(runs[2], "interrupted", 40960)
    _status(runs[1], "failed", 12)
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not complete" in err and "--include-incomplete" in err
    assert not (tmp_path / "r").exists()
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r"), "--include-incomplete"]) == 0
    out = capsys.readouterr().out
    assert "2 run folder(s) left out" in out
    md = (tmp_path / "r" / "report.md").read_text()
    assert "interrupted at step 40960 of 1000" in md and "failed at step 12" in md
    assert "1 run folder(s): 1 experiment(s)" in md  # the complete one alone is averaged


def test_a_seed_run_twice_counts_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import os
    import time

    first = make_run(tmp_path / "a", "coinrun", "ppo", 0, 0.1)
    second = make_run(tmp_path / "b", "coinrun", "ppo", 0, 0.9)  # the same seed again, finished later
    other = make_run(tmp_path / "b", "coinrun", "ppo", 1, 0.5)
    later = time.time() + 10
    os.utime(second / "summary.json", (later, later))
    report = write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "r", reps=50, plots=False)
    assert "2 run folder(s): 1 experiment(s)" in report.markdown
    assert f"`{first.resolve()}`: seed 0 of ppo on coinrun again" in report.markdown
    header, rows = report.tables["per_game"]
    row = dict(zip(header, rows[0]))
    means = [load_run_record(p).mean("test") for p in (second, other)]
    assert row["seeds"] == 2 and row["test_mean"] == pytest.approx(float(np.mean(means)))


def test_report_cli_and_unknown_reference(
    two_agents: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "r"
    assert (
        main(
            [
                "report",
                str(two_agents),
                "--out",
                str(out),
                "--reps",
                "100",
                "--no-plots",
                "--reference",
                "ppo",
            ]
        )
        == 0
    )
    assert "report.md" in capsys.readouterr().out
    assert "% of ppo" in (out / "report.md").read_text()
    assert main(["report", str(two_agents), "--out", str(out), "--reference", "PPO"]) == 2
    err = capsys.readouterr().err
    assert "'PPO'" in err and "drac, ppo" in err


def test_find_run_folders_accepts_run_folders_and_their_parents(two_agents: Path) -> None:
    one = next((two_agents / "coinrun" / "ppo").iterdir())
    assert find_run_folders([one]) == [one.resolve()]
    assert len(find_run_folders([two_agents, one])) == 6
    rec = load_run_record(one)
    assert (
        rec.env == "coinrun" and rec.follows_published_protocol and list(rec.curve["steps"]) == [4096, 8192]
    )
    # the final evaluation (no step in progress.csv) ends the curve at the run's steps
    assert rec.curve["train"][-1] == pytest.approx(rec.mean("train"))
    assert rec.curve["test"][-1] == pytest.approx(rec.mean("test"))


def test_stats_prints_the_aggregate_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # coinrun easy constants (5, 10): A scores 0.5 and 0.7 normalised, B 0.1 and 0.3
    f = tmp_path / "scores.json"
    f.write_text(json.dumps({"A": {"coinrun": [7.5, 8.5]}, "B": {"coinrun": [5.5, 6.5]}}))
    assert main(["stats", str(f), "--reps", "200", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "IQM" in out and "P(A > B)" in out and "1.000" in out
    assert main(["stats", str(f), "--reps", "200", "--reference", "B"]) == 0
    out = capsys.readouterr().out
    assert "% of B" in out and " 133 " in out  # A's mean return 8.0 over B's 6.0
    assert main(["stats", str(f), "--reps", "200", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"A", "B"} and set(data["A"]) == {"mean", "median", "iqm", "optimality_gap"}
    assert data["A"]["mean"]["value"] == pytest.approx(0.6)
    assert data["B"]["optimality_gap"]["value"] == pytest.approx(0.8)
    lo, hi = data["A"]["mean"]["ci"]
    assert 0.5 <= lo <= 0.6 <= hi <= 0.7


def test_stats_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "scores.json"
    f.write_text(json.dumps({"A": {"cartpole": [1.0]}}))
    assert main(["stats", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cartpole" in err and "bigfish" in err
    f.write_text(json.dumps({"A": {"coinrun": [1.0]}}))
    assert main(["stats", str(f), "--mode", "extreme"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'extreme'" in err and "easy, hard" in err
    assert main(["stats", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_per_level_means_average_each_level_over_runs(two_agents: Path) -> None:
    from heldout.analysis.plots import per_level_means

    runs = [load_run_record(p) for p in sorted((two_agents / "coinrun" / "ppo").iterdir())]
    # test levels 100000000..3: run returns (7,7,8,6), (6,6,7,5), (8,8,9,7) -> level means 7, 7, 8, 6
    np.testing.assert_allclose(per_level_means(runs, "test"), [7.0, 7.0, 8.0, 6.0])


@pytest.mark.parametrize(
    "command,flags", [("report", ["--out", "--reps", "--seed"]), ("stats", ["--mode", "--json"])]
)
def test_report_and_stats_help(command: str, flags: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(f in out for f in flags)


# ----------------------------------------------------------------------------------------------------
# The small-sample warning, and 'heldout stats' on what 'heldout report' writes


@pytest.mark.parametrize(
    "seeds,ragged,too_few_for_ci,fewer_than_5",
    [(5, False, False, False), (3, False, False, True), (2, True, True, True), (1, False, True, True)],
)
def test_small_sample_warning_shows_whenever_it_applies(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    seeds: int,
    ragged: bool,
    too_few_for_ci: bool,
    fewer_than_5: bool,
) -> None:
    """'Fewer than 5 runs' shows with and without the no-CI warning (it hid behind it), and not with 5."""
    make_runs(tmp_path / "runs", ["ppo", "drac"], ["coinrun", "starpilot"], seeds, ragged=ragged, levels=4)
    assert (
        main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r"), "--reps", "50", "--no-plots"])
        == 0
    )
    out = capsys.readouterr().out
    md = (tmp_path / "r" / "report.md").read_text()
    for text in (md, out):
        assert ("Too few seeds for a confidence interval" in text) == too_few_for_ci
        assert ("Fewer than 5 runs" in text) == fewer_than_5
    if fewer_than_5:
        assert f"as few as {1 if ragged else seeds}" in md
        assert md.index("Fewer than 5 runs") < md.index("## Per env")  # up front, not in a footnote


def _stats_round_trip(runs: Path, out: Path, capsys: pytest.CaptureFixture, *flags: str) -> dict[str, str]:
    """``heldout report`` then ``heldout stats`` on each scores file it wrote: ``{file name: stdout}``."""
    assert main(["report", str(runs), "--out", str(out), "--reps", "50", "--no-plots"]) == 0
    capsys.readouterr()
    printed = {}
    files = sorted(out.glob("scores_*.json"))
    assert files
    for f in files:
        code = main(["stats", str(f), "--reps", "50", *flags])
        captured = capsys.readouterr()
        assert code == 0, (f.name, captured.err)
        printed[f.name] = captured.out
    return printed


def test_stats_reads_the_scores_report_writes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_runs(
        tmp_path / "runs", ["ppo", "drac"], ["coinrun", "starpilot", "fruitbot"], 2, ragged=True, levels=4
    )
    printed = _stats_round_trip(tmp_path / "runs", tmp_path / "r", capsys)
    assert set(printed) == {"scores_test.json", "scores_train.json"}
    assert (
        "2 agents x 3 games" in printed["scores_test.json"] and "P(drac > ppo)" in printed["scores_test.json"]
    )
    assert main(["stats", str(tmp_path / "r" / "scores_test.json"), "--reps", "50", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"drac", "ppo"}
    assert (
        main(["stats", str(tmp_path / "r" / "scores_test.json"), "--reps", "50", "--reference", "ppo"]) == 0
    )
    assert "% of ppo" in capsys.readouterr().out


def test_stats_reads_report_scores_of_disjoint_games_and_non_procgen_envs(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """What the report aggregates, stats accepts: agents on different games, games without constants."""
    for seed in (0, 1):
        make_run(tmp_path / "disjoint", "coinrun", "ppo", seed, 0.3, levels=4)
        make_run(tmp_path / "disjoint", "starpilot", "drac", seed, 0.4, levels=4)
    printed = _stats_round_trip(tmp_path / "disjoint", tmp_path / "r1", capsys, "--reference", "ppo")
    text = printed["scores_test.json"]
    assert "no game in common" in text and "drac" in text and "ppo" in text and "P(" not in text

    for seed in (0, 1):
        make_run(tmp_path / "mixed", "coinrun", "ppo", seed, 0.3, levels=4)
        other = make_run(tmp_path / "mixed", "bigfish", "ppo", seed, 0.3, levels=4)
        config = yaml.safe_load((other / "config.yaml").read_text())
        (other / "config.yaml").write_text(yaml.safe_dump({**config, "env": "my-seeded-maze"}))
    text = _stats_round_trip(tmp_path / "mixed", tmp_path / "r2", capsys)["scores_test.json"]
    assert (
        "1 agents x 1 games" in text
        and "note: left out, no easy normalisation constants: my-seeded-maze" in text
    )


def test_report_writes_no_empty_scores_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(tmp_path / "runs", "coinrun", "ppo", 0, 0.3, levels=4)
    (run / "eval" / "train.csv").unlink()  # a run evaluated on its test levels only
    printed = _stats_round_trip(tmp_path / "runs", tmp_path / "r", capsys)
    assert set(printed) == {"scores_test.json"}
    assert "scores_train.json" not in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.parametrize(
    "content,message",
    [
        ("{}", "expected {agent: {game: [one score per run]}}"),
        ("[1, 2]", "expected {agent: {game: [one score per run]}}"),
        ('{"A": {"coinrun": []}}', "non-empty list of numbers"),
        ('{"A": {"coinrun": ["7"]}}', "non-empty list of numbers"),
        ('{"A": {"coinrun": [7.0]', "not valid JSON"),
        ('{"A": {"my-env": [1.0]}}', "no game of this file has easy normalisation constants"),
    ],
)
def test_stats_still_refuses_bad_files_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str, message: str
) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    assert main(["stats", str(f), "--reps", "20"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("heldout stats: error:"), err
    assert captured.out == ""
