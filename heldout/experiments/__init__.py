"""Reproducible experiments: :mod:`heldout.experiments.findings`, and the deprecated forwards of old paths.

``heldout.experiments.findings`` holds the field's known results as runnable claims (``heldout
findings``; docs/findings.md). It sits above the sweep and the analysis and below the command line.

The other modules here are the old home of the protocol, analysis, benchmarks and CLI, which was split
into rooms (see docs/layout.md): :mod:`heldout.protocol`, :mod:`heldout.analysis`, :mod:`heldout.bench`
and :mod:`heldout.cli`. Every old module path still imports, with a :class:`DeprecationWarning` naming
its new place, and gives the same objects
(``heldout.experiments.config.TrainConfig is heldout.protocol.config.TrainConfig``).
"""
