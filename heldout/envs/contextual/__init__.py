"""Contextual environments: gymnasium's envs with their dynamics set by a context.

``CONTEXTUAL_ENVS`` maps a family name (``"cartpole"``, ...) to its env class; every class declares
its context space (``cls.context_space``) and gymnasium id (``cls.env_id``, ``heldout/<Name>-v0``).
See docs/contexts.md.
"""

from __future__ import annotations

from heldout.envs.contextual.acrobot import ContextualAcrobot
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.cartpole import ContextualCartPole
from heldout.envs.contextual.mountain_car import ContextualMountainCar
from heldout.envs.contextual.mountain_car_continuous import ContextualMountainCarContinuous
from heldout.envs.contextual.pendulum import ContextualPendulum
from heldout.envs.contextual.space import ContextFeature, ContextSpace
from heldout.registry import Registry

CONTEXTUAL_ENVS: Registry[type[ContextualEnv]] = Registry("contextual environment")
CONTEXTUAL_ENVS.register(
    "cartpole", ContextualCartPole, help="CartPole: gravity, cart/pole mass, pole length, force, time step"
)
CONTEXTUAL_ENVS.register(
    "pendulum", ContextualPendulum, help="Pendulum: gravity, mass, length, max speed, max torque, time step"
)
CONTEXTUAL_ENVS.register(
    "mountaincar", ContextualMountainCar, help="MountainCar: force, gravity, goal position"
)
CONTEXTUAL_ENVS.register(
    "mountaincar-continuous",
    ContextualMountainCarContinuous,
    help="MountainCarContinuous: engine power, gravity, goal position",
)
CONTEXTUAL_ENVS.register(
    "acrobot", ContextualAcrobot, help="Acrobot: link lengths, masses, centres of mass, moment of inertia"
)
try:  # Box2D is a wheel on CPython 3.11/3.12; without it the other families still work
    from heldout.envs.contextual.lunar_lander import ContextualLunarLander
except ImportError:  # pragma: no cover
    ContextualLunarLander = None  # type: ignore[assignment,misc]
else:
    CONTEXTUAL_ENVS.register(
        "lunarlander",
        ContextualLunarLander,
        help="LunarLander: gravity, wind, turbulence, main and side engine power (needs box2d)",
    )


def register_contextual_ids() -> None:
    """Registers every family's ``heldout/<Name>-v0`` with gymnasium (idempotent)."""
    import gymnasium

    for name in CONTEXTUAL_ENVS.names():
        cls = CONTEXTUAL_ENVS.get(name)
        if cls.env_id not in gymnasium.registry:
            gymnasium.register(
                id=cls.env_id,
                entry_point=f"{cls.__module__}:{cls.__name__}",
                max_episode_steps=cls.max_episode_steps,
            )


__all__ = [
    "CONTEXTUAL_ENVS",
    "ContextFeature",
    "ContextSpace",
    "ContextualAcrobot",
    "ContextualCartPole",
    "ContextualLunarLander",
    "ContextualMountainCar",
    "ContextualMountainCarContinuous",
    "ContextualPendulum",
    "ContextualEnv",
    "register_contextual_ids",
]
