"""A tiny image env for agent tests: 64x64x3 uint8 frames, 15 actions, 5-step episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv


class TinyImageEnv(gym.Env):
    """64x64x3 uint8 frames, 15 actions, reward 1 for action 0, episodes of 5 steps."""

    observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
    action_space = spaces.Discrete(15)

    def __init__(self) -> None:
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        reward = float(action == 0)
        return self._obs(), reward, self._t >= 5, False, {}

    def _obs(self):
        return self.np_random.integers(0, 256, (64, 64, 3), dtype=np.uint8)


def tiny_venv(n: int = 2) -> DummyVecEnv:
    return DummyVecEnv([TinyImageEnv] * n)


def small_agent(cls, **kwargs):
    """An agent of class ``cls`` on two tiny envs: 8 steps per env, minibatch 8, one epoch, CPU."""
    kwargs = {"n_steps": 8, "batch_size": 8, "n_epochs": 1, "seed": 0, "device": "cpu", **kwargs}
    return cls("CnnPolicy", tiny_venv(), **kwargs)
