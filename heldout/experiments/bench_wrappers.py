"""Deprecated: moved to heldout.bench.wrappers."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.bench.wrappers")
