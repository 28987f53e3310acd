"""Deprecated: moved to heldout.bench.throughput."""

from heldout.experiments._moved import forward

__getattr__, __dir__ = forward(__name__, "heldout.bench.throughput")
