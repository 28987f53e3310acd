"""Exploration bonuses for every on-policy agent: global and episodic, alone or combined.

``heldout train --bonus NAME --bonus-arg KEY=VALUE`` (``TrainConfig.bonus`` / ``bonus_kwargs``):

========================  ==========  =====================================================================
name                      scope       raw bonus of the state ``s'`` a step reaches
========================  ==========  =====================================================================
``count``                 global      ``1 / sqrt(N(s'))``, visits over all of training (:mod:`.count`)
``rnd``                   global      ``||f_pred(s') - f_target(s')||`` (:mod:`.rnd`)
``episodic-count``        episodic    ``1{N_e(s') = 1}``, this episode's visits (:mod:`.count`)
``e3b``                   episodic    ``phi(s')^T C^-1 phi(s')`` over this episode (:mod:`.e3b`)
``product``, ``sum``      both        ``b_episodic * b_global``, ``b_episodic + global_coef * b_global``
========================  ==========  =====================================================================

The combinations take ``global=count|rnd`` and ``episodic=episodic-count|e3b`` (default: the paper's
best pair, E3B x RND) and their parts' options as ``global.KEY=VALUE`` / ``episodic.KEY=VALUE``. Every
bonus takes ``coef`` (beta) and ``norm`` (:mod:`.intrinsic`). docs/exploration.md has the details and
the differences from facebookresearch/e3b.
"""

from __future__ import annotations

import difflib
from typing import Any

from gymnasium import spaces

from heldout.agents.bonuses.base import (
    COMMON_OPTIONS,
    Bonus,
    BonusOption,
    check_options,
    hashable_observation,
)
from heldout.agents.bonuses.combine import Combined
from heldout.agents.bonuses.count import EpisodicCount, GlobalCount
from heldout.agents.bonuses.e3b import E3B
from heldout.agents.bonuses.intrinsic import BonusVecEnv, IntrinsicReward
from heldout.agents.bonuses.rnd import RND
from heldout.registry import Registry

#: Bonus name -> its class (the combinations: :class:`Combined`).
BONUSES = Registry[type]("bonus")
BONUSES.register(
    "count", GlobalCount, help="global count 1/sqrt(N(s')) of hashed observations or an info key"
)
BONUSES.register("rnd", RND, help="Random Network Distillation: global, a learned prediction error")
BONUSES.register("episodic-count", EpisodicCount, help="episodic first-visit count 1{N_e(s') = 1}")
BONUSES.register("e3b", E3B, help="E3B: elliptical episodic bonus over an inverse-dynamics embedding")
BONUSES.register(
    "product", Combined, help="episodic x global (default e3b x rnd, the ICML 2023 paper's best)"
)
BONUSES.register("sum", Combined, help="episodic + global_coef * global (default e3b + rnd)")

#: The parts a combination takes, and the default pair (Henaff, Jiang, Raileanu 2023: E3B x RND).
GLOBAL_PARTS: tuple[str, ...] = ("count", "rnd")
EPISODIC_PARTS: tuple[str, ...] = ("episodic-count", "e3b")
COMBINATIONS: tuple[str, ...] = ("product", "sum")
NO_BONUS = "none"


def bonus_options(name: str) -> dict[str, BonusOption]:
    """The ``--bonus-arg`` keys of bonus ``name`` (not the ``global.`` / ``episodic.`` part keys)."""
    options = list(COMMON_OPTIONS)
    if name in COMBINATIONS:
        options += [
            BonusOption("global", str, "rnd", choices=GLOBAL_PARTS, help="the global part"),
            BonusOption("episodic", str, "e3b", choices=EPISODIC_PARTS, help="the episodic part"),
        ]
        if name == "sum":
            options.append(BonusOption("global_coef", float, 1.0, low=0.0, help="the global part's weight"))
    else:
        options += list(BONUSES.get(name).OPTIONS)
    return {option.name: option for option in options}


