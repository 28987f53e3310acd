"""SGQN on DQN: consistency loss, masks, the attribution-prediction step (ALGORITHMS.md 3.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_env import small_agent

from heldout.agents.sgqn import SGQN


def _batch(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    obs = torch.as_tensor(rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8)).float()
    return obs, torch.as_tensor(rng.integers(0, 15, (n, 1)))


def test_consistency_loss_is_zero_when_the_mask_keeps_everything():
    model = small_agent(SGQN, quantile=0.0)
    obs, actions = _batch()
    mask = model.saliency_mask(obs, actions)
    assert mask.all()
    loss = model.consistency_loss(obs, actions, model.q_values(obs, actions), mask)
    assert loss.item() == 0.0


def test_reference_mask_keeps_ten_percent_and_consistency_is_positive():
    model = small_agent(SGQN)  # rho 0.9
    obs, actions = _batch()
    mask = model.saliency_mask(obs, actions)
    assert mask.float().mean().item() == pytest.approx(0.1, abs=0.002)
    current = model.q_values(obs, actions)
    loss = model.consistency_loss(obs, actions, current, mask)
    assert loss.item() > 0
    loss.backward()  # gradients through both Q(s, a) and Q(s~, a)
    assert model.q_net.q_net[0].weight.grad.abs().sum() > 0


def test_attribution_step_trains_decoder_and_encoder_not_the_q_head():
    model = small_agent(SGQN, consistency_coef=0.0)
    obs, actions = _batch()
    head = [p.detach().clone() for p in model.q_net.q_net.parameters()]
    encoder = [p.detach().clone() for p in model.q_net.features_extractor.parameters()]
    loss = model.attribution_loss(obs, actions, model.saliency_mask(obs, actions))
    assert 0.3 < loss.item() < 1.5  # BCE of a fresh decoder, near log 2
    model.aux_optimizer.zero_grad()
    loss.backward()
    model.aux_optimizer.step()
    assert all(torch.equal(b, a) for b, a in zip(head, model.q_net.q_net.parameters()))
    assert any(not torch.equal(b, a) for b, a in zip(encoder, model.q_net.features_extractor.parameters()))


def test_sgqn_trains_and_logs():
    model = small_agent(SGQN)
    model.learn(32)
    logs = model.logger.name_to_value
    assert logs["train/sgqn_mask_share"] == pytest.approx(0.1, abs=0.002)
    assert logs["train/sgqn_consistency"] >= 0 and "train/sgqn_attribution_loss" in logs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantile": -0.1}, "quantile must be in"),
        ({"attribution_method": "gbp"}, "valid: gradient, guided_backprop"),
        ({"aux_update_freq": -1}, "aux_update_freq"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_agent(SGQN, **kwargs)
