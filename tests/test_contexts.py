"""Context distributions and ContextSplit: sampling, specs, and the disjointness and mode checks."""

from __future__ import annotations

import numpy as np
import pytest

from heldout.contexts import (
    Categorical,
    ContextDistribution,
    Fixed,
    TruncatedNormal,
    Uniform,
    intervals_overlap,
    parse_feature,
)
from heldout.splits import ContextSplit

D = ContextDistribution.parse


def _draws(dist: ContextDistribution, seed: int, n: int = 50) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [dist.sample(rng) for _ in range(n)]


def test_sampling_is_reproducible_under_a_seed_and_differs_across_seeds():
    dist = D({"gravity": "4.9:14.7", "length": "normal:0.5,0.2,0.1,1.0", "masscart": "0.5,1,2"})
    assert _draws(dist, 7) == _draws(dist, 7)
    assert _draws(dist, 7) != _draws(dist, 8)


def test_uniform_over_a_union_draws_only_inside_its_intervals_and_from_both():
    u = Uniform(((12.25, 14.7), (4.9, 7.35)))
    assert u.intervals == ((4.9, 7.35), (12.25, 14.7))  # sorted
    rng = np.random.default_rng(0)
    values = np.array([u.sample(rng) for _ in range(2000)])
    inside = ((values >= 4.9) & (values <= 7.35)) | ((values >= 12.25) & (values <= 14.7))
    assert inside.all()
    low_share = float(np.mean(values < 10))
    assert 0.4 < low_share < 0.6  # equal widths: equal shares


def test_truncated_normal_and_categorical_stay_in_their_support():
    rng = np.random.default_rng(1)
    tn = TruncatedNormal(9.8, 10.0, 8.0, 12.0)
    values = [tn.sample(rng) for _ in range(500)]
    assert min(values) >= 8.0 and max(values) <= 12.0
    cat = Categorical((5.0, 10.0), probs=(0.9, 0.1))
    draws = [cat.sample(rng) for _ in range(1000)]
    assert set(draws) == {5.0, 10.0}
    assert 0.85 < draws.count(5.0) / 1000 < 0.95


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("9.8", Fixed(9.8)),
        (9.8, Fixed(9.8)),
        ("4.9:14.7", Uniform(((4.9, 14.7),))),
        ("4.9:7|12:14.7", Uniform(((4.9, 7.0), (12.0, 14.7)))),
        ("5,9.8,15", Categorical((5.0, 9.8, 15.0))),
        ([5, 15], Categorical((5.0, 15.0))),
        ({"uniform": [1, 2]}, Uniform(((1.0, 2.0),))),
        ({"normal": {"mean": 1, "std": 0.5, "low": 0, "high": 2}}, TruncatedNormal(1, 0.5, 0, 2)),
    ],
)
def test_feature_specs_parse_and_round_trip(spec, expected):
    parsed = parse_feature(spec)
    assert parsed == expected
    assert parse_feature(parsed.to_spec()) == expected


def test_normal_spec_takes_its_missing_bounds_from_the_feature():
    assert parse_feature("normal:9.8,2", bounds=(0.98, 29.4)) == TruncatedNormal(9.8, 2, 0.98, 29.4)
    with pytest.raises(ValueError, match="truncation bounds"):
        parse_feature("normal:9.8,2")


@pytest.mark.parametrize("bad", ["abc", "5:", "3:1", {"unifrm": [1, 2]}])
def test_unreadable_specs_are_refused_with_the_spec_named(bad):
    with pytest.raises((ValueError, KeyError)) as excinfo:
        parse_feature(bad)
    text = str(excinfo.value)
    assert "unifrm" in text or repr(bad) in text or "empty" in text


def test_touching_ranges_do_not_overlap_but_shared_interiors_and_points_do():
    assert not intervals_overlap([(4.9, 14.7)], [(14.7, 29.4)])  # a shared end: probability zero
    assert intervals_overlap([(4.9, 14.7)], [(14.0, 29.4)])
    assert intervals_overlap([(5.0, 5.0)], [(4.0, 6.0)])
    # a point is drawn: on the end of a closed range it is a value of that range (issue 16)
    assert intervals_overlap([(4.0, 4.0)], [(4.0, 6.0)])
    assert intervals_overlap([(4.0, 6.0)], [(6.0, 6.0)])
    assert intervals_overlap([(5.0, 5.0)], [(5.0, 5.0)])
    assert not intervals_overlap([(3.9, 3.9)], [(4.0, 6.0)])


def test_a_test_value_on_the_end_of_the_training_range_is_not_held_out():
    with pytest.raises(ValueError, match="overlap"):
        ContextSplit(D({"gravity": "4.9:14.7"}), D({"gravity": "14.7"}), mode="extrapolation")
    with pytest.raises(ValueError, match="overlap"):
        ContextSplit(D({"gravity": "4.9:14.7"}), D({"gravity": "4.9,20"}), mode="extrapolation")
    ContextSplit(D({"gravity": "4.9:14.7"}), D({"gravity": "14.71,20"}), mode="extrapolation")


