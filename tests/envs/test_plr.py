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


def _rollout(levels, dones, adv, values=None, rewards=None):
    """Arrays (steps, slots) from per-slot columns; returns = adv + values; rewards 0 unless given."""
    levels = np.asarray(levels).reshape(len(levels), -1)
    dones = np.asarray(dones, dtype=bool).reshape(levels.shape)
    adv = np.asarray(adv, dtype=float).reshape(levels.shape)
    values = np.zeros_like(adv) if values is None else np.asarray(values, dtype=float).reshape(levels.shape)
    rewards = (
        np.zeros_like(adv) if rewards is None else np.asarray(rewards, dtype=float).reshape(levels.shape)
    )
    return {
        "levels": levels,
        "dones": dones,
        "advantages": adv,
        "values": values,
        "returns": adv + values,
        "rewards": rewards,
    }


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
    # MaxMC (dcd grounded_signed_value_loss): the level's best finished-episode return 4.0 minus
    # the values 0.5, 0.5, 1.0; the lambda-returns play no part
    assert segment_score("max_mc", adv, values, returns, max_return=4.0) == pytest.approx(
        (3.5 + 3.5 + 3.0) / 3
    )
    assert segment_score("max_mc", adv, values, returns * 100, max_return=4.0) == pytest.approx(10 / 3)


def test_episodes_are_split_at_dones_and_each_scores_its_level():
    # one slot: level 3 for steps 0-1 (done at 1), level 4 for steps 2-4 (done at 4), level 3 at 5 (cut)
    s = PLRSampler([3, 4], _rng(), strategy="value_l1")
    r = _rollout([3, 3, 4, 4, 4, 3], [0, 1, 0, 0, 1, 0], [1, -3, 2, 2, -5, 7])
    s.update_with_rollout(**r)
    assert s.scores[s.index[3]] == pytest.approx(2.0)  # (1 + 3) / 2
    assert s.scores[s.index[4]] == pytest.approx(3.0)  # (2 + 2 + 5) / 3
    assert s.partial == {0: [s.index[3], 7.0, 1, 0.0]}  # the cut episode waits
    s.after_update()  # level-replay: committed after the update
    assert s.scores[s.index[3]] == pytest.approx(7.0) and not s.partial
    assert s.episodes.tolist() == [2, 1]


def test_a_cut_episode_merges_with_its_continuation_when_carried():
    # rollout 1: level 7, four steps |A| = 1 and no done -> partial 1.0 over 4 steps.
    # rollout 2: two more steps |A| = 4, done -> merged = 1 + (4 - 1) * 2 / (4 + 2) = 2.0.
    carried = PLRSampler([7, 8], _rng(), carry_partial=True)
    carried.update_with_rollout(**_rollout([7] * 4, [0] * 4, [1, -1, 1, -1]))
    carried.after_update()
    assert not carried.seen[carried.index[7]] and carried.partial[0][1:3] == [1.0, 4]
    carried.update_with_rollout(**_rollout([7, 7, 8, 8], [0, 1, 0, 0], [4, -4, 9, 9]))
    assert carried.scores[carried.index[7]] == pytest.approx(2.0)
    assert carried.partial[0] == [carried.index[8], 9.0, 2, 0.0]
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


class _ScriptedRng:
    """Stands in for a sampler's generator: hands out scripted draws (and records the
    probabilities ``choice`` was given), so a case can be worked by hand."""

    def __init__(self, random=(), integers=(), choice=()):
        self._random, self._integers, self._choice = list(random), list(integers), list(choice)
        self.choice_p: list[np.ndarray] = []

    def random(self) -> float:
        return self._random.pop(0)

    def integers(self, n: int) -> int:
        k = self._integers.pop(0)
        assert 0 <= k < n
        return k

    def choice(self, n: int, p) -> int:
        self.choice_p.append(np.asarray(p, dtype=float).copy())
        return self._choice.pop(0)


