"""docs/adding-an-agent.md runs as written: its example agent, its commands and its snippets.

The guide's commands and Python blocks are read from the guide itself (only the output folder is
moved to a temporary one), so the page and this test cannot drift apart.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from heldout.agents import AGENTS, PPO
from heldout.cli import main
from heldout.protocol.plugins import import_plugin

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-an-agent.md"
EXAMPLE = ROOT / "docs" / "examples" / "l2_ppo.py"
HOOKS = (
    "augment_batch",
    "auxiliary_loss",
    "policy_loss_weights",
    "before_update",
    "after_update",
    "augment_rollout",
)


def _blocks(language: str) -> list[str]:
    return [
        code for lang, code in re.findall(r"```(\w*)\n(.*?)```", GUIDE.read_text(), re.S) if lang == language
    ]


def _block(language: str, needle: str) -> str:
    (code,) = [b for b in _blocks(language) if needle in b]
    return code


def _forget_example() -> None:
    """Undoes the example's import: its registration and its module."""
    if "l2-ppo" in AGENTS:
        AGENTS.unregister("l2-ppo")
    sys.modules.pop("l2_ppo", None)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):
    """Runs in the repository root (the guide's paths are relative to it), l2-ppo unregistered."""
    monkeypatch.chdir(ROOT)
    _forget_example()
    yield
    _forget_example()


def _run(line: str, out: Path) -> int:
    """Runs one ``heldout ...`` line of the guide in process, its ``runs/`` folder moved under ``out``."""
    argv = []
    for arg in shlex.split(line.split("  #")[0])[1:]:
        if arg.startswith("runs/"):
            arg = str(out / arg)
            if "*" in arg:
                (arg,) = glob.glob(arg)
        argv.append(arg)
    with contextlib.redirect_stdout(io.StringIO()):
        return main([*argv, "--no-progress"])


def _exec(code: str, out: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "guide"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code.replace('"runs/', f'"{out}/runs/'), str(GUIDE), "exec"), namespace)
    return namespace


def test_the_guide_shows_the_example_file_as_it_is():
    shown = [line for line in _block("python", "class L2PPO").splitlines() if line.strip()]
    lines = iter(EXAMPLE.read_text().splitlines())
    for line in shown:  # every line shown, in the file's order (the guide leaves docstrings out)
        assert any(line == candidate for candidate in lines), (
            f"not in {EXAMPLE.name} (in this order): {line!r}"
        )


def test_the_example_registers_an_agent_that_overrides_one_hook(fresh):
    module = import_plugin("docs/examples/l2_ppo.py")
    cls = AGENTS.get("l2-ppo")
    assert cls is module.L2PPO and issubclass(cls, PPO)
    assert [h for h in HOOKS if getattr(cls, h) is not getattr(PPO, h)] == ["auxiliary_loss"]
    assert "Cobbe et al. 2019" in AGENTS.describe("l2-ppo")
    assert import_plugin(str(EXAMPLE)) is module  # by another path: the same module, no second registration
    with pytest.raises(ValueError, match=r"l2_coef must be a number >= 0, got -1"):
        cls(l2_coef=-1, _init_setup_model=False)


def test_the_guides_check_trains_through_the_cli_and_the_penalty_shrinks_the_weights(fresh, tmp_path):
    commands = [line for line in _block("bash", "runs/l2-check").splitlines() if line.startswith("heldout ")]
    assert [c.split()[1] for c in commands] == ["train", "train", "eval"]
    for line in commands:
        if line.startswith("heldout eval"):
            _forget_example()  # a new process: only config.yaml says where l2-ppo comes from
        assert _run(line, tmp_path) == 0, line
    assert "l2-ppo" in AGENTS

    (run,) = (tmp_path / "runs/l2-check/cartpole/l2-ppo").iterdir()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["agent"] == "l2-ppo" and config["imports"] == [str(EXAMPLE)]
    with open(run / "progress.csv") as f:
        penalties = [float(r["train/l2_penalty"]) for r in csv.DictReader(f) if r["train/l2_penalty"]]
    assert penalties and all(p > 0 for p in penalties)

    snippet = _exec(_block("python", "def weight_norm"), tmp_path)
    norms = snippet["norms"]
    assert set(norms) == {"ppo", "l2-ppo"}
    # same seed, same data until the first update: only the penalty makes the difference
    assert norms["l2-ppo"] < norms["ppo"]

    # a penalty 10^4 times stronger shrinks them clearly further
    strong = commands[1].replace("runs/l2-check", "runs/l2-strong") + " --agent-arg l2_coef=1.0"
    assert _run(strong, tmp_path) == 0
    (strong_run,) = (tmp_path / "runs/l2-strong/cartpole/l2-ppo").iterdir()
    assert snippet["weight_norm"](strong_run) < 0.98 * norms["l2-ppo"]


def test_the_guides_python_api_runs_the_protocol(fresh, tmp_path):
    namespace = _exec(_block("python", "run_train("), tmp_path)
    assert namespace["summary"]["agent"] == "l2-ppo"
    assert namespace["run_dir"].parent == tmp_path / "runs/l2-api/cartpole/l2-ppo"
    assert namespace["L2PPO"] is AGENTS.get("l2-ppo")


def test_a_moved_file_is_named_and_eval_takes_its_new_place(fresh, tmp_path):
    moved = tmp_path / "elsewhere" / "l2_ppo.py"
    moved.parent.mkdir()
    moved.write_text(EXAMPLE.read_text())
    line = _block("bash", "runs/l2-check").splitlines()[1].replace("docs/examples/l2_ppo.py", str(moved))
    assert _run(line, tmp_path) == 0
    (run,) = (tmp_path / "runs/l2-check/cartpole/l2-ppo").iterdir()
    moved.unlink()
    _forget_example()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert _run(f"heldout eval {run} --episodes 2", tmp_path) == 2
    assert str(moved) in stderr.getvalue() and "--import" in stderr.getvalue()
    assert _run(f"heldout eval {run} --episodes 2 --import docs/examples/l2_ppo.py", tmp_path) == 0


def test_the_registry_tests_cover_the_example_when_imported():
    (line,) = [line for line in _block("bash", "--heldout-import").splitlines() if line.startswith("pytest ")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", *shlex.split(line), "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout[-2000:]
