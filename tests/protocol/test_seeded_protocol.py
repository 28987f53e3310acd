"""The protocol on a seeded level env (MiniGrid), in process and tiny: per-level eval CSVs, the
recorded leakage check, re-evaluation, same seed same results, and refusals."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from heldout.cli import main
from heldout.envs.seeded import level_fingerprints
from heldout.protocol.config import TrainConfig
from heldout.protocol.families import split_of
from heldout.protocol.presets import PRESETS
from heldout.protocol.run import run_train

ENV = "minigrid-doorkey-5x5"  # 48 distinct levels: 20 training seeds hold half of them
#: (test levels dropped as training levels, as repeats of a listed test level) for TINY's test list
DROPS = (8, 6)
TINY = [
    "--preset", "minigrid-doorkey",
    "--env", ENV,
    "--timesteps", "512",
    "--num-envs", "2",
    "--num-levels", "20",
    "--num-test-levels", "200",
    "--agent-arg", "n_steps=128",
    "--agent-arg", "batch_size=64",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "12",
    "--eval-freq", "256",
    "--eval-periodic-episodes", "2",
    "--seed", "5",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("seededruns")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["train", *TINY, "--out", str(out)]) == 0
    (run,) = list((out / ENV / "ppo").iterdir())
    return run, buf.getvalue()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_eval_csvs_hold_one_episode_per_listed_level(seeded_run):
    run, printed = seeded_run
    config = TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    split = split_of(config)
    lists = json.loads((run / "split.json").read_text())["eval_levels"]
    for name in ("train", "test"):
        rows = _rows(run / "eval" / f"{name}.csv")
        assert list(rows[0]) == ["episode", "level", "return", "length", "completed"]
        assert [int(r["level"]) for r in rows] == lists[name] and len(rows) == 12
        assert all(int(r["level"]) in split.get(name) for r in rows)
        for r in rows:  # MiniGrid: 1 - 0.9 * steps / max_steps on success (250 steps here), else 0
            ret, length, completed = float(r["return"]), int(r["length"]), r["completed"] == "1"
            assert completed == (ret > 0)
            assert ret == pytest.approx(1 - 0.9 * length / 250, abs=1e-4) if completed else length == 250
    assert "train  [0, 20)" in printed and "run folder:" in printed


def test_the_leakage_check_is_recorded_and_no_test_level_repeats_a_training_level(seeded_run):
    run, _ = seeded_run
    record = json.loads((run / "split.json").read_text())["leakage"]["test"]
    assert record == json.loads((run / "summary.json").read_text())["leakage"]["test"]
    assert record["checked"] and record["train_levels"] == 20 and record["policy"] == "layout"
    assert record["listed"] == record["episodes"] == 12 and "warning" not in record
    # fixed lists: the same drops every run (DoorKey-5x5 has 48 distinct levels, 20 seeds hold half)
    assert (record["train_duplicates"], record["repeats"]) == DROPS
    test_levels = [int(r["level"]) for r in _rows(run / "eval" / "test.csv")]
    train_fp = set(level_fingerprints(ENV, list(range(20))))
    test_fp = level_fingerprints(ENV, test_levels)
    assert not train_fp & set(test_fp)
    assert len(set(test_levels)) == len(set(test_fp)) == 12, "no level and no fingerprint twice"
    for dup in record["dropped"]:
        assert dup["level"] not in test_levels
        assert len(set(level_fingerprints(ENV, [dup["level"], dup["same_as"]]))) == 1
    train_record = json.loads((run / "split.json").read_text())["leakage"]["train"]
    assert train_record["checked"] is False and train_record["distinct_levels"] == 12


def test_summary_and_periodic_evals(seeded_run):
    run, _ = seeded_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "levels" and summary["env"] == ENV
    assert summary["splits"]["test"]["normalized"] is None and summary["timesteps"] >= 512
    rows = _rows(run / "eval" / "test.csv")
    assert summary["splits"]["test"]["mean"] == pytest.approx(sum(float(r["return"]) for r in rows) / 12)
    header = (run / "progress.csv").read_text().splitlines()[0].split(",")
    assert "eval/test/mean_return" in header and "eval/gap" in header
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert "policy" not in config["agent_kwargs"] or config["agent_kwargs"]["policy"] == "MlpPolicy"


def test_eval_replays_the_leak_free_test_list(seeded_run, capsys):
    run, _ = seeded_run
    before = [r["level"] for r in _rows(run / "eval" / "test.csv")]
    assert main(["eval", str(run), "--episodes", "5", "--no-progress"]) == 0
    after = [r["level"] for r in _rows(run / "eval" / "test-reeval.csv")]
    assert after == before[:5]
    assert [r["level"] for r in _rows(run / "eval" / "test.csv")] == before  # the final evaluation is kept
    out = capsys.readouterr().out
    assert "test" in out
    assert (
        main(["eval", str(run), "--levels", "0,1", "--split", "train", "--episodes", "2", "--no-progress"])
        == 0
    )
    rows = _rows(run / "eval" / "train-levels={0,1}.csv")
    assert sorted(int(r["level"]) for r in rows) == [0, 1]
    # 41 is no training level, and the same level as training level 0: a mix, played once
    assert main(["eval", str(run), "--levels", "0,41", "--episodes", "2", "--no-progress"]) == 0
    rows = _rows(run / "eval" / "levels-overlapping-train-levels={0,41}.csv")
    assert [int(r["level"]) for r in rows] == [0] or [int(r["level"]) for r in rows] == [41]


def test_eval_levels_follow_the_list_rules_and_name_what_they_are(seeded_run, capsys):
    run, _ = seeded_run
    capsys.readouterr()
    # held out: leak-free, distinct, no two with one fingerprint; DoorKey-5x5 runs out before 40
    assert main(["eval", str(run), "--levels", "5000:5200", "--episodes", "40", "--no-progress"]) == 0
    err = capsys.readouterr().err
    summary = json.loads((run / "eval" / "test-levels=[5000,5200).json").read_text())
    record = summary["leakage"]["test"]
    levels = [int(r["level"]) for r in _rows(run / "eval" / "test-levels=[5000,5200).csv")]
    fps = level_fingerprints(ENV, levels)
    assert record["short"] and record["listed"] == len(levels) < 40 and "warning: test list" in err
    assert len(set(levels)) == len(set(fps)) == len(levels)
    assert not set(fps) & set(level_fingerprints(ENV, list(range(20))))
    assert len(levels) == 48 - len(set(level_fingerprints(ENV, list(range(20))))), "every unseen level, once"
    # overlapping the training levels [0, 20): not a test score
    assert main(["eval", str(run), "--levels", "10:40", "--episodes", "6", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "warning: 10 of the 30 given levels are training levels" in err
    assert "'levels-overlapping-train', not 'test'" in err
    summary = json.loads((run / "eval" / "levels-overlapping-train-levels=[10,40).json").read_text())
    assert list(summary["splits"]) == ["levels-overlapping-train"] and "gap" not in summary
    assert not (run / "eval" / "test-levels=[10,40).csv").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--distribution-mode", "hard"], "--distribution-mode apply to Procgen runs"),
        (["--env-option", "use_backgrounds=false"], "seeded level env"),
        (["--shift", "backgrounds-off"], "use --split or --levels"),
        (["--context", "gravity=1:2"], "has levels, not contexts"),
    ],
)
def test_eval_refuses_procgen_and_context_options(seeded_run, capsys, args, needle):
    run, _ = seeded_run
    assert main(["eval", str(run), *args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


@pytest.mark.parametrize(
    "args, needles",
    [
        (
            ["--env", "minigrid-dorkey-5x5"],
            ["did you mean 'minigrid-doorkey-5x5'", "minigrid-keycorridor-s3r1"],
        ),
        (["--distribution-mode", "hard"], ["'hard'", "valid: 'easy'"]),
        (["--env-option", "use_backgrounds=false"], ["use_backgrounds", "Procgen visual switches"]),
        (["--train-context", "gravity=1:2"], ["has levels, not contexts"]),
        (["--num-levels", "10", "--test-start", "5"], ["overlap"]),
        (
            ["--env", "minigrid-simplecrossing-s9n1", "--num-levels", "2000", "--num-test-levels", "100"],
            ["every test level", "minigrid-simplecrossing-s9n1", "--no-leakage-check"],
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_folder(tmp_path, capsys, args, needles):
    out = tmp_path / "runs"
    assert main(["train", "--preset", "minigrid-doorkey", *args, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err
    assert not out.exists()


def test_same_seed_same_results(tmp_path):
    config = PRESETS.get("minigrid-doorkey").replace(
        env=ENV,
        timesteps=256,
        num_envs=2,
        num_levels=10,
        num_test_levels=200,
        agent_kwargs={**PRESETS.get("minigrid-doorkey").agent_kwargs, "n_steps": 128, "batch_size": 64},
        eval_episodes=6,
        eval_freq=0,
        seed=7,
        out=str(tmp_path),
    )
    results = []
    for _ in range(2):
        run, summary = run_train(config, progress=False, stream=io.StringIO())
        results.append((run / "eval" / "test.csv").read_text() + (run / "eval" / "train.csv").read_text())
    assert results[0] == results[1]


@pytest.mark.slow
def test_the_minigrid_doorkey_preset_learns_its_training_levels_better_than_held_out_ones(tmp_path):
    """The preset in full (about a minute on 2 CPU cores): PPO solves its 5 DoorKey-6x6 training levels
    and does markedly worse on held-out ones."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["train", "--preset", "minigrid-doorkey", "--out", str(tmp_path), "--no-progress"]) == 0
    (run,) = list((tmp_path / "minigrid-doorkey-6x6" / "ppo").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["splits"]["train"]["mean"] > 0.85
    assert summary["gap"] > 0.2
