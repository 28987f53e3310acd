"""Level identity (layout, look), leak-free and repeat-free evaluation lists, `heldout levels check`."""

from __future__ import annotations

import json

import pytest

from heldout.cli import main
from heldout.envs.procgen import LAYOUT_OPTIONS, level_fingerprints, level_identities, trajectory_hashes
from heldout.protocol.config import TrainConfig
from heldout.protocol.evaluate import evaluation_levels, level_order
from heldout.protocol.families import family_for
from heldout.protocol.families.levels import leak_free_levels
from heldout.splits import LevelSet


def test_a_level_has_its_own_fingerprint_and_known_duplicates_share_one():
    a = level_identities("maze", [0, 273, 0, 1], identity="layout")
    assert a[0] == a[2] and a[0] == a[1], "maze easy 0 and 273 are the same layout"
    assert a[0] != a[3]
    look = level_identities("maze", [0, 273], identity="look")
    assert look[0] == look[1], "and the same look"


def test_same_layout_other_look_is_one_layout_two_looks():
    # found by `heldout levels check --env maze`: test 100000005 has train 134's layout, not its look
    layout = level_identities("maze", [134, 100000005], identity="layout")
    look = level_identities("maze", [134, 100000005], identity="look")
    assert layout[0] == layout[1] and look[0] != look[1]
    # an independent second computation: the plain whole-level first frames are equal byte for byte
    plain = level_fingerprints("maze", [134, 100000005], **LAYOUT_OPTIONS)
    assert plain[0] == plain[1]


def test_a_trajectory_hash_does_not_depend_on_the_batch_or_slot():
    acts = [[7, 8, 5, 4, 1, 2] * 3]
    together = trajectory_hashes("bigfish", [3, 9, 3, 12], acts, batch=4)
    alone = [trajectory_hashes("bigfish", [lv], acts)[0] for lv in (3, 9, 12)]
    assert together[0] == together[2] == alone[0]
    assert together[1] == alone[1] and together[3] == alone[2] and len(set(alone)) == 3


def _collide(levels):  # a fake family's fingerprint: 50 distinct levels, seeds collide modulo 50
    return [lv % 50 for lv in levels]


def _by_hand(train, held_out, episodes):
    """The list computed independently: walk the fixed order, keep unseen fingerprints."""
    banned = {lv % 50 for lv in train}
    out, seen = [], set()
    for lv in level_order(held_out, episodes):
        if lv % 50 not in banned and lv % 50 not in seen:
            seen.add(lv % 50)
            out.append(lv)
            if len(out) == episodes:
                break
    return out


def test_replacements_are_checked_again_until_the_list_is_clean():
    train, test = LevelSet.range(0, 10), LevelSet.range(1000, 1400)  # 40 usable fingerprints
    levels, record = leak_free_levels("fake", train, test, 30, fingerprints=_collide, method="x % 50")
    assert levels == _by_hand(train, test, 30)
    fps = _collide(levels)
    assert len(set(levels)) == len(set(fps)) == 30 and not set(fps) & set(range(10))
    assert record["train_duplicates"] > 0 and record["repeats"] > 0 and "short" not in record
    for drop in record["dropped"]:
        assert drop["level"] % 50 == drop["same_as"] % 50 and drop["level"] not in levels
        if drop["same_as"] < 10:
            assert drop["reason"] == f"same layout as train level {drop['same_as']}"
        else:
            assert drop["reason"] == f"repeat of test level {drop['same_as']}"
            assert levels.index(drop["same_as"]) >= 0


def test_a_range_that_runs_out_gives_fewer_levels_and_says_so():
    train, test = LevelSet.range(0, 10), LevelSet.range(1000, 1400)
    levels, record = leak_free_levels("fake", train, test, 60, fingerprints=_collide, identity="look")
    assert len(levels) == 40 == record["listed"] and record["episodes"] == 60 and record["short"]
    assert sorted(lv % 50 for lv in levels) == list(range(10, 50))
    assert "40 of 60 episodes" in record["warning"] and "none repeated" in record["warning"]
    assert any(d["reason"].startswith("same look as train level") for d in record["dropped"])
    # the off policy fingerprints nothing, still never repeats a seed
    small = LevelSet.range(5000, 5007)
    levels, record = leak_free_levels("fake", train, small, 10, identity="off")
    assert sorted(levels) == list(range(5000, 5007)) and record["short"] and record["method"] == "none"


def test_without_duplicates_the_list_is_the_plain_one():
    test = LevelSet.range(1000, 3000)
    levels, record = leak_free_levels("fake", LevelSet.range(0, 5), test, 25, fingerprints=lambda lv: lv)
    assert levels == evaluation_levels(test, 25) and record["dropped"] == []


def test_maze_with_visual_variety_off_lists_no_training_layout_and_no_repeat():
    options = {"use_backgrounds": False, "restrict_themes": True, "use_monochrome_assets": True}
    config = TrainConfig(env="maze", env_options=options, eval_episodes=100)
    family = family_for("maze")
    split = family.split(config)
    lists, records = family.eval_lists(config, split, 100)
    test = lists["test"]
    train_fp = set(level_fingerprints("maze", list(range(200)), **LAYOUT_OPTIONS))
    test_fp = level_fingerprints("maze", test, **LAYOUT_OPTIONS)
    assert len(test) == 100 and not train_fp & set(test_fp) and len(set(test_fp)) == 100
    assert records["test"]["train_duplicates"] > 0 and records["test"]["train_distinct"] == 178


def test_old_configs_leakage_check_loads_as_a_policy():
    assert TrainConfig.from_dict({"leakage_check": True}).leakage == "layout"
    assert TrainConfig.from_dict({"leakage_check": False}).leakage == "off"
    assert "leakage_check" not in TrainConfig().to_dict() and TrainConfig().leakage == "layout"
    with pytest.raises(ValueError, match="did you mean 'layout'"):
        TrainConfig(leakage="layot").validate()


def test_levels_check_reports_which_level_equals_which(tmp_path, capsys):
    out = tmp_path / "maze.json"
    argv = ["levels", "check", "--env", "maze", "--train", "0,1,2", "--test", "273,274,100000005"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["layout"]["test_train_pairs"] == [{"level": 273, "same_as": 0}]
    assert report["layout"]["train_distinct"] == 3 and report["train"]["levels"] == 3
    assert report["look"]["test_same_as_train"] == 1 and report["same_layout_other_look"] == 0
    assert "273 = train 0" in capsys.readouterr().out


def test_levels_check_on_a_seeded_env_matches_its_fingerprints(tmp_path):
    from heldout.envs.seeded import level_fingerprints as seeded_fp

    out = tmp_path / "doorkey.json"
    env = "minigrid-doorkey-5x5"
    assert (
        main(["levels", "check", "--env", env, "--train", "0:20", "--test", "1000:1060", "--json", str(out)])
        == 0
    )
    report = json.loads(out.read_text())
    train, test = seeded_fp(env, range(20)), seeded_fp(env, range(1000, 1060))
    assert report["layout"]["train_distinct"] == len(set(train))
    assert report["layout"]["test_distinct"] == len(set(test))
    assert report["layout"]["test_same_as_train"] == sum(fp in set(train) for fp in test)
    assert report["look"] == report["layout"] | {"method": report["look"]["method"]}
