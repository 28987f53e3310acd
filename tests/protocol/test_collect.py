"""``heldout collect`` on a subset of the run's training levels (``--num-levels``), checked against
the env itself (issue 29, items 1 and 4b)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py", reason="offline datasets need h5py (a dependency: make install installs it)")

from heldout.cli import main  # noqa: E402
from heldout.protocol.dataset import open_dataset  # noqa: E402

ENV = "minigrid-doorkey-6x6"

#: A tiny MiniGrid PPO run on 5 training levels (2 envs x 32 steps x 2 updates).
TINY_PPO = [
    "train",
    "--preset", "minigrid-doorkey",
    "--timesteps", "128",
    "--num-envs", "2",
    "--agent-arg", "n_steps=32",
    "--agent-arg", "batch_size=32",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "2",
    "--eval-freq", "0",
    "--seed", "0",
    "--no-progress",
]  # fmt: skip


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def minigrid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("collect")
    code, _, err = _cli(*TINY_PPO, "--out", str(root / "runs"))
    assert code == 0, err
    (run,) = (root / "runs" / ENV / "ppo").iterdir()
    return run


def test_num_levels_records_the_first_k_levels_only(minigrid_run: Path, tmp_path: Path) -> None:
    """Every episode of a ``--num-levels 2`` dataset is on level 0 or 1 (the run trains on 0-4), and
    its first frame is the frame the env itself gives on a reset to that level."""
    from heldout.envs.seeded import SeededLevelEnv

    out = tmp_path / "k2"
    code, printed, err = _cli(
        "collect", str(minigrid_run), "--steps", "700", "--num-levels", "2", "--num-envs", "4",
        "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    dataset = open_dataset(out)
    meta = dataset.heldout
    assert meta["train_levels"] == {"start": 0, "stop": 2} and meta["num_levels"] == 2
    assert meta["run_train_levels"] == {"start": 0, "stop": 5}
    assert "[0, 2)" in printed
    episodes = list(dataset.read_episodes(range(len(dataset.lengths)), keys=("observations", "level_seed")))
    played = sorted({int(x) for e in episodes for x in e["level_seed"]})
    assert played == meta["levels_played"] == dataset.levels
    assert set(played) <= {0, 1} and len(episodes) >= 2
    env = SeededLevelEnv(ENV)
    try:
        for e in episodes:
            level = int(e["level_seed"][0])
            assert (e["level_seed"] == level).all()  # one level an episode
            first, _ = env.reset(options={"level": level})
            np.testing.assert_array_equal(e["observations"][0], first)
    finally:
        env.close()


def test_without_num_levels_every_training_level_may_be_played(minigrid_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "all"
    code, _, err = _cli(
        "collect", str(minigrid_run), "--steps", "400", "--num-envs", "4", "--out", str(out), "--no-progress"
    )
    assert code == 0, err
    meta = json.loads((out / "data" / "metadata.json").read_text())["heldout"]
    assert meta["train_levels"] == meta["run_train_levels"] == {"start": 0, "stop": 5}
    assert meta["num_levels"] == 5 and set(meta["levels_played"]) <= set(range(5))


@pytest.mark.parametrize("k", ["6", "0", "x"])
def test_num_levels_out_of_range_writes_nothing(minigrid_run: Path, tmp_path: Path, k: str) -> None:
    out = tmp_path / "bad"
    code, _, err = _cli("collect", str(minigrid_run), "--steps", "100", "--num-levels", k, "--out", str(out))
    assert code == 2 and not out.exists() and not list(tmp_path.iterdir())
    (line,) = err.strip().splitlines()[-1:]
    assert repr(k) in line or f"--num-levels {k} " in line
    if k == "6":
        assert "valid: 1 to 5" in line
