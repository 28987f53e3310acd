"""MiniHack as seeded level envs: a level seed fixes the layout, the classed glyph view against NetHack's
own characters, truncation at the step limit, the leak-free list (the API checks, determinism under a
seed and levels from a set: test_registry_envs.py). Skipped where the 'minihack' extra is missing."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import heldout  # noqa: F401  (registers the gymnasium ids)
from heldout.envs import SEEDED_ENVS, SeededLevelEnv
from heldout.envs.minihack import GLYPH_CLASSES, MINIHACK_ENVS, glyph_classes, make_minihack, missing
from heldout.envs.seeded import level_fingerprints
from heldout.protocol.families.seeded import leak_free_levels
from heldout.splits import LevelSet
from tests.envs.test_minigrid import _play  # one episode of a level under given actions
from tests.envs.test_registry_envs import _same

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "-")


def test_every_minihack_env_is_registered_with_its_upstream_id_and_an_mlp():
    for name, (upstream, _) in MINIHACK_ENVS.items():
        spec = SEEDED_ENVS.get(name)
        assert spec.env_id == f"heldout/{upstream}"
        assert "Samvelyan" in spec.reference and spec.agent_kwargs == {"policy": "MlpPolicy"}
        assert spec.missing() == ""


@pytest.mark.parametrize("name", ["minihack-multiroom-n4", "minihack-keyroom-s5", "minihack-corridor-r3"])
def test_a_level_seed_fixes_the_layout_and_different_seeds_differ(name):
    """Two env instances built apart (each with its own NetHack) give one fingerprint per seed, and
    the same level plays the same under the same actions; eight seeds, eight layouts."""
    levels = [0, 1, 2, 3, 4, 5, 6, 7]
    first, again = level_fingerprints(name, levels), level_fingerprints(name, levels[::-1])[::-1]
    assert first == again
    assert len(set(first)) == len(levels)
    actions = [int(a) for a in np.random.default_rng(0).integers(0, 8, size=60)]
    assert _same(_play(name, 5, actions), _play(name, 5, actions))
    assert not _same(_play(name, 5, actions), _play(name, 6, actions))


def test_the_multiroom_layout_is_the_minigrid_layout_of_the_seed():
    """MultiRoom's rooms come from a MiniGrid env that MiniHack cannot seed under gymnasium 1: here each
    level seeds it, so the des file (and the NetHack map) follows the level, not the process."""
    env = make_minihack("MiniHack-MultiRoom-N4-v0")
    env.reset(seed=11)
    game = env.unwrapped
    layout = game.get_env_map(game.minigrid_env)
    grid = game.minigrid_env.unwrapped.grid.encode().copy()
    env.reset(seed=12)
    assert game.get_env_map(game.minigrid_env) != layout
    env.reset(seed=11)
    assert game.get_env_map(game.minigrid_env) == layout
    np.testing.assert_array_equal(game.minigrid_env.unwrapped.grid.encode(), grid)
    env.close()


@pytest.mark.parametrize("name", ["minihack-multiroom-n2", "minihack-keyroom-s5", "minihack-corridor-r3"])
def test_the_view_classes_agree_with_nethacks_characters(name):
    """An independent reading of the same screen: NetHack's characters. Stairs down are '>', walls and
    open doors '|' or '-', closed doors '+', floor '.' or '#' (corridors), the dark ' ', the agent '@'."""
    from nle.env.base import NLE

    upstream = MINIHACK_ENVS[name][0]
    env = gymnasium.make(upstream, observation_keys=("glyphs", "chars", "blstats")).unwrapped
    table = glyph_classes()
    chars_of = {
        "stairs down": {">"},
        "stairs up": {"<"},
        "closed door": {"+"},
        "open door": {"|", "-"},
        "wall": {"|", "-"},
        "floor": {".", "#"},
        "dark": {" "},
        "object": {"(", "[", "%", ")", "!", "?", "/", "=", "*", "`", '"', "$"},
    }
    seen = set()
    rng = np.random.default_rng(1)
    for level in range(3):
        NLE.seed(env, level, level, False)  # MultiRoom's own seed() breaks on gymnasium 1 (see the module)
        obs, _ = env.reset()
        for _ in range(30):
            classes = table[obs["glyphs"]]
            chars = obs["chars"].view(np.uint8)
            for cls, allowed in chars_of.items():
                cells = chars[classes == GLYPH_CLASSES[cls]]
                assert {chr(c) for c in np.unique(cells)} <= allowed, cls
                if cells.size:
                    seen.add(cls)
            x, y = int(obs["blstats"][0]), int(obs["blstats"][1])
            assert chr(chars[y, x]) == "@" and classes[y, x] == GLYPH_CLASSES["monster"]
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                break
    env.close()
    assert {"floor", "wall", "dark"} <= seen


def test_the_observation_is_the_classed_crop_around_the_agent_with_its_true_bounds():
    from stable_baselines3.common.preprocessing import is_image_space

    env = gymnasium.make("heldout/MiniHack-MultiRoom-N2-v0")
    assert env.observation_space == gymnasium.spaces.Box(0, 13, (9, 9), np.uint8)
    assert not is_image_space(env.observation_space), "SB3 must not scale the classes as pixels"
    obs, info = env.reset(seed=0, options={"level": 3})
    assert obs[4, 4] == GLYPH_CLASSES["agent"] and (obs == GLYPH_CLASSES["agent"]).sum() == 1
    raw = env.unwrapped.env.raw
    x, y = info["agent_pos"]
    assert (x, y) == (int(raw["blstats"][0]), int(raw["blstats"][1]))
    # the crop is the full map's 9x9 window around (x, y), classed
    padded = np.pad(glyph_classes()[raw["glyphs"]], 4, constant_values=GLYPH_CLASSES["dark"])
    window = padded[y : y + 9, x : x + 9].copy()
    window[4, 4] = GLYPH_CLASSES["agent"]
    np.testing.assert_array_equal(obs, window)
    env.close()


def test_the_step_limit_is_a_truncation_and_not_a_completion():
    env = SeededLevelEnv("minihack-multiroom-n2")  # 40 steps
    env.reset(options={"level": 0})
    steps, terminated, truncated, info = 0, False, False, {}
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(0)  # north, into the wall after a few steps
        steps += 1
    assert (steps, terminated, truncated) == (40, False, True)
    assert info["level_complete"] is False


def test_the_leak_free_list_drops_test_levels_with_a_training_layout():
    """Seeds 0-3 as training levels and again inside the held-out set: those four are dropped as
    training layouts, the rest listed."""
    name = "minihack-keyroom-s5"
    chosen, record = leak_free_levels(name, LevelSet.range(0, 4), LevelSet.of([0, 1, 2, 3, 50, 51]), 6)
    assert sorted(chosen) == [50, 51]
    assert record["train_duplicates"] == 4 and record["short"]
