"""Deprecated: moved to heldout.bench.agents."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.bench.agents")
