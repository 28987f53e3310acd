"""Environments. This package imports numpy, gymnasium and procgen, never torch or SB3.

``ENVS`` maps a Procgen env name (``"coinrun"``, ...) to a factory of vectorized envs with the signature
``factory(num_envs, levels, seed, distribution_mode, **options)``; ``make_vec`` looks names up in it.
``CONTEXTUAL_ENVS`` maps a contextual family (``"cartpole"``, ...) to its gymnasium env class
(:mod:`heldout.envs.contextual`). :func:`check_env_name` knows both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heldout.envs.contextual import CONTEXTUAL_ENVS, ContextualEnv, register_contextual_ids
from heldout.envs.level_samplers import LevelSampler, SequentialLevelSampler, UniformLevelSampler
from heldout.envs.procgen import (
    DISTRIBUTION_MODES,
    PROCGEN_GAMES,
    SCORE_RANGES,
    VISUAL_OPTIONS,
    ProcgenEnv,
    ProcgenVecEnv,
)
from heldout.registry import Registry

ENVS: Registry[Callable[..., Any]] = Registry("environment")


def _procgen_factory(game: str) -> Callable[..., ProcgenVecEnv]:
    def factory(**kwargs: Any) -> ProcgenVecEnv:
        return ProcgenVecEnv(game, **kwargs)

    factory.__name__ = f"make_{game}"
    return factory


for _game in PROCGEN_GAMES:
    ENVS.register(_game, _procgen_factory(_game), help=f"Procgen {_game} (64x64 RGB, 15 actions)")


def check_env_name(name: str) -> str:
    """Returns ``name`` if it is a Procgen or contextual env, else raises KeyError with a suggestion."""
    if name in ENVS or name in CONTEXTUAL_ENVS:
        return name
    both: Registry[object] = Registry("environment")
    for n in [*ENVS.names(), *CONTEXTUAL_ENVS.names()]:
        both.register(n, n)
    raise KeyError(both.unknown_message(name))


def make_vec(name: str, **kwargs: Any) -> Any:
    """Builds the vectorized env registered as ``name`` (e.g. ``make_vec("coinrun", num_envs=64)``)."""
    return ENVS.get(name)(**kwargs)


def register_gymnasium_ids() -> None:
    """Registers ``heldout/<game>-v0`` for every Procgen game and ``heldout/<Name>-v0`` for every
    contextual family with gymnasium (idempotent)."""
    import gymnasium

    for game in PROCGEN_GAMES:
        env_id = f"heldout/{game}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id, entry_point="heldout.envs.procgen:ProcgenEnv", kwargs={"game": game}
            )
    register_contextual_ids()


__all__ = [
    "CONTEXTUAL_ENVS",
    "ContextualEnv",
    "check_env_name",
    "DISTRIBUTION_MODES",
    "ENVS",
    "PROCGEN_GAMES",
    "SCORE_RANGES",
    "VISUAL_OPTIONS",
    "LevelSampler",
    "ProcgenEnv",
    "ProcgenVecEnv",
    "SequentialLevelSampler",
    "UniformLevelSampler",
    "make_vec",
    "register_gymnasium_ids",
]
