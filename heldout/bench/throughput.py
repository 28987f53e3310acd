"""Throughput benchmarks: how fast heldout steps Procgen and trains PPO, next to what users run today.

Two measurements, each run side by side in one process so that every figure shares the machine's
state (other load, CPU frequency, thread pools):

* :func:`env_throughput`: env steps per second (an env step is one env of the vector taking one
  action, so a vector step of 64 envs counts 64) of

  - procgen's raw native core (``NativeCore.act`` / ``observe``, heldout.envs.procgen_native), the ceiling;
  - heldout's :class:`~heldout.envs.procgen.ProcgenVecEnv` through the SB3 ``VecEnv`` API
    (``step``), i.e. the raw core plus our bookkeeping (episode stats, level ids, infos);
  - ``num_envs`` single gymnasium envs ``heldout/<game>-v0`` in gymnasium's ``SyncVectorEnv``,
    the way a gymnasium user vectorizes Procgen without a native vector env.

  All use uniformly random actions, the same levels (``0:200``) and the same number of env steps;
  a warm-up is stepped first and not timed, and the variants are timed in interleaved rounds (the
  median round is reported) so a burst of other load hurts them alike.

* :func:`train_throughput`: training env steps per second of ``learn()`` (rollout collection, GAE
  and the PPO update) over a fixed number of PPO iterations (``iterations * num_envs * n_steps``
  env steps) for

  - heldout's PPO (:class:`heldout.agents.ppo.PPO`) on ``ProcgenVecEnv``, in fp32 and bf16, on
    SB3's rollout path (``engine="sb3"``, numpy buffer and GAE) and on heldout's engine
    (``engine="heldout"``: storage, GAE and minibatches on the device; proven to train the same
    weights in ``tests/agents/test_engine.py``);
  - stock ``stable_baselines3.PPO`` on ``ProcgenVecEnv``: same env, so the ratio to the line above
    is the algorithm's (implementation's) effect alone;
  - stock ``stable_baselines3.PPO`` on ``make_vec_env("heldout/<game>-v0", n_envs=num_envs)``
    (a ``DummyVecEnv`` of single envs): what an SB3 user runs today; the ratio of the line above to
    this one is the env's effect alone. ``make_vec_env`` would build every env with
    ``render_mode="rgb_array"`` by default, and procgen then draws a 512x512 frame at every step
    (36x the cost of a step); the benchmark passes ``render_mode=None`` so that this variant pays
    only for Python's per-env loop, not for rendering nobody looks at.

  All three use the same IMPALA-CNN (``ImpalaCNN`` features extractor, linear heads) and the same
  hyper-parameters (:data:`PPO_HPARAMS`, batch size ``num_envs * n_steps / 8``). The three models
  are built and each warmed up by one untimed ``learn()`` iteration (allocations, first-call kernel
  selection, the env's first episodes). Then ``iterations`` rounds each call ``learn()`` for one
  more iteration of every variant in turn (``reset_num_timesteps=False``: no env reset, exactly one
  rollout and one update per call), timed; a variant's figure is its env steps over its summed
  time, and the split into rollout (collection + GAE) and update time is reported too, with each
  variant's ratio to stock SB3 on the same env and, for heldout's, the share of the learner floor
  (:func:`learner_floor`, also a row of the table) it reaches.

Why ratios and not absolute times. Absolute steps/s depend on the machine (cores, GPU, clock) and on
whatever else runs on it: the same PPO ran at 26 and at 194 steps/s on one two-core machine, busy
and quiet.
A ratio between two variants measured in the same run on the same machine cancels most of that, so
ratios are what a speed claim rests on (``benchmarks/README.md``); absolute figures are printed with
the machine they were measured on, for orientation only.

Run ``python -m heldout.bench.throughput --help`` (or ``heldout bench throughput --help``).
On two quiet CPU cores the default run takes about 2 minutes (measured: 122 s): the env part
~30 s, then three PPO variants of 64 envs x 32 steps x 2 timed iterations (4,096 env steps each,
plus one warm-up iteration) at ~150-200 steps/s. It stays under 5 minutes while other processes
take up to about a third of the CPU; when another process keeps a whole core busy, torch's
spinning OpenMP threads make it several times slower (see benchmarks/README.md). With a CUDA
device the defaults use the reference rollout of 256 steps per env and 4 timed iterations (65,536
env steps per variant).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from heldout.bench.common import (
    HelpFormatter,
    OtherLoad,
    check_game,
    check_positive,
    device_type,
    machine_info,
    resolve_device,
    sync,
    table,
    time_interleaved,
)
from heldout.bench.seeded import check_seeded_env, format_seeded, seeded_env_throughput
from heldout.protocol.checks import check_seed

#: Env steps per variant and round in :func:`env_throughput` (1,024 vector steps of 64 envs).
DEFAULT_ENV_STEPS = 65_536
#: Interleaved timing rounds in :func:`env_throughput`; the median round is reported.
DEFAULT_REPEATS = 3
#: Levels every variant plays (the Procgen reference training set).
LEVELS = range(0, 200)
#: Rollout length per env and timed PPO iterations, by device type.
DEFAULT_N_STEPS = {"cpu": 32, "cuda": 256}
DEFAULT_ITERATIONS = {"cpu": 2, "cuda": 4}
#: Minibatches per epoch: batch_size = num_envs * n_steps / MINIBATCHES (Procgen reference: 8).
MINIBATCHES = 8

#: Hyper-parameters shared by every PPO variant of :func:`train_throughput` (the Procgen reference,
#: Cobbe et al. 2020); ``n_steps`` and ``batch_size`` come from the arguments.
PPO_HPARAMS: dict[str, Any] = {
    "learning_rate": 5e-4,
    "n_epochs": 3,
    "gamma": 0.999,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "clip_range_vf": 0.2,
    "normalize_advantage": True,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}

#: Env variants of :func:`env_throughput`: result-key prefix -> label (``{n}`` is num_envs).
ENV_VARIANTS: dict[str, str] = {
    "raw_core": "procgen raw core (NativeCore act/observe: gym3 or procgen-gym)",
    "procgen_vec_env": "heldout ProcgenVecEnv (SB3 VecEnv step)",
    "gymnasium_native": "gymnasium make_vec heldout/{game}-v0 (native ProcgenVectorEnv)",
    "gymnasium_sync": "gymnasium SyncVectorEnv, {n} x heldout/{game}-v0",
}

#: PPO variants of :func:`train_throughput`: key -> label.
TRAIN_VARIANTS: dict[str, str] = {
    "heldout_ppo_vec": "heldout PPO + ProcgenVecEnv",
    "heldout_ppo_vec_bf16": "heldout PPO + ProcgenVecEnv, precision bf16 (trunk in bf16 autocast)",
    "heldout_engine": "heldout PPO, engine heldout (device storage + GAE) + ProcgenVecEnv",
    "heldout_engine_bf16": "heldout PPO, engine heldout + ProcgenVecEnv, precision bf16",
    "sb3_ppo_vec": "stock SB3 PPO + ProcgenVecEnv",
    "sb3_ppo_dummy": "stock SB3 PPO + make_vec_env (DummyVecEnv, {n} x heldout/{game}-v0)",
}

#: Exploration-bonus variants (``--bonuses``, docs/exploration.md): heldout's PPO with each bonus on
#: the engine its device defaults to (CPU: sb3, CUDA: heldout), timed next to the same PPO without
#: one (:func:`bonus_base`); never in the default run.
BONUS_VARIANTS: dict[str, str] = {
    f"heldout_bonus_{name.replace('-', '_')}": f"heldout PPO + ProcgenVecEnv, bonus {name}"
    for name in ("count", "episodic-count", "rnd", "e3b", "product")
}


def bonus_base(device: str) -> str:
    """The variant a bonus variant is compared with: heldout's PPO without a bonus on the same engine."""
    return "heldout_engine" if device_type(device) == "cuda" else "heldout_ppo_vec"


