"""``heldout sweep`` end to end on the local backend: a tiny grid of real runs, a re-run that skips,
a resume and a restart, and a failing run retried.

The grid: contextual CartPole, 2 agents (PPO and a PPO that fails the first time each of its runs
starts, a plugin imported by the spec) x 2 seeds, 256 steps a run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import textwrap
from pathlib import Path

FLAKY = '''
"""PPO that fails the first time each of its runs trains (a marker file per seed says it did)."""
from pathlib import Path
from heldout.agents import AGENTS, PPO

class FlakyPPO(PPO):
    def learn(self, *args, **kwargs):
        marker = Path(__file__).with_name(f"failed-once-seed{self.seed}")
        if not marker.exists():
            marker.write_text("x")
            raise RuntimeError("a planned failure")
        return super().learn(*args, **kwargs)

AGENTS.register("sweep-flaky-ppo", FlakyPPO, help="test: fails once per run")
'''


def _spec(root: Path, timesteps: int = 256) -> Path:
    spec = root / "tiny.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            name: tiny
            folder: {root / "sw"}
            base:
              preset: cartpole-gravity-extrapolation
              imports: [{root / "sweep_flaky.py"}]
              timesteps: {timesteps}
              num_envs: 2
              agent_kwargs: {{n_steps: 32, batch_size: 32, n_epochs: 1}}
              eval_episodes: 2
              eval_num_envs: 2
              checkpoint_freq: 128
            grid:
              agent: [ppo, sweep-flaky-ppo]
              seed: [0, 1]
            """
        )
    )
    return spec


def _sweep(*argv: str) -> tuple[int, str, str]:
    from heldout.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sweep", *argv])
    return code, out.getvalue(), err.getvalue()


def _state(path: Path) -> str:
    return json.loads((path / "status.json").read_text())["state"]


def test_a_tiny_sweep_runs_retries_skips_resumes_and_reports(root: Path) -> None:
    spec = _spec(root)
    folder = root / "sw"
    names = [f"cartpole/{a}/seed{s}" for a in ("ppo", "sweep-flaky-ppo") for s in (0, 1)]

    code, out, err = _sweep(str(spec), "--dry-run")
    assert code == 0, err
    assert "4 run(s), 4 to run, 1,024 environment steps" in out and "dry run: nothing written" in out
    assert not folder.exists()

    code, out, err = _sweep(str(spec), "--workers", "2", "--max-retries", "1", "--no-plots", "--reps", "50")
    assert code == 0, out + err
    for name in names:
        run = folder / name
        assert _state(run) == "complete", name
        config = json.loads(json.dumps(__import__("yaml").safe_load((run / "config.yaml").read_text())))
        assert (config["agent"], f"seed{config['seed']}") == tuple(name.split("/")[1:])
        assert json.loads((run / "summary.json").read_text())["timesteps"] == 256
    # the flaky runs failed once each and were started again (the log of the sweep says so)
    assert err.count("retrying") == 2 and "failed cartpole/sweep-flaky-ppo/seed0" in err
    assert "attempt 2" in (folder / "cartpole/sweep-flaky-ppo/seed1/command.txt").read_text()
    assert "4 run(s) trained, 0 skipped" in out
    assert (folder / "report" / "report.md").is_file()
    agent_lines = [line for line in out.splitlines() if "run(s) on 1 game(s)" in line]
    assert [line.split(":")[0].strip() for line in agent_lines] == ["ppo", "sweep-flaky-ppo"]
    assert json.loads((folder / "sweep.json").read_text())["name"] == "tiny"

    # the same command again: everything complete, nothing trained or rewritten
    summaries = {n: (folder / n / "summary.json").stat().st_mtime_ns for n in names}
    code, out, err = _sweep(str(spec), "--no-report")
    assert code == 0, err
    assert "0 run(s) trained, 4 skipped (complete)" in out and "start" not in err
    assert summaries == {n: (folder / n / "summary.json").stat().st_mtime_ns for n in names}

    # one run interrupted after its training (a checkpoint says done), one failed before any checkpoint
    resumed, restarted = folder / names[0], folder / names[1]
    status = json.loads((resumed / "status.json").read_text())
    (resumed / "status.json").write_text(json.dumps({**status, "state": "interrupted"}))
    (resumed / "summary.json").unlink()
    status = json.loads((restarted / "status.json").read_text())
    (restarted / "status.json").write_text(json.dumps({**status, "state": "failed", "error": "OSError: x"}))
    for checkpoint in (restarted / "checkpoints").iterdir():
        import shutil

        shutil.rmtree(checkpoint)
    code, out, err = _sweep(str(spec), "--no-report", "--dry-run")
    assert re.search(rf"{names[0]} +interrupted at step 256 of 256 +resume \(0 steps left\)", out), out
    assert "restart (256 steps)" in out
    code, out, err = _sweep(str(spec), "--no-report")
    assert code == 0, out + err
    assert "2 run(s) trained, 2 skipped" in out
    assert _state(resumed) == _state(restarted) == "complete"
    assert "resume" in (resumed / "command.txt").read_text().splitlines()[-1]
    assert len((restarted / "command.txt").read_text().splitlines()) == 1  # a fresh folder


def test_another_sweeps_folder_is_refused_before_anything_is_written(root: Path) -> None:
    spec = _spec(root)
    folder = root / "sw"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({"name": "someone-else"}))
    before = sorted(os.listdir(folder))
    code, out, err = _sweep(str(spec))
    assert code == 2 and "another sweep, 'someone-else'" in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(folder)) == before
