"""``gymnasium.make_vec("heldout/<game>-v0")``: a native VectorEnv over procgen's core, checked against
:class:`ProcgenVecEnv` step for step and against gymnasium's vector-env contract.

gymnasium 1.4 ships no checker for vector envs (``check_env`` takes single envs), so the contract is
checked here: spaces and batch shapes, dtypes, ``_key`` masks of every info entry, the
``autoreset_mode`` tag, and gymnasium's own vector wrappers on top.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import heldout  # noqa: F401  (registers the ids)
from heldout.envs import ProcgenVecEnv, SequentialLevelSampler
from heldout.envs.procgen_vector import ProcgenVectorEnv


def _actions(n: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 15, size=(steps, n))


def test_make_vec_returns_the_native_vector_env_not_a_sync_vector() -> None:
    envs = gymnasium.make_vec("heldout/coinrun-v0", num_envs=4, levels="0:200")
    try:
        assert isinstance(envs, ProcgenVectorEnv)
        assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
        assert envs.num_envs == 4 and envs.single_action_space == gymnasium.spaces.Discrete(15)
        assert envs.observation_space.shape == (4, 64, 64, 3)
    finally:
        envs.close()
    # the sync form stays available, as for any gymnasium id
    sync = gymnasium.make_vec("heldout/coinrun-v0", num_envs=2, vectorization_mode="sync")
    try:
        assert isinstance(sync, gymnasium.vector.SyncVectorEnv)
    finally:
        sync.close()


@pytest.mark.parametrize("levels", ["0:200", [3, 7, 11]])
def test_the_vector_env_plays_exactly_what_procgen_vec_env_plays(levels: object) -> None:
    """Same seed, same actions: the same frames, rewards, dones and levels as the SB3 VecEnv."""
    n, steps = 6, 300
    vector = gymnasium.wrappers.vector.RecordEpisodeStatistics(
        gymnasium.make_vec("heldout/maze-v0", num_envs=n, levels=levels)
    )
    sb3 = ProcgenVecEnv("maze", num_envs=n, levels=levels, seed=5)
    try:
        obs_v, info_v = vector.reset(seed=5)
        obs_s = sb3.reset()
        assert np.array_equal(obs_v, obs_s)
        assert np.array_equal(info_v["level_seed"], [i["level_seed"] for i in sb3.reset_infos])
        ended = 0
        for a in _actions(n, steps):
            obs_v, rew_v, term, trunc, info_v = vector.step(a)
            obs_s, rew_s, done_s, infos_s = sb3.step(a)
            assert np.array_equal(obs_v, obs_s) and np.array_equal(rew_v, rew_s)
            assert np.array_equal(term, done_s) and not trunc.any()
            assert np.array_equal(info_v["level_seed"], [i["level_seed"] for i in infos_s])
            for slot in np.flatnonzero(done_s):
                ended += 1
                assert info_v["_episode"][slot] and info_v["_level_complete"][slot]  # episode: the wrapper's
                assert info_v["episode"]["r"][slot] == infos_s[slot]["episode"]["r"]
                assert info_v["episode"]["l"][slot] == infos_s[slot]["episode"]["l"]
                assert info_v["level_complete"][slot] == infos_s[slot]["level_complete"]
                assert info_v["next_level_seed"][slot] == sb3.reset_infos[slot]["level_seed"]
                if isinstance(levels, list):
                    assert info_v["next_level_seed"][slot] in levels
            if "_episode" in info_v:
                assert set(np.flatnonzero(info_v["_episode"])) == set(np.flatnonzero(done_s))
        assert ended > 0  # the comparison covered episode ends and level placement
    finally:
        vector.close()
        sb3.close()


def test_a_level_sampler_places_its_levels() -> None:
    """A fixed list through a SequentialLevelSampler: the episodes play the list, in hand-out order."""
    listed = [100, 200, 300, 400, 500, 600, 700, 800]
    envs = ProcgenVectorEnv("coinrun", num_envs=2, level_sampler=SequentialLevelSampler(listed))
    try:
        _, info = envs.reset(seed=0)
        played = list(info["level_seed"])
        for a in _actions(2, 3000):
            _, _, term, _, info = envs.step(a)
            for slot in np.flatnonzero(term):
                if envs.level_sampler.assignment.get(int(slot)) is not None:
                    played.append(int(info["next_level_seed"][slot]))
            if envs.level_sampler.exhausted:
                break
        assert played == listed
    finally:
        envs.close()


def test_the_gymnasium_vector_contract_and_wrappers() -> None:
    envs = gymnasium.make_vec("heldout/bigfish-v0", num_envs=3, levels="0:10")
    wrapped = gymnasium.wrappers.vector.NormalizeReward(envs)  # a wrapper that only needs the API
    try:
        obs, info = wrapped.reset(seed=1)
        assert envs.observation_space.contains(obs)
        assert info["_level_seed"].all() and info["level_seed"].dtype.kind == "i"
        ends = 0
        for _ in range(2000):
            obs, _, term, trunc, info = wrapped.step(envs.action_space.sample())
            assert obs.dtype == np.uint8 and obs.shape == (3, 64, 64, 3)
            assert term.shape == trunc.shape == (3,) and term.dtype == bool
            for key in [k for k in info if not k.startswith("_")]:
                assert f"_{key}" in info, key  # every entry has its mask
                assert info[key].shape == (3,)
            if term.any():
                ends += int(term.sum())
                assert set(np.flatnonzero(info["_level_complete"])) == set(np.flatnonzero(term))
        assert ends > 0
    finally:
        wrapped.close()


def test_bad_input_is_refused() -> None:
    envs = ProcgenVectorEnv("coinrun", num_envs=2)
    try:
        with pytest.raises(ValueError, match="one int seed"):
            envs.reset(seed=[1, 2])
        with pytest.raises(ValueError, match="no reset options"):
            envs.reset(options={"level": 3})
    finally:
        envs.close()
    with pytest.raises(KeyError, match="coinrn"):
        ProcgenVectorEnv("coinrn", num_envs=2)
    with pytest.raises(ValueError, match="max_episode_steps"):
        gymnasium.make_vec("heldout/coinrun-v0", num_envs=2, max_episode_steps=10)
