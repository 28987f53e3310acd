"""Tiny spaces, batches and datasets shared by the offline-agent tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

#: One-hot states of a 3-state chain (A, B, end); vectors, so the agents build their MLP.
STATES = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
TWO_ACTIONS = gym.spaces.Discrete(2)
A, B, END = np.eye(3, dtype=np.float32)


def transitions(obs, action, reward, next_obs, terminated) -> dict[str, torch.Tensor]:
    """A transition batch with the contract's keys and dtypes."""
    n = len(action)
    return {
        "obs": torch.as_tensor(np.asarray(obs, dtype=np.float32)),
        "next_obs": torch.as_tensor(np.asarray(next_obs, dtype=np.float32)),
        "action": torch.as_tensor(np.asarray(action), dtype=torch.int64),
        "reward": torch.as_tensor(np.asarray(reward, dtype=np.float32)),
        "terminated": torch.as_tensor(np.asarray(terminated, dtype=np.float32)),
        "truncated": torch.zeros(n),
    }


def chain_batch(repeat: int = 8) -> dict[str, torch.Tensor]:
    """Every (state, action) of a 2-step chain, ``repeat`` times, as a random behaviour policy gives.

    From A, action 0 leads to B (reward 0) and action 1 ends with 0.5; from B, action 0 ends with 1 and
    action 1 with 0. With gamma 0.99 the best first action is 0 (0.99 > 0.5): an agent that does not
    bootstrap through (1 - terminated), or whose update has the wrong sign, picks 1.
    """
    rows = [(A, 0, 0.0, B, 0.0), (A, 1, 0.5, END, 1.0), (B, 0, 1.0, END, 1.0), (B, 1, 0.0, END, 1.0)] * repeat
    return transitions(*zip(*rows))


def random_transitions(
    space: gym.spaces.Box, n_actions: int, n: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A batch of random transitions on ``space`` (for formula and round-trip checks)."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(0, 1, (2 * n, *space.shape)).astype(np.float32)
    return transitions(
        obs[:n], rng.integers(0, n_actions, n), rng.normal(size=n), obs[n:], rng.integers(0, 2, n)
    )
