"""Deprecated: moved to heldout.protocol.families.seeded and heldout.protocol.families.levels."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(
    __name__, "heldout.protocol.families.seeded", "heldout.protocol.families.levels"
)
