"""IMPALA-CNN: parameter count of the reference actor-critic, shapes, and the relu_skip variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from torch import nn

from heldout.agents.networks import ImpalaCNN, ResidualBlock

OBS_SPACE = spaces.Box(0, 255, (3, 64, 64), np.uint8)


def _policy() -> ActorCriticCnnPolicy:
    return ActorCriticCnnPolicy(
        OBS_SPACE,
        spaces.Discrete(15),
        lr_schedule=lambda _: 5e-4,
        net_arch=[],
        ortho_init=False,
        features_extractor_class=ImpalaCNN,
        features_extractor_kwargs={"features_dim": 256},
    )


def test_actor_critic_has_the_reference_parameter_count():
    policy = _policy()
    assert sum(p.numel() for p in policy.parameters()) == 626_256
    assert policy.features_extractor.n_flatten == 2048
    assert sum(p.numel() for p in policy.action_net.parameters()) == 256 * 15 + 15
    assert sum(p.numel() for p in policy.value_net.parameters()) == 256 + 1


def test_output_shape_and_non_negative():
    net = ImpalaCNN(OBS_SPACE)
    out = net(torch.rand(5, 3, 64, 64))
    assert out.shape == (5, 256)
    assert net.features_dim == 256
    assert (out >= 0).all()  # ends with a ReLU


@pytest.mark.parametrize(
    "shape, n_flatten", [((3, 64, 64), 2048), ((1, 84, 84), 32 * 11 * 11), ((4, 9, 7), 32 * 2 * 1)]
)
def test_flatten_size_follows_the_observation_space(shape, n_flatten):
    net = ImpalaCNN(spaces.Box(0, 255, shape, np.uint8), features_dim=32)
    assert net.n_flatten == n_flatten
    assert net(torch.rand(2, *shape)).shape == (2, 32)


def test_relus_are_separate_non_inplace_modules():
    net = ImpalaCNN(OBS_SPACE)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    # 3 sequences x 2 blocks x 2 relus, plus the one before flatten and the one after the linear.
    assert len(relus) == 14
    assert len({id(m) for m in relus}) == 14
    assert not any(m.inplace for m in relus)


def test_relu_skip_variant_adds_relu_of_the_input():
    torch.manual_seed(0)
    block = ResidualBlock(4)
    quirk = ResidualBlock(4, relu_skip=True)
    quirk.load_state_dict(block.state_dict())
    x = torch.randn(2, 4, 5, 5)
    # Same weights: the two outputs differ exactly by relu(x) - x on the skip path.
    torch.testing.assert_close(quirk(x) - block(x), torch.relu(x) - x)


def test_relu_skip_changes_the_network_output_for_the_same_weights():
    torch.manual_seed(0)
    net = ImpalaCNN(OBS_SPACE)
    quirk = ImpalaCNN(OBS_SPACE, relu_skip=True)
    quirk.load_state_dict(net.state_dict())
    x = torch.rand(3, 3, 64, 64)
    assert not torch.allclose(net(x), quirk(x))


def test_rejects_non_image_spaces():
    with pytest.raises(ValueError, match="channel-first"):
        ImpalaCNN(spaces.Box(0, 1, (10,), np.float32))
    with pytest.raises(TypeError, match="Box"):
        ImpalaCNN(spaces.Discrete(3))


def test_channels_last_layout_computes_the_same_function() -> None:
    space = spaces.Box(0.0, 1.0, (3, 64, 64), np.float32)
    torch.manual_seed(0)
    plain = ImpalaCNN(space, channels_last=False)
    fast = ImpalaCNN(space, channels_last=True)
    fast.load_state_dict(plain.state_dict())
    x = torch.rand(8, 3, 64, 64)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)


def test_stock_sb3_orthogonal_init_works_on_the_extractor() -> None:
    """SB3's ortho_init=True re-initialises every conv in place; the layout must not break it."""
    space = spaces.Box(0, 255, (3, 64, 64), np.uint8)
    policy = ActorCriticCnnPolicy(
        space,
        spaces.Discrete(15),
        lambda _: 5e-4,
        features_extractor_class=ImpalaCNN,
        net_arch=[],
        ortho_init=True,
    )
    assert policy.features_extractor.channels_last
