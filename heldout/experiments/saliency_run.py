"""Deprecated: moved to heldout.protocol.saliency."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.protocol.saliency")