def _train_config(
    num_envs: int, n_steps: int | None, iterations: int | None, device: str
) -> tuple[str, int, int, int]:
    """Checks and completes the training settings: ``(device, n_steps, iterations, batch_size)``."""
    check_positive("num_envs", num_envs)
    device = resolve_device(device)
    n_steps = DEFAULT_N_STEPS[device_type(device)] if n_steps is None else check_positive("n_steps", n_steps)
    if iterations is None:
        iterations = DEFAULT_ITERATIONS[device_type(device)]
    iterations = check_positive("iterations", iterations)
    rollout = num_envs * n_steps
    if rollout < 2 * MINIBATCHES:
        raise ValueError(
            f"num_envs * n_steps must be at least {2 * MINIBATCHES} (8 minibatches of 2+ samples), "
            f"got {num_envs} * {n_steps} = {rollout}"
        )
    return device, n_steps, iterations, rollout // MINIBATCHES


# ------------------------------------------------------------------------------------------------
# Environment throughput
# ------------------------------------------------------------------------------------------------


def _time_loop(step: Any, actions: np.ndarray, vector_steps: int) -> float:
    """Seconds taken by ``vector_steps`` calls of ``step(actions[i % len(actions)])``."""
    block = len(actions)
    start = time.perf_counter()
    for i in range(vector_steps):
        step(actions[i % block])
    return time.perf_counter() - start


