"""A tiny name -> factory registry with "did you mean" errors.

Every extensible catalogue in heldout (environments, agents, presets, and later augmentations and
wrappers) is a :class:`Registry`, so that tests can be parametrized over ``registry.names()`` and a
new entry is tested the moment it is registered.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually factories) and explains lookup failures.

    Args:
        kind: What the registry holds, used in error messages ("environment", "agent", ...).

    Example:
        >>> agents = Registry[type]("agent")
        >>> agents.register("ppo", dict)
        >>> agents.get("ppo") is dict
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, item: T, help: str = "") -> T:
        """Registers ``item`` under ``name``; raises ValueError if the name is taken."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        self._help[name] = help
        return item

    def unregister(self, name: str) -> T:
        """Removes ``name`` and returns its item (e.g. to undo a test's or a notebook's registration).

        Raises:
            KeyError: if no such name exists, as :meth:`get`.
        """
        item = self.get(name)
        del self._items[name]
        del self._help[name]
        return item

    def get(self, name: str) -> T:
        """Returns the item registered under ``name``.

        Raises:
            KeyError: if no such name exists; the message lists the valid names and the closest
                match ("did you mean ...?").
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        """The one-line error for an unknown ``name``."""
        close = difflib.get_close_matches(str(name), list(self._items), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; valid {self.kind}s: {', '.join(sorted(self._items))}"

    def describe(self, name: str) -> str:
        """The one-line help text given at registration."""
        self.get(name)
        return self._help[name]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def decorator(self, name: str, help: str = "") -> Callable[[T], T]:
        """Registers the decorated object under ``name``."""

        def wrap(item: T) -> T:
            self.register(name, item, help)
            return item

        return wrap
