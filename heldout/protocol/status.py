"""A run folder's state: running, interrupted, failed or complete, with the step it reached.

Every run folder carries ``status.json``::

    {"state": "running", "step": 40960, "total": 200000, "updated": "2026-12-02T14:05:11",
     "host": "node7", "pid": 4242, "error": null}

written atomically when the run starts, as training moves on (:class:`StatusCallback`, at most every
few seconds), and when it ends: ``complete`` after ``summary.json``, ``interrupted`` on Ctrl-C,
``failed`` (with the error) on an exception or a diverged update. A run killed outright (``kill -9``,
Slurm's SIGKILL, a lost machine) cannot say so itself: :func:`read_status` reports a ``running``
folder as ``interrupted`` once no live process holds it: its lease (:mod:`heldout.protocol.lease`)
is stale (its process gone from this host, or no heartbeat for ``STALE_SECONDS`` on any host), or,
in a folder without a lease, the same test on the status's own host, pid and ``updated``.

Folders written before ``status.json`` existed count as ``complete`` when they hold ``summary.json``
(the last file a run writes), else ``interrupted``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from heldout.protocol.checks import check_fields
from heldout.protocol.lease import host_id, is_live, is_mine, read_lease
from heldout.protocol.run_folder import write_json

STATUS_FILE = "status.json"

#: The states a run folder can be in.
STATES: tuple[str, ...] = ("running", "interrupted", "failed", "complete")


class TrainingDiverged(RuntimeError):
    """An update left the model's weights NaN or infinite; the run stops and is marked failed."""


def write_status(
    run_dir: str | os.PathLike[str], state: str, step: int, total: int, error: str | None = None
) -> Path:
    """Writes ``run_dir/status.json`` (atomically)."""
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}; valid: {', '.join(STATES)}")
    return write_json(
        Path(run_dir) / STATUS_FILE,
        {
            "state": state,
            "step": int(step),
            "total": int(total),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": host_id(),
            "pid": os.getpid(),
            "error": error,
        },
    )


#: The fields of ``status.json`` besides its state, and their kinds
#: (:func:`heldout.protocol.checks.check_fields`); a pid is a positive C int (``os.kill`` takes no more).
STATUS_FIELDS: dict[str, Any] = {
    "step": "count?",
    "total": "count?",
    "pid": (1, 2**31 - 1, "?"),
    "host": "text?",
    "error": "text?",
}


def _heartbeat(updated: Any) -> float | None:
    """``updated`` (``2026-12-02T14:05:11+0000``; without an offset: this host's local time) as epoch
    seconds, None when it is no time."""
    try:
        when = datetime.datetime.fromisoformat(str(updated))
    except ValueError:
        return None
    return when.timestamp()


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The state of a run folder, as :func:`write_status` wrote it, made true where it can be.

    A ``running`` status that no live process holds (see the module) becomes ``interrupted`` (with
    ``"stale": true``); a folder without ``status.json`` is ``complete`` if it holds ``summary.json``
    (written last), else ``interrupted``.

    Raises:
        ValueError: naming the file if ``status.json`` is unreadable or not a status.
    """
    path = Path(run_dir)
    file = path / STATUS_FILE
    if not file.is_file():
        done = (path / "summary.json").is_file()  # written last, after the final evaluation
        return {"state": "complete" if done else "interrupted", "step": None, "total": None, "legacy": True}
    try:
        status = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{str(file)!r} is not a readable run status ({exc})") from None
    if not isinstance(status, dict) or status.get("state") not in STATES:
        raise ValueError(f"{str(file)!r} holds no run state (one of {', '.join(STATES)})")
    check_fields(status, STATUS_FIELDS, repr(str(file)))  # untrusted: a pid of 400 digits, a NaN step
    if status["state"] == "running":
        lease = read_lease(path)
        if lease is None:  # a run from before leases, or one that has not taken its lease yet
            lease = {
                "host": status.get("host"),
                "pid": status.get("pid"),
                "heartbeat": _heartbeat(status.get("updated")),
            }
        if not is_live(lease) and not is_mine(lease):
            status = {**status, "state": "interrupted", "stale": True}
    return status


def describe_status(status: dict[str, Any]) -> str:
    """``"interrupted at step 40960 of 200000"``, ``"failed at step 12 of 100: <error>"``, ``"complete"``."""
    text = status["state"]
    if status["state"] != "complete" and status.get("step") is not None:
        text += f" at step {status['step']}"
        if status.get("total"):
            text += f" of {status['total']}"
    if status.get("error"):
        text += f": {status['error']}"
    return text


def _finite(model: Any) -> bool:
    import torch

    with torch.no_grad():
        return all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())


def status_callback(run_dir: Path, total: int, every_seconds: float = 5.0) -> Any:
    """An SB3 callback that keeps ``status.json`` at the step reached (at most every ``every_seconds``)
    and stops the run with :class:`TrainingDiverged` when an update leaves non-finite weights."""
    from stable_baselines3.common.callbacks import BaseCallback

    class StatusCallback(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.last_write = -math.inf

        def _on_step(self) -> bool:
            now = time.monotonic()
            if now - self.last_write >= every_seconds:
                self.last_write = now
                write_status(run_dir, "running", self.num_timesteps, total)
            return True

        def _on_rollout_start(self) -> None:  # after every update (and before the first rollout)
            if not _finite(self.model):
                raise TrainingDiverged(
                    f"the update before step {self.num_timesteps} left non-finite weights (NaN or Inf); "
                    "try a lower learning rate or max_grad_norm"
                )

    return StatusCallback()
