"""Kill a training run (SIGKILL, no chance to clean up) and resume it: it must end exactly where the
uninterrupted run of the same seed ends, on CPU: the same final weights bit for bit, the same
evaluation episodes, the same summary (timings aside) and the same progress.csv rows (wall-clock
columns aside).

The runs are real ``heldout train`` subprocesses of a CartPole context preset (contextual family:
SB3 ``DummyVecEnv``, whose env state travels as this user's signed pickle) with a checkpoint every
two PPO iterations; ``data/kill_plugin.py`` kills the process at the chosen point.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from heldout.protocol.checkpoint import checkpoints, latest_checkpoint
from heldout.protocol.status import read_status

PLUGIN = Path(__file__).parent / "data" / "kill_plugin.py"
FINAL_EPISODES = 12
ARGS = [
    "train",
    "--preset", "cartpole-gravity-extrapolation",
    "--timesteps", "4096",
    "--agent-arg", "n_steps=64",  # 8 envs x 64 = 512 steps an iteration: 8 iterations
    "--eval-episodes", str(FINAL_EPISODES),
    "--eval-freq", "1024",
    "--eval-periodic-episodes", "4",
    "--checkpoint-freq", "1024",
    "--checkpoint-keep", "3",
    "--import", str(PLUGIN),
    "--no-progress",
]  # fmt: skip
#: summary.json entries that measure wall time or name the folder.
TIMING = {"train_seconds", "train_steps_per_second", "eval_seconds", "run_dir"}


def _heldout(args: list[str], cwd: Path, kill: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "HELDOUT_TEST_KILL": kill, "HELDOUT_TEST_FINAL_EPISODES": str(FINAL_EPISODES)}
    env["HELDOUT_SIGNING_KEY"] = str(cwd / "signing.key")
    return subprocess.run(
        [sys.executable, "-m", "heldout", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _run_dir(out: Path) -> Path:
    (run,) = list(out.glob("cartpole/ppo/seed0-*"))
    return run


def _weights(run: Path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(run / "model.zip") as z:
        return torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)


def _progress(run: Path) -> list[dict[str, str]]:
    with open(run / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {k: v for k, v in r.items() if not k.startswith("time/") or k == "time/total_timesteps"} for r in rows
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run."""
    cwd = tmp_path_factory.mktemp("reference")
    done = _heldout([*ARGS, "--out", str(cwd / "runs")], cwd)
    assert done.returncode == 0, done.stderr
    return _run_dir(cwd / "runs")


def _assert_same_run(run: Path, reference: Path) -> None:
    a, b = _weights(run), _weights(reference)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for name in ("train.csv", "test.csv"):
        assert (run / "eval" / name).read_bytes() == (reference / "eval" / name).read_bytes()
    summary, expected = (json.loads((r / "summary.json").read_text()) for r in (run, reference))
    assert {k: v for k, v in summary.items() if k not in TIMING} == {
        k: v for k, v in expected.items() if k not in TIMING
    }
    assert _progress(run) == _progress(reference)
    assert read_status(run)["state"] == "complete"


def _kill_and_resume(tmp_path: Path, where: str, reference: Path) -> Path:
    killed = _heldout([*ARGS, "--out", str(tmp_path / "runs")], tmp_path, kill=where)
    assert killed.returncode == -9, killed.stderr
    run = _run_dir(tmp_path / "runs")
    status = read_status(run)
    assert status["state"] == "interrupted" and status.get("stale")  # the dead process is noticed
    assert not (run / "summary.json").exists()
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    _assert_same_run(run, reference)
    return run


def test_a_run_killed_during_an_update_resumes_exactly(tmp_path, reference):
    run = _kill_and_resume(tmp_path, "update:6", reference)  # checkpoints at 1024, 2048, (3072 next)
    assert (run / "command.txt").read_text().count("--resume") == 1


def test_an_engine_heldout_run_killed_during_an_update_resumes_to_the_sb3_engines_run(tmp_path, reference):
    """``--engine heldout`` (tests/agents/test_engine.py): killed and resumed, it ends bit for bit
    where the uninterrupted run on SB3's rollout path (the reference) ends: weights, evaluation
    episodes, summary and progress.csv."""
    args = [*ARGS, "--engine", "heldout"]
    killed = _heldout([*args, "--out", str(tmp_path / "runs")], tmp_path, kill="update:6")
    assert killed.returncode == -9, killed.stderr
    run = _run_dir(tmp_path / "runs")
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "not exactly" not in resumed.stderr
    _assert_same_run(run, reference)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["rollout:200", "final-eval"])
