"""The checks every part shares: whole numbers, bounded numbers, seeds, booleans, the torch device,
and how a ``KEY=VALUE`` flag's value is read.

Each part checks the fields it owns (:mod:`heldout.protocol.validate`), and they all check a number
the same way: its type (a bool is no number), its finiteness (NaN and infinities are refused), its
range, each refused with a ValueError / TypeError that names the field, the bad value and the valid
ones, so that every command answers bad input with one line. :func:`resolve_device` is the one check
of a torch device, used by ``heldout train``, ``eval``, ``saliency`` and the benchmarks: a device
this machine does not have is an error, never a silent fall-back to the CPU.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from heldout.safe_yaml import StrictYamlLoader, load_yaml
from heldout.splits import MAX_SEED

#: Devices ``resolve_device`` accepts, for messages.
DEVICE_FORMS = "auto, cpu, cuda, cuda:N"


#: The longest value a message shows whole.
SHOWN_CHARS = 60


def shown(value: Any) -> str:
    """``repr(value)`` for a message, bounded: an integer of hundreds of digits (read from a hostile
    file) or a long list is cut to :data:`SHOWN_CHARS` characters, with its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 190:
        return (
            f"an integer of {len(str(abs(value))) if value.bit_length() < 14000 else 'thousands of'} digits"
        )
    text = repr(value)
    if len(text) > SHOWN_CHARS:
        return f"{text[: SHOWN_CHARS - 3]}... ({len(text)} characters)"
    return text


