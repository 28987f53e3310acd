"""MiniHack: NetHack navigation tasks whose level is their reset seed.

MiniHack (Samvelyan et al. 2021, "MiniHack the Planet: A Sandbox for Open-Ended Reinforcement Learning
Research", NeurIPS Datasets and Benchmarks; https://arxiv.org/abs/2109.13202) builds small NetHack
levels on the NetHack Learning Environment (NLE; Küttler et al. 2020, NeurIPS). heldout registers the
navigation tasks of Henaff, Jiang and Raileanu (ICML 2023, "A Study of Global and Episodic Bonuses for
Exploration in Contextual MDPs") whose layout is procedural, as seeded level envs
(:mod:`heldout.envs.seeded`): ``--env minihack-multiroom-n4`` and the gymnasium ids
``heldout/MiniHack-MultiRoom-N4-v0``, ... with the upstream task's actions, rewards and step limits.

**Levels.** NLE seeds a game once, at the next reset (``seed(core, disp, reseed)``), so every reset
here seeds NetHack's core and display RNGs with the level (``reseed=False``; MiniHack's own
``seeds=[...]`` does the same) and derives the moon phase from the seed (``fix_moon_phase``), not
from today's date. That fixes the layout of the des-file tasks (KeyRoom, Corridor: NetHack's level
generator draws rooms and corridors from the core RNG). The MultiRoom tasks draw their rooms with a
MiniGrid env first; MiniHack's ``seed`` cannot seed it under gymnasium 1.x (it calls the removed
``Env.seed``), so each reset seeds that MiniGrid env with the level too.

**Observation.** The 9x9 glyph crop centred on the agent (MiniHack's ``glyphs_crop``, as the
reference's crop network sees it), with each of NLE's 5,976 glyph ids mapped to one of
:data:`GLYPH_CLASSES` (floor, wall, open and closed door, stairs down (the goal), lava, object (a
key), monster, the agent, ...): ``uint8`` of shape ``(9, 9)`` with the true bounds ``[0, 13]``, so
SB3 does not take it for pixels and a flattening ``MlpPolicy`` trains on it, as on MiniGrid's view.
``info["agent_pos"]`` is the agent's map position ``(x, y)`` (NLE's ``blstats[0:2]``, the paper's
count key). Reaching the step limit (NLE's ``ABORTED``) is a truncation, not a termination.

**Identity of a level.** MultiRoom: the layout MiniGrid drew (the map of walls, doors, start and
goal that MiniHack turns into its des file). KeyRoom and Corridor: what NetHack shows at reset, the
whole 21x79 glyph map and the agent's position. That sees only the start room of a Corridor level:
two levels that start alike count as one and the held-out one is dropped (conservative: a training
level's copy is never kept).

``nle`` and ``minihack`` are the optional extra ``heldout[minihack]``; they are imported when an env
is built. Without them the names stay registered and every command that would build one says which
extra to install (:func:`missing`).
"""

from __future__ import annotations

import importlib.util
import warnings
from functools import cache
from typing import Any

import gymnasium
import numpy as np

from heldout.envs.seeded import SeededEnvSpec, register_seeded_env, upstream_factory

#: heldout name -> (upstream MiniHack id, one-line help).
MINIHACK_ENVS: dict[str, tuple[str, str]] = {
    "minihack-multiroom-n2": (
        "MiniHack-MultiRoom-N2-v0",
        "MiniHack MultiRoom: two random rooms joined by a door; reach the stairs (40 steps)",
    ),
    "minihack-multiroom-n4": (
        "MiniHack-MultiRoom-N4-v0",
        "MiniHack MultiRoom: four random rooms in a chain; reach the stairs (120 steps)",
    ),
    "minihack-multiroom-n6": (
        "MiniHack-MultiRoom-N6-v0",
        "MiniHack MultiRoom: six random rooms in a chain; reach the stairs (240 steps)",
    ),
    "minihack-keyroom-s5": (
        "MiniHack-KeyRoom-S5-v0",
        "MiniHack KeyRoom 5x5: pick up the key, unlock the side room, reach its stairs (200 steps)",
    ),
    "minihack-keyroom-s15": (
        "MiniHack-KeyRoom-S15-v0",
        "MiniHack KeyRoom 15x15: pick up the key, unlock the side room, reach its stairs (400 steps)",
    ),
    "minihack-corridor-r3": (
        "MiniHack-Corridor-R3-v0",
        "MiniHack Corridor: three random rooms joined by random corridors; reach the stairs (1000 steps)",
    ),
    "minihack-corridor-r5": (
        "MiniHack-Corridor-R5-v0",
        "MiniHack Corridor: five random rooms joined by random corridors (the ICML 2023 study's; 1000 steps)",
    ),
}

