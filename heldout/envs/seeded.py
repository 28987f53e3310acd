"""Procedurally generated gymnasium envs whose level is their reset seed.

Many procedurally generated gymnasium envs (MiniGrid, Chevalier-Boisvert et al. 2023; a toy env of
your own) generate their whole level from the seed of ``reset(seed=...)``. Such an env joins heldout's
level protocol (``LevelSplit``, leakage check, one episode per listed level) once it is described by a
:class:`SeededEnvSpec` and registered with :func:`register_seeded_env`:

* :class:`SeededLevelEnv` turns the raw env into a level env: each ``reset`` draws a level (a seed)
  from a :class:`~heldout.splits.LevelSet` with the env's own generator (seeded by
  ``reset(seed=...)``, never the global one) and resets the raw env with ``seed=level``;
  ``reset(options={"level": k})`` plays level ``k``; ``info["level_seed"]`` names the level at every
  step, and an ended episode reports ``info["level_complete"]``.
* :func:`level_fingerprints` hashes what identifies each level (by default its first observation),
  so that held-out levels identical to a training level can be found and dropped: seeds are not
  levels, and small generators repeat themselves (MiniGrid DoorKey-5x5 has 48 distinct levels).

This module imports numpy and gymnasium only (never torch or SB3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np

from heldout.registry import Registry
from heldout.splits import MAX_SEED, LevelSet, _check_seed


def first_observation_bytes(env: gymnasium.Env, obs: Any) -> bytes:
    """The default fingerprint: the bytes of the level's first observation."""
    if isinstance(obs, dict):
        return b"".join(np.asarray(obs[k]).tobytes() for k in sorted(obs))
    return np.asarray(obs).tobytes()


def terminated_with_reward(terminated: bool, truncated: bool, reward: float, info: dict[str, Any]) -> bool:
    """The default success test: the episode terminated (not truncated) on a positive reward."""
    return bool(terminated and reward > 0)


@dataclass(frozen=True)
class SeededEnvSpec:
    """What heldout needs to know of a procedurally generated env whose level is its reset seed.

    Attributes:
        name: Short heldout name, used by ``--env`` (e.g. ``"minigrid-doorkey-5x5"``).
        env_id: Gymnasium id that :func:`register_seeded_env` registers, ``heldout/<Name>-v<N>``;
            bump ``N`` when the generator changes, so old results stay tied to the old id.
        make: Builds the raw env (``make(render_mode=None)``), whose ``reset(seed=level)`` generates
            level ``level`` and whose steps are then determined by the level and the actions.
        fingerprint: ``fingerprint(env, first_obs) -> bytes``: what identifies the level just reset
            (default: the first observation). Two levels with equal bytes count as the same level.
        completed: ``completed(terminated, truncated, reward, info) -> bool`` for the last step of an
            episode: whether it completed its level (default: terminated on a positive reward).
        help: One line for ``heldout list``.
        agent_kwargs: Agent keyword arguments this env needs unless the config sets them (e.g.
            ``{"policy": "MlpPolicy"}`` for observations that are not images).
        reference: The paper or source of the env, for docs and ``heldout list``.
        missing: ``missing() -> str``: empty when the env can be built in this Python, else one line
            naming what is not installed and how to install it (an optional extra); every command
            checks it before it writes anything.
    """

    name: str
    env_id: str
    make: Callable[..., gymnasium.Env]
    fingerprint: Callable[[gymnasium.Env, Any], bytes] = first_observation_bytes
    completed: Callable[[bool, bool, float, dict[str, Any]], bool] = terminated_with_reward
    help: str = ""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    missing: Callable[[], str] = lambda: ""

    def __post_init__(self) -> None:
        if not self.env_id.startswith("heldout/") or "-v" not in self.env_id:
            raise ValueError(
                f"env_id {self.env_id!r} of seeded env {self.name!r} must look like 'heldout/<Name>-v<N>'"
            )


#: Seeded level envs by short name (``"minigrid-doorkey-5x5"``, ...).
SEEDED_ENVS: Registry[SeededEnvSpec] = Registry("seeded environment")


def upstream_factory(make: Callable[..., gymnasium.Env], upstream_id: str) -> Callable[..., gymnasium.Env]:
    """A spec's ``make`` for one upstream id: ``make(upstream_id, render_mode=...)``, named after the id
    (MiniGrid and MiniHack build all their envs from one function this way)."""

    def factory(render_mode: str | None = None) -> gymnasium.Env:
        return make(upstream_id, render_mode=render_mode)

    factory.__name__ = f"make_{upstream_id.replace('-', '_')}"
    return factory


def register_seeded_env(spec: SeededEnvSpec) -> SeededEnvSpec:
    """Registers ``spec`` under ``spec.name`` and its gymnasium id ``spec.env_id``.

    From then on ``heldout train --env <name>`` (once the module that calls this is imported),
    ``gymnasium.make(spec.env_id, levels=...)`` and the registry-parametrized tests know the env.

    Raises:
        ValueError: if the name is taken.
    """
    SEEDED_ENVS.register(spec.name, spec, help=spec.help)
    _register_gymnasium_id(spec)
    return spec


def _register_gymnasium_id(spec: SeededEnvSpec) -> None:
    if spec.env_id not in gymnasium.registry:
        gymnasium.register(id=spec.env_id, entry_point=make_seeded_env, kwargs={"name": spec.name})


