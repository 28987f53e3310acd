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


def test_visible_context_scaled_by_a_training_range_spans_it_and_holds_every_in_bounds_context():
    """MountainCar force 0.0008-0.0012 was 0.071-0.111 of the declared bounds; scaled by the training
    range it is 0-1, a held-out force beyond it is above 1, and the space holds every in-bounds value."""
    from heldout.envs import CONTEXTUAL_ENVS

    space = CONTEXTUAL_ENVS.get("mountaincar").context_space
    lo_b, hi_b = space.bounds()["force"]
    i = space.names.index("force")
    scale = {"force": (0.0008, 0.0012)}
    unscaled = VisibleContext(gymnasium.make("heldout/ContextualMountainCar-v0"), mode="concat")
    env = VisibleContext(gymnasium.make("heldout/ContextualMountainCar-v0"), mode="concat", scale=scale)
    n_obs = 2
    for force, expected in ((0.0008, 0.0), (0.0010, 0.5), (0.0012, 1.0), (0.0014, 1.5)):
        obs, info = env.reset(seed=0, options={"context": {"force": force}})
        assert obs[n_obs + i] == pytest.approx(expected, abs=1e-5)
        assert info["context"]["force"] == force  # the raw value stays in info
        assert env.observation_space.contains(obs)
        raw, _ = unscaled.reset(seed=0, options={"context": {"force": force}})
        assert raw[n_obs + i] == pytest.approx((force - lo_b) / (hi_b - lo_b), abs=1e-6)
    # the space's context part: the declared bounds, scaled the same way
    assert env.observation_space.low[n_obs + i] == pytest.approx((lo_b - 0.0008) / 0.0004, rel=1e-5)
    assert env.observation_space.high[n_obs + i] == pytest.approx((hi_b - 0.0008) / 0.0004, rel=1e-5)
    # features the scale leaves out keep their declared bounds: [0, 1]
    j = space.names.index("gravity")
    assert (env.observation_space.low[n_obs + j], env.observation_space.high[n_obs + j]) == (0.0, 1.0)


def test_a_run_scales_its_visible_context_by_its_training_distribution_unless_told_bounds():
    from heldout.protocol.families import family_for
    from heldout.protocol.presets import PRESETS

    config = PRESETS.get("mountaincar-force-interpolation").replace(visible_context="concat")
    family = family_for(config.env)
    assert family.visible_scale(config) == {"force": (0.0008, 0.0012)}
    assert family.visible_scale(config.replace(visible_context_scale="bounds")) is None
    assert family.visible_scale(config.replace(visible_context="hidden")) is None
    with pytest.raises(ValueError, match="unknown visible_context_scale 'wide'; valid: training, bounds"):
        family.validate(config.replace(visible_context_scale="wide"))


def test_a_config_written_before_the_scale_field_reads_as_bounds(tmp_path):
    import yaml

    from heldout.protocol.run_folder import read_config

    (tmp_path / "old.yaml").write_text(yaml.safe_dump({"env": "cartpole", "visible_context": "concat"}))
    assert read_config(tmp_path / "old.yaml").visible_context_scale == "bounds"
    (tmp_path / "hidden.yaml").write_text(yaml.safe_dump({"env": "cartpole"}))
    assert read_config(tmp_path / "hidden.yaml").visible_context_scale == "training"
