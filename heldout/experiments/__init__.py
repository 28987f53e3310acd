"""Deprecated: the old home of the protocol, analysis, benchmarks and CLI.

``heldout.experiments`` was split into rooms (see docs/layout.md): :mod:`heldout.protocol`,
:mod:`heldout.analysis`, :mod:`heldout.bench` and :mod:`heldout.cli`. Every old module path still
imports, with a :class:`DeprecationWarning` naming its new place, and gives the same objects
(``heldout.experiments.config.TrainConfig is heldout.protocol.config.TrainConfig``).
"""
