"""``heldout sweep --backend ray`` end to end on a local Ray instance: the local test's tiny grid
(contextual CartPole, PPO and a PPO that fails once per run x 2 seeds, 256 steps a run), run folders
of the same kind as the local backend's, a retry, and a re-run that skips every complete run.

Skipped where Ray is not installed (``pip install -e '.[dev,ray]'``); the address checks, which need
no Ray, are in tests/sweep/test_ray_address.py.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from tests.sweep.test_sweep_local import _spec, _state, _sweep  # noqa: E402


@pytest.fixture()
def local_ray(monkeypatch: pytest.MonkeyPatch):
    """A local Ray instance of 2 CPUs, no usage stats or auth tokens, whose workers import heldout
    from this tree as the driver does; yields :mod:`heldout.sweep.ray_backend`."""
    import heldout.sweep.ray_backend as backend

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    repo = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p))
    connect = backend._connect
    monkeypatch.setattr(backend, "_connect", lambda address, num_cpus: connect(address, 2))
    return backend


def _tree(folder: Path) -> dict[str, set[str]]:
    """Each run folder's files by path (TensorBoard's event files, named by time, host and pid, by
    kind): what a run folder holds, not its bytes."""
    out = {}
    for run in sorted(p.parent for p in folder.rglob("config.yaml")):
        files = (p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
        out[run.relative_to(folder).as_posix()] = {re.sub(r"tfevents\..*", "tfevents.*", f) for f in files}
    return out


def test_the_tiny_sweep_on_a_local_ray_instance_matches_the_local_backend(
    root: Path, local_ray: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = local_ray
    spec = _spec(root)
    folder = root / "sw"
    names = [f"cartpole/{a}/seed{s}" for a in ("ppo", "sweep-flaky-ppo") for s in (0, 1)]

    code, out, err = _sweep(str(spec), "--backend", "ray", "--max-retries", "1", "--no-plots", "--reps", "50")
    assert code == 0, out + err
    assert (
        "as Ray tasks on a local Ray instance (1 node(s) see the sweep folder; 2 CPU(s), 0 GPU(s)); " in err
    )
    assert "each asks for 1 CPU(s)\n" in err  # no GPU under device: auto
    for name in names:
        run = folder / name
        assert _state(run) == "complete", name
        summary = json.loads((run / "summary.json").read_text())
        assert (summary["agent"], summary["timesteps"]) == (name.split("/")[1], 256)
        assert (folder / "logs" / (name.replace("/", "__") + ".log")).is_file()
    # the flaky runs failed once each and the sweep (not Ray) started them again, from the same folder
    assert err.count("retrying") == 2 and "failed cartpole/sweep-flaky-ppo/seed0 (exit 1" in err
    assert "attempt 2" in (folder / "cartpole/sweep-flaky-ppo/seed1/command.txt").read_text()
    assert "4 run(s) trained, 0 skipped" in out
    assert (folder / "report" / "report.md").is_file()
    assert [line.split(":")[0].strip() for line in out.splitlines() if "run(s) on 1 game(s)" in line] == [
        "ppo",
        "sweep-flaky-ppo",
    ]

    # the same run folders as the local backend writes for the same spec (file names; the bytes differ
    # only in timings and the command line)
    ray_tree = _tree(folder)
    local_spec = root / "tiny-local.yaml"
    local_spec.write_text(spec.read_text().replace(f"folder: {folder}", f"folder: {root / 'sw-local'}"))
    code, out, err = _sweep(str(local_spec), "--workers", "2", "--max-retries", "1", "--no-report")
    assert code == 0, out + err
    assert _tree(root / "sw-local") == ray_tree and len(ray_tree) == 4

    # the same command again: every run complete, nothing trained or rewritten, Ray not even started
    summaries = {n: (folder / n / "summary.json").stat().st_mtime_ns for n in names}
    monkeypatch.setattr(
        backend, "_connect", lambda *a: pytest.fail("Ray started for a sweep with nothing to run")
    )
    code, out, err = _sweep(str(spec), "--backend", "ray", "--no-report")
    assert code == 0, out + err
    assert "0 run(s) trained, 4 skipped (complete)" in out
    assert summaries == {n: (folder / n / "summary.json").stat().st_mtime_ns for n in names}


def test_a_node_that_does_not_see_the_sweep_folder_stops_the_sweep_in_one_line(
    tmp_path: Path, local_ray: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each alive node's probe task reads back the token the driver wrote (and removed after); a
    node that reads another (its own disk at that path, as under ``ray://`` without shared storage)
    is named."""
    import ray

    backend = local_ray
    backend._connect(None, 1)
    try:
        folder = tmp_path / "new" / "sw"  # not there yet: the token goes into its nearest folder
        assert backend.check_shared(folder) == 1
        assert list(tmp_path.iterdir()) == []
        write = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda self, data, *a, **k: write(self, "another disk"))
        with pytest.raises(ValueError) as info:
            backend.check_shared(folder)
        message = str(info.value)
        assert f"does not see the sweep folder {str(folder)!r}" in message and "\n" not in message
        assert "cannot read" in message and "same path" in message
        assert list(tmp_path.iterdir()) == []
    finally:
        ray.shutdown()


