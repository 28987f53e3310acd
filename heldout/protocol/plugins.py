"""User modules imported before a command runs: how a one-file agent (or env, preset, ...) reaches the CLI.

A user adds an agent in one Python file that registers it on import (``AGENTS.register("my-agent",
MyAgent, help=...)``; docs/adding-an-agent.md). ``heldout train --import FILE.py`` (or ``--import
package.module`` for a module on ``sys.path``, an installed package included) imports it before any
name is looked up, so ``--agent my-agent`` (and a preset, env or augmentation the file registers)
resolves. The run's ``config.yaml`` records the import (``imports:``, a file as its absolute path),
and ``heldout eval RUN_DIR`` and ``heldout saliency RUN_DIR`` import it again before they load the
model; their own ``--import`` replaces the recorded list (for a file that has moved).

A file is imported as a top-level module named after its stem (``l2_ppo.py`` -> ``l2_ppo``), the
name it would have with its folder on ``sys.path``: importing it again (by path or by name) returns
the same module instead of registering twice, and objects pickled with a model (a custom policy or
features extractor class) are found again when the model is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

_HINT = "give a file path ending in .py or a module importable from sys.path (an installed package included)"


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names a file (ends in ``.py`` or holds a path separator) rather than a module."""
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def normalize_import(spec: str) -> str:
    """``spec`` as a run folder records it: a file as its absolute path, a module name unchanged."""
    _check_spec(spec)
    return str(Path(spec).expanduser().resolve()) if is_file_spec(spec) else spec


def import_plugin(spec: str) -> ModuleType:
    """Imports a user module by file path or module name; importing it again returns the same module.

    Args:
        spec: A path to a ``.py`` file (``docs/examples/l2_ppo.py``) or a dotted module name on
            ``sys.path`` (``mypackage.agents``).

    Returns:
        The imported module.

    Raises:
        ValueError: The file does not exist, its name is not a valid module name, that module name
            belongs to another file already imported, the module is not found, or it is not valid
            Python (a syntax error, with its line).
        TypeError: ``spec`` is not a non-empty string.
        ValueError, KeyError, TypeError: Raised by the module itself while it runs (e.g. a name it
            registers is taken), re-raised with the module named in the message.
    """
    _check_spec(spec)
    if not is_file_spec(spec):
        try:
            return importlib.import_module(spec)
        except SyntaxError as exc:
            raise ValueError(_syntax_error(spec, exc)) from None
        except ModuleNotFoundError as exc:
            # only when the module itself is missing; a missing dependency of it keeps its traceback
            if exc.name is not None and (spec == exc.name or spec.startswith(exc.name + ".")):
                raise ValueError(f"cannot import {spec!r}: no module named {exc.name!r}; {_HINT}") from None
            raise
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"cannot import {spec!r}: no such file ({path}); {_HINT}")
    if path.suffix != ".py":
        raise ValueError(f"cannot import {spec!r}: a file to import must end in .py")
    name = path.stem
    if not name.isidentifier():
        fixed = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
        raise ValueError(
            f"cannot import {spec!r}: {name!r} is not a valid Python module name; rename the file, e.g. {fixed}.py"
        )
    loaded = sys.modules.get(name)
    if loaded is not None:
        origin = getattr(loaded, "__file__", None)
        if origin is not None and Path(origin).resolve() == path:
            return loaded
        where = origin or "a built-in module"
        raise ValueError(
            f"cannot import {spec!r}: the module name {name!r} is taken by {where}; rename the file"
        )
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:  # the file is not Python: bad input, one line
        del sys.modules[name]
        raise ValueError(_syntax_error(spec, exc)) from None
    except (ValueError, KeyError, TypeError) as exc:
        del sys.modules[name]
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise type(exc)(f"while importing {spec!r}: {message}") from exc
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_plugins(specs: Iterable[str]) -> list[ModuleType]:
    """Imports each of ``specs`` in order (see :func:`import_plugin`); returns the modules."""
    if isinstance(specs, str):
        raise TypeError(f"imports must be a list of files or modules, got the string {specs!r}")
    return [import_plugin(spec) for spec in specs]


def _syntax_error(spec: str, exc: SyntaxError) -> str:
    where = f"{Path(exc.filename).name if exc.filename else spec}, line {exc.lineno}"
    return f"cannot import {spec!r}: it is not valid Python ({type(exc).__name__}: {exc.msg}, {where})"


def _check_spec(spec: object) -> None:
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"an import must be a file path or a module name (a non-empty string), got {spec!r}")


__all__ = ["import_plugin", "import_plugins", "is_file_spec", "normalize_import"]