REFERENCE = (
    "Samvelyan et al. 2021, 'MiniHack the Planet: A Sandbox for Open-Ended Reinforcement Learning "
    "Research', NeurIPS Datasets and Benchmarks; Henaff, Jiang, Raileanu 2023, 'A Study of Global and "
    "Episodic Bonuses for Exploration in Contextual MDPs', ICML"
)

#: The optional extra that installs NLE and MiniHack.
EXTRA = "minihack"

#: What each cell of the observation holds: class name -> index.
GLYPH_CLASSES: dict[str, int] = {
    "dark": 0,  # solid rock, or not seen yet
    "floor": 1,  # room floor (lit or dark), corridor, doorway without a door, ice, air
    "wall": 2,  # walls and corners, iron bars, trees
    "open door": 3,
    "closed door": 4,  # closed or locked
    "stairs down": 5,  # the navigation tasks' goal (and ladders down)
    "stairs up": 6,
    "lava": 7,
    "water": 8,
    "trap": 9,
    "object": 10,  # e.g. KeyRoom's key
    "monster": 11,
    "agent": 12,  # the crop's centre
    "other": 13,  # other dungeon features (altar, fountain, ...) and effects (zaps, explosions)
}
MAX_INDEX = max(GLYPH_CLASSES.values())

#: NetHack 3.6's map symbols (``defsym.h``, the ``S_*`` order) by class; the rest of the map symbols
#: below the traps are "other".
_CMAP_CLASSES: dict[str, tuple[int, ...]] = {
    "dark": (0,),  # S_stone
    "wall": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 17, 18),  # S_vwall ... S_trwall, S_bars, S_tree
    "floor": (12, 19, 20, 21, 22, 33, 39),  # S_ndoor, S_room, S_darkroom, S_corr, S_litcorr, S_ice, S_air
    "open door": (13, 14),
    "closed door": (15, 16),
    "stairs up": (23, 25),
    "stairs down": (24, 26),
    "water": (32, 41),  # S_pool, S_water
    "lava": (34,),
}

#: NLE's end status of a step whose task was completed (``MiniHack.StepStatus.TASK_SUCCESSFUL``).
TASK_SUCCESSFUL = 2
#: NLE's end status of an episode cut at its step limit (``StepStatus.ABORTED``).
ABORTED = -1


def missing() -> str:
    """Empty if NLE and MiniHack import here; else one line naming what is missing and the extra to
    install (checked by every command before it writes anything)."""
    if any(importlib.util.find_spec(m) is None for m in ("nle", "minihack")):
        return (
            f"MiniHack needs nle and minihack, not both installed in this Python: install the '{EXTRA}' "
            f"extra in a venv of its own (pip install 'heldout[{EXTRA}]', or make test-minihack), on Linux "
            "with CPython 3.11 or 3.12 (nle pins gymnasium==1.2.0; docs/minihack.md)"
        )
    try:
        _import_minihack()
    except ImportError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return f"MiniHack envs: minihack does not import here ({first}); reinstall the '{EXTRA}' extra"
    return ""


@cache
def _import_minihack() -> None:
    with warnings.catch_warnings():  # minihack imports pkg_resources, which warns that it is deprecated
        warnings.simplefilter("ignore")
        import minihack  # noqa: F401  (registers the MiniHack-* ids)


@cache
def glyph_classes() -> np.ndarray:
    """The class (:data:`GLYPH_CLASSES`) of each NLE glyph id: ``uint8`` of length ``MAX_GLYPH + 1``
    (the last entry, for NLE's "no glyph", is "dark")."""
    from nle import nethack

    table = np.full(nethack.MAX_GLYPH + 1, GLYPH_CLASSES["other"], dtype=np.uint8)
    table[nethack.MAX_GLYPH] = GLYPH_CLASSES["dark"]
    cmap = {s: GLYPH_CLASSES[c] for c, symbols in _CMAP_CLASSES.items() for s in symbols}
    for glyph in range(nethack.MAX_GLYPH):
        if nethack.glyph_is_trap(glyph):
            table[glyph] = GLYPH_CLASSES["trap"]
        elif nethack.glyph_is_cmap(glyph):
            table[glyph] = cmap.get(nethack.glyph_to_cmap(glyph), GLYPH_CLASSES["other"])
        elif nethack.glyph_is_object(glyph):  # objects, statues and corpses
            table[glyph] = GLYPH_CLASSES["object"]
        elif nethack.glyph_is_monster(glyph) or nethack.glyph_is_invisible(glyph):
            table[glyph] = GLYPH_CLASSES["monster"]
    return table


