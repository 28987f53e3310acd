"""The one YAML loader: duplicate keys, alias bombs, cycles, deep nesting and huge integers refused
with the line; strict booleans; what ``yaml.safe_dump`` writes and ordinary anchors still read."""

from __future__ import annotations

import contextlib
import io

import pytest
import yaml

from heldout.protocol.run_folder import read_yaml
from heldout.safe_yaml import MAX_ALIAS_NODES, load_yaml


def bomb(levels: int = 9, width: int = 10) -> str:
    """The "billion laughs": ``levels`` anchors, each ``width`` aliases of the one before."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def expanded_size(levels: int, width: int) -> int:
    """Values the bomb expands to, counted independently: the last list alone holds width**levels."""
    return width**levels


@pytest.mark.parametrize(
    ("text", "key", "first", "again"),
    [
        ("a: 1\nb: 2\na: 3\n", "a", 1, 3),
        ("name: s\ngrid:\n  seed: [0, 1]\n  env: [coinrun]\n  seed: [2, 3]\n", "seed", 3, 5),
        ("base: {timesteps: 10, timesteps: 20}\n", "timesteps", 1, 1),
        ("1: x\n0x1: y\n", 1, 1, 2),  # the same integer written two ways is the same key
    ],
)
def test_a_key_given_twice_is_refused_naming_it_and_both_lines(tmp_path, text, key, first, again):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_yaml(path, mapping=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and f"key {key!r}" in message
    assert f"first at line {first}" in message and f"at line {again}," in message


def test_merge_keys_may_override_and_plain_anchors_read():
    data = load_yaml("base: &b {x: 1, y: 2}\nother: {<<: *b, x: 3}\nsame: *b\n")
    assert data == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}, "same": {"x": 1, "y": 2}}


def test_an_alias_bomb_is_refused_before_it_expands():
    assert expanded_size(9, 10) > 1000 * MAX_ALIAS_NODES  # the document would expand a billion-fold
    with pytest.raises(yaml.YAMLError, match="aliases expand to more than"):
        load_yaml(bomb())
    # a small document of aliases well under the limit still reads, and expands as YAML says
    data = load_yaml(bomb(levels=3, width=10))
    assert len(data["a2"]) == 10 and all(len(x) == 10 for x in data["a2"])


def test_an_alias_bomb_in_a_sweep_spec_is_one_line_exit_2(tmp_path):
    from heldout.cli import main

    spec = tmp_path / "bomb.yaml"
    spec.write_text("name: b\n" + bomb() + "grid: {seed: *a8}\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["sweep", str(spec), "--dry-run"]) == 2
    (line,) = err.getvalue().splitlines()
    assert str(spec) in line and "aliases expand" in line and "line " in line


def test_a_cycle_deep_nesting_and_a_huge_integer_are_yaml_errors_with_the_line():
    with pytest.raises(yaml.YAMLError, match="inside its own anchor"):
        load_yaml("a: &a [1, *a]\n")
    with pytest.raises(yaml.YAMLError, match="nested too deeply"):
        load_yaml("[" * 100_000 + "]" * 100_000)
    with pytest.raises(yaml.YAMLError, match="integer too long") as info:
        load_yaml("x: 1\ny: " + "9" * 5000 + "\n")
    assert info.value.problem_mark.line == 1


def test_only_true_and_false_are_booleans():
    assert load_yaml("a: yes\nb: on\nc: true\nd: False\n") == {"a": "yes", "b": "on", "c": True, "d": False}
    text = yaml.safe_dump({"a": "yes", "b": "on", "c": True})
    assert load_yaml(text) == {"a": "yes", "b": "on", "c": True}


def test_every_yaml_read_of_heldout_goes_through_the_one_loader():
    """No module of heldout calls PyYAML's loaders itself (``yaml.safe_load``, ``yaml.load``,
    ``yaml.full_load``) except heldout.safe_yaml."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "heldout"
    found = []
    for path in root.rglob("*.py"):
        if path.name == "safe_yaml.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "yaml"
                and node.attr
                in ("load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all")
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, found


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["train", "--config", "{path}", "--dry-run"], "timesteps: 1000\nseed: 1\ntimesteps: 2000\n"),
        (["sweep", "{path}", "--dry-run"], "name: d\ngrid:\n  seed: [0, 1]\n  seed: [2]\n"),
    ],
)
def test_a_duplicate_key_in_a_config_or_spec_is_one_line_exit_2(tmp_path, argv, text):
    from heldout.cli import main

    path = tmp_path / "file.yaml"
    path.write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([a.replace("{path}", str(path)) for a in argv])
    assert code == 2
    (line,) = err.getvalue().splitlines()
    assert str(path) in line and "appears again" in line
    assert list(tmp_path.iterdir()) == [path]