def register_seeded_ids() -> None:
    """Registers the gymnasium id of every registered seeded env (idempotent)."""
    for name in SEEDED_ENVS.names():
        _register_gymnasium_id(SEEDED_ENVS.get(name))


def _as_levels(levels: LevelSet | range | Sequence[int] | str | None) -> LevelSet | None:
    return None if levels is None else LevelSet.parse(levels)


class SeededLevelEnv(gymnasium.Env):
    """A procedurally generated env whose level is its reset seed, as a level env.

    ``reset(seed=s)`` seeds this env's generator (as every gymnasium env); each reset then draws a
    level from ``levels`` (every seed ``0 <= level < 2**31 - 1`` when ``None``) and resets the raw env
    with ``seed=level``, so a level always plays the same way under the same actions.
    ``reset(options={"level": k})`` plays level ``k``. With a ``level_sampler``
    (:mod:`heldout.envs.level_samplers`, e.g. PLR) every reset without an explicit level asks it
    for the next level of ``slot`` (after reporting the ended episode), so that SB3's
    ``DummyVecEnv`` auto-resets consult the sampler too.

    Args:
        name: A registered seeded env (:data:`SEEDED_ENVS`).
        levels: The levels each reset draws from: a range, an explicit list, or ``None``.
        render_mode: Passed to the raw env.
        level_sampler: Picks each next level instead of ``levels`` (shared by all slots of a vector env).
        slot: This env's slot in its vector env, as the sampler knows it.

    A pickled env leaves its sampler out (one sampler serves many envs and belongs to the run):
    whoever unpickles it sets ``level_sampler`` again (:mod:`heldout.protocol.checkpoint` does).

    Every step's ``info`` has ``level_seed``; the last step of an episode also has
    ``level_complete`` (the spec's ``completed``).
    """

    def __init__(
        self,
        name: str,
        levels: LevelSet | range | Sequence[int] | str | None = None,
        render_mode: str | None = None,
        level_sampler: Any = None,
        slot: int = 0,
    ) -> None:
        self.seeded_spec = SEEDED_ENVS.get(name)
        self.level_sampler = level_sampler
        self.slot = int(slot)
        self._ep_return = 0.0
        self._ep_length = 0
        self.name = name
        self.levels = _as_levels(levels)
        self.env = self.seeded_spec.make(render_mode=render_mode)
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self.metadata = dict(getattr(self.env, "metadata", {}) or {})
        self.render_mode = render_mode
        self._level = -1

    @property
    def level(self) -> int:
        """The level being played (-1 before the first reset)."""
        return self._level

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        level = options.pop("level", None)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; valid: 'level'")
        if level is not None:
            level = _check_seed(level, "level")
        elif self.level_sampler is not None:
            if self._level >= 0 and self._ep_length > 0:
                self.level_sampler.episode_done(self.slot, self._level, self._ep_return, self._ep_length)
            level = _check_seed(self.level_sampler.next_level(self.slot), "level")
        elif self.levels is None:
            level = int(self.np_random.integers(0, MAX_SEED))
        else:
            level = int(self.levels.sample(self.np_random, 1)[0])
        obs, info = self.env.reset(seed=level)
        self._level = level
        self._ep_return, self._ep_length = 0.0, 0
        return obs, {**info, "level_seed": level}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._level < 0:
            raise RuntimeError("call reset() before step()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ep_return += float(reward)
        self._ep_length += 1
        info = {**info, "level_seed": self._level}
        if terminated or truncated:
            info["level_complete"] = bool(
                self.seeded_spec.completed(bool(terminated), bool(truncated), float(reward), info)
            )
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> Any:
        return self.env.render()

    def __getstate__(self) -> dict[str, Any]:
        # the spec (whose ``make`` may be a local function) is looked up again by name on unpickling
        state = dict(self.__dict__)
        state["level_sampler"] = None
        state.pop("seeded_spec", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.seeded_spec = SEEDED_ENVS.get(self.name)

    def close(self) -> None:
        self.env.close()


def make_seeded_env(
    name: str, levels: LevelSet | range | Sequence[int] | str | None = None, render_mode: str | None = None
) -> SeededLevelEnv:
    """The gymnasium entry point of every seeded env id: ``SeededLevelEnv(name, levels, render_mode)``."""
    return SeededLevelEnv(name, levels=levels, render_mode=render_mode)


def level_fingerprints(name: str, levels: Sequence[int]) -> list[str]:
    """A hash of what identifies each level (the spec's ``fingerprint``), in the order of ``levels``.

    Two seeds with the same fingerprint generate the same level. For MiniGrid the fingerprint is the
    full grid encoding with the agent's position and direction and the mission, so it sees the whole
    level, not just the agent's view.
    """
    spec = SEEDED_ENVS.get(name)
    env = spec.make()
    out = []
    try:
        for level in levels:
            obs, _ = env.reset(seed=_check_seed(level))
            out.append(hashlib.blake2b(spec.fingerprint(env, obs), digest_size=8).hexdigest())
    finally:
        env.close()
    return out


__all__ = [
    "SEEDED_ENVS",
    "SeededEnvSpec",
    "SeededLevelEnv",
    "first_observation_bytes",
    "level_fingerprints",
    "make_seeded_env",
    "register_seeded_env",
    "register_seeded_ids",
    "terminated_with_reward",
    "upstream_factory",
]
