"""The Ray backend: a sweep's runs as Ray tasks, on a local Ray instance or an existing cluster.

Each run the plan starts is one Ray task (Moritz et al. 2018, "Ray: A Distributed Framework for
Emerging AI Applications") that declares what it needs, ``num_cpus`` = the run's torch threads and
``num_gpus`` = 1 for a run on CUDA (``device: cuda``, or ``auto`` on a cluster that has GPUs), so
Ray places as many runs on each node as its cores and GPUs hold. The task calls the local backend's
:func:`heldout.sweep.worker.run_one` in a fresh worker process (``max_calls=1``), so a run folder is
byte for byte what the local backend writes, status.json, checkpoints and ``logs/<run>.log``
included.

Storage: the workers write their run folders straight into the sweep folder's path, run from the
driver's working folder (so relative paths in the spec mean what they mean on the driver). On a
cluster of several machines the sweep folder (and the working folder, with any ``imports`` of the
spec) must be on shared storage mounted at the same path on every node; heldout must be installed on
every node. Nothing is synced back: the driver reads the same files the workers write.

Retries are the sweep's own (Ray's are off, ``max_retries=0``): a run that fails, or whose worker or
node is lost, is started again from its last checkpoint up to ``--max-retries`` times, as on the
local backend (:func:`heldout.sweep.outcome.judge`). Ctrl-C cancels cleanly: queued runs are
dropped, and each running run gets the interrupt (``ray.cancel``, which raises SIGINT's handler in
the task) and stops at the end of its update with a checkpoint, left ``interrupted``; a second
Ctrl-C ends the workers at once (force-cancel: the runs keep what their last checkpoint holds). The
same command resumes them.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heldout.sweep.local import machine_cores, run_threads
from heldout.sweep.outcome import Ledger, Outcome, log_path
from heldout.sweep.plan import Decision, Plan
from heldout.sweep.progress import Display
from heldout.sweep.ray_address import RayAddress


@dataclass(frozen=True)
class Needs:
    """What one run's task declares to Ray, and the torch threads it runs with."""

    num_cpus: int
    num_gpus: int
    threads: int


def wants_gpu(config: Any, cluster_gpus: float) -> bool:
    """Whether a run trains on CUDA: ``cuda``/``cuda:N``, or ``auto`` where the cluster has a GPU."""
    device = str(getattr(config, "device", "auto") or "auto")
    if device.startswith("cuda"):
        return True
    return device == "auto" and cluster_gpus > 0


