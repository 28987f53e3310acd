"""Run-folder files get the user's umask, like any file ``open`` creates (not tempfile's 0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from heldout.protocol.run_folder import write_atomic, write_json


@contextmanager
def umask(mask: int) -> Iterator[None]:
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_write_atomic_creates_files_with_the_umask(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        text = write_atomic(tmp_path / "a.txt", "hello\n")
        data = write_json(tmp_path / "sub" / "b.json", {"x": 1})
        write_atomic(tmp_path / "a.txt", b"again\n")  # replacing an existing file
    for path in (text, data):
        assert _mode(path) == 0o666 & ~mask, (path.name, oct(_mode(path)))
    assert (tmp_path / "a.txt").read_bytes() == b"again\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.json", "sub"], "no temporary left"


def test_write_atomic_leaves_nothing_behind_when_the_write_fails(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "a.txt", 42)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_real_run_folder_has_no_private_file(tmp_path: Path) -> None:
    """Every file of a short run: config, evaluations, model, checkpoints, VecNormalize, TensorBoard
    events, progress.csv and a recording wrapper's file."""
    from heldout.protocol.presets import PRESETS
    from heldout.protocol.run import run_train

    config = PRESETS.get("cartpole-gravity-extrapolation").replace(
        timesteps=256,
        eval_episodes=2,
        eval_freq=128,
        eval_periodic_episodes=1,
        checkpoint_freq=128,
        reward_norm=True,  # for vecnormalize.pkl
        wrappers=["episode-stats"],
        out=str(tmp_path),
    )
    with umask(0o022):
        run_dir, _ = run_train(config, progress=False, stream=open(os.devnull, "w"))  # noqa: SIM115
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {str(p.relative_to(run_dir)) for p in files}
    for expected in (
        "config.yaml",
        "split.json",
        "summary.json",
        "model.zip",
        "vecnormalize.pkl",
        "eval/test.csv",
        "progress.csv",
        "wrappers/episodes.csv",
    ):
        assert expected in names, sorted(names)
    assert any(n.startswith("checkpoints/") for n in names), sorted(names)
    assert any("tfevents" in n for n in names), sorted(names)
    assert not [n for n in names if n.endswith(".tmp") or "/.tmp" in n or n.startswith(".")], sorted(names)
    modes = {str(p.relative_to(run_dir)): oct(_mode(p)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_evaluating_a_run_trained_with_episode_stats_writes_no_file_outside_the_run(tmp_path, monkeypatch):
    """The model of a run trained with a recording wrapper is built without it (it changes no space):
    ``heldout eval`` used to open ``episodes.csv`` in the current folder, empty, and leave it there."""
    from heldout.protocol.checkpoint import load_trained_model
    from heldout.protocol.presets import PRESETS
    from heldout.protocol.run import run_train

    preset = PRESETS.get("cartpole-gravity-extrapolation")
    config = preset.replace(
        timesteps=64,
        num_envs=2,
        agent_kwargs={**preset.agent_kwargs, "n_steps": 32, "batch_size": 32, "n_epochs": 1},
        eval_episodes=1,
        eval_freq=0,
        wrappers=["episode-stats"],
        out=str(tmp_path / "runs"),
    )
    run_dir, _ = run_train(config, progress=False, stream=open(os.devnull, "w"))  # noqa: SIM115
    trained = (run_dir / "wrappers" / "episodes.csv").read_bytes()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    model = load_trained_model(config, run_dir)
    assert model.policy is not None
    assert list(cwd.iterdir()) == []
    assert (run_dir / "wrappers" / "episodes.csv").read_bytes() == trained  # the training record kept