def test_a_run_killed_mid_rollout_or_in_the_final_evaluation_resumes_exactly(tmp_path, reference, where):
    _kill_and_resume(tmp_path, where, reference)


def test_resuming_a_complete_run_says_so_and_changes_nothing(tmp_path, reference):
    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    done = _heldout(["train", "--resume", str(reference), "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout and "nothing to resume" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()} == before


def test_resume_refuses_a_run_a_live_process_holds_and_changes_nothing(tmp_path, reference):
    import shutil
    import time

    from heldout.protocol.lease import LEASE_FILE, host_id

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "running"}))
    lease = {
        "host": host_id(),
        "pid": os.getpid(),
        "token": "t",
        "since": time.time(),
        "heartbeat": time.time(),
    }
    (run / LEASE_FILE).write_text(json.dumps(lease))  # this test's process holds it, alive
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    done = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and f"pid {os.getpid()}" in done.stderr
    assert "is held by a live process" in done.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_corrupt_last_checkpoint_is_skipped_with_a_warning(tmp_path, reference):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    newest = checkpoints(run)[-1]
    (newest / "weights.pt").write_bytes(b"truncated")
    found, warnings = latest_checkpoint(run)
    assert found == checkpoints(run)[-2]
    assert len(warnings) == 1 and "weights.pt does not match its checksum" in warnings[0]


