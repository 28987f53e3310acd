"""The old ``heldout.experiments.<module>`` paths, kept as thin forwards to their new places."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any


def forward(old: str, *new: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Warns once that module ``old`` moved to ``new`` and returns the module ``__getattr__`` and
    ``__dir__`` that look every name up in the new modules, in order."""
    warnings.warn(
        f"{old} moved to {' and '.join(new)}; import it from there (the old path will be removed)",
        DeprecationWarning,
        stacklevel=3,
    )
    modules: list[ModuleType] = [importlib.import_module(name) for name in new]

    def __getattr__(name: str) -> Any:
        for module in modules:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {', '.join(new)})")

    def __dir__() -> list[str]:
        return sorted({n for module in modules for n in dir(module)})

    return __getattr__, __dir__