def test_robust_plr_a_hand_worked_run_of_dcds_rules():
    """dcd (level_sampler.py, adversarial_runner.py): new levels until the buffer is filled to rho;
    then at each episode end replay (P_replay) or a new level; a new level enters on its first
    finished episode with staleness = new levels drawn since it was drawn; a full buffer evicts the
    member of lowest P_replay when the new score is at least that member's; replay draws, not new
    ones, age the buffer."""
    rng = _ScriptedRng(random=[0.7, 0.2], integers=[0, 2, 2], choice=[0])
    s = RobustPLRSampler(
        [10, 11, 12, 13],
        rng,
        num_slots=2,
        buffer_size=2,
        rho=0.5,
        replay_prob=0.5,
        temperature=1.0,
        staleness_coef=0.5,
    )
    # empty buffer: new levels, no replay coin is tossed (outside the buffer: indices 0, 1, 2, 3)
    assert [s.next_level(0), s.next_level(1)] == [10, 12]
    assert s.new_draws == 2 and s.drawn_at == {0: 1, 2: 2}
    assert s.training_slots(2).tolist() == [False, False]  # new-level episodes never train
    # rollout 1: slot 0 finishes level 10 (positive value loss 1.0); slot 1's episode on 12 is cut
    s.update_with_rollout(**_rollout([[10, 12], [10, 12]], [[0, 0], [1, 0]], [[1, 3], [1, 3]]))
    s.after_update()  # a cut episode is never committed: dcd scores finished episodes only
    assert s.seen.tolist() == [True, False, False, False] and s.scores[0] == 1.0
    assert s.staleness[0] == 1  # one new level (12) drawn since 10 was
    # slot 0's episode ends: filled 1/2 >= rho, replay with min(1/2, 0.5): 0.7 -> a new level, 13
    assert s.next_level(0) == 13 and s.new_draws == 3
    # rollout 2: 13 finishes (score 2.0, a free place); 12 finishes: merged 3 + (6 - 3) * 2/4 = 4.5
    s.update_with_rollout(**_rollout([[13, 12], [13, 12]], [[0, 0], [1, 1]], [[2, 6], [2, 6]]))
    # when 12 came the buffer held 10 (score 1, staleness 1) and 13 (score 2, staleness 0):
    # P_S = (1/2, 1) / 1.5 (ranks 2, 1), P_C = (1, 0): P_replay = (2/3, 1/3) -> 13 is evicted
    assert s.seen.tolist() == [True, False, True, False]
    assert s.scores.tolist() == [1.0, 0.0, 4.5, 0.0]
    assert s.staleness[2] == 1 and s.drawn_at == {}  # 12 drawn at 2, entered at 3
    # slot 1: filled 1.0, replay with min(1, 0.5): 0.2 -> replay. P_S = (1/2, 1) / 1.5 over 10, 12;
    # P_C = (1, 1) / 2: P_replay = (5/12, 7/12)
    assert s.next_level(1) == 10
    np.testing.assert_allclose(rng.choice_p[0], [5 / 12, 0, 7 / 12, 0], rtol=1e-12)
    assert s.staleness[[0, 2]].tolist() == [0, 2] and s.new_draws == 3  # a replay draw ages the buffer
    assert s.training_slots(2).tolist() == [False, True]
    assert s.replay_episodes == 1 and s.new_episodes == 3


def test_robust_plr_by_score_evicts_the_lowest_score_and_ties_enter():
    s = RobustPLRSampler([0, 1, 2, 3], _rng(), num_slots=1, buffer_size=2, buffer_priority="score")
    s.seen[:2] = True
    s.scores[:2] = [1.0, 3.0]
    s.drawn_at = {2: 1, 3: 1}
    s.new_draws = 4
    s.update_with_rollout(**_rollout([2, 2], [0, 1], [0.5, 0.5]))  # 0.5 < 1.0: turned away
    assert s.seen.tolist() == [True, True, False, False] and 2 not in s.drawn_at
    s.update_with_rollout(**_rollout([2, 2], [0, 1], [9.0, 9.0]))  # turned away: no longer waiting
    assert s.seen.tolist() == [True, True, False, False]
    s.update_with_rollout(**_rollout([3, 3], [0, 1], [1.0, 1.0]))  # 1.0 >= 1.0 (dcd: <=): replaces 0
    assert s.seen.tolist() == [False, True, False, True] and s.scores.tolist() == [0.0, 3.0, 0.0, 1.0]
    assert s.staleness[3] == 3
    s.update_with_rollout(**_rollout([0, 0], [0, 1], [5.0, 5.0]))  # an evicted level's episode: dropped
    assert s.scores[0] == 0.0 and not s.seen[0]


def test_robust_plr_replays_once_filled_to_rho_with_dcds_probability():
    def replays(schedule: str, seen: int, n: int = 3000) -> float:
        s = RobustPLRSampler(list(range(10)), _rng(4), rho=0.5, replay_prob=0.8, schedule=schedule)
        s.seen[:seen] = True
        kinds = []
        for _ in range(n):
            level = s.next_level(0)
            kinds.append(s.slot_replay[0])
            assert s.seen[level] == kinds[-1]  # replay: a buffer level; else one outside the buffer
        return float(np.mean(kinds))

    assert replays("proportionate", 5) == pytest.approx(0.5, abs=0.03)  # min(filled 0.5, 0.8)
    assert replays("fixed", 5) == pytest.approx(0.8, abs=0.03)
    assert replays("fixed", 4, 200) == 0.0  # filled 0.4 < rho
    assert replays("proportionate", 10, 200) == 1.0  # no level outside the buffer


