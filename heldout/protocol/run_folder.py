"""The run folder: where a run writes everything, each file atomically.

Layout (DESIGN.md): ``<out>/<env>/<agent>/seed<k>-<time>/`` with ``config.yaml``, ``command.txt``,
``git.txt``, TensorBoard events and ``progress.csv``, ``eval/<split>.csv``, ``model.zip``,
``checkpoints/`` and ``summary.json``. Every file is written to a temporary name and renamed, so a
killed run never leaves a half-written file behind.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from heldout.splits import MAX_SEED


def check_writable(out: str | os.PathLike[str]) -> Path:
    """Returns ``out`` as a Path if a run folder can be created under it, else raises ValueError.

    Creates nothing: it checks the nearest existing ancestor of ``out``.
    """
    path = Path(out).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"--out {str(out)!r} is not a directory ({str(probe)!r} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"--out {str(out)!r} is not writable (no write permission on {str(probe)!r})")
    try:  # root passes os.access everywhere: try for real, leaving nothing behind
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ValueError(f"--out {str(out)!r} is not writable ({exc.strerror} in {str(probe)!r})") from None
    return path


def _run_dir_name(seed: int, stamp: str, n: int) -> str:
    return f"seed{seed}-{stamp}" + (f"-{n}" if n else "")


def run_dir_path(out: str | os.PathLike[str], env: str, agent: str, seed: int) -> Path:
    """The folder :func:`new_run_dir` would create now, ``<out>/<env>/<agent>/seed<seed>-<stamp>[-n]``;
    creates nothing (``heldout train --dry-run``)."""
    base = Path(out).expanduser() / env / agent
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 0
    while (base / _run_dir_name(seed, stamp, n)).exists():
        n += 1
    return base / _run_dir_name(seed, stamp, n)


def new_run_dir(out: str | os.PathLike[str], env: str, agent: str, seed: int) -> Path:
    """Creates and returns ``<out>/<env>/<agent>/seed<seed>-<YYYYmmdd-HHMMSS>[-n]``."""
    base = check_writable(out) / env / agent
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {str(out)!r} is not writable ({exc.strerror})") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = base / _run_dir_name(seed, stamp, n)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run folder under {base}")


def _create_temp(path: Path) -> tuple[int, str]:
    """Creates a fresh ``.<name>.<random>.tmp`` beside ``path``; returns its descriptor and name.

    Unlike ``tempfile.mkstemp`` (always mode 0600), the file gets the mode any new file gets under the
    user's umask (0644 under umask 022), so the renamed result is as readable as every other file of
    the run folder.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no fresh temporary name beside {path}")


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Writes ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file is created with the user's umask (0644 under umask 022), like any file ``open`` creates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Writes ``data`` as indented JSON (NaN and infinities become null)."""
    return write_atomic(path, json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n")


def yaml_text(data: Any) -> str:
    """``data`` as the YAML text :func:`write_yaml` writes."""
    return yaml.safe_dump(_json_safe(data), sort_keys=False)


def write_yaml(path: str | os.PathLike[str], data: Any) -> Path:
    """Writes ``data`` as YAML."""
    return write_atomic(path, yaml_text(data))


def _where(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def read_yaml(path: str | os.PathLike[str], mapping: bool = False) -> Any:
    """The YAML document in ``path``; with ``mapping``, checked to be a mapping (``{}`` if empty).

    Read by :func:`heldout.safe_yaml.load_yaml`: only ``true`` / ``false`` are booleans (a ``yes`` or
    ``on`` stays text, which the field's owner refuses by name), a key given twice, aliases that
    expand beyond reason and a document nested thousands of levels deep are refused with the line.

    Raises:
        ValueError: naming the file, when it cannot be read or is not valid YAML (with the line), or,
            with ``mapping``, holds no mapping.
    """
    from heldout.safe_yaml import load_yaml

    try:
        with open(path) as f:
            data = load_yaml(f)
    except OSError as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise ValueError(f"{str(path)!r} is not valid YAML: {problem}{_where(exc)}") from None
    if mapping:
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ValueError(f"{str(path)!r} holds no mapping of names to values (a {type(data).__name__})")
    return data


def read_json(path: str | os.PathLike[str], mapping: bool = True) -> Any:
    """The JSON document in ``path``; with ``mapping`` (the default), checked to be an object.

    Raises:
        ValueError: naming the file, when it cannot be read, is not valid JSON (a truncated file: with
            where it stops) or, with ``mapping``, holds no object.
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{str(path)!r} is no text file (not UTF-8)") from None
    try:
        data = json.loads(text)
    except ValueError as exc:  # a 5000-digit number too
        raise ValueError(f"{str(path)!r} is not valid JSON (truncated or edited?): {exc}") from None
    except RecursionError:
        raise ValueError(
            f"{str(path)!r} is nested too deeply (thousands of levels) to be a heldout file"
        ) from None
    if mapping and not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} holds no JSON object (a {type(data).__name__})")
    return data


#: The fields of ``summary.json`` that are read back, and their kinds
#: (:func:`heldout.protocol.checks.check_fields`); each split's under ``splits``.
SUMMARY_FIELDS: dict[str, Any] = {
    "env": "text?",
    "agent": "text?",
    "seed": "count?",
    "timesteps": "count?",
    "splits": "mapping",
    "gap": "number?",
    "normalized_gap": "number?",
}
SPLIT_SUMMARY_FIELDS: dict[str, Any] = {
    "mean": "number?",
    "std": "number?",
    "episodes": "count?",
    "normalized": "number?",
}


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``summary.json``, checked field by field (untrusted input: a number of any size, NaN,
    an infinity or the wrong type is refused, never converted).

    Raises:
        ValueError: one line naming the file, the field and the bad value.
    """
    from heldout.protocol.checks import check_fields

    where = repr(str(path))
    summary = check_fields(read_json(path), SUMMARY_FIELDS, where)
    for name, split in summary["splits"].items():
        check_fields(split, SPLIT_SUMMARY_FIELDS, f"{where}: splits.{name}")
    return summary


def read_eval_lists(path: str | os.PathLike[str]) -> tuple[dict[str, list], Any]:
    """The fixed evaluation lists and leakage record of a run's ``split.json``, checked (untrusted
    input): a non-empty list per split, of level seeds (whole numbers in a seed's range) or of
    ``{"context": {feature: finite number}, "seed": seed}`` entries.

    Raises:
        ValueError: one line naming the file, the split and the bad entry.
    """
    from heldout.protocol.checks import check_fields, check_number, check_seed, shown

    where = repr(str(path))
    recorded = check_fields(read_json(path), {"eval_levels": "mapping"}, where)
    if "leakage" not in recorded:
        raise ValueError(f"{where} has no 'leakage' record")
    lists = recorded["eval_levels"]
    for name, items in lists.items():
        if not isinstance(items, list) or not items:
            raise ValueError(f"{where}: eval_levels {name!r} must be a non-empty list, got {shown(items)}")
        for item in items:
            if not isinstance(item, dict):
                check_seed(f"{where}: eval_levels {name!r}", item)
                continue
            entry = check_fields(
                item, {"context": "mapping", "seed": (0, MAX_SEED - 1)}, f"{where}: eval_levels {name!r}"
            )
            for feature, value in entry["context"].items():
                check_number(f"{where}: eval_levels {name!r}: context {feature}", value)
    return lists, recorded["leakage"]


def git_revision(cwd: str | os.PathLike[str] | None = None) -> str:
    """The git commit of the heldout checkout (with ``-dirty`` if modified), or ``unknown``."""
    here = cwd or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def read_config(path: str | os.PathLike[str]) -> Any:
    """The :class:`~heldout.protocol.config.TrainConfig` a run folder's ``config.yaml`` holds.

    Raises:
        ValueError / TypeError: naming the file, when it is no valid YAML mapping, names a field
            :class:`TrainConfig` does not have or holds a value its own checks refuse.
    """
    from heldout.protocol.config import TrainConfig

    data = read_yaml(path, mapping=True)
    if data.get("visible_context", "hidden") != "hidden" and "visible_context_scale" not in data:
        data = {**data, "visible_context_scale": "bounds"}  # written before the field: trained so
    try:
        config = TrainConfig.from_dict(data)
        config.validate()
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{str(path)!r}: {exc}") from None
    return config


def load_run(run_dir: str | os.PathLike[str], imports: list[str] | None = None) -> tuple[Any, Path]:
    """Reads a run folder's config and imports the user modules its run imported.

    Args:
        run_dir: A run folder written by :func:`heldout.protocol.run.run_train`.
        imports: User modules to import instead of the config's recorded ``imports`` (e.g. the new
            place of a file that has moved); None: the recorded ones.

    Raises:
        ValueError: naming what is missing (the folder, its config or model, an imported file).
    """
    from heldout.protocol.plugins import import_plugins

    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"run folder {str(run_dir)!r} does not exist")
    if not (path / "config.yaml").is_file():
        raise ValueError(
            f"{str(path / 'config.yaml')!r} is missing: is {str(run_dir)!r} a heldout run folder?"
        )
    if not (path / "model.zip").is_file() and not (path / "checkpoints").is_dir():
        raise ValueError(
            f"{str(run_dir)!r} holds neither model.zip nor checkpoints/: it has no trained model to load"
        )
    config = read_config(path / "config.yaml")
    try:
        import_plugins(config.imports if imports is None else imports)
    except ValueError as exc:
        if imports is not None:
            raise
        raise ValueError(
            f"{exc} (recorded in {str(path / 'config.yaml')!r}; pass --import to replace it)"
        ) from None
    # checked with the modules actually imported: a moved file's new place, not the recorded one
    checked = config if imports is None else dataclasses.replace(config, imports=list(imports))
    check_run_config(checked, path / "config.yaml")
    return config, path


def check_run_config(config: Any, path: str | os.PathLike[str]) -> None:
    """The whole config a run folder's ``config.yaml`` holds checked as ``heldout train`` checks a new
    one (:func:`heldout.protocol.validate.validate_config`: the agent's arguments among them), so an
    edited or hostile file is refused naming it before a model is built from it.

    Raises:
        ValueError / KeyError / TypeError: naming the file and the bad value.
    """
    from heldout.protocol.validate import validate_config

    try:
        validate_config(config)
    except (ValueError, KeyError, TypeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise type(exc)(f"{str(path)!r}: {message}") from None