CRASH = """
import os
from pathlib import Path
from heldout.agents import AGENTS, PPO

class CrashingPPO(PPO):
    def learn(self, *args, **kwargs):
        os._exit(3 + 4)  # the worker process dies: Ray, not the run, says what happened

AGENTS.register("sweep-crashing-ppo", CrashingPPO, help="test: its worker dies")
"""


@pytest.mark.slow
def test_rays_error_text_goes_to_the_runs_log_and_the_summary(root: Path, local_ray: object) -> None:
    (root / "crash.py").write_text(CRASH)
    spec = root / "crash.yaml"
    spec.write_text(
        _spec(root)
        .read_text()
        .replace("sweep_flaky.py", "crash.py")
        .replace("agent: [ppo, sweep-flaky-ppo]", "agent: [sweep-crashing-ppo]")
        .replace("seed: [0, 1]", "seed: [0]")
    )
    try:
        code, out, err = _sweep(str(spec), "--backend", "ray", "--max-retries", "0", "--no-report")
    finally:
        from heldout.agents import AGENTS

        if "sweep-crashing-ppo" in AGENTS.names():
            AGENTS.unregister("sweep-crashing-ppo")
        sys.modules.pop("crash", None)
    assert code == 1, out + err
    name = "cartpole/sweep-crashing-ppo/seed0"
    assert f"failed {name} (exit lost: WorkerCrashedError" in err
    assert re.search(rf"failed: {name} \(log: .*\): WorkerCrashedError", out), out
    log = (root / "sw" / "logs" / (name.replace("/", "__") + ".log")).read_text()
    assert "ended without an exit code" in log and "WorkerCrashedError" in log


