"""Findings you can reproduce: the field's known results as claims a sweep tests (``heldout findings``).

:data:`FINDINGS` (``catalog.py``) holds each finding as plain data (:class:`Finding`, ``finding.py``);
``verdict.py`` decides one from its run folders with :mod:`heldout.analysis.stats`. The findings build
on the sweep (each runs as a sweep spec) and the analysis, and only the command line sits above them
(docs/layout.md).
"""

from heldout.experiments.findings.catalog import FINDINGS
from heldout.experiments.findings.finding import SCALES, STATISTICS, Finding, Scale

__all__ = ["FINDINGS", "SCALES", "STATISTICS", "Finding", "Scale"]
