"""MiniGrid as seeded level envs: repeated levels and their fingerprints, the symbolic view, completion,
the leak-free evaluation list and the training env (the API checks: test_registry_envs.py)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import heldout  # noqa: F401  (registers the gymnasium ids)
from heldout.envs import SEEDED_ENVS, SeededLevelEnv
from heldout.envs.minigrid import MINIGRID_ENVS
from heldout.envs.seeded import level_fingerprints, terminated_with_reward
from heldout.protocol.evaluate import evaluation_levels
from heldout.protocol.families.seeded import leak_free_levels
from heldout.splits import LevelSet


def _play(name: str, level: int, actions: list[int]) -> list:
    env = SeededLevelEnv(name)
    obs, _ = env.reset(options={"level": level})
    out: list = [obs.copy()]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs.copy(), reward, terminated, truncated))
        if terminated or truncated:
            break
    return out


def test_every_minigrid_env_is_registered_with_its_upstream_id():
    for name, (upstream, _) in MINIGRID_ENVS.items():
        spec = SEEDED_ENVS.get(name)
        assert spec.env_id == f"heldout/{upstream}"
        assert "Chevalier-Boisvert" in spec.reference


def test_doorkey_5x5_seeds_0_and_41_generate_the_same_level():
    """Seeds are not levels: DoorKey-5x5 makes 48 distinct levels out of 10,000 seeds (0 and 41 are
    the same level; so are 1, 19, 33 and 42)."""
    fp = level_fingerprints("minigrid-doorkey-5x5", [0, 41, 1, 19, 33, 42])
    assert fp[0] == fp[1]
    assert fp[2] == fp[3] == fp[4] == fp[5]
    assert fp[0] != fp[2]
    grids = []
    for seed in (0, 41):
        env = gymnasium.make("MiniGrid-DoorKey-5x5-v0")
        env.reset(seed=seed)
        grids.append(env.unwrapped.grid.encode())
    np.testing.assert_array_equal(grids[0], grids[1])
    # the same level plays out the same under the same actions
    actions = list(np.random.default_rng(0).integers(0, 7, size=120))
    a, b = _play("minigrid-doorkey-5x5", 0, actions), _play("minigrid-doorkey-5x5", 41, actions)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0])
            assert x[1:] == y[1:]
        else:
            np.testing.assert_array_equal(x, y)


def test_the_fingerprint_sees_the_whole_level_not_the_agents_first_view():
    """DoorKey-6x6 seeds 16 and 17 start with the same 7x7 agent view, but the levels differ: a
    first-observation fingerprint would call them the same level."""
    env = SeededLevelEnv("minigrid-doorkey-6x6")
    first16, _ = env.reset(options={"level": 16})
    first17, _ = env.reset(options={"level": 17})
    np.testing.assert_array_equal(first16, first17)
    fp = level_fingerprints("minigrid-doorkey-6x6", [16, 17, 16])
    assert fp[0] != fp[1] and fp[0] == fp[2]


def test_observations_are_the_symbolic_view_with_its_true_bounds():
    from stable_baselines3.common.preprocessing import is_image_space

    env = gymnasium.make("heldout/MiniGrid-DoorKey-8x8-v0")
    assert env.observation_space == gymnasium.spaces.Box(0, 10, (7, 7, 3), np.uint8)
    assert not is_image_space(env.observation_space), "SB3 must not scale the indices as pixels"
    assert env.action_space == gymnasium.spaces.Discrete(7)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.max() <= 10
    assert (obs[..., 0] == 2).any()  # walls (object 2) are in view


def test_an_episode_reports_whether_it_completed_its_level():
    env = SeededLevelEnv("minigrid-doorkey-5x5")
    env.reset(options={"level": 3})
    grid_env = env.env.unwrapped
    goal = (grid_env.width - 2, grid_env.height - 2)
    assert grid_env.grid.get(*goal).type == "goal"
    grid_env.agent_pos, grid_env.agent_dir = (goal[0], goal[1] - 1), 1  # just above it, facing down
    _, reward, terminated, truncated, info = env.step(grid_env.actions.forward)
    assert terminated and not truncated and reward > 0
    assert info["level_complete"] is True and info["level_seed"] == 3
    env.reset(options={"level": 3})
    for _ in range(grid_env.max_steps):
        _, reward, terminated, truncated, info = env.step(grid_env.actions.left)  # turning forever
        if terminated or truncated:
            break
    assert truncated and reward == 0 and info["level_complete"] is False
    assert terminated_with_reward(True, False, 0.0, {}) is False  # lava: terminated, no reward


def test_the_leak_free_list_drops_every_held_out_copy_of_a_training_level():
    train, test = LevelSet.range(0, 10), LevelSet.range(1000, 2000)
    levels, record = leak_free_levels("minigrid-doorkey-5x5", train, test, 30)
    assert len(levels) == 30 and all(level in test for level in levels)
    train_fp = set(level_fingerprints("minigrid-doorkey-5x5", train.to_list()))
    assert not train_fp & set(level_fingerprints("minigrid-doorkey-5x5", levels))
    assert record["checked"] and record["train_levels"] == 10
    assert record["train_duplicates"] > 0 and record["repeats"] > 0  # 48 distinct levels in all
    assert len(record["dropped"]) == record["train_duplicates"] + record["repeats"]
    fps = level_fingerprints("minigrid-doorkey-5x5", levels)
    assert len(set(levels)) == len(set(fps)) == 30, "no level, and no fingerprint, twice in the list"
    for dup in record["dropped"]:
        assert dup["level"] in test and dup["level"] not in levels
        a, b = level_fingerprints("minigrid-doorkey-5x5", [dup["level"], dup["same_as"]])
        assert a == b
        if dup["same_as"] in train:
            assert dup["reason"] == f"same layout as train level {dup['same_as']}"
        else:
            assert dup["reason"] == f"repeat of test level {dup['same_as']}" and dup["same_as"] in levels
    kept = [level for level in evaluation_levels(test, 30) if level in levels]
    assert levels[: len(kept)] == kept, "the leak-free list keeps the plain list's clean levels, in order"


def test_without_duplicates_the_list_is_the_plain_one():
    train, test = LevelSet.range(0, 20), LevelSet.range(5000, 6000)
    levels, record = leak_free_levels("minigrid-multiroom-n2-s4", train, test, 25)
    assert record["dropped"] == [] and record["held_out_levels"] == 25
    assert levels == evaluation_levels(test, 25)


def test_a_held_out_set_made_only_of_training_levels_is_refused():
    # SimpleCrossingS9N1 has 42 distinct levels; seeds 0-1999 hold all of them
    with pytest.raises(ValueError) as excinfo:
        leak_free_levels(
            "minigrid-simplecrossing-s9n1", LevelSet.range(0, 2000), LevelSet.range(5000, 5100), 10
        )
    message = str(excinfo.value)
    for needle in ("minigrid-simplecrossing-s9n1", "[5000, 5100)", "[0, 2000)", "--no-leakage-check"):
        assert needle in message


def test_a_training_set_too_large_to_fingerprint_is_recorded_unchecked():
    levels, record = leak_free_levels(
        "minigrid-doorkey-5x5", LevelSet.range(0, 50), LevelSet.range(100, 200), 5, max_levels=20
    )
    assert record == {
        "policy": "layout",
        "method": "level fingerprint after reset(seed=level)",
        "checked": False,
        "reason": "training set larger than 20 levels",
        "episodes": 5,
        "listed": 5,
        "dropped": [],
        "train_duplicates": 0,
        "repeats": 0,
    }
    assert levels == evaluation_levels(LevelSet.range(100, 200), 5)


def test_the_training_env_draws_training_levels_from_the_run_seed():
    from heldout.protocol.families import family_for
    from heldout.protocol.presets import PRESETS

    def levels_played(seed: int) -> list[int]:
        config = PRESETS.get("minigrid-doorkey").replace(env="minigrid-doorkey-5x5", num_envs=3, seed=seed)
        family = family_for(config.env)
        venv = family.make_train_env(config, family.split(config))
        obs = venv.reset()
        assert obs.shape == (3, 7, 7, 3) and obs.dtype == np.uint8
        played = []
        rng = np.random.default_rng(0)
        for _ in range(600):
            obs, _, dones, infos = venv.step(rng.integers(0, 7, size=3))
            played += [info["level_seed"] for info, done in zip(infos, dones) if done]
        venv.close()
        return played

    a = levels_played(0)
    assert len(a) >= 6 and set(a) <= set(range(5)), a  # the preset's 5 training levels
    assert a == levels_played(0)
    assert a != levels_played(1)


def test_the_pixel_doorkey_is_minigrids_own_rgb_view_centred_in_a_black_64x64_frame():
    """minigrid-doorkey-5x5-rgb: the same levels as the symbolic env (same fingerprints), each frame
    MiniGrid's RGBImgPartialObsWrapper image at 8 pixels a cell with a 4-pixel black border."""
    from minigrid.wrappers import RGBImgPartialObsWrapper

    from heldout.envs.minigrid import MINIGRID_PIXEL_ENVS

    assert SEEDED_ENVS.get("minigrid-doorkey-5x5-rgb").env_id == "heldout/MiniGrid-DoorKey-5x5-RGB-v0"
    assert set(MINIGRID_PIXEL_ENVS) <= set(SEEDED_ENVS.names())
    seeds = [0, 41, 1, 7]
    assert level_fingerprints("minigrid-doorkey-5x5-rgb", seeds) == level_fingerprints(
        "minigrid-doorkey-5x5", seeds
    )
    env = SeededLevelEnv("minigrid-doorkey-5x5-rgb")
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    reference = RGBImgPartialObsWrapper(gymnasium.make("MiniGrid-DoorKey-5x5-v0"), tile_size=8)
    actions = [2, 1, 2, 0, 3, 2, 5, 2]
    obs, _ = env.reset(options={"level": 7})
    ref, _ = reference.reset(seed=7)
    for action in [None, *actions]:
        if action is not None:
            obs, *_ = env.step(action)
            ref, *_ = reference.step(action)
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        np.testing.assert_array_equal(obs[4:60, 4:60], ref["image"])
        border = np.ones((64, 64), bool)
        border[4:60, 4:60] = False
        assert not obs[border].any()
