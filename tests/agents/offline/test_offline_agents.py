"""Every registered offline agent: the registry, its argument checks, seeding, image input, exact resume."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from heldout.agents.offline import OFFLINE_AGENTS
from heldout.agents.offline.base import make_encoder
from tests.agents.offline.helpers import STATES, random_transitions

#: Small networks so every check runs in seconds (DT keeps its dropout: resume must replay it).
SMALL = {"dt": {"n_layer": 1, "n_head": 2, "n_embd": 16, "context_length": 3}}


def _agent(name: str, seed: int = 0, space: gym.spaces.Box = STATES, **kwargs):
    cls = OFFLINE_AGENTS.get(name)
    return cls(space, gym.spaces.Discrete(3), seed=seed, batch_size=8, **{**SMALL.get(name, {}), **kwargs})


def _batch(agent, seed: int = 0) -> dict[str, torch.Tensor]:
    if not agent.needs_sequences:
        return random_transitions(agent.observation_space, 3, agent.batch_size, seed)
    g = torch.Generator().manual_seed(seed)
    b, k = agent.batch_size, agent.sequence_length
    return {
        "obs": torch.rand(b, k, *agent.observation_space.shape, generator=g),
        "action": torch.randint(0, 3, (b, k), generator=g),
        "rtg": torch.rand(b, k, generator=g),
        "timestep": torch.arange(k).repeat(b, 1),
        "mask": torch.rand(b, k, generator=g) < 0.8,
    }


def test_the_registry_lists_the_four_algorithms() -> None:
    assert {"bcq", "cql", "iql", "dt"} <= set(OFFLINE_AGENTS.names())
    for name in ("bcq", "cql", "iql", "dt"):
        assert OFFLINE_AGENTS.get(name).name == name and OFFLINE_AGENTS.describe(name)


@pytest.mark.parametrize("name", ["bcq", "cql", "iql", "dt"])
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"learning_rate": 1e-3}, "unknown agent argument 'learning_rate'"),
        ({"lr": "fast"}, "lr='fast'"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_value_and_the_valid_ones(
    name: str, kwargs: dict, needle: str
) -> None:
    cls = OFFLINE_AGENTS.get(name)
    with pytest.raises(ValueError) as err:
        cls.check_kwargs(kwargs)
    message = str(err.value)
    assert needle in message and "valid:" in message and "\n" not in message
    with pytest.raises(ValueError, match="valid:"):
        cls(STATES, gym.spaces.Discrete(3), **kwargs)


@pytest.mark.parametrize(
    "name, kwargs, needle",
    [
        ("bcq", {"threshold": 1.0}, "[0, 1)"),
        ("cql", {"alpha": -0.5}, "[0, inf)"),
        ("iql", {"expectile": 1.0}, "(0, 1)"),
        ("iql", {"target_update_freq": True}, "whole number"),
        ("dt", {"n_embd": 10, "n_head": 4}, "multiple of n_head"),
        ("dt", {"dropout": 1.0}, "[0, 1)"),
    ],
)
def test_each_algorithm_checks_its_own_arguments(name: str, kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        OFFLINE_AGENTS.get(name).check_kwargs(kwargs)
    assert needle in str(err.value)


def test_the_defaults_are_gen_dgrls_final_settings() -> None:
    d = {name: OFFLINE_AGENTS.get(name).defaults for name in ("bcq", "cql", "iql", "dt")}
    assert (d["bcq"]["batch_size"], d["bcq"]["threshold"], d["bcq"]["target_update_freq"]) == (512, 0.5, 1000)
    assert (d["cql"]["batch_size"], d["cql"]["alpha"], d["cql"]["target_update_freq"]) == (256, 4.0, 1000)
    assert (
        d["iql"]["batch_size"],
        d["iql"]["expectile"],
        d["iql"]["beta"],
        d["iql"]["target_update_freq"],
    ) == (
        512,
        0.8,
        3.0,
        100,
    )
    assert (d["dt"]["batch_size"], d["dt"]["context_length"], d["dt"]["return_multiplier"]) == (512, 10, 5.0)
    assert {v["lr"] for v in d.values()} == {5e-4} and all(v.get("gamma", 0.99) == 0.99 for v in d.values())


@pytest.mark.parametrize("name", ["bcq", "cql", "iql", "dt"])
def test_weights_follow_the_seed_and_leave_the_global_rng_alone(name: str) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = _agent(name, seed=5), _agent(name, seed=5), _agent(name, seed=6)
    assert torch.equal(torch.get_rng_state(), before)

    def weights(agent) -> torch.Tensor:
        return torch.cat([p.flatten() for net in agent.networks.values() for p in net.parameters()])

    assert torch.equal(weights(a), weights(b)) and not torch.equal(weights(a), weights(c))


@pytest.mark.parametrize("name", ["bcq", "cql", "iql", "dt"])
def test_a_state_dict_round_trip_gives_the_same_next_update(name: str) -> None:
    agent = _agent(name, seed=1)
    for seed in range(3):
        agent.update(_batch(agent, seed))
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    obs = _batch(agent, 9)["obs"]
    obs = obs[:, 0] if agent.needs_sequences else obs
    batch = _batch(agent, 7)
    expected_stats = agent.update(batch)
    expected_actions = agent.predict(obs.numpy())[0]
    resumed = _agent(name, seed=42)  # another seed: everything must come from the checkpoint
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.update(batch) == expected_stats
    assert (resumed.predict(obs.numpy())[0] == expected_actions).all()
    for key, net in agent.networks.items():
        assert all(
            torch.equal(p, q)
            for p, q in zip(net.state_dict().values(), resumed.networks[key].state_dict().values())
        )
    assert resumed.step == agent.step == 4


def test_a_checkpoint_of_another_agent_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint is of offline agent 'cql'; valid: 'bcq'"):
        _agent("bcq").load_state_dict(_agent("cql").state_dict())


@pytest.mark.parametrize("shape", [(12, 12, 3), (3, 12, 12)])
def test_images_are_scaled_to_one_and_fed_channel_first_to_the_impala_cnn(shape: tuple[int, ...]) -> None:
    from heldout.agents.networks import ImpalaCNN

    space = gym.spaces.Box(0, 255, shape, np.uint8)
    encoder = make_encoder(space)
    assert isinstance(encoder.trunk, ImpalaCNN)
    obs = torch.randint(0, 256, (2, *shape), dtype=torch.uint8)
    chw = obs.permute(0, 3, 1, 2) if shape[-1] == 3 else obs
    assert torch.allclose(encoder(obs), encoder.trunk(chw.float() / 255.0))
    agent = _agent("cql", space=space)
    assert agent.update(random_images(space, 8))["loss"] > 0


def random_images(space: gym.spaces.Box, n: int) -> dict[str, torch.Tensor]:
    batch = random_transitions(gym.spaces.Box(0, 1, space.shape, np.float32), 3, n)
    batch["obs"] = (batch["obs"] * 255).to(torch.uint8)
    batch["next_obs"] = (batch["next_obs"] * 255).to(torch.uint8)
    return batch


def test_vectors_get_sb3s_default_mlp_unscaled() -> None:
    space = gym.spaces.Box(0, 10, (7, 7, 3), np.uint8)  # MiniGrid: uint8 but not pixels
    encoder = make_encoder(space)
    linears = [m for m in encoder.trunk.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(147, 64), (64, 64)]
    obs = torch.full((1, 7, 7, 3), 10, dtype=torch.uint8)
    assert torch.allclose(encoder(obs), encoder.trunk(obs.float()))  # not divided by 255
