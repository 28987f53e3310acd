"""PLR and Robust PLR samplers (heldout.envs.plr) on hand-computed cases: numpy only, no agent."""

from __future__ import annotations

import numpy as np
import pytest

from heldout.envs.plr import (
    PLR_DEFAULTS,
    ROBUST_PLR_DEFAULTS,
    PLRSampler,
    RobustPLRSampler,
    check_sampler_kwargs,
    segment_score,
    transform_weights,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _rollout(levels, dones, adv, values=None):
    """Arrays (steps, slots) from per-slot columns; returns = adv + values."""
    levels = np.asarray(levels).reshape(len(levels), -1)
    dones = np.asarray(dones, dtype=bool).reshape(levels.shape)
    adv = np.asarray(adv, dtype=float).reshape(levels.shape)
    values = np.zeros_like(adv) if values is None else np.asarray(values, dtype=float).reshape(levels.shape)
    return {"levels": levels, "dones": dones, "advantages": adv, "values": values, "returns": adv + values}


def test_rank_weights_with_staleness_on_a_hand_computed_case():
    # scores 0.5, 2.0, 1.0 -> ranks 3, 1, 2; beta = 0.5 -> h^(1/beta) = (1/rank)^2 = 1/9, 1, 1/4,
    # sum 49/36 -> P_S = 4/49, 36/49, 9/49. Staleness 1, 3, 0 -> P_C = 1/4, 3/4, 0.
    # rho = 0.2: P = 0.8 P_S + 0.2 P_C = 3.2/49 + 0.05, 28.8/49 + 0.15, 7.2/49.
    s = PLRSampler([10, 11, 12], _rng(), temperature=0.5, staleness_coef=0.2)
    s.scores[:] = [0.5, 2.0, 1.0]
    s.seen[:] = True
    s.staleness[:] = [1, 3, 0]
    expected = [3.2 / 49 + 0.05, 28.8 / 49 + 0.15, 7.2 / 49]
    np.testing.assert_allclose(s.sample_weights(), expected, rtol=1e-12)
    assert s.sample_weights().sum() == pytest.approx(1.0)


def test_ranks_run_over_all_levels_and_unseen_ones_are_zeroed():
    # scores 0.3, 0 (unseen), 0.9, 0 (unseen): ranks 2, 3, 1, 4 (ties by position); beta = 1 ->
    # h = 1/2, 1/3, 1, 1/4 -> unseen zeroed: 1/2, 0, 1, 0 -> normalised 1/3, 0, 2/3, 0.
    s = PLRSampler([0, 1, 2, 3], _rng(), temperature=1.0, staleness_coef=0.0)
    s.scores[:] = [0.3, 0.0, 0.9, 0.0]
    s.seen[:] = [True, False, True, False]
    np.testing.assert_allclose(s.sample_weights(), [1 / 3, 0, 2 / 3, 0], rtol=1e-12)
    np.testing.assert_allclose(transform_weights("rank", 1.0, [0.3, 0.0, 0.9, 0.0]), [1 / 2, 1 / 3, 1, 1 / 4])


def test_staleness_counts_draws_since_a_level_was_last_drawn():
    s = PLRSampler([5, 6, 7], _rng(3), staleness_coef=0.5)
    s.seen[:] = True
    before = s.staleness.copy()
    for _ in range(20):
        level = s.next_level(0)
        drawn = s.index[level]
        expected = before + 1
        expected[drawn] = 0
        np.testing.assert_array_equal(s.staleness, expected)
        before = s.staleness.copy()
    # without staleness in the mix the counts are not kept (level-replay)
    plain = PLRSampler([5, 6, 7], _rng(3), staleness_coef=0.0)
    plain.seen[:] = True
    for _ in range(5):
        plain.next_level(0)
    assert not plain.staleness.any()


def test_scores_of_finished_episodes_per_strategy():
    adv, values = np.array([1.0, -3.0, 2.0]), np.array([0.5, 0.5, 1.0])
    returns = adv + values  # 1.5, -2.5, 3.0
    assert segment_score("value_l1", adv, values, returns) == pytest.approx(2.0)  # (1+3+2)/3
    assert segment_score("gae", adv, values, returns) == pytest.approx(0.0)
    assert segment_score("positive_value_loss", adv, values, returns) == pytest.approx(1.0)  # (1+0+2)/3
    # MaxMC: best return 3.0 (or an earlier 4.0) minus the values 0.5, 0.5, 1.0
    assert segment_score("max_mc", adv, values, returns) == pytest.approx((2.5 + 2.5 + 2.0) / 3)
    assert segment_score("max_mc", adv, values, returns, max_return=4.0) == pytest.approx(
        (3.5 + 3.5 + 3.0) / 3
    )


def test_episodes_are_split_at_dones_and_each_scores_its_level():
    # one slot: level 3 for steps 0-1 (done at 1), level 4 for steps 2-4 (done at 4), level 3 at 5 (cut)
    s = PLRSampler([3, 4], _rng(), strategy="value_l1")
    r = _rollout([3, 3, 4, 4, 4, 3], [0, 1, 0, 0, 1, 0], [1, -3, 2, 2, -5, 7])
    s.update_with_rollout(**r)
    assert s.scores[s.index[3]] == pytest.approx(2.0)  # (1 + 3) / 2
    assert s.scores[s.index[4]] == pytest.approx(3.0)  # (2 + 2 + 5) / 3
    assert s.partial == {0: [s.index[3], 7.0, 1]}  # the cut episode waits
    s.after_update()  # level-replay: committed after the update
    assert s.scores[s.index[3]] == pytest.approx(7.0) and not s.partial
    assert s.episodes.tolist() == [2, 1]


def test_a_cut_episode_merges_with_its_continuation_when_carried():
    # rollout 1: level 7, four steps |A| = 1 and no done -> partial 1.0 over 4 steps.
    # rollout 2: two more steps |A| = 4, done -> merged = 1 + (4 - 1) * 2 / (4 + 2) = 2.0.
    carried = PLRSampler([7, 8], _rng(), carry_partial=True)
    carried.update_with_rollout(**_rollout([7] * 4, [0] * 4, [1, -1, 1, -1]))
    carried.after_update()
    assert not carried.seen[carried.index[7]] and carried.partial[0][1:] == [1.0, 4]
    carried.update_with_rollout(**_rollout([7, 7, 8, 8], [0, 1, 0, 0], [4, -4, 9, 9]))
    assert carried.scores[carried.index[7]] == pytest.approx(2.0)
    assert carried.partial[0] == [carried.index[8], 9.0, 2]
    # committed at the update instead (the default): the continuation's own score replaces it (alpha 1)
    committed = PLRSampler([7, 8], _rng())
    committed.update_with_rollout(**_rollout([7] * 4, [0] * 4, [1, -1, 1, -1]))
    committed.after_update()
    assert committed.scores[committed.index[7]] == pytest.approx(1.0)
    committed.update_with_rollout(**_rollout([7, 7, 8, 8], [0, 1, 0, 0], [4, -4, 9, 9]))
    assert committed.scores[committed.index[7]] == pytest.approx(4.0)


def test_alpha_smooths_the_score():
    s = PLRSampler([1], _rng(), alpha=0.25)
    s.update_with_rollout(**_rollout([1, 1], [0, 1], [2, 2]))  # 0.75 * 0 + 0.25 * 2
    assert s.scores[0] == pytest.approx(0.5)
    s.update_with_rollout(**_rollout([1, 1], [0, 1], [4, 4]))  # 0.75 * 0.5 + 0.25 * 4
    assert s.scores[0] == pytest.approx(1.375)


def test_a_level_change_mid_episode_is_an_error():
    s = PLRSampler([1, 2], _rng())
    with pytest.raises(ValueError, match="changed level mid-episode"):
        s.update_with_rollout(**_rollout([1, 2, 2], [0, 0, 1], [1, 1, 1]))


def test_every_unseen_level_is_played_before_any_replay():
    # proportionate schedule, rho_min = 1: a seen level is never handed out while one is unseen
    levels = list(range(100, 108))
    s = PLRSampler(levels, _rng(7))
    order = []
    for _ in range(len(levels)):
        level = s.next_level(0)
        assert not s.seen[s.index[level]]
        order.append(level)
        s.update_with_rollout(**_rollout([level, level], [0, 1], [1.0 + level, 0.0]))
    assert sorted(order) == levels and s.seen.all()
    # then every draw is a replay from P_replay: with beta 0.1 the top-ranked level dominates
    top = levels[int(np.argmax(s.scores))]
    draws = [s.next_level(0) for _ in range(300)]
    assert draws.count(top) > 0.6 * len(draws)


def test_rho_below_one_replays_in_proportion_to_the_levels_seen():
    # 2 of 4 levels seen and rho = 0.5: replay with probability P_seen = 0.5, else an unseen level
    s = PLRSampler([0, 1, 2, 3], _rng(11), rho=0.5, staleness_coef=0.0)
    s.seen[:] = [True, True, False, False]
    s.scores[:] = [1.0, 2.0, 0.0, 0.0]
    draws = np.array([s.next_level(0) for _ in range(4000)])
    assert np.mean(draws < 2) == pytest.approx(0.5, abs=0.03)
    s2 = PLRSampler([0, 1, 2, 3], _rng(11), rho=0.75)  # below rho: only unseen levels
    s2.seen[:] = [True, True, False, False]
    assert all(s2.next_level(0) >= 2 for _ in range(200))


def test_state_round_trip_continues_the_same_draws():
    a = PLRSampler(list(range(10)), _rng(5))
    for k in range(10):
        a.next_level(k % 3)
        a.update_with_rollout(**_rollout([k, k, k], [0, 0, 1], [k, 1, 2]))
    a.update_with_rollout(**_rollout([4, 4], [0, 0], [3, 3]))  # a pending partial
    import json

    state = json.loads(json.dumps(a.get_state()))
    b = PLRSampler(list(range(10)), _rng(999))
    b.set_state(state)
    assert [a.next_level(0) for _ in range(50)] == [b.next_level(0) for _ in range(50)]
    np.testing.assert_array_equal(a.sample_weights(), b.sample_weights())
    assert a.partial == b.partial


def test_robust_plr_decides_per_batch_and_replays_the_batch_level_in_each_slot():
    s = RobustPLRSampler(list(range(20)), _rng(2), num_slots=3)
    first = [s.next_level(slot) for slot in range(3)]
    assert not s.batch_replay and len(set(first)) == 3  # an empty buffer: new levels, distinct
    assert [s.next_level(slot) for slot in range(3)] == first  # episode ends replay the batch's levels
    assert s.needs_new_batch is False and s.trains_on_last_rollout() is False
    s.update_with_rollout(**_rollout(np.array([first, first]), np.zeros((2, 3)), np.ones((2, 3))))
    s.after_update()  # cut episodes committed: the next batch resets every slot
    assert s.needs_new_batch and s.seen.sum() == 3 and s.proportion_filled == pytest.approx(3 / 20)


def test_robust_plr_replays_once_filled_to_rho_with_probability_min_filled_replay_prob():
    s = RobustPLRSampler(list(range(10)), _rng(4), num_slots=1, rho=0.5, replay_prob=0.5)
    s.seen[:5] = True  # filled 0.5 >= rho: replay with probability min(0.5, 0.5)
    decisions = []
    for _ in range(2000):
        s.begin_batch()
        decisions.append(s.batch_replay)
        assert s.seen[s.batch_levels[0]] == s.batch_replay  # replay: a buffer level; else a new one
    assert np.mean(decisions) == pytest.approx(0.5, abs=0.04)
    s.seen[:] = True  # no level outside the buffer: always replay
    s.begin_batch()
    assert s.batch_replay


def test_a_full_buffer_admits_a_new_level_only_if_it_beats_the_lowest_member():
    # capacity 2 of 4 levels; members 0 (score 1.0) and 1 (score 3.0); buffer priority "score"
    s = RobustPLRSampler([0, 1, 2, 3], _rng(), num_slots=1, buffer_size=2, buffer_priority="score")
    s.seen[:2] = True
    s.scores[:2] = [1.0, 3.0]
    s.update_with_rollout(**_rollout([2, 2], [0, 1], [0.5, 0.5]))  # 0.5 < 1.0: stays out
    assert s.seen.tolist() == [True, True, False, False]
    s.update_with_rollout(**_rollout([3, 3], [0, 1], [2.0, 2.0]))  # 2.0 > 1.0: replaces level 0
    assert s.seen.tolist() == [False, True, False, True] and s.scores[3] == pytest.approx(2.0)


def test_options_are_checked_with_their_defaults_and_did_you_mean():
    assert check_sampler_kwargs("plr", {}) == PLR_DEFAULTS
    assert check_sampler_kwargs("robust-plr", {"buffer_size": 8})["buffer_size"] == 8
    assert ROBUST_PLR_DEFAULTS["strategy"] == "positive_value_loss"
    with pytest.raises(ValueError, match="did you mean 'temperature'"):
        check_sampler_kwargs("plr", {"temprature": 0.3})
    with pytest.raises(ValueError, match="did you mean 'plr'"):
        check_sampler_kwargs("plrr", {})
    with pytest.raises(ValueError, match="out of range"):
        check_sampler_kwargs("plr", {"staleness_coef": 1.5})
    with pytest.raises(ValueError, match="did you mean 'value_l1'"):
        check_sampler_kwargs("plr", {"strategy": "value_l2"})
    with pytest.raises(ValueError, match="takes no --sampler-arg"):
        check_sampler_kwargs("uniform", {"temperature": 0.3})
    with pytest.raises(ValueError, match="replay_prob"):  # a Robust PLR option on PLR
        check_sampler_kwargs("plr", {"replay_prob": 0.5})
