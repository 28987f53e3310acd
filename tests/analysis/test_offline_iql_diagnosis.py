"""benchmarks/offline_iql_diagnosis.py, the measurements behind docs/offline.md's "Why IQL's three seeds
play the same episodes": each figure against an independent computation (numpy, scipy, a loop)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy.special import softmax
from scipy.stats import entropy

from heldout.agents.offline.iql import IQL
from heldout.protocol.dataset import open_dataset, write_synthetic
from tests.agents.offline.helpers import random_transitions

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "offline_iql_diagnosis.py"
SPACE = gym.spaces.Box(0.0, 1.0, (4,), np.float32)


def _script():
    spec = importlib.util.spec_from_file_location("offline_iql_diagnosis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_policy_that_ignores_the_frame_has_zero_kl_and_one_greedy_action() -> None:
    prior = np.log(np.array([0.1, 0.2, 0.6, 0.1]))
    logits = torch.as_tensor(np.tile(prior, (50, 1)))
    action = torch.as_tensor(np.random.default_rng(0).integers(0, 4, 50))
    marginal = np.array([0.25, 0.25, 0.25, 0.25])
    got = _script().policy_figures(logits, action, marginal)
    assert got["kl_to_mean_pi"] == pytest.approx(0.0, abs=1e-9)
    assert got["greedy_mode"] == 2 and got["greedy_mode_share"] == 1.0 and got["greedy_distinct"] == 1
    assert got["logit_std_across_frames"] == pytest.approx(0.0, abs=1e-9)
    assert got["entropy_mean"] == pytest.approx(entropy([0.1, 0.2, 0.6, 0.1]), abs=1e-4)
    assert got["nll"] == pytest.approx(float(-prior[action.numpy()].mean()), abs=1e-4)
    assert got["marginal_nll"] == pytest.approx(np.log(4), abs=1e-4)


def test_policy_figures_match_scipy_on_frame_dependent_logits() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, 5)) * 2
    action = rng.integers(0, 5, 200)
    marginal = np.bincount(action, minlength=5) / 200
    got = _script().policy_figures(torch.as_tensor(logits), torch.as_tensor(action), marginal)
    pi = softmax(logits, axis=1)
    mean_pi = pi.mean(axis=0)
    greedy = logits.argmax(axis=1)
    assert got["greedy_histogram"] == pytest.approx(np.bincount(greedy, minlength=5) / 200, abs=1e-4)
    assert got["greedy_mode_share"] == pytest.approx(np.bincount(greedy).max() / 200, abs=1e-4)
    assert got["entropy_mean"] == pytest.approx(np.mean([entropy(p) for p in pi]), abs=1e-4)
    assert got["kl_to_mean_pi"] == pytest.approx(np.mean([entropy(p, mean_pi) for p in pi]), abs=1e-5)
    assert got["kl_to_mean_pi"] > 0.1
    assert got["nll"] == pytest.approx(-np.mean(np.log(pi[np.arange(200), action])), abs=1e-4)
    assert got["marginal_nll"] == pytest.approx(-np.mean(np.log(marginal[action])), abs=1e-4)
    assert got["logit_std_across_frames"] == pytest.approx(logits.std(axis=0, ddof=1).mean(), abs=1e-5)
    assert got["logit_range_across_actions"] == pytest.approx(np.ptp(logits, axis=1).mean(), abs=1e-5)
    assert got["pi_mean"] == pytest.approx(mean_pi, abs=1e-4)


def test_iql_weights_match_a_loop_over_the_batch() -> None:
    agent = IQL(SPACE, gym.spaces.Discrete(3), seed=3, lr=5e-2, beta=10.0)
    for seed in range(5):  # a critic that has moved, so the weights spread and some reach the clip
        agent.update(random_transitions(SPACE, 3, 32, seed))
    batch = random_transitions(SPACE, 3, 64, seed=9)
    got = _script().iql_weights(agent, batch["obs"], batch["action"])
    nets, weights, us = agent.networks, [], []
    with torch.no_grad():
        for obs, a in zip(batch["obs"], batch["action"].tolist()):
            q = min(nets["q1_target"](obs[None])[0, a].item(), nets["q2_target"](obs[None])[0, a].item())
            us.append(q - nets["v"](obs[None])[0, 0].item())
            weights.append(min(np.exp(10.0 * us[-1]), 100.0))
    w = np.array(weights)
    assert got["u_min"] == pytest.approx(min(us), abs=1e-4) and got["u_max"] == pytest.approx(
        max(us), abs=1e-4
    )
    assert got["weight_mean"] == pytest.approx(w.mean(), rel=1e-4)
    assert got["weight_max"] == pytest.approx(w.max(), rel=1e-4)
    assert got["clipped_share"] == pytest.approx(np.mean(w >= 100.0), abs=1e-5)
    assert got["ess_share"] == pytest.approx(w.sum() ** 2 / (len(w) * (w**2).sum()), rel=1e-4)
    top = np.sort(w)[::-1][: len(w) // 100 or 1].sum() / w.sum()
    assert got["top_1pct_weight_share"] == pytest.approx(top, rel=1e-4)
    assert 0 < got["ess_share"] < 1


def test_the_frames_are_the_dataset_steps_they_name(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "data", "toy", SPACE, 5, range(3), 400, episode_steps=(5, 30), seed=4)
    got = _script().draw_frames(str(path), 60, seed=2)
    episodes = list(open_dataset(path).read_episodes(range(len(open_dataset(path).lengths))))
    steps = [(ep["observations"][t], ep["actions"][t]) for ep in episodes for t in range(len(ep["actions"]))]
    picks = np.sort(np.random.default_rng(2).choice(len(steps), size=60, replace=False))
    assert np.array_equal(got["obs"], np.stack([steps[i][0] for i in picks]))
    assert np.array_equal(got["action"], np.array([steps[i][1] for i in picks]))
    assert np.array_equal(got["all_actions"], np.array([a for _, a in steps]))
    assert got["n_actions"] == 5
