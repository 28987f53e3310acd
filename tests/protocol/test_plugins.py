"""``--import``: user modules that register agents before a command looks names up."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
import yaml

from heldout.agents import AGENTS
from heldout.cli import main
from heldout.protocol.config import TrainConfig
from heldout.protocol.plugins import import_plugin, import_plugins, normalize_import
from heldout.protocol.presets import PRESETS
from heldout.protocol.validate import validate_config

PLUGIN = '''
from heldout.agents import AGENTS, PPO


class PluginPPO(PPO):
    """PPO under another name (a test plugin)."""


AGENTS.register("{name}", PluginPPO, help="a test plugin")
'''


@pytest.fixture
def plugin(tmp_path: Path):
    """A plugin file registering agent ``plugin-ppo`` as module ``heldout_test_plugin``; cleaned up after."""

    def forget() -> None:
        if "plugin-ppo" in AGENTS:
            AGENTS.unregister("plugin-ppo")
        sys.modules.pop("heldout_test_plugin", None)

    forget()
    path = tmp_path / "heldout_test_plugin.py"
    path.write_text(PLUGIN.format(name="plugin-ppo"))
    yield path
    forget()


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_a_file_registers_once_however_it_is_named(plugin, monkeypatch):
    module = import_plugin(str(plugin))
    assert module.__name__ == "heldout_test_plugin" and AGENTS.get("plugin-ppo") is module.PluginPPO
    monkeypatch.chdir(plugin.parent)
    assert import_plugin("heldout_test_plugin.py") is module  # relative path: the same module
    assert import_plugin("heldout_test_plugin") is module  # by module name, as sys.modules has it
    assert import_plugins([str(plugin), str(plugin)]) == [module, module]
    assert normalize_import("heldout_test_plugin.py") == str(plugin)
    assert normalize_import("heldout.agents.rad") == "heldout.agents.rad"


def test_a_module_name_is_imported_from_sys_path():
    import heldout.agents.rad

    assert import_plugin("heldout.agents.rad") is heldout.agents.rad


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("missing/agent.py", "no such file"),
        ("no_such_heldout_module", "no module named 'no_such_heldout_module'"),
        ("no_such_pkg.agents", "no module named 'no_such_pkg'"),
    ],
)
def test_bad_imports_name_the_value(spec, needle):
    with pytest.raises(ValueError, match=needle) as info:
        import_plugin(spec)
    assert repr(spec) in str(info.value) and "sys.path" in str(info.value)


def test_file_names_that_cannot_be_module_names_are_refused(tmp_path):
    bad = tmp_path / "my-agent.py"
    bad.write_text("")
    with pytest.raises(
        ValueError, match=r"not a valid Python module name; rename the file, e.g. my_agent.py"
    ):
        import_plugin(str(bad))
    taken = tmp_path / "json.py"  # the standard library's json is imported already
    taken.write_text("")
    with pytest.raises(
        ValueError, match=r"module name 'json' is taken by .*json/__init__.py; rename the file"
    ):
        import_plugin(str(taken))
    text = tmp_path / "agent.txt"
    text.write_text("")
    with pytest.raises(ValueError, match="must end in .py"):
        import_plugin(str(text))
    for spec in ("", None, 3):
        with pytest.raises(TypeError, match="file path or a module name"):
            import_plugin(spec)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of files or modules"):
        import_plugins("agent.py")


def test_errors_inside_the_file_name_it_and_leave_no_module(tmp_path):
    clash = tmp_path / "heldout_test_clash.py"
    clash.write_text(PLUGIN.format(name="ppo"))
    with pytest.raises(
        ValueError, match=r"while importing '.*heldout_test_clash.py': agent 'ppo' is already registered"
    ):
        import_plugin(str(clash))
    assert "heldout_test_clash" not in sys.modules
    broken = tmp_path / "heldout_test_broken.py"
    broken.write_text("import no_such_dependency_of_heldout\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_heldout"):  # its own traceback
        import_plugin(str(broken))
    assert "heldout_test_broken" not in sys.modules


def test_train_records_the_import_and_eval_imports_it_again(plugin, tmp_path):
    tiny = ["--preset", "cartpole-gravity-extrapolation", "--timesteps", "256", "--eval-episodes", "2"]
    out = tmp_path / "runs"
    code, _, err = _main(["train", "--import", str(plugin), "--agent", "plugin-ppo", *tiny, "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0, err
    (run,) = (out / "cartpole" / "plugin-ppo").iterdir()
    assert yaml.safe_load((run / "config.yaml").read_text())["imports"] == [str(plugin)]

    AGENTS.unregister("plugin-ppo")  # as in a new process
    sys.modules.pop("heldout_test_plugin")
    code, _, err = _main(["eval", str(run), "--episodes", "2", "--no-progress"])
    assert code == 0, err
    assert "plugin-ppo" in AGENTS


def test_unknown_agents_point_to_import(tmp_path):
    code, _, err = _main(["train", "--agent", "my-agent", "--out", str(tmp_path)])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (
        "unknown agent 'my-agent'" in err and "--import FILE.py" in err and "docs/adding-an-agent.md" in err
    )
    code, _, err = _main(
        ["train", "--import", "nowhere/my_agent.py", "--agent", "my-agent", "--out", str(tmp_path)]
    )
    assert code == 2 and "'nowhere/my_agent.py': no such file" in err
    assert not (tmp_path / "cartpole").exists()


def test_list_and_config_files_take_imports(plugin, tmp_path):
    code, printed, _ = _main(["list", "--import", str(plugin)])
    assert code == 0 and "plugin-ppo" in printed and "a test plugin" in printed
    config = PRESETS.get("cartpole-gravity-extrapolation").replace(agent="plugin-ppo", imports=[str(plugin)])
    validate_config(config)
    with pytest.raises(TypeError, match="imports must be a list"):
        validate_config(TrainConfig.from_dict({"imports": str(plugin)}))


def test_bench_agents_imports_before_it_checks_agent_names(plugin, tmp_path):
    from heldout.bench import agents as bench_agents

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = bench_agents.main(["--import", "nowhere/x.py", "--agents", "plugin-ppo"])
    assert code == 2 and "no such file" in err.getvalue()
    argv = [
        "--import",
        str(plugin),
        "--agents",
        "ppo,plugin-ppo",
        "--skip-quality",
        "--throughput-iterations",
        "0",
    ]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert bench_agents.main([*argv, "--out", str(tmp_path)]) == 0
    results = yaml.safe_load((tmp_path / "results.json").read_text())
    assert results["config"]["agents"] == ["ppo", "plugin-ppo"] and results["config"]["imports"] == [
        str(plugin)
    ]
