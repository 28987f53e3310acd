"""The keys of a sweep spec's grid, ``base`` and ``tune.space``: config fields, ``preset``, or
``FIELD.KEY`` for one key of a mapping field; and how a value reads in a folder name.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

#: The config fields that are mappings: a grid key ``FIELD.KEY`` sets one of their keys.
MAPPING_FIELDS: tuple[str, ...] = ("agent_kwargs", "env_options", "contexts")
#: Fields the sweep sets itself.
SWEEP_OWNED: dict[str, str] = {"out": "the sweep's folder holds its runs (set 'folder' instead)"}


def did_you_mean(value: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(value), valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def grid_keys() -> list[str]:
    """The plain keys a grid or ``base`` may hold: ``preset`` and the config's fields."""
    from heldout.protocol.config import field_names

    return ["preset", *(n for n in field_names() if n not in SWEEP_OWNED)]


def check_key(key: Any, where: str) -> str:
    """``key`` checked to be a grid key (``preset``, a config field, or ``FIELD.KEY`` of a mapping field).

    Raises:
        ValueError: naming the key, the closest valid one and the valid ones.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}: a key must be a config field name, got {key!r}")
    if key in SWEEP_OWNED:
        raise ValueError(f"{where}: {key!r} cannot be set in a sweep: {SWEEP_OWNED[key]}")
    head, dot, tail = key.partition(".")
    if dot:
        if head not in MAPPING_FIELDS:
            hint = did_you_mean(head, list(MAPPING_FIELDS))
            raise ValueError(
                f"{where}: {key!r} is no FIELD.KEY of a mapping field{hint}; mapping fields: "
                f"{', '.join(MAPPING_FIELDS)}"
            )
        if not tail or "." in tail:
            raise ValueError(f"{where}: {key!r} must be FIELD.KEY with one key, e.g. agent_kwargs.ent_coef")
        return key
    valid = grid_keys()
    if key not in valid:
        hint = did_you_mean(key, valid) or f" (an agent's keyword argument is agent_kwargs.{key})"
        raise ValueError(
            f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(valid)}, or FIELD.KEY of "
            f"{', '.join(MAPPING_FIELDS)}"
        )
    return key


def fragment(value: Any) -> str:
    """A value as a piece of a folder name (``0.01``, ``crop``, ``{"gravity": ...}`` made safe)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", text).strip("_") or "_"


__all__ = ["MAPPING_FIELDS", "SWEEP_OWNED", "check_key", "did_you_mean", "fragment", "grid_keys"]
