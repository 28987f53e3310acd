"""Contextual LunarLander: gymnasium's ``LunarLander-v3`` with gravity, wind, turbulence and engine
powers set by a context (Benjamins et al. 2023, "Contextualize Me", TMLR; CARL's LunarLander).

Needs Box2D (``pip install box2d pygame``, wheels for CPython 3.11/3.12). Gravity, wind power and
turbulence power are attributes of gymnasium's env (read at reset and each step); wind is on when
either wind or turbulence power is above zero. gymnasium reads the engine powers from module
constants in ``step``: :meth:`ContextualLunarLander.step` sets them for the duration of its own
step and restores them after, so other envs keep theirs. The default context (gravity -10, no wind,
main engine 13, side engines 0.6) reproduces ``LunarLander-v3`` exactly.

**Observation space.** gymnasium declares ``LunarLander-v3``'s observations within ±2.5 (position),
±10 (velocities), ±2π (angle), which in-bounds contexts leave: with ``main_engine_power=50,
gravity=-1`` the lander climbs to a height of 13 and 13 units/s, and a strong side engine spins it
past an angle of 100 rad. The observations are not clipped (they are gymnasium's own, so the default
context still matches it exactly); the declared space is widened instead (:data:`OBSERVATION_LOW`,
:data:`OBSERVATION_HIGH`) to what the simulation can produce for any context: the height and the angle
are unbounded (the lander may fly up, or spin, for its whole episode), the velocities are bounded by
Box2D's largest motion per step (2 m of translation and π/2 of rotation per 1/50 s step: ±20 for
the scaled linear velocities, ±10π for the scaled angular velocity), the horizontal position by the
episode ending once it leaves ±1 (one step past it stays inside ±2.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.box2d import lunar_lander
from gymnasium.envs.box2d.lunar_lander import LunarLander

from heldout.contexts import Context
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.space import ContextFeature, ContextSpace

#: The widened observation bounds (see the module docstring): x, y, vx, vy, angle, angular velocity,
#: left leg contact, right leg contact.
OBSERVATION_LOW = np.array([-2.5, -np.inf, -20.0, -20.0, -np.inf, -10 * np.pi, 0.0, 0.0], dtype=np.float32)
OBSERVATION_HIGH = np.array([2.5, np.inf, 20.0, 20.0, np.inf, 10 * np.pi, 1.0, 1.0], dtype=np.float32)


class ContextualLunarLander(ContextualEnv, LunarLander):
    """LunarLander whose physics come from a context (``heldout/ContextualLunarLander-v0``)."""

    context_space = ContextSpace(
        [
            ContextFeature("gravity", -10.0, -20.0, -1.0, "m/s^2", "vertical gravity (negative: down)"),
            ContextFeature("wind_power", 0.0, 0.0, 20.0, "", "largest sideways wind force (0: none)"),
            ContextFeature("turbulence_power", 0.0, 0.0, 2.0, "", "largest rotational wind (0: none)"),
            ContextFeature("main_engine_power", 13.0, 1.0, 50.0, "", "impulse of the main engine"),
            ContextFeature("side_engine_power", 0.6, 0.05, 5.0, "", "impulse of a side engine"),
        ],
        kind="LunarLander context feature",
    )
    env_id = "heldout/ContextualLunarLander-v0"
    gymnasium_id = "LunarLander-v3"
    max_episode_steps = 1000
    success_on = "terminated"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.observation_space = spaces.Box(OBSERVATION_LOW, OBSERVATION_HIGH, dtype=np.float32)

    def completed_episode(self, terminated: bool, truncated: bool) -> bool:
        """Landed: the episode ended with the lander at rest, not crashed or flown off."""
        return bool(terminated and not self.game_over and not self.lander.awake)

    def _apply_context(self, context: Context) -> None:
        self.gravity = context["gravity"]
        self.wind_power = context["wind_power"]
        self.turbulence_power = context["turbulence_power"]
        self.enable_wind = self.wind_power > 0.0 or self.turbulence_power > 0.0
        self.main_engine_power = context["main_engine_power"]
        self.side_engine_power = context["side_engine_power"]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        saved = lunar_lander.MAIN_ENGINE_POWER, lunar_lander.SIDE_ENGINE_POWER
        lunar_lander.MAIN_ENGINE_POWER = self.main_engine_power
        lunar_lander.SIDE_ENGINE_POWER = self.side_engine_power
        try:
            return super().step(action)
        finally:
            lunar_lander.MAIN_ENGINE_POWER, lunar_lander.SIDE_ENGINE_POWER = saved
