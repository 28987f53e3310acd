"""heldout PPO end to end on a tiny image env: hooks, logging, save/load, defaults, head init."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_env import TinyImageEnv, small_agent

from heldout.agents import AGENTS
from heldout.agents.networks import ImpalaCNN
from heldout.agents.ppo import PPO


def _small(cls=PPO, **kwargs) -> PPO:
    return small_agent(cls, **kwargs)


class CountingPPO(PPO):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_augment = 0
        self.n_aux = 0
        self.n_after = 0
        self.n_before = 0
        self.seen_keys: set[str] = set()

    def augment_batch(self, obs):
        self.n_augment += 1
        assert obs.dtype == torch.uint8 and obs.shape[1:] == (3, 64, 64)
        return 255 - obs  # an invertible "augmentation" in the same pixel scale

    def auxiliary_loss(self, batch, outputs):
        self.n_aux += 1
        self.seen_keys |= set(outputs)
        # The forward pass used the augmented observations.
        assert torch.equal(outputs["obs"], 255 - batch.observations)
        assert outputs["features"].shape == (len(batch.actions), 256)
        loss = 1e-3 * outputs["values"].pow(2).mean()
        return loss, {"aux_value_l2": loss.detach(), "aux_constant": 2.0}

    def before_update(self):
        # The rollout is complete (returns computed) and no minibatch has run yet.
        assert self.n_aux == 2 * self.n_before
        assert self.rollout_buffer.full
        self.n_before += 1

    def after_update(self):
        self.n_after += 1


def test_registry_has_ppo():
    assert AGENTS.get("ppo") is PPO
    assert "ppo" in AGENTS.names()
    with pytest.raises(KeyError, match="did you mean 'ppo'"):
        AGENTS.get("ppp")


def test_default_hyperparameters_are_the_procgen_reference():
    model = PPO(device="cpu", _init_setup_model=False)  # no env: hyper-parameters only
    assert model.n_steps == 256
    assert model.batch_size == 2048
    assert model.n_epochs == 3
    assert model.learning_rate == 5e-4
    assert model.gamma == 0.999
    assert model.gae_lambda == 0.95
    assert model.clip_range == 0.2
    assert model.clip_range_vf == 0.2
    assert model.ent_coef == 0.01
    assert model.vf_coef == 0.5
    assert model.max_grad_norm == 0.5
    assert model.normalize_advantage is True
    kwargs = model.policy_kwargs
    assert kwargs["features_extractor_class"] is ImpalaCNN
    assert kwargs["features_extractor_kwargs"] == {"features_dim": 256}
    assert kwargs["net_arch"] == []
    assert kwargs["ortho_init"] is False


def test_built_policy_matches_reference_network_and_optimizer():
    model = _small()
    assert isinstance(model.policy.features_extractor, ImpalaCNN)
    assert sum(p.numel() for p in model.policy.parameters()) == 626_256
    assert model.policy.optimizer.defaults["eps"] == 1e-5
    assert model.policy.optimizer.defaults["lr"] == 5e-4


def test_user_policy_kwargs_override_defaults():
    model = _small(policy_kwargs={"features_extractor_kwargs": {"features_dim": 256, "relu_skip": True}})
    assert model.policy.features_extractor.relu_skip is True
    assert model.policy_kwargs["net_arch"] == []


def test_head_initialisation():
    model = _small()
    action_w = model.policy.action_net.weight.detach()
    value_w = model.policy.value_net.weight.detach()
    # Orthogonal with gain g: rows of (15, 256) orthonormal times g -> Frobenius norm g * sqrt(15).
    assert action_w.norm().item() == pytest.approx(0.01 * 15**0.5, rel=1e-4)
    assert value_w.norm().item() == pytest.approx(1.0, rel=1e-4)
    assert action_w.abs().max().item() < 0.01
    assert torch.count_nonzero(model.policy.action_net.bias) == 0
    assert torch.count_nonzero(model.policy.value_net.bias) == 0
    torch.testing.assert_close(action_w @ action_w.T, 1e-4 * torch.eye(15), atol=1e-7, rtol=0)
    # The trunk keeps PyTorch's default init (ortho_init=False): U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    # which SB3's orthogonal gain-sqrt(2) init would exceed.
    fc = model.policy.features_extractor.linear.weight.detach()
    assert fc.abs().max().item() <= 1 / 2048**0.5


def test_evaluate_actions_matches_sb3():
    model = _small()
    obs = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    actions = torch.tensor([0, 3, 14, 7])
    v, lp, ent, features, distribution = model._evaluate_actions(obs, actions)
    v_ref, lp_ref, ent_ref = model.policy.evaluate_actions(obs, actions)
    torch.testing.assert_close(v, v_ref)
    torch.testing.assert_close(lp, lp_ref)
    torch.testing.assert_close(ent, ent_ref)
    assert features.shape == (4, 256)
    torch.testing.assert_close(distribution.log_prob(actions), lp_ref)


def test_learn_calls_hooks_and_logs():
    model = _small(CountingPPO)
    model.learn(32)
    # 32 steps with 2 envs x 8 steps = 2 rollouts of 16; 16 / 8 = 2 minibatches, 1 epoch.
    assert model.n_after == 2
    assert model.n_before == 2
    assert model.n_augment == 4
    assert model.n_aux == 4
    assert {"obs", "actions", "values", "log_prob", "entropy", "features", "distribution"} <= model.seen_keys
    logged = dict(model.logger.name_to_value)
    for key in (
        "train/entropy_loss",
        "train/policy_gradient_loss",
        "train/value_loss",
        "train/approx_kl",
        "train/clip_fraction",
        "train/loss",
        "train/explained_variance",
        "train/clip_range",
        "train/clip_range_vf",
        "train/n_updates",
        "train/aux_value_l2",
        "train/aux_constant",
    ):
        assert key in logged, key
    assert logged["train/aux_constant"] == 2.0
    assert logged["train/n_updates"] == 2
    assert np.isfinite(logged["train/loss"])


def test_learn_changes_parameters_and_target_kl_early_stop():
    model = _small(n_epochs=2, learning_rate=0.05, target_kl=1e-4)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(16)
    after = list(model.policy.parameters())
    # The first minibatch's ratio is 1 (kl 0) so one step happens; after it the kl exceeds the
    # threshold and training stops in the first epoch.
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    assert model._n_updates == 1


def test_save_load_round_trip(tmp_path):
    model = _small()
    model.learn(16)
    obs = np.stack([TinyImageEnv.observation_space.sample() for _ in range(6)])
    obs = np.transpose(obs, (0, 3, 1, 2))  # channel-first, as after SB3's VecTransposeImage
    actions, _ = model.predict(obs, deterministic=True)
    path = tmp_path / "ppo.zip"
    model.save(path)

    loaded = PPO.load(path, device="cpu")
    assert type(loaded) is PPO
    assert loaded.clip_range_vf(1.0) == 0.2
    assert loaded.policy_kwargs["features_extractor_class"] is ImpalaCNN
    loaded_actions, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, loaded_actions)
    t_obs = torch.as_tensor(obs)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.policy.predict_values(t_obs), model.policy.predict_values(t_obs), rtol=0, atol=0
        )
        logits = model.policy.get_distribution(t_obs).distribution.logits
        loaded_logits = loaded.policy.get_distribution(t_obs).distribution.logits
        torch.testing.assert_close(loaded_logits, logits, rtol=0, atol=0)
    # Loading must not re-initialise the heads over the saved weights.
    for (name, p), q in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values()):
        assert torch.equal(p, q), name
