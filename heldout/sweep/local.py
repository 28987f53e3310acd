"""The local backend: a sweep's runs on a pool of worker processes on this machine.

At most ``workers`` runs train at once, each in its own process (:mod:`heldout.sweep.worker`) with
``threads`` torch threads, so that ``workers x threads`` stays within the machine's cores
(:func:`pool_size`). Processes come from a fork server that imported heldout once, so a run starts in
a fraction of a second and no process forks a parent whose torch thread pool is already running.

The sweep follows its runs through their ``status.json`` (the step each reached) and shows one
progress line for the whole sweep: runs done, running and failed, steps and the overall ETA.

Ctrl-C stops cleanly: the sweep starts no new run and passes the interrupt on to each worker once;
each run stops at the end of its current update with a checkpoint and is left ``interrupted``, and
the same ``heldout sweep`` resumes it. A second Ctrl-C stops the runs at once (still marked
interrupted; they lose what they trained since their last checkpoint). A sweep killed outright
leaves its workers to notice within a second and stop the same way (:func:`heldout.sweep.worker._watch`);
a worker killed outright loses its run's progress since its last checkpoint, and the next sweep
resumes it from there.

A run that fails is started again (from its last checkpoint, or anew without one) up to
``max_retries`` times; one that diverged is not (it would diverge again).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heldout.sweep.plan import Decision, Plan


def machine_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_threads(config: Any) -> int:
    """Torch threads a run asks for: its ``torch_threads``, else its env family's default (0: none)."""
    from heldout.protocol.families import family_for

    return int(config.torch_threads or family_for(config.env).default_torch_threads)


