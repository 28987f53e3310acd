"""LevelSet and LevelSplit: seed sets, disjointness, parsing and serialisation.

The property tests compare every set operation against plain Python sets built independently from
the same random ranges and lists.
"""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heldout.splits import DEFAULT_TEST_START, MAX_SEED, LevelSet, LevelSplit

# Seeds are drawn as small offsets (< 200) from a base, so that sets overlap often, and the bases
# also exercise the top of the seed range.
BASES = st.sampled_from([0, 1_000, DEFAULT_TEST_START, MAX_SEED - 200])


@st.composite
def _offset_set(draw: st.DrawFn, base: int) -> tuple[object, set[int]]:
    """A level-set spec in one of the accepted forms, and the Python set of seeds it stands for."""
    if draw(st.booleans()):
        start = base + draw(st.integers(0, 150))
        stop = start + draw(st.integers(1, 40))
        expected = set(range(start, stop))
        form = draw(st.sampled_from(["levelset", "str", "range"]))
        spec = {
            "levelset": LevelSet.range(start, stop),
            "str": f"{start}:{stop}",
            "range": range(start, stop),
        }
        return spec[form], expected
    seeds = draw(st.lists(st.integers(0, 190), min_size=1, max_size=20))
    expected = {base + s for s in seeds}
    form = draw(st.sampled_from(["levelset", "str", "list"]))
    shuffled = [base + s for s in seeds]  # kept in drawn order, with duplicates
    spec = {
        "levelset": LevelSet.of(shuffled),
        "str": ",".join(map(str, shuffled)),
        "list": shuffled,
    }
    return spec[form], expected


@st.composite
def level_sets(draw: st.DrawFn) -> tuple[LevelSet, set[int]]:
    spec, expected = draw(_offset_set(draw(BASES)))
    return LevelSet.parse(spec), expected


@st.composite
def level_set_pairs(draw: st.DrawFn) -> tuple[LevelSet, set[int], LevelSet, set[int]]:
    base = draw(BASES)
    a, sa = draw(_offset_set(base))
    b, sb = draw(_offset_set(base))
    return LevelSet.parse(a), sa, LevelSet.parse(b), sb


@st.composite
def split_specs(draw: st.DrawFn) -> dict[str, tuple[object, set[int]]]:
    base = draw(BASES)
    out = {"train": draw(_offset_set(base)), "test": draw(_offset_set(base))}
    if draw(st.booleans()):
        out["validation"] = draw(_offset_set(base))
    return out


_OVERLAP_MESSAGE = re.compile(
    r"(train|test|validation) levels (.+) and (train|test|validation) levels (.+) overlap in "
    r"(\d+) seed\(s\): ([0-9, ]+?)(?: and (\d+) more)?"
)


@settings(max_examples=300, deadline=None)
@given(split_specs())
def test_split_constructs_iff_sets_are_pairwise_disjoint(specs):
    expected = {name: seeds for name, (_, seeds) in specs.items()}
    disjoint = all(not (a & b) for a, b in itertools.combinations(expected.values(), 2))
    kwargs = {name: spec for name, (spec, _) in specs.items()}
    if disjoint:
        split = LevelSplit(**kwargs)
        assert set(split.splits()) == set(expected)
        for name, seeds in expected.items():
            got = split.get(name)
            assert isinstance(got, LevelSet)
            assert set(got) == seeds
            assert len(got) == len(seeds)
        return
    with pytest.raises(ValueError) as excinfo:
        LevelSplit(**kwargs)
    message = str(excinfo.value)
    m = _OVERLAP_MESSAGE.fullmatch(message)
    assert m, message
    name_a, name_b = m.group(1), m.group(3)
    assert name_a != name_b
    shared = expected[name_a] & expected[name_b]
    assert shared, f"{name_a} and {name_b} were named as overlapping but are disjoint"
    named_seeds = [int(x) for x in m.group(6).split(", ")]
    for seed in named_seeds:
        assert seed in expected[name_a] and seed in expected[name_b]
    assert named_seeds == sorted(shared)[:5]
    assert int(m.group(5)) == len(shared)
    more = int(m.group(7)) if m.group(7) else 0
    assert more == len(shared) - len(named_seeds)


@settings(max_examples=300, deadline=None)
@given(level_set_pairs())
def test_overlap_and_overlap_count_match_python_sets(pair):
    a, sa, b, sb = pair
    shared = sa & sb
    assert a.overlap_count(b) == len(shared)
    assert b.overlap_count(a) == len(shared)
    for limit in (1, 3, 10):
        assert a.overlap(b, limit=limit) == sorted(shared)[:limit]
        assert b.overlap(a, limit=limit) == sorted(shared)[:limit]


