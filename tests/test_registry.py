"""Registry: name -> object lookup with "did you mean" errors."""

from __future__ import annotations

import pytest

from heldout.envs import ENVS, PROCGEN_GAMES, make_vec
from heldout.registry import Registry


def _widgets() -> Registry[type]:
    reg = Registry[type]("widget")
    reg.register("sprocket", dict, help="a dict")
    reg.register("gear", list)
    return reg


def test_register_and_get_return_the_same_object():
    reg = _widgets()
    assert reg.get("sprocket") is dict
    assert reg.get("gear") is list
    assert reg.describe("sprocket") == "a dict"
    assert reg.describe("gear") == ""
    assert "gear" in reg and "wheel" not in reg
    assert reg.names() == ["gear", "sprocket"]
    assert list(reg) == ["gear", "sprocket"]
    assert len(reg) == 2


def test_register_returns_item_and_decorator_registers():
    reg = Registry[object]("widget")
    assert reg.register("a", int) is int

    @reg.decorator("cog", help="decorated")
    def cog() -> str:
        return "cog"

    assert reg.get("cog") is cog
    assert cog() == "cog"  # the decorator hands back the function itself
    assert reg.describe("cog") == "decorated"


def test_unknown_name_suggests_the_closest_and_lists_valid_names():
    reg = _widgets()
    with pytest.raises(KeyError) as excinfo:
        reg.get("sprockt")
    message = excinfo.value.args[0]
    assert "'sprockt'" in message
    assert "did you mean 'sprocket'?" in message
    assert "gear" in message and "sprocket" in message
    assert "widget" in message


def test_unknown_name_far_from_everything_has_no_suggestion():
    reg = _widgets()
    with pytest.raises(KeyError) as excinfo:
        reg.get("zzzzzzzzzz")
    assert "did you mean" not in excinfo.value.args[0]
    assert "valid widgets: gear, sprocket" in excinfo.value.args[0]


def test_unhashable_name_raises_key_error_not_type_error():
    with pytest.raises(KeyError):
        _widgets().get(["sprocket"])  # type: ignore[arg-type]


def test_describe_of_unknown_name_raises_key_error():
    with pytest.raises(KeyError, match="did you mean 'gear'"):
        _widgets().describe("gearr")


def test_duplicate_registration_raises_value_error_and_keeps_the_first():
    reg = _widgets()
    with pytest.raises(ValueError, match="'gear' is already registered"):
        reg.register("gear", tuple)
    assert reg.get("gear") is list
    with pytest.raises(ValueError, match="already registered"):
        reg.decorator("sprocket")(set)
    assert reg.get("sprocket") is dict


@pytest.mark.parametrize("bad", ["", None, 3])
def test_empty_or_non_string_name_raises_type_error(bad):
    reg = Registry[type]("widget")
    with pytest.raises(TypeError):
        reg.register(bad, dict)  # type: ignore[arg-type]
    assert len(reg) == 0


def test_env_registry_holds_every_procgen_game():
    assert set(PROCGEN_GAMES) <= set(ENVS.names())
    for game in PROCGEN_GAMES:
        assert ENVS.describe(game)


def test_make_vec_typo_suggests_the_game():
    with pytest.raises(KeyError) as excinfo:
        make_vec("coinrn", num_envs=1)
    assert "did you mean 'coinrun'?" in excinfo.value.args[0]


def test_unregister_removes_the_name_and_returns_its_item():
    reg = _widgets()
    assert reg.unregister("gear") is list
    assert "gear" not in reg and reg.names() == ["sprocket"]
    reg.register("gear", tuple)  # the name is free again
    assert reg.get("gear") is tuple
    with pytest.raises(KeyError, match="did you mean 'sprocket'"):
        reg.unregister("sprockt")