def test_extrapolation_split_accepts_a_test_range_beyond_training():
    split = ContextSplit(D({"gravity": "4.9:14.7"}), D({"gravity": "14.7:29.4"}), mode="extrapolation")
    assert split.features() == ("gravity",)
    assert ContextSplit.from_dict(split.to_dict()) == split


def test_extrapolation_split_refuses_test_contexts_inside_the_training_range():
    with pytest.raises(ValueError, match="overlap") as excinfo:
        ContextSplit(D({"gravity": "4.9:14.7"}), D({"gravity": "10:20"}), mode="extrapolation")
    assert "gravity" in str(excinfo.value) and "10" in str(excinfo.value)
    # disjoint from training but inside its hull: interpolation, not extrapolation
    with pytest.raises(ValueError, match="extrapolation needs"):
        ContextSplit(D({"gravity": "4.9:7|12:14.7"}), D({"gravity": "7:12"}), mode="extrapolation")


def test_interpolation_split_needs_test_inside_the_training_hull_and_disjoint():
    ok = ContextSplit(
        D({"gravity": "4.9:7.35|12.25:14.7"}), D({"gravity": "7.35:12.25"}), mode="interpolation"
    )
    assert ok.mode == "interpolation"
    with pytest.raises(ValueError, match="inside the training range") as excinfo:
        ContextSplit(D({"gravity": "4.9:14.7"}), D({"gravity": "14.7:20"}), mode="interpolation")
    assert "14.7" in str(excinfo.value) and "20" in str(excinfo.value)
    with pytest.raises(ValueError, match="overlap"):
        ContextSplit(D({"gravity": "4.9:14.7"}), D({"gravity": "7:8"}), mode="interpolation")


def test_combinatorial_split_needs_seen_values_in_unseen_combinations():
    train = D([{"gravity": "4.9:9.8", "length": "0.25:0.75"}, {"gravity": "4.9:14.7", "length": "0.25:0.5"}])
    split = ContextSplit(train, D({"gravity": "9.8:14.7", "length": "0.5:0.75"}), mode="combinatorial")
    assert set(split.features()) == {"gravity", "length"}
    with pytest.raises(ValueError, match="among the training values"):
        ContextSplit(train, D({"gravity": "9.8:14.7", "length": "0.75:1.0"}), mode="combinatorial")
    with pytest.raises(ValueError, match="overlap"):
        ContextSplit(train, D({"gravity": "5:6", "length": "0.3:0.4"}), mode="combinatorial")


def test_explicit_context_lists_must_not_share_a_context():
    train = ContextDistribution.of([{"gravity": 5.0, "length": 0.5}, {"gravity": 15.0, "length": 1.0}])
    test = ContextDistribution.of([{"gravity": 5.0, "length": 1.0}])
    assert ContextSplit(train, test, mode="combinatorial").test.features == ("gravity", "length")
    with pytest.raises(ValueError, match="overlap"):
        ContextSplit(train, ContextDistribution.of([{"gravity": 15.0, "length": 1.0}]), mode="combinatorial")


def test_defaults_fill_features_a_split_leaves_out():
    # test varies length only; train varies gravity only: with defaults they are disjoint in length
    split = ContextSplit(
        D({"gravity": "4.9:14.7"}),
        D({"length": "0.75:2.5"}),
        mode="extrapolation",
        defaults={"gravity": 9.8, "length": 0.5},
    )
    assert split.mode == "extrapolation"
    with pytest.raises(ValueError, match="overlap"):  # test length range holds the default 0.5
        ContextSplit(
            D({"gravity": "4.9:14.7"}),
            D({"length": "0.25:0.75"}),
            mode="extrapolation",
            defaults={"gravity": 9.8, "length": 0.5},
        )


def test_a_validation_split_must_be_disjoint_too_and_modes_are_checked():
    with pytest.raises(ValueError, match="test contexts and validation contexts overlap"):
        ContextSplit(D({"g": "0:1"}), D({"g": "1:2"}), validation=D({"g": "1.5:3"}))
    with pytest.raises(ValueError, match="valid modes: interpolation, extrapolation, combinatorial"):
        ContextSplit(D({"g": "0:1"}), D({"g": "1:2"}), mode="sideways")


def test_holds_is_drawing_a_context_worked_by_hand() -> None:
    """A point is held when one component can draw every feature of it: closed ranges, listed
    values, and a feature the component does not name is its default (or free without one)."""
    dist = ContextDistribution.parse([{"gravity": "4.9:14.7"}, {"gravity": "20,30", "length": 0.5}])
    assert dist.holds({"gravity": 14.7})  # a closed end
    assert dist.holds({"gravity": 30.0, "length": 0.5})
    assert not dist.holds({"gravity": 15.0})
    assert not dist.holds({"gravity": 25.0, "length": 0.5})  # between listed values
    assert not dist.holds({"gravity": 30.0, "length": 0.6})  # the second component fixes length
    # the first component names no length: the default decides, or any value without one
    assert dist.holds({"gravity": 9.8, "length": 0.6})
    assert dist.holds({"gravity": 9.8, "length": 0.5}, defaults={"length": 0.5})
    assert not dist.holds({"gravity": 9.8, "length": 0.6}, defaults={"length": 0.5})
