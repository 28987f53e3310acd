"""The sweep's plan: one decision per run folder in each state, from fake folders (no training)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from heldout.protocol.run_folder import write_yaml
from heldout.sweep.plan import check_sweep_folder, decide, make_plan, record_sweep
from heldout.sweep.spec import build_runs, parse_spec

TOTAL = 2048


@pytest.fixture()
def sweep(tmp_path: Path):
    spec = parse_spec(
        {
            "name": "t",
            "folder": str(tmp_path / "sw"),
            "base": {"preset": "cartpole-gravity-extrapolation", "timesteps": TOTAL},
            "grid": {"seed": [0, 1, 2, 3, 4, 5, 6]},
        }
    )
    return spec, build_runs(spec)


def fake_run(path: Path, config, state: str | None, step: int = 0, checkpoint: int | None = None, **status):
    """A run folder as a run leaves it: config.yaml, status.json, optionally an intact checkpoint."""
    path.mkdir(parents=True)
    write_yaml(path / "config.yaml", config.to_dict())
    if state is not None:
        record = {"state": state, "step": step, "total": TOTAL, "host": "elsewhere", "pid": 1, "error": None}
        (path / "status.json").write_text(json.dumps({**record, **status}))
    if state == "complete":
        (path / "summary.json").write_text("{}")
        (path / "eval").mkdir()
    if checkpoint is not None:
        ck = path / "checkpoints" / f"step-{checkpoint}"
        ck.mkdir(parents=True)
        (ck / "state.json").write_text(json.dumps({"step": checkpoint, "extra": {}}))
        digest = hashlib.sha256((ck / "state.json").read_bytes()).hexdigest()
        (ck / "manifest.json").write_text(json.dumps({"step": checkpoint, "files": {"state.json": digest}}))


def test_each_state_gets_its_decision(sweep) -> None:
    spec, runs = sweep
    folder = spec.folder
    # seed0: no folder; seed1 complete; seed2 interrupted with a checkpoint at 1024; seed3 interrupted
    # with none; seed4 failed with a checkpoint; seed5 diverged; seed6 running here and now
    fake_run(folder / runs[1].name, runs[1].config, "complete", TOTAL)
    fake_run(folder / runs[2].name, runs[2].config, "interrupted", 1100, checkpoint=1024)
    fake_run(folder / runs[3].name, runs[3].config, "interrupted", 300)
    fake_run(folder / runs[4].name, runs[4].config, "failed", 900, checkpoint=512, error="OSError: disk full")
    fake_run(
        folder / runs[5].name, runs[5].config, "failed", 700, checkpoint=512, error="TrainingDiverged: NaN"
    )
    import socket

    fake_run(
        folder / runs[6].name,
        runs[6].config,
        "running",
        50,
        host=socket.gethostname(),
        pid=os.getppid(),
        updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    (folder / "sweep.json").write_text(json.dumps({"name": "t"}))
    plan = make_plan(spec, runs, max_retries=2)
    got = [(d.state, d.action, d.steps_left) for d in plan.decisions]
    assert got == [
        ("new", "start", TOTAL),
        ("complete", "skip", 0),
        ("interrupted", "resume", TOTAL - 1024),
        ("interrupted", "restart", TOTAL),
        ("failed", "resume", TOTAL - 512),
        ("failed", "keep", 0),  # a retry from the same seed and checkpoint would diverge again
        ("running", "wait", TOTAL - 50),  # started once its holder lets go
    ]
    assert plan.steps_left == TOTAL + (TOTAL - 1024) + TOTAL + (TOTAL - 512) + (TOTAL - 50)
    assert plan.count() == {"new": 1, "complete": 1, "interrupted": 2, "failed": 2, "running": 1}
    text = plan.text()
    assert "7 run(s), 5 to run, 8,654 environment steps" in text
    assert "1 new, 1 complete, 2 interrupted, 2 failed, 1 running elsewhere" in text


def test_no_retries_keeps_failed_runs_and_a_dead_running_run_is_interrupted(sweep) -> None:
    spec, runs = sweep
    fake_run(
        spec.folder / runs[0].name, runs[0].config, "failed", 10, checkpoint=None, error="RuntimeError: x"
    )
    import socket

    dead = 2**22 + 12345  # beyond the default pid_max: no such process
    fake_run(spec.folder / runs[1].name, runs[1].config, "running", 10, host=socket.gethostname(), pid=dead)
    assert decide(runs[0], spec.folder, max_retries=0).action == "keep"
    assert decide(runs[0], spec.folder, max_retries=1).action == "restart"
    d = decide(runs[1], spec.folder, max_retries=1)
    assert (d.state, d.action) == ("interrupted", "restart")


@pytest.mark.parametrize(("age", "action"), [(5, "wait"), (10_000, "restart")])
def test_a_run_running_on_another_host_is_waited_for_until_its_heartbeat_is_stale(
    sweep, age: int, action: str
) -> None:
    """No lease file (a run from before leases): the status's own host, pid and ``updated`` decide."""
    spec, runs = sweep
    updated = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - age))
    fake_run(spec.folder / runs[0].name, runs[0].config, "running", 10, host="node-b", pid=7, updated=updated)
    assert decide(runs[0], spec.folder, max_retries=1).action == action


def test_a_folder_that_stopped_before_its_config_restarts(sweep) -> None:
    spec, runs = sweep
    (spec.folder / runs[0].name).mkdir(parents=True)
    d = decide(runs[0], spec.folder, max_retries=1)
    assert (d.state, d.action, d.steps_left) == ("interrupted", "restart", TOTAL)


def test_a_run_folder_of_another_config_is_refused(sweep) -> None:
    spec, runs = sweep
    fake_run(spec.folder / runs[0].name, runs[0].config.replace(timesteps=999), "complete")
    with pytest.raises(ValueError, match=r"holds another run .*timesteps: 999 there, 2048 in the spec"):
        decide(runs[0], spec.folder, max_retries=1)


def test_the_sweep_folder_must_be_new_empty_or_this_sweeps(sweep, tmp_path) -> None:
    spec, runs = sweep
    assert check_sweep_folder(spec) == spec.folder and not spec.folder.exists()  # new: nothing created
    spec.folder.mkdir()
    check_sweep_folder(spec)  # empty
    (spec.folder / "stray.txt").write_text("x")
    with pytest.raises(ValueError, match="holds files but no sweep.json"):
        check_sweep_folder(spec)
    (spec.folder / "sweep.json").write_text(json.dumps({"name": "other"}))
    with pytest.raises(ValueError, match="another sweep, 'other'"):
        check_sweep_folder(spec)
    (spec.folder / "sweep.json").unlink()
    (spec.folder / "stray.txt").unlink()
    plan = make_plan(spec, runs, 1)
    record_sweep(plan, "heldout sweep s.yaml")
    data = json.loads((spec.folder / "sweep.json").read_text())
    assert data["name"] == "t" and list(data["runs"]) == [r.name for r in runs]
    assert check_sweep_folder(spec) == spec.folder  # its own record: accepted


def test_a_sweep_folder_that_is_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    spec = parse_spec({"name": "t", "folder": str(tmp_path / "f"), "grid": {"seed": [0]}})
    with pytest.raises(ValueError, match="is a file"):
        check_sweep_folder(spec)