def _is_int(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def parse_value(text: str) -> Any:
    """A ``KEY=VALUE`` flag's value: YAML (``0.2``, ``[crop,flip]``, ``null``, ``true``), with two
    changes that keep a typo from passing as something else: only ``true`` / ``false`` are booleans
    (``yes``, ``on``, ... stay text, which the owner of the key then refuses; :class:`StrictYamlLoader`),
    and numbers YAML leaves as text (``1e-3``, ``nan``, ``inf``, ``1e400``) are numbers (``1e5`` an
    integer), so that range and finiteness checks see them as such."""
    stripped = text.strip()
    try:
        parsed = load_yaml(text)
    except yaml.YAMLError:
        return text
    if isinstance(parsed, str) and parsed == stripped:
        try:
            number = float(stripped)
        except ValueError:
            return parsed
        if math.isfinite(number) and number.is_integer() and "." not in stripped and "e" in stripped.lower():
            return int(number)
        return number
    return parsed


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int, checked to be a whole number in ``[minimum, maximum]``.

    Raises:
        ValueError: naming ``name``, the value and the valid range.
    """
    if minimum == 1 and maximum is None:
        valid = "a positive integer"
    elif minimum == 0 and maximum is None:
        valid = "a non-negative integer"
    elif minimum is not None and maximum is not None:
        valid = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        valid = f"an integer >= {minimum}"
    else:
        valid = "an integer"
    if not _is_int(value):
        raise ValueError(f"{name} must be {valid}, got {shown(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {valid}, got {shown(value)}")
    return value


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float, checked to be a finite number in the interval ``low .. high``.

    ``low_open`` / ``high_open`` exclude the ends: ``check_number("gamma", g, 0, 1, low_open=True)``
    is ``0 < gamma <= 1``.

    Raises:
        ValueError: naming ``name``, the value and the valid interval.
    """
    if low is not None and high is not None:
        valid = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        valid = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        valid = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        valid = "a finite number"
    try:  # an int beyond a float's range (10**400) is no finite float either
        x = float(value) if _is_number(value) else math.nan
    except OverflowError:
        x = math.nan
    if not math.isfinite(x):
        raise ValueError(f"{name} must be {valid}, got {shown(value)}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {valid}, got {shown(value)}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {valid}, got {shown(value)}")
    return x


def check_bool(name: str, value: Any) -> bool:
    """``value`` checked to be ``True`` or ``False`` (not 1, ``"yes"`` or ``"maybe"``)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_seed(name: str, value: Any) -> int:
    """A seed: an integer in ``[0, MAX_SEED)`` (Procgen's seeds are C ints; numpy's are unsigned)."""
    return check_int(name, value, 0, MAX_SEED - 1)


#: The largest count a run records (int64: what SB3, numpy and torch count steps in).
MAX_RECORDED = 2**63 - 1

_KINDS = {
    "count": "a whole number >= 0",
    "number": "a finite number",
    "text": "text",
    "bool": "true or false",
    "mapping": "a mapping",
    "list": "a list",
}


def check_fields(data: Any, fields: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` (read from a file of a run or sweep folder: untrusted) checked field by field.

    ``fields`` maps each key to its kind: ``"count"`` (a whole number in ``[0, 2**63 - 1]``),
    ``"number"`` (finite), ``"text"``, ``"bool"``, ``"mapping"``, ``"list"``, or ``(minimum,
    maximum)`` for a whole number in that range; a trailing ``"?"`` (``"count?"``, ``(1, 9, "?")``)
    lets the key be missing or null. Keys not named are not looked at. A number of any size, NaN, an infinity, a
    bool where a number belongs or the wrong type are refused, never converted.

    Raises:
        ValueError: one line naming ``where``, the key, the value (bounded: :func:`shown`) and what it
            must be.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where} holds no mapping of fields (a {type(data).__name__})")
    for key, kind in fields.items():
        optional = kind[-1] == "?"
        kind = kind.rstrip("?") if isinstance(kind, str) else kind[:2]
        value = data.get(key)
        if value is None:
            if optional:
                continue
            raise ValueError(f"{where} has no {key!r}" + ("" if key not in data else " (it is null)"))
        name = f"{where}: {key}"
        if isinstance(kind, tuple):
            check_int(name, value, *kind)
        elif kind == "count":
            check_int(name, value, 0, MAX_RECORDED)
        elif kind == "number":
            check_number(name, value)
        elif not isinstance(value, {"text": str, "bool": bool, "mapping": dict, "list": list}[kind]):
            raise ValueError(f"{name} must be {_KINDS[kind]}, got {shown(value)}")
    return data


def describe_space(space: Any) -> str:
    """A short form of an observation or action space for messages (no per-element bounds)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        kind = "images" if len(space.shape) == 3 else "vectors"
        return f"{kind}, a Box of shape {tuple(space.shape)} ({space.dtype})"
    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    if isinstance(space, spaces.Dict):
        return f"a Dict of {', '.join(space.spaces)}"
    return type(space).__name__


def resolve_device(device: Any, what: str = "device") -> str:
    """The torch device ``device`` names, checked to exist on this machine.

    ``"auto"`` is ``"cuda"`` where CUDA is available, else ``"cpu"``; ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` (and ``"mps"`` on a Mac that has it) are checked to exist here. A CUDA device asked
    for on a machine without one is an error, not SB3's silent fall-back to the CPU.

    Raises:
        ValueError: naming the device and the valid ones on this machine.
    """
    import torch

    if not isinstance(device, str) or not device.strip():
        raise ValueError(f"{what} must be one of {DEVICE_FORMS}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown {what} {device!r}; valid: {DEVICE_FORMS}") from None
    available = ["auto", "cpu"]
    if torch.cuda.is_available():
        available += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        available.append("mps")
    if parsed.type == "cpu":
        if parsed.index not in (None, 0):
            raise ValueError(f"unknown {what} {device!r}; valid: {DEVICE_FORMS}")
        return "cpu"
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{what} {device!r} asked for, but this machine has no CUDA device "
                f"(torch.cuda.is_available() is False); valid here: {', '.join(available)}"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"{what} {device!r} does not exist; this machine has {torch.cuda.device_count()} CUDA "
                f"device(s); valid here: {', '.join(available)}"
            )
        return str(parsed)
    if parsed.type == "mps" and "mps" in available:
        return "mps"
    raise ValueError(f"unsupported {what} {device!r}; valid here: {', '.join(available)}")


__all__ = [
    "DEVICE_FORMS",
    "MAX_RECORDED",
    "check_fields",
    "StrictYamlLoader",
    "check_bool",
    "check_int",
    "check_number",
    "check_seed",
    "describe_space",
    "load_yaml",
    "parse_value",
    "resolve_device",
    "shown",
]
