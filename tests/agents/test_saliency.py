"""Attribution maps and masks: known answers for gradients, guided backprop, quantile masks, focus."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from tiny_env import TinyImageEnv, small_agent
from torch import nn

from heldout.agents.ppo import PPO
from heldout.agents.saliency import (
    attribute,
    focus,
    guided_relus,
    masked_observation,
    pixel_saliency,
    quantile_mask,
    saliency_maps,
)

# y = w2 . relu(W1 x), W1 = [[1, 0], [0, 1], [1, 1]]
W1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def _relu_net(w2: list[float]) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(W1)
        net[2].weight.copy_(torch.tensor([w2]))
    return net


@pytest.mark.parametrize(
    "x, w2, gradient, guided",
    [
        # all units active, w2 = [1, -2, 1]: plain W1^T w2 = [2, -1]; guided drops the -2: W1^T [1, 0, 1] = [2, 1]
        ([1.0, 2.0], [1.0, -2.0, 1.0], [2.0, -1.0], [2.0, 1.0]),
        # w2 = [-1, -2, 1]: plain [0, -1]; guided W1^T [0, 0, 1] = [1, 1]
        ([1.0, 2.0], [-1.0, -2.0, 1.0], [0.0, -1.0], [1.0, 1.0]),
        # x = (1, -3): pre-activations [1, -3, -2], only unit 0 active: both W1^T [1, 0, 0] = [1, 0]
        ([1.0, -3.0], [1.0, -2.0, 1.0], [1.0, 0.0], [1.0, 0.0]),
    ],
)
def test_gradient_and_guided_backprop_match_hand_computed_values(x, w2, gradient, guided):
    net = _relu_net(w2)
    obs = torch.tensor([x])
    fn = lambda s: net(s).squeeze(1)  # noqa: E731
    np.testing.assert_allclose(attribute(fn, obs, "gradient").numpy(), [gradient])
    np.testing.assert_allclose(attribute(fn, obs, "guided_backprop", module=net).numpy(), [guided])
    # the hooks are gone afterwards: the plain gradient again
    np.testing.assert_allclose(attribute(fn, obs, "gradient").numpy(), [gradient])


def test_guided_backprop_differs_from_gradient_on_a_relu_cnn_and_leaves_param_grads_alone():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten()
    )
    head = nn.Linear(8 * 8 * 8, 1)
    model = nn.Sequential(net, head)
    obs = torch.rand(2, 3, 8, 8)
    fn = lambda s: model(s).squeeze(1)  # noqa: E731
    plain = attribute(fn, obs, "gradient")
    guided = attribute(fn, obs, "guided_backprop", module=model)
    assert plain.shape == guided.shape == obs.shape
    assert not torch.allclose(plain, guided)
    assert all(p.grad is None for p in model.parameters())


def test_gradient_of_a_linear_target_is_its_weights():
    w = torch.randn(3, 4, 4)
    obs = torch.rand(5, 3, 4, 4)
    attr = attribute(lambda s: (s * w).flatten(1).sum(1), obs, "gradient")
    torch.testing.assert_close(attr, w.expand_as(obs))


def test_guided_backprop_refuses_inplace_or_missing_relus():
    with pytest.raises(ValueError, match="in-place"):
        with guided_relus(nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True))):
            pass
    with pytest.raises(ValueError, match="no"):
        attribute(lambda s: s.sum(1), torch.rand(2, 3), "guided_backprop", module=nn.Linear(3, 1))
    with pytest.raises(ValueError, match="valid: gradient, guided_backprop"):
        attribute(lambda s: s.sum(1), torch.rand(2, 3), "guided")


@pytest.mark.parametrize("rho", [0.5, 0.9, 0.95, 0.98])
def test_quantile_mask_keeps_one_minus_rho_of_the_pixels_per_sample(rho):
    gen = torch.Generator().manual_seed(1)
    attr = torch.randn(4, 9, 64, 64, generator=gen)
    mask = quantile_mask(attr, rho, frame_channels=3)
    assert mask.dtype == torch.bool and mask.shape == attr.shape and not mask.requires_grad
    share = mask.float().mean(dim=(2, 3))  # (B, C)
    np.testing.assert_allclose(share.numpy(), 1 - rho, atol=1 / 4096 + 1e-6)
    # identical across the 3 channels of each stacked frame, different between frames
    frames = mask.reshape(4, 3, 3, 64, 64)
    assert torch.equal(frames[:, :, 0], frames[:, :, 1]) and torch.equal(frames[:, :, 0], frames[:, :, 2])
    assert not torch.equal(frames[:, 0, 0], frames[:, 1, 0])


def test_quantile_mask_keeps_the_most_salient_pixels_channel_max_of_abs():
    attr = torch.zeros(1, 3, 2, 2)
    attr[0, 1, 0, 1] = -5.0  # largest |A|, in channel 1
    attr[0, 0, 1, 0] = 2.0
    attr[0, 2, 1, 1] = 1.0
    sal = pixel_saliency(attr)
    torch.testing.assert_close(sal, torch.tensor([[[[0.0, 5.0], [2.0, 1.0]]]]))
    mask = quantile_mask(attr, 0.7)  # quantile_0.7 of [0, 1, 2, 5] = 2.3: keeps only the 5
    expected = torch.tensor([[False, True], [False, False]])
    for c in range(3):
        assert torch.equal(mask[0, c], expected)
    filled = masked_observation(torch.full((1, 3, 2, 2), 7.0), mask, 0.5)
    assert filled[0, 0, 0, 1] == 7.0 and filled[0, 0, 0, 0] == 0.5


def test_focus_is_the_share_of_mass_on_the_foreground():
    sal = np.array([[[1.0, 3.0], [0.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    fg = np.array([[[True, False], [False, True]], [[True, True], [True, True]]])
    out = focus(sal, fg)
    assert out[0] == pytest.approx(5 / 8) and np.isnan(out[1])


def test_saliency_maps_of_sb3_agents_on_channel_last_frames():
    obs = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    ppo = small_agent(PPO)
    for target in ("value", "log_prob"):
        for method in ("gradient", "guided_backprop"):
            maps = saliency_maps(ppo, obs, target=target, method=method)
            assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
            assert (maps >= 0).all() and maps.max() > 0
    guided = saliency_maps(ppo, obs, method="guided_backprop")
    plain = saliency_maps(ppo, obs, method="gradient")
    assert not np.allclose(guided, plain)
    dqn = DQN("CnnPolicy", TinyImageEnv(), buffer_size=100, learning_starts=0, device="cpu", seed=0)
    maps = saliency_maps(dqn, obs)  # default target: Q of the greedy action
    assert maps.shape == (3, 64, 64) and maps.max() > 0
    with pytest.raises(ValueError, match="needs an actor-critic"):
        saliency_maps(dqn, obs, target="value")


def test_saliency_of_a_qr_dqn_is_that_of_its_mean_quantile_q_value():
    from sb3_contrib import QRDQN

    from heldout.agents.saliency import observation_tensor, policy_target

    obs = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    model = QRDQN("CnnPolicy", TinyImageEnv(), buffer_size=100, device="cpu", seed=0)
    x = observation_tensor(model, obs)
    q = model.policy.quantile_net(x).mean(dim=1)
    torch.testing.assert_close(policy_target(model, "q")(x), q.max(dim=1).values)
    maps = saliency_maps(model, obs, method="gradient")
    assert maps.shape == (2, 64, 64) and maps.max() > 0
