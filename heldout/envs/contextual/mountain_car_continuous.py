"""Contextual MountainCarContinuous: gymnasium's ``MountainCarContinuous-v0`` with the engine power,
gravity and goal position set by a context (Benjamins et al. 2023, "Contextualize Me", TMLR).

gymnasium's continuous car has its gravity (0.0025) written into ``step``, not an attribute, so
:meth:`ContextualMountainCarContinuous.step` writes out the same update with the context's gravity;
the default context (power 0.0015, gravity 0.0025, goal 0.45) reproduces gymnasium's env exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv

from heldout.contexts import Context
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.space import ContextFeature, ContextSpace


class ContextualMountainCarContinuous(ContextualEnv, Continuous_MountainCarEnv):
    """Continuous MountainCar from a context (``heldout/ContextualMountainCarContinuous-v0``)."""

    context_space = ContextSpace(
        [
            ContextFeature("power", 0.0015, 0.0001, 0.01, "", "velocity change of a full push per step"),
            ContextFeature("gravity", 0.0025, 0.0001, 0.01, "", "pull of the slope per step"),
            ContextFeature("goal_position", 0.45, 0.0, 0.6, "", "position of the flag"),
        ],
        kind="MountainCarContinuous context feature",
    )
    env_id = "heldout/ContextualMountainCarContinuous-v0"
    gymnasium_id = "MountainCarContinuous-v0"
    max_episode_steps = 999
    success_on = "terminated"

    def _apply_context(self, context: Context) -> None:
        self.power = context["power"]
        self.gravity = context["gravity"]
        self.goal_position = context["goal_position"]

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """gymnasium's update (velocity += force * power - gravity * cos(3 x)) with context gravity."""
        # numpy float32 scalars, as in gymnasium's step: the arithmetic then promotes as there, under
        # NumPy 1's value-based casting (float64) and NumPy 2's NEP 50 rules (float32) alike
        position, velocity = self.state[0], self.state[1]
        force = min(max(action[0], self.min_action), self.max_action)
        velocity += force * self.power - self.gravity * math.cos(3 * position)
        velocity = min(max(velocity, -self.max_speed), self.max_speed)
        position = min(max(position + velocity, self.min_position), self.max_position)
        if position == self.min_position and velocity < 0:
            velocity = 0
        terminated = bool(position >= self.goal_position and velocity >= self.goal_velocity)
        reward = (100.0 if terminated else 0.0) - math.pow(action[0], 2) * 0.1
        self.state = np.array([position, velocity], dtype=np.float32)
        if self.render_mode == "human":
            self.render()
        return self.state, reward, terminated, False, {"context": dict(self.context)}
