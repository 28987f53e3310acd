"""The whole protocol on MiniHack, tiny: a run through the CLI (per-level eval CSVs, the leakage check by
layout, the summary), ``heldout eval`` replaying the list, ``heldout report``, a one-run sweep, a killed
run resumed, and bad input. Skipped where the 'minihack' extra is missing (Python 3.13, macOS); CI's
default stack has it (.ci/run checks)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from heldout.cli import main
from heldout.envs.minihack import missing
from heldout.envs.seeded import level_fingerprints
from heldout.protocol.status import read_status

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "-")

ENV = "minihack-multiroom-n2"  # 40 steps an episode
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
    "--eval-episodes", "8",
    "--eval-freq", "256",
    "--eval-periodic-episodes", "2",
    "--seed", "5",
    "--no-progress",
]  # fmt: skip
PLUGIN = Path(__file__).parent / "data" / "kill_plugin.py"


@pytest.fixture(scope="module")
def minihack_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("minihackruns")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["train", *TINY, "--out", str(out)]) == 0
    (run,) = list((out / ENV / "ppo").iterdir())
    return run, buf.getvalue()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_eval_csvs_hold_one_episode_per_listed_level_and_completion_is_the_goal(minihack_run):
    run, printed = minihack_run
    lists = json.loads((run / "split.json").read_text())["eval_levels"]
    for name in ("train", "test"):
        rows = _rows(run / "eval" / f"{name}.csv")
        assert [int(r["level"]) for r in rows] == lists[name] and len(rows) == 8
        for r in rows:  # +1 at the stairs, -0.01 for a step that takes no game time; 40 steps at most
            ret, length, completed = float(r["return"]), int(r["length"]), r["completed"] == "1"
            assert length <= 40
            assert completed == (ret > 0.5)
            assert completed or length == 40
    assert all(0 <= lv < 20 for lv in lists["train"]) and all(lv >= 20 for lv in lists["test"])
    assert "train  [0, 20)" in printed and "run folder:" in printed


def test_no_test_level_has_a_training_levels_layout(minihack_run):
    run, _ = minihack_run
    split = json.loads((run / "split.json").read_text())
    record = split["leakage"]["test"]
    assert record["checked"] and record["policy"] == "layout" and record["train_levels"] == 20
    test_fps = level_fingerprints(ENV, split["eval_levels"]["test"])
    assert len(set(test_fps)) == len(test_fps)
    assert not set(test_fps) & set(level_fingerprints(ENV, list(range(20))))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env"] == ENV and summary["leakage"]["test"] == record


def test_eval_replays_the_test_list_and_report_reads_the_run(minihack_run, capsys):
    run, _ = minihack_run
    before = _rows(run / "eval" / "test.csv")
    assert main(["eval", str(run), "--episodes", "4", "--no-progress"]) == 0
    again = _rows(run / "eval" / "test-reeval.csv")
    assert [r["level"] for r in again] == [r["level"] for r in before[:4]]
    capsys.readouterr()
    report = run.parent.parent.parent.parent / "report"
    assert main(["report", str(run.parent.parent.parent), "--out", str(report), "--no-plots"]) == 0
    assert ENV in (report / "report.md").read_text()


def test_a_one_run_sweep_trains_minihack(tmp_path, capsys):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        f"folder: {tmp_path / 'sweep'}\nbase:\n  preset: minigrid-doorkey\n  env: {ENV}\n  timesteps: 256\n  num_envs: 2\n"
        "  num_levels: 5\n  eval_episodes: 2\n  eval_freq: 0\n"
        "  agent_kwargs: {n_steps: 128, batch_size: 64, n_epochs: 1}\n"
        "grid:\n  seed: [0]\n"
    )
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--workers", "1", "--no-progress", "--no-plots"]) == 0
    (summary,) = list(out.glob(f"{ENV}/ppo/*/summary.json"))
    assert json.loads(summary.read_text())["splits"]["test"]["episodes"] == 2


def test_a_killed_run_resumes_to_completion_and_says_it_is_not_exact(tmp_path):
    """NetHack's game cannot be pickled: the checkpoint names the envs it leaves out, and the resumed
    run (new envs, the same weights, optimiser and counters) finishes and says it is not exact."""
    env = {**os.environ, "HELDOUT_TEST_KILL": "update:3", "HELDOUT_SIGNING_KEY": str(tmp_path / "key")}
    args = [a if a != "512" else "1024" for a in TINY]  # 4 updates of 2 envs x 128 steps
    killed = subprocess.run(
        [sys.executable, "-m", "heldout", "train", *args, "--checkpoint-freq", "256", "--import", str(PLUGIN)]
        + ["--out", str(tmp_path / "runs")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert killed.returncode == -9, killed.stderr
    (run,) = list((tmp_path / "runs").glob(f"{ENV}/ppo/seed5-*"))
    assert read_status(run)["state"] == "interrupted"
    env["HELDOUT_TEST_KILL"] = ""
    resumed = subprocess.run(
        [sys.executable, "-m", "heldout", "train", "--resume", str(run), "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "not exactly" in resumed.stderr
    assert read_status(run)["state"] == "complete"
    assert len(_rows(run / "eval" / "test.csv")) == 8


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--env", "minihack-multiroom-n3"], ["did you mean 'minihack-multiroom-n"]),
        (["--distribution-mode", "hard"], ["'hard'", "valid: 'easy'"]),
        (["--env-option", "use_backgrounds=false"], ["use_backgrounds"]),
        (["--num-levels", "10", "--test-start", "5"], ["overlap"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_folder(tmp_path, capsys, args, needles):
    out = tmp_path / "runs"
    argv = ["train", "--preset", "minigrid-doorkey", "--env", ENV, *args, "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err
    assert not out.exists()
