"""What every benchmark shares: argument checks, interleaved timing, the machine and its load, tables.

The throughput (:mod:`heldout.bench.throughput`), agents (:mod:`heldout.bench.agents`) and wrappers
(:mod:`heldout.bench.wrappers`) benchmarks time their variants side by side in one process, report
the machine they ran on and how busy other processes kept it, and print aligned text tables.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

# -- argument checks (one clear line per bad value) ------------------------------------------------


def check_positive(name: str, value: Any) -> int:
    """``value`` as a positive int (:func:`heldout.protocol.checks.check_int`); ValueError naming it."""
    from heldout.protocol.checks import check_int

    return check_int(name, value, minimum=1)


def check_game(game: str) -> str:
    from heldout.envs.procgen import check_game as procgen_game

    try:
        return procgen_game(game)
    except KeyError as err:
        raise ValueError(err.args[0]) from None


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` if available else ``"cpu"``; an explicit device checked to exist here
    (:func:`heldout.protocol.checks.resolve_device`, the one device check of every command)."""
    from heldout.protocol.checks import resolve_device as check

    return check(device, what="--device")


def device_type(device: str) -> str:
    return "cuda" if device.startswith("cuda") else "cpu"


def rollout_timer() -> Any:
    """An SB3 callback that sums the wall time spent collecting rollouts."""
    from stable_baselines3.common.callbacks import BaseCallback

    class RolloutTimer(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds = 0.0
            self._start = 0.0

        def _on_rollout_start(self) -> None:
            self._start = time.perf_counter()

        def _on_rollout_end(self) -> None:
            self.seconds += time.perf_counter() - self._start

        def _on_step(self) -> bool:
            return True

    return RolloutTimer()


def rollout_bytes(model: Any) -> int | None:
    """Bytes of the model's rollout storage (None without one): every numpy array and torch tensor
    its ``rollout_buffer`` holds, directly or in a dict, each underlying memory counted once. Both
    engines keep observations in their own dtype (uint8 for Procgen): SB3's in host numpy,
    ``(n_steps, n_envs, ...)``; heldout's on the training device with one more step (the bootstrap
    observation), plus a few small host-staged fields."""
    import numpy as np
    import torch

    buffer = getattr(model, "rollout_buffer", None)
    if buffer is None:
        return None
    seen: set[int] = set()
    total = 0

    def add(value: Any) -> None:
        nonlocal total
        if isinstance(value, dict):
            for item in value.values():
                add(item)
        elif isinstance(value, np.ndarray):
            base = value if value.base is None else value.base
            if isinstance(base, np.ndarray) and id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
        elif isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()

    for value in vars(buffer).values():
        add(value)
    return total


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux ``/proc/self/statm``), None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_interleaved(
    builders: dict[str, Any],
    rollout: int,
    iterations: int,
    device: str,
    memory: dict[str, dict[str, int | None]] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Times ``iterations`` learn() iterations of each model, interleaved in rounds.

    Each model is built (``builders[key]()``) and runs one untimed warm-up iteration of ``rollout``
    steps; then every round times one iteration per model in turn, so that a change in the machine's
    load during the run slows every model alike. Envs are closed at the end.

    Args:
        memory: Filled, when given, per key with ``rollout_bytes`` (:func:`rollout_bytes`),
            ``held_bytes`` (resident memory the build and warm-up iteration added to this process:
            the model, its envs and buffers, the update's workspace as far as the allocator keeps it)
            and, on CUDA, ``peak_device_bytes`` (``torch.cuda.max_memory_allocated`` over the build
            and warm-up, reset before each model).

    Returns:
        ``(seconds, rollout_seconds)``: per key, the timed wall seconds and the part of them spent
        collecting rollouts.
    """
    models: dict[str, Any] = {}
    timers = {key: rollout_timer() for key in builders}
    seconds = dict.fromkeys(builders, 0.0)
    try:
        for key, build in builders.items():
            gc.collect()
            before = resident_bytes()
            if device.startswith("cuda"):
                import torch

                torch.cuda.reset_peak_memory_stats()
            models[key] = build()
            models[key].learn(total_timesteps=rollout)  # warm-up iteration, not timed
            if memory is not None:
                after = resident_bytes()
                memory[key] = {
                    "rollout_bytes": rollout_bytes(models[key]),
                    "held_bytes": None if before is None or after is None else max(0, after - before),
                }
                if device.startswith("cuda"):
                    sync(device)
                    memory[key]["peak_device_bytes"] = int(torch.cuda.max_memory_allocated())
        for _ in range(iterations):
            for key, model in models.items():
                sync(device)
                start = time.perf_counter()
                model.learn(total_timesteps=rollout, reset_num_timesteps=False, callback=timers[key])
                sync(device)
                seconds[key] += time.perf_counter() - start
    finally:
        for model in models.values():
            model.get_env().close()
        models.clear()
        gc.collect()
    return seconds, {key: timer.seconds for key, timer in timers.items()}


class OtherLoad:
    """Measures how much CPU other processes used while this one ran a benchmark (Linux only).

    ``(busy CPU seconds of the whole machine - CPU seconds of this process) / (wall seconds * CPUs)``,
    from ``/proc/stat`` and ``os.times()``. Near 0 on a quiet machine; a benchmark that shares its
    cores with another busy process (``0.5`` = one of two cores taken) reports figures that are
    lower than the code's, and ratios that are noisier, so the report prints it next to them.
    ``value`` is None where ``/proc/stat`` is missing.
    """

    def __init__(self) -> None:
        self.value: float | None = None

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [float(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal (guest time is already in user/nice)
        busy = sum(fields[:3]) + sum(fields[5:8])
        return busy / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> OtherLoad:
        self._start = (time.perf_counter(), self._busy(), self._own())
        return self

    def __exit__(self, *exc: Any) -> None:
        wall0, busy0, own0 = self._start
        busy1 = self._busy()
        wall = time.perf_counter() - wall0
        if busy0 is None or busy1 is None or wall <= 0:
            return
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        other = (busy1 - busy0) - (self._own() - own0)
        self.value = min(1.0, max(0.0, other / (wall * cpus)))


THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS", "KMP_BLOCKTIME")


def machine_info(device: str | None = None) -> dict[str, Any]:
    """CPU count, load, torch device name and library versions, for the report."""
    import importlib.metadata

    import torch

    from heldout.agents.precision import cpu_bf16_units
    from heldout.agents.precision import cpu_model as read_cpu_model

    cpu_model = read_cpu_model()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    else:
        device_name = f"cpu ({cpu_model})"
    versions = {}
    for dist in ("numpy", "gymnasium", "stable-baselines3", "procgen-mirror", "procgen-gym"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:  # one of the two procgen backends
            pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        load = []
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model,
        "cpu_bf16_units": cpu_bf16_units(),
        "load_average": load,
        "torch_device": device_name,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python_version": platform.python_version(),
        "versions": versions,
        # Thread settings that change CPU figures severalfold (see benchmarks/README.md).
        "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
    }


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [str(cells[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to a flag's help only where X is a real value.

    Left out: None (a flag whose help says what is taken instead, e.g. the preset's value), False (a
    ``store_true`` switch), an empty list (a repeatable flag) and help that states its default itself.
    Every ``heldout`` command and the benchmarks' own parsers use it (``heldout.cli.common`` imports it
    from here: bench may not import cli).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            return action.help
        if "default:" in (action.help or "") or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
