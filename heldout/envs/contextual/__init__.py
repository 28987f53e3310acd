"""Contextual environments: gymnasium's envs with their dynamics set by a context.

``CONTEXTUAL_ENVS`` maps a family name (``"cartpole"``, ...) to its env class; every class declares
its context space (``cls.context_space``) and gymnasium id (``cls.env_id``, ``heldout/<Name>-v0``).
See docs/contexts.md.
"""

from __future__ import annotations

from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.cartpole import ContextualCartPole
from heldout.envs.contextual.space import ContextFeature, ContextSpace
from heldout.registry import Registry

CONTEXTUAL_ENVS: Registry[type[ContextualEnv]] = Registry("contextual environment")
CONTEXTUAL_ENVS.register(
    "cartpole", ContextualCartPole, help="CartPole: gravity, cart/pole mass, pole length, force, time step"
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
    "ContextualCartPole",
    "ContextualEnv",
    "register_contextual_ids",
]