def task_needs(
    decisions: list[Decision], cluster_cpus: float, node_cpus: float, cluster_gpus: float
) -> dict[str, Needs]:
    """Each run's :class:`Needs`: its torch threads as ``num_cpus`` (a run that leaves threads to
    torch, Procgen's CNN, gets the cluster's cores shared among the runs, at most one node's worth),
    and one GPU for a run on CUDA."""
    share = max(1, min(int(node_cpus), int(cluster_cpus) // max(1, len(decisions))))
    out = {}
    for d in decisions:
        threads = run_threads(d.run.config) or share
        out[d.run.name] = Needs(threads, int(wants_gpu(d.run.config, cluster_gpus)), threads)
    return out


def check_feasible(needs: dict[str, Needs], node_cpus: float, cluster_gpus: float) -> None:
    """Refuses runs no node can place (Ray would queue them forever).

    Raises:
        ValueError: One line naming the first such run, what it needs and what the cluster has.
    """
    for name, need in needs.items():
        if need.num_cpus > node_cpus:
            raise ValueError(
                f"run {name!r} asks for {need.num_cpus} CPU(s) (torch_threads) but the largest Ray node "
                f"has {node_cpus:g}; lower torch_threads or add a larger node"
            )
        if need.num_gpus and cluster_gpus < 1:
            raise ValueError(
                f"run {name!r} trains on CUDA but the Ray cluster has no GPU; set device: cpu "
                "or add a GPU node"
            )


def _task(cwd: str, run_dir: str, config: dict, action: str, threads: int, log: str, command: str) -> int:
    """One run in a Ray worker: from the driver's working folder, :func:`run_one` as locally."""
    from heldout.sweep.worker import run_one

    if os.path.isdir(cwd):
        os.chdir(cwd)
    # no driver to watch: the driver may be on another machine; Ray ends the tasks of a lost driver
    return run_one(run_dir, config, action, threads, log, command, None)


def _mark(path: Path) -> int | None:
    """What the run folder's status.json looks like now (its mtime), to tell later whether a
    cancelled task had started."""
    try:
        return (path / "status.json").stat().st_mtime_ns
    except OSError:
        return None


@dataclass
class _Job:
    decision: Decision
    action: str
    attempt: int
    ref: Any = None
    mark: int | None = None
    started: float = 0.0  # when its worker began (seen in its folder), 0 while queued
    done_steps: int = 0


def _connect(address: RayAddress | None, num_cpus: int | None) -> None:
    import logging

    import ray

    if address is None:
        # "local": a new instance for this sweep, never a cluster this machine may already be part of
        ray.init(
            address="local",
            num_cpus=num_cpus or machine_cores(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    else:
        ray.init(address=address.text, log_to_driver=False, logging_level=logging.WARNING)


def _cluster() -> tuple[float, float, float]:
    """(the cluster's CPUs, the largest node's CPUs, the cluster's GPUs)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive", True)]
    node_cpus = max((float(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0.0)
    total = ray.cluster_resources()
    return float(total.get("CPU", 0)), node_cpus, float(total.get("GPU", 0))


def run_ray(
    plan: Plan,
    address: RayAddress | None = None,
    max_retries: int = 2,
    stream: Any = None,
    progress: bool = True,
    command: str = "",
    poll: float = 0.25,
    num_cpus: int | None = None,
    prepare: Any = None,
) -> Outcome:
    """Runs ``plan``'s runs as Ray tasks; returns how each ended (as :func:`run_local` does).

    Args:
        plan: The sweep's plan (:func:`heldout.sweep.plan.make_plan`).
        address: The cluster to join (checked, :mod:`heldout.sweep.ray_address`); None starts a
            local Ray instance for the sweep, shut down at the end.
        max_retries: Times a failed run is started again within this call.
        stream: Where the progress line and the events go (stderr).
        progress: Show the progress line (the events are printed either way).
        command: Recorded in each run's ``command.txt``.
        poll: Seconds between looks at the tasks.
        num_cpus: The local instance's CPUs (default: the machine's cores); not for ``address``.
        prepare: Called once Ray is up and every run is placeable, before the first task (the CLI
            creates the sweep folder there, so a refused sweep writes nothing).

    Raises:
        ValueError: A run no node of the cluster can place (before ``prepare``).
    """
    import ray

    stream = stream or sys.stderr
    outcome = Outcome()
    todo = plan.to_run
    if not todo:
        if prepare is not None:
            prepare()
        return outcome
    t0 = time.monotonic()
    _connect(address, num_cpus)
    try:
        cluster_cpus, node_cpus, gpus = _cluster()
        needs = task_needs(todo, cluster_cpus, node_cpus, gpus)
        check_feasible(needs, node_cpus, gpus)
        if prepare is not None:
            prepare()
        where = f"the Ray cluster at {address.text}" if address else "a local Ray instance"
        print(
            f"running {len(todo)} run(s) as Ray tasks on {where} ({cluster_cpus:g} CPU(s), {gpus:g} GPU(s)); "
            f"each asks for {_describe(needs)}",
            file=stream,
        )
        _loop(plan, todo, needs, outcome, max_retries, stream, progress, command, poll)
    finally:
        ray.shutdown()
    outcome.seconds = time.monotonic() - t0
    return outcome


def _describe(needs: dict[str, Needs]) -> str:
    kinds = sorted({(n.num_cpus, n.num_gpus) for n in needs.values()})
    return " or ".join(f"{c} CPU(s)" + (f" + {g} GPU" if g else "") for c, g in kinds)


def _loop(
    plan: Plan,
    todo: list[Decision],
    needs: dict[str, Needs],
    outcome: Outcome,
    max_retries: int,
    stream: Any,
    progress: bool,
    command: str,
    poll: float,
) -> None:
    import ray

    remote = ray.remote(max_calls=1)(_task)  # a fresh process per run, as on the local backend
    cwd = os.getcwd()
    pending: dict[Any, _Job] = {}
    display = Display(stream, len(todo), sum(d.steps_left for d in todo), progress)
    ledger = Ledger(todo, outcome, display, plan.folder, max_retries)
    interrupts = 0

    def submit(job: _Job) -> None:
        name = job.decision.run.name
        need = needs[name]
        job.mark = _mark(job.decision.path)
        job.ref = remote.options(
            num_cpus=need.num_cpus, num_gpus=need.num_gpus, max_retries=0, name=f"heldout-sweep:{name}"
        ).remote(
            cwd,
            str(job.decision.path),
            job.decision.run.config.to_dict(),
            job.action,
            need.threads,
            str(log_path(plan.folder, name)),
            f"{command} (run {name}, {job.action}, attempt {job.attempt})".strip(),
        )
        pending[job.ref] = job
        outcome.attempts[name] = job.attempt

    def seen(job: _Job) -> bool:
        """Whether the job's worker has begun (its folder's status.json changed), saying so once."""
        if not job.started and _mark(job.decision.path) != job.mark:
            job.started = time.monotonic()
            name = job.decision.run.name
            display.event(f"{job.action} {name}" + (f" (attempt {job.attempt})" if job.attempt > 1 else ""))
        return bool(job.started)

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        outcome.stopped = True
        for ref in list(pending):
            try:
                ray.cancel(ref, force=interrupts > 1)
            except Exception:  # noqa: BLE001 - a task that just ended
                pass
        what = (
            "stopping: queued runs are dropped, each running run stops at the end of its update, with a "
            "checkpoint (Ctrl-C again: at once)"
            if interrupts == 1
            else "stopping the runs now"
        )
        display.event(what)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        for d in todo:
            submit(_Job(d, d.action, 1))
        display.event(f"queued {len(todo)} run(s); each starts when Ray has its CPUs free")
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=poll, fetch_local=False)
            for ref in done:
                job = pending.pop(ref)
                name = job.decision.run.name
                code = _result(ref)
                if code is None and outcome.stopped and not seen(job):
                    outcome.not_started.append(name)  # cancelled in the queue: its folder is as it was
                    continue
                seen(job)
                retry = ledger.settle(
                    job.decision, job.attempt, code, time.monotonic() - (job.started or time.monotonic())
                )
                if retry is not None:
                    submit(_Job(job.decision, retry, job.attempt + 1))
            running = 0
            for job in pending.values():
                if seen(job):
                    running += 1
                    job.done_steps = ledger.trained(job.decision)
            ledger.update(list(pending.values()), running)
        ledger.close()
    finally:
        signal.signal(signal.SIGINT, previous)
        for ref in pending:  # only on an error of the sweep itself: stop the runs with a checkpoint
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001
                pass


def _result(ref: Any) -> int | None:
    """The exit code a task returned; None when it was cancelled, or its worker or node was lost."""
    import ray

    try:
        return int(ray.get(ref))
    except (ray.exceptions.TaskCancelledError, ray.exceptions.RayError):
        return None


__all__ = ["Needs", "check_feasible", "run_ray", "task_needs", "wants_gpu"]