def test_robust_plr_with_exploratory_grad_updates_trains_on_new_levels():
    s = RobustPLRSampler(list(range(5)), _rng(), num_slots=3, exploratory_grad_updates=True)
    for slot in range(3):
        s.next_level(slot)
    assert not any(s.slot_replay.values()) and s.training_slots(3).tolist() == [True] * 3


@pytest.mark.parametrize("robust", [False, True])
def test_max_mc_uses_the_best_finished_episode_return_over_whole_episodes(robust):
    """dcd's MaxMC (grounded_signed_value_loss): G = the best undiscounted return of the level's
    finished episodes; score = mean over the episode's steps of G - V(s_t). The lambda-returns
    play no part, and an episode the rollout cut is scored at its end over all its steps."""
    cls = RobustPLRSampler if robust else PLRSampler
    s = cls([5, 6], _rng(), strategy="max_mc")
    if robust:
        s.drawn_at = {0: 0}
    # episode 1 on level 5: rewards 0, 1, 1 (return 2), values 0.5 each: 2 - 0.5 = 1.5
    s.update_with_rollout(**_rollout([5, 5, 5], [0, 0, 1], [99, 99, 99], [0.5] * 3, [0, 1, 1]))
    assert s.scores[0] == pytest.approx(1.5) and s.max_returns[0] == 2.0
    # episode 2: cut after 2 steps (values 1, 1, reward 0.5): no score until it ends
    s.update_with_rollout(**_rollout([5, 5], [0, 0], [-99, 99], [1, 1], [0, 0.5]))
    s.after_update()
    assert s.scores[0] == pytest.approx(1.5)
    # it ends one step later (value 4): return 0.5 < 2, so G = 2; mean V = (1 + 1 + 4) / 3 = 2
    s.update_with_rollout(**_rollout([5], [1], [7], [4], [0]))
    assert s.scores[0] == pytest.approx(0.0) and s.max_returns[0] == 2.0
    # a better return raises G for this and later episodes: 3 - 1 = 2
    s.update_with_rollout(**_rollout([5], [1], [0], [1], [3]))
    assert s.scores[0] == pytest.approx(2.0) and s.max_returns[0] == 3.0
    with pytest.raises(ValueError, match="rewards"):
        s.update_with_rollout(**{**_rollout([5], [1], [0]), "rewards": None})


def test_robust_plr_state_round_trip_continues_the_same_draws_and_kinds():
    import json

    a = RobustPLRSampler(list(range(10)), _rng(5), num_slots=2, rho=0.2)
    for k in range(6):
        level = a.next_level(k % 2)
        a.update_with_rollout(**_rollout([level, level], [0, 1 - k % 2], [k, 1]))
    b = RobustPLRSampler(list(range(10)), _rng(999), num_slots=2, rho=0.2)
    b.set_state(json.loads(json.dumps(a.get_state())))
    assert a.slot_replay == b.slot_replay and a.drawn_at == b.drawn_at and a.partial == b.partial
    draws = [
        (a.next_level(k % 2), b.next_level(k % 2), a.slot_replay[k % 2], b.slot_replay[k % 2])
        for k in range(50)
    ]
    assert all(x == y and r == q for x, y, r, q in draws)
    assert any(r for _, _, r, _ in draws) and not all(r for _, _, r, _ in draws)


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


def test_checkpoints_of_the_earlier_samplers():
    """A PLR state from before the reward sum (three-entry partials) still resumes; one of the earlier
    per-batch Robust PLR is refused in words, before anything changes."""
    plr = PLRSampler([1, 2], _rng())
    state = plr.get_state()
    state["partial"] = {"0": [1, 0.5, 3]}
    plr.set_state(state)
    assert plr.partial == {0: [1, 0.5, 3, 0.0]}
    robust = RobustPLRSampler([1, 2], _rng())
    old = {k: v for k, v in robust.get_state().items() if k not in ("slot_replay", "new_draws", "drawn_at")}
    old.update(batch_levels=None, batch_replay=False, batch_played=False, batches=0, replay_batches=0)
    before = robust.get_state()
    with pytest.raises(ValueError, match="earlier Robust PLR"):
        robust.set_state(old)
    assert robust.get_state() == before


def test_a_pending_episode_is_not_merged_with_a_new_one_after_a_reset():
    # a cut episode on level 7 (|A| = 1 over 4 steps), then the env is reset (episode_starts at the
    # rollout's first step): the new episode on 7 (|A| = 4, 2 steps) scores on its own, 4.0, not 2.0
    s = PLRSampler([7, 8], _rng(), carry_partial=True)
    s.update_with_rollout(**_rollout([7] * 4, [0] * 4, [1, -1, 1, -1]))
    r = _rollout([7, 7], [0, 1], [4, -4])
    s.update_with_rollout(**r, starts=np.array([[True], [False]]))
    assert s.scores[0] == pytest.approx(4.0) and s.episodes[0] == 2