def check_bonus(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The bonus's options, resolved: defaults with ``kwargs`` checked, the parts' options of a
    combination under ``global`` / ``episodic`` keys of their own (``{"global.dim": 64}`` ->
    ``{"global": "rnd", "global_options": {"dim": 64}, ...}``).

    Raises:
        KeyError: an unknown bonus (did you mean).
        ValueError: an unknown key or a bad value, one line; options given with no bonus.
    """
    if not isinstance(kwargs, dict):
        raise TypeError(f"bonus_kwargs must be a mapping of names to values, got {kwargs!r}")
    if name == NO_BONUS:
        if kwargs:
            raise ValueError(
                f"--bonus-arg {', '.join(sorted(map(str, kwargs)))} given without a bonus; valid: "
                f"--bonus NAME ({', '.join(BONUSES.names())}) with it, or no --bonus-arg"
            )
        return {}
    if name not in BONUSES:
        close = difflib.get_close_matches(str(name), BONUSES.names(), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"unknown bonus {name!r}{hint}; valid: {NO_BONUS}, {', '.join(BONUSES.names())}")
    own = {
        k: v
        for k, v in kwargs.items()
        if not (isinstance(k, str) and k.split(".", 1)[0] in ("global", "episodic") and "." in k)
    }
    if name not in COMBINATIONS and len(own) != len(kwargs):
        bad = sorted(set(map(str, kwargs)) - set(map(str, own)))[0]
        raise ValueError(
            f"--bonus-arg {bad!r}: only the combinations ({', '.join(COMBINATIONS)}) take global./episodic. "
            f"options; valid for bonus {name!r}: {', '.join(bonus_options(name))}"
        )
    out = check_options(name, bonus_options(name), own)
    if name in COMBINATIONS:
        for part in ("global", "episodic"):
            prefix = f"{part}."
            given = {
                k[len(prefix) :]: v for k, v in kwargs.items() if isinstance(k, str) and k.startswith(prefix)
            }
            part_name = out[part]
            options = {o.name: o for o in BONUSES.get(part_name).OPTIONS}
            out[f"{part}_options"] = check_options(f"{name}, {part} {part_name}", options, given, prefix)
    return out


def make_bonus(
    name: str,
    kwargs: dict[str, Any],
    observation_space: spaces.Space,
    action_space: spaces.Space,
    n_envs: int,
    seed: int,
) -> IntrinsicReward:
    """The run's :class:`IntrinsicReward` for bonus ``name`` with options ``kwargs`` (checked).

    ``seed`` (the run seed) seeds the bonus's networks and minibatch order, never the policy's.

    Raises:
        KeyError, ValueError: as :func:`check_bonus`; ValueError for an env the bonus cannot score
        (:func:`check_bonus_fits`).
    """
    options = check_bonus(name, kwargs)
    check_bonus_fits(name, options, observation_space, action_space)
    base = (observation_space, action_space, n_envs)
    common = {k: options[k] for k in ("coef", "norm")}

    def build(part: str, part_options: dict[str, Any], salt: int) -> Bonus:
        return BONUSES.get(part)(*base, seed=(seed * 1_000_003 + salt) % 2**31, **part_options)

    if name in COMBINATIONS:
        bonus: Bonus = Combined(
            *base,
            seed=seed,
            episodic=build(options["episodic"], options["episodic_options"], 1),
            global_=build(options["global"], options["global_options"], 2),
            form=name,
            global_coef=options.get("global_coef", 1.0),
        )
    else:
        bonus = build(name, {k: v for k, v in options.items() if k not in common}, 0)
    return IntrinsicReward(bonus, name, **common)


def attach_bonus(model: Any, name: str, kwargs: dict[str, Any], seed: int) -> None:
    """Gives an on-policy ``model`` (:class:`heldout.agents.ppo.PPO` or a subclass) the bonus ``name``
    as its :attr:`~heldout.agents.ppo.PPO.bonus`, on the model's device; nothing for ``"none"``.
    Built before a checkpoint is restored into the model, so the checkpoint's bonus state fits it."""
    if name == NO_BONUS:
        return
    intrinsic = make_bonus(name, kwargs, model.observation_space, model.action_space, model.n_envs, seed)
    model.bonus = intrinsic.to(model.device)


def check_bonus_fits(
    name: str,
    options: dict[str, Any],
    observation_space: spaces.Space,
    action_space: spaces.Space,
    env: str = "",
) -> None:
    """Whether bonus ``name`` (resolved ``options``) can score an env with these spaces.

    Raises:
        ValueError: one line: a Dict observation; a count on continuous observations (not hashable)
            without a declared info key; e3b without discrete actions.
    """
    what = f"env {env!r}" if env else "the env"
    parts = (
        [(options["global"], options["global_options"]), (options["episodic"], options["episodic_options"])]
        if name in COMBINATIONS
        else [(name, options)]
    )
    if not isinstance(observation_space, spaces.Box):
        raise ValueError(
            f"bonus {name!r} scores Box observations; {what} observes {type(observation_space).__name__} "
            "(a visible context as a dict?); valid: a Box observation (e.g. --visible-context concat)"
        )
    for part, part_options in parts:
        if (
            part in ("count", "episodic-count")
            and part_options["key"] == "obs"
            and not hashable_observation(observation_space)
        ):
            raise ValueError(
                f"bonus {part!r} counts hashed observations; {what} observes {observation_space.dtype} values "
                f"(continuous: every state is new); valid: integer observations, --bonus-arg key=INFO_KEY "
                f"(an info entry to count), or bonus rnd / e3b"
            )
        if part == "e3b" and not isinstance(action_space, spaces.Discrete):
            raise ValueError(
                f"bonus 'e3b' learns its embedding by predicting discrete actions; {what} has "
                f"{type(action_space).__name__} actions; valid: Discrete actions, or bonus count / rnd / episodic-count"
            )


__all__ = [
    "BONUSES",
    "COMBINATIONS",
    "EPISODIC_PARTS",
    "GLOBAL_PARTS",
    "NO_BONUS",
    "BonusVecEnv",
    "IntrinsicReward",
    "attach_bonus",
    "bonus_options",
    "check_bonus",
    "check_bonus_fits",
    "make_bonus",
]
