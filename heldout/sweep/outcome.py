"""How a sweep's runs ended, whichever backend ran them, and what a run that just ended counts as.

A worker ends with the exit code of :func:`heldout.sweep.worker.run_one` (0 complete, 1 failed, 130
interrupted). :func:`judge` turns it, with the run folder, into what the sweep does next: count the
run complete or interrupted, start it again (``resume`` from its last checkpoint, ``restart`` without
one) while ``--max-retries`` allows, or count it failed. A run that diverged is never retried: from
the same seed and checkpoint it would diverge again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Outcome:
    """What a backend did: the runs by how they ended, and whether it was stopped."""

    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    seconds: float = 0.0


def log_path(folder: Path, name: str) -> Path:
    """The log a worker writes for run ``name`` of the sweep in ``folder``."""
    return folder / "logs" / (name.replace("/", "__") + ".log")


def retry_action(path: Path) -> str | None:
    """How a run that just failed is tried again: ``resume`` from its checkpoint, ``restart`` without
    one, None when it diverged (or its folder says it did not fail)."""
    from heldout.protocol.checkpoint import latest_checkpoint
    from heldout.protocol.status import read_status

    try:
        status = read_status(path)
    except ValueError:
        return "restart"
    if str(status.get("error") or "").startswith("TrainingDiverged"):
        return None
    if (path / "config.yaml").is_file() and latest_checkpoint(path)[0] is not None:
        return "resume"
    return "restart"


def judge(code: int | None, path: Path, attempt: int, max_retries: int, stopped: bool) -> tuple[str, str]:
    """What a run whose worker ended with ``code`` (None: the worker was lost) counts as.

    Returns:
        ``("complete", "")``, ``("interrupted", "")``, ``("retry", ACTION)`` with ``resume`` or
        ``restart``, or ``("failed", WHY)`` (WHY: ``""`` or ``", diverged: not retried"``).
    """
    from heldout.sweep.worker import FAILED, INTERRUPTED

    if code == 0:
        return "complete", ""
    if code == INTERRUPTED or (stopped and code != FAILED):
        return "interrupted", ""
    retry = retry_action(path)
    if retry is not None and attempt <= max_retries and not stopped:
        return "retry", retry
    return "failed", "" if retry is not None else ", diverged: not retried"


__all__ = ["Outcome", "judge", "log_path", "retry_action"]
