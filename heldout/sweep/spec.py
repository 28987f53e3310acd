"""A sweep's spec: the YAML file ``heldout sweep`` reads, checked and expanded into runs.

docs/sweeps.md has the format (``name``, ``folder``, ``base``, ``grid``, ``zip``, ``tune``,
``resources``). A run's config is its preset, then ``base``, then its grid values; its folder is
:func:`run_name`. Bad input raises ValueError / KeyError / TypeError with one line naming it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heldout.sweep.tune_spec import MAPPING_FIELDS, check_key, grid_keys
from heldout.sweep.tune_spec import did_you_mean as _did_you_mean
from heldout.sweep.tune_spec import fragment as _fragment
from heldout.sweep.tune_spec import unknown as unknown_error

#: The keys a spec may have.
SPEC_KEYS: tuple[str, ...] = ("name", "description", "folder", "base", "grid", "zip", "tune", "resources")
#: What ``resources`` may ask for per run (``--backend ray``), and the values each takes.
RESOURCES = {
    "cpus": "a whole number of CPUs from 1 to 1024",
    "gpus": "a number of GPUs from 0 to 64: a fraction below 1 (runs share a GPU) or a whole number",
}

#: The preset a run starts from when the spec names none (``heldout train``'s default).
DEFAULT_PRESET = "procgen-easy"
#: The most runs a sweep plans unless ``--max-runs`` allows more (a typo such as a seed range of
#: 1000 instead of 10 is refused in a moment, before a million-run plan is built).
DEFAULT_MAX_RUNS = 1000
#: The grid keys a run's folder name is made of, in this order, as ``<env>/<agent>/seed<k>``.
NAMED_BY = ("env", "agent", "seed")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class SweepSpec:
    """A checked spec.

    Attributes:
        name: The sweep's name (its identity: recorded in ``<folder>/sweep.json``).
        folder: The sweep's folder, relative to the current folder unless absolute.
        grid: ``{key: [values]}`` in the order written.
        zip: Groups of grid keys stepped through together.
        base: Config values every run shares (``preset`` among them, if given).
        source: The spec file it was read from ('' when built in code).
        description: Free text.
        tune: The checked ``tune:`` section (:class:`~heldout.sweep.tune_spec.TuneSpec`), or None.
        resources: What each run asks Ray for, ``{"cpus": 1, "gpus": 0.25}`` (:data:`RESOURCES`).
    """

    name: str
    folder: Path
    grid: dict[str, list[Any]]
    zip: list[list[str]] = field(default_factory=list)
    base: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    description: str = ""
    tune: Any = None
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """How its error lines name it: ``sweep spec 'FILE'``."""
        return f"sweep spec {self.source!r}" if self.source else "sweep spec"

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (what ``sweep.json`` records)."""
        out = {key: getattr(self, key) for key in ("name", "description", "folder", "base", "grid", "zip")}
        out["folder"] = str(self.folder)
        if self.tune is not None:
            out["tune"] = self.tune.to_dict()
        if self.resources:
            out["resources"] = self.resources
        return out


@dataclass(frozen=True)
class RunPoint:
    """One run of a sweep.

    Attributes:
        name: Its folder, relative to the sweep's folder (``cartpole/ppo/seed0``).
        point: Its grid values, ``{key: value}``.
        config: Its resolved :class:`~heldout.protocol.config.TrainConfig`.
    """

    name: str
    point: dict[str, Any]
    config: Any


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value)


