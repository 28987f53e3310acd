"""Contextual MountainCar: gymnasium's ``MountainCar-v0`` with the engine force, gravity and goal
position set by a context (Benjamins et al. 2023, "Contextualize Me", TMLR; CARL's MountainCar).

The default context (force 0.001, gravity 0.0025, goal 0.5) reproduces ``MountainCar-v0`` exactly.
"""

from __future__ import annotations

from gymnasium.envs.classic_control.mountain_car import MountainCarEnv

from heldout.contexts import Context
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.space import ContextFeature, ContextSpace


class ContextualMountainCar(ContextualEnv, MountainCarEnv):
    """MountainCar whose physics and goal come from a context (``heldout/ContextualMountainCar-v0``)."""

    context_space = ContextSpace(
        [
            ContextFeature("force", 0.001, 0.0001, 0.01, "", "velocity change of a push per step"),
            ContextFeature("gravity", 0.0025, 0.0001, 0.01, "", "pull of the slope per step"),
            ContextFeature("goal_position", 0.5, 0.0, 0.6, "", "position of the flag"),
        ],
        kind="MountainCar context feature",
    )
    env_id = "heldout/ContextualMountainCar-v0"
    gymnasium_id = "MountainCar-v0"
    max_episode_steps = 200
    success_on = "terminated"  # reached the flag

    def _apply_context(self, context: Context) -> None:
        self.force = context["force"]
        self.gravity = context["gravity"]
        self.goal_position = context["goal_position"]
