"""The keys of a sweep spec (grid, ``base``, ``tune.space``) and its ``tune:`` section: the search
space ``heldout sweep --tune`` tries on validation levels (docs/sweeps.md has the format).

A key is ``preset``, a config field, or ``FIELD.KEY`` for one key of a mapping field
(:func:`check_key`); keys in :data:`NOT_TUNED` are never tuned. ``method: grid`` tries every
combination of the space's lists, ``random`` draws ``samples`` trials seeded by ``tune.seed``
(:func:`trial_points`), ``optuna`` has them proposed by TPE (:class:`heldout.sweep.tune.Search`).
Bad input raises ValueError with one line naming it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from contextlib import suppress
from typing import Any

#: The config fields that are mappings: a grid key ``FIELD.KEY`` sets one of their keys.
MAPPING_FIELDS: tuple[str, ...] = ("agent_kwargs", "env_options", "contexts", "bonus_kwargs")
#: Fields the sweep sets itself.
SWEEP_OWNED: dict[str, str] = {"out": "the sweep's folder holds its runs (set 'folder' instead)"}

#: The keys of a ``tune:`` section.
TUNE_KEYS: tuple[str, ...] = ("method", "space", "samples", "seeds", "metric", "seed", "by", "batch")
#: The search methods.
METHODS: tuple[str, ...] = ("grid", "random", "optuna")
#: The methods that draw ``samples`` trials from lists and ranges.
SAMPLED: tuple[str, ...] = ("random", "optuna")
#: How a trial's runs are scored on the validation split.
METRICS: tuple[str, ...] = ("mean", "iqm")
#: The keys of a range in a random search space.
RANGE_KEYS: tuple[str, ...] = ("low", "high", "log", "int")
#: Keys that are not tuned, and why.
NOT_TUNED: dict[str, str] = {
    "seed": "a trial's seeds are tune.seeds",
    "env": "tuning picks hyper-parameters, not the game: put env in the grid",
    "preset": "a preset sets the whole config: put it in base or the grid",
    "num_validation_levels": "it sets the validation split the trials are scored on",
    "contexts": "the contexts set the validation split the trials are scored on",
    "imports": "plug-ins are imported for every run: put them in base",
}
#: Keys a random draw is rounded to (significant digits), so configs and tables stay readable.
DIGITS = 6


@dataclasses.dataclass(frozen=True)
class Range:
    """A range of a random search space: uniform on ``[low, high)`` (log-uniform with ``log``), or
    integers in ``[low, high]`` with ``int``."""

    low: float
    high: float
    log: bool = False
    int: bool = False

    def draw(self, rng: Any) -> float | int:
        """One value drawn with the :class:`numpy.random.Generator` ``rng``."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.int:
            return int(min(max(round(value), self.low), self.high))
        return float(f"{value:.{DIGITS}g}")


