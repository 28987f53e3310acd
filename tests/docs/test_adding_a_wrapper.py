"""docs/adding-a-wrapper.md runs as written: its example wrapper, its commands and its snippet.

Commands and Python blocks are read from the guide itself (only ``runs/`` is moved to a temporary
folder), so the page and this test cannot drift apart.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from heldout.cli import main
from heldout.protocol.plugins import import_plugin
from heldout.wrappers import WRAPPERS

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-a-wrapper.md"
EXAMPLE = ROOT / "docs" / "examples" / "sensor_dropout.py"


def _blocks(language: str) -> list[str]:
    return [c for lang, c in re.findall(r"```(\w*)\n(.*?)```", GUIDE.read_text(), re.S) if lang == language]


def _block(language: str, needle: str) -> str:
    (code,) = [b for b in _blocks(language) if needle in b]
    return code


def _forget_example() -> None:
    if "sensor-dropout" in WRAPPERS:
        WRAPPERS.unregister("sensor-dropout")
    sys.modules.pop("sensor_dropout", None)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)
    _forget_example()
    yield
    _forget_example()


def _run(line: str, out: Path, **names: str) -> tuple[int, str]:
    argv = []
    for arg in shlex.split(line.split("  #")[0])[1:]:
        if arg.startswith("runs/"):
            arg = str(out / arg)
        argv.append(names.get(arg, arg))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*argv, "--no-progress"] if argv[0] != "list" else argv)
    return code, buf.getvalue()


def test_the_guide_shows_the_example_file_as_it_is():
    shown = _block("python", "class SensorDropout")
    assert shown.strip() in EXAMPLE.read_text()


def test_the_guides_commands_train_and_shift(fresh, tmp_path):
    lines = [ln for ln in _block("bash", "sensor-dropout:p=0.05").splitlines() if ln.startswith("heldout ")]
    assert [ln.split()[1] for ln in lines] == ["list", "train", "train", "eval", "eval"]
    code, text = _run(lines[0], tmp_path)
    assert code == 0 and "sensor-dropout" in text

    assert _run(lines[1], tmp_path)[0] == 0
    (procgen_run,) = (tmp_path / "runs/guide/starpilot/ppo").iterdir()
    config = yaml.safe_load((procgen_run / "config.yaml").read_text())
    assert config["wrappers"] == ["sensor-dropout:p=0.05"] and config["imports"] == [str(EXAMPLE)]
    summary = json.loads((procgen_run / "summary.json").read_text())
    assert summary["wrappers"]["train"] == ["sensor-dropout:p=0.05"]

    assert _run(lines[2], tmp_path)[0] == 0
    (cartpole_run,) = (tmp_path / "runs/guide/cartpole/ppo").iterdir()
    _forget_example()  # a new process: the eval's --import brings the wrapper back
    code, text = _run(lines[3], tmp_path, CARTPOLE_RUN=str(cartpole_run))
    assert code == 0
    split = "test-wrapper-sensor-dropout-p=0.5"
    assert split in text
    record = json.loads((cartpole_run / "eval" / f"{split}.json").read_text())
    assert record["wrappers"]["eval"] == ["sensor-dropout:p=0.5"]
    assert record["splits"][split]["episodes"] == 20
    assert (cartpole_run / "eval" / f"{split}.csv").is_file()

    _forget_example()  # no --import this time: the Procgen run's config.yaml names the file
    code, text = _run(lines[4], tmp_path, STARPILOT_RUN=str(procgen_run))
    assert code == 0 and "test-wrapper-sensor-dropout-p=0.2" in text
    record = json.loads((procgen_run / "eval" / "test-wrapper-sensor-dropout-p=0.2.json").read_text())
    assert record["settings"]["wrappers"] == ["sensor-dropout:p=0.2", "sensor-dropout:p=0.05"]


def test_a_shift_that_hides_everything_changes_the_agents_returns(fresh, tmp_path):
    """The eval-only wrapper really reaches the policy: with every sensor lost (p=1) the agent acts
    on constant zeros, and a trained CartPole agent's test returns collapse."""
    assert main(["train", "--preset", "cartpole-gravity-extrapolation", "--timesteps", "8192",
                 "--eval-episodes", "20", "--out", str(tmp_path), "--no-progress"]) == 0  # fmt: skip
    (run,) = (tmp_path / "cartpole/ppo").iterdir()
    import_plugin(str(EXAMPLE))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["eval", str(run), "--episodes", "20", "--deterministic", "--no-progress"]) == 0
        assert main(["eval", str(run), "--episodes", "20", "--deterministic", "--no-progress",
                     "--wrapper", "sensor-dropout:p=1.0"]) == 0  # fmt: skip
    clean = json.loads((run / "eval" / "test-reeval.json").read_text())["splits"]["test"]
    blind = json.loads((run / "eval" / "test-wrapper-sensor-dropout-p=1.0.json").read_text())
    blind = blind["splits"]["test-wrapper-sensor-dropout-p=1.0"]
    assert blind["mean"] < clean["mean"]


def test_the_guides_python_snippet(fresh):
    import_plugin(str(EXAMPLE))
    ns: dict[str, Any] = {"__name__": "guide"}
    exec(compile(_block("python", "apply_wrapper(Procgen"), str(GUIDE), "exec"), ns)
    frames, obs = ns["frames"], ns["obs"]
    assert frames.shape == (4, 64, 64, 3) and abs((frames == 0).mean() - 0.2) < 0.03
    assert obs.shape == (4,)


def test_the_registry_tests_cover_the_example():
    cmd = _block("bash", "--heldout-import").strip().split()
    assert cmd[0] == "pytest"
    proc = subprocess.run(
        [sys.executable, "-m", *cmd, "-q", "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", proc.stdout).group(1))
    assert passed >= 4  # single and vectorized, Procgen and contextual


def test_bad_parameters_are_refused_with_one_line(fresh, capsys):
    import_plugin(str(EXAMPLE))
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\], got 2"):
        WRAPPERS.get("sensor-dropout")(p=2)
    assert np.isclose(WRAPPERS.get("sensor-dropout")().p, 0.1)
