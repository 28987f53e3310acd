"""Environments. This package imports numpy, gymnasium and procgen, never torch or SB3.

``ENVS`` maps a Procgen env name (``"coinrun"``, ...) to a factory of vectorized envs with the signature
``factory(num_envs, levels, seed, distribution_mode, **options)``; ``make_vec`` looks names up in it.
``CONTEXTUAL_ENVS`` maps a contextual family (``"cartpole"``, ...) to its gymnasium env class
(:mod:`heldout.envs.contextual`). ``SEEDED_ENVS`` maps a procedurally generated gymnasium env whose
level is its reset seed (``"minigrid-doorkey-5x5"``, ``"minihack-multiroom-n4"``, ...; :mod:`heldout.envs.seeded`,
:mod:`heldout.envs.minigrid`, :mod:`heldout.envs.minihack`) to its :class:`SeededEnvSpec`. :func:`check_env_name` knows all three,
and :func:`gymnasium_ids` maps every name to its gymnasium id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heldout.envs import minigrid as _minigrid  # noqa: F401  (registers the MiniGrid envs)
from heldout.envs import minihack as _minihack  # noqa: F401  (registers the MiniHack envs)
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
from heldout.envs.seeded import (
    SEEDED_ENVS,
    SeededEnvSpec,
    SeededLevelEnv,
    register_seeded_env,
    register_seeded_ids,
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
    """Returns ``name`` if it is a Procgen, contextual or seeded env, else raises KeyError with a
    suggestion."""
    if name in ENVS or name in CONTEXTUAL_ENVS or name in SEEDED_ENVS:
        return name
    every: Registry[object] = Registry("environment")
    for n in [*ENVS.names(), *CONTEXTUAL_ENVS.names(), *SEEDED_ENVS.names()]:
        every.register(n, n)
    raise KeyError(every.unknown_message(name))


def gymnasium_ids() -> dict[str, str]:
    """Every registered env's name and its single-env gymnasium id: ``{"coinrun": "heldout/coinrun-v0",
    "cartpole": "heldout/ContextualCartPole-v0", "minigrid-doorkey-5x5": "heldout/MiniGrid-DoorKey-5x5-v0",
    ...}`` (what the registry-parametrized env tests run)."""
    ids = {game: f"heldout/{game}-v0" for game in PROCGEN_GAMES}
    ids.update({name: CONTEXTUAL_ENVS.get(name).env_id for name in CONTEXTUAL_ENVS.names()})
    ids.update({name: SEEDED_ENVS.get(name).env_id for name in SEEDED_ENVS.names()})
    return ids


def make_vec(name: str, **kwargs: Any) -> Any:
    """Builds the vectorized env registered as ``name`` (e.g. ``make_vec("coinrun", num_envs=64)``)."""
    return ENVS.get(name)(**kwargs)


def register_gymnasium_ids() -> None:
    """Registers ``heldout/<game>-v0`` for every Procgen game (single env, and
    :class:`~heldout.envs.procgen_vector.ProcgenVectorEnv` as its vector entry point for
    ``gymnasium.make_vec``), ``heldout/<Name>-v0`` for every
    contextual family and every seeded env's id with gymnasium (idempotent)."""
    import gymnasium

    for game in PROCGEN_GAMES:
        env_id = f"heldout/{game}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point="heldout.envs.procgen:ProcgenEnv",
                vector_entry_point="heldout.envs.procgen_vector:make_procgen_vector",
                kwargs={"game": game},
            )
    register_contextual_ids()
    register_seeded_ids()


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
    "SEEDED_ENVS",
    "SeededEnvSpec",
    "SeededLevelEnv",
    "SequentialLevelSampler",
    "UniformLevelSampler",
    "gymnasium_ids",
    "make_vec",
    "register_gymnasium_ids",
    "register_seeded_env",
]
