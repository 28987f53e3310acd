"""``heldout sweep``: a grid of runs from one spec, planned, run resumably, and reported.

:mod:`~heldout.sweep.spec` reads and expands the spec, :mod:`~heldout.sweep.plan` decides what each
run folder needs (skip, resume, retry, start), :mod:`~heldout.sweep.local` runs the plan on a pool of
worker processes, and :mod:`~heldout.sweep.summary` writes the report at the end. This room sits
after ``analysis`` (it writes the report) and before ``cli``.
"""
