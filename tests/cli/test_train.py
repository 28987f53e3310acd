"""``heldout train``'s first look: the learning curve it draws, its progress bar, and the quickstart
preset that ``make run`` runs (slow)."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from heldout.cli import main

#: The quickstart preset shrunk to seconds: DoorKey 5x5 (shorter episodes), 4 periodic evaluations.
TINY = [
    "--preset", "quickstart",
    "--env", "minigrid-doorkey-5x5",
    "--timesteps", "1024",
    "--num-envs", "2",
    "--num-levels", "20",
    "--num-test-levels", "200",
    "--agent-arg", "n_steps=128",
    "--agent-arg", "batch_size=64",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "4",
    "--eval-freq", "256",
    "--eval-periodic-episodes", "2",
    "--seed", "3",
]  # fmt: skip


@pytest.fixture(scope="module")
def curve_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny run through the CLI, keeping the learning-curve figure before it is saved and closed."""
    from heldout.analysis import plots

    out = tmp_path_factory.mktemp("curve")
    figures: list[Any] = []
    save = plots._save

    def keep(fig: Any, path: Any) -> Path:
        figures.append(fig)
        return save(fig, path)

    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(buf):
        mp.setattr(plots, "_save", keep)
        assert main(["train", *TINY, "--out", str(out), "--no-progress"]) == 0
    (run,) = list((out / "minigrid-doorkey-5x5" / "ppo").iterdir())
    return {"run": run, "printed": buf.getvalue(), "figures": figures}


def test_a_run_with_periodic_evaluation_writes_its_learning_curve(curve_run: dict[str, Any]) -> None:
    run, printed = curve_run["run"], curve_run["printed"]
    png = run / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = printed.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("learning curve: "))
    assert lines[at] == f"learning curve: {png}"
    assert any(line.startswith("generalization gap") for line in lines[:at]), "the path comes after the table"
    assert lines[-1] == f"run folder: {run}"


def test_the_learning_curve_has_a_train_and_a_test_line_inside_its_axes(curve_run: dict[str, Any]) -> None:
    (fig,) = curve_run["figures"]
    (ax,) = fig.axes
    run = curve_run["run"]
    summary = json.loads((run / "summary.json").read_text())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ppo train", "ppo test"]
    assert len(ax.get_lines()) == 2
    assert ax.get_xlabel() and ax.get_ylabel()
    assert "minigrid-doorkey-5x5" in ax.get_title() and "ppo" in ax.get_title() and "seed 3" in ax.get_title()
    with open(run / "progress.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/train/mean_return")]
    # the periodic evaluations' steps, and the final evaluation's (it replaces one at the same step)
    steps = {int(r["time/total_timesteps"]) for r in rows if r.get("time/total_timesteps")}
    assert len(steps) >= 4 and len(rows) == len(steps) + 1
    points = len(steps | {summary["timesteps"]})
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for line, split in zip(ax.get_lines(), ("train", "test")):
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        assert len(x) == points, (split, x)
        assert np.all(np.diff(x) > 0)
        assert np.all((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)), (
            split,
            x,
            y,
            ax.get_xlim(),
            ax.get_ylim(),
        )
        # the last point is the final evaluation of summary.json
        assert x[-1] == summary["timesteps"]
        assert y[-1] == pytest.approx(summary["splits"][split]["mean"])


def test_a_run_without_periodic_evaluation_draws_no_curve(tmp_path: Path) -> None:
    buf = io.StringIO()
    args = [*TINY, "--timesteps", "256", "--eval-freq", "0", "--out", str(tmp_path), "--no-progress"]
    with redirect_stdout(buf):
        assert main(["train", *args]) == 0
    (run,) = list((tmp_path / "minigrid-doorkey-5x5" / "ppo").iterdir())
    assert not (run / "learning_curve.png").exists()
    assert "learning curve" not in buf.getvalue()


def test_progress_shows_each_phase_on_stderr_and_no_progress_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [*TINY, "--timesteps", "512", "--out", str(tmp_path)]
    assert main(["train", *args]) == 0
    captured = capsys.readouterr()
    for phase in (
        "rollout",
        "update",
        "eval train 2/2 ep",
        "eval test 2/2 ep",
        "final eval test 4/4 ep",
        "done",
    ):
        assert phase in captured.err, phase
    assert "rollout" not in captured.out, "the bar belongs on stderr"
    assert main(["train", *args, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "run folder" in captured.out


@pytest.mark.slow
def test_the_quickstart_learns_its_training_levels_and_shows_a_gap(tmp_path: Path) -> None:
    """``make run`` in full (a few minutes on 2 CPU cores): PPO goes from an untrained agent's return to
    solving its training levels, does markedly worse on held-out ones, and draws the curve."""
    from heldout.agents import AGENTS
    from heldout.protocol.evaluate import torch_threads
    from heldout.protocol.families import family_for
    from heldout.protocol.presets import PRESETS

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["train", "--preset", "quickstart", "--out", str(tmp_path), "--no-progress"]) == 0
    config = PRESETS.get("quickstart")
    (run,) = list((tmp_path / config.env / "ppo").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    train, test = summary["splits"]["train"]["mean"], summary["splits"]["test"]["mean"]

    # an untrained agent on the same training levels: about 0.02 (4 of 100 episodes reach the goal)
    family = family_for(config.env)
    split = family.split(config)
    lists, _ = family.eval_lists(config, split, 50)
    venv = family.make_train_env(config, split)
    untrained = AGENTS.get("ppo")(env=venv, seed=config.seed, device="cpu", **family.agent_kwargs(config))
    with torch_threads(family.default_torch_threads):  # as run_train: 1 thread is 6x faster here
        baseline = family.evaluate(untrained, config, lists["train"], "train", seed=1).mean
    venv.close()

    assert baseline < 0.2, baseline
    assert train > 0.8 and train > baseline + 0.5, (train, baseline)
    assert test < train - 0.2, (train, test)
    assert (run / "learning_curve.png").is_file()
    with open(run / "progress.csv", newline="") as f:
        assert sum(1 for r in csv.DictReader(f) if r.get("eval/train/mean_return")) >= 8
