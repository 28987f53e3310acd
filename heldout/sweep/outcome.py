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
from typing import Any

from heldout.sweep.progress import step_of


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


class Ledger:
    """The steps a backend's runs have trained, for its progress line, and the settling of a run that
    just ended: both backends count and retry runs through this one place.

    Args:
        todo: the plan's runs to run (:class:`heldout.sweep.plan.Decision`).
        outcome: where settled runs are recorded.
        display: the sweep's :class:`heldout.sweep.progress.Display`.
        folder: the sweep's folder (for the workers' log paths in messages).
        max_retries: how often a failed run is started again.
    """

    def __init__(self, todo: list[Any], outcome: Outcome, display: Any, folder: Path, max_retries: int):
        self.outcome, self.display, self.folder, self.max_retries = outcome, display, folder, max_retries
        # steps already trained by runs this call resumes count as done from the start
        self.base = {d.run.name: d.run.config.timesteps - d.steps_left for d in todo}
        self.total = sum(d.steps_left for d in todo)
        self.finished = 0

    def add(self, decision: Any) -> None:
        """Counts run ``decision``, added while the backend runs (a trial just proposed)."""
        self.base[decision.run.name] = decision.run.config.timesteps - decision.steps_left
        self.total += decision.steps_left
        self.display.total_runs += 1
        self.display.total_steps += decision.steps_left

    def trained(self, decision: Any) -> int:
        """Steps run ``decision`` trained in this sweep call so far (from its ``status.json``)."""
        return max(0, step_of(decision.path) - self.base[decision.run.name])

    def settle(self, decision: Any, attempt: int, code: int | None, seconds: float) -> str | None:
        """Count run ``decision`` whose worker ended with ``code`` (None: lost) after ``seconds``.

        Returns:
            ``resume`` or ``restart`` when the run is to be started again (the caller queues it as
            attempt ``attempt + 1``), else None.
        """
        name, left = decision.run.name, decision.steps_left
        verdict, detail = judge(code, decision.path, attempt, self.max_retries, self.outcome.stopped)
        log = log_path(self.folder, name)
        shown = "lost" if code is None else code
        if verdict == "complete":
            self.outcome.complete.append(name)
            self.finished += left
            self.display.event(f"done {name} ({seconds:.1f} s)")
        elif verdict == "interrupted":
            self.outcome.interrupted.append(name)
            self.finished += self.trained(decision)
            self.display.event(f"interrupted {name}: resumable")
        elif verdict == "retry":
            self.display.event(f"failed {name} (exit {shown}; log {log}): retrying")
            base = step_of(decision.path) if detail == "resume" else 0
            self.base[name] = min(base, decision.run.config.timesteps - left)
            return detail
        else:
            self.outcome.failed.append(name)
            self.finished += left
            self.display.event(f"failed {name} (exit {shown}{detail}; log {log})")
        return None

    def update(self, jobs: list[Any], running: int) -> None:
        """Redraw the progress line: ``jobs`` not yet settled (each with ``done_steps``), ``running``
        of them training now."""
        steps = min(self.finished + sum(j.done_steps for j in jobs), self.total)
        self.display.update(len(self.outcome.complete), running, len(self.outcome.failed), steps)

    def close(self) -> None:
        """The last progress line."""
        self.display.update(
            len(self.outcome.complete), 0, len(self.outcome.failed), self.finished, force=True
        )
        self.display.close()


__all__ = ["Ledger", "Outcome", "judge", "log_path", "retry_action"]
