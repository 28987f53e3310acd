"""Env stepping of a seeded level env (MiniGrid, MiniHack) for ``heldout bench throughput --seeded-env``.

Two variants, timed in interleaved rounds with random actions (the median round reported), warm-up
excluded:

* ``raw``: the upstream env as the spec builds it (``SeededEnvSpec.make``: for MiniHack, NetHack with
  the classed glyph crop), ``num_envs`` of them stepped in a Python loop, each reset on its next
  level when an episode ends;
* ``level_env``: what training steps: SB3's ``DummyVecEnv`` of ``num_envs``
  :class:`~heldout.envs.seeded.SeededLevelEnv` drawing training levels ``[0, 200)``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

#: Variant key -> label (``{n}`` is num_envs, ``{env}`` the env's name).
SEEDED_VARIANTS: dict[str, str] = {
    "raw": "upstream env ({env}), {n} single envs in a Python loop",
    "level_env": "heldout SeededLevelEnv x {n} in SB3's DummyVecEnv (as training steps it)",
}
#: The training levels every variant plays.
LEVELS = range(0, 200)


def check_seeded_env(name: str) -> str:
    """``name`` if it is a seeded level env that can be built here, else ValueError in one line."""
    from heldout.envs import SEEDED_ENVS

    if name not in SEEDED_ENVS:
        raise ValueError(f"--seeded-env: {SEEDED_ENVS.unknown_message(name)}")
    reason = SEEDED_ENVS.get(name).missing()
    if reason:
        raise ValueError(f"--seeded-env {name!r}: {reason}")
    return name


def seeded_env_throughput(
    name: str, num_envs: int = 8, steps: int = 4096, seed: int = 0, repeats: int = 3
) -> dict[str, float]:
    """Env steps per second of ``name``'s upstream env and of heldout's level env (see the module).

    Returns:
        ``<variant>_steps_per_s`` for each key of :data:`SEEDED_VARIANTS`, ``level_env_vs_raw``, and
        the settings ``num_envs``, ``env_steps`` (per variant and round), ``repeats``, as floats.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from heldout.envs import SEEDED_ENVS
    from heldout.envs.seeded import SeededLevelEnv

    spec = SEEDED_ENVS.get(check_seeded_env(name))
    vector_steps = -(-steps // num_envs)
    warmup = max(10, min(100, vector_steps // 10))
    raws = [spec.make() for _ in range(num_envs)]
    vec = DummyVecEnv([lambda: SeededLevelEnv(name, levels=LEVELS) for _ in range(num_envs)])
    vec.seed(seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, vec.action_space.n, size=(min(vector_steps, 256), num_envs))
    levels = iter(range(10**9))
    for env in raws:
        env.reset(seed=next(levels) % len(LEVELS))
    vec.reset()

    def raw_step(a: np.ndarray) -> None:
        for env, action in zip(raws, a):
            _, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                env.reset(seed=next(levels) % len(LEVELS))

    def loop(step: Any, n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            step(actions[i % len(actions)])
        return time.perf_counter() - start

    try:
        loops = {"raw": raw_step, "level_env": vec.step}
        for step in loops.values():
            loop(step, warmup)
        seconds: dict[str, list[float]] = {key: [] for key in loops}
        for _ in range(repeats):
            for key, step in loops.items():
                seconds[key].append(loop(step, vector_steps))
    finally:
        vec.close()
        for env in raws:
            env.close()
    env_steps = vector_steps * num_envs
    result = {"num_envs": float(num_envs), "env_steps": float(env_steps), "repeats": float(repeats)}
    for key, times in seconds.items():
        result[f"{key}_steps_per_s"] = env_steps / statistics.median(times)
    result["level_env_vs_raw"] = result["level_env_steps_per_s"] / result["raw_steps_per_s"]
    return result


def format_seeded(name: str, result: dict[str, float]) -> list[str]:
    """The table of :func:`seeded_env_throughput`'s result, as lines."""
    from heldout.bench.common import table

    n = int(result["num_envs"])
    lines = [
        f"Env stepping: {name}, {n} envs, random actions, {int(result['env_steps']):,} env steps per variant "
        f"and round, median of {int(result['repeats'])} interleaved rounds, warm-up excluded"
    ]
    rows = [
        [
            label.format(n=n, env=name),
            f"{result[f'{key}_steps_per_s']:,.0f}",
            "1.00x" if key == "raw" else f"{result['level_env_vs_raw']:.2f}x",
        ]
        for key, label in SEEDED_VARIANTS.items()
    ]
    return lines + table(["variant", "env steps/s", "vs upstream"], rows)
