"""The one door to procgen's native library (``libenv``): nothing else in heldout imports a procgen package.

Two packages ship the same C++ game code (procgen 0.10.7) with different Python around it:

- ``procgen-mirror`` (module ``procgen``): wheels for CPython 3.11/3.12, NumPy < 2, through ``gym3``'s
  cffi ``CEnv`` (and ``gym`` 0.26 pulled in beside it);
- ``procgen-gym`` (module ``procgen_gym``): wheels for CPython 3.13, NumPy 2, its own ctypes loader
  of ``libenv`` (no ``gym``, no ``gym3``).

:class:`NativeCore` is a vectorised native env on whichever is installed (``procgen`` first): act,
observe, the info buffers and procgen's per-slot ``get_state``/``set_state``, the calls heldout makes.
``benchmarks/procgen_backends.py`` and ``tests/envs/test_procgen_backends.py`` check that both
produce the same levels, frames and states bit for bit (docs/install.md).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
from typing import Any

import numpy as np

#: The largest serialized game state procgen writes (``MAX_STATE_SIZE`` in both packages).
MAX_STATE_BYTES = 2**20

#: The distribution packages that provide the native library, by module name, in order of preference.
BACKENDS: dict[str, str] = {"procgen": "procgen-mirror", "procgen_gym": "procgen-gym"}

_backend: str | None = None


def backend() -> str:
    """The module that provides procgen's native library here: ``"procgen"`` or ``"procgen_gym"``.

    Raises:
        ImportError: Neither is installed (naming what to install for which Python).
    """
    global _backend
    if _backend is None:
        import importlib.util

        found = next((m for m in BACKENDS if importlib.util.find_spec(m) is not None), None)
        if found is None:
            raise ImportError(
                "Procgen needs procgen-mirror (Python 3.11/3.12) or procgen-gym (Python 3.13); "
                "reinstall heldout (pip install heldout) to get the one for this Python"
            )
        if found == "procgen":
            import heldout  # noqa: F401  (imports gym quietly before procgen's gym3 does)
        _backend = found
    return _backend


def backend_version() -> str:
    """The installed backend as ``<distribution> <version>``, e.g. ``procgen-gym 0.1.1``."""
    dist = BACKENDS[backend()]
    return f"{dist} {importlib.metadata.version(dist)}"


def exploration_level_seeds() -> dict[str, int]:
    """procgen's fixed level of each game's ``exploration`` mode (the same table in both packages)."""
    if backend() == "procgen":
        from procgen.env import EXPLORATION_LEVEL_SEEDS
    else:
        from procgen_gym.env import EXPLORATION_LEVEL_SEEDS
    return dict(EXPLORATION_LEVEL_SEEDS)


class NativeCore:
    """``num`` envs of one Procgen game in one native ``libenv`` env, stepped together on its threads.

    Args:
        num: Number of env slots.
        env_name: The game.
        start_level: First level seed of the range the slots sample from.
        num_levels: Size of that range (0: all levels).
        distribution_mode: ``"easy"``, ``"hard"``, ``"extreme"`` or ``"memory"``.
        rand_seed: Seeds the core's level sampling.
        num_threads: Threads the slots step on (``None``: procgen's default, 4; 0: the caller's).
        render_mode: ``None`` or ``"rgb_array"`` (512x512 frames in ``info()["rgb"]``).
        **options: procgen's visual switches (``use_backgrounds`` ...), booleans.
    """

    def __init__(
        self,
        num: int,
        env_name: str,
        start_level: int,
        num_levels: int,
        distribution_mode: str,
        rand_seed: int,
        num_threads: int | None = None,
        render_mode: str | None = None,
        **options: bool,
    ) -> None:
        self.num = int(num)
        kwargs: dict[str, Any] = {
            "env_name": env_name,
            "start_level": int(start_level),
            "num_levels": int(num_levels),
            "distribution_mode": distribution_mode,
            "rand_seed": int(rand_seed),
            "render_mode": render_mode,
            **{k: bool(v) for k, v in options.items()},
        }
        if num_threads is not None:
            kwargs["num_threads"] = int(num_threads)
        self._gym3 = backend() == "procgen"
        self._env: Any
        if self._gym3:
            from procgen import ProcgenGym3Env

            self._env = ProcgenGym3Env(num=self.num, **kwargs)
            # cffi builds a library attribute on first access while holding the FFI's lock; a core
            # closed by the garbage collector in the middle of such an access would wait on that lock
            # forever: resolving libenv_close now keeps close() away from it.
            self._env._c_lib.libenv_close  # noqa: B018
            self._state_buf = self._env._ffi.new(f"char[{MAX_STATE_BYTES}]")
        else:
            from procgen_gym.env import ProcgenVecEnv

            self._env = ProcgenVecEnv(num_envs=self.num, **kwargs)
            self._state_buf = ctypes.create_string_buffer(MAX_STATE_BYTES)

    def act(self, actions: np.ndarray) -> None:
        """Starts a step of every slot with ``actions`` (one int per slot); it runs on procgen's threads."""
        actions = np.asarray(actions, dtype=np.int32).reshape(self.num)
        if self._gym3:
            self._env.act(actions)
        else:
            self._env._clib.act(actions)

    def observe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Waits for the step in flight; returns copies of ``(rewards, frames, firsts)``.

        ``frames`` is ``uint8 (num, 64, 64, 3)``; ``firsts[i]`` is 1 where slot ``i``'s episode ended
        in the last step (its frame is then the next episode's first).
        """
        if self._gym3:
            rew, ob, first = self._env.observe()
            return rew, ob["rgb"], first
        first, ob, rew, _ = self._env._clib.observe()
        return rew, ob["rgb"], first

    def info(self) -> dict[str, np.ndarray]:
        """procgen's info buffers, one array per key over the slots: ``level_seed``,
        ``prev_level_seed``, ``prev_level_complete`` (and ``rgb``, 512x512, with ``render_mode``)."""
        if self._gym3:
            infos = self._env.get_info()
            return {key: np.stack([i[key] for i in infos]) for key in infos[0]}
        return self._env._clib.observe()[3]

    def get_state(self, slot: int) -> bytes:
        """The serialized game of ``slot`` (level, positions, generators): procgen's ``get_state``."""
        n = self._call("get_state", int(slot), self._state_buf, MAX_STATE_BYTES)
        if self._gym3:
            return bytes(self._env._ffi.buffer(self._state_buf, n))
        return self._state_buf.raw[:n]

    def set_state(self, slot: int, state: bytes) -> None:
        """Puts a game serialized by :meth:`get_state` (of a core with the same game, mode and options)
        into ``slot``; the other slots are untouched."""
        self._call("set_state", int(slot), bytes(state), len(state))

    def _call(self, name: str, *args: Any) -> Any:
        clib = self._env if self._gym3 else self._env._clib
        return clib.call_c_func(name, *args)

    def close(self) -> None:
        """Frees the native env (idempotent)."""
        env = self.__dict__.pop("_env", None)
        if env is not None:
            env.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to free
            pass
