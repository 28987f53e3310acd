"""Deprecated: moved to heldout.analysis.stats."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.analysis.stats")
