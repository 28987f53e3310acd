"""Evaluation contexts drawn from ranges are stratified: every bin of ``by_context`` gets its share."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from heldout.contexts import ContextDistribution
from heldout.envs import CONTEXTUAL_ENVS
from heldout.protocol.families.contextual import context_bins, evaluation_contexts

SPACE = CONTEXTUAL_ENVS.get("cartpole").context_space


def _dist(spec):
    return ContextDistribution.parse(spec, SPACE.bounds())


def _bin_counts(items, feature, lo, hi, bins):
    contexts = [i["context"] for i in items]
    return [b["episodes"] for b in context_bins(contexts, [0.0] * len(contexts), feature, lo, hi, bins)]


@pytest.mark.parametrize(("episodes", "bins"), [(100, 5), (101, 5), (7, 3), (50, 4)])
def test_a_range_gives_every_bin_episodes_over_bins_give_or_take_one(episodes, bins):
    items = evaluation_contexts(_dist({"gravity": "14.7:29.4"}), SPACE, episodes, bins=bins)
    counts = _bin_counts(items, "gravity", 14.7, 29.4, bins)
    assert sum(counts) == episodes
    assert max(counts) - min(counts) <= 1 and min(counts) == episodes // bins, counts
    g = [i["context"]["gravity"] for i in items]
    assert all(14.7 <= v <= 29.4 for v in g) and len(set(g)) == episodes  # drawn, not a grid


def test_a_prefix_of_the_list_is_balanced_too():
    items = evaluation_contexts(_dist({"gravity": "14.7:29.4"}), SPACE, 100, bins=5)
    assert _bin_counts(items[:10], "gravity", 14.7, 29.4, 5) == [2, 2, 2, 2, 2]


def test_a_range_with_a_hole_shares_by_length_and_leaves_the_hole_empty():
    # hull [4.9, 14.7] in bins of 1.96: support lengths per bin 1.96, 0.49, 0, 0.49, 1.96 (of 4.9)
    items = evaluation_contexts(_dist({"gravity": "4.9:7.35|12.25:14.7"}), SPACE, 100, bins=5)
    assert _bin_counts(items, "gravity", 4.9, 14.7, 5) == [40, 10, 0, 10, 40]
    g = np.array([i["context"]["gravity"] for i in items])
    assert not np.any((g > 7.35) & (g < 12.25))


def test_mixture_components_get_their_weights_and_each_feature_is_stratified():
    spec = [{"gravity": "4.9:9.8", "length": "0.25:0.75"}, {"gravity": "4.9:14.7", "length": "0.25:0.5"}]
    items = evaluation_contexts(_dist(spec), SPACE, 100, bins=5)
    # 50 episodes each; by hand, gravity bins of 1.96 over [4.9, 14.7]: component 1 ([4.9, 9.8])
    # covers bins 0 and 1 and half of bin 2 (20, 20, 10), component 2 all five (10 each)
    assert _bin_counts(items, "gravity", 4.9, 14.7, 5) == [30, 30, 20, 10, 10]
    # length bins of 0.1 over [0.25, 0.75]: component 1 all five (10 each), component 2 ([0.25, 0.5])
    # bins 0 and 1 and half of bin 2 (20, 20, 10)
    assert _bin_counts(items, "length", 0.25, 0.75, 5) == [30, 30, 20, 10, 10]
    # the two features are not paired in lock step (a Latin hypercube, not a diagonal)
    first = [(i["context"]["gravity"], i["context"]["length"]) for i in items]
    assert np.corrcoef(np.array(first).T)[0, 1] < 0.9


def test_the_list_is_fixed_by_its_seed_and_other_seeds_draw_other_values():
    dist = _dist({"gravity": "14.7:29.4"})
    a = evaluation_contexts(dist, SPACE, 20, seed=1)
    assert a == evaluation_contexts(dist, SPACE, 20, seed=1)
    b = evaluation_contexts(dist, SPACE, 20, seed=2)
    assert [i["context"]["gravity"] for i in a] != [i["context"]["gravity"] for i in b]
    assert _bin_counts(b, "gravity", 14.7, 29.4, 5) == [4, 4, 4, 4, 4]


def test_unstratified_kinds_are_drawn_as_in_training():
    dist = _dist({"gravity": "normal:9.8,1,5,15", "length": "0.4,0.6"})
    items = evaluation_contexts(dist, SPACE, 40, bins=5)
    g = [i["context"]["gravity"] for i in items]
    assert all(5 <= v <= 15 for v in g) and len(set(g)) == 40
    assert set(Counter(i["context"]["length"] for i in items)) == {0.4, 0.6}
