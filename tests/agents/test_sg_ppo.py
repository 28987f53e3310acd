"""SG-PPO: consistency and attribution-prediction losses (ALGORITHMS.md 3.4), training, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_env import small_agent

from heldout.agents.sg_ppo import SGPPO, batch_fill


class _Batch:
    def __init__(self, observations: torch.Tensor, actions: torch.Tensor) -> None:
        self.observations = observations
        self.actions = actions


def _outputs(model: SGPPO, n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = torch.as_tensor(rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8))
    actions = torch.as_tensor(rng.integers(0, 15, n))
    dist, values, features = model.forward_policy(obs.float())
    outputs = {
        "obs": obs.float(),
        "actions": actions,
        "values": values.flatten(),
        "log_prob": dist.log_prob(actions),
        "distribution": dist,
        "features": features,
    }
    return _Batch(obs, actions.float()[:, None]), outputs


@pytest.mark.parametrize("target", ["value", "log_prob"])
def test_consistency_loss_is_zero_when_the_mask_keeps_everything(target):
    model = small_agent(SGPPO, quantile=0.0, attribution_coef=0.0, saliency_target=target)
    batch, outputs = _outputs(model)
    loss, logs = model.auxiliary_loss(batch, outputs)
    assert float(logs["sg_mask_share"]) == 1.0
    assert loss.item() == 0.0
    assert float(logs["sg_value_consistency"]) == 0.0 and float(logs["sg_policy_consistency"]) == 0.0


def test_losses_with_the_reference_quantile_keep_five_percent_and_train_both_sides():
    model = small_agent(SGPPO)  # rho 0.95, lambda_V = lambda_pi = 0.5, lambda_SL = 1
    batch, outputs = _outputs(model)
    loss, logs = model.auxiliary_loss(batch, outputs)
    assert float(logs["sg_mask_share"]) == pytest.approx(0.05, abs=0.002)
    assert float(logs["sg_value_consistency"]) > 0 and float(logs["sg_policy_consistency"]) > 0
    # the BCE of a fresh decoder is near log 2
    assert 0.3 < float(logs["sg_attribution_loss"]) < 1.5
    expected = (
        0.5 * logs["sg_value_consistency"] + 0.5 * logs["sg_policy_consistency"] + logs["sg_attribution_loss"]
    )
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)
    loss.backward()
    # gradients reach the trunk, both heads (through the clean and the masked pass) and the decoder
    assert model.policy.value_net.weight.grad.abs().sum() > 0
    assert model.policy.action_net.weight.grad.abs().sum() > 0
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.features_extractor.parameters()
    )
    assert all(p.grad is not None for p in model.attribution_decoder.parameters())
    before = [p.detach().clone() for p in model.attribution_decoder.parameters()]
    model.after_update()  # the decoder's own Adam step
    after = list(model.attribution_decoder.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after))
    assert all(p.grad is None for p in after)


def test_the_masked_observation_keeps_salient_pixels_and_fills_the_rest_with_one_value():
    model = small_agent(SGPPO)
    batch, _ = _outputs(model, n=4)
    obs = batch.observations.float()
    _, mask = model.saliency_mask(obs, batch.actions)
    assert torch.equal(mask[:, 0], mask[:, 1]) and torch.equal(mask[:, 0], mask[:, 2])
    gen = torch.Generator().manual_seed(0)
    u = batch_fill(obs, "batch", gen)
    assert u.ndim == 0 and obs.min() <= u <= obs.max()
    per_sample = batch_fill(obs, "sample", gen)
    assert per_sample.shape == (4, 1, 1, 1)


def test_sg_ppo_trains_saves_and_loads_its_decoder(tmp_path):
    model = small_agent(SGPPO)
    model.learn(32)
    assert model.logger.name_to_value["train/sg_mask_share"] == pytest.approx(0.05, abs=0.002)
    model.save(tmp_path / "sg.zip")
    loaded = SGPPO.load(tmp_path / "sg.zip", device="cpu")
    for p, q in zip(model.attribution_decoder.parameters(), loaded.attribution_decoder.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert loaded.quantile == 0.95 and loaded.saliency_target == "value"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"saliency_target": "q"}, "valid: value, log_prob"),
        ({"attribution_method": "gbp"}, "valid: gradient, guided_backprop"),
        ({"quantile": 1.0}, "quantile must be in"),
        ({"fill": "zero"}, "valid: batch, sample"),
        ({"value_consistency_coef": -1}, "value_consistency_coef must be >= 0"),
    ],
)
def test_bad_arguments_name_the_value_and_the_valid_ones(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_agent(SGPPO, **kwargs)
