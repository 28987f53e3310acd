"""Deprecated: moved to heldout.protocol.plugins."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.protocol.plugins")
