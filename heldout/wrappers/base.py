"""Wrappers written once, applied to single gymnasium envs and to vectorized envs alike.

A heldout wrapper is a :class:`BatchWrapper`: its methods take a *batch* of rows (first axis: env
slot) together with the slot ids they belong to, and keep any per-episode state in arrays indexed by
slot. Two adapters then run the same object:

* :class:`SingleEnvAdapter`, a ``gymnasium.Wrapper``, feeds it batches of one row (slot 0);
* :class:`VecEnvAdapter`, with SB3's ``VecEnv`` API (and registered as a virtual ``VecEnv`` subclass
  by ``heldout.agents``), feeds it the whole batch of a vectorized env, e.g. the native Procgen env,
  which steps its 64 games in C++ and never as 64 Python envs.

:func:`apply_wrapper` picks the adapter from the env it is given. The wrapper author writes array code
once, and it runs at the vectorized env's speed (no per-env Python loop unless the author writes one).

Episode boundaries follow each API: a single gymnasium env resets explicitly; a ``VecEnv`` resets a
finished slot itself and returns the new episode's first observation, with the last one in
``info["terminal_observation"]``. The adapters turn both into calls of
``observation(obs, env_ids, new_episode, infos)``: rows whose ``new_episode`` is True start an episode
(reset per-episode state), the others continue one. A ``VecEnv``'s terminal observations are passed
first (as continuing rows of their finished episode), then the new episodes' first observations.

This module never imports torch or SB3.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
import yaml
from gymnasium import spaces

from heldout.registry import Registry
from heldout.safe_yaml import load_yaml

#: Float32 bytes of observation rows per ``observation`` call on a vectorized env (see
#: ``VecEnvAdapter._observe``): 16 Procgen frames.
CHUNK_BYTES = 1 << 20

#: What a wrapper changes; decides where the protocol applies a wrapper named for training.
KINDS: tuple[str, ...] = ("observation", "context", "reward", "recording")


@dataclass
class WrapperContext:
    """What a wrapper learns about the env it wraps, once, in :meth:`BatchWrapper.setup`.

    Attributes:
        observation_space: The single-env observation space it receives.
        action_space: The single-env action space.
        num_envs: Number of slots (1 for a single env).
        rng: Its own generator, derived from the run seed (never the global RNG).
        stage: ``"train"``, ``"eval"`` or ``"user"`` (applied by hand).
        output_dir: Where recording wrappers write files (the run folder's ``wrappers/`` or
            ``eval/``), or None.
        context_space: The env's :class:`~heldout.envs.contextual.space.ContextSpace` if it is
            contextual, else None.
    """

    observation_space: spaces.Space
    action_space: spaces.Space
    num_envs: int
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    stage: str = "user"
    output_dir: Path | None = None
    context_space: Any = None


class BatchWrapper:
    """Base class of heldout wrappers: batched, per-slot state, one definition for every env.

    Subclasses take their parameters as keyword arguments of ``__init__`` (so that
    ``--wrapper NAME:key=value`` can be checked against the signature), and override what they
    change:

    * :meth:`setup` to check the env and return the new observation space (default: unchanged);
    * :meth:`observation` to transform a batch of observations;
    * :meth:`reward` to transform a batch of rewards;
    * :meth:`on_step` to watch transitions (recording wrappers);
    * :meth:`close` to flush files.

    Attributes:
        kind: One of :data:`KINDS`. A wrapper named for training applies at evaluation too when it
            changes what the policy sees (``observation``, ``context``), but not when it changes the
            training signal (``reward``) or writes files (``recording``); a wrapper named for
            evaluation only applies there.
        name: The registered name (set by :func:`register`).
    """

    kind: ClassVar[str] = "observation"
    name: ClassVar[str] = ""

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        """Called once with the wrapped env's description; returns the observation space it produces.

        Raise TypeError / ValueError here, naming the env's space, if the wrapper cannot apply.
        """
        self.ctx = ctx
        return ctx.observation_space

    def observation(
        self, obs: Any, env_ids: np.ndarray, new_episode: np.ndarray, infos: Sequence[dict[str, Any]]
    ) -> Any:
        """Transforms a batch of observations.

        Args:
            obs: The rows' observations, first axis = rows (a dict of such arrays for Dict spaces).
            env_ids: The slot of each row (int array).
            new_episode: Whether each row is the first observation of an episode.
            infos: Each row's info dict (at a new episode: the reset info).

        Returns:
            The rows' new observations, in the space :meth:`setup` returned.
        """
        return obs

    def reward(self, reward: np.ndarray, env_ids: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        """Transforms a batch of rewards (float array, one per row)."""
        return reward

    def on_step(
        self,
        obs: Any,
        reward: np.ndarray,
        done: np.ndarray,
        env_ids: np.ndarray,
        infos: Sequence[dict[str, Any]],
    ) -> None:
        """Sees each step after the transforms (``obs``: before any reset of a finished slot)."""

    def on_reset(self, obs: Any, env_ids: np.ndarray, infos: Sequence[dict[str, Any]]) -> None:
        """Sees each episode's first (transformed) observation."""

    def close(self) -> None:
        """Flushes what the wrapper writes."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in getattr(self, "params", {}).items())
        return f"{type(self).__name__}({params})"


#: Registered wrappers: name -> BatchWrapper subclass.
WRAPPERS: Registry[type[BatchWrapper]] = Registry("wrapper")


def register(name: str, help: str = "") -> Any:
    """Class decorator: registers a :class:`BatchWrapper` subclass under ``name``.

    Example:
        >>> @register("negate-reward", help="multiplies rewards by -1")
        ... class NegateReward(BatchWrapper):
        ...     kind = "reward"
        ...     def reward(self, reward, env_ids, infos):
        ...         return -reward
    """

    def wrap(cls: type[BatchWrapper]) -> type[BatchWrapper]:
        if not (isinstance(cls, type) and issubclass(cls, BatchWrapper)):
            raise TypeError(f"{cls!r} is not a BatchWrapper subclass")
        if cls.kind not in KINDS:
            raise ValueError(
                f"wrapper {name!r} has unknown kind {cls.kind!r}; valid kinds: {', '.join(KINDS)}"
            )
        cls.name = name
        WRAPPERS.register(name, cls, help=help or (inspect.getdoc(cls) or "").split("\n")[0])
        return cls

    return wrap


# --------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class WrapperSpec:
    """A wrapper by name with its parameters, as written on the command line: ``NAME[:key=value,...]``.

    Values are YAML scalars (``true``, ``0.5``, ``[64, 64]``); ``key=[a, b]`` lists may hold commas.
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str | WrapperSpec | dict[str, Any]) -> WrapperSpec:
        """Parses ``"name:key=value,key2=value2"`` (or a ``{"name": ..., **params}`` dict) and checks
        the name and the parameter names against the registry; raises KeyError / ValueError naming
        the bad one and the valid ones."""
        if isinstance(text, WrapperSpec):
            spec = text
        elif isinstance(text, dict):
            data = dict(text)
            if "name" not in data:
                raise ValueError(f"a wrapper given as a mapping needs a 'name' key, got {text!r}")
            name = data.pop("name")
            spec = cls(str(name), tuple(sorted(data.items())))
        elif isinstance(text, str):
            name, _, rest = text.strip().partition(":")
            params = {}
            for item in _split_params(rest):
                key, sep, value = item.partition("=")
                key = key.strip()
                if not sep or not key:
                    raise ValueError(
                        f"wrapper {text!r}: parameters are key=value pairs separated by commas, got {item!r}"
                    )
                try:
                    params[key] = load_yaml(value) if value.strip() else ""
                except yaml.YAMLError:
                    params[key] = value
            spec = cls(name.strip(), tuple(sorted(params.items())))
        else:
            raise TypeError(f"a wrapper is 'NAME[:key=value,...]', got {text!r}")
        spec.check()
        return spec

    def check(self) -> None:
        """Raises KeyError for an unknown wrapper, ValueError for an unknown parameter."""
        wcls = WRAPPERS.get(self.name)
        valid = parameters(wcls)
        for key, _ in self.params:
            if key not in valid:
                import difflib

                close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"wrapper {self.name!r} has no parameter {key!r}{hint}; valid parameters: "
                    f"{', '.join(valid) or '(none)'}"
                )

    def build(self) -> BatchWrapper:
        """A new instance of the wrapper with these parameters."""
        wcls = WRAPPERS.get(self.name)
        kwargs = dict(self.params)
        try:
            wrapper = wcls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"wrapper {self}: {exc}") from None
        wrapper.params = kwargs  # type: ignore[attr-defined]
        return wrapper

    @property
    def kind(self) -> str:
        return WRAPPERS.get(self.name).kind

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_dump(v)}" for k, v in self.params)

    @property
    def slug(self) -> str:
        """A file-name-safe form, for split names (``distracting-background-mode=waves``)."""
        text = str(self).replace(":", "-").replace(",", "-").replace(" ", "")
        return "".join(c if c.isalnum() or c in "-_.=+" else "_" for c in text)


