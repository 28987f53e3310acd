"""Deprecated: moved to heldout.analysis.plots."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.analysis.plots")
