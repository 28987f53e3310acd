"""docs/examples/cleanrl_style_ppo.py: a user's own PPO loop on ``gymnasium.make_vec("heldout/<game>-v0")``."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from heldout.protocol.plugins import import_plugin

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "cleanrl_style_ppo.py"


def test_the_example_trains_on_the_training_levels_only() -> None:
    example = import_plugin(str(EXAMPLE))
    torch.manual_seed(0)
    before = copy.deepcopy(example.Agent().state_dict())
    out = example.train(
        "coinrun", total_timesteps=2 * 8 * 32, num_envs=8, num_steps=32, epochs=1, minibatches=2
    )
    assert len(out["losses"]) == 2 * 2 and all(math.isfinite(x) for x in out["losses"])
    after = out["agent"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the update moved the weights
    # every finished episode was played on a training level, as info["level_seed"] reports
    assert all(0 <= level < 200 for level in out["levels"])
    assert len(out["levels"]) == len(out["returns"])
