"""Deprecated: moved to heldout.analysis.report."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.analysis.report")
