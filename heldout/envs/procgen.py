"""The 16 Procgen games (Cobbe et al., 2020, "Leveraging Procedural Generation to Benchmark
Reinforcement Learning") as a fast vectorized env and as single gymnasium envs.

:class:`ProcgenVecEnv` wraps procgen's native core (:mod:`heldout.envs.procgen_native`, on
procgen-mirror or procgen-gym), which steps all its envs in one C call on its own threads, instead
of running many Python envs. It follows stable-baselines3's ``VecEnv`` API with gymnasium spaces
(``heldout.agents`` registers it as a virtual subclass of SB3's ``VecEnv``, so any SB3 algorithm
accepts it), without importing torch or SB3 itself.

Levels. A contiguous :class:`~heldout.splits.LevelSet` range is sampled by the core natively (no
cost). An explicit seed list, or a :class:`~heldout.envs.level_samplers.LevelSampler`, sets the next
level into a slot when its episode ends: a state taken from a one-env core built with
``start_level=k, num_levels=1`` and set into one slot of the vectorized core (procgen's per-env C
``set_state``, ~0.2 ms) plays level ``k`` there and leaves the other slots untouched.

Every episode end reports, in that slot's ``info``: ``episode`` (``r``, ``l``, ``t`` as SB3's
Monitor), ``level_seed`` (the level the episode was played on) and ``level_complete``. On other steps
``info["level_seed"]`` is the level being played.

Procgen resets episodes itself: the observation returned with ``done=True`` is the first frame of the
next episode (as in procgen's own gym interface); there is no ``terminal_observation``, and timeouts
count as terminal, as in every Procgen reference implementation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from heldout.envs.level_samplers import LevelSampler, UniformLevelSampler
from heldout.envs.procgen_native import NativeCore, exploration_level_seeds
from heldout.splits import MAX_SEED, LevelSet, _check_seed

PROCGEN_GAMES: tuple[str, ...] = (
    "bigfish",
    "bossfight",
    "caveflyer",
    "chaser",
    "climber",
    "coinrun",
    "dodgeball",
    "fruitbot",
    "heist",
    "jumper",
    "leaper",
    "maze",
    "miner",
    "ninja",
    "plunder",
    "starpilot",
)

#: procgen's distribution modes; "exploration" and "memory" exist only for some games.
DISTRIBUTION_MODES: tuple[str, ...] = ("easy", "hard", "extreme", "memory", "exploration")

#: The visual and rendering switches procgen accepts, with procgen's defaults.
VISUAL_OPTIONS: dict[str, bool] = {
    "use_backgrounds": True,
    "restrict_themes": False,
    "use_monochrome_assets": False,
    "use_generated_assets": False,
    "center_agent": True,
    "paint_vel_info": False,
}

#: Min-max normalisation constants (R_min, R_max) from openai/train-procgen
#: ``train_procgen/constants.py`` (see BASELINES.md): score = (R - R_min) / (R_max - R_min).
SCORE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "easy": {
        "bigfish": (1, 40),
        "bossfight": (0.5, 13),
        "caveflyer": (3.5, 12),
        "chaser": (0.5, 13),
        "climber": (2, 12.6),
        "coinrun": (5, 10),
        "dodgeball": (1.5, 19),
        "fruitbot": (-1.5, 32.4),
        "heist": (3.5, 10),
        "jumper": (1, 10),
        "leaper": (1.5, 10),
        "maze": (5, 10),
        "miner": (1.5, 13),
        "ninja": (3.5, 10),
        "plunder": (4.5, 30),
        "starpilot": (2.5, 64),
    },
    "hard": {
        "bigfish": (0, 40),
        "bossfight": (0.5, 13),
        "caveflyer": (2, 13.4),
        "chaser": (0.5, 14.2),
        "climber": (1, 12.6),
        "coinrun": (5, 10),
        "dodgeball": (1.5, 19),
        "fruitbot": (-0.5, 27.2),
        "heist": (2, 10),
        "jumper": (1, 10),
        "leaper": (1.5, 10),
        "maze": (4, 10),
        "miner": (1.5, 20),
        "ninja": (2, 10),
        "plunder": (3, 30),
        "starpilot": (1.5, 35),
    },
}

_STATE_CACHE_LEVELS = 4096


def check_game(game: str) -> str:
    """Returns ``game`` if it is a Procgen game, else raises KeyError with a suggestion."""
    if game not in PROCGEN_GAMES:
        import difflib

        close = difflib.get_close_matches(str(game), PROCGEN_GAMES, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"unknown Procgen game {game!r}{hint}; valid games: {', '.join(PROCGEN_GAMES)}")
    return game


#: The games that support procgen's "extreme" and "memory" modes (procgen ``src/game.cpp`` aborts the
#: whole process, uncatchably, for any other game).
_MODE_GAMES: dict[str, tuple[str, ...]] = {
    "extreme": ("chaser", "dodgeball", "leaper", "starpilot"),
    "memory": ("caveflyer", "dodgeball", "heist", "jumper", "maze", "miner"),
}


def check_distribution_mode(mode: str, game: str | None = None) -> str:
    """Returns ``mode`` if procgen knows it (for ``game``, if given), else raises ValueError naming the
    valid modes."""
    if mode not in DISTRIBUTION_MODES:
        raise ValueError(f"unknown distribution_mode {mode!r}; valid modes: {', '.join(DISTRIBUTION_MODES)}")
    if game is not None:
        if mode == "exploration":
            # procgen's "exploration" is one fixed level in hard mode and refuses start_level and
            # num_levels, which every heldout env passes: name the equivalent settings instead.
            seed = exploration_level_seeds().get(game)
            hint = (
                f"for procgen's exploration level of {game!r} pass distribution_mode='hard', levels=[{seed}]"
                if seed is not None
                else f"{game!r} has no exploration level"
            )
            raise ValueError(f"distribution_mode 'exploration' is not supported by heldout envs; {hint}")
        if mode in _MODE_GAMES and game not in _MODE_GAMES[mode]:
            valid = ["easy", "hard", *(m for m, games in _MODE_GAMES.items() if game in games)]
            raise ValueError(
                f"distribution_mode {mode!r} is not supported by {game!r}; valid modes for {game!r}: "
                f"{', '.join(valid)} ({mode!r} exists only for {', '.join(_MODE_GAMES[mode])})"
            )
    return mode


def check_options(options: dict[str, Any], what: str = "Procgen option") -> dict[str, bool]:
    """Procgen's visual switches checked: known names (:data:`VISUAL_OPTIONS`), each true or false.

    Raises:
        TypeError: naming an unknown option (and the valid ones) or a value that is not a boolean
            (``use_backgrounds='maybe'``, ``1``: procgen would read any of them as a switch).
    """
    import difflib

    unknown = sorted(set(options) - set(VISUAL_OPTIONS))
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), list(VISUAL_OPTIONS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(
            f"unknown {what}(s) {', '.join(map(repr, unknown))}{hint}; valid options: {', '.join(VISUAL_OPTIONS)}"
        )
    for key, value in options.items():
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{what} {key}={value!r} must be true or false")
    return {k: bool(v) for k, v in options.items()}


_check_options = check_options


def _as_levels(levels: LevelSet | range | Sequence[int] | str | None) -> LevelSet | None:
    if levels is None:
        return None
    return LevelSet.parse(levels)


class _LevelStates:
    """Builds and caches procgen states that start a given level (or range) in one env slot."""

    def __init__(self, game: str, distribution_mode: str, options: dict[str, bool]) -> None:
        self.game = game
        self.distribution_mode = distribution_mode
        self.options = options
        self._cache: dict[int, bytes] = {}

    def _state_of(self, start: int, num: int, rand_seed: int) -> bytes:
        if self.options.get("use_generated_assets"):
            # procgen cannot save a game's state with generated assets: it aborts the whole process.
            raise ValueError(
                "use_generated_assets=True works only with a level range (or all levels): procgen "
                "cannot save or restore the state of such a game, which explicit level lists, level "
                "samplers, set_level and bind_slot need"
            )
        core = NativeCore(
            num=1,
            env_name=self.game,
            start_level=start,
            num_levels=num,
            distribution_mode=self.distribution_mode,
            rand_seed=rand_seed,
            num_threads=0,
            **self.options,
        )
        try:
            return core.get_state(0)
        finally:
            core.close()

    def level(self, level: int) -> bytes:
        """A state whose current episode plays ``level`` (and whose later episodes too)."""
        level = _check_seed(level)  # procgen aborts the process on a negative start_level
        state = self._cache.get(level)
        if state is None:
            if len(self._cache) >= _STATE_CACHE_LEVELS:
                self._cache.pop(next(iter(self._cache)))
            state = self._state_of(level, 1, rand_seed=level)
            self._cache[level] = state
        return state

    def range(self, start: int, num: int, rand_seed: int) -> bytes:
        """A state that draws its levels from ``[start, start + num)`` on its own."""
        return self._state_of(start, num, rand_seed)


@dataclass
class EndedEpisodes:
    """The episodes that ended in one step of a :class:`ProcgenVecEnv`, one entry per slot.

    Attributes:
        slots: The slots whose episode ended.
        levels: The level each ended episode was played on.
        returns: Their undiscounted returns.
        lengths: Their lengths in steps.
        complete: Whether each completed its level (procgen's ``prev_level_complete``).
        time: Seconds since the env was built (SB3 Monitor's ``t``).
    """

    slots: np.ndarray
    levels: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    complete: np.ndarray
    time: float


class ProcgenVecEnv:
    """``num_envs`` copies of one Procgen game, stepped together by procgen's native core.

    Follows SB3's ``VecEnv`` API (``reset``, ``step_async``/``step_wait``/``step``, ``get_attr``, ...)
    with gymnasium spaces: observations are ``uint8`` arrays of shape ``(num_envs, 64, 64, 3)``,
    actions a ``Discrete(15)`` index per env.

    Args:
        game: One of :data:`PROCGEN_GAMES`.
        num_envs: Number of parallel envs (slots).
        levels: Which levels to play: ``None`` for procgen's full distribution, a
            :class:`~heldout.splits.LevelSet` (or ``range``, ``"0:200"``, a list of seeds). A range
            is sampled natively; an explicit list is sampled uniformly per episode.
        distribution_mode: ``"easy"``, ``"hard"``, ... (see :data:`DISTRIBUTION_MODES`).
        seed: Seed of the generator that seeds the core and the level sampler.
        level_sampler: Overrides how each next level is chosen (e.g. a fixed test list, PLR).
        num_threads: Threads procgen steps the envs on (default: procgen's 4).
        render_mode: ``None`` or ``"rgb_array"``.
        **options: Procgen's visual switches (:data:`VISUAL_OPTIONS`), e.g.
            ``use_backgrounds=False``.

    Example:
        >>> env = ProcgenVecEnv("coinrun", num_envs=4, levels=range(0, 200), seed=0)
        >>> obs = env.reset()
        >>> obs.shape
        (4, 64, 64, 3)
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        game: str,
        num_envs: int = 64,
        levels: LevelSet | range | Sequence[int] | str | None = None,
        distribution_mode: str = "easy",
        seed: int | None = None,
        level_sampler: LevelSampler | None = None,
        num_threads: int | None = None,
        render_mode: str | None = None,
        **options: bool,
    ) -> None:
        self.game = check_game(game)
        self.distribution_mode = check_distribution_mode(distribution_mode, self.game)
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: None, 'rgb_array'")
        self.num_envs = int(num_envs)
        self.levels = _as_levels(levels)
        self.options = _check_options(options)
        self.render_mode = render_mode
        self.num_threads = num_threads
        self._rng = np.random.default_rng(seed)
        if level_sampler is None and self.levels is not None and not self.levels.is_range:
            level_sampler = UniformLevelSampler(self.levels.to_list(), self._rng)
        self.level_sampler = level_sampler
        self._states = _LevelStates(self.game, self.distribution_mode, self.options)
        self.observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = spaces.Discrete(15)
        self.reset_infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        self._core: NativeCore | None = None
        self._actions: np.ndarray | None = None
        self._t0 = time.perf_counter()
        self._fresh = False  # True while the current core has not been stepped since it was built
        self._build_core()

    # -- core and levels ----------------------------------------------------------------------------
    def _build_core(self) -> None:
        if self._core is not None:
            self._core.close()
        if self.levels is not None and self.levels.is_range:
            start, num = self.levels.start, len(self.levels)
        elif self.levels is not None:
            start, num = self.levels.seeds[0], 1
        else:
            start, num = 0, 0
        kwargs: dict[str, Any] = {}
        if self.num_threads is not None:
            kwargs["num_threads"] = self.num_threads
        self._core = NativeCore(
            num=self.num_envs,
            env_name=self.game,
            start_level=start,
            num_levels=num,
            distribution_mode=self.distribution_mode,
            rand_seed=int(self._rng.integers(MAX_SEED)),
            render_mode=self.render_mode,
            **self.options,
            **kwargs,
        )
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._slot_level = self._core.info()["level_seed"].astype(np.int64)
        if self.level_sampler is not None:
            for slot in range(self.num_envs):
                level = self.level_sampler.next_level(slot)
                if level is not None:
                    self._set_state(slot, self._states.level(int(level)))
                    self._slot_level[slot] = int(level)
        self._obs = self._core.observe()[1]
        self._fresh = True

    def _set_state(self, slot: int, state: bytes) -> None:
        self._core.set_state(slot, state)

    def set_level(self, slot: int, level: int) -> np.ndarray:
        """Restarts ``slot`` on ``level`` now; returns the slot's new first observation.

        The slot keeps replaying ``level`` until a level sampler (if any) picks another.
        """
        self._check_slot(slot)
        level = _check_seed(level)
        self._set_state(slot, self._states.level(level))
        self._after_manual_set(slot, level)
        return self._obs[slot]

    def bind_slot(self, slot: int, levels: LevelSet | range | str) -> np.ndarray:
        """Restarts ``slot`` on a level range that the slot then samples from on its own.

        Only ranges can be bound natively; an explicit list needs a level sampler.
        """
        self._check_slot(slot)
        levels = LevelSet.parse(levels)
        if not levels.is_range:
            raise ValueError(
                f"bind_slot needs a contiguous range, got {levels.describe()}; "
                "use a level_sampler for explicit lists"
            )
        state = self._states.range(levels.start, len(levels), int(self._rng.integers(MAX_SEED)))
        self._set_state(slot, state)
        self._after_manual_set(slot, None)
        return self._obs[slot]

    def _after_manual_set(self, slot: int, level: int | None) -> None:
        self._obs = self._core.observe()[1]
        self._ep_return[slot] = 0.0
        self._ep_length[slot] = 0
        if level is None:
            level = int(self._core.info()["level_seed"][slot])
        self._slot_level[slot] = level

    def _check_slot(self, slot: int) -> None:
        if not 0 <= int(slot) < self.num_envs:
            raise IndexError(f"slot {slot} out of range; this env has slots 0..{self.num_envs - 1}")

    # -- checkpoints (heldout.protocol.checkpoint): plain arrays and JSON, no pickle ---------------
    def get_checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every slot's game (procgen's own state API: level, positions, generators) and this env's
        bookkeeping, as arrays and JSON; :meth:`set_checkpoint_state` puts them back."""
        if self.options.get("use_generated_assets"):
            raise ValueError("procgen cannot save the state of a game with use_generated_assets=True")
        states = [np.frombuffer(self._core.get_state(slot), dtype=np.uint8) for slot in range(self.num_envs)]
        sampler = self.level_sampler
        arrays = {
            "slot_states": np.concatenate(states),
            "slot_state_sizes": np.array([len(x) for x in states], dtype=np.int64),
            "ep_return": self._ep_return.copy(),
            "ep_length": self._ep_length.copy(),
            "slot_level": self._slot_level.copy(),
            "obs": self._obs.copy(),
        }
        info = {
            "rng": self._rng.bit_generator.state,
            "fresh": self._fresh,
            "reset_infos": getattr(self, "reset_infos", None),
            "sampler": sampler.get_state() if hasattr(sampler, "get_state") else None,
        }
        return arrays, info

    def set_checkpoint_state(self, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        """Restores what :meth:`get_checkpoint_state` saved into this env (built with the same settings)."""
        sizes = arrays["slot_state_sizes"]
        if len(sizes) != self.num_envs:
            raise ValueError(f"the checkpoint holds {len(sizes)} env slots, this env has {self.num_envs}")
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for slot in range(self.num_envs):
            self._set_state(slot, bytes(arrays["slot_states"][offsets[slot] : offsets[slot + 1]]))
        self._ep_return = arrays["ep_return"].copy()
        self._ep_length = arrays["ep_length"].copy()
        self._slot_level = arrays["slot_level"].copy()
        self._obs = arrays["obs"].copy()
        self._rng.bit_generator.state = info["rng"]
        self._fresh = bool(info["fresh"])
        if info.get("reset_infos") is not None:
            self.reset_infos = info["reset_infos"]
        if info.get("sampler") is not None:
            self.level_sampler.set_state(info["sampler"])  # type: ignore[union-attr]

    @property
    def current_levels(self) -> np.ndarray:
        """The level each slot is playing now."""
        return self._slot_level.copy()

    # -- VecEnv API ---------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        """Starts fresh episodes in every slot (a new native core); returns the observations.

        A core that has not been stepped since it was built (e.g. right after construction) is kept,
        so that the levels a sampler handed out at construction are not skipped.
        """
        if not self._fresh:
            self._build_core()
        self.reset_infos = [{"level_seed": int(lv)} for lv in self._slot_level]
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions).reshape(self.num_envs).astype(np.int32, copy=False)
        self._fresh = False
        self._core.act(actions)  # procgen steps asynchronously on its own threads

    def _advance(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, EndedEpisodes | None]:
        """Waits for the step :meth:`step_async` started and does the bookkeeping of every interface.

        Adds rewards to the running episode returns; for each slot whose episode ended, records its
        level, return, length and completion, asks the level sampler (if any) for the slot's next
        level and sets it. Returns ``(obs, rewards, dones, ended)``, ``ended`` None on a step where no
        episode ended. Per-env Python work happens only for the slots whose episode ended.
        """
        rew, obs, first = self._core.observe()
        self._ep_return += rew
        self._ep_length += 1
        done_slots = np.flatnonzero(first)
        ended = None
        if done_slots.size:
            raw = self._core.info()
            ended = EndedEpisodes(
                slots=done_slots,
                levels=self._slot_level[done_slots].copy(),
                returns=self._ep_return[done_slots].copy(),
                lengths=self._ep_length[done_slots].copy(),
                complete=raw["prev_level_complete"][done_slots].astype(bool),
                time=round(time.perf_counter() - self._t0, 6),
            )
            self._ep_return[done_slots] = 0.0
            self._ep_length[done_slots] = 0
            reset_any = False
            for slot, level, ret, length in zip(done_slots, ended.levels, ended.returns, ended.lengths):
                next_level = None
                if self.level_sampler is not None:
                    self.level_sampler.episode_done(int(slot), int(level), float(ret), int(length))
                    next_level = self.level_sampler.next_level(int(slot))
                if next_level is not None:
                    self._set_state(slot, self._states.level(int(next_level)))
                    self._slot_level[slot] = int(next_level)
                    reset_any = True
                else:
                    self._slot_level[slot] = int(raw["level_seed"][slot])
            if reset_any:
                obs = self._core.observe()[1]
        self._obs = obs
        return self._obs, rew, first, ended

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        levels = self._slot_level.copy()  # the level each slot played in this step
        obs, rew, first, ended = self._advance()
        infos: list[dict[str, Any]] = [{"level_seed": int(lv)} for lv in levels]
        if ended is not None:
            for i, slot in enumerate(ended.slots):
                info = infos[slot]
                info["episode"] = {"r": float(ended.returns[i]), "l": int(ended.lengths[i]), "t": ended.time}
                info["level_complete"] = bool(ended.complete[i])
                # what SB3's DummyVecEnv keeps: the new episodes' reset infos
                self.reset_infos[slot] = {"level_seed": int(self._slot_level[slot])}
        return obs, rew.astype(np.float32, copy=False), first.astype(bool), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Steps every slot with ``actions``; returns ``(obs, rewards, dones, infos)``."""
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        if self._core is not None:
            self._core.close()
            self._core = None

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Re-seeds the generator; the next :meth:`reset` builds its core from it."""
        self._rng = np.random.default_rng(seed)
        if isinstance(self.level_sampler, UniformLevelSampler):
            self.level_sampler.rng = self._rng
        self._fresh = False
        return [seed] * self.num_envs

    def set_options(self, options: list[dict] | dict | None = None) -> None:
        if options:
            raise ValueError("ProcgenVecEnv takes no reset options; pass settings to the constructor")

    def get_images(self) -> list[np.ndarray]:
        """The current frame of every slot (512x512 with render_mode='rgb_array', else 64x64)."""
        if self.render_mode == "rgb_array":
            return list(self._core.info()["rgb"])
        return list(self._obs)

    def render(self, mode: str | None = None) -> np.ndarray | None:
        """A tiled image of all slots' current frames."""
        images = np.asarray(self.get_images())
        n, h, w, c = images.shape
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
        canvas = np.zeros((rows * h, cols * w, c), dtype=images.dtype)
        for i, img in enumerate(images):
            r, q = divmod(i, cols)
            canvas[r * h : (r + 1) * h, q * w : (q + 1) * w] = img
        return canvas

    def _indices(self, indices: None | int | Sequence[int]) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, (int, np.integer)):
            return [int(indices)]
        return [int(i) for i in indices]

    def has_attr(self, attr_name: str) -> bool:
        return hasattr(self, attr_name)

    def get_attr(self, attr_name: str, indices: None | int | Sequence[int] = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: None | int | Sequence[int] = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: None | int | Sequence[int] = None, **kwargs: Any
    ) -> list[Any]:
        return [getattr(self, method_name)(*method_args, **kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: None | int | Sequence[int] = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    @property
    def unwrapped(self) -> ProcgenVecEnv:
        return self

    def getattr_depth_check(self, name: str, already_found: bool) -> str | None:
        if hasattr(self, name) and already_found:
            return f"{type(self).__module__}.{type(self).__name__}"
        return None

    def __repr__(self) -> str:
        levels = self.levels.describe() if self.levels is not None else "all"
        return (
            f"ProcgenVecEnv({self.game!r}, num_envs={self.num_envs}, levels={levels}, "
            f"distribution_mode={self.distribution_mode!r})"
        )

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class ProcgenEnv(gymnasium.Env):
    """One Procgen game as a single gymnasium env (``gymnasium.make("heldout/coinrun-v0")``).

    ``reset(seed=s)`` is reproducible; ``reset(options={"level": k})`` plays level ``k``. With
    ``levels`` set, each reset draws its level from them. As with every procgen interface, the
    observation returned with ``terminated=True`` is already the next episode's first frame.

    Args:
        game: One of :data:`PROCGEN_GAMES`.
        levels: ``None`` (full distribution), a range or an explicit list of seeds.
        distribution_mode: See :data:`DISTRIBUTION_MODES`.
        render_mode: ``None`` or ``"rgb_array"`` (512x512 frames).
        **options: Procgen's visual switches (:data:`VISUAL_OPTIONS`).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        game: str = "coinrun",
        levels: LevelSet | range | Sequence[int] | str | None = None,
        distribution_mode: str = "easy",
        render_mode: str | None = None,
        **options: bool,
    ) -> None:
        self.game = check_game(game)
        self.distribution_mode = check_distribution_mode(distribution_mode, self.game)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: None, 'rgb_array'")
        self.render_mode = render_mode
        self.levels = _as_levels(levels)
        self.options = _check_options(options)
        self.observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = spaces.Discrete(15)
        self._core: NativeCore | None = None
        self._level = -1
        self._ret = 0.0
        self._len = 0

    def _make_core(self, start: int, num: int, rand_seed: int) -> None:
        if self._core is not None:
            self._core.close()
        self._core = NativeCore(
            num=1,
            env_name=self.game,
            start_level=start,
            num_levels=num,
            distribution_mode=self.distribution_mode,
            rand_seed=rand_seed,
            num_threads=0,
            render_mode=self.render_mode,
            **self.options,
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        level = options.pop("level", None)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; valid: 'level'")
        rand_seed = int(self.np_random.integers(MAX_SEED))
        if level is not None:
            self._make_core(int(LevelSet.of([level]).seeds[0]), 1, rand_seed)
        elif self.levels is None:
            self._make_core(0, 0, rand_seed)
        elif self.levels.is_range:
            self._make_core(self.levels.start, len(self.levels), rand_seed)
        else:
            self._make_core(int(self.levels.sample(self.np_random, 1)[0]), 1, rand_seed)
        obs = self._core.observe()[1]
        self._level = int(self._core.info()["level_seed"][0])
        self._ret, self._len = 0.0, 0
        return obs[0], {"level_seed": self._level}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._core is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; valid actions are integers 0..14")
        self._core.act(np.array([action], dtype=np.int32))
        rew, obs, first = self._core.observe()
        reward = float(rew[0])
        self._ret += reward
        self._len += 1
        info: dict[str, Any] = {"level_seed": self._level}
        terminated = bool(first[0])
        if terminated:
            raw = self._core.info()
            info["level_complete"] = bool(raw["prev_level_complete"][0])
            info["episode"] = {"r": self._ret, "l": self._len}
            self._level = int(raw["level_seed"][0])
            self._ret, self._len = 0.0, 0
        return obs[0], reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        if self._core is None:
            return None
        if self.render_mode == "rgb_array":
            return self._core.info()["rgb"][0]
        return self._core.observe()[1][0]

    def close(self) -> None:
        if self._core is not None:
            self._core.close()
            self._core = None


def first_observations(
    game: str,
    levels: Sequence[int],
    distribution_mode: str = "easy",
    **options: bool,
) -> np.ndarray:
    """The first observation of each level, shape ``(len(levels), 64, 64, 3)``.

    Procgen levels are deterministic given their seed, so this is a fingerprint of the level's start.
    """
    check_game(game)
    check_distribution_mode(distribution_mode, game)
    opts = _check_options(options)
    out = np.empty((len(levels), 64, 64, 3), dtype=np.uint8)
    levels = [_check_seed(level) for level in levels]  # procgen aborts on a negative start_level
    for i, level in enumerate(levels):
        core = NativeCore(
            num=1,
            env_name=game,
            start_level=level,
            num_levels=1,
            distribution_mode=distribution_mode,
            rand_seed=int(level),
            num_threads=0,
            **opts,
        )
        out[i] = core.observe()[1][0]
        core.close()
    return out


def level_fingerprints(
    game: str, levels: Sequence[int], distribution_mode: str = "easy", **options: bool
) -> list[str]:
    """A hash of each level's first observation, rendered with the camera on the whole level.

    Two seeds with the same fingerprint generate the same level (procgen issue 100; e.g. maze easy
    seeds 0 and 273). The frame is taken with ``center_agent=False`` unless ``options`` says
    otherwise: agent-centred first frames show only part of a level and can coincide for levels that
    differ further on (coinrun easy 29 and 197, for example).
    """
    import hashlib

    options = {"center_agent": False, **options}
    frames = first_observations(game, levels, distribution_mode, **options)
    return [hashlib.blake2b(f.tobytes(), digest_size=8).hexdigest() for f in frames]


#: Procgen's visual variety switched off: what a level's *layout* is rendered with (one theme, no
#: backgrounds, monochrome assets) and the camera on the whole level.
LAYOUT_OPTIONS: dict[str, bool] = {
    "use_backgrounds": False,
    "restrict_themes": True,
    "use_monochrome_assets": True,
    "center_agent": False,
}


#: The seed of the action sequence a trajectory fingerprint plays (:func:`level_identities`).
FINGERPRINT_ACTION_SEED = 0

#: Games whose first frame does not show all that makes a level: fish, cars, enemies or ships
#: appear or move later, drawn from the level's own generator, or the level runs on past the
#: whole-level view. Their fingerprint adds the agent-centred frames along
#: :func:`fingerprint_action_sequences` (:func:`level_identities`; docs/levels.md gives the
#: validation that chose them). The other games are identified by their whole-level first frame.
TRAJECTORY_GAMES: tuple[str, ...] = ("bigfish", "leaper", "ninja", "plunder", "starpilot")

#: The length of each of the trajectory fingerprint's action sequences.
TRAJECTORY_STEPS = 100


def fingerprint_action_sequences(steps: int = TRAJECTORY_STEPS) -> np.ndarray:
    """The trajectory fingerprint's two fixed action sequences, shape ``(2, steps)``: one uniformly
    random, one drawn from up, right and up-right (which carries a platformer's agent through its
    level), both from a generator seeded with :data:`FINGERPRINT_ACTION_SEED`."""
    rng = np.random.default_rng(FINGERPRINT_ACTION_SEED)
    return np.stack([rng.integers(0, 15, steps), rng.choice([5, 7, 8], steps)]).astype(np.int32)


#: The identities a Procgen level has (docs/levels.md): its layout (visual variety off), its look.
IDENTITIES: tuple[str, ...] = ("layout", "look")


def identity_options(identity: str, **options: bool) -> dict[str, bool]:
    """The visual switches a level's ``identity`` is rendered with (the whole level in view).

    ``"layout"``: :data:`LAYOUT_OPTIONS`, whatever ``options`` say (procgen draws themes and
    backgrounds from the level's generator whether or not they are shown, so a seed builds the same
    layout under any visual switches); ``"look"``: ``options`` with ``center_agent=False``.
    """
    if identity == "layout":
        return {**LAYOUT_OPTIONS, "use_generated_assets": False, "paint_vel_info": False}
    if identity == "look":
        return {**_check_options(options), "center_agent": False}
    raise ValueError(f"unknown level identity {identity!r}; valid: {', '.join(IDENTITIES)}")


def identity_method(game: str, identity: str = "layout", **options: bool) -> str:
    """How :func:`level_identities` identifies a level of ``game``, in words (for records)."""
    opts = identity_options(identity, **options)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()) if VISUAL_OPTIONS.get(k) != v)
    text = f"{identity}: whole-level first frame ({shown or 'procgen defaults'})"
    if game in TRAJECTORY_GAMES and not opts.get("use_generated_assets"):
        text += f" + agent-centred frames along two fixed {TRAJECTORY_STEPS}-step action sequences"
    return text


def level_identities(
    game: str,
    levels: Sequence[int],
    distribution_mode: str = "easy",
    identity: str = "layout",
    **options: bool,
) -> list[str]:
    """The fingerprint of each level under ``identity``: equal fingerprints, the same level.

    ``"layout"`` compares what a level is made of, with visual variety off (:data:`LAYOUT_OPTIONS`);
    ``"look"`` also its skin, under the run's visual ``options``. The fingerprint hashes the first
    frame with the whole level in view, and, for the games of :data:`TRAJECTORY_GAMES`, the
    agent-centred frames along :func:`fingerprint_action_sequences` (with ``use_generated_assets``,
    whose games procgen cannot set into a slot, the first frame only). A level is a deterministic
    function of its seed, so the same level always has the same fingerprint: a fingerprint never
    misses a duplicate; it can only merge two levels that differ where it does not look (measured
    in docs/levels.md).
    """
    import hashlib

    opts = identity_options(identity, **options)
    whole = level_fingerprints(game, levels, distribution_mode, **opts)
    if game not in TRAJECTORY_GAMES or opts.get("use_generated_assets"):
        return whole
    actions = fingerprint_action_sequences()
    moving = trajectory_hashes(game, levels, actions, distribution_mode, **{**opts, "center_agent": True})
    return [hashlib.blake2b(f"{a}|{b}".encode(), digest_size=8).hexdigest() for a, b in zip(whole, moving)]


def fixed_action_sequences(count: int = 3, steps: int = 64, seed: int = 0) -> np.ndarray:
    """``count`` uniformly random action sequences of ``steps`` Procgen actions each, shape
    ``(count, steps)``, drawn from a generator seeded with ``seed`` (the same for every call)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 15, size=(int(count), int(steps)), dtype=np.int32)


def trajectory_hashes(
    game: str,
    levels: Sequence[int],
    actions: np.ndarray,
    distribution_mode: str = "easy",
    include_first: bool = True,
    batch: int = 64,
    **options: bool,
) -> list[str]:
    """A hash of the frames each level shows along the action sequences ``actions``.

    Each row of ``actions`` (shape ``(sequences, steps)``) is played from the level's start; the hash
    covers, per sequence, the first frame (if ``include_first``) and the frame after every step (an
    episode that ends restarts the same level). Levels are played ``batch`` at a time in one native
    core, each slot set to its level through procgen's state API (the slots of a batch step
    together); a level's hash does not depend on its batch or slot.

    Used as the identity of levels whose first frame does not show all that the agent must solve
    (:data:`FIRST_FRAME_GAMES`), and as the stronger check the first-frame fingerprint is validated
    against (docs/levels.md).
    """
    import hashlib

    check_game(game)
    check_distribution_mode(distribution_mode, game)
    opts = _check_options(options)
    levels = [_check_seed(level) for level in levels]
    acts = np.asarray(actions, dtype=np.int32)
    if acts.ndim == 1:
        acts = acts[None, :]
    hashers = [hashlib.blake2b(digest_size=8) for _ in levels]
    if not levels:
        return []
    states = _LevelStates(game, distribution_mode, opts)
    width = max(1, min(int(batch), len(levels)))
    core = NativeCore(
        num=width,
        env_name=game,
        start_level=0,
        num_levels=1,
        distribution_mode=distribution_mode,
        rand_seed=0,
        num_threads=0,
        **opts,
    )
    try:
        steps = acts.shape[1] + int(include_first)
        frames = np.empty((width, steps, 64, 64, 3), dtype=np.uint8)  # one sequence of every slot
        for lo in range(0, len(levels), width):
            chunk = levels[lo : lo + width]
            slot_states = [states.level(level) for level in chunk]
            for seq in acts:
                for slot, state in enumerate(slot_states):
                    core.set_state(slot, state)
                t = 0
                if include_first:
                    frames[:, 0] = core.observe()[1]
                    t = 1
                for action in seq:
                    core.act(np.full(width, action, dtype=np.int32))
                    frames[:, t] = core.observe()[1]
                    t += 1
                for slot in range(len(chunk)):
                    hashers[lo + slot].update(frames[slot].tobytes())
            states._cache.clear()
    finally:
        core.close()
    return [h.hexdigest() for h in hashers]