def spec_of(wrapper: BatchWrapper) -> str:
    """The ``NAME[:key=value,...]`` string that rebuilds ``wrapper`` (its registered name and params)."""
    if not wrapper.name:
        raise ValueError(f"{wrapper!r} is not registered (heldout.wrappers.register)")
    return str(WrapperSpec(wrapper.name, tuple(sorted(getattr(wrapper, "params", {}).items()))))


def parameters(wcls: type[BatchWrapper]) -> dict[str, Any]:
    """A wrapper class's parameters and their defaults (``inspect.Parameter.empty`` if required)."""
    sig = inspect.signature(wcls.__init__)
    return {
        n: p.default
        for n, p in sig.parameters.items()
        if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _dump(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def _split_params(text: str) -> list[str]:
    """Splits ``a=1,b=[2, 3]`` on the commas outside brackets."""
    out, depth, cur = [], 0, ""
    for c in text:
        if c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur)
    return [s for s in (x.strip() for x in out) if s]


def parse_specs(specs: Sequence[str | WrapperSpec | dict[str, Any]] | None) -> list[WrapperSpec]:
    """Parses a list of wrapper specs (see :meth:`WrapperSpec.parse`)."""
    return [WrapperSpec.parse(s) for s in (specs or [])]


# ------------------------------------------------------------------------------------ adapters


def _rows(obs: Any, idx: np.ndarray) -> Any:
    if isinstance(obs, dict):
        return {k: v[idx] for k, v in obs.items()}
    return obs[idx]


def _stack_one(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: np.asarray(v)[None] for k, v in obs.items()}
    return np.asarray(obs)[None]


def _unstack_one(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: v[0] for k, v in obs.items()}
    return obs[0]


class SingleEnvAdapter(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """Runs a :class:`BatchWrapper` on one gymnasium env (a batch of one row, slot 0).

    Args:
        env: The gymnasium env.
        wrapper: The wrapper (an instance, or a spec string such as ``"grayscale"``).
        seed: Seed of the wrapper's generator.
        stage: Recorded in the wrapper's :class:`WrapperContext`.
        output_dir: Where recording wrappers write.
    """

    def __init__(
        self,
        env: gymnasium.Env,
        wrapper: BatchWrapper | str,
        seed: int | None = 0,
        stage: str = "user",
        output_dir: str | Path | None = None,
    ) -> None:
        self.wrapper = WrapperSpec.parse(wrapper).build() if isinstance(wrapper, str) else wrapper
        gymnasium.utils.RecordConstructorArgs.__init__(
            self,
            wrapper=spec_of(self.wrapper),
            seed=seed,
            stage=stage,
            output_dir=None if output_dir is None else str(output_dir),
        )
        gymnasium.Wrapper.__init__(self, env)
        ctx = WrapperContext(
            observation_space=env.observation_space,
            action_space=env.action_space,
            num_envs=1,
            rng=np.random.default_rng(seed),
            stage=stage,
            output_dir=Path(output_dir) if output_dir is not None else None,
            context_space=getattr(env.unwrapped, "context_space", None),
        )
        self._ctx, self._seed = ctx, seed
        self.observation_space = self.wrapper.setup(ctx)
        self._ids = np.zeros(1, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Resets the env; a ``seed`` also reseeds the wrapper's generator (gymnasium's contract:
        the same seed gives the same first observation)."""
        if seed is not None:
            self._ctx.rng = _reseeded(self._seed, seed)
        obs, info = self.env.reset(seed=seed, options=options)
        out = self.wrapper.observation(_stack_one(obs), self._ids, np.ones(1, dtype=bool), [info])
        self.wrapper.on_reset(out, self._ids, [info])
        return _unstack_one(out), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        out = self.wrapper.observation(_stack_one(obs), self._ids, np.zeros(1, dtype=bool), [info])
        rew = self.wrapper.reward(np.array([reward], dtype=np.float64), self._ids, [info])
        done = np.array([terminated or truncated])
        self.wrapper.on_step(out, rew, done, self._ids, [info])
        return _unstack_one(out), float(rew[0]), terminated, truncated, info

    def close(self) -> None:
        self.wrapper.close()
        super().close()


class VecEnvAdapter:
    """Runs a :class:`BatchWrapper` on a vectorized env with SB3's ``VecEnv`` API, whole batches at once.

    Works on heldout's native :class:`~heldout.envs.procgen.ProcgenVecEnv` and on SB3's
    ``DummyVecEnv`` / ``SubprocVecEnv``. Attributes it does not define are looked up on the wrapped
    env (``venv``), as SB3's ``VecEnvWrapper`` does.

    Args:
        venv: The vectorized env.
        wrapper: The wrapper (an instance, or a spec string).
        seed: Seed of the wrapper's generator.
        stage: Recorded in the wrapper's :class:`WrapperContext`.
        output_dir: Where recording wrappers write.
    """

    def __init__(
        self,
        venv: Any,
        wrapper: BatchWrapper | str,
        seed: int | None = 0,
        stage: str = "user",
        output_dir: str | Path | None = None,
    ) -> None:
        self.venv = venv
        self.wrapper = WrapperSpec.parse(wrapper).build() if isinstance(wrapper, str) else wrapper
        self.num_envs = int(venv.num_envs)
        self.action_space = venv.action_space
        ctx = WrapperContext(
            observation_space=venv.observation_space,
            action_space=venv.action_space,
            num_envs=self.num_envs,
            rng=np.random.default_rng(seed),
            stage=stage,
            output_dir=Path(output_dir) if output_dir is not None else None,
            context_space=_vec_context_space(venv),
        )
        self._ctx, self._seed = ctx, seed
        self.observation_space = self.wrapper.setup(ctx)
        self._ids = np.arange(self.num_envs)
        self.reset_infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        self._actions: Any = None

    # -- the VecEnv API ------------------------------------------------------------------------
    def reset(self) -> Any:
        obs = self.venv.reset()
        infos = list(getattr(self.venv, "reset_infos", None) or [{} for _ in range(self.num_envs)])
        out = self._observe(obs, np.ones(self.num_envs, dtype=bool), infos)
        self.wrapper.on_reset(out, self._ids, infos)
        self.reset_infos = infos
        return out

    def _observe(self, obs: Any, new_episode: np.ndarray, infos: list[dict[str, Any]]) -> Any:
        """The wrapper's observation of every slot, in chunks of :data:`CHUNK_BYTES` of float32 per
        call: elementwise numpy on a whole 64-frame batch spills its temporaries out of the CPU's
        caches, and cache-sized chunks are about twice as fast (``heldout bench wrappers``)."""
        n = self.num_envs
        if isinstance(obs, dict) or n == 1:
            return self.wrapper.observation(obs, self._ids, new_episode, infos)
        rows = max(1, CHUNK_BYTES // max(1, 4 * int(np.prod(obs.shape[1:]))))
        if rows >= n:
            return self.wrapper.observation(obs, self._ids, new_episode, infos)
        parts = [
            self.wrapper.observation(
                obs[i : i + rows], self._ids[i : i + rows], new_episode[i : i + rows], infos[i : i + rows]
            )
            for i in range(0, n, rows)
        ]
        return np.concatenate(parts, axis=0)

    def step_async(self, actions: Any) -> None:
        self.venv.step_async(actions)

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        dones = np.asarray(dones, dtype=bool)
        infos = [dict(i) for i in infos]
        finished = np.flatnonzero(dones)
        term_out = None
        if len(finished):
            # terminal observations of finished episodes first, as continuing rows of those episodes
            term = [infos[i].get("terminal_observation") for i in finished]
            if all(t is not None for t in term):
                if isinstance(term[0], dict):
                    batch: Any = {k: np.stack([t[k] for t in term]) for k in term[0]}
                else:
                    batch = np.stack(term)
                term_out = self.wrapper.observation(
                    batch, finished, np.zeros(len(finished), dtype=bool), [infos[i] for i in finished]
                )
                for j, i in enumerate(finished):
                    infos[i]["terminal_observation"] = _rows(term_out, j)
        reset_infos = list(getattr(self.venv, "reset_infos", None) or [{} for _ in range(self.num_envs)])
        row_infos = [reset_infos[i] if dones[i] else infos[i] for i in range(self.num_envs)]
        out = self._observe(obs, dones, row_infos)
        rewards = self.wrapper.reward(np.asarray(rewards, dtype=np.float64), self._ids, infos)
        rewards = np.asarray(rewards, dtype=np.float32)
        # on_step sees each slot's last observation of the step: the terminal one for finished slots
        seen = out if term_out is None else _replace_rows(out, finished, term_out)
        self.wrapper.on_step(seen, rewards, dones, self._ids, infos)
        if len(finished):
            self.wrapper.on_reset(_rows(out, finished), finished, [reset_infos[i] for i in finished])
        self.reset_infos = reset_infos
        return out, rewards, dones, infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, list[dict]]:
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        self.wrapper.close()
        self.venv.close()

    def render(self, mode: str | None = None) -> Any:
        return self.venv.render() if mode is None else self.venv.render(mode)

    def get_images(self) -> Any:
        return self.venv.get_images()

    def seed(self, seed: int | None = None) -> Any:
        """Seeds the wrapped env and reseeds the wrapper's generator from ``seed``."""
        if seed is not None:
            self._ctx.rng = _reseeded(self._seed, seed)
        return self.venv.seed(seed)

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return self.venv.get_attr(attr_name, indices)

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        return self.venv.set_attr(attr_name, value, indices)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return self.venv.env_method(method_name, *args, indices=indices, **kwargs)

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return self.venv.env_is_wrapped(wrapper_class, indices)

    def set_options(self, options: Any = None) -> None:
        if hasattr(self.venv, "set_options"):
            self.venv.set_options(options)

    @property
    def unwrapped(self) -> Any:
        return getattr(self.venv, "unwrapped", self.venv)

    def getattr_depth_check(self, name: str, already_found: bool) -> str | None:
        # SB3's VecEnvWrapper protocol: which wrapper in the stack defines ``name``
        if name in self.__dict__ and already_found:
            return f"{type(self).__module__}.{type(self).__name__}"
        if hasattr(self.venv, "getattr_depth_check"):
            return self.venv.getattr_depth_check(name, already_found or name in self.__dict__)
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "venv":
            raise AttributeError(name)
        return getattr(self.venv, name)

    def __repr__(self) -> str:
        return f"VecEnvAdapter({self.wrapper!r}, {self.venv!r})"


def _reseeded(wrapper_seed: int | None, seed: int) -> np.random.Generator:
    """The wrapper's generator after a reseed: a function of its own seed and the new one."""
    return np.random.default_rng([int(wrapper_seed or 0) & 0xFFFFFFFF, int(seed) & 0xFFFFFFFF])


def _replace_rows(obs: Any, idx: np.ndarray, rows: Any) -> Any:
    if isinstance(obs, dict):
        out = {k: v.copy() for k, v in obs.items()}
        for k in out:
            out[k][idx] = rows[k]
        return out
    out = np.array(obs, copy=True)
    out[idx] = rows
    return out


def _vec_context_space(venv: Any) -> Any:
    try:
        return venv.get_attr("context_space", [0])[0]
    except Exception:  # noqa: BLE001 - not a contextual env, or an env without get_attr
        return None


def is_vec_env(env: Any) -> bool:
    """Whether ``env`` follows SB3's ``VecEnv`` API (has ``num_envs`` and ``step_async``)."""
    return hasattr(env, "num_envs") and hasattr(env, "step_async") and hasattr(env, "step_wait")


def apply_wrapper(
    env: Any,
    wrapper: BatchWrapper | WrapperSpec | str,
    seed: int | None = 0,
    stage: str = "user",
    output_dir: str | Path | None = None,
) -> Any:
    """Wraps ``env`` (a gymnasium env or a ``VecEnv``) in ``wrapper``, picking the adapter.

    Example:
        >>> import gymnasium
        >>> env = apply_wrapper(gymnasium.make("CartPole-v1"), "reward-scale:scale=0.1")
        >>> env.reset(seed=0)[0].shape
        (4,)
    """
    if isinstance(wrapper, (str, WrapperSpec, dict)):
        wrapper = WrapperSpec.parse(wrapper).build()
    if is_vec_env(env):
        return VecEnvAdapter(env, wrapper, seed=seed, stage=stage, output_dir=output_dir)
    if isinstance(env, gymnasium.Env):
        return SingleEnvAdapter(env, wrapper, seed=seed, stage=stage, output_dir=output_dir)
    raise TypeError(f"cannot wrap {env!r}: give a gymnasium.Env or a VecEnv (SB3 API)")


def apply_wrappers(
    env: Any,
    specs: Sequence[str | WrapperSpec | dict[str, Any]] | None,
    seed: int | None = 0,
    stage: str = "user",
    output_dir: str | Path | None = None,
) -> Any:
    """Applies each wrapper of ``specs`` in order (the first is innermost). Each gets its own
    generator, spawned from ``seed`` and its position, so adding a wrapper never changes another's draws."""
    base = np.random.SeedSequence(0 if seed is None else int(seed) & 0xFFFFFFFF, spawn_key=(0x57A9,))
    for i, spec in enumerate(parse_specs(specs)):
        child = int(np.random.SeedSequence(base.entropy, spawn_key=(*base.spawn_key, i)).generate_state(1)[0])
        env = apply_wrapper(env, spec, seed=child, stage=stage, output_dir=output_dir)
    return env


def applies_at(kind: str, stage: str, eval_only: bool) -> bool:
    """Whether a wrapper of ``kind`` named for training (``eval_only=False``) or for evaluation only
    applies at ``stage`` (``"train"`` or ``"eval"``); see :attr:`BatchWrapper.kind`."""
    if eval_only:
        return stage == "eval"
    if stage == "train":
        return True
    return kind in ("observation", "context")
