"""Env families: what the protocol asks of an environment, one file per kind of env.

* :mod:`~heldout.protocol.families.base`: the :class:`EnvFamily` interface and what every family
  shares (schedules, wrappers, reward normalisation);
* :mod:`~heldout.protocol.families.levels`: families whose levels are seeds (the level split and the
  leak-free evaluation lists), used by
* :mod:`~heldout.protocol.families.procgen` (the 16 Procgen games) and
  :mod:`~heldout.protocol.families.seeded` (MiniGrid; any ``register_seeded_env`` env);
* :mod:`~heldout.protocol.families.contextual`: CARL-style contextual envs.

:func:`family_for` picks an env's family by its name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from heldout.protocol.families.base import (
    SCHEDULED_ARGS,
    EnvFamily,
    LinearSchedule,
    eval_wrappers,
    resolve_schedules,
    reward_norm,
    slot_env_factory,
    train_vec_env,
    wrap_train,
)
from heldout.protocol.families.contextual import (
    VISIBLE_CONTEXT_MODES,
    ContextualFamily,
    context_bins,
    evaluation_contexts,
    make_contextual_env,
)
from heldout.protocol.families.levels import (
    LEAKAGE_CHECK_MAX_TRAIN_LEVELS,
    LevelFamily,
    leak_free_levels,
    level_split,
)
from heldout.protocol.families.procgen import ProcgenFamily, check_leakage
from heldout.protocol.families.seeded import SeededGymFamily

if TYPE_CHECKING:
    from heldout.protocol.config import TrainConfig
    from heldout.splits import ContextSplit, LevelSplit


def family_for(env: str) -> EnvFamily:
    """The family of env ``env``; an unknown name raises KeyError with a suggestion."""
    from heldout.envs import CONTEXTUAL_ENVS, ENVS, SEEDED_ENVS, check_env_name

    check_env_name(env)
    if env in CONTEXTUAL_ENVS:
        return ContextualFamily(env)
    if env in SEEDED_ENVS:
        return SeededGymFamily(env)
    ENVS.get(env)
    return ProcgenFamily()


def split_of(config: TrainConfig) -> LevelSplit | ContextSplit:
    """The split a config trains and tests on: levels or contexts, as its env's family builds it."""
    return family_for(config.env).split(config)


__all__ = [
    "LEAKAGE_CHECK_MAX_TRAIN_LEVELS",
    "SCHEDULED_ARGS",
    "VISIBLE_CONTEXT_MODES",
    "ContextualFamily",
    "EnvFamily",
    "LevelFamily",
    "LinearSchedule",
    "ProcgenFamily",
    "SeededGymFamily",
    "check_leakage",
    "context_bins",
    "eval_wrappers",
    "evaluation_contexts",
    "family_for",
    "leak_free_levels",
    "level_split",
    "make_contextual_env",
    "resolve_schedules",
    "reward_norm",
    "slot_env_factory",
    "split_of",
    "train_vec_env",
    "wrap_train",
]
