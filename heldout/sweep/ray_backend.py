"""The Ray backend: a sweep's runs as Ray tasks, on a local Ray instance or an existing cluster.

Each run is one Ray task (Moritz et al. 2018) in a fresh process (``max_calls=1``) running
:func:`heldout.sweep.worker.run_one`, so its folder is what the local backend writes; it asks for
the spec's ``resources``, else its torch threads as CPUs and a GPU on ``device: cuda`` only. The
sweep folder must be on storage every node mounts at the same path: one probe task per node checks
it before any run starts (:func:`check_shared`). Retries are the sweep's own (Ray's are off), and
Ctrl-C cancels the running tasks cleanly (docs/sweeps.md, "A Ray cluster").
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple

from heldout.sweep.local import machine_cores, run_threads
from heldout.sweep.outcome import Job, Ledger, Outcome, free, log_path, stop_signals
from heldout.sweep.plan import Decision, Plan
from heldout.sweep.progress import Display


class Needs(NamedTuple):
    """What one run's task declares to Ray, and the torch threads it runs with."""

    num_cpus: int
    num_gpus: float
    threads: int


def task_needs(
    decisions: list[Decision], cluster_cpus: float, node_cpus: float, resources: dict[str, Any] | None = None
) -> dict[str, Needs]:
    """Each run's :class:`Needs`: the spec's ``resources`` where it gives them; else its torch threads
    as ``num_cpus`` (a run that leaves threads to torch, Procgen's CNN, gets the cluster's cores
    shared among the runs, at most one node's worth), and one GPU for a run on ``device: cuda``
    (none under ``auto``)."""
    resources = resources or {}
    share = max(1, min(int(node_cpus), int(cluster_cpus) // max(1, len(decisions))))
    out = {}
    for d in decisions:
        threads = run_threads(d.run.config) or resources.get("cpus") or share
        cuda = str(getattr(d.run.config, "device", "auto") or "auto").startswith("cuda")
        out[d.run.name] = Needs(resources.get("cpus", threads), resources.get("gpus", int(cuda)), threads)
    return out


def check_feasible(needs: dict[str, Needs], node_cpus: float, cluster_gpus: float) -> None:
    """Refuses runs no node can place (Ray would queue them forever).

    Raises:
        ValueError: One line naming the first such run, what it needs and what the cluster has.
    """
    for name, need in needs.items():
        if need.num_cpus > node_cpus:
            raise ValueError(
                f"run {name!r} asks for {need.num_cpus} CPU(s) (torch_threads or resources.cpus) but the "
                f"largest Ray node has {node_cpus:g}; lower them or add a larger node"
            )
        if need.num_gpus > cluster_gpus:
            raise ValueError(
                f"run {name!r} asks for {need.num_gpus:g} GPU(s) (device: cuda or resources.gpus) but the "
                f"Ray cluster has {cluster_gpus:g}; set device: cpu, lower resources.gpus or add a GPU node"
            )


def _task(
    cwd: str, run_dir: str, config: dict, action: str, threads: int, log: str, command: str, hide_gpus: bool
) -> int:
    """One run in a Ray worker: from the driver's working folder, :func:`run_one` as locally."""
    from heldout.sweep.worker import run_one

    if os.path.isdir(cwd):
        os.chdir(cwd)
    if hide_gpus:  # device auto without a GPU asked for: train on the CPU, as Ray accounted it
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    # no driver to watch: the driver may be on another machine; Ray ends the tasks of a lost driver
    return run_one(run_dir, config, action, threads, log, command, None)


def _probe(file: str, token: str) -> tuple[str, bool]:
    """On one node: its host name, and whether it reads ``token`` from ``file``."""
    import socket

    try:
        return socket.gethostname(), Path(file).read_text() == token
    except OSError:
        return socket.gethostname(), False


def check_shared(folder: Path, timeout: float = 120.0) -> int:
    """Checks that every alive Ray node sees ``folder`` as the driver does: a token file written in
    its nearest existing folder is read back by one task on each node (and removed). Returns the
    nodes checked.

    Raises:
        ValueError: One line naming the first node that does not see it, or did not answer.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    base = folder.absolute()
    while not base.is_dir():
        base = base.parent
    token = uuid.uuid4().hex
    file = base / f".heldout-probe-{token}"
    file.write_text(token)
    try:
        probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
        refs = {
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                str(file), token
            ): n.get("NodeManagerAddress", n["NodeID"])
            for n in ray.nodes()
            if n.get("Alive", True)
        }
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        for ref, node in refs.items():
            try:
                host, seen = ray.get(ref) if ref in ready else (node, None)
            except ray.exceptions.RayError:  # its worker or node lost: no answer
                host, seen = node, None
            if not seen:
                why = f"it cannot read {str(file)!r}" if seen is False else f"no answer in {timeout:g} s"
                raise ValueError(
                    f"Ray node {host} ({node}) does not see the sweep folder {str(folder.absolute())!r} "
                    f"({why}): put it on storage every node mounts at the same path"
                )
        return len(refs)
    finally:
        file.unlink(missing_ok=True)


def _mark(path: Path) -> int | None:
    """What the run folder's status.json looks like now (its mtime), to tell later whether a
    cancelled task had started."""
    try:
        return (path / "status.json").stat().st_mtime_ns
    except OSError:
        return None


def _connect(address: str | None, num_cpus: int | None) -> None:
    import logging

    import ray

    # no address: a new instance for this sweep, never a cluster this machine may already be part of
    local = {"num_cpus": num_cpus or machine_cores(), "include_dashboard": False} if address is None else {}
    ray.init(address=address or "local", log_to_driver=False, logging_level=logging.WARNING, **local)


def _cluster() -> tuple[float, float, float]:
    """(the cluster's CPUs, the largest node's CPUs, the cluster's GPUs)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive", True)]
    node_cpus = max((float(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0.0)
    total = ray.cluster_resources()
    return float(total.get("CPU", 0)), node_cpus, float(total.get("GPU", 0))


def run_ray(
    plan: Plan,
    address: str | None = None,
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
        ValueError: A run no node of the cluster can place, or a node that does not see the sweep
            folder (before ``prepare``).
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
        needs = task_needs(todo, cluster_cpus, node_cpus, getattr(plan.spec, "resources", None))
        check_feasible(needs, node_cpus, gpus)
        nodes = check_shared(plan.folder)
        if prepare is not None:
            prepare()
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        kinds = sorted({(n.num_cpus, n.num_gpus) for n in needs.values()})
        asks = " or ".join(f"{c} CPU(s)" + (f" + {g:g} GPU" if g else "") for c, g in kinds)
        print(
            f"running {len(todo)} run(s) as Ray tasks on {where} ({nodes} node(s) see the sweep folder; "
            f"{cluster_cpus:g} CPU(s), {gpus:g} GPU(s)); each asks for {asks}",
            file=stream,
        )
        _loop(plan, todo, needs, outcome, max_retries, stream, progress, command, poll)
    finally:
        ray.shutdown()
    outcome.seconds = time.monotonic() - t0
    return outcome


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
    pending: dict[Any, Job] = {}
    waiting: list[Job] = []  # runs another live process holds, submitted once it lets go
    display = Display(stream, len(todo), sum(d.steps_left for d in todo), progress)
    ledger = Ledger(todo, outcome, display, plan.folder, max_retries)

    def submit(job: Job) -> None:
        if not free(job):
            waiting.append(job)
            return
        need = needs[job.name]
        hide = need.num_gpus == 0 and str(job.decision.run.config.device or "auto") == "auto"
        job.mark = _mark(job.decision.path)
        job.handle = remote.options(
            num_cpus=need.num_cpus, num_gpus=need.num_gpus, max_retries=0, name=f"heldout-sweep:{job.name}"
        ).remote(cwd, *job.args(plan.folder, command, need.threads), hide)
        pending[job.handle] = job
        outcome.attempts[job.name] = job.attempt

    def seen(job: Job) -> bool:
        """Whether the job's worker has begun (its folder's status.json changed), saying so once."""
        if not job.started and _mark(job.decision.path) != job.mark:
            job.started = time.monotonic()
            display.event(job.label())
        return bool(job.started)

    def forward(signum: int, requests: int) -> None:
        for ref in list(pending):
            with suppress(Exception):  # a task that just ended
                ray.cancel(ref, force=requests > 1)

    try:
        with stop_signals(outcome, display, forward, "queued runs are dropped, "):
            for d in todo:
                submit(Job(d, d.action, 1))
            display.event(f"queued {len(todo)} run(s); each starts when Ray has its CPUs free")
            while pending or waiting:
                if outcome.stopped:
                    outcome.not_started.extend(j.name for j in waiting)
                    waiting.clear()
                for job in [waiting.pop(0) for _ in range(len(waiting))]:
                    submit(job)
                done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=poll, fetch_local=False)
                if not pending:
                    time.sleep(poll)
                for ref in done:
                    job = pending.pop(ref)
                    if outcome.stopped and not seen(job):  # cancelled in the queue: its folder is as it was
                        outcome.not_started.append(job.name)
                        continue
                    code, error = _result(ref, log_path(plan.folder, job.name))
                    seen(job)
                    again = ledger.settle(
                        job, code, time.monotonic() - (job.started or time.monotonic()), error
                    )
                    if again is not None:
                        submit(again)
                running = 0
                for job in pending.values():
                    if seen(job):
                        running += 1
                        job.done_steps = ledger.trained(job.decision)
                ledger.update(list(pending.values()), running)
            ledger.close()
    finally:
        for ref in pending:  # only on an error of the sweep itself: stop the runs with a checkpoint
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001
                pass


def _first_line(error: Any) -> str:
    """The first non-empty line of an error's text, at most 200 characters."""
    lines = [line.strip() for line in str(error or "").splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


def _result(ref: Any, log: Path) -> tuple[int | None, str]:
    """The exit code a task returned, and ``""``; or None and the first line of Ray's error text when
    it was cancelled, or its worker or node was lost (the whole text appended to the run's ``log``)."""
    import ray

    try:
        return int(ray.get(ref)), ""
    except (ray.exceptions.TaskCancelledError, ray.exceptions.RayError) as exc:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            out.write(f"== the Ray task ended without an exit code:\n{type(exc).__name__}: {exc}\n")
        return None, _first_line(f"{type(exc).__name__}: {exc}")


__all__ = ["Needs", "check_feasible", "check_shared", "run_ray", "task_needs"]
