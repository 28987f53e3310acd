"""Deprecated: moved to heldout.cli."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.cli")
