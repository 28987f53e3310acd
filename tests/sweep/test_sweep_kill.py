"""Sweeps whose processes are killed for real, then run again with the same command: every run ends
complete, none is trained twice (each run's ``command.txt`` holds one start, then resumes only), and
every run is the run an uninterrupted sweep trains (the same weights and final evaluations).

Killed: the driver (SIGKILL; and SIGTERM, a scheduler's preemption), one worker (SIGKILL), and a whole
"node": a sweep whose leases name host ``node-b`` (``HELDOUT_HOST``) with every process of it killed at
once; from ``node-a`` its runs are left alone while their heartbeats are fresh and taken over once
they are stale (heartbeats written back in time stand for the minutes passing).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from heldout.protocol.lease import LEASE_FILE, STALE_SECONDS, read_lease

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)
REPO = str(Path(__file__).resolve().parents[2])


def _spec(root: Path, folder: str) -> Path:
    spec = root / f"{folder}.yaml"
    spec.write_text(
        f"name: kill\nfolder: {root / folder}\n"
        "base: {preset: cartpole-gravity-extrapolation, timesteps: 4096, num_envs: 2, eval_episodes: 4,\n"
        "       eval_num_envs: 2, checkpoint_freq: 256, agent_kwargs: {n_steps: 64, batch_size: 64, n_epochs: 1}}\n"
        f"grid: {{seed: {list(SEEDS)}}}\n"
    )
    return spec


def _argv(spec: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "heldout", "sweep", str(spec), "--workers", "2", "--no-report", *extra]


def _env(host: str = "") -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HELDOUT_HOST": host}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    return env


def _runs(folder: Path) -> list[Path]:
    return [folder / f"cartpole/ppo/seed{s}" for s in SEEDS]


def _result(run: Path) -> tuple:
    """What a run trained and measured: its final weights and its final evaluations."""
    with zipfile.ZipFile(run / "model.zip") as z:
        weights = torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)
    evals = tuple((run / "eval" / f).read_bytes() for f in ("train.csv", "test.csv"))
    return tuple((k, v.tolist()) for k, v in sorted(weights.items())), evals


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple]:
    """The uninterrupted sweep's runs."""
    root = tmp_path_factory.mktemp("reference")
    done = subprocess.run(_argv(_spec(root, "sw")), cwd=root, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return [_result(run) for run in _runs(root / "sw")]


def _until(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline and proc.poll() is None, f"waiting for {what}: {proc.poll()}"
        time.sleep(0.02)


def _checkpointed(folder: Path) -> bool:
    return any(list(run.glob("checkpoints/step-*")) for run in _runs(folder))


def _snapshot(folder: Path) -> dict[Path, tuple]:
    """Per run, as the kill left it: its summary's mtime (a complete run), its first command line
    (the try that started it), and whether it has a checkpoint."""
    out = {}
    for run in _runs(folder):
        summary = run / "summary.json"
        first = (run / "command.txt").read_text().splitlines()[0] if (run / "command.txt").is_file() else None
        out[run] = (
            summary.stat().st_mtime_ns if summary.is_file() else None,
            first,
            bool(list(run.glob("checkpoints/step-*"))),
        )
    return out


def _assert_done_once_and_exact(folder: Path, reference: list[tuple], before: dict[Path, tuple]) -> None:
    for run, expected in zip(_runs(folder), reference, strict=True):
        assert json.loads((run / "status.json").read_text())["state"] == "complete", run
        done, first, checkpointed = before[run]
        if done is not None:  # complete before: not trained again
            assert (run / "summary.json").stat().st_mtime_ns == done, run
        lines = (run / "command.txt").read_text().splitlines()
        if checkpointed:  # a checkpoint before: resumed from it, never started afresh
            assert lines[0] == first and all(", resume, attempt" in line for line in lines[1:]), lines
        assert not (run / LEASE_FILE).exists()
        assert _result(run) == expected, run


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_driver_and_the_same_command_again(
    tmp_path: Path, reference: list[tuple], signum: int
) -> None:
    spec, folder = _spec(tmp_path, "sw"), tmp_path / "sw"
    proc = subprocess.Popen(
        _argv(spec), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _until(lambda: _checkpointed(folder), proc, "a checkpoint")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == (-9 if signum == signal.SIGKILL else 130), err
    before = _snapshot(folder)
    if signum == signal.SIGTERM:  # like Ctrl-C: each run stops at its update's end, with a checkpoint
        assert b"stopping" in err and b"run the same command again" in out
        assert not any((run / LEASE_FILE).exists() for run in _runs(folder))
    # at once: a worker of the killed driver may still be stopping, holding its run; it is waited for
    again = subprocess.run(_argv(spec), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    _assert_done_once_and_exact(folder, reference, before)


def test_a_killed_worker_is_resumed_from_its_checkpoint(tmp_path: Path, reference: list[tuple]) -> None:
    spec, folder = _spec(tmp_path, "sw"), tmp_path / "sw"
    proc = subprocess.Popen(
        _argv(spec, "--max-retries", "1"),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    victim = _runs(folder)[0]
    _until(lambda: list(victim.glob("checkpoints/step-*")) and read_lease(victim), proc, "seed0's checkpoint")
    os.kill(read_lease(victim)["pid"], signal.SIGKILL)
    before = _snapshot(folder)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    assert b"failed cartpole/ppo/seed0 (exit -9" in err and b"retrying" in err
    assert ", resume, attempt 2" in (victim / "command.txt").read_text()
    _assert_done_once_and_exact(folder, reference, before)
    assert ", start, attempt 1" in (victim / "command.txt").read_text().splitlines()[0]


def test_a_lost_node_is_left_alone_while_fresh_and_taken_over_once_stale(
    tmp_path: Path, reference: list[tuple]
) -> None:
    spec, folder = _spec(tmp_path, "sw"), tmp_path / "sw"
    proc = subprocess.Popen(
        _argv(spec), cwd=tmp_path, env=_env("node-b"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    _until(
        lambda: _checkpointed(folder) and any(read_lease(r) for r in _runs(folder)), proc, "a held checkpoint"
    )
    # the node goes: the driver and its fork server frozen, then every process of the sweep killed
    os.killpg(proc.pid, signal.SIGSTOP)
    for run in _runs(folder):
        lease = read_lease(run)
        if lease:
            os.kill(lease["pid"], signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    before = _snapshot(folder)
    held = [run for run in _runs(folder) if read_lease(run)]
    assert held and all(read_lease(run)["host"] == "node-b" for run in held)

    # from node-a, at once: the runs node-b held are waited for, not taken
    plan = subprocess.run(
        _argv(spec, "--dry-run"), cwd=tmp_path, env=_env("node-a"), capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr
    for run in held:
        name = run.relative_to(folder).as_posix()
        line = next(line for line in plan.stdout.splitlines() if line.strip().startswith(name))
        assert "on node-b" in line and "wait for its process" in line, line

    # minutes later: the heartbeats are stale, and the same command takes the runs over
    for run in held:
        lease = read_lease(run)
        (run / LEASE_FILE).write_text(
            json.dumps({**lease, "heartbeat": lease["heartbeat"] - STALE_SECONDS - 5})
        )
    again = subprocess.run(
        _argv(spec), cwd=tmp_path, env=_env("node-a"), capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout + again.stderr
    _assert_done_once_and_exact(folder, reference, before)