def test_another_users_env_pickle_is_refused_without_trust_pickle(tmp_path, reference):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    (run / "status.json").write_text(json.dumps({"state": "interrupted", "step": 0, "total": 4096}))
    env = dict(os.environ, HELDOUT_SIGNING_KEY=str(tmp_path / "someone-else.key"))
    done = subprocess.run(
        [sys.executable, "-m", "heldout", "train", "--resume", str(run), "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--trust-pickle" in done.stderr and "Traceback" not in done.stderr
    assert not (run / "summary.json").exists()


def test_resume_takes_no_other_config_flag(tmp_path, reference):
    done = _heldout(["train", "--resume", str(reference), "--timesteps", "10"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--timesteps" in done.stderr


def test_eval_of_a_checkpoint_writes_its_own_split(tmp_path, reference):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    done = _heldout(["eval", str(run), "--checkpoint", "2048", "--episodes", "4", "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((run / "eval" / "test-step-2048.json").read_text())
    assert (
        list(result["splits"]) == ["test-step-2048"] and result["splits"]["test-step-2048"]["episodes"] == 4
    )
    assert (run / "eval" / "test.csv").read_bytes() == (reference / "eval" / "test.csv").read_bytes()
    bad = _heldout(["eval", str(run), "--checkpoint", "999", "--no-progress"], tmp_path)
    assert bad.returncode == 2 and "no checkpoint '999'" in bad.stderr and "step-2048" in bad.stderr


class _Planted:
    """A pickle that, once loaded, creates the file it names: what a shared run folder could carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_no_command_runs_a_pickle_planted_in_a_shared_run_folder(tmp_path, reference):
    import pickle
    import shutil

    run = tmp_path / "shared"
    shutil.copytree(reference, run)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Planted(marker))
    (run / "vecnormalize.pkl").write_bytes(payload)
    with zipfile.ZipFile(run / "model.zip", "a") as z:  # SB3 unpickles entries of its data file
        z.writestr("data", json.dumps({"policy_class": {":serialized:": payload.hex()}}))
    for checkpoint in checkpoints(run):
        (checkpoint / "envs.pkl").write_bytes(payload)
    # the final checkpoint's weights.pt replaced too, its manifest made to match (an attacker can)
    final = checkpoints(run)[-1]
    torch.save({"policy": _Planted(marker)}, final / "weights.pt")
    manifest = json.loads((final / "manifest.json").read_text())
    import hashlib

    manifest["files"]["weights.pt"] = hashlib.sha256((final / "weights.pt").read_bytes()).hexdigest()
    (final / "manifest.json").write_text(json.dumps(manifest))

    other = dict(os.environ, HELDOUT_SIGNING_KEY=str(tmp_path / "someone-else.key"))
    for args in (
        ["eval", str(run), "--episodes", "2", "--no-progress"],
        ["eval", str(run), "--checkpoint", "1024", "--episodes", "2", "--no-progress"],
        ["report", str(run), "--out", str(tmp_path / "report"), "--no-plots"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "heldout", *args], cwd=tmp_path, env=other, capture_output=True, text=True
        )
        assert "Traceback" not in done.stderr, done.stderr
        assert not marker.exists(), args
    (run / "status.json").write_text(json.dumps({"state": "interrupted", "step": 3072, "total": 4096}))
    done = subprocess.run(
        [sys.executable, "-m", "heldout", "train", "--resume", str(run), "--no-progress"],
        cwd=tmp_path, env=other, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and not marker.exists()


def test_a_diverged_update_fails_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    done = _heldout([*ARGS, "--out", str(tmp_path / "runs")], tmp_path, kill="nan:5")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "non-finite weights" in lines[-1] and "Traceback" not in done.stderr
    run = _run_dir(tmp_path / "runs")
    status = read_status(run)
    assert status["state"] == "failed" and status["step"] == 5 * 512 and "NaN" in status["error"]
    newest, warnings = latest_checkpoint(run)
    assert newest is not None and newest.name == "step-2048" and not warnings  # before the NaN update
    assert not (run / "summary.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])  # Ctrl-C, and a scheduler's preemption
def test_ctrl_c_checkpoints_at_the_update_boundary_and_the_run_resumes_exactly(tmp_path, reference, signame):
    import signal
    import time

    env = {**os.environ, "HELDOUT_SIGNING_KEY": str(tmp_path / "signing.key")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "heldout", *ARGS, "--out", str(tmp_path / "runs")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("runs/cartpole/ppo/*/checkpoints/step-1024")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert f"{signame}: stopping at the end of this update" in err
    run = _run_dir(tmp_path / "runs")
    status = read_status(run)
    assert status["state"] == "interrupted"
    newest, _ = latest_checkpoint(run)
    assert newest is not None and newest.name == f"step-{status['step']}"  # checkpointed where it stopped
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(run, reference)


PROCGEN_ARGS = [
    "train", "--env", "coinrun", "--timesteps", "1024", "--num-envs", "4",
    "--agent-arg", "n_steps=32", "--agent-arg", "batch_size=64",
    "--eval-episodes", "6", "--eval-freq", "256", "--eval-periodic-episodes", "2",
    "--checkpoint-freq", "256", "--checkpoint-keep", "3", "--import", str(PLUGIN), "--no-progress",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["ppo", "ucb-drac"])
def test_a_procgen_run_killed_during_an_update_resumes_exactly(tmp_path, agent):
    """Procgen's native env travels through procgen's state API; UCB-DrAC adds its bandit and the
    augmentation generators."""
    args = [*PROCGEN_ARGS, "--agent", agent]
    ref = _heldout([*args, "--out", str(tmp_path / "ref")], tmp_path)
    assert ref.returncode == 0, ref.stderr
    killed = _heldout([*args, "--out", str(tmp_path / "runs")], tmp_path, kill="update:5")
    assert killed.returncode == -9, killed.stderr
    (run,) = list((tmp_path / "runs").glob(f"coinrun/{agent}/seed0-*"))
    (reference,) = list((tmp_path / "ref").glob(f"coinrun/{agent}/seed0-*"))
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "not exactly" not in resumed.stderr
    _assert_same_run(run, reference)


def test_a_full_disk_mid_run_marks_the_folder_failed_in_one_line(tmp_path, monkeypatch, capsys):
    """ENOSPC while writing a checkpoint: the run stops, status.json says failed with the error, and
    the command answers in one line (exit 1), keeping the checkpoints written before."""
    import errno

    import heldout.protocol.run as run_module
    from heldout.cli import main

    real, calls = run_module.save_checkpoint, [0]

    def save(model, run_dir, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(run_dir))
        return real(model, run_dir, **kwargs)

    monkeypatch.setattr(run_module, "save_checkpoint", save)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HELDOUT_SIGNING_KEY", str(tmp_path / "signing.key"))
    args = [a for a in ARGS if a not in ("--import", str(PLUGIN))]
    assert main([*args, "--out", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "No space left on device" in err[-1] and "Traceback" not in "\n".join(err)
    run = _run_dir(tmp_path / "runs")
    status = read_status(run)
    assert status["state"] == "failed" and "No space left" in status["error"] and status["step"] == 2048
    assert [p.name for p in checkpoints(run)] == ["step-1024"]


def test_what_a_checkpoint_cannot_hold_is_named_and_the_resume_says_it_is_not_exact(tmp_path):
    """LunarLander's Box2D world does not pickle: the checkpoint names it, and a resumed run starts its
    envs afresh and warns that it is not the uninterrupted run (the difference is not bounded: new
    episodes from fresh envs)."""
    args = [
        "train", "--preset", "lunarlander-gravity-extrapolation", "--timesteps", "2048",
        "--agent-arg", "n_steps=64", "--eval-episodes", "2", "--checkpoint-freq", "1024",
        "--import", str(PLUGIN), "--no-progress", "--out", str(tmp_path / "runs"),
    ]  # fmt: skip
    killed = _heldout(args, tmp_path, kill="update:2")
    assert killed.returncode == -9, killed.stderr
    (run,) = list((tmp_path / "runs").glob("lunarlander/ppo/seed0-*"))
    state = json.loads((checkpoints(run)[-1] / "state.json").read_text())
    assert state["env"]["unsaved"] == ["the DummyVecEnv envs (ContextualLunarLander)"]
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "not exactly as the uninterrupted run would" in resumed.stderr
    assert read_status(run)["state"] == "complete"


PLR_ARGS = [
    "train", "--preset", "minigrid-doorkey", "--env", "minigrid-doorkey-5x5", "--num-levels", "12",
    "--timesteps", "1024", "--num-envs", "2", "--agent-arg", "n_steps=64", "--agent-arg", "batch_size=64",
    "--eval-episodes", "4", "--eval-freq", "0", "--checkpoint-freq", "256", "--checkpoint-keep", "3",
    "--level-sampler", "robust-plr", "--sampler-arg", "rho=0.2", "--import", str(PLUGIN), "--no-progress",
]  # fmt: skip


@pytest.mark.slow
def test_a_robust_plr_run_killed_during_an_update_resumes_exactly(tmp_path):
    """MiniGrid (a DummyVecEnv whose envs travel as a signed pickle, without the sampler they share)
    with Robust PLR: the sampler's scores, staleness, buffer, batch and generator come back from the
    checkpoint, so the resumed run replays the same levels and ends with the same weights."""
    ref = _heldout([*PLR_ARGS, "--out", str(tmp_path / "ref")], tmp_path)
    assert ref.returncode == 0, ref.stderr
    killed = _heldout([*PLR_ARGS, "--out", str(tmp_path / "runs")], tmp_path, kill="update:6")
    assert killed.returncode == -9, killed.stderr
    (run,) = list((tmp_path / "runs").glob("minigrid-doorkey-5x5/ppo/seed0-*"))
    (reference,) = list((tmp_path / "ref").glob("minigrid-doorkey-5x5/ppo/seed0-*"))
    state = json.loads((checkpoints(run)[-1] / "state.json").read_text())
    assert state["level_sampler"]["new_episodes"] >= 4 and any(state["level_sampler"]["seen"])
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "not exactly" not in resumed.stderr
    _assert_same_run(run, reference)
    weights = (run / "level_weights.csv").read_text()
    assert weights == (reference / "level_weights.csv").read_text()
    assert weights.splitlines()[0] == "level,score,staleness,weight,seen,times_played,times_handed_out"


BONUS_ARGS = [
    "train", "--preset", "minigrid-doorkey", "--env", "minigrid-doorkey-5x5", "--num-levels", "12",
    "--timesteps", "1024", "--num-envs", "2", "--agent-arg", "n_steps=64", "--agent-arg", "batch_size=64",
    "--eval-episodes", "4", "--eval-freq", "0", "--checkpoint-freq", "256", "--checkpoint-keep", "3",
    "--import", str(PLUGIN), "--no-progress",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "bonus",
    [
        ["--bonus", "product"],  # E3B x RND: networks, optimisers, per-slot inverse covariances
        ["--bonus", "sum", "--bonus-arg", "global=count", "--bonus-arg", "episodic=episodic-count"],
    ],
    ids=["e3b-x-rnd", "count-plus-episodic-count"],
)
def test_a_run_with_an_exploration_bonus_killed_during_an_update_resumes_exactly(tmp_path, bonus):
    """The bonus's state (networks, optimisers, generators, counts, episodic memories, the running
    std) comes back from the checkpoint: the resumed run ends with the uninterrupted run's weights,
    evaluation episodes and progress.csv rows, intrinsic column included."""
    args = [*BONUS_ARGS, *bonus]
    ref = _heldout([*args, "--out", str(tmp_path / "ref")], tmp_path)
    assert ref.returncode == 0, ref.stderr
    killed = _heldout([*args, "--out", str(tmp_path / "runs")], tmp_path, kill="update:6")
    assert killed.returncode == -9, killed.stderr
    (run,) = list((tmp_path / "runs").glob("minigrid-doorkey-5x5/ppo/seed0-*"))
    (reference,) = list((tmp_path / "ref").glob("minigrid-doorkey-5x5/ppo/seed0-*"))
    agent = torch.load(checkpoints(run)[-1] / "weights.pt", weights_only=True)["agent"]
    assert "bonus" in agent
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "not exactly" not in resumed.stderr
    _assert_same_run(run, reference)
    assert any(row["rollout/intrinsic"] for row in _progress(run))
