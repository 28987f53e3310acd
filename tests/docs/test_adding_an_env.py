"""docs/adding-an-env.md runs: its example file is the one shown, its code blocks run in order (train,
evaluate, fingerprints, the recorded leakage check), and the registry-parametrized env tests pass on
the example's env."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-an-env.md"
EXAMPLE = ROOT / "docs" / "examples" / "my_env_family.py"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def example() -> object:
    """The example module, imported as the guide does (``import my_env_family``), once a session."""
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        return importlib.import_module("my_env_family")
    finally:
        sys.path.remove(str(EXAMPLE.parent))


def test_the_guide_shows_the_example_file_verbatim():
    blocks = _blocks("python")
    assert blocks[0] == EXAMPLE.read_text()
    assert len(blocks) >= 3


def test_the_guides_code_runs_and_its_leakage_record_is_the_real_one(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    namespace: dict = {}
    for i, block in enumerate(_blocks("python")[1:], start=1):
        exec(compile(block, f"{GUIDE}#python-block-{i}", "exec"), namespace)
    summary, run_dir = namespace["summary"], namespace["run_dir"]
    assert (tmp_path / run_dir).parent == tmp_path / "runs" / "goal-room" / "ppo"
    test_csv = (tmp_path / run_dir / "eval" / "test-reeval.csv").read_text().splitlines()
    assert test_csv[0] == "episode,level,return,length,completed" and len(test_csv) == 1 + 20
    (shown,) = _blocks("json")
    assert json.loads("{" + shown + "}")["leakage"] == summary["leakage"], "update the guide's record"
    assert summary["splits"]["train"]["mean"] > summary["splits"]["test"]["mean"]


def test_the_registry_tests_cover_the_example(example):
    spec = importlib.util.spec_from_file_location(
        "registry_env_tests", ROOT / "tests" / "envs" / "test_registry_envs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    tests = [
        func
        for name, func in vars(module).items()
        if name.startswith("test_") and list(inspect.signature(func).parameters) == ["name", "env_id"]
    ]
    assert len(tests) >= 5
    for test in tests:
        test("goal-room", "heldout/GoalRoom-v0")


def test_the_example_is_known_by_name(example, capsys):
    from heldout.cli import main
    from heldout.envs import check_env_name
    from heldout.protocol.families import family_for
    from heldout.protocol.families.seeded import SeededGymFamily

    assert isinstance(family_for("goal-room"), SeededGymFamily)
    with pytest.raises(KeyError, match="did you mean 'goal-room'"):
        check_env_name("goal-rom")
    assert main(["list"]) == 0
    assert "  goal-room " in capsys.readouterr().out


def test_the_guides_command_lines_run(tmp_path, monkeypatch):
    """The bash block: train through --import, re-evaluate (the import comes from config.yaml), list."""
    import contextlib
    import glob
    import io
    import shlex

    from heldout.cli import main

    (block,) = [
        b for lang, b in re.findall(r"```(\w*)\n(.*?)```", GUIDE.read_text(), re.S) if "--import" in b
    ]
    lines = [ln.split("  #")[0] for ln in block.splitlines() if ln.startswith("heldout ")]
    assert [ln.split()[1] for ln in lines] == ["train", "eval", "list"]
    monkeypatch.chdir(ROOT)
    for line in lines:
        argv = []
        for arg in shlex.split(line)[1:]:
            if arg.startswith("runs/"):
                arg = str(tmp_path / arg)
                if "*" in arg:
                    (arg,) = glob.glob(arg)
            argv.append(arg)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(argv + (["--no-progress"] if argv[0] != "list" else [])) == 0, line
    assert "goal-room" in out.getvalue()
    (run,) = glob.glob(str(tmp_path / "runs/guide/goal-room/ppo/seed0-*"))
    assert (Path(run) / "eval" / "test.csv").is_file()
