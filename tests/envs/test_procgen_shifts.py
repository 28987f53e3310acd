"""Procgen visual shifts change what the agent sees, never the level it plays."""

from __future__ import annotations

import numpy as np
import pytest

from heldout.envs.procgen import VISUAL_OPTIONS, ProcgenEnv
from heldout.envs.procgen_shifts import SHIFTS


def _play(options: dict[str, bool], level: int, steps: int = 80) -> tuple[np.ndarray, list, list]:
    env = ProcgenEnv("coinrun", **options)
    obs, info = env.reset(seed=0, options={"level": level})
    rng = np.random.default_rng(1)
    frames, rewards, levels = [obs], [], [info["level_seed"]]
    for _ in range(steps):
        obs, reward, terminated, _, info = env.step(int(rng.integers(15)))
        frames.append(obs)
        rewards.append(reward)
        levels.append(info["level_seed"])
        if terminated:
            break
    env.close()
    return np.array(frames), rewards, levels


@pytest.mark.parametrize("name", SHIFTS.names())
def test_a_visual_shift_changes_observations_but_not_the_level(name):
    shift = SHIFTS.get(name)
    assert shift.options and set(shift.options) <= set(VISUAL_OPTIONS)
    changed = 0
    for level in (0, 2):  # coinrun level 1 already has the one theme restrict_themes keeps
        base_frames, base_rewards, base_levels = _play({}, level)
        frames, rewards, levels = _play(shift.options, level)
        assert rewards == base_rewards and levels == base_levels, "a shift must keep the level and its play"
        assert frames.shape == base_frames.shape
        changed += int((frames != base_frames).any())
    assert changed, f"shift {name!r} left every frame unchanged"


def test_unknown_shift_names_the_valid_ones():
    with pytest.raises(KeyError) as excinfo:
        SHIFTS.get("background-off")
    assert "did you mean 'backgrounds-off'" in excinfo.value.args[0]