def parse_spec(data: Any, source: str = "", default_name: str = "sweep") -> SweepSpec:
    """Checks a loaded spec and returns it; nothing is looked up beyond the key names.

    Raises:
        ValueError / TypeError: naming the bad key or value (one line).
    """
    where = f"sweep spec {source!r}" if source else "sweep spec"
    if not isinstance(data, dict):
        raise ValueError(f"{where} holds no mapping of keys (name, folder, base, grid, zip)")
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        raise unknown_error(where, "key", unknown[0], SPEC_KEYS)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{where}: name must be a short name of letters, digits, '.', '_' and '-', got {name!r}"
        )
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{where}: description must be text, got {description!r}")
    folder = data.get("folder", f"sweeps/{name}")
    if not isinstance(folder, str) or not folder.strip():
        raise ValueError(f"{where}: folder must be a path, got {folder!r}")

    base = data.get("base", {}) or {}
    if not isinstance(base, dict):
        raise ValueError(f"{where}: base must be a mapping of config fields to values, got {base!r}")
    for key in base:
        check_key(key, f"{where}, base")

    grid = data.get("grid")
    if grid is None or grid == {}:
        raise ValueError(
            f"{where}: the grid is empty: give 'grid' at least one key with a list of values, "
            "e.g. grid: {seed: [0, 1, 2]}"
        )
    if not isinstance(grid, dict):
        raise ValueError(f"{where}: grid must be a mapping of keys to lists of values, got {grid!r}")
    for key, values in grid.items():
        check_key(key, f"{where}, grid")
        if key in base:
            raise ValueError(f"{where}: {key!r} is both in base and in the grid; keep one")
        if not isinstance(values, list):
            raise ValueError(
                f"{where}: grid.{key} must be a list of values, got {_show(values)} "
                f"(one value for every run goes in base)"
            )
        if not values:
            raise ValueError(f"{where}: grid.{key} is an empty list: the grid would hold no run")
    for section, keys in (("base", base), ("grid", grid)):
        for head in {k.partition(".")[0] for k in keys if "." in k}:
            if head in keys:
                raise ValueError(f"{where}: {section} gives both {head!r} and {head}.KEY; use one form")

    zipped = data.get("zip", []) or []
    if not isinstance(zipped, list) or not all(isinstance(g, list) for g in zipped):
        raise ValueError(
            f"{where}: zip must be a list of lists of grid keys, e.g. [[agent, seed]], got {zipped!r}"
        )
    taken: set[str] = set()
    for group in zipped:
        if len(group) < 2:
            raise ValueError(f"{where}: zip group {group!r} needs two or more grid keys to step together")
        for key in group:
            if key not in grid:
                raise ValueError(
                    f"{where}: zip names {key!r}, which is not a grid key{_did_you_mean(str(key), list(grid))}; "
                    f"grid keys: {', '.join(grid)}"
                )
            if key in taken:
                raise ValueError(f"{where}: {key!r} is in two zip groups; a key steps with one group")
            taken.add(key)
        lengths = {key: len(grid[key]) for key in group}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise ValueError(f"{where}: zipped lists must be of one length: {shown}")
    # a value twice in a list would be one run twice; in a zip group, a row of values twice
    grouped = {key for group in zipped for key in group}
    for group in [[k] for k in grid if k not in grouped] + zipped:
        seen: set[str] = set()
        for row in zip(*(grid[k] for k in group), strict=True):
            shown = _show(row[0]) if len(group) == 1 else _show(dict(zip(group, row, strict=True)))
            if shown in seen:
                what = f"grid.{group[0]}" if len(group) == 1 else f"zip group {group}"
                raise ValueError(f"{where}: {what} lists {shown} twice: each value once")
            seen.add(shown)
    tune = None
    if data.get("tune") is not None:
        from heldout.sweep.tune_spec import parse_tune

        tune = parse_tune(data["tune"], where, grid, base)
    return SweepSpec(
        name=name,
        folder=Path(folder).expanduser(),
        grid=dict(grid),
        zip=[list(g) for g in zipped],
        base=dict(base),
        source=source,
        description=description,
        tune=tune,
        resources=parse_resources(data.get("resources"), where),
    )


