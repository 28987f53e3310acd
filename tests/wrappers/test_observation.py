"""VisibleContext: the normalised context appended (concat) or beside the observation (dict)."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest

import heldout  # noqa: F401
from heldout.envs import CONTEXTUAL_ENVS
from heldout.wrappers import VisibleContext


@pytest.mark.parametrize("name", CONTEXTUAL_ENVS.names())
@pytest.mark.parametrize("mode", ["concat", "dict"])
def test_visible_context_passes_the_checkers(name, mode):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    cls = CONTEXTUAL_ENVS.get(name)
    contexts = {f.name: f"{f.lower}:{f.upper}" for f in cls.context_space}
    env = VisibleContext(gymnasium.make(cls.env_id, contexts=contexts), mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box warnings of gymnasium's own spaces
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_concat_appends_the_context_normalised_to_its_bounds():
    env = VisibleContext(gymnasium.make("heldout/ContextualCartPole-v0"), mode="concat")
    obs, _ = env.reset(seed=0, options={"context": {"gravity": 29.4, "masscart": 0.1}})
    assert obs.shape == (4 + 6,)
    ctx = obs[4:]
    assert ctx[0] == pytest.approx(1.0) and ctx[1] == pytest.approx(0.0)  # upper / lower bound
    assert ctx[3] == pytest.approx((0.5 - 0.05) / (5.0 - 0.05))  # length at its default
    obs2, *_ = env.step(0)
    np.testing.assert_array_equal(obs2[4:], ctx)  # the context stays for the episode
    obs3, _ = env.reset(seed=0, options={"context": {"gravity": 0.98}})
    assert obs3[4] == pytest.approx(0.0)
    np.testing.assert_array_equal(obs3[:4], obs[:4])  # same seed, same start state


def test_dict_mode_gives_obs_and_context_and_hidden_is_the_default():
    plain = gymnasium.make("heldout/ContextualPendulum-v0")
    env = VisibleContext(gymnasium.make("heldout/ContextualPendulum-v0"), mode="dict")
    obs, _ = env.reset(seed=1)
    assert set(obs) == {"obs", "context"} and obs["context"].shape == (6,)
    np.testing.assert_array_equal(obs["obs"], plain.reset(seed=1)[0])
    assert plain.observation_space.shape == (3,)  # no context unless asked
    with pytest.raises(ValueError, match="valid modes: concat, dict"):
        VisibleContext(gymnasium.make("heldout/ContextualPendulum-v0"), mode="stacked")
    with pytest.raises(TypeError, match="context_space"):
        VisibleContext(gymnasium.make("CartPole-v1"))