@settings(max_examples=200, deadline=None)
@given(level_sets(), st.integers(0, 60))
def test_level_set_queries_match_python_set(pair, n):
    levels, expected = pair
    assert len(levels) == len(expected)
    assert set(levels) == expected
    assert levels.to_list() == sorted(expected)
    assert levels.first(n) == sorted(expected)[:n]
    if 1 <= n <= len(expected):
        head = levels.head(n)
        assert set(head) == set(sorted(expected)[:n]) and head.is_range == levels.is_range
    else:
        with pytest.raises(ValueError, match=f"{n} is out of range; valid: 1 to {len(expected)}"):
            levels.head(n)
    low, high = min(expected), max(expected)
    for probe in (low - 1, low, high, high + 1, (low + high) // 2):
        assert (probe in levels) == (probe in expected)
    assert np.int64(low) in levels
    assert "5" not in levels and True not in levels


@settings(max_examples=100, deadline=None)
@given(level_sets(), st.integers(0, 2**32))
def test_sample_draws_only_members_and_is_reproducible(pair, seed):
    levels, expected = pair
    first = levels.sample(np.random.default_rng(seed), 50)
    again = levels.sample(np.random.default_rng(seed), 50)
    assert first.shape == (50,)
    assert set(first.tolist()) <= expected
    np.testing.assert_array_equal(first, again)


@settings(max_examples=200, deadline=None)
@given(split_specs())
def test_split_to_dict_from_dict_round_trip(specs):
    expected = {name: seeds for name, (_, seeds) in specs.items()}
    if any(a & b for a, b in itertools.combinations(expected.values(), 2)):
        return
    split = LevelSplit(**{name: spec for name, (spec, _) in specs.items()})
    data = split.to_dict()
    # The dict form is plain JSON (no numpy scalars, no tuples needed).
    restored = LevelSplit.from_dict(json.loads(json.dumps(data)))
    assert restored == split
    for name, seeds in expected.items():
        assert set(restored.get(name)) == seeds


@settings(max_examples=200, deadline=None)
@given(level_sets())
def test_level_set_dict_and_parse_round_trip(pair):
    levels, expected = pair
    assert LevelSet.from_dict(json.loads(json.dumps(levels.to_dict()))) == levels
    assert LevelSet.parse(levels) is levels
    if levels.is_range:
        assert LevelSet.parse(f"{levels.start}:{levels.stop}") == levels
        assert LevelSet.parse(range(levels.start, levels.stop)) == levels
    else:
        assert LevelSet.parse(",".join(map(str, reversed(levels.seeds)))) == levels
        assert levels.seeds == tuple(sorted(expected))


# -- the Procgen protocol default -----------------------------------------------------------------


def test_default_split_is_200_train_levels_and_1000_disjoint_test_levels():
    split = LevelSplit.default()
    assert split.train.is_range
    assert split.train.to_list() == list(range(200))
    assert split.train.describe() == "[0, 200)"
    assert len(split.test) == 1000
    assert split.test.start == DEFAULT_TEST_START
    assert set(split.test) == set(range(DEFAULT_TEST_START, DEFAULT_TEST_START + 1000))
    assert split.validation is None
    assert set(split.train).isdisjoint(set(split.test))
    assert split.train.overlap_count(split.test) == 0
    assert list(split.splits()) == ["train", "test"]


def test_default_split_with_validation_levels_is_pairwise_disjoint():
    split = LevelSplit.default(num_levels=500, start_level=7, num_test_levels=100, num_validation_levels=50)
    train, test, val = set(split.train), set(split.test), set(split.validation)
    assert train == set(range(7, 507))
    assert len(test) == 100 and len(val) == 50
    assert not (train & test) and not (train & val) and not (test & val)


def test_default_split_overlapping_the_test_range_raises():
    with pytest.raises(ValueError, match=rf"overlap in 100 seed\(s\): {DEFAULT_TEST_START},"):
        LevelSplit.default(num_levels=100, start_level=DEFAULT_TEST_START)


@pytest.mark.parametrize("num_levels", [0, -5, True, 2.5])
def test_default_split_rejects_bad_num_levels(num_levels):
    with pytest.raises(ValueError, match="num_levels"):
        LevelSplit.default(num_levels=num_levels)


def test_default_split_rejects_non_positive_test_levels():
    with pytest.raises(ValueError, match="num_test_levels"):
        LevelSplit.default(num_test_levels=0)


def test_overlap_message_for_large_overlap_counts_the_rest():
    with pytest.raises(ValueError) as excinfo:
        LevelSplit(train=range(0, 200), test=range(100, 1000))
    message = str(excinfo.value)
    assert "train levels [0, 200) and test levels [100, 1000)" in message
    assert "overlap in 100 seed(s): 100, 101, 102, 103, 104 and 95 more" in message


def test_validation_overlap_is_reported_with_its_name():
    with pytest.raises(ValueError, match=r"test levels .* and validation levels .*: 42"):
        LevelSplit(train=[1, 2], test=[42, 43], validation=[42, 99])


def test_split_get_unknown_name_lists_valid_splits():
    split = LevelSplit.default()
    with pytest.raises(KeyError, match="'valid'.*train, test"):
        split.get("valid")


# -- parsing --------------------------------------------------------------------------------------


def test_parse_range_and_list_strings():
    assert LevelSet.parse("0:200") == LevelSet.range(0, 200)
    assert LevelSet.parse(" 10 : 20 ") == LevelSet.range(10, 20)
    parsed = LevelSet.parse("3,17,42")
    assert not parsed.is_range
    assert parsed.seeds == (3, 17, 42)
    assert LevelSet.parse("42, 3 ,17,3") == parsed
    assert LevelSet.parse("7").seeds == (7,)
    assert LevelSet.parse(range(0, 10, 3)).seeds == (0, 3, 6, 9)


@pytest.mark.parametrize("bad", ["", "abc", "0:", ":5", "1,,2", "1;2", "-3:5", "0:200:2", "1.5", "0-200"])
def test_parse_bad_string_names_the_value(bad):
    with pytest.raises(ValueError) as excinfo:
        LevelSet.parse(bad)
    assert repr(bad) in str(excinfo.value)
    assert "START:STOP" in str(excinfo.value)


@pytest.mark.parametrize("spec", ["5:3", "4:4"])
def test_parse_empty_or_reversed_range_names_it(spec):
    start, stop = spec.split(":")
    with pytest.raises(ValueError, match=re.escape(f"[{start}, {stop})")):
        LevelSet.parse(spec)


# -- out-of-range and ill-typed seeds ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, MAX_SEED, MAX_SEED + 10, 2**40])
def test_out_of_range_seed_is_rejected_and_named(seed):
    with pytest.raises(ValueError, match=f"{seed} is out of range"):
        LevelSet.of([3, seed])
    with pytest.raises(ValueError, match=str(seed)):
        LevelSet.parse(f"3,{seed}")


def test_extreme_valid_seeds_are_accepted():
    assert LevelSet.of([0, MAX_SEED - 1]).seeds == (0, MAX_SEED - 1)
    assert len(LevelSet.range(MAX_SEED - 5, MAX_SEED)) == 5


@pytest.mark.parametrize(("start", "stop"), [(-1, 5), (0, MAX_SEED + 1), (MAX_SEED, MAX_SEED + 1)])
def test_out_of_range_range_is_rejected(start, stop):
    with pytest.raises(ValueError):
        LevelSet.range(start, stop)


@pytest.mark.parametrize("seed", [1.5, "3", True, None])
def test_non_integer_seed_raises_type_error(seed):
    with pytest.raises(TypeError, match="must be an integer"):
        LevelSet.of([seed])


def test_empty_level_sets_are_rejected():
    with pytest.raises(ValueError, match="at least one level"):
        LevelSet.of([])
    with pytest.raises(ValueError, match="at least one level"):
        LevelSet()
    with pytest.raises(ValueError, match="not both"):
        LevelSet(start=0, stop=5, seeds=(1,))
    with pytest.raises(ValueError, match="both start and stop"):
        LevelSet(stop=5)


def test_direct_construction_keeps_the_sorted_unique_valid_invariant():
    levels = LevelSet(seeds=[5, 3, 3])  # type: ignore[arg-type]
    assert levels.seeds == (3, 5)
    assert len(levels) == 2
    assert levels == LevelSet.of([3, 5])
    assert hash(levels) == hash(LevelSet.of([5, 3]))
    assert levels.first(1) == [3]
    with pytest.raises(ValueError, match="-1"):
        LevelSet(seeds=(-1,))
    ranged = LevelSet(start=np.int64(2), stop=np.int64(9))
    assert json.loads(json.dumps(ranged.to_dict())) == {"start": 2, "stop": 9}


def test_describe_forms():
    assert LevelSet.range(0, 200).describe() == "[0, 200)"
    assert LevelSet.of([42, 3, 17]).describe() == "{3, 17, 42}"
    assert LevelSet.of(range(10, 30)).describe() == "20 levels in [10, 29]"
