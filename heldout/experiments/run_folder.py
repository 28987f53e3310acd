"""Deprecated: moved to heldout.protocol.run_folder."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.protocol.run_folder")