@dataclasses.dataclass(frozen=True)
class TuneSpec:
    """A checked ``tune:`` section.

    Attributes:
        space: ``{key: [values] | Range}`` in the order written.
        method: ``grid``, ``random`` or ``optuna``.
        samples: Trials a random or Optuna search draws (None for a grid).
        batch: The most trials Optuna has in flight (None: as many as the workers run).
        seeds: The seeds each trial trains; None: one that no grid run uses
            (:func:`heldout.sweep.tune.tune_seeds`).
        metric: ``mean`` or ``iqm`` of the validation returns.
        seed: Seeds the random search's generator.
        by: The grid keys each value (combination) of which gets its own best; None: every grid key
            but the seed, so each grid point but for its seed is tuned apart.
    """

    space: dict[str, Any]
    method: str = "grid"
    samples: int | None = None
    seeds: list[int] | None = None
    metric: str = "mean"
    seed: int = 0
    batch: int | None = None
    by: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The section as plain data (recorded in ``sweep.json`` and ``tuning.json``)."""
        return dataclasses.asdict(self)


def did_you_mean(value: Any, valid: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``valid``, or ''."""
    close = difflib.get_close_matches(str(value), list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(
    where: str, what: str, value: Any, valid: tuple[str, ...] | list[str], label: str = "valid keys"
) -> ValueError:
    """The one-line error for an unknown ``what`` (``key``, ``method``): the closest and the valid ones."""
    return ValueError(
        f"{where}: unknown {what} {value!r}{did_you_mean(value, valid)}; {label}: {', '.join(valid)}"
    )


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
            raise ValueError(
                f"{where}: {key!r} is no FIELD.KEY of a mapping field{did_you_mean(head, MAPPING_FIELDS)}; "
                f"mapping fields: {', '.join(MAPPING_FIELDS)}"
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


def _twice(items: list[Any]) -> Any:
    """The first item listed twice, or None."""
    return next((x for i, x in enumerate(items) if x in items[:i]), None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str):
            with suppress(ValueError):
                float(value)
                hint = " (YAML reads 1e-4 as text: write 1.0e-4)"
        raise ValueError(f"{where} must be a number, got {value!r}{hint}")
    return float(value)


def _range(key: str, data: dict[str, Any], where: str) -> Range:
    where = f"{where}.{key}"
    extra = [k for k in data if k not in RANGE_KEYS]
    if extra:
        raise unknown(where, "range key", extra[0], RANGE_KEYS)
    if not {"low", "high"} <= set(data):
        raise ValueError(f"{where}: a range needs low and high, e.g. {{low: 1.0e-4, high: 1.0e-3}}")
    low, high = _number(data["low"], f"{where}.low"), _number(data["high"], f"{where}.high")
    flags = {}
    for flag in ("log", "int"):
        value = data.get(flag, False)
        if not isinstance(value, bool):
            raise ValueError(f"{where}.{flag} must be true or false, got {value!r}")
        flags[flag] = value
    if not low < high:
        raise ValueError(f"{where}: low must be below high, got low={data['low']!r}, high={data['high']!r}")
    if flags["log"] and low <= 0:
        raise ValueError(f"{where}: a log range needs low > 0, got low={data['low']!r}")
    if flags["int"] and not (_is_int(data["low"]) and _is_int(data["high"])):
        raise ValueError(
            f"{where}: an int range needs whole-number bounds, got low={data['low']!r}, high={data['high']!r}"
        )
    if flags["int"]:
        return Range(int(data["low"]), int(data["high"]), log=flags["log"], int=True)
    return Range(low, high, log=flags["log"])


def parse_tune(data: Any, where: str, grid: dict[str, Any], base: dict[str, Any]) -> TuneSpec:
    """Checks a spec's ``tune:`` section against its ``grid`` and ``base`` (key names only; each
    trial's config is checked when the trials are built).

    Raises:
        ValueError: naming the bad key or value (one line).
    """
    where = f"{where}, tune"
    if not isinstance(data, dict):
        raise ValueError(
            f"{where} must be a mapping with a space, e.g. tune: {{space: {{agent_kwargs.ent_coef: [0.0, 0.01]}}}}"
        )
    extra = [k for k in data if k not in TUNE_KEYS]
    if extra:
        raise unknown(where, "key", extra[0], TUNE_KEYS)
    method = data.get("method", "grid")
    if method not in METHODS:
        raise unknown(f"{where}.method", "method", method, METHODS, "valid")
    metric = data.get("metric", "mean")
    if metric not in METRICS:
        raise ValueError(
            f"{where}.metric: unknown metric {metric!r}{did_you_mean(metric, METRICS)}; valid: {', '.join(METRICS)} "
            "(of the validation returns)"
        )
    seed = data.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"{where}.seed must be a whole number >= 0 (the random search's), got {seed!r}")

    space = data.get("space")
    if not isinstance(space, dict) or not space:
        raise ValueError(
            f"{where}.space must name at least one config key and its values, e.g. "
            f"space: {{agent_kwargs.ent_coef: [0.0, 0.01]}}, got {space!r}"
        )
    checked: dict[str, Any] = {}
    for key, values in space.items():
        check_key(key, f"{where}.space")
        head = key.partition(".")[0]
        if key in NOT_TUNED or head in NOT_TUNED:
            raise ValueError(
                f"{where}.space: {key!r} cannot be tuned: {NOT_TUNED.get(key, NOT_TUNED.get(head))}"
            )
        if key in MAPPING_FIELDS:
            raise ValueError(f"{where}.space: tune one key of {key!r} at a time, e.g. {key}.KEY")
        for section, keys in (("grid", grid), ("base", base)):
            if key in keys:
                raise ValueError(f"{where}.space: {key!r} is also in {section}; keep one")
        if isinstance(values, list):
            if not values:
                raise ValueError(f"{where}.space.{key} is an empty list: no value to try")
            if (twice := _twice([json.dumps(v, sort_keys=True) for v in values])) is not None:
                raise ValueError(f"{where}.space.{key} lists {twice} twice: each value once")
            checked[key] = list(values)
        elif isinstance(values, dict):
            if method not in SAMPLED:
                raise ValueError(
                    f"{where}.space.{key}: a range ({{low, high}}) is drawn from by method: random or "
                    "optuna; a grid needs a list of values"
                )
            checked[key] = _range(key, values, f"{where}.space")
        else:
            raise ValueError(
                f"{where}.space.{key} must be a list of values"
                + (" or a range {low, high, log, int}" if method in SAMPLED else "")
                + f", got {values!r}"
            )

    samples = data.get("samples")
    if method == "grid" and samples is not None:
        raise ValueError(
            f"{where}.samples applies to method: random or optuna; a grid tries every combination of the space"
        )
    if method in SAMPLED and samples is None:
        raise ValueError(f"{where}: method {method} needs samples: N, the number of trials to draw")
    if method in SAMPLED and (not _is_int(samples) or samples <= 0):
        raise ValueError(
            f"{where}.samples: method {method} needs samples: N, a whole number > 0, got {samples!r}"
        )
    size = space_size(checked)
    if method in SAMPLED and size is not None and samples > size:
        raise ValueError(
            f"{where}.samples: {samples} trials asked of a space that holds {size} distinct one(s): "
            f"give samples <= {size}" + (", or method: grid to try each once" if method == "random" else "")
        )
    batch = data.get("batch")
    if batch is not None and method != "optuna":
        raise ValueError(f"{where}.batch applies to method: optuna (the most trials in flight at once)")
    if batch is not None and (not _is_int(batch) or batch <= 0):
        raise ValueError(f"{where}.batch: the most trials in flight, a whole number > 0, got {batch!r}")

    seeds = data.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
            raise ValueError(f"{where}.seeds must be a list of whole numbers >= 0, e.g. [0], got {seeds!r}")
        if (twice := _twice(seeds)) is not None:
            raise ValueError(f"{where}.seeds lists {twice} twice: each seed once")
    by = data.get("by")
    if by is not None:
        if not isinstance(by, list) or not all(isinstance(k, str) for k in by):
            raise ValueError(f"{where}.by must be a list of grid keys, e.g. [agent], got {by!r}")
        for key in by:
            if key == "seed":
                raise ValueError(f"{where}.by: 'seed' cannot be tuned apart: a trial's seeds are tune.seeds")
            if key not in grid:
                raise ValueError(
                    f"{where}.by names {key!r}, which is not a grid key{did_you_mean(key, [k for k in grid if k != 'seed'])}; "
                    f"grid keys: {', '.join(k for k in grid if k != 'seed') or '(none but seed)'}"
                )
        if (twice := _twice(by)) is not None:
            raise ValueError(f"{where}.by lists {twice!r} twice")
    return TuneSpec(checked, method, samples, seeds, metric, seed, batch, by)


def space_size(space: dict[str, Any]) -> int | None:
    """The number of distinct trials a space holds: the product of its lists' lengths and its integer
    ranges' widths; None (unbounded) with a float range."""
    size = 1
    for values in space.values():
        if isinstance(values, Range) and not values.int:
            return None
        size *= int(values.high - values.low + 1) if isinstance(values, Range) else len(values)
    return size


def trial_points(tune: TuneSpec) -> list[tuple[str, dict[str, Any]]]:
    """The trials, ``[(name, {key: value})]``.

    A grid's trials are the product of the space's lists (the last key fastest), named by their
    values (``learning_rate=0.0003,ent_coef=0.01``); a random search's are ``trial-000``, ... in the
    order drawn. A draw equal to an earlier one is drawn again (``samples`` is at most the space's
    size, :func:`space_size`, so the draws end).

    Raises:
        ValueError: two grid trials whose names coincide (values that read alike in a folder name).
    """
    import itertools

    import numpy as np

    keys = list(tune.space)
    out: list[tuple[str, dict[str, Any]]] = []
    if tune.method == "optuna":
        raise ValueError("method optuna proposes its trials as the search goes (heldout.sweep.tune.Search)")
    if tune.method == "grid":
        names: dict[str, dict[str, Any]] = {}
        for combo in itertools.product(*(tune.space[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            name = ",".join(f"{k.rpartition('.')[2]}={fragment(v)}" for k, v in values.items())
            if name in names:
                raise ValueError(
                    f"tune.space: trials {names[name]} and {values} would share the folder {name!r}; "
                    "give values that differ in their names"
                )
            names[name] = values
            out.append((name, values))
        return out
    rng = np.random.default_rng(tune.seed)
    seen: set[str] = set()
    while len(out) < int(tune.samples or 0):
        values = {}
        for key in keys:
            space = tune.space[key]
            values[key] = (
                space.draw(rng) if isinstance(space, Range) else space[int(rng.integers(len(space)))]
            )
        shown = json.dumps(values, sort_keys=True)
        if shown in seen:
            continue
        seen.add(shown)
        out.append((f"trial-{len(out):03d}", values))
    return out


def corner_points(tune: TuneSpec) -> list[tuple[str, dict[str, Any]]]:
    """Two configs at the space's ends (each range's low, then high; each list's first, then last):
    what ``method: optuna`` checks before any compute, as its trials are proposed later."""
    low = {k: (v.low if isinstance(v, Range) else v[0]) for k, v in tune.space.items()}
    high = {k: (v.high if isinstance(v, Range) else v[-1]) for k, v in tune.space.items()}
    for values in (low, high):
        for key, space in tune.space.items():
            if isinstance(space, Range) and space.int:
                values[key] = int(values[key])
    return [("corner-low", low), ("corner-high", high)]


__all__ = [
    "MAPPING_FIELDS",
    "METHODS",
    "NOT_TUNED",
    "Range",
    "TuneSpec",
    "check_key",
    "parse_tune",
    "trial_points",
]
