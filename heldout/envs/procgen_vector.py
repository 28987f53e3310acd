"""A native gymnasium ``VectorEnv`` over procgen's core: ``gymnasium.make_vec("heldout/coinrun-v0", 64)``.

gymnasium builds a vector of single envs (``SyncVectorEnv``) for an id without a vector entry point:
64 Python envs, each with a one-env procgen core, stepped one after another. The ids
``heldout/<game>-v0`` register :class:`ProcgenVectorEnv` as their vector entry point instead: one
native core steps every env in one C call on its own threads (the engine of
:class:`~heldout.envs.procgen.ProcgenVecEnv`, with the same level lists, level samplers and
``info["level_seed"]``), and the step does no per-env Python work except for envs whose episode
ended.

Semantics, as in every Procgen interface: an env resets itself in the step that ends its episode
(gymnasium's ``AutoresetMode.SAME_STEP``): the observation returned with ``terminated=True`` is the
next episode's first frame. Procgen does not expose the last frame of an episode, so ``info`` has no
``final_obs``; timeouts count as terminal (``truncated`` is always False), as in the reference
implementations, so there is nothing to bootstrap from it.

``info`` is gymnasium's vector form, a dict of arrays with ``_key`` masks: ``level_seed`` (every
env, every step: the level the step was played on), and for envs whose episode ended
``level_complete`` and ``next_level_seed`` (the level the new episode plays). Episode returns and
lengths come from gymnasium's own ``gymnasium.wrappers.vector.RecordEpisodeStatistics``, as in
cleanrl (the env does not add an ``episode`` entry of its own, which that wrapper would refuse).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from heldout.envs.level_samplers import LevelSampler
from heldout.envs.procgen import ProcgenVecEnv
from heldout.splits import LevelSet


class ProcgenVectorEnv(VectorEnv):
    """``num_envs`` copies of one Procgen game as a gymnasium ``VectorEnv``, on one native core.

    Args:
        game: One of the 16 Procgen games.
        num_envs: Number of parallel envs.
        levels: ``None`` (procgen's full distribution), a range (``"0:200"``, ``range(0, 200)``,
            a :class:`~heldout.splits.LevelSet`), sampled natively, or an explicit list of seeds,
            sampled uniformly per episode.
        distribution_mode: ``"easy"``, ``"hard"``, ...
        level_sampler: Chooses each next level (e.g. a fixed list, PLR); overrides ``levels``' sampling.
        num_threads: Threads procgen steps the envs on (procgen's default: 4).
        render_mode: ``None`` or ``"rgb_array"``.
        **options: Procgen's visual switches, e.g. ``use_backgrounds=False``.

    Example:
        >>> import gymnasium, heldout
        >>> envs = gymnasium.make_vec("heldout/coinrun-v0", num_envs=8, levels="0:200")
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape, info["level_seed"].shape
        ((8, 64, 64, 3), (8,))
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        game: str = "coinrun",
        num_envs: int = 64,
        levels: LevelSet | range | Sequence[int] | str | None = None,
        distribution_mode: str = "easy",
        level_sampler: LevelSampler | None = None,
        num_threads: int | None = None,
        render_mode: str | None = None,
        **options: bool,
    ) -> None:
        self._settings = dict(
            game=game,
            num_envs=num_envs,
            levels=levels,
            distribution_mode=distribution_mode,
            level_sampler=level_sampler,
            num_threads=num_threads,
            render_mode=render_mode,
            **options,
        )
        # Checked now (bad settings fail here, without the sampler); the env itself is built by the
        # first reset, from its seed, so a level sampler hands out its first levels only once.
        probe = ProcgenVecEnv(seed=0, **{**self._settings, "level_sampler": None, "num_envs": 1})
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        self.venv: ProcgenVecEnv | None = None
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (self.num_envs, 64, 64, 3), np.uint8)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, 15, dtype=np.int64))
        self._mask_all = np.ones(self.num_envs, dtype=bool)

    @property
    def level_sampler(self) -> LevelSampler | None:
        """The level sampler choosing each next level (None: procgen's own range, or uniform)."""
        return self.venv.level_sampler if self.venv is not None else self._settings["level_sampler"]

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts fresh episodes in every env; ``seed`` (an int) makes the levels and the game reproducible.

        Procgen has one generator for its whole core, so a list of per-env seeds is refused.
        """
        if options:
            raise ValueError(
                f"ProcgenVectorEnv takes no reset options, got {sorted(options)}; pass levels, a "
                "level_sampler or visual switches to the constructor"
            )
        if isinstance(seed, list | tuple | np.ndarray):
            raise ValueError(
                "ProcgenVectorEnv takes one int seed for all its envs (procgen seeds its whole core "
                f"from one generator), got a sequence of {len(seed)}"
            )
        if self.venv is None:
            self.venv = ProcgenVecEnv(seed=None if seed is None else int(seed), **self._settings)
        elif seed is not None:
            self.venv.seed(int(seed))
        obs = self.venv.reset()
        return obs, {"level_seed": self.venv.current_levels, "_level_seed": self._mask_all.copy()}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps every env; returns ``(obs, rewards, terminations, truncations, info)`` (module docstring)."""
        if self.venv is None:
            raise RuntimeError("call reset() before step()")
        levels = self.venv.current_levels
        self.venv.step_async(actions)
        obs, rew, first, ended = self.venv._advance()
        info: dict[str, Any] = {"level_seed": levels, "_level_seed": self._mask_all.copy()}
        if ended is not None:
            mask = first.astype(bool)
            complete = np.zeros(self.num_envs, dtype=bool)
            complete[ended.slots] = ended.complete
            info["level_complete"], info["_level_complete"] = complete, mask
            nxt = np.where(mask, self.venv.current_levels, 0)
            info["next_level_seed"], info["_next_level_seed"] = nxt, mask
        return (
            obs.copy(),
            rew.astype(np.float64),
            first.astype(bool),
            np.zeros(self.num_envs, dtype=bool),
            info,
        )

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Each env's frame (512x512 with ``render_mode="rgb_array"``)."""
        if self.render_mode is None or self.venv is None:
            return None
        return tuple(self.venv.get_images())

    def close_extras(self, **kwargs: Any) -> None:
        if self.venv is not None:
            self.venv.close()


def make_procgen_vector(num_envs: int = 1, **kwargs: Any) -> ProcgenVectorEnv:
    """The vector entry point of ``heldout/<game>-v0`` (``gymnasium.make_vec``'s keywords, ``game`` from
    the id); ``max_episode_steps`` is refused (procgen's games end their episodes themselves)."""
    if kwargs.pop("max_episode_steps", None) is not None:
        raise ValueError("Procgen games end their own episodes; max_episode_steps is not supported")
    return ProcgenVectorEnv(num_envs=num_envs, **kwargs)


__all__ = ["ProcgenVectorEnv", "make_procgen_vector"]
