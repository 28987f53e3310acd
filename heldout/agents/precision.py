"""bf16 mixed precision for on-policy agents: only the trunk under autocast; whether a CPU has bf16 units.

``precision="bf16"`` (:class:`heldout.agents.ppo.PPO`) runs each features extractor (the trunk, where
nearly all the compute is) under ``torch.autocast(dtype=torch.bfloat16)`` and hands its output on as
float32. Everything after the trunk runs in fp32: the policy and value heads, the action
distribution (its logsumexp), the values, the PPO loss and every agent's auxiliary loss and
optimiser (DrAC's regulariser, SG-PPO's decoder, SGFD's level classifier). So with identical weights
the policy ratio ``exp(log_prob - old_log_prob)`` is exactly 1 (acting and the update compute the
same fp32 log-probabilities from the same bf16 trunk), and a value is rounded only through its
features, never by a bf16 head (which rounds ``V`` to ``|V| * 2^-9``, 0.25 at ``|V| = 100``, beside a
value clip of 0.2).

A CPU without bf16 units emulates bf16 in software: measured on an AMD EPYC without AVX-512,
``heldout bench throughput`` ran the bf16 engine at 9.9 steps/s against 112 in fp32 (11x slower)
and its bf16 learner floor at 11 against 127 (benchmarks/README.md). :func:`bf16_cpu_warning` says
so in one line; ``heldout train`` prints it before training and ``heldout bench throughput`` leaves
the bf16 variants out by default on such CPUs.
"""

from __future__ import annotations

import contextlib
import platform
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

#: The CPU flags of bf16 units: x86's AVX-512 BF16 and AMX-BF16 (Linux ``/proc/cpuinfo`` names;
#: ``torch.cpu.get_capabilities()`` spells them ``avx512_bf16``, ``amx_bf16``), ARM's BF16 extension.
BF16_CPU_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16", "bf16", "svebf16")

#: Where Linux lists the CPU's model name and flags.
CPUINFO = Path("/proc/cpuinfo")

#: The measured cost of emulated bf16 that the warning quotes (engine steps/s, bf16 against fp32).
EMULATED_BF16_COST = "measured 11x slower than fp32 (9.9 against 112 steps/s on an AMD EPYC without AVX-512)"


#: The open autocast regions of :func:`trunk_autocast`, innermost last, per thread: one stack for
#: every context, so that nested contexts (evaluation's inside training's) close them in order.
_REGIONS = threading.local()


def _regions() -> list[Any]:
    if not hasattr(_REGIONS, "stack"):
        _REGIONS.stack = []
    return _REGIONS.stack


def _as_float(output: Any) -> Any:
    """``output`` with its floating-point tensors (also inside tuples and lists) cast to float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, (tuple, list)):
        return type(output)(_as_float(item) for item in output)
    return output


def trunks(module: nn.Module) -> list[nn.Module]:
    """The features extractors (SB3 ``BaseFeaturesExtractor``) inside ``module``, each once."""
    return [m for m in module.modules() if isinstance(m, BaseFeaturesExtractor)]


@contextlib.contextmanager
def trunk_autocast(module: nn.Module, device_type: str) -> Iterator[None]:
    """While active, every features extractor in ``module`` runs under bf16 autocast and returns fp32.

    Whatever calls the trunk (SB3's ``policy(obs)``, ``predict_values``, ``extract_features``, an
    agent's own forward passes) gets bf16-computed features as float32 tensors, and every layer
    after them runs in fp32. Implemented with forward hooks on the extractors, removed on exit; the
    autocast region is closed even when the forward pass raises, and nested contexts close theirs
    innermost first.

    Args:
        module: A policy (or any module holding features extractors).
        device_type: The device type autocast runs on (``"cpu"``, ``"cuda"``).
    """

    def enter(_: nn.Module, args: Any) -> None:
        region = torch.autocast(device_type=device_type, dtype=torch.bfloat16)
        region.__enter__()
        _regions().append(region)

    def leave(_: nn.Module, args: Any, output: Any) -> Any:
        _regions().pop().__exit__(None, None, None)
        return _as_float(output)

    handles = []
    try:
        for trunk in trunks(module):
            handles.append(trunk.register_forward_pre_hook(enter))
            handles.append(trunk.register_forward_hook(leave, always_call=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def precision_context(module: nn.Module, precision: str, device: torch.device | str) -> Any:
    """:func:`trunk_autocast` for ``precision="bf16"``, else nothing (fp32 throughout)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return trunk_autocast(module, torch.device(device).type)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name`` on Linux), or the platform's guess."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_bf16_units() -> bool | None:
    """Whether this CPU has bf16 units (:data:`BF16_CPU_FLAGS`); None when it cannot be told.

    Reads ``torch.cpu.get_capabilities()`` on x86 (recent torch) and otherwise the flags of Linux's
    ``/proc/cpuinfo`` (ARM: ``bf16``, ``svebf16``); ``torch.backends.cpu.get_cpu_capability()`` cannot tell (it says
    ``AVX512`` with or without AVX-512 BF16).
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        try:
            found = capabilities()
        except Exception:  # noqa: BLE001 - a probe; fall back to /proc/cpuinfo
            found = {}
        if "avx512_bf16" in found:  # x86; other architectures: /proc/cpuinfo
            return bool(found["avx512_bf16"] or found.get("amx_bf16"))
    try:
        text = CPUINFO.read_text()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    if not flags:
        return None
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def emulated_bf16(device: torch.device | str = "cpu") -> str | None:
    """Why bf16 is slow on ``device``, in words, where it is emulated; None where it is not (or cannot
    be told): a CPU device whose CPU has no bf16 units (:func:`cpu_bf16_units`)."""
    if torch.device(device).type != "cpu" or cpu_bf16_units() is not False:
        return None
    return (
        f"this CPU ({cpu_model()}) has no bf16 units (no avx512_bf16 or amx_bf16): bf16 is emulated, "
        f"{EMULATED_BF16_COST}"
    )


def bf16_cpu_warning(precision: str, device: torch.device | str) -> str | None:
    """The one line to print before training in bf16 on a CPU without bf16 units; None otherwise.

    bf16 there is emulated in software: correct, but about an order of magnitude slower than fp32
    (:data:`EMULATED_BF16_COST`). Said, not refused: the results are right, a run may be meant as a
    check of bf16 itself, and a sweep whose grid holds bf16 should not fail on the nodes without the
    units. None for fp32, for a non-CPU device, and where the CPU's units cannot be told.
    """
    reason = emulated_bf16(device) if precision == "bf16" else None
    return None if reason is None else f"warning: precision bf16: {reason}; use fp32 on this machine"


__all__ = [
    "BF16_CPU_FLAGS",
    "CPUINFO",
    "EMULATED_BF16_COST",
    "bf16_cpu_warning",
    "cpu_bf16_units",
    "cpu_model",
    "emulated_bf16",
    "precision_context",
    "trunk_autocast",
    "trunks",
]