def env_throughput(
    game: str = "coinrun",
    num_envs: int = 64,
    steps: int = DEFAULT_ENV_STEPS,
    seed: int = 0,
    repeats: int = DEFAULT_REPEATS,
) -> dict[str, float]:
    """Env steps per second of procgen's raw core, ``ProcgenVecEnv``, gymnasium's ``make_vec`` (the native
    :class:`~heldout.envs.procgen_vector.ProcgenVectorEnv`) and a ``SyncVectorEnv`` of single envs.

    Args:
        game: A Procgen game.
        num_envs: Envs per vector (every variant).
        steps: Env steps timed per variant and round (rounded up to whole vector steps).
        seed: Seeds the envs and the random actions.
        repeats: Interleaved timing rounds; each variant's median round is reported.

    Returns:
        ``<variant>_steps_per_s`` for each key of :data:`ENV_VARIANTS`, ``<variant>_vs_raw_core``
        (its steps/s divided by the raw core's) for the others, and the settings ``num_envs``,
        ``env_steps`` (per variant and round), ``repeats`` and ``warmup_env_steps``, all as floats.

    Raises:
        ValueError: For a non-positive size or an unknown game.
    """
    import gymnasium
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    from heldout.envs.procgen import ProcgenVecEnv
    from heldout.envs.procgen_native import NativeCore

    game = check_game(game)
    num_envs = check_positive("num_envs", num_envs)
    steps = check_positive("steps", steps)
    repeats = check_positive("repeats", repeats)
    vector_steps = -(-steps // num_envs)
    warmup = max(10, min(100, vector_steps // 10))

    rng = np.random.default_rng(seed)
    # One block of random actions, reused cyclically, so no variant pays for drawing them.
    actions = rng.integers(0, 15, size=(min(vector_steps, 256), num_envs), dtype=np.int64)
    actions32 = actions.astype(np.int32)

    raw = NativeCore(
        num=num_envs,
        env_name=game,
        start_level=LEVELS.start,
        num_levels=len(LEVELS),
        distribution_mode="easy",
        rand_seed=int(seed),
    )
    vec = ProcgenVecEnv(game, num_envs=num_envs, levels=LEVELS, seed=seed)
    native = gymnasium.make_vec(f"heldout/{game}-v0", num_envs=num_envs, levels=LEVELS)
    # SAME_STEP autoreset: as SB3's DummyVecEnv (reset inside the step that ends an episode).
    sync_env = SyncVectorEnv(
        [lambda: gymnasium.make(f"heldout/{game}-v0", levels=LEVELS) for _ in range(num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )

    def raw_step(a: np.ndarray) -> None:
        raw.act(a)
        raw.observe()

    try:
        vec.reset()
        native.reset(seed=seed)
        sync_env.reset(seed=seed)
        loops = {
            "raw_core": (raw_step, actions32),
            "procgen_vec_env": (vec.step, actions),
            "gymnasium_native": (native.step, actions),
            "gymnasium_sync": (sync_env.step, actions),
        }
        for step, acts in loops.values():
            _time_loop(step, acts, warmup)
        seconds: dict[str, list[float]] = {key: [] for key in loops}
        for _ in range(repeats):
            for key, (step, acts) in loops.items():
                seconds[key].append(_time_loop(step, acts, vector_steps))
    finally:
        raw.close()
        vec.close()
        native.close()
        sync_env.close()

    env_steps = vector_steps * num_envs
    result: dict[str, float] = {
        "num_envs": float(num_envs),
        "env_steps": float(env_steps),
        "repeats": float(repeats),
        "warmup_env_steps": float(warmup * num_envs),
    }
    for key, times in seconds.items():
        result[f"{key}_steps_per_s"] = env_steps / statistics.median(times)
    for key in ("procgen_vec_env", "gymnasium_native", "gymnasium_sync"):
        result[f"{key}_vs_raw_core"] = result[f"{key}_steps_per_s"] / result["raw_core_steps_per_s"]
    return result


# ------------------------------------------------------------------------------------------------
# Training throughput
# ------------------------------------------------------------------------------------------------


def _build_model(
    variant: str, game: str, num_envs: int, n_steps: int, batch_size: int, device: str, seed: int
) -> Any:
    import stable_baselines3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import set_random_seed

    import heldout.agents  # noqa: F401  (registers ProcgenVecEnv as an SB3 VecEnv)
    from heldout.agents.networks import ImpalaCNN
    from heldout.agents.ppo import PPO
    from heldout.envs.procgen import ProcgenVecEnv

    set_random_seed(seed)
    hparams = {**PPO_HPARAMS, "n_steps": n_steps, "batch_size": batch_size}
    common = {"seed": seed, "device": device, "verbose": 0}
    if variant in BONUS_VARIANTS:
        from heldout.agents.bonuses import attach_bonus

        env = ProcgenVecEnv(game, num_envs=num_envs, levels=LEVELS, seed=seed)
        engine = "heldout" if bonus_base(device) == "heldout_engine" else "sb3"
        model = PPO("CnnPolicy", env, engine=engine, **hparams, **common)
        attach_bonus(model, variant[len("heldout_bonus_") :].replace("_", "-"), {}, seed)
        return model
    if variant in ("heldout_ppo_vec", "heldout_ppo_vec_bf16", "heldout_engine", "heldout_engine_bf16"):
        env = ProcgenVecEnv(game, num_envs=num_envs, levels=LEVELS, seed=seed)
        precision = "bf16" if variant.endswith("_bf16") else "fp32"
        engine = "heldout" if variant.startswith("heldout_engine") else "sb3"
        return PPO("CnnPolicy", env, precision=precision, engine=engine, **hparams, **common)
    policy_kwargs = {
        "features_extractor_class": ImpalaCNN,
        "features_extractor_kwargs": {"features_dim": 256},
        "net_arch": [],
    }
    if variant == "sb3_ppo_vec":
        env = ProcgenVecEnv(game, num_envs=num_envs, levels=LEVELS, seed=seed)
    elif variant == "sb3_ppo_dummy":
        env = make_vec_env(
            f"heldout/{game}-v0",
            n_envs=num_envs,
            seed=seed,
            env_kwargs={"levels": LEVELS, "render_mode": None},
        )
    else:  # pragma: no cover - internal
        raise ValueError(f"unknown train variant {variant!r}")
    return stable_baselines3.PPO("CnnPolicy", env, policy_kwargs=policy_kwargs, **hparams, **common)


def _floor_update(
    num_envs: int, n_steps: int, batch_size: int, device: str, precision: str, seed: int
) -> Any:
    """The learner floor's update: a callable doing one PPO update's worth of bare learning.

    Over one rollout's worth of samples (``num_envs * n_steps`` random 64x64 frames, uint8 on the
    device): ``n_epochs`` passes of minibatches of ``batch_size``, each the IMPALA network's forward
    pass (policy and value heads), a loss of the same shape as PPO's, backward, gradient clipping
    and Adam, in ``precision`` (bf16: the network's trunk under autocast, its heads and the loss in
    fp32, as ``PPO(precision="bf16")``).
    """
    import torch
    from gymnasium import spaces

    from heldout.agents.networks import ImpalaCNN

    gen = torch.Generator().manual_seed(seed)
    size = num_envs * n_steps
    obs = torch.randint(0, 256, (size, 3, 64, 64), dtype=torch.uint8, generator=gen).to(device)
    actions = torch.randint(0, 15, (size,), generator=gen).to(device)
    body = ImpalaCNN(spaces.Box(0, 255, (3, 64, 64), np.uint8), features_dim=256).to(device)
    heads = torch.nn.Linear(256, 16).to(device)  # 15 logits and a value
    params = [*body.parameters(), *heads.parameters()]
    optimizer = torch.optim.Adam(params, lr=5e-4, eps=1e-5)
    autocast = torch.autocast(
        device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16"
    )

    def trunk(x: torch.Tensor) -> torch.Tensor:
        with autocast:
            return body(x).float()

    def update() -> None:
        for _ in range(int(PPO_HPARAMS["n_epochs"])):
            for idx in torch.randperm(size, device=device).split(batch_size):
                out = heads(trunk(obs[idx].float() / 255.0))
                dist = torch.distributions.Categorical(logits=out[:, :15])
                loss = (
                    -dist.log_prob(actions[idx]).mean()
                    + 0.5 * out[:, 15].pow(2).mean()
                    - 0.01 * dist.entropy().mean()
                )
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 0.5)
                optimizer.step()

    return update


def learner_floor(
    num_envs: int,
    n_steps: int,
    batch_size: int,
    device: str,
    precision: str = "fp32",
    seed: int = 0,
    repeats: int = 2,
) -> float:
    """The learner floor: env steps/s a PPO run could reach if rollouts cost nothing.

    :func:`_floor_update` timed on its own: rollout samples / seconds per update (the fastest of
    ``repeats``, after one untimed update). :func:`train_throughput` instead times the same update
    interleaved with the PPO variants (:class:`_LearnerFloorModel`), so that it shares their load.
    """
    update = _floor_update(num_envs, n_steps, batch_size, device, precision, seed)
    update()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        update()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return num_envs * n_steps / best


class _LearnerFloorModel:
    """The learner floor as :func:`~heldout.bench.common.time_interleaved` times a model: each
    ``learn()`` call is one floor update (no rollout), so it runs in the same rounds as the PPO
    variants."""

    def __init__(self, update: Any) -> None:
        self._update = update

    def learn(self, total_timesteps: int, reset_num_timesteps: bool = True, callback: Any = None) -> None:
        self._update()

    def get_env(self) -> _LearnerFloorModel:
        return self

    def close(self) -> None:
        pass


#: How the machine line names the CPU's bf16 units (:func:`heldout.agents.precision.cpu_bf16_units`).
BF16_UNITS: dict[bool | None, str] = {True: ", bf16 units", False: ", no bf16 units: bf16 emulated"}

#: Keys of the learner floors in the interleaved timing, by precision.
FLOOR_KEYS: dict[str, str] = {"fp32": "learner_floor_fp32", "bf16": "learner_floor_bf16"}


def train_throughput(
    game: str = "coinrun",
    num_envs: int = 64,
    n_steps: int | None = None,
    iterations: int | None = None,
    device: str = "auto",
    seed: int = 0,
    variants: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Training env steps per second of heldout's PPO vs stock SB3 PPO (same network, same settings).

    Args:
        game: A Procgen game.
        num_envs: Envs per vector.
        n_steps: Rollout length per env; default 32 on CPU, 256 (the reference) on CUDA.
        iterations: Timed PPO iterations (rollout + update); default 2 on CPU, 4 on CUDA.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        seed: Seeds torch, numpy and the envs of every variant.
        variants: Keys of :data:`TRAIN_VARIANTS` to run (default: all, in that order). The fp32
            learner floor is timed with them, the bf16 one when a bf16 variant runs.

    Returns:
        A dict with the settings (``device``, ``num_envs``, ``n_steps``, ``iterations``,
        ``batch_size``, ``n_epochs``, ``timed_env_steps``, ``warmup_iterations``), per variant
        ``steps_per_s``, ``seconds``, ``rollout_seconds`` and ``update_seconds`` (each a dict keyed
        by variant), ``memory`` (per variant and floor: ``rollout_bytes``, ``held_bytes`` and on CUDA
        ``peak_device_bytes``, :func:`~heldout.bench.common.time_interleaved`), and ``ratios``: ``heldout_ppo_vec / sb3_ppo_vec`` (algorithm effect),
        ``sb3_ppo_vec / sb3_ppo_dummy`` (env effect), ``heldout_ppo_vec / sb3_ppo_dummy`` (both),
        for the variants that ran.

    Raises:
        ValueError: For a non-positive size, an unknown game, variant or device.
    """
    game = check_game(game)
    device, n_steps, iterations, batch_size = _train_config(num_envs, n_steps, iterations, device)
    variants = list(TRAIN_VARIANTS) if variants is None else list(variants)
    for variant in variants:
        if variant not in TRAIN_VARIANTS and variant not in BONUS_VARIANTS:
            valid = ", ".join([*TRAIN_VARIANTS, *BONUS_VARIANTS])
            raise ValueError(f"unknown train variant {variant!r}; valid: {valid}")

    rollout = num_envs * n_steps
    result: dict[str, Any] = {
        "device": device,
        "num_envs": num_envs,
        "n_steps": n_steps,
        "iterations": iterations,
        "batch_size": batch_size,
        "n_epochs": PPO_HPARAMS["n_epochs"],
        "timed_env_steps": iterations * rollout,
        "warmup_iterations": 1,
        "steps_per_s": {},
        "seconds": {},
        "rollout_seconds": {},
        "update_seconds": {},
        "ratios": {},
    }
    builders: dict[str, Any] = {
        variant: (lambda v=variant: _build_model(v, game, num_envs, n_steps, batch_size, device, seed))
        for variant in variants
    }
    floors = {
        p: key for p, key in FLOOR_KEYS.items() if p == "fp32" or any(v.endswith("_bf16") for v in variants)
    }
    for precision, key in floors.items():
        builders[key] = lambda p=precision: _LearnerFloorModel(
            _floor_update(num_envs, n_steps, batch_size, device, p, seed)
        )
    memory: dict[str, dict[str, int | None]] = {}
    seconds, rollout_seconds = time_interleaved(builders, rollout, iterations, device, memory)
    result["memory"] = memory
    for variant in variants:
        result["steps_per_s"][variant] = iterations * rollout / seconds[variant]
        result["seconds"][variant] = seconds[variant]
        result["rollout_seconds"][variant] = rollout_seconds[variant]
        result["update_seconds"][variant] = seconds[variant] - rollout_seconds[variant]

    result["floor_steps_per_s"] = {
        precision: iterations * rollout / seconds[key] for precision, key in floors.items()
    }
    result["floor_seconds"] = {precision: seconds[key] for precision, key in floors.items()}
    sps = result["steps_per_s"]
    for num, den in (
        ("heldout_engine", "sb3_ppo_vec"),
        ("heldout_engine_bf16", "sb3_ppo_vec"),
        ("heldout_engine", "heldout_ppo_vec"),
        ("heldout_engine_bf16", "heldout_ppo_vec_bf16"),
        ("heldout_ppo_vec_bf16", "heldout_ppo_vec"),
        ("heldout_ppo_vec_bf16", "sb3_ppo_vec"),
        ("heldout_ppo_vec", "sb3_ppo_vec"),
        ("sb3_ppo_vec", "sb3_ppo_dummy"),
        ("heldout_ppo_vec", "sb3_ppo_dummy"),
    ):
        if num in sps and den in sps:
            result["ratios"][f"{num}/{den}"] = sps[num] / sps[den]
    base = bonus_base(device)
    for variant in BONUS_VARIANTS:
        if variant in sps and base in sps:
            result["ratios"][f"{variant}/{base}"] = sps[variant] / sps[base]
    return result


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def _other_load_line(results: dict[str, Any], part: str) -> list[str]:
    value = (results.get("other_load") or {}).get(part)
    if value is None:
        return []
    cpus = (results.get("machine") or {}).get("cpus_usable", "?")
    line = f"other processes used {value:.0%} of the {cpus} CPUs meanwhile"
    if value > 0.1:
        line += " -- figures are depressed by that load; trust the ratios more than the steps/s"
        if part == "train" and "OMP_WAIT_POLICY" not in (results.get("machine") or {}).get("thread_env", {}):
            line += " (on a shared CPU, OMP_WAIT_POLICY=PASSIVE avoids torch's spinning threads)"
    return [line]


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f}"


def _memory_lines(train: dict[str, Any], n: int, game: str) -> list[str]:
    """The memory table: per variant the rollout storage's bytes, the resident memory its build and
    warm-up added, and on CUDA the peak device memory."""
    memory = train.get("memory") or {}
    if not memory:
        return []
    cuda = any("peak_device_bytes" in m for m in memory.values())
    labels = {key: label.format(n=n, game=game) for key, label in TRAIN_VARIANTS.items()}
    labels.update({key: f"learner floor ({p})" for p, key in FLOOR_KEYS.items()})
    rows = []
    for key, m in memory.items():
        row = [labels.get(key, key), _mb(m.get("rollout_bytes")), _mb(m.get("held_bytes"))]
        if cuda:
            row.append(_mb(m.get("peak_device_bytes")))
        rows.append(row)
    header = ["variant", "rollout storage MB", "resident MB added"] + (["peak device MB"] if cuda else [])
    return [
        "",
        "Memory: rollout storage (every array and tensor the rollout buffer holds); resident memory the "
        "build and warm-up iteration added to the process (first variant includes one-off imports and "
        "allocator pools)" + ("; peak CUDA memory over build and warm-up" if cuda else ""),
        *table(header, rows),
    ]


def format_throughput(results: dict[str, Any]) -> str:
    """The results of :func:`main` (``machine``, ``config``, ``env``, ``train``) as a text table."""
    config = results.get("config", {})
    game = config.get("game", "coinrun")
    lines: list[str] = []
    machine = results.get("machine")
    if machine:
        versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
        load = machine.get("load_average") or []
        lines += [
            f"machine: {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable, {machine['cpu_model']}"
            f"{BF16_UNITS.get(machine.get('cpu_bf16_units'), '')}), "
            f"load average {' '.join(str(x) for x in load) or '?'}",
            f"torch {machine['torch_version']} on {machine['torch_device']}, {machine['torch_threads']} threads; "
            f"python {machine['python_version']}",
            f"{versions}",
        ]
        thread_env = machine.get("thread_env") or {}
        if thread_env:
            lines.append("thread settings: " + " ".join(f"{k}={v}" for k, v in thread_env.items()))
        lines.append("")
    env = results.get("env")
    if env:
        n = int(env["num_envs"])
        lines.append(
            f"Env stepping: {game}, {n} envs, random actions, {int(env['env_steps']):,} env steps per variant "
            f"and round, median of {int(env['repeats'])} interleaved rounds, warm-up excluded"
        )
        rows = []
        for key, label in ENV_VARIANTS.items():
            ratio = 1.0 if key == "raw_core" else env[f"{key}_vs_raw_core"]
            rows.append([label.format(n=n, game=game), f"{env[f'{key}_steps_per_s']:,.0f}", f"{ratio:.2f}x"])
        lines += table(["variant", "env steps/s", "vs raw core"], rows)
        lines += _other_load_line(results, "env")
        lines.append("")
    if results.get("seeded_env"):
        lines += format_seeded(config["seeded_env"], results["seeded_env"])
        lines += _other_load_line(results, "seeded_env")
        lines.append("")
    train = results.get("train")
    if config.get("bf16_left_out"):
        lines += [config["bf16_left_out"], ""]
    if train:
        n = train["num_envs"]
        lines.append(
            f"PPO training: {game}, IMPALA-CNN, device {train['device']}, {n} envs x {train['n_steps']} steps, "
            f"batch {train['batch_size']}, {train['n_epochs']} epochs; {train['iterations']} timed learn() "
            f"iterations per variant = {train['timed_env_steps']:,} env steps, interleaved in rounds, after "
            f"{train['warmup_iterations']} untimed warm-up iteration each"
        )
        rows = []
        sps = train["steps_per_s"]
        base = sps.get("sb3_ppo_dummy")
        stock = sps.get("sb3_ppo_vec")
        floors = train.get("floor_steps_per_s") or {}
        for key, label in {**TRAIN_VARIANTS, **BONUS_VARIANTS}.items():
            if key not in sps:
                continue
            floor = (
                floors.get("bf16" if key.endswith("_bf16") else "fp32") if key.startswith("heldout") else None
            )
            rows.append(
                [
                    label.format(n=n, game=game),
                    f"{sps[key]:,.1f}",
                    f"{train['seconds'][key]:.1f}",
                    f"{train['rollout_seconds'][key]:.1f}",
                    f"{train['update_seconds'][key]:.1f}",
                    f"{sps[key] / stock:.2f}x" if stock else "-",
                    f"{sps[key] / base:.2f}x" if base else "-",
                    f"{sps[key] / floor:.0%}" if floor else "-",
                ]
            )
        for precision, floor in floors.items():
            floor_seconds = (train.get("floor_seconds") or {}).get(precision)
            floor_total = "-" if floor_seconds is None else f"{floor_seconds:.1f}"
            rows.append(
                [
                    f"learner floor ({precision}): bare forward + backward + Adam",
                    f"{floor:,.1f}",
                    floor_total,
                    "-",
                    floor_total,
                    f"{floor / stock:.2f}x" if stock else "-",
                    f"{floor / base:.2f}x" if base else "-",
                    "100%",
                ]
            )
        lines += table(
            [
                "variant",
                "steps/s",
                "total s",
                "rollout s",
                "update s",
                "vs stock SB3 (same env)",
                "vs SB3+DummyVecEnv",
                "of learner floor",
            ],
            rows,
        )
        for precision, floor in floors.items():
            suffix = "_bf16" if precision == "bf16" else ""
            engines = {"sb3": f"heldout_ppo_vec{suffix}", "heldout": f"heldout_engine{suffix}"}
            reached = {engine: sps[key] / floor for engine, key in engines.items() if key in sps}
            if len(reached) == 1:
                share = f"; heldout PPO ({precision}) reaches {next(iter(reached.values())):.0%} of it"
            elif reached:
                parts = ", ".join(f"{value:.0%} with engine {engine}" for engine, value in reached.items())
                share = f"; heldout PPO ({precision}) reaches {parts}"
            else:
                share = ""
            lines.append(
                f"learner floor ({precision}): {floor:,.1f} steps/s (bare torch loop: forward + backward + Adam "
                f"over the same samples and epochs, same network{share})"
            )
        names = {
            "heldout_engine/sb3_ppo_vec": "engine heldout fp32 / stock SB3, same env",
            "heldout_engine_bf16/sb3_ppo_vec": "engine heldout bf16 / stock SB3, same env",
            "heldout_engine/heldout_ppo_vec": "engine heldout / engine sb3, fp32 (engine effect)",
            "heldout_engine_bf16/heldout_ppo_vec_bf16": "engine heldout / engine sb3, bf16 (engine effect)",
            "heldout_ppo_vec_bf16/heldout_ppo_vec": "ours bf16 / ours fp32 (precision effect)",
            "heldout_ppo_vec_bf16/sb3_ppo_vec": "ours bf16 / stock SB3, same env",
            "heldout_ppo_vec/sb3_ppo_vec": "ours / stock SB3, same env (algorithm effect)",
            "sb3_ppo_vec/sb3_ppo_dummy": "ProcgenVecEnv / DummyVecEnv, stock SB3 (env effect)",
            "heldout_ppo_vec/sb3_ppo_dummy": "ours / what an SB3 user runs today (both)",
            **{
                f"{key}/{bonus_base(train['device'])}": f"with bonus {label.rsplit(' ', 1)[-1]} / without (bonus cost)"
                for key, label in BONUS_VARIANTS.items()
            },
        }
        lines += _memory_lines(train, n, game)
        if "sb3_ppo_dummy" in sps:
            lines.append("make_vec_env is given render_mode=None (its default would render 512x512 frames)")
        lines += _other_load_line(results, "train")
        ratios = train.get("ratios", {})
        if ratios:
            lines.append("ratios:")
            lines += [f"  {names.get(k, k)}: {v:.2f}x" for k, v in ratios.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every error is one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgumentError(message)


def build_parser(prog: str = "heldout bench throughput") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=(
            "Measure env-stepping and PPO-training throughput of heldout next to procgen's raw core, "
            "gymnasium single envs and stock stable-baselines3 PPO, side by side in one run. "
            "Compare the ratios; absolute steps/s depend on the machine and its load. "
            "Default run: about 2 minutes on 2 quiet CPU cores."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--game", default="coinrun", help="Procgen game to step and train on.")
    parser.add_argument(
        "--num-envs", type=int, default=64, help="Parallel envs in every variant (env and training)."
    )
    parser.add_argument(
        "--env-steps",
        type=int,
        default=DEFAULT_ENV_STEPS,
        help="Env steps (envs x vector steps) timed per env variant and round, random actions.",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="Interleaved timing rounds of the env part (median).",
    )
    parser.add_argument(
        "--n-steps",
        type=int,
        default=None,
        help=f"PPO rollout length per env (default: {DEFAULT_N_STEPS['cpu']} on CPU, "
        f"{DEFAULT_N_STEPS['cuda']} on CUDA). Batch size is num_envs * n_steps / {MINIBATCHES}.",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"Timed PPO iterations (rollout + update) per training variant, after one untimed warm-up "
        f"iteration (default: {DEFAULT_ITERATIONS['cpu']} on CPU, {DEFAULT_ITERATIONS['cuda']} on CUDA).",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="Torch device for training: auto (CUDA if available), cpu, cuda, cuda:N.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of envs, actions and networks.")
    parser.add_argument(
        "--skip-train", action="store_true", help="Only measure env stepping (seconds, not minutes)."
    )
    parser.add_argument(
        "--variants",
        default=None,
        metavar="A,B,...",
        help="Training variants to time (comma-separated; default: all, but on a CPU without bf16 units "
        "the bf16 ones are left out, since emulated bf16 is ~11x slower): " + ", ".join(TRAIN_VARIANTS) + ". "
        "The fp32 learner floor is always timed with them, the bf16 one with a bf16 variant.",
    )
    parser.add_argument(
        "--seeded-env",
        default=None,
        metavar="NAME",
        help="Also time env stepping of a seeded level env (MiniGrid, MiniHack; e.g. minihack-multiroom-n4): "
        "its upstream env next to heldout's level envs in SB3's DummyVecEnv, --num-envs of each, "
        "--env-steps per variant and round.",
    )
    parser.add_argument(
        "--bonuses",
        default=None,
        metavar="A,B,...|all",
        help="Time heldout's PPO with these exploration bonuses (count, episodic-count, rnd, e3b, product, "
        "or all) next to the same PPO without a bonus, on the engine the device defaults to (added to "
        "--variants if given, else only these; docs/exploration.md).",
    )
    parser.add_argument("--json", metavar="PATH", default=None, help="Also save all results as JSON to PATH.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the throughput benchmark and prints the table; returns the exit status (2 for bad values)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        game = check_game(args.game)
        num_envs = check_positive("--num-envs", args.num_envs)
        env_steps = check_positive("--env-steps", args.env_steps)
        repeats = check_positive("--repeats", args.repeats)
        if args.n_steps is not None:
            check_positive("--n-steps", args.n_steps)
        if args.iterations is not None:
            check_positive("--iterations", args.iterations)
        check_seed("--seed", args.seed)
        if args.seeded_env is not None:
            check_seeded_env(args.seeded_env)
        variants = list(TRAIN_VARIANTS)
        if args.variants is not None:
            variants = [v.strip() for v in args.variants.split(",") if v.strip()]
            unknown = [v for v in variants if v not in TRAIN_VARIANTS]
            if unknown or not variants:
                raise ValueError(
                    f"--variants {args.variants!r}: unknown variant {unknown[0] if unknown else '(none)'!r}; "
                    f"valid: {', '.join(TRAIN_VARIANTS)}"
                )
        if args.bonuses is not None:
            names = {v.rsplit("bonus ", 1)[-1]: key for key, v in BONUS_VARIANTS.items()}
            asked = (
                list(names)
                if args.bonuses == "all"
                else [b.strip() for b in args.bonuses.split(",") if b.strip()]
            )
            unknown = [b for b in asked if b not in names]
            if unknown or not asked:
                raise ValueError(
                    f"--bonuses {args.bonuses!r}: unknown bonus {unknown[0] if unknown else '(none)'!r}; "
                    f"valid: all, {', '.join(names)}"
                )
            base = bonus_base(resolve_device(args.device))
            if args.variants is None:
                variants = [base]
            elif base not in variants:
                variants.append(base)
            variants += [names[b] for b in asked]
        bf16_left_out = None
        if args.variants is None and args.bonuses is None and not args.skip_train:
            from heldout.agents.precision import emulated_bf16

            bf16_left_out = emulated_bf16(resolve_device(args.device))
            if bf16_left_out:
                variants = [v for v in variants if not v.endswith("_bf16")]
        device = args.device
        if not args.skip_train:
            device, n_steps, iterations, _ = _train_config(
                num_envs, args.n_steps, args.iterations, args.device
            )
        else:
            device = resolve_device(args.device)
        if args.json is not None:
            parent = os.path.dirname(os.path.abspath(args.json))
            if not os.path.isdir(parent):
                raise ValueError(f"--json {args.json!r}: directory {parent!r} does not exist")
            if os.path.isdir(args.json):
                raise ValueError(
                    f"--json {args.json!r} is a directory; give a file path, e.g. {args.json}/bench.json"
                )
    except (_ArgumentError, ValueError) as err:
        print(f"heldout bench: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)

    results: dict[str, Any] = {
        "config": {
            "game": game,
            "num_envs": num_envs,
            "env_steps": env_steps,
            "repeats": repeats,
            "seed": args.seed,
            "device": device,
            "seeded_env": args.seeded_env,
        },
        "machine": machine_info(device),
    }
    if bf16_left_out:
        note = f"bf16 variants left out: {bf16_left_out}; name them in --variants to time them anyway"
        results["config"]["bf16_left_out"] = note
        print(note, file=sys.stderr, flush=True)
    results["other_load"] = {}
    started = time.perf_counter()
    print(f"measuring env stepping ({game}, {num_envs} envs) ...", file=sys.stderr, flush=True)
    with OtherLoad() as load:
        results["env"] = env_throughput(game, num_envs, env_steps, seed=args.seed, repeats=repeats)
    results["other_load"]["env"] = load.value
    if args.seeded_env is not None:
        print(f"measuring env stepping ({args.seeded_env}, {num_envs} envs) ...", file=sys.stderr, flush=True)
        with OtherLoad() as load:
            results["seeded_env"] = seeded_env_throughput(
                args.seeded_env, num_envs, env_steps, seed=args.seed, repeats=repeats
            )
        results["other_load"]["seeded_env"] = load.value
    if not args.skip_train:
        print(
            f"measuring PPO training ({len(variants)} variants, {iterations} iterations of "
            f"{num_envs} x {n_steps} steps on {device}) ...",
            file=sys.stderr,
            flush=True,
        )
        with OtherLoad() as load:
            results["train"] = train_throughput(
                game, num_envs, n_steps, iterations, device=device, seed=args.seed, variants=variants
            )
        results["other_load"]["train"] = load.value
    results["wall_seconds"] = time.perf_counter() - started
    print(format_throughput(results), end="")
    print(f"(benchmark took {results['wall_seconds']:.0f} s)")
    if args.json is not None:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
