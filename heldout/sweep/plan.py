"""What a sweep does with each of its runs, decided from the run folders before any compute.

A run's decision follows its folder's state (:mod:`heldout.protocol.status`; the table is in
docs/sweeps.md): ``start``, ``skip``, ``resume`` / ``restart`` (a retry while ``--max-retries``
allows, never of a diverged run), ``keep`` (left failed) or ``wait`` (a live lease elsewhere). A
folder that holds another run, another sweep or files of no sweep is refused.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heldout.sweep.progress import step_of
from heldout.sweep.spec import RunPoint, SweepSpec

#: The file that gives a sweep folder its identity.
SWEEP_FILE = "sweep.json"
#: Folders of the sweep folder that are no runs: the workers' logs and the report.
SWEEP_PARTS = ("logs", "report")
#: Actions that start a worker (``wait``: once no live process holds the run).
RUNS = ("start", "resume", "restart", "wait")


@dataclass
class Decision:
    """What the sweep does with one run.

    Attributes:
        run: The run.
        path: Its folder.
        state: ``new`` or a status state (``complete``, ``interrupted``, ``failed``, ``running``).
        action: ``start``, ``skip``, ``resume``, ``restart``, ``keep`` or ``wait`` (see the module).
        detail: What was found, in words (``interrupted at step 1024 of 2048``).
        steps_left: Environment steps still to train (0 for a run that is not started).
    """

    run: RunPoint
    path: Path
    state: str
    action: str
    detail: str
    steps_left: int

    @property
    def starts(self) -> bool:
        """Whether the sweep starts a worker for this run."""
        return self.action in RUNS


@dataclass
class Plan:
    """A sweep's decisions, in grid order."""

    spec: SweepSpec
    folder: Path
    decisions: list[Decision] = field(default_factory=list)

    def count(self, what: str = "state") -> dict[str, int]:
        """How many runs are in each state (or take each action, with ``what="action"``)."""
        return dict(Counter(getattr(d, what) for d in self.decisions))

    @property
    def steps_left(self) -> int:
        return sum(d.steps_left for d in self.decisions if d.starts)

    @property
    def to_run(self) -> list[Decision]:
        return [d for d in self.decisions if d.starts]

    def text(self, limit: int = 200) -> str:
        """The plan as printed: a header with the counts, then one line per run (up to ``limit``)."""
        states = self.count()
        found = ", ".join(f"{states.get(s, 0)} {s}" for s in ("new", "complete", "interrupted", "failed"))
        if states.get("running"):
            found += f", {states['running']} running elsewhere"
        lines = [
            f"sweep {self.spec.name!r} in {str(self.folder)!r}: {len(self.decisions)} run(s), "
            f"{len(self.to_run)} to run, {self.steps_left:,} environment steps to train",
            f"  found: {found}",
        ]
        width = max((len(d.run.name) for d in self.decisions), default=0)
        for d in self.decisions[:limit]:
            lines.append(f"  {d.run.name:<{width}}  {d.detail:<36}  {_verb(d)}")
        if len(self.decisions) > limit:
            lines.append(f"  ... and {len(self.decisions) - limit} more")
        return "\n".join(lines)


def _verb(d: Decision) -> str:
    verbs = {
        "start": "start ({:,} steps)",
        "resume": "resume ({:,} steps left)",
        "restart": "restart ({:,} steps)",
    }
    verbs.update(wait="wait for its process, then resume it", skip="skip", keep="keep (not retried)")
    return verbs[d.action].format(d.steps_left)


