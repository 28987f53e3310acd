"""The offline run (``heldout train --agent bc --dataset``): an ordinary run folder, an exact resume,
levels shared with the held-out lists refused, and the whole pipeline on MiniGrid (issue 29)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py", reason="offline datasets need h5py (a dependency: make install installs it)")

import torch  # noqa: E402

from heldout.protocol.checkpoint import checkpoints, read_checkpoint  # noqa: E402
from heldout.protocol.dataset import write_synthetic  # noqa: E402
from heldout.protocol.presets import PRESETS  # noqa: E402
from heldout.protocol.run import resume_train, run_train  # noqa: E402
from heldout.protocol.status import write_status  # noqa: E402

ENV = "minigrid-doorkey-6x6"


def _dataset(root: Path, levels: list[int]) -> Path:
    from heldout.protocol.families import family_for

    probe = family_for(ENV).probe_env(PRESETS.get("minigrid-doorkey"))
    space, n = probe.observation_space, int(probe.action_space.n)
    probe.close()
    return write_synthetic(root / "data", ENV, space, n, levels, 600, episode_steps=(10, 40), seed=1)


def _config(root: Path, dataset: Path, **changes: object) -> object:
    return PRESETS.get("minigrid-doorkey").replace(
        agent="bc",
        agent_kwargs={"batch_size": 32},
        dataset=str(dataset),
        timesteps=32 * 12,
        eval_freq=192,
        eval_episodes=3,
        eval_periodic_episodes=2,
        eval_num_envs=2,
        checkpoint_freq=128,
        checkpoint_keep=10,
        out=str(root / "runs"),
        **changes,
    )


def _agent_tensors(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(checkpoint, envs=False).weights["agent"]
    out = {f"net.{k}": v for name, sd in state["networks"].items() for k, v in sd.items()}
    out["generator"] = state["generator"]
    return out


def test_an_offline_run_resumes_exactly(tmp_path: Path) -> None:
    config = _config(tmp_path, _dataset(tmp_path, [0, 1, 2, 3, 4]))
    quiet = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()):
        run_a, summary_a = run_train(config, progress=False, stream=quiet)
    steps = [int(p.name[5:]) for p in checkpoints(run_a)]
    assert steps == [128, 256, 384]
    assert summary_a["agent"] == "bc" and summary_a["timesteps"] == 384
    assert set(summary_a["splits"]) >= {"train", "test"}
    assert not (run_a / "model.zip").exists()
    # an interruption after step 128: the later checkpoints, the evaluation and the summary are gone
    run_b = tmp_path / "interrupted"
    shutil.copytree(run_a, run_b)
    for path in checkpoints(run_b)[1:]:
        shutil.rmtree(path)
    shutil.rmtree(run_b / "eval")
    (run_b / "summary.json").unlink()
    write_status(run_b, "interrupted", 128, 384)
    with contextlib.redirect_stderr(io.StringIO()):
        _, summary_b = resume_train(run_b, progress=False, stream=quiet)
    a, b = _agent_tensors(checkpoints(run_a)[-1]), _agent_tensors(checkpoints(run_b)[-1])
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (run_a / "progress.csv").read_text() == (run_b / "progress.csv").read_text()
    for split in ("train", "test"):
        assert summary_a["splits"][split]["mean"] == summary_b["splits"][split]["mean"]
    # the weights moved from the first checkpoint (the resume did train)
    first = _agent_tensors(checkpoints(run_a)[0])
    assert not all(torch.equal(first[k], a[k]) for k in a if k.startswith("net."))


def test_a_dataset_on_held_out_levels_is_refused(tmp_path: Path) -> None:
    from heldout.protocol.plan import plan_train

    dataset = _dataset(tmp_path, [3, 4])
    with pytest.raises(ValueError, match=r"test level\(s\) 3, 4"):
        plan_train(_config(tmp_path, dataset, num_levels=3, test_start=3, num_test_levels=50))
    assert not (tmp_path / "runs").exists()
    plan_train(_config(tmp_path, dataset))  # the preset's test levels are far from 3 and 4


@pytest.mark.slow
def test_pipeline_ppo_collect_bc_report(tmp_path: Path) -> None:
    """Train PPO briefly on MiniGrid, collect from two checkpoints, learn BC from it, report both."""
    from heldout.cli import main

    def run(*argv: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(list(argv)) == 0, argv
        return out.getvalue()

    common = [
        "--preset",
        "minigrid-doorkey",
        "--eval-episodes",
        "4",
        "--out",
        str(tmp_path / "runs"),
        "--no-progress",
    ]
    run("train", *common, "--timesteps", "4096", "--checkpoint-freq", "2048", "--record-rollouts")
    (ppo,) = (tmp_path / "runs" / ENV / "ppo").iterdir()
    from heldout.protocol.dataset import open_dataset

    rollouts = open_dataset(ppo / "rollouts")  # the "suboptimal" recipe: its own training episodes
    assert rollouts.heldout["recipe"] == "rollouts" and 0 < rollouts.total_steps <= 4096
    assert set(rollouts.levels) <= set(range(5))
    data = tmp_path / "doorkey"
    printed = run("collect", str(ppo), "--steps", "600", "--out", str(data), "--checkpoint", "2048",
                  "--checkpoint", "4096", "--num-envs", "4", "--no-progress")  # fmt: skip
    assert f"dataset: {data}" in printed
    meta = json.loads((data / "data" / "metadata.json").read_text())["heldout"]
    assert meta["recipe"] == "mixed" and meta["checkpoints"] == [2048, 4096] and meta["steps"] >= 600
    assert meta["run"]["dir"] == str(ppo.resolve())
    dataset = open_dataset(data)
    assert set(dataset.levels) <= set(range(5))  # the run's training levels only
    rewards = [
        float(np.sum(e["rewards"], dtype=np.float64))
        for e in dataset.read_episodes(range(len(dataset.lengths)))
    ]
    assert meta["mean_return"] == pytest.approx(np.mean(rewards))
    run(
        "train",
        *common,
        "--agent",
        "bc",
        "--dataset",
        str(data),
        "--timesteps",
        "512",
        "--agent-arg",
        "batch_size=64",
    )
    (bc,) = (tmp_path / "runs" / ENV / "bc").iterdir()
    summary = json.loads((bc / "summary.json").read_text())
    assert summary["agent"] == "bc" and summary["timesteps"] == 512
    run("report", str(ppo), str(bc), "--out", str(tmp_path / "report"))
    assert "bc" in (tmp_path / "report" / "report.md").read_text()
    run("eval", str(bc), "--split", "test", "--episodes", "2")


def test_list_shows_the_offline_agents(capsys: pytest.CaptureFixture) -> None:
    from heldout.agents.offline import OFFLINE_AGENTS
    from heldout.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    section = out.split("offline agents", 1)[1].split("augmentations:", 1)[0]
    for name in OFFLINE_AGENTS.names():
        assert f"  {name} " in section, name
