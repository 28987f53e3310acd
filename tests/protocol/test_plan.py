"""``heldout train --dry-run``: the plan a real run then carries out, and nothing written."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from heldout.cli import main

#: A tiny MiniGrid run: 5 training levels, so the leakage check drops held-out duplicates.
TINY_MINIGRID = [
    "train",
    "--preset", "quickstart",
    "--timesteps", "64",
    "--num-envs", "2",
    "--agent-arg", "n_steps=32",
    "--agent-arg", "batch_size=32",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "40",
    "--eval-freq", "0",
    "--seed", "3",
    "--no-progress",
]  # fmt: skip


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


def test_a_dry_run_writes_nothing_and_its_plan_is_what_the_run_records(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    argv = [*TINY_MINIGRID, "--out", str(out)]
    code, text, err = _cli([*argv, "--dry-run"], tmp_path)
    assert code == 0 and err == ""
    assert _tree(tmp_path) == []  # not even the --out folder
    code, js, _ = _cli([*argv, "--dry-run", "--json"], tmp_path)
    assert code == 0 and _tree(tmp_path) == []
    plan = json.loads(js)

    assert _cli(argv, tmp_path)[0] == 0
    (run_dir,) = (out / "minigrid-doorkey-6x6" / "ppo").iterdir()
    recorded = json.loads((run_dir / "split.json").read_text())
    # the run's evaluation lists and leakage record are the plan's, entry for entry
    assert plan["eval_lists"] == recorded["eval_levels"]
    assert plan["leakage"] == recorded["leakage"]
    assert plan["split"] == recorded["split"]
    dropped = plan["leakage"]["test"]["dropped"]
    dropped = len(dropped) if isinstance(dropped, list) else dropped
    assert dropped > 0  # the plan shows what the check dropped
    # the planned folder is the one created (same parent and name pattern; the stamp may differ by a second)
    planned = Path(plan["run_dir"])
    assert (
        planned.parent == run_dir.parent
        and planned.name.split("-")[0] == run_dir.name.split("-")[0] == "seed3"
    )
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert plan["config"] == config
    # the text names the folder it would create, each list and its leakage record
    assert f"run folder: {plan['run_dir']}" in text or "run folder: " + str(planned.parent) in text
    assert "test: 40 episodes, 40 distinct" in text
    assert f"{dropped} dropped" in text


def test_a_dry_run_of_a_contextual_env_lists_its_contexts(tmp_path: Path) -> None:
    code, js, err = _cli(
        [
            "train",
            "--preset",
            "cartpole-gravity-extrapolation",
            "--eval-episodes",
            "6",
            "--dry-run",
            "--json",
        ],
        tmp_path,
    )
    assert code == 0 and err == "" and _tree(tmp_path) == []
    plan = json.loads(js)
    assert plan["kind"] == "contexts" and set(plan["eval_lists"]) >= {"train", "test"}
    low, high = map(float, plan["config"]["contexts"]["train"]["gravity"].split(":"))  # "4.9:14.7"
    for item in plan["eval_lists"]["train"]:
        assert low <= item["context"]["gravity"] <= high
    for item in plan["eval_lists"]["test"]:
        assert item["context"]["gravity"] > high  # extrapolation: beyond the training range


@pytest.mark.parametrize("flags", [["--json"], ["--resume", "x", "--dry-run"]])
def test_dry_run_flags_out_of_place_are_refused(tmp_path: Path, flags: list[str]) -> None:
    code, _, err = _cli(["train", "--preset", "quickstart", *flags], tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and _tree(tmp_path) == []