def parse_resources(value: Any, where: str) -> dict[str, Any]:
    """The spec's ``resources`` checked: ``{"cpus": int, "gpus": number}``, either left out.

    Raises:
        ValueError: One line naming the bad key or value and the valid ones.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            f"{where}: resources must be a mapping such as {{cpus: 1, gpus: 0.25}}, got {_show(value)}"
        )
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key not in RESOURCES:
            raise unknown_error(f"{where}: resources", "key", key, list(RESOURCES))
        number = (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, float) and math.isfinite(v)
        )
        whole = number and (isinstance(v, int) or v.is_integer())
        ok = number and (1 <= v <= 1024 and whole if key == "cpus" else 0 <= v <= 64 and (v < 1 or whole))
        if not ok:
            shown = _show(v)
            raise ValueError(f"{where}: resources.{key} must be {RESOURCES[key]}, got {shown[:40]}")
        out[key] = int(v) if whole else float(v)
    return out


def load_spec(path: str | Path) -> SweepSpec:
    """Reads and checks the spec file ``path`` (YAML; only ``true``/``false`` are booleans).

    Raises:
        ValueError: naming the file when it is missing or not YAML, or the bad key or value.
    """
    from heldout.protocol.run_folder import read_yaml

    if not Path(path).is_file():
        raise ValueError(f"sweep spec {str(path)!r} does not exist")
    data = read_yaml(path, mapping=True)
    return parse_spec(data, source=str(path), default_name=Path(path).stem)


def _axes(spec: SweepSpec) -> list[list[dict[str, Any]]]:
    """The grid's axes, each a list of ``{key: value}`` parts: one per key, a zip group being one
    axis, in the order their first key is written in the grid (as many parts as values: small)."""
    group_of = {key: tuple(group) for group in spec.zip for key in group}
    groups = dict.fromkeys(group_of.get(key, (key,)) for key in spec.grid)  # in order, each once
    return [
        [dict(zip(group, values, strict=True)) for values in zip(*(spec.grid[k] for k in group), strict=True)]
        for group in groups
    ]


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid points, ``[{key: value}]``: the product of :func:`_axes`, the last varying fastest.
    Check the grid's size first (:func:`check_grid_size`): this list holds every run."""
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*_axes(spec))]


def grid_size(spec: SweepSpec) -> int:
    """The number of runs of the grid, the product of its axes' lengths, computed without expanding it."""
    return math.prod(len(axis) for axis in _axes(spec))


def check_grid_size(spec: SweepSpec, max_runs: int = DEFAULT_MAX_RUNS) -> int:
    """The grid's size (:func:`grid_size`), refused above ``max_runs`` before anything is expanded.

    Raises:
        ValueError: naming the size, its factors and the flag that confirms it (``--max-runs``).
    """
    size = grid_size(spec)
    if size > max_runs:
        factors = " x ".join(f"{len(axis)} {'+'.join(axis[0])}" for axis in _axes(spec))
        raise ValueError(
            f"{spec.where}: the grid holds {size:,} runs ({factors}), more than --max-runs {max_runs:,}: "
            f"shrink the grid, or pass --max-runs {size} if you mean to plan them all"
        )
    return size


def _apply(config: Any, values: dict[str, Any], where: str) -> Any:
    """``config`` with ``values`` set: a mapping merged into the field's, ``FIELD.KEY`` one key of it."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        head, dot, tail = key.partition(".")
        if dot:
            current = changes.get(head, dict(getattr(config, head)))
            changes[head] = {**current, tail: value}
        elif key in MAPPING_FIELDS:
            if not isinstance(value, dict):
                raise TypeError(f"{where}: {key} must be a mapping of names to values, got {_show(value)}")
            changes[key] = {**getattr(config, key), **value}
        else:
            changes[key] = value
    return config.replace(**changes)


def run_name(point: dict[str, Any], config: Any, varying: list[str]) -> str:
    """``[<key>=<value>,.../]<env>/<agent>/seed<k>``: the folder of a grid point."""
    extra = [k for k in varying if k not in NAMED_BY]
    head = ",".join(f"{k.rpartition('.')[2]}={_fragment(point[k])}" for k in extra)
    tail = f"{_fragment(config.env)}/{_fragment(config.agent)}/seed{config.seed}"
    return f"{head}/{tail}" if head else tail


def import_spec_plugins(spec: SweepSpec) -> None:
    """Imports the spec's ``base.imports``: they may register the presets, envs and agents it names."""
    from heldout.protocol.config import import_list
    from heldout.protocol.plugins import import_plugins

    try:
        import_plugins(import_list(spec.base.get("imports", [])))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{spec.where}, base.imports: {exc}") from None


