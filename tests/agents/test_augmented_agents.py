"""RAD, DrAC and UCB-DrAC: the hooks they override, their regularisers and their bandit.

Every registered agent (these included) trains, saves and loads in test_registry_agents.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.distributions import CategoricalDistribution
from tiny_env import small_agent

from heldout.agents import RAD, DrAC, UCBDrAC
from heldout.agents.augment import UCB_ARMS
from heldout.agents.ppo import PPO
from heldout.agents.ucb_drac import UCBBandit


def _obs(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------
# DrAC
# ------------------------------------------------------------------------------------------------


def test_drac_with_zero_coefficient_makes_the_ppo_update():
    # (Construct and train one after the other: SB3 seeds its global RNGs at construction.)
    ppo = small_agent(PPO)
    ppo.learn(32)
    drac = small_agent(DrAC, aug_coef=0.0)
    drac.learn(32)
    for p, q in zip(ppo.policy.parameters(), drac.policy.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # ... and with the reference coefficient it does not.
    drac_on = small_agent(DrAC, aug_coef=0.1)
    drac_on.learn(32)
    assert any(not torch.equal(p, q) for p, q in zip(ppo.policy.parameters(), drac_on.policy.parameters()))
    assert drac.logger.name_to_value["train/drac_value_reg"] >= 0


def _clean_outputs(model, obs: torch.Tensor):
    distribution, values, features = model.forward_policy(obs)
    return {"values": values.flatten(), "distribution": distribution, "features": features}


class _Batch:
    def __init__(self, observations):
        self.observations = observations


@pytest.mark.parametrize("regularizer", ["sample", "kl"])
def test_drac_regularisers_send_no_gradient_into_the_clean_branch(regularizer):
    model = small_agent(DrAC, policy_regularizer=regularizer)
    obs = torch.as_tensor(_obs(8))
    outputs = _clean_outputs(model, obs)
    clean_logits = outputs["distribution"].distribution.logits
    loss, logs = model.auxiliary_loss(_Batch(obs), outputs)
    grads = torch.autograd.grad(loss, [outputs["values"], clean_logits], allow_unused=True)
    assert all(g is None for g in grads), "a regulariser reached V(s) or pi(.|s)"
    assert outputs["distribution"].distribution.logits is clean_logits  # not overwritten by f(s)
    # ... while it does train the network through f(s).
    trunk = model.policy.features_extractor.linear.weight
    (g_trunk,) = torch.autograd.grad(loss, [trunk])
    assert g_trunk.abs().sum() > 0
    assert set(logs) == {"drac_policy_reg", "drac_value_reg"}


def test_drac_exact_kl_is_zero_for_identity_and_positive_otherwise():
    obs = torch.as_tensor(_obs(8))
    same = small_agent(DrAC, augmentation="identity", policy_regularizer="kl")
    _, logs = same.auxiliary_loss(_Batch(obs), _clean_outputs(same, obs))
    assert abs(float(logs["drac_policy_reg"])) < 1e-6
    assert abs(float(logs["drac_value_reg"])) < 1e-10
    shifted = small_agent(DrAC, augmentation="random-conv", policy_regularizer="kl")
    # Heads at gain 0.01 make pi nearly uniform; sharpen it so the KL is clearly non-zero.
    with torch.no_grad():
        shifted.policy.action_net.weight.mul_(100)
    _, logs = shifted.auxiliary_loss(_Batch(obs), _clean_outputs(shifted, obs))
    assert float(logs["drac_policy_reg"]) > 1e-4
    assert float(logs["drac_value_reg"]) > 0


def test_drac_sampled_policy_regulariser_estimates_cross_entropy():
    # -mean log pi(a'|f(s)) with a' ~ pi(.|s) estimates H(pi_s, pi_f(s)) = KL + H(pi_s).
    model = small_agent(DrAC, augmentation="identity")
    logits = torch.randn(20_000, 15, generator=torch.Generator().manual_seed(0))
    clean = CategoricalDistribution(15).proba_distribution(logits)
    estimate = model.policy_regularization(clean, clean).item()
    entropy = clean.entropy().mean().item()
    assert estimate == pytest.approx(entropy, abs=0.03)


def test_drac_refuses_bad_arguments():
    with pytest.raises(KeyError, match="did you mean 'crop'"):
        small_agent(DrAC, augmentation="crap")
    with pytest.raises(ValueError, match="policy_regularizer 'exact'"):
        small_agent(DrAC, policy_regularizer="exact")
    with pytest.raises(ValueError, match="aug_coef"):
        small_agent(DrAC, aug_coef=-1.0)


# ------------------------------------------------------------------------------------------------
# RAD
# ------------------------------------------------------------------------------------------------


class RecordingRAD(RAD):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.acted_on: list[np.ndarray] = []
        self.trained_on: list[torch.Tensor] = []

    def augment_rollout(self, obs, env_index=None):
        out = super().augment_rollout(obs, env_index)
        if env_index is None:
            self.acted_on.append(out.copy())
        return out

    def augment_batch(self, obs):
        self.trained_on.append(obs.clone())
        return obs


def test_rad_stores_and_trains_on_the_observations_it_acted_on():
    model = small_agent(RecordingRAD, augmentation="translate", n_epochs=1)
    model.learn(16)  # one rollout of 2 envs x 8 steps
    acted = np.stack(model.acted_on[:8])  # (8 steps, 2 envs, C, H, W); the 9th bootstraps
    stored = np.concatenate([t.numpy() for t in model.trained_on])
    assert sorted(map(bytes, stored.reshape(16, -1))) == sorted(map(bytes, acted.reshape(16, -1)))
    # Translate blackens a border on (almost) every frame; raw frames are uniform noise.
    black_rows = (acted.reshape(16, 3, 64, 64).max(axis=(1, 3)) == 0).sum()
    assert black_rows > 0


def test_rad_holds_one_parameter_set_per_env_for_a_rollout():
    model = small_agent(RAD, augmentation="translate")
    ones = np.full((2, 3, 64, 64), 255, dtype=np.uint8)
    a = model.augment_rollout(ones)
    b = model.augment_rollout(ones)
    np.testing.assert_array_equal(a, b)  # same rollout: same shift per env
    np.testing.assert_array_equal(model.augment_rollout(ones[1], env_index=1), a[1])
    model.after_update()  # a new rollout draws new parameters
    assert not np.array_equal(model.augment_rollout(ones), a)
    assert a.dtype == np.uint8


def test_rad_does_not_augment_predict():
    model = small_agent(RAD)
    obs = _obs()
    with torch.no_grad():
        expected = model.policy.get_distribution(torch.as_tensor(obs)).distribution.logits.argmax(-1)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], expected.numpy())


# ------------------------------------------------------------------------------------------------
# UCB-DrAC
# ------------------------------------------------------------------------------------------------


def test_ucb_first_pick_is_the_first_arm_and_ties_go_low():
    bandit = UCBBandit(UCB_ARMS, c=0.1, window=10)
    assert bandit.select() == 0
    bandit.update(0, -1.0)  # a bad first arm: the unplayed arms (score c*sqrt(ln 2)) now win
    assert bandit.select() == 1
    assert bandit.total == 2 and bandit.counts[0] == 2 and bandit.values[0] == -1.0


def test_ucb_scores_match_the_formula():
    bandit = UCBBandit(["a", "b", "c"], c=0.5, window=3)
    for arm, reward in ((0, 1.0), (1, 2.0), (1, 0.0), (2, 0.5)):
        bandit.update(arm, reward)
    n = np.array([2, 3, 2])
    q = np.array([1.0, 1.0, 0.5])
    expected = q + 0.5 * np.sqrt(np.log(5) / n)
    np.testing.assert_allclose(bandit.scores(), expected)
    assert bandit.select() == 0


def test_ucb_window_keeps_the_last_rewards_only():
    bandit = UCBBandit(["a", "b"], window=3)
    for reward in (10.0, 1.0, 2.0, 3.0):
        bandit.update(0, reward)
    assert list(bandit.rewards[0]) == [1.0, 2.0, 3.0]
    assert bandit.values[0] == pytest.approx(2.0)
    assert bandit.counts[0] == 5  # counts are not windowed


@pytest.mark.parametrize("explore_first", [False, True])
def test_ucb_converges_to_the_best_arm(explore_first):
    rng = np.random.default_rng(0)
    means = np.array([-0.5, 0.0, 0.2, -0.2, 0.6, 0.1, -0.1, 0.3])
    bandit = UCBBandit(UCB_ARMS, c=0.1, window=10, explore_first=explore_first)
    picks = []
    for _ in range(600):
        arm = bandit.select()
        picks.append(arm)
        bandit.update(arm, means[arm] + 0.1 * rng.standard_normal())
    last = np.bincount(picks[-200:], minlength=len(means))
    assert last.argmax() == 4 and last[4] > 150


def test_ucb_faithful_rule_locks_on_a_good_first_arm_unless_exploring_first():
    # Pitfall (i) of ALGORITHMS.md 2.4: with returns of order 1 the first arm is never left.
    means = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0])
    for explore_first, expected in ((False, 0), (True, 7)):
        bandit = UCBBandit(UCB_ARMS, c=0.1, window=10, explore_first=explore_first)
        for _ in range(200):
            arm = bandit.select()
            bandit.update(arm, means[arm])
        assert bandit.select() == expected


def test_ucb_drac_credits_the_previous_arm_with_the_rollout_return_and_logs():
    model = small_agent(UCBDrAC)
    model.learn(16)
    assert model.current_arm == 0 and model.bandit.total == 1
    model.learn(16, reset_num_timesteps=False)
    returns = model.rollout_buffer.returns.mean()
    assert model.bandit.total == 2
    assert model.bandit.values[0] == pytest.approx(returns)
    logged = model.logger.name_to_value
    assert logged["ucb/count/crop"] == 2 and logged["ucb/count/flip"] == 1
    assert logged["ucb/value/crop"] == pytest.approx(returns)
    assert model.current_augmentation() is model.arm_augmentations[model.current_arm]


def test_ucb_drac_credits_only_the_returns_a_robust_plr_update_trains_on(monkeypatch):
    from types import SimpleNamespace

    import heldout.agents.ucb_drac as ucb_module

    model = small_agent(UCBDrAC)
    model.learn(16)
    assert model.current_arm == 0 and model.bandit.total == 1
    returns = np.arange(12, dtype=np.float32).reshape(4, 3)  # (steps, envs), before get() flattens
    mask = np.zeros((4, 3), dtype=bool)
    mask[[0, 3], 1] = True  # returns 1 and 10 train; the rest are new-level episodes
    model.rollout_buffer.returns = returns
    monkeypatch.setattr(ucb_module, "scoring_sampler", lambda env: SimpleNamespace(train_mask=mask))
    model.before_update()
    assert model.bandit.values[0] == pytest.approx(5.5)