def check_sweep_folder(spec: SweepSpec) -> Path:
    """The sweep's folder, checked to be new, empty, or this sweep's own (creates nothing).

    Raises:
        ValueError: The folder is a file or not writable, holds another sweep (its ``sweep.json``
            names it) or holds files but no ``sweep.json``.
    """
    from heldout.protocol.checks import shown
    from heldout.protocol.run_folder import check_writable, read_json

    folder = spec.folder
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"sweep folder {str(folder)!r} is a file, not a folder")
    check_writable(folder)
    if not folder.is_dir():
        return folder
    record = folder / SWEEP_FILE
    if record.is_file():
        data = read_json(record)
        if data.get("name") != spec.name:
            raise ValueError(
                f"sweep folder {str(folder)!r} holds the runs of another sweep, {shown(data.get('name'))} "
                f"({SWEEP_FILE}), not {spec.name!r}: give this sweep another folder"
            )
        return folder
    if any(folder.iterdir()):
        raise ValueError(
            f"sweep folder {str(folder)!r} holds files but no {SWEEP_FILE}: it is no sweep's folder; "
            "give the sweep a new or empty folder"
        )
    return folder


def _differs(found: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    diff = [f"{k}: {found.get(k)!r} there, {v!r} in the spec" for k, v in wanted.items() if found.get(k) != v]
    return diff[0] if diff else None


def decide(run: RunPoint, folder: Path, max_retries: int) -> Decision:
    """The decision for one run whose folder is ``folder / run.name`` (see the module's table).

    Raises:
        ValueError: The folder holds a run of another config, or an unreadable status.
    """
    from heldout.protocol.checkpoint import latest_checkpoint
    from heldout.protocol.run_folder import read_config
    from heldout.protocol.status import describe_status, read_status

    path = folder / run.name
    total = run.config.timesteps
    if not path.exists():
        return Decision(run, path, "new", "start", "new", total)
    if not (path / "config.yaml").is_file():  # stopped before it wrote its config: nothing to keep
        return Decision(run, path, "interrupted", "restart", "interrupted before it began", total)
    try:
        found = read_config(path / "config.yaml").to_dict()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"run folder {str(path)!r}: {exc}") from None
    diff = _differs(found, run.config.to_dict())
    if diff is not None:
        raise ValueError(
            f"run folder {str(path)!r} holds another run than the spec describes ({diff}); "
            "give the sweep another folder or name, or remove that run folder"
        )
    status = read_status(path)
    state, detail = status["state"], describe_status(status)
    if len(detail) > 60:
        detail = detail[:57] + "..."
    if state == "complete":
        return Decision(run, path, state, "skip", "complete", 0)
    if state == "running":
        where = f"running (pid {status.get('pid')} on {status.get('host')})"
        return Decision(run, path, state, "wait", where[:60], max(0, total - step_of(path)))
    if state == "failed":
        error = str(status.get("error") or "")
        if max_retries <= 0 or error.startswith("TrainingDiverged"):
            return Decision(run, path, state, "keep", detail, 0)
    checkpoint, _ = latest_checkpoint(path)
    if checkpoint is None:
        return Decision(run, path, state, "restart", detail, total)
    return Decision(run, path, state, "resume", detail, max(0, total - int(checkpoint.name[len("step-") :])))


def make_plan(spec: SweepSpec, runs: list[RunPoint], max_retries: int) -> Plan:
    """Checks the sweep's folder and decides every run (writes nothing)."""
    folder = check_sweep_folder(spec)
    return Plan(spec, folder, [decide(run, folder, max_retries) for run in runs])


def record_sweep(plan: Plan, command: str = "") -> Path:
    """Writes ``<folder>/sweep.json``: the sweep's identity (its name) and spec, and its runs."""
    import time

    from heldout.protocol.run_folder import read_json, write_json

    path = plan.folder / SWEEP_FILE
    previous = read_json(path) if path.is_file() else {}
    data = {
        "name": plan.spec.name,
        "spec": plan.spec.to_dict(),
        "source": os.path.abspath(plan.spec.source) if plan.spec.source else "",
        "created": created
        if isinstance(created := previous.get("created"), str)
        else time.strftime("%Y-%m-%dT%H:%M:%S"),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": command,
        "runs": {d.run.name: d.run.point for d in plan.decisions},
    }
    return write_json(path, data)


__all__ = ["SWEEP_FILE", "Decision", "Plan", "check_sweep_folder", "decide", "make_plan", "record_sweep"]
