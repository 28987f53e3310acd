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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heldout.sweep.outcome import Ledger, Outcome, log_path
from heldout.sweep.plan import Decision, Plan
from heldout.sweep.progress import Display


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


def pool_size(
    plan: Plan, workers: int | None, cores: int | None = None, open_ended: bool = False
) -> tuple[int, int, str | None]:
    """``(workers, threads per run, warning)`` for ``plan`` on ``cores`` cores.

    Threads per run: the most any run asks for (:func:`run_threads`); runs that leave it to torch
    (Procgen's CNN) get ``cores // workers``. Workers: ``--workers``, else ``cores // threads``, never
    more than the runs to run (unless ``open_ended``: more will come). A ``--workers`` that puts more
    threads than cores to work is kept, with a warning.
    """
    cores = cores or machine_cores()
    todo = plan.to_run
    asked = max((run_threads(d.run.config) for d in todo), default=1)
    if workers is None:
        workers = max(1, cores // max(asked, 1))
    if not open_ended:
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


def run_local(
    plan: Plan,
    workers: int | None = None,
    max_retries: int = 2,
    stream: Any = None,
    progress: bool = True,
    command: str = "",
    poll: float = 0.25,
    more: Callable[[Outcome, int], list[Decision]] | None = None,
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
        more: ``more(outcome, free)``: runs to add (decided) when no run waits and ``free`` workers
            are idle, asked again after each run ends, until it returns none and every run ended
            (an open-ended search: :class:`heldout.sweep.tune.Search`).
    """
    stream = stream or sys.stderr
    outcome = Outcome()
    todo = plan.to_run
    if not todo and more is None:
        return outcome
    workers, threads, warning = pool_size(plan, workers, open_ended=more is not None)
    if warning:
        print(f"warning: {warning}", file=stream)
    what = f"{len(todo)} run(s)" + (" and those the search adds" if more else "")
    print(f"running {what} on {workers} worker(s), {threads} torch thread(s) each", file=stream)
    ctx = _context()
    queue = deque(_Job(d, d.action, 1) for d in todo)
    running: dict[str, _Job] = {}
    display = Display(stream, len(todo), sum(d.steps_left for d in todo), progress)
    ledger = Ledger(todo, outcome, display, plan.folder, max_retries)
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
        while True:
            if more is not None and not queue and len(running) < workers and not outcome.stopped:
                for decision in more(outcome, workers - len(running)):
                    ledger.add(decision)
                    queue.append(_Job(decision, decision.action, 1))
            if not (queue or running):
                break
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
                        str(log_path(plan.folder, name)),
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
                    job.done_steps = ledger.trained(job.decision)
                    continue
                job.process.join()
                del running[name]
                retry = ledger.settle(
                    job.decision, job.attempt, job.process.exitcode, time.monotonic() - job.started
                )
                if retry is not None:
                    queue.append(_Job(job.decision, retry, job.attempt + 1))
            ledger.update(list(running.values()), len(running))
        ledger.close()
    finally:
        signal.signal(signal.SIGINT, previous)
        for job in running.values():  # only on an error of the sweep itself
            if job.process.is_alive():
                os.kill(job.process.pid, signal.SIGINT)
                job.process.join(30)
    outcome.seconds = time.monotonic() - t0
    return outcome


__all__ = ["Outcome", "machine_cores", "pool_size", "run_local", "run_threads"]