def pool_size(plan: Plan, workers: int | None, cores: int | None = None) -> tuple[int, int, str | None]:
    """``(workers, threads per run, warning)`` for ``plan`` on ``cores`` cores.

    Threads per run: the most any run asks for (:func:`run_threads`); runs that leave it to torch
    (Procgen's CNN) get ``cores // workers``. Workers: ``--workers``, else ``cores // threads``, never
    more than the runs to run. A ``--workers`` that puts more threads than cores to work is kept, with
    a warning.
    """
    cores = cores or machine_cores()
    todo = plan.to_run
    asked = max((run_threads(d.run.config) for d in todo), default=1)
    if workers is None:
        workers = max(1, cores // max(asked, 1))
    workers = max(1, min(workers, len(todo) or 1))
    threads = asked or max(1, cores // workers)
    warning = None
    if workers * threads > cores:
        warning = (
            f"{workers} workers x {threads} torch thread(s) = {workers * threads} threads on {cores} "
            "core(s): the runs will slow each other down"
        )
    return workers, threads, warning


@dataclass
class Outcome:
    """What the local backend did: the runs by how they ended, and whether it was stopped."""

    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    seconds: float = 0.0


@dataclass
class _Job:
    decision: Decision
    action: str
    attempt: int
    process: Any = None
    started: float = 0.0
    done_steps: int = 0


def _entry(
    run_dir: str, config: dict, action: str, threads: int, log: str, command: str, driver: int
) -> None:
    from heldout.sweep.worker import run_one

    sys.exit(run_one(run_dir, config, action, threads, log, command, driver))


#: What the fork server imports once, so that no run pays for it: heldout and its agents, SB3, the
#: parts of torch imported on first use (the optimisers' torch._dynamo, TensorBoard's writer).
PRELOAD = [
    "heldout",
    "heldout.sweep.worker",
    "heldout.protocol.run",
    "heldout.agents",
    "stable_baselines3",
    "torch._dynamo",
    "torch.utils.tensorboard",
]


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - not POSIX


def _step_of(path: Path) -> int:
    import json

    try:
        return int(json.loads((path / "status.json").read_text()).get("step") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Display:
    """The sweep's one progress line: rewritten in place on a terminal, a line every
    ``every`` seconds (and at each run's end, as its own line) elsewhere."""

    def __init__(self, stream: Any, total_runs: int, total_steps: int, show: bool, every: float = 30.0):
        self.stream, self.total_runs, self.total_steps, self.show = stream, total_runs, total_steps, show
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every, self.last, self.start, self.width = every, time.monotonic(), time.monotonic(), 0

    def line(self, done: int, running: int, failed: int, steps: int) -> str:
        elapsed = time.monotonic() - self.start
        eta = "-"
        if steps > 0 and self.total_steps > steps:
            eta = _clock(elapsed * (self.total_steps - steps) / steps)
        elif self.total_steps and steps >= self.total_steps:
            eta = "0:00:00"
        pct = 100.0 * steps / self.total_steps if self.total_steps else 100.0
        return (
            f"sweep: {done}/{self.total_runs} done, {running} running, {failed} failed | "
            f"{steps:,}/{self.total_steps:,} steps ({pct:.0f}%) | {_clock(elapsed)} elapsed, ETA {eta}"
        )

    def update(self, *counts: int, force: bool = False) -> None:
        if not self.show:
            return
        now = time.monotonic()
        if self.tty:
            if force or now - self.last >= 0.5:
                text = self.line(*counts)
                self.stream.write("\r" + text.ljust(self.width))
                self.stream.flush()
                self.width, self.last = len(text), now
        elif force or now - self.last >= self.every:
            print(self.line(*counts), file=self.stream, flush=True)
            self.last = now

    def event(self, text: str) -> None:
        """A line of its own (a run started, ended, failed), above the progress line."""
        if self.tty and self.show:
            self.stream.write("\r" + " " * self.width + "\r")
        print(text, file=self.stream, flush=True)
        self.width = 0


def run_local(
    plan: Plan,
    workers: int | None = None,
    max_retries: int = 2,
    stream: Any = None,
    progress: bool = True,
    command: str = "",
    poll: float = 0.25,
) -> Outcome:
    """Runs ``plan``'s runs on a pool of local worker processes; returns how each ended.

    Args:
        plan: The sweep's plan (:func:`heldout.sweep.plan.make_plan`).
        workers: Runs at once (None: sized to the machine, see :func:`pool_size`).
        max_retries: Times a failed run is started again within this call.
        stream: Where the progress line and the events go (stderr).
        progress: Show the progress line (the events are printed either way).
        command: Recorded in each run's ``command.txt``.
        poll: Seconds between looks at the workers.
    """
    from heldout.sweep.worker import FAILED, INTERRUPTED

    stream = stream or sys.stderr
    outcome = Outcome()
    todo = plan.to_run
    if not todo:
        return outcome
    workers, threads, warning = pool_size(plan, workers)
    if warning:
        print(f"warning: {warning}", file=stream)
    print(f"running {len(todo)} run(s) on {workers} worker(s), {threads} torch thread(s) each", file=stream)
    ctx = _context()
    logs = plan.folder / "logs"
    queue = deque(_Job(d, d.action, 1) for d in todo)
    running: dict[str, _Job] = {}
    # steps already trained by runs this call resumes count as done from the start
    base = {d.run.name: d.run.config.timesteps - d.steps_left for d in todo}
    total = sum(d.steps_left for d in todo)
    finished_steps = 0
    display = _Display(stream, len(todo), total, progress)
    interrupts = 0

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        outcome.stopped = True
        for job in running.values():
            if job.process is not None and job.process.pid and job.process.is_alive():
                try:
                    os.kill(job.process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        what = (
            "stopping: each run stops at the end of its update, with a checkpoint (Ctrl-C again: at once)"
            if interrupts == 1
            else "stopping the runs now"
        )
        display.event(what)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    t0 = time.monotonic()
    try:
        while queue or running:
            while queue and len(running) < workers and not outcome.stopped:
                job = queue.popleft()
                name = job.decision.run.name
                job.process = ctx.Process(
                    target=_entry,
                    args=(
                        str(job.decision.path),
                        job.decision.run.config.to_dict(),
                        job.action,
                        threads,
                        str(logs / (name.replace("/", "__") + ".log")),
                        f"{command} (run {name}, {job.action}, attempt {job.attempt})".strip(),
                        os.getpid(),
                    ),
                    name=f"heldout-sweep:{name}",
                )
                job.process.start()
                job.started = time.monotonic()
                running[name] = job
                outcome.attempts[name] = job.attempt
                display.event(
                    f"{job.action} {name}" + (f" (attempt {job.attempt})" if job.attempt > 1 else "")
                )
            if outcome.stopped and queue:
                outcome.not_started.extend(j.decision.run.name for j in queue)
                queue.clear()
            from multiprocessing.connection import wait

            wait([j.process.sentinel for j in running.values()], timeout=poll)
            for name, job in list(running.items()):
                if job.process.is_alive():
                    job.done_steps = max(0, _step_of(job.decision.path) - base[name])
                    continue
                job.process.join()
                del running[name]
                code = job.process.exitcode
                seconds = time.monotonic() - job.started
                left = job.decision.steps_left
                if code == 0:
                    outcome.complete.append(name)
                    finished_steps += left
                    display.event(f"done {name} ({seconds:.1f} s)")
                    continue
                if code == INTERRUPTED or (outcome.stopped and code != FAILED):
                    outcome.interrupted.append(name)
                    finished_steps += max(0, _step_of(job.decision.path) - base[name])
                    display.event(f"interrupted {name}: resumable")
                    continue
                retry = _retry_action(job.decision.path)
                log = logs / (name.replace("/", "__") + ".log")
                if retry is not None and job.attempt <= max_retries and not outcome.stopped:
                    display.event(f"failed {name} (exit {code}; log {log}): retrying")
                    again = _Job(job.decision, retry, job.attempt + 1)
                    base[name] = _step_of(job.decision.path) if retry == "resume" else 0
                    base[name] = min(base[name], job.decision.run.config.timesteps - left)
                    queue.append(again)
                else:
                    why = "" if retry is not None else ", diverged: not retried"
                    outcome.failed.append(name)
                    finished_steps += left
                    display.event(f"failed {name} (exit {code}{why}; log {log})")
            steps = finished_steps + sum(j.done_steps for j in running.values())
            display.update(len(outcome.complete), len(running), len(outcome.failed), min(steps, total))
        display.update(len(outcome.complete), 0, len(outcome.failed), finished_steps, force=True)
        if progress and display.tty:
            stream.write("\n")
    finally:
        signal.signal(signal.SIGINT, previous)
        for job in running.values():  # only on an error of the sweep itself
            if job.process.is_alive():
                os.kill(job.process.pid, signal.SIGINT)
                job.process.join(30)
    outcome.seconds = time.monotonic() - t0
    return outcome


def _retry_action(path: Path) -> str | None:
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


__all__ = ["Outcome", "machine_cores", "pool_size", "run_local", "run_threads"]
