"""Every registered env, through its single-env gymnasium id: the API checkers, determinism under a
seed and, for level envs, levels.

Parametrized over :func:`heldout.envs.gymnasium_ids` (the Procgen games, the contextual families and
the seeded level envs such as MiniGrid), so an env is covered the moment it is registered. Family
specifics live beside: test_procgen.py, test_contextual.py (every context feature has an effect),
test_minigrid.py.
"""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest

import heldout  # noqa: F401  (registers the gymnasium ids)
from heldout.envs import ENVS, SEEDED_ENVS, gymnasium_ids


def _missing(name: str) -> str:
    """Why env ``name`` cannot be built here (an optional extra not installed), or ``""``."""
    return SEEDED_ENVS.get(name).missing() if name in SEEDED_ENVS else ""


def _param(name: str, env_id: str) -> object:
    reason = _missing(name)
    return pytest.param(name, env_id, marks=pytest.mark.skipif(bool(reason), reason=reason))


ALL_IDS = sorted(gymnasium_ids().items())
IDS = [_param(name, env_id) for name, env_id in ALL_IDS]
#: Envs whose single env plays levels: ``reset(options={"level": k})``, ``info["level_seed"]``.
LEVEL_IDS = [_param(name, env_id) for name, env_id in ALL_IDS if name in ENVS or name in SEEDED_ENVS]


def _make(env_id: str, **kwargs) -> gymnasium.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gymnasium.make(env_id, **kwargs)


def _rollout(
    env: gymnasium.Env, steps: int = 40, seed: int = 3, options: dict | None = None, episodes: int = 0
) -> list:
    """Observations, rewards and ends of ``steps`` steps of sampled actions (the action generator
    seeded alike), resetting without a seed after an episode ends; ``episodes=1`` stops at the first
    episode's end."""
    obs, info = env.reset(seed=seed, options=options)
    env.action_space.seed(0)
    out: list = [np.array(obs, copy=True)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((np.array(obs, copy=True), float(reward), bool(terminated), bool(truncated)))
        if terminated or truncated:
            if episodes == 1:
                break
            obs, _ = env.reset()
            out.append(np.array(obs, copy=True))
    env.close()
    return out


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            if not (np.array_equal(x[0], y[0]) and x[1:] == y[1:]):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def test_every_heldout_gymnasium_id_belongs_to_a_registry():
    registered = {env_id for env_id in gymnasium.registry if env_id.startswith("heldout/")}
    assert registered == set(gymnasium_ids().values())
    assert len(LEVEL_IDS) >= 16 + 6  # Procgen games and MiniGrid envs at least


@pytest.mark.parametrize("name, env_id", IDS)
def test_passes_gymnasiums_and_sb3s_env_checkers(name, env_id):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(_make(env_id).unwrapped, skip_render_check=True)
        sb3_check_env(_make(env_id), warn=False)


@pytest.mark.parametrize("name, env_id", IDS)
def test_same_seed_same_actions_same_observations_and_rewards(name, env_id):
    a = _rollout(_make(env_id), seed=3)
    b = _rollout(_make(env_id), seed=3)
    assert _same(a, b)
    assert not _same(a, _rollout(_make(env_id), seed=4)), "another seed, another start"


@pytest.mark.parametrize("name, env_id", LEVEL_IDS)
def test_a_level_plays_the_same_under_any_seed_and_reports_itself(name, env_id):
    env = _make(env_id)
    obs, info = env.reset(seed=1, options={"level": 7})
    assert info["level_seed"] == 7
    _, _, terminated, truncated, step_info = env.step(env.action_space.sample())
    assert step_info["level_seed"] == 7 or terminated or truncated
    # another seed for the env's own generator, the same level: the same episode under the same actions
    assert _same(
        _rollout(_make(env_id), seed=1, options={"level": 7}, episodes=1),
        _rollout(_make(env_id), seed=2, options={"level": 7}, episodes=1),
    )


@pytest.mark.parametrize("name, env_id", LEVEL_IDS)
def test_different_levels_give_different_first_observations(name, env_id):
    env = _make(env_id)
    firsts = [env.reset(seed=0, options={"level": level})[0].tobytes() for level in range(5)]
    assert len(set(firsts)) >= 2, "five levels, one first observation: the level does not reach the env"
    env.close()


@pytest.mark.parametrize("name, env_id", LEVEL_IDS)
def test_resets_draw_their_levels_from_the_given_set_reproducibly(name, env_id):
    levels = [5, 6, 7, 11]
    env, reference = _make(env_id, levels=levels), _make(env_id)
    drawn = []
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        drawn.append(info["level_seed"])
        first, _ = reference.reset(seed=0, options={"level": info["level_seed"]})
        np.testing.assert_array_equal(obs, first)  # the level it reports is the level it plays
    assert set(drawn) <= set(levels) and len(set(drawn)) >= 2
    assert drawn == [_make(env_id, levels=levels).reset(seed=s)[1]["level_seed"] for s in range(10)]
    with pytest.raises(ValueError, match="-3"):
        env.reset(options={"level": -3})
    with pytest.raises(ValueError, match="bogus"):
        env.reset(options={"bogus": 1})


def test_building_and_stepping_every_env_imports_neither_torch_nor_sb3():
    """envs/ never imports torch or SB3 (DESIGN.md), so env code stays usable and tested without them."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, gymnasium, heldout\n"
        "from heldout.envs import SEEDED_ENVS, gymnasium_ids\n"
        "for name, env_id in gymnasium_ids().items():\n"
        "    if name in SEEDED_ENVS and SEEDED_ENVS.get(name).missing():\n"
        "        continue\n"
        "    env = gymnasium.make(env_id)\n"
        "    env.reset(seed=0)\n"
        "    env.step(env.action_space.sample())\n"
        "    env.close()\n"
        "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
