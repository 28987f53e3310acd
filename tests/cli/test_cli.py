"""``python -m heldout`` from a plain checkout, ``heldout list`` and ``--help``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from heldout.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_python_dash_m_works_with_the_checkout_only_on_pythonpath(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "heldout", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "coinrun" in proc.stdout and "quickstart" in proc.stdout and "ppo" in proc.stdout
    assert "Gym has been unmaintained" not in proc.stderr, "gym's banner leaked into the output"


def test_list_shows_every_registry(capsys: pytest.CaptureFixture) -> None:
    from heldout.agents import AGENTS
    from heldout.envs import CONTEXTUAL_ENVS, ENVS
    from heldout.envs.procgen_shifts import SHIFTS
    from heldout.protocol.presets import PRESETS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*ENVS.names(), *CONTEXTUAL_ENVS.names(), *AGENTS.names(), *PRESETS.names(), *SHIFTS.names()]:
        assert f"  {name} " in out, name


def test_train_help_explains_the_flags(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--env", "--agent", "--timesteps", "--num-levels", "--seed", "--out", "--preset"):
        assert flag in out


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["trian"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trian" in err
