"""Contextual LunarLander: gymnasium's ``LunarLander-v3`` with gravity, wind, turbulence and engine
powers set by a context (Benjamins et al. 2023, "Contextualize Me", TMLR; CARL's LunarLander).

Needs Box2D (``pip install box2d pygame``, wheels for CPython 3.11/3.12). Gravity, wind power and
turbulence power are attributes of gymnasium's env (read at reset and each step); wind is on when
either wind or turbulence power is above zero. gymnasium reads the engine powers from module
constants in ``step``: :meth:`ContextualLunarLander.step` sets them for the duration of its own
step and restores them after, so other envs keep theirs. The default context (gravity -10, no wind,
main engine 13, side engines 0.6) reproduces ``LunarLander-v3`` exactly.
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.box2d import lunar_lander
from gymnasium.envs.box2d.lunar_lander import LunarLander

from heldout.contexts import Context
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.space import ContextFeature, ContextSpace


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
