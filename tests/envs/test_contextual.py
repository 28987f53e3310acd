"""Contextual envs, parametrized over the registry: exact defaults, every feature applied, seeded
sampling, refusals, and context in info (the API checkers: test_registry_envs.py)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import heldout  # noqa: F401  (registers the ids)
from heldout.envs import CONTEXTUAL_ENVS

FAMILIES = CONTEXTUAL_ENVS.names()
FEATURES = [(name, f.name) for name in FAMILIES for f in CONTEXTUAL_ENVS.get(name).context_space]


def _make(name: str, **kwargs) -> gymnasium.Env:
    return gymnasium.make(CONTEXTUAL_ENVS.get(name).env_id, **kwargs)


def _full_range(name: str) -> dict[str, str]:
    space = CONTEXTUAL_ENVS.get(name).context_space
    return {f.name: f"{f.lower}:{f.upper}" for f in space}


# The API checkers and determinism under a seed: tests/envs/test_registry_envs.py.


@pytest.mark.parametrize("name", FAMILIES)
def test_default_context_reproduces_gymnasiums_own_env_exactly(name):
    cls = CONTEXTUAL_ENVS.get(name)
    ours, theirs = gymnasium.make(cls.env_id), gymnasium.make(cls.gymnasium_id)
    assert ours.spec.max_episode_steps == theirs.spec.max_episode_steps
    a, _ = ours.reset(seed=11)
    b, _ = theirs.reset(seed=11)
    np.testing.assert_array_equal(a, b)
    theirs.action_space.seed(5)
    episodes = 0
    for t in range(400):
        action = theirs.action_space.sample()
        o1, r1, te1, tr1, _ = ours.step(action)
        o2, r2, te2, tr2, _ = theirs.step(action)
        np.testing.assert_array_equal(o1, o2, err_msg=f"step {t}")
        assert (r1, te1, tr1) == (r2, te2, tr2), f"step {t}"
        if te1 or tr1:
            episodes += 1
            np.testing.assert_array_equal(ours.reset()[0], theirs.reset()[0])


def _rollout(env: gymnasium.Env, actions: list, seed: int = 3) -> list:
    obs, _ = env.reset(seed=seed)
    out = [np.asarray(obs, dtype=np.float64).copy()]
    for a in actions:
        obs, r, te, tr, _ = env.step(a)
        out.append((np.asarray(obs, dtype=np.float64).copy(), float(r), te))
        if te or tr:
            break
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


#: Features that change what ends an episode, not the motion: probed from a state near the goal.
GOAL_FEATURES = {("mountaincar", "goal_position"), ("mountaincar-continuous", "goal_position")}


@pytest.mark.parametrize("name, feature", FEATURES)
def test_every_context_feature_changes_the_env(name, feature):
    f = CONTEXTUAL_ENVS.get(name).context_space.feature(feature)
    value = f.lower if f.default > f.lower else f.upper
    default, changed = _make(name), _make(name, context={feature: value})
    if (name, feature) in GOAL_FEATURES:
        ends = []
        for env in (default, changed):
            env.reset(seed=0)
            env.unwrapped.state = np.array([0.3, 0.05])
            action = 1 if name == "mountaincar" else np.array([0.0], dtype=np.float32)
            ends.append(env.step(action)[2])
        assert ends == [False, True]  # past the context's goal (0.0), short of the default (0.5 / 0.45)
        return
    default.action_space.seed(0)
    actions = [default.action_space.sample() for _ in range(150)]
    assert not _same(_rollout(default, actions), _rollout(changed, actions)), (
        f"{feature}={value} had no effect"
    )
    assert changed.unwrapped.context[feature] == value


def test_higher_gravity_makes_the_pole_fall_sooner_under_the_same_actions():
    lengths = {}
    for gravity in (4.9, 9.8, 29.4):
        env = _make("cartpole", context={"gravity": gravity})
        env.reset(seed=0)
        for t in range(500):
            _, _, terminated, _, _ = env.step(t % 2)  # the same alternating pushes
            if terminated:
                break
        lengths[gravity] = t + 1
    assert lengths[29.4] < lengths[9.8] < lengths[4.9]


@pytest.mark.parametrize("name", FAMILIES)
def test_contexts_are_drawn_per_reset_reproducibly_under_a_seed(name):
    def contexts(seed: int) -> list[dict]:
        env = _make(name, contexts=_full_range(name))
        out = [env.reset(seed=seed)[1]["context"]]
        out += [env.reset()[1]["context"] for _ in range(4)]
        return out

    first = contexts(1)
    assert first == contexts(1)
    assert first != contexts(2)
    assert len({tuple(c.values()) for c in first}) == 5, "a fresh context at every reset"


def test_context_draws_leave_the_envs_own_randomness_alone():
    plain, sampled = _make("cartpole"), _make("cartpole", contexts={"gravity": "4.9:14.7"})
    np.testing.assert_array_equal(plain.reset(seed=4)[0], sampled.reset(seed=4)[0])


def test_a_fixed_context_is_held_and_reset_options_override_it():
    env = _make("cartpole", context={"gravity": 20.0})
    assert [env.reset(seed=s)[1]["context"]["gravity"] for s in range(3)] == [20.0] * 3
    _, info = env.reset(options={"context": {"length": 1.5}})
    assert info["context"]["length"] == 1.5 and info["context"]["gravity"] == 20.0
    assert env.unwrapped.polemass_length == pytest.approx(0.1 * 1.5)  # derived value recomputed
    _, _, _, _, info = env.step(0)
    assert info["context"] == {**env.unwrapped.context}


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        ({"context": {"gravity": 100.0}}, ["'gravity'", "100.0", "[0.98, 29.4]"]),
        ({"context": {"gravty": 3.0}}, ["'gravty'", "did you mean 'gravity'", "masspole"]),
        ({"contexts": {"gravity": "1:50"}}, ["'gravity'", "50", "[0.98, 29.4]"]),
        ({"contexts": {"pole": "1:2"}}, ["'pole'", "valid CartPole context features"]),
    ],
)
def test_out_of_bounds_and_unknown_features_are_refused(kwargs, needles):
    with pytest.raises(ValueError) as excinfo:
        _make("cartpole", **kwargs)
    for needle in needles:
        assert needle in str(excinfo.value)


def test_reset_option_contexts_are_checked_too():
    env = _make("pendulum")
    with pytest.raises(ValueError, match=r"'m' = -1.0 is out of bounds; valid: \[0.1, 10\] kg"):
        env.reset(options={"context": {"m": -1.0}})


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_declares_documented_features(name):
    space = CONTEXTUAL_ENVS.get(name).context_space
    assert len(space) >= 3
    for f in space:
        assert f.lower <= f.default <= f.upper and f.description
    assert space.validate({}) == space.defaults()
    assert np.all((space.normalise(space.defaults()) >= 0) & (space.normalise(space.defaults()) <= 1))


@pytest.mark.parametrize(
    ("context", "action"),
    [
        ({"main_engine_power": 50.0, "gravity": -1.0}, 2),  # climbs to a height of 13 at 13 units/s
        ({"side_engine_power": 5.0, "gravity": -1.0}, 1),  # spins past 100 rad
        ({"gravity": -20.0, "wind_power": 20.0, "turbulence_power": 2.0}, 0),
    ],
)
def test_lunar_lander_observations_stay_in_the_declared_space_for_in_bounds_contexts(context, action):
    """gymnasium's bounds (±2.5 position, ±10 velocity, ±2π angle) are left by in-bounds contexts;
    the declared space is widened to what the simulation can produce, so none is outside it."""
    pytest.importorskip("Box2D")
    import gymnasium as gym

    env = gym.make("heldout/ContextualLunarLander-v0", context=context)
    space = env.observation_space
    gym_space = gym.make("LunarLander-v3").observation_space
    leaves_gymnasiums, steps = 0, 0
    obs, _ = env.reset(seed=0)
    done = False
    while not done and steps < 400:
        obs, _, terminated, truncated, _ = env.step(action)
        done, steps = terminated or truncated, steps + 1
        assert space.contains(obs), (steps, obs)
        leaves_gymnasiums += not gym_space.contains(obs)
    if action:  # the engine cases do leave gymnasium's own declared space
        assert leaves_gymnasiums > 0


@pytest.mark.parametrize("name", FAMILIES)
def test_observations_stay_in_the_declared_space_at_the_corners_of_the_context_bounds(name):
    """Every feature at one end of its bounds (all low, all high, each alone at either end, and 4
    random corners), 150 random steps each: no observation leaves the declared space."""
    cls = CONTEXTUAL_ENVS.get(name)
    feats = list(cls.context_space)
    rng = np.random.default_rng(0)
    corners = [{f.name: f.lower for f in feats}, {f.name: f.upper for f in feats}]
    corners += [{f.name: v} for f in feats for v in (f.lower, f.upper)]
    corners += [{f.name: float(rng.choice([f.lower, f.upper])) for f in feats} for _ in range(4)]
    for context in corners:
        env = _make(name, context=context)
        env.action_space.seed(0)
        obs, _ = env.reset(seed=1)
        assert env.observation_space.contains(obs), (context, obs)
        for _ in range(150):
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs), (context, obs)
            if terminated or truncated:
                break
