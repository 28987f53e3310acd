"""Deprecated: moved to heldout.protocol.run and heldout.protocol.reevaluate and heldout.protocol.run_folder and heldout.protocol.families."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(
    __name__,
    "heldout.protocol.run",
    "heldout.protocol.reevaluate",
    "heldout.protocol.run_folder",
    "heldout.protocol.families",
)
