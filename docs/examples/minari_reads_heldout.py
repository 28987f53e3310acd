"""Checks that ``minari`` reads a dataset heldout writes, episode for episode.

minari needs NumPy 2, so it does not install on heldout's 3.11/3.12 stack; this script needs only
``minari``, ``h5py`` and ``pillow`` (minari's HDF5 reader imports PIL), so any NumPy 2 Python runs it:

    python3.13 -m venv /tmp/mvenv && /tmp/mvenv/bin/pip install minari h5py pillow
    heldout collect RUN_DIR --steps 50000 --out data/expert        # on heldout's own stack
    /tmp/mvenv/bin/python docs/examples/minari_reads_heldout.py data/expert

It opens ``DIR/data`` with ``minari.MinariDataset`` and compares every episode minari returns with the
file's arrays read directly with ``h5py`` (``episode_<i>/observations`` etc.: neither heldout's reader
nor minari's). Without an argument (on a stack with heldout and minari both, e.g. .venv313) it first
writes a small synthetic Procgen-shaped dataset with heldout's writer.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import h5py
import minari
import numpy as np

FIELDS = ("observations", "actions", "rewards", "terminations", "truncations")


def main(argv: list[str]) -> int:
    if argv:
        path = Path(argv[0])
    else:
        import gymnasium as gym

        from heldout.protocol.dataset import write_synthetic

        space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        path = write_synthetic(Path(tempfile.mkdtemp()) / "ds", "coinrun", space, 15, range(10), 2000)
    theirs = minari.MinariDataset(path / "data")
    print(
        f"minari {minari.__version__}: {theirs.spec.dataset_id}, {theirs.total_episodes} episodes, "
        f"{theirs.total_steps} steps, observations {theirs.observation_space}, actions {theirs.action_space}"
    )
    with h5py.File(path / "data" / "main_data.hdf5", "r") as f:
        groups = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        assert theirs.total_episodes == len(groups), (theirs.total_episodes, len(groups))
        steps = 0
        for ep in theirs.iterate_episodes():
            raw = f[f"episode_{ep.id}"]
            for name in FIELDS:
                np.testing.assert_array_equal(getattr(ep, name), raw[name][()], err_msg=f"{ep.id} {name}")
            steps += len(ep.actions)
    assert steps == theirs.total_steps, (steps, theirs.total_steps)
    print(
        f"all {len(groups)} episodes ({steps} steps) are the same through minari and read directly with h5py"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
