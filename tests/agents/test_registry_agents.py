"""Every agent in ``heldout.agents.AGENTS``, on the tiny image env: one test per agent and property.

A new agent is tested here as soon as it is registered. That includes an agent in a user's own file:
``pytest tests/agents/test_registry_agents.py --heldout-import my_agent.py`` (tests/conftest.py).
Agents are built by ``tiny_env.small_agent``: ``cls("CnnPolicy", env, seed=0, device="cpu", ...)``
on two 64x64x3 ``uint8`` envs with 15 discrete actions, with a rollout of 8 steps per env, one epoch
and minibatches of 8 for on-policy agents, and a replay of 64 with training every 4 steps for
off-policy (DQN-like) ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from tiny_env import small_agent

from heldout.agents import AGENTS
from heldout.agents.ppo import PPO
from heldout.protocol.validate import agent_parameters

NAMES = AGENTS.names()

#: PPO's methods that define the update; an agent overrides hooks instead (docs/adding-an-agent.md).
PPO_CORE = ("train", "collect_rollouts", "_evaluate_actions", "forward_policy")


def _state(model: BaseAlgorithm) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def _obs(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8)


def _plain(value: Any) -> bool:
    """Whether ``value`` is data (numbers, strings, None and containers of them), not an object."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _as_saved(value: Any) -> Any:
    """``value`` as SB3's JSON save gives it back: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [_as_saved(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_saved(v) for k, v in value.items()}
    return value


def test_the_registry_holds_the_reference_agents():
    assert {"ppo", "rad", "drac", "ucb-drac", "sg-ppo", "sgfd", "sgqn"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_agent_is_an_sb3_algorithm_with_a_help_line(name):
    cls = AGENTS.get(name)
    assert isinstance(cls, type) and issubclass(cls, BaseAlgorithm), (
        f"{name}: {cls!r} is not an SB3 algorithm"
    )
    assert AGENTS.describe(name).strip(), f"{name}: registered without a help string"


@pytest.mark.parametrize("name", NAMES)
def test_on_policy_agents_build_on_heldout_ppo_and_override_hooks_only(name):
    cls = AGENTS.get(name)
    if not issubclass(cls, OnPolicyAlgorithm):
        pytest.skip(f"{name} is off-policy: it has its own update")
    assert issubclass(cls, PPO), f"{name}: an on-policy agent subclasses heldout.agents.PPO"
    copied = [method for method in PPO_CORE if getattr(cls, method) is not getattr(PPO, method)]
    assert not copied, f"{name} overrides {copied}: override PPO's hooks instead (docs/adding-an-agent.md)"


@pytest.mark.parametrize("name", NAMES)
def test_agent_trains_saves_and_loads(name, tmp_path):
    cls = AGENTS.get(name)
    model = small_agent(cls)
    before = _state(model)
    model.learn(32)
    after = _state(model)
    assert any(not torch.equal(before[k], after[k]) for k in before), f"{name}: learn() changed no parameter"

    obs = _obs()
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "agent.zip")
    loaded = cls.load(tmp_path / "agent.zip", device="cpu")
    assert type(loaded) is cls
    loaded_state = _state(loaded)
    assert loaded_state.keys() == after.keys()
    for key, value in after.items():
        torch.testing.assert_close(loaded_state[key], value, rtol=0, atol=0, msg=f"{name}: {key} after load")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    # the agent's constructor arguments (those kept as plain data under their own name) are saved
    # and restored
    saved, _, _ = load_from_zip_file(tmp_path / "agent.zip", device="cpu")
    assert saved is not None
    for arg in sorted(agent_parameters(cls)):
        value = model.__dict__.get(arg)
        if arg in model.__dict__ and _plain(value):
            assert arg in saved, f"{name}: argument {arg} is not saved (left out by _excluded_save_params?)"
            restored = loaded.__dict__.get(arg)
            assert _as_saved(restored) == _as_saved(value), (
                f"{name}: {arg} = {value!r} restored as {restored!r}"
            )

    loaded.set_env(model.get_env())
    loaded.learn(16)  # a loaded agent keeps training (generators, buffers and helpers rebuilt)


@pytest.mark.parametrize("name", NAMES)
def test_agent_same_seed_same_parameters(name):
    # one after the other: SB3 seeds torch's global RNG when an agent is built
    cls = AGENTS.get(name)
    first = small_agent(cls)
    first.learn(16)
    a = _state(first)
    second = small_agent(cls)
    second.learn(16)
    b = _state(second)
    assert all(torch.equal(a[k], b[k]) for k in a), f"{name}: two runs with seed 0 trained different weights"
