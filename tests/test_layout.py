"""The house: heldout/'s import graph has no circle and every arrow runs the agreed way.

The layout (docs/layout.md): envs, wrappers -> agents -> protocol -> analysis -> bench, sweep -> cli,
and sweep -> findings -> cli (``heldout.experiments.findings``), where
``A -> B`` means B may import A and never the reverse. The graph is read from the source with ``ast``
(imports inside functions count too: a late import is still a dependency), so the test needs no
import of the modules themselves.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "heldout"

#: Each room and the rooms it may import (besides itself and the top-level modules below).
ALLOWED: dict[str, set[str]] = {
    "envs": set(),
    "wrappers": {"envs"},
    "agents": {"envs", "wrappers"},
    "protocol": {"envs", "wrappers", "agents"},
    "analysis": {"envs", "wrappers", "agents", "protocol"},
    "bench": {"envs", "wrappers", "agents", "protocol", "analysis"},
    # the sweeps run protocol runs and write the analysis' report; bench and sweep know nothing of each other
    "sweep": {"envs", "wrappers", "agents", "protocol", "analysis"},
    # the findings (heldout.experiments.findings) run as sweeps and are decided by the analysis' statistics
    "findings": {"envs", "wrappers", "agents", "protocol", "analysis", "sweep"},
    "cli": {"envs", "wrappers", "agents", "protocol", "analysis", "bench", "sweep", "findings"},
    # the deprecated forwards of the old paths sit on top of everything
    "experiments": {
        "envs",
        "wrappers",
        "agents",
        "protocol",
        "analysis",
        "bench",
        "sweep",
        "cli",
        "findings",
    },
}
#: Top-level modules every room may import (they import no room above envs).
SHARED = {"heldout", "heldout.registry", "heldout.splits", "heldout.contexts", "heldout.safe_yaml"}


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def import_graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    """``{module: modules of heldout it imports}``, from the source of every file under ``root``."""
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in paths.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in paths:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                # a package's submodule importing the package itself is no edge back
                if target and target != mod and not mod.startswith(target + "."):
                    edges.add(target)
        graph[mod] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def room(module: str) -> str | None:
    if module == "heldout.__main__":  # ``python -m heldout`` is the command line
        return "cli"
    parts = module.split(".")
    if parts[1:3] == ["experiments", "findings"]:  # the findings' room inside experiments/
        return "findings"
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_the_graph_reader_finds_a_planted_circle_and_a_relative_import(tmp_path):
    pkg = tmp_path / "heldout"
    (pkg / "protocol").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "protocol" / "__init__.py").write_text("")
    (pkg / "protocol" / "a.py").write_text("from heldout.protocol.b import x\n")
    (pkg / "protocol" / "b.py").write_text("def f():\n    from . import a\n")
    graph = import_graph(pkg)
    assert graph["heldout.protocol.a"] == {"heldout.protocol.b"}
    assert graph["heldout.protocol.b"] == {"heldout.protocol.a"}
    assert circles(graph) == [["heldout.protocol.a", "heldout.protocol.b"]]


def test_heldout_has_no_import_circle():
    assert circles(import_graph()) == []


def test_every_import_runs_the_agreed_way():
    wrong = []
    for mod, targets in import_graph().items():
        here = room(mod)
        for target in targets:
            there = room(target)
            if target in SHARED or there is None or there == here:
                continue
            if here is None:  # a top-level module imports no room above envs
                if there != "envs":
                    wrong.append(f"{mod} -> {target}")
            elif there not in ALLOWED[here]:
                wrong.append(f"{mod} -> {target}")
    assert wrong == []


def test_config_knows_no_env_family():
    graph = import_graph()
    assert not {t for t in graph["heldout.protocol.config"] if t.startswith("heldout.protocol.families")}


def test_the_findings_are_a_room_between_sweep_and_cli():
    graph = import_graph()
    findings = [m for m in graph if room(m) == "findings"]
    assert "heldout.experiments.findings.verdict" in findings
    assert room("heldout.experiments.config") == "experiments"
    # the command line imports them, and they import the sweep's and the analysis' modules
    assert any(room(t) == "findings" for t in graph["heldout.cli.findings"])
    assert {room(t) for m in findings for t in graph[m]} >= {"analysis", "findings"}
    assert "findings" not in ALLOWED["sweep"] and "cli" not in ALLOWED["findings"]


def test_nothing_new_imports_the_deprecated_paths():
    users = [
        m
        for m, targets in import_graph().items()
        if room(m) != "experiments" and any(room(t) == "experiments" for t in targets)
    ]
    assert users == []


OLD_PATHS = {
    "heldout.experiments.config": ("TrainConfig", "heldout.protocol.config"),
    "heldout.experiments.protocol": ("run_train", "heldout.protocol.run"),
    "heldout.experiments.families": ("family_for", "heldout.protocol.families"),
    "heldout.experiments.seeded_family": ("SeededGymFamily", "heldout.protocol.families.seeded"),
    "heldout.experiments.evaluate": ("EvalResult", "heldout.protocol.evaluate"),
    "heldout.experiments.run_folder": ("write_atomic", "heldout.protocol.run_folder"),
    "heldout.experiments.plugins": ("import_plugins", "heldout.protocol.plugins"),
    "heldout.experiments.saliency_run": ("run_saliency", "heldout.protocol.saliency"),
    "heldout.experiments.stats": ("aggregate_iqm", "heldout.analysis.stats"),
    "heldout.experiments.report": ("write_report", "heldout.analysis.report"),
    "heldout.experiments.plots": ("learning_curves", "heldout.analysis.plots"),
    "heldout.experiments.bench": ("train_throughput", "heldout.bench.throughput"),
    "heldout.experiments.bench_agents": ("quality_run", "heldout.bench.agents"),
    "heldout.experiments.bench_wrappers": ("run", "heldout.bench.wrappers"),
    "heldout.experiments.cli": ("main", "heldout.cli"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_an_old_import_path_still_gives_the_same_object_with_a_warning(old):
    name, new = OLD_PATHS[old]
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="moved to"):
        module.no_such_name  # noqa: B018


def test_old_config_path_still_has_the_presets_and_the_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from heldout.experiments.config import PRESETS, check_wrappers  # noqa: F401
    assert "procgen-easy" in PRESETS
