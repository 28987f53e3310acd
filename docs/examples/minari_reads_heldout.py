"""Checks that ``minari`` reads a dataset heldout writes (run it where minari is installed: the 3.13 stack).

    .venv313/bin/pip install minari        # NumPy 2 only, so not on the 3.11/3.12 stack
    PYTHONPATH=. .venv313/bin/python docs/examples/minari_reads_heldout.py [DATASET_DIR]

Without an argument it writes a small synthetic Procgen-shaped dataset with heldout's writer; with one
it reads that dataset (e.g. one ``heldout collect`` wrote). Either way it opens ``DIR/data`` with
``minari.MinariDataset``, compares every episode with heldout's own reader and prints what minari sees.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np

from heldout.protocol.dataset import DATA, open_dataset, write_synthetic


def main(argv: list[str]) -> int:
    if argv:
        path = Path(argv[0])
    else:
        space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        path = write_synthetic(Path(tempfile.mkdtemp()) / "ds", "coinrun", space, 15, range(10), 2000)
    ours = open_dataset(path)
    theirs = minari.MinariDataset(path / DATA)
    print(
        f"minari {minari.__version__}: {theirs.spec.dataset_id}, {theirs.total_episodes} episodes, "
        f"{theirs.total_steps} steps, observations {theirs.observation_space}, actions {theirs.action_space}"
    )
    assert theirs.total_steps == ours.total_steps and theirs.total_episodes == len(ours.lengths)
    for mine, ep in zip(ours.read_episodes(range(len(ours.lengths))), theirs.iterate_episodes()):
        np.testing.assert_array_equal(ep.observations, mine["observations"])
        np.testing.assert_array_equal(ep.actions, mine["actions"])
        np.testing.assert_array_equal(ep.rewards, mine["rewards"])
        np.testing.assert_array_equal(ep.terminations, mine["terminations"])
        np.testing.assert_array_equal(ep.truncations, mine["truncations"])
    print("every episode is the same through minari and through heldout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
