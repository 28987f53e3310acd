"""SGFD: random Fourier features, weighted covariance, saliency matrix, sample weights, the agent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_env import small_agent

from heldout.agents.decorrelation import (
    LevelClassifier,
    SampleWeightLearner,
    decorrelation_loss,
    random_fourier_features,
    saliency_matrix,
    weighted_covariance,
)
from heldout.agents.level_buffer import LevelRolloutBuffer
from heldout.agents.ppo import ppo_loss
from heldout.agents.sgfd import SGFD


def test_random_fourier_features_shape_and_range():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=gen)
    u = random_fourier_features(z, num_f=5, generator=gen)
    assert u.shape == (6, 4, 10)
    # m in [0, pi/2] => cos and sin in [0, 1], scaled by sqrt(2/K)
    scale = np.sqrt(2 / 5)
    assert (u >= -1e-7).all() and (u <= scale + 1e-6).all()
    # min-max over the feature axis: per sample and k, one feature at m = 0 (cos = 1)
    cos = u[..., :5] / scale
    torch.testing.assert_close(cos.max(dim=1).values, torch.ones(6, 5))


def test_weighted_covariance_equals_numpy():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(50, 4))
    w = rng.random(50)
    w /= w.sum()
    ours = weighted_covariance(torch.as_tensor(u), torch.as_tensor(w)).numpy()
    np.testing.assert_allclose(ours, np.cov(u.T, aweights=w, bias=True), rtol=1e-10, atol=1e-12)


def test_decorrelation_loss_counts_off_diagonal_pairs_weighted_by_saliency():
    u = torch.tensor([[1.0, 2.0], [3.0, 0.0]])[:, :, None]  # n=2, d=2, one slice
    w = torch.tensor([0.5, 0.5])
    # cov: var0 = 1, var1 = 1, cov01 = -1
    assert decorrelation_loss(u, w).item() == pytest.approx(2.0)  # (-1)^2 twice, diagonal excluded
    s = torch.tensor([[9.0, 3.0], [3.0, 9.0]])
    assert decorrelation_loss(u, w, s).item() == pytest.approx(6.0)


def _correlated(n: int = 128, seed: int = 0) -> torch.Tensor:
    """Six independent features, except that feature 1 copies feature 0 in the first half."""
    z = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    z[: n // 2, 1] = z[: n // 2, 0]
    return z


@pytest.mark.parametrize("seed", [0, 1])
def test_weights_sum_to_one_and_decorrelate_correlated_features(seed):
    z = _correlated(seed=seed)
    learner = SampleWeightLearner(num_f=5, epochs=20, generator=torch.Generator().manual_seed(1))
    w = learner.learn(z)
    assert w.shape == (128,) and w.sum().item() == pytest.approx(1.0) and (w >= 0).all()
    assert w[:64].sum() < w[64:].sum()  # the correlated half is down-weighted
    # L_B (averaged over fixed draws of the random features) falls from uniform to learned weights
    uniform = torch.full((128,), 1 / 128)
    draws = [random_fourier_features(z, 5, torch.Generator().manual_seed(k)) for k in range(10)]
    learned = sum(decorrelation_loss(rff, w).item() for rff in draws)
    assert learned < 0.85 * sum(decorrelation_loss(rff, uniform).item() for rff in draws)
    # the memory holds the batch after the first call and is mixed 0.9 / 0.1 after the second
    assert torch.equal(learner.z_pre, z)
    learner.learn(z + 1.0)
    torch.testing.assert_close(learner.z_pre, z + 0.1)


def test_saliency_matrix_follows_the_features_the_classifier_uses():
    torch.manual_seed(0)
    clf = LevelClassifier(4, 3)
    with torch.no_grad():
        clf.net[0].weight[:, 1:] = 0.0  # the classifier reads feature 0 only
    z = torch.randn(16, 4)
    labels = torch.randint(0, 3, (16,))
    s_mat = saliency_matrix(clf, z, labels, scale=7.0)
    s = torch.sqrt(torch.diagonal(s_mat))
    assert s.sum().item() == pytest.approx(7.0)
    assert s[0] > s[1] and s[1] == pytest.approx(s[2].item()) and s[2] == pytest.approx(s[3].item())
    torch.testing.assert_close(s_mat, s_mat.T)


def test_policy_loss_sample_weights_weigh_the_policy_term_only():
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(8, generator=gen) for _ in range(7)]
    kw = {"clip_range": 0.2, "clip_range_vf": 0.2, "ent_coef": 0.01, "vf_coef": 0.5}
    plain, plain_stats = ppo_loss(*args, **kw)
    ones, _ = ppo_loss(*args, **kw, sample_weights=torch.ones(8))
    torch.testing.assert_close(plain, ones)
    # all weight on sample 0: L_pg = mean(w * pg) = pg_0 (with the minibatch-normalised advantages)
    w = torch.zeros(8)
    w[0] = 8.0
    _, stats = ppo_loss(*args, **kw, sample_weights=w)
    log_prob, old_log_prob, advantages = args[0], args[1], args[2]
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = torch.exp(log_prob - old_log_prob)
    pg0 = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))[0]
    torch.testing.assert_close(stats["policy_gradient_loss"], pg0)
    torch.testing.assert_close(stats["value_loss"], plain_stats["value_loss"])
    with pytest.raises(ValueError, match="sample_weights"):
        ppo_loss(*args, **kw, sample_weights=torch.ones(8, 1))


def test_sgfd_trains_records_levels_and_reweights():
    model = small_agent(SGFD, num_classes=4, weight_epochs=3)
    assert isinstance(model.rollout_buffer, LevelRolloutBuffer)
    model.learn(32)
    logs = model.logger.name_to_value
    assert 0.0 <= logs["train/sgfd_classifier_accuracy"] <= 1.0
    assert logs["train/sgfd_max_weight"] > 1.0  # not uniform


def test_level_buffer_keeps_each_transition_level():
    from gymnasium import spaces

    buf = LevelRolloutBuffer(3, spaces.Box(0, 1, (2,)), spaces.Discrete(2), n_envs=2)
    levels = iter([[10, 20], [11, 20], [12, 21]])
    buf.level_source = lambda: next(levels)
    for _ in range(3):
        buf.add(np.zeros((2, 2)), np.zeros((2, 1)), np.zeros(2), np.zeros(2), torch.zeros(2), torch.zeros(2))
    buf.compute_returns_and_advantage(torch.zeros(2), np.zeros(2))
    (batch,) = list(buf.get(batch_size=6))
    assert sorted(batch.levels.tolist()) == [10, 11, 12, 20, 20, 21]


def test_sgfd_records_procgen_levels_in_its_buffer():
    from stable_baselines3.common.vec_env import VecNormalize

    import heldout.agents  # noqa: F401  (registers ProcgenVecEnv as an SB3 VecEnv)
    from heldout.envs.procgen import ProcgenVecEnv

    env = VecNormalize(ProcgenVecEnv("starpilot", num_envs=2, levels=range(10, 13), seed=0), norm_obs=False)
    model = SGFD("CnnPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu", weight_epochs=2)
    model.learn(16)
    levels = model.rollout_buffer.levels
    assert levels.shape == (8, 2) and set(np.unique(levels)) <= {10, 11, 12}
    env.close()
