"""Contextual Pendulum: gymnasium's ``Pendulum-v1`` with gravity, mass, length, maximum speed,
maximum torque and time step set by a context (Benjamins et al. 2023, "Contextualize Me", TMLR).

The default context (g 10, m 1, l 1, max speed 8, max torque 2, dt 0.05) reproduces ``Pendulum-v1``
exactly. Spaces stay fixed across contexts: the action space is gymnasium's ``[-2, 2]``, read as a
fraction of the context's maximum torque (an action ``a`` applies ``a * max_torque / 2``), and the
observation space bounds the angular velocity by the largest ``max_speed`` allowed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from heldout.contexts import Context
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.space import ContextFeature, ContextSpace

#: gymnasium's maximum torque: the action space's bound, whatever the context.
ACTION_BOUND = 2.0


class ContextualPendulum(ContextualEnv, PendulumEnv):
    """Pendulum whose physics come from a context (``heldout/ContextualPendulum-v0``)."""

    context_space = ContextSpace(
        [
            ContextFeature("g", 10.0, 1.0, 30.0, "m/s^2", "gravitational acceleration"),
            ContextFeature("m", 1.0, 0.1, 10.0, "kg", "mass of the pendulum"),
            ContextFeature("l", 1.0, 0.1, 5.0, "m", "length of the pendulum"),
            ContextFeature("max_speed", 8.0, 1.0, 30.0, "rad/s", "angular velocity limit"),
            ContextFeature("max_torque", 2.0, 0.2, 10.0, "N m", "torque of the largest action"),
            ContextFeature("dt", 0.05, 0.01, 0.2, "s", "time step"),
        ],
        kind="Pendulum context feature",
    )
    env_id = "heldout/ContextualPendulum-v0"
    gymnasium_id = "Pendulum-v1"
    max_episode_steps = 200
    success_on = None  # no goal: every episode runs to the time limit, so "completed" says nothing

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        top = self.context_space.feature("max_speed").upper
        high = np.array([1.0, 1.0, top], dtype=np.float32)
        self.observation_space = spaces.Box(low=-high, high=high, dtype=np.float32)

    def _apply_context(self, context: Context) -> None:
        self.g = context["g"]
        self.m = context["m"]
        self.l = context["l"]
        self.max_speed = context["max_speed"]
        self.max_torque = context["max_torque"]
        self.dt = context["dt"]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        # scale [-2, 2] to [-max_torque, max_torque]; exact (a * 1.0) for the default context
        u = np.asarray(action, dtype=np.float32) * np.float32(self.max_torque / ACTION_BOUND)
        return super().step(u)
