"""Same seed, same device, same results (DESIGN.md, Reliability), on the real Procgen env."""

from __future__ import annotations

import torch

import heldout.agents  # noqa: F401  (registers ProcgenVecEnv as an SB3 VecEnv)
from heldout.agents.ppo import PPO
from heldout.envs import ProcgenVecEnv


def _train(seed: int) -> dict[str, torch.Tensor]:
    env = ProcgenVecEnv("starpilot", num_envs=4, levels=range(0, 20), seed=seed)
    model = PPO(env=env, n_steps=16, batch_size=32, n_epochs=1, seed=seed, device="cpu")
    model.learn(128)
    env.close()
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def test_same_seed_same_parameters_different_seed_different() -> None:
    a, b, c = _train(7), _train(7), _train(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
