"""The local backend: a sweep's runs on a pool of worker processes on this machine.

At most ``workers`` runs train at once, each in its own process (:mod:`heldout.sweep.worker`) with
``threads`` torch threads (:func:`pool_size`), forked from a fork server that imported heldout once
(no process forks a parent whose torch thread pool is running). Runs are followed through their
``status.json``. Ctrl-C or SIGTERM stops cleanly (each run checkpoints, ``interrupted``; a second
Ctrl-C stops at once); a killed sweep's workers notice and stop (:func:`heldout.sweep.worker._watch`).
Retries, leases and resuming: docs/sweeps.md.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from multiprocessing.connection import wait
from typing import Any

from heldout.sweep.outcome import Job, Ledger, Outcome, free, stop_signals
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
    from heldout.protocol.evaluate import run_threads as threads_of
    from heldout.protocol.families import family_for

    return threads_of(config, family_for(config.env))


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
    queue = deque(Job(d, d.action, 1) for d in todo)
    running: dict[str, Job] = {}
    display = Display(stream, len(todo), sum(d.steps_left for d in todo), progress)
    ledger = Ledger(todo, outcome, display, plan.folder, max_retries)

    def forward(signum: int, requests: int) -> None:  # the same signal: a second SIGTERM cuts no update
        for job in running.values():
            if job.handle.pid and job.handle.is_alive():
                with suppress(ProcessLookupError):
                    os.kill(job.handle.pid, signum)

    t0 = time.monotonic()
    try:
        with stop_signals(outcome, display, forward):
            while True:
                if more is not None and not queue and len(running) < workers and not outcome.stopped:
                    for decision in more(outcome, workers - len(running)):
                        ledger.add(decision)
                        queue.append(Job(decision, decision.action, 1))
                if not (queue or running):
                    break
                for _ in range(len(queue)):  # a run held elsewhere waits its turn at the back
                    if len(running) >= workers or outcome.stopped:
                        break
                    job = queue.popleft()
                    if not free(job):
                        queue.append(job)
                        continue
                    job.handle = ctx.Process(
                        target=_entry,
                        args=(*job.args(plan.folder, command, threads), os.getpid()),
                        name=f"heldout-sweep:{job.name}",
                    )
                    job.handle.start()
                    job.started = time.monotonic()
                    running[job.name] = job
                    outcome.attempts[job.name] = job.attempt
                    display.event(job.label())
                if outcome.stopped and queue:
                    outcome.not_started.extend(j.name for j in queue)
                    queue.clear()
                if running:
                    wait([j.handle.sentinel for j in running.values()], timeout=poll)
                else:
                    time.sleep(poll)
                for name, job in list(running.items()):
                    if job.handle.is_alive():
                        job.done_steps = ledger.trained(job.decision)
                        continue
                    job.handle.join()
                    del running[name]
                    again = ledger.settle(job, job.handle.exitcode, time.monotonic() - job.started)
                    if again is not None:
                        queue.append(again)
                ledger.update(list(running.values()), len(running))
            ledger.close()
    finally:
        for job in running.values():  # only on an error of the sweep itself
            if job.handle.is_alive():
                os.kill(job.handle.pid, signal.SIGINT)
                job.handle.join(30)
    outcome.seconds = time.monotonic() - t0
    return outcome


__all__ = ["Outcome", "machine_cores", "pool_size", "run_local", "run_threads"]
