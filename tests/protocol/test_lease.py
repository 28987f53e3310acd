"""Run leases (heldout.protocol.lease): one holder at a time, stale holders taken over, live ones never,
and the status of a ``running`` folder made true from its lease.

"Another host" is a process whose ``HELDOUT_HOST`` differs; "time passing" is a heartbeat written in
the past (no test sleeps for the threshold).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heldout.protocol import lease as leases
from heldout.protocol.lease import LEASE_FILE, STALE_SECONDS, LeaseHeld, acquire, hold, read_lease
from heldout.protocol.status import read_status, write_status

DEAD = 2**22 + 12345  # beyond the default pid_max: no such process


def _plant(run: Path, **fields) -> dict:
    """A lease as another process left it (defaults: this host, a live process, a fresh heartbeat)."""
    now = time.time()
    record = {
        "host": leases.host_id(),
        "pid": os.getppid(),
        "token": "theirs",
        "since": now,
        "heartbeat": now,
    }
    record.update(fields)
    run.mkdir(parents=True, exist_ok=True)
    (run / LEASE_FILE).write_text(json.dumps(record))
    return record


def test_a_lease_is_taken_released_and_nests_within_a_process(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with hold(run) as outer:
        found = read_lease(run)
        assert (found["host"], found["pid"], found["token"]) == (leases.host_id(), os.getpid(), outer.token)
        with hold(run) as inner:  # the worker holds it, then run_train holds it again
            assert inner is outer
        assert read_lease(run)["token"] == outer.token  # the inner release keeps it
    assert read_lease(run) is None and [p.name for p in run.iterdir()] == []


@pytest.mark.parametrize(
    ("fields", "taken"),
    [
        ({}, False),  # a live process on this host
        ({"pid": DEAD}, True),  # its process is gone from this host
        ({"host": "node-b", "pid": DEAD}, False),  # another host, fresh heartbeat: its pid means nothing here
        ({"host": "node-b", "heartbeat": time.time() - STALE_SECONDS - 5}, True),  # a lost node
        ({"heartbeat": time.time() - STALE_SECONDS - 5}, True),  # silent here too (a stopped process)
        ({"heartbeat": "soon", "pid": 10**40}, True),  # not a lease: untrusted fields, no traceback
    ],
)
def test_a_live_lease_is_refused_and_a_stale_one_taken_over(
    tmp_path: Path, fields: dict, taken: bool
) -> None:
    run = tmp_path / "run"
    _plant(run, **fields)
    if not taken:
        with pytest.raises(LeaseHeld) as info:
            acquire(run)
        assert "held by a live process" in str(info.value) and "\n" not in str(info.value)
        assert read_lease(run)["token"] == "theirs"  # left as it was
        return
    with hold(run) as mine:
        assert read_lease(run)["token"] == mine.token != "theirs"
    assert sorted(p.name for p in run.iterdir()) == []  # no marker left behind


def _contend(run: str, barrier, results, done) -> None:
    barrier.wait()
    try:
        lease = acquire(run)
        results.put(lease.token)
        done.wait(60)  # hold it until every other contender has tried
        lease.release()
    except LeaseHeld:
        results.put(None)


def test_of_many_processes_taking_over_one_stale_lease_exactly_one_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    _plant(run, pid=DEAD)
    check = leases.refuse_if_held

    def slow(path: Path) -> None:  # every contender has judged the lease stale before any takes it
        check(path)
        time.sleep(0.3)

    monkeypatch.setattr(leases, "refuse_if_held", slow)
    ctx = multiprocessing.get_context("fork")
    barrier, results, done = ctx.Barrier(6), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_contend, args=(str(run), barrier, results, done)) for _ in range(6)]
    for p in procs:
        p.start()
    won = [t for t in (results.get(timeout=60) for _ in procs) if t is not None]
    done.set()
    for p in procs:
        p.join(60)
    assert len(won) == 1


HOLDER = """
import sys, time
from heldout.protocol import lease
lease.HEARTBEAT_SECONDS = 0.05
held = lease.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def test_a_holder_beats_and_stops_at_once_when_its_lease_is_taken(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "HELDOUT_HOST": "node-b"}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        first = read_lease(run)
        assert first["host"] == "node-b"
        deadline = time.monotonic() + 30
        while read_lease(run)["heartbeat"] == first["heartbeat"]:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)
        with pytest.raises(LeaseHeld):  # fresh on another host: never taken
            acquire(run)
        _plant(run, host="node-c", token="taken")  # as if node-c took it over
        assert proc.wait(30) == leases.LOST
        assert read_lease(run)["token"] == "taken"  # the old holder wrote nothing more
    finally:
        proc.kill()
        proc.wait()


def test_a_running_status_is_as_live_as_its_lease(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_status(run, "running", 10, 100)
    assert read_status(run)["state"] == "running"  # this process wrote it
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "pid": os.getppid()}))
    _plant(run, pid=DEAD)
    assert read_status(run) == {**status, "pid": os.getppid(), "state": "interrupted", "stale": True}
    _plant(run, host="node-b")
    assert read_status(run)["state"] == "running"
    _plant(run, host="node-b", heartbeat=time.time() - STALE_SECONDS - 1)
    assert read_status(run)["state"] == "interrupted"