@pytest.mark.slow
def test_ctrl_c_drops_the_queued_runs_leaves_the_running_ones_interrupted_and_the_rerun_resumes(
    tmp_path: Path,
) -> None:
    """A real ``heldout sweep --backend ray`` process: 3 runs on the machine's Ray instance (2 at a
    time on 2 cores), SIGINT once both running runs wrote a checkpoint, then the same command again."""
    import signal
    import subprocess
    import time

    spec = tmp_path / "stop.yaml"
    spec.write_text(
        f"name: stop\nfolder: {tmp_path / 'sw'}\n"
        "base: {preset: cartpole-gravity-extrapolation, timesteps: 16384, num_envs: 2, eval_episodes: 2,\n"
        "       eval_num_envs: 2, checkpoint_freq: 512, agent_kwargs: {n_steps: 64, batch_size: 64, n_epochs: 1}}\n"
        "grid: {seed: [0, 1, 2]}\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "heldout", "sweep", str(spec), "--backend", "ray", "--no-report"]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    runs = [tmp_path / "sw" / f"cartpole/ppo/seed{s}" for s in range(3)]
    deadline = time.monotonic() + 300
    while sum(bool(list(r.glob("checkpoints/step-*"))) for r in runs) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out + err
    assert "stopping: queued runs are dropped" in err and "stopped: run the same command again" in out
    started = [r for r in runs if r.exists()]
    assert len(started) == 2 and all(_state(r) == "interrupted" for r in started), out + err
    assert "2 interrupted, 1 not started" in out

    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 run(s) trained, 0 skipped" in again.stdout
    assert all(_state(r) == "complete" for r in runs)
    for run in started:  # resumed from its checkpoint, in the same folder
        assert "resume" in (run / "command.txt").read_text().splitlines()[-1]


def test_tuning_on_ray_scores_and_chooses_as_the_local_backend(tmp_path: Path, local_ray: object) -> None:
    """``--tune --backend ray``: both stages as Ray tasks; from the same seeds the trials' validation
    scores, the choice and the stage-2 runs' test returns equal the local backend's."""
    from tests.sweep.test_sweep_tune import tiny_tune_spec

    results = {}
    for backend in ("ray", "local"):
        folder = tmp_path / backend
        spec = tiny_tune_spec(tmp_path / f"{backend}.yaml", folder)
        code, out, err = _sweep(str(spec), "--tune", "--backend", backend, "--no-report")
        assert code == 0, out + err
        if backend == "ray":
            assert err.count("as Ray tasks on a local Ray instance") == 2  # stage 1, then stage 2
        tuning = json.loads((folder / "tune" / "tuning.json").read_text())
        group = tuning["groups"][0]
        tests = [
            json.loads((folder / f"cartpole/ppo/seed{s}/summary.json").read_text())["splits"]["test"]["mean"]
            for s in (0, 1)
        ]
        results[backend] = ([(t["name"], t["score"]) for t in group["trials"]], group["best"]["name"], tests)
    assert results["ray"] == results["local"]


@pytest.mark.slow
def test_a_second_ray_node_is_probed_and_its_loss_resumes_its_run_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ray cluster of two nodes on this machine (ray.cluster_utils): the sweep's probe reaches both;
    the worker node is removed while it trains a run, and the sweep retries that run on the head from
    its last checkpoint (its dead worker's lease is stale: its pid is gone from this host)."""
    import subprocess
    import time

    from ray.cluster_utils import Cluster

    from heldout.protocol.lease import read_lease

    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    for key in ("RAY_USAGE_STATS_ENABLED", "PYTHONPATH"):  # the nodes' workers import this tree
        monkeypatch.setenv(key, env[key])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker_node = cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        spec = tmp_path / "two.yaml"
        spec.write_text(
            f"name: two\nfolder: {tmp_path / 'sw'}\n"
            "base: {preset: cartpole-gravity-extrapolation, timesteps: 8192, num_envs: 2, eval_episodes: 2,\n"
            "       eval_num_envs: 2, checkpoint_freq: 256, agent_kwargs: {n_steps: 64, batch_size: 64, n_epochs: 1}}\n"
            "grid: {seed: [0, 1]}\n"
        )
        argv = [sys.executable, "-m", "heldout", "sweep", str(spec), "--backend", "ray", "--no-report"]
        argv += ["--address", cluster.address, "--max-retries", "1"]
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        runs = [tmp_path / "sw" / f"cartpole/ppo/seed{s}" for s in (0, 1)]
        deadline = time.monotonic() + 300
        while not all(list(r.glob("checkpoints/step-*")) and read_lease(r) for r in runs):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        cluster.remove_node(worker_node)  # the node goes, with the worker that trains one of the runs
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out + err
        assert "2 node(s) see the sweep folder" in err
        assert "(exit lost: " in err and "retrying" in err, err
        assert all(_state(r) == "complete" for r in runs)
        resumed = [r for r in runs if "resume, attempt 2" in (r / "command.txt").read_text()]
        assert len(resumed) == 1, err
    finally:
        cluster.shutdown()
