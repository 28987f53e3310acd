"""One run of a sweep, in a worker process: start, resume or restart it into its run folder.

It writes nothing of its own but its log (``<sweep>/logs/<run>.log``); the run folder is what
``heldout train`` writes. It first takes the run's lease (:mod:`heldout.protocol.lease`; held by
another live process: exit 3), then decides again from the folder, as the plan may be out of date.
Exit codes: 0 complete, 1 failed, 3 held by another live process, 130 interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from heldout.protocol.lease import LeaseHeld
from heldout.sweep.outcome import COMPLETE, FAILED, HELD, INTERRUPTED, retry_action


def _watch(driver: int, every: float = 1.0) -> None:
    """Interrupts this process (a clean stop at the end of the update, with a checkpoint) once the
    sweep's process ``driver`` is gone, so a killed sweep leaves its runs interrupted and resumable
    rather than training on unwatched. (A worker's parent is the fork server, which outlives the
    sweep while workers run, so the kernel's parent-death signal would not fire.)"""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(every)
            try:
                os.kill(driver, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGINT)
                return
            except PermissionError:  # pragma: no cover - a pid taken by another user's process
                continue

    threading.Thread(target=watch, name="heldout-sweep-watch", daemon=True).start()


def run_one(
    run_dir: str,
    config: dict[str, Any],
    action: str,
    threads: int,
    log: str,
    command: str,
    driver: int | None = None,
) -> int:
    """Runs one sweep run (``action``: ``start``, ``restart`` or ``resume``) and returns its exit code.

    ``threads``: torch's CPU threads for the run where its config leaves them to the default;
    ``driver``: the sweep's process, watched (see :func:`_watch`).
    """
    os.setpgrp()  # the sweep forwards Ctrl-C itself, once, so each run stops at an update boundary
    if driver is not None:
        _watch(driver)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1) as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        sys.stdout = sys.stderr = out
        try:
            return _run(run_dir, config, action, threads, out, command)
        except LeaseHeld as exc:
            print(f"== left alone: {exc}", file=out)
            return HELD
        except KeyboardInterrupt:
            return INTERRUPTED
        except BaseException as exc:  # the run folder says failed, with the error
            import traceback

            traceback.print_exc(file=out)
            print(f"run failed: {type(exc).__name__}: {exc}", file=out)
            return FAILED


def _run(run_dir: str, data: dict[str, Any], action: str, threads: int, out: Any, command: str) -> int:
    import torch

    import heldout  # noqa: F401  (registers the envs)
    from heldout.protocol.config import TrainConfig
    from heldout.protocol.lease import hold, is_lease_file
    from heldout.protocol.plugins import import_plugins
    from heldout.protocol.run import resume_train, run_train

    if threads > 0:
        torch.set_num_threads(threads)
    config = TrainConfig.from_dict(data)
    import_plugins(config.imports)
    with hold(run_dir):
        action = retry_action(Path(run_dir)) or "keep"  # decided again, holding the lease
        print(f"== {action} {run_dir}", file=out)
        if action == "keep":
            return FAILED
        if action == "skip":
            return COMPLETE
        if action == "resume":
            resume_train(run_dir, progress=False, stream=out, command=command)
            return COMPLETE
        for path in Path(run_dir).iterdir():  # start afresh: all but the lease
            if not is_lease_file(path):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        run_train(config, command=command, progress=False, stream=out, run_dir=run_dir)
    return COMPLETE


__all__ = ["COMPLETE", "FAILED", "HELD", "INTERRUPTED", "run_one"]
