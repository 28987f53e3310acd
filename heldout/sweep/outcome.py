"""How a sweep's runs ended, whichever backend ran them, and what a run that just ended counts as.

A worker ends with the exit code of :func:`heldout.sweep.worker.run_one` (0 complete, 1 failed, 3 held
by another live process, 130 interrupted). :func:`judge` turns it into what the sweep does next: count
the run complete, interrupted or failed, start it again (``resume``, ``restart``) while
``--max-retries`` allows (never a diverged run: it would diverge again), or ``wait`` until the process
that holds it lets go. Both backends share :class:`Job`, :func:`stop_signals` and :class:`Ledger`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heldout.sweep.progress import step_of

#: Exit codes of a worker (:func:`heldout.sweep.worker.run_one`).
COMPLETE, FAILED, HELD, INTERRUPTED = 0, 1, 3, 130


@dataclass
class Outcome:
    """What a backend did: the runs by how they ended, and whether it was stopped."""

    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stopped: bool = False
    seconds: float = 0.0


@dataclass
class Job:
    """One try of one run: ``handle`` is its worker (a process, or a Ray object ref), ``started``
    when it began (0 while queued), ``done_steps`` what it trained in this sweep call so far."""

    decision: Any
    action: str
    attempt: int
    handle: Any = None
    mark: int | None = None
    started: float = 0.0
    done_steps: int = 0

    @property
    def name(self) -> str:
        return self.decision.run.name

    def label(self) -> str:
        """The event line of its start: ``resume cartpole/ppo/seed0 (attempt 2)``."""
        return f"{self.action} {self.name}" + (f" (attempt {self.attempt})" if self.attempt > 1 else "")

    def args(self, folder: Path, command: str, threads: int) -> tuple:
        """The arguments of :func:`heldout.sweep.worker.run_one` for this try (absolute paths: a Ray
        worker may run in another folder)."""
        return (
            str(self.decision.path.absolute()),
            self.decision.run.config.to_dict(),
            self.action,
            threads,
            str(log_path(folder, self.name).absolute()),
            f"{command} (run {self.name}, {self.action}, attempt {self.attempt})".strip(),
        )


def free(job: Job) -> bool:
    """Whether a ``wait`` job's run is no longer held by a live process (its worker may start)."""
    from heldout.protocol.lease import holder
    from heldout.protocol.status import read_status

    if job.action != "wait":
        return True
    try:
        return holder(job.decision.path) is None and read_status(job.decision.path)["state"] != "running"
    except ValueError:  # unreadable: the worker decides again, and says so in its log
        return True


@contextmanager
def stop_signals(
    outcome: Outcome, display: Any, forward: Callable[[int, int], None], queued: str = ""
) -> Iterator[None]:
    """For the block, SIGINT (Ctrl-C) and SIGTERM (a scheduler's preemption) stop the sweep: the
    ``outcome`` is marked stopped, ``forward(signum, n)`` passes the ``n``-th request on to the
    running runs, and ``display`` says so (``queued``: what happens to the queued runs)."""
    requests = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal requests
        requests += 1
        outcome.stopped = True
        forward(signum, requests)
        display.event(
            "stopping the runs now (SIGTERM: at the end of their update)"
            if requests > 1
            else f"stopping: {queued}each running run stops at the end of its update, with a checkpoint "
            "(Ctrl-C again: at once)"
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def log_path(folder: Path, name: str) -> Path:
    """The log a worker writes for run ``name`` of the sweep in ``folder``."""
    return folder / "logs" / (name.replace("/", "__") + ".log")


def retry_action(path: Path) -> str | None:
    """How the run in ``path`` goes on (a worker decides again with it, holding the run's lease):
    ``skip`` when complete, ``resume`` from its checkpoint, ``restart`` without one, None when it
    diverged."""
    from heldout.protocol.checkpoint import latest_checkpoint
    from heldout.protocol.status import read_status

    try:
        status = read_status(path)
    except ValueError:
        return "restart"
    if str(status.get("error") or "").startswith("TrainingDiverged"):
        return None
    if (path / "config.yaml").is_file() and status["state"] == "complete":
        return "skip"
    if (path / "config.yaml").is_file() and latest_checkpoint(path)[0] is not None:
        return "resume"
    return "restart"


def judge(code: int | None, path: Path, attempt: int, max_retries: int, stopped: bool) -> tuple[str, str]:
    """What a run whose worker ended with ``code`` (None: the worker was lost) counts as.

    Returns:
        ``("complete", "")``, ``("interrupted", "")``, ``("retry", ACTION)`` with ``resume``,
        ``restart`` or ``wait`` (held by another live process), or ``("failed", WHY)`` (WHY: ``""``
        or ``", diverged: not retried"``).
    """
    if code == 0:
        return "complete", ""
    if code == HELD:
        return ("interrupted", "") if stopped else ("retry", "wait")
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

    def settle(self, job: Job, code: int | None, seconds: float, error: str = "") -> Job | None:
        """Count ``job`` whose worker ended with ``code`` (None: lost, ``error`` saying why) after
        ``seconds``.

        Returns:
            The run's next try when it is to be started again (the caller queues it), else None.
        """
        decision, attempt = job.decision, job.attempt
        name, left = decision.run.name, decision.steps_left
        verdict, detail = judge(code, decision.path, attempt, self.max_retries, self.outcome.stopped)
        log = log_path(self.folder, name)
        shown = "lost" if code is None else code
        if error:
            shown = f"{shown}: {error}"
            self.outcome.errors[name] = error
        if verdict == "complete":
            self.outcome.complete.append(name)
            self.finished += left
            self.display.event(f"done {name} ({seconds:.1f} s)")
        elif verdict == "interrupted":
            self.outcome.interrupted.append(name)
            self.finished += self.trained(decision)
            self.display.event(f"interrupted {name}: resumable")
        elif verdict == "retry" and detail == "wait":
            self.display.event(f"{name} is held by another live process: waiting for it")
            return Job(decision, detail, attempt)
        elif verdict == "retry":
            self.display.event(f"failed {name} (exit {shown}; log {log}): retrying")
            base = step_of(decision.path) if detail == "resume" else 0
            self.base[name] = min(base, decision.run.config.timesteps - left)
            return Job(decision, detail, attempt + 1)
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


__all__ = ["Job", "Ledger", "Outcome", "free", "judge", "log_path", "retry_action", "stop_signals"]
