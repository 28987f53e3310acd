"""Deprecated: moved to heldout.protocol.config and heldout.protocol.presets and heldout.protocol.validate."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(
    __name__, "heldout.protocol.config", "heldout.protocol.presets", "heldout.protocol.validate"
)
