"""``python -m heldout`` from a plain checkout, ``heldout list`` and ``--help``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from heldout.cli import COMMANDS, main

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
    from heldout.experiments.findings import FINDINGS

    for name in [*ENVS.names(), *CONTEXTUAL_ENVS.names(), *AGENTS.names(), *PRESETS.names(), *SHIFTS.names()]:
        assert f"  {name} " in out, name
    for name, finding in FINDINGS.items():
        assert f"  {name} " in out and finding.claim in out, name


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


HELP_COMMANDS = [
    *([name] for name in COMMANDS),
    ["bench", "throughput"],
    ["bench", "agents"],
    ["bench", "wrappers"],
    ["bench", "levels"],
    ["bench", "contexts"],
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_help_shows_no_empty_defaults(command: list[str], capsys: pytest.CaptureFixture) -> None:
    """``(default: None)`` says nothing (the flag takes the preset's or the run's value); nor do
    ``(default: False)`` on a switch and ``(default: [])`` on a repeatable flag."""
    try:
        code = main([*command, "--help"])
    except SystemExit as exc:  # argparse's --help; the bench commands return 0 instead
        code = exc.code
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines: join them again
    assert out.startswith("usage: heldout " + " ".join(command)), out[:80]
    for empty in ("default: None", "default: False", "default: []"):
        assert empty not in out


def test_train_help_states_the_presets_defaults(capsys: pytest.CaptureFixture) -> None:
    from heldout.cli.train import DEFAULT_PRESET
    from heldout.protocol.presets import PRESETS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    preset = PRESETS.get(DEFAULT_PRESET)
    assert f"(default: {DEFAULT_PRESET})" in out  # --preset
    assert f"(default: the preset's; {preset.timesteps} in {DEFAULT_PRESET})" in out
    assert f"(default: the preset's; {preset.env} in {DEFAULT_PRESET})" in out
    assert f"(default: the preset's; {preset.seed} in {DEFAULT_PRESET})" in out


def test_help_formatter_keeps_real_defaults_zero_included(capsys: pytest.CaptureFixture) -> None:
    from heldout.bench.common import HelpFormatter as BenchHelpFormatter
    from heldout.cli.common import HelpFormatter

    assert HelpFormatter is BenchHelpFormatter  # one formatter for the commands and the benchmarks
    for formatter in (HelpFormatter,):
        parser = argparse.ArgumentParser(prog="p", formatter_class=formatter)
        parser.add_argument("--zero", type=int, default=0, help="zero")
        parser.add_argument("--name", default="x", help="name")
        parser.add_argument("--stated", default="y", help="stated (default: the other)")
        parser.add_argument("--unset", help="unset")
        parser.add_argument("--switch", action="store_true", help="switch")
        parser.add_argument("--many", action="append", default=[], help="many")
        text = " ".join(parser.format_help().split())
        assert "zero (default: 0)" in text and "name (default: x)" in text
        assert "stated (default: the other) " in text and "(default: y)" not in text
        assert "unset --switch switch --many MANY many" in text, text