class MiniHackLevelView(gymnasium.Wrapper):
    """A MiniHack task as a raw seeded env: ``reset(seed=level)`` plays level ``level``, observations
    are the classed glyph crop, a step limit is a truncation (see the module docstring).

    Args:
        env: The unwrapped MiniHack env, built with the keys ``glyphs``, ``glyphs_crop`` and ``blstats``.
    """

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        crop = env.observation_space["glyphs_crop"].shape
        self.observation_space = gymnasium.spaces.Box(0, MAX_INDEX, crop, np.uint8)
        self._classes = glyph_classes()
        self._centre = (crop[0] // 2, crop[1] // 2)
        #: The last raw observation (the glyph map and blstats), for the level's fingerprint.
        self.raw: dict[str, np.ndarray] = {}

    def _view(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        self.raw = raw
        view = self._classes[raw["glyphs_crop"]]
        view[self._centre] = GLYPH_CLASSES["agent"]
        return view

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "agent_pos": (int(self.raw["blstats"][0]), int(self.raw["blstats"][1]))}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        from nle.env.base import NLE

        level = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        game = self.env.unwrapped
        minigrid_env = getattr(game, "minigrid_env", None)
        if minigrid_env is not None:  # MultiRoom: the rooms come from this MiniGrid env's next reset
            minigrid_env.reset(seed=level)
        NLE.seed(game, level, level, False)  # NLE's seed, not MiniGridHack's (which breaks on gymnasium 1)
        raw, info = self.env.reset(seed=level)
        return self._view(raw), self._info(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        raw, reward, terminated, truncated, info = self.env.step(action)
        if terminated and int(info.get("end_status", 0)) == ABORTED:
            terminated, truncated = False, True
        return self._view(raw), float(reward), bool(terminated), bool(truncated), self._info(info)


def make_minihack(upstream_id: str, render_mode: str | None = None) -> gymnasium.Env:
    """The upstream MiniHack task as a seeded env with the classed 9x9 glyph crop as its observation.

    Raises:
        ModuleNotFoundError: naming the extra to install, if NLE or MiniHack is missing.
    """
    reason = missing()
    if reason:
        raise ModuleNotFoundError(reason)
    _import_minihack()
    with warnings.catch_warnings():  # MultiRoom's MiniGrid ids are "out of date" (MiniHack names v0)
        warnings.simplefilter("ignore", DeprecationWarning)
        env = gymnasium.make(
            upstream_id,
            observation_keys=("glyphs", "glyphs_crop", "blstats"),
            fix_moon_phase=True,
            render_mode=render_mode,
        )
    return MiniHackLevelView(env.unwrapped)


def layout_fingerprint(env: gymnasium.Env, obs: Any) -> bytes:
    """The level just reset: MultiRoom's MiniGrid layout, else NetHack's first glyph map and the
    agent's position (see the module docstring)."""
    game = env.unwrapped
    minigrid_env = getattr(game, "minigrid_env", None)
    if minigrid_env is not None:
        layout, start, goal, doors = game.get_env_map(minigrid_env)
        return repr((layout, start, goal, doors)).encode()
    raw = env.raw
    return raw["glyphs"].tobytes() + b"|" + np.asarray(raw["blstats"][:2], dtype=np.int64).tobytes()


def completed(terminated: bool, truncated: bool, reward: float, info: dict[str, Any]) -> bool:
    """Whether the episode completed its task: NLE's end status ``TASK_SUCCESSFUL``."""
    return bool(terminated and int(info.get("end_status", 0)) == TASK_SUCCESSFUL)


#: An MLP over the flattened 9x9 view (as for MiniGrid's symbolic view).
AGENT_KWARGS: dict[str, Any] = {"policy": "MlpPolicy"}


for _name, (_upstream, _help) in MINIHACK_ENVS.items():
    register_seeded_env(
        SeededEnvSpec(
            name=_name,
            env_id=f"heldout/{_upstream}",
            make=upstream_factory(make_minihack, _upstream),
            fingerprint=layout_fingerprint,
            completed=completed,
            help=f"{_help}; needs the '{EXTRA}' extra",
            agent_kwargs=AGENT_KWARGS,
            reference=REFERENCE,
            missing=missing,
        )
    )

__all__ = [
    "GLYPH_CLASSES",
    "MAX_INDEX",
    "MINIHACK_ENVS",
    "MiniHackLevelView",
    "completed",
    "glyph_classes",
    "layout_fingerprint",
    "make_minihack",
    "missing",
]