def build_run(spec: SweepSpec, point: dict[str, Any], prefix: str = "") -> RunPoint:
    """The run of one point (grid values, and for a tuning trial its tuned values after them): its
    preset, then ``base``, then the point's values, checked by the config itself and resolved. Its
    name is :func:`run_name` (the keys that vary in the grid), under ``prefix`` if given.

    Raises:
        KeyError: an unknown preset (did you mean).
        ValueError / TypeError: a bad value.
    """
    from heldout.protocol.offline import is_offline
    from heldout.protocol.presets import PRESETS

    base = {k: v for k, v in spec.base.items() if k != "preset"}
    preset = point.get("preset", spec.base.get("preset", DEFAULT_PRESET))
    if not isinstance(preset, str) or preset not in PRESETS:
        raise KeyError(f"{spec.where}: {PRESETS.unknown_message(preset)}")
    config = PRESETS.get(preset)
    values = {k: v for k, v in point.items() if k != "preset"}
    agent = values.get("agent", base.get("agent", config.agent))
    if agent != config.agent and isinstance(agent, str) and is_offline(agent):
        # as heldout train: the preset's agent arguments are its online agent's; only the spec's apply
        config = config.replace(agent_kwargs={})
    config = _apply(_apply(config, base, spec.where), values, spec.where)
    config = config.replace(out=str(spec.folder))
    name = run_name(point, config, list(spec.grid))
    name = f"{prefix}/{name}" if prefix else name
    try:
        config.validate()
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{spec.where}: run {name}: {exc}") from None
    return RunPoint(name=name, point=point, config=config.resolved())


def build_runs(spec: SweepSpec) -> list[RunPoint]:
    """The sweep's runs: each grid point's config (preset, then base, then the point), resolved.

    Checks only what a config checks of itself (:meth:`TrainConfig.validate`) and the preset's
    name; :func:`validate_runs` checks the rest (envs, agents, their fields).

    Raises:
        KeyError: an unknown preset (did you mean).
        ValueError / TypeError: a bad value, or two grid points that would share a folder.
    """
    import_spec_plugins(spec)  # the user's modules first
    runs: list[RunPoint] = []
    by_name: dict[str, dict[str, Any]] = {}
    for point in expand(spec):
        run = build_run(spec, point)
        if run.name in by_name:
            raise ValueError(
                f"{spec.where}: grid points {_show(by_name[run.name])} and {_show(point)} are the same run "
                f"({run.name}); give each a different value"
            )
        by_name[run.name] = point
        runs.append(run)
    return runs


def validate_runs(runs: list[RunPoint], where: str = "sweep spec") -> None:
    """Checks every run's whole config (:func:`heldout.protocol.validate.validate_config`) before any
    compute: the env, agent, their fields and the agent's build on the env. Configs that differ in
    their seed alone are checked once (each seed is checked by the config itself).

    Raises:
        ValueError / KeyError / TypeError: naming the run and the bad value.
    """
    from heldout.protocol.validate import validate_config

    checked: set[str] = set()
    for run in runs:
        key = json.dumps({**run.config.to_dict(), "seed": 0}, sort_keys=True, default=str)
        if key in checked:
            continue
        try:
            validate_config(run.config)
        except (ValueError, KeyError, TypeError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise type(exc)(f"{where}: run {run.name}: {message}") from None
        checked.add(key)


__all__ = [
    "DEFAULT_MAX_RUNS",
    "DEFAULT_PRESET",
    "MAPPING_FIELDS",
    "SPEC_KEYS",
    "RunPoint",
    "SweepSpec",
    "build_run",
    "build_runs",
    "check_grid_size",
    "expand",
    "grid_size",
    "grid_keys",
    "import_spec_plugins",
    "load_spec",
    "parse_spec",
    "run_name",
    "validate_runs",
]
