"""Each evaluation episode's completion is judged at its own end, before its slot starts the next one.

The verdict of an env like LunarLander ("landed": at rest, not crashed) is read from the env's state,
so it must be read when the episode ends: read after all episodes (the first wave did), every
episode got its slot's last episode's verdict. A fake env whose outcome is fixed by its reset seed
replays known successes and failures in several orders and slot counts.
"""

from __future__ import annotations

import itertools

import gymnasium
import numpy as np
import pytest

from heldout.protocol.evaluate import evaluate_contexts


class Outcome(gymnasium.Env):
    """Episodes of ``2 + seed % 3`` steps; the episode of an even seed ends landed, an odd one crashed.

    Like LunarLander, the verdict is the env's state at the episode's end, and the next reset clears it.
    """

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self.seed_, self.t, self.landed = int(seed), 0, False
        self.context = dict((options or {}).get("context") or {})
        return np.zeros(1, np.float32), {"context": self.context}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.t += 1
        done = self.t >= 2 + self.seed_ % 3
        if done:
            self.landed = self.seed_ % 2 == 0
        return np.zeros(1, np.float32), float(self.landed), done, False, {"context": self.context}

    def completed_episode(self, terminated: bool, truncated: bool) -> bool:
        return bool(terminated and self.landed)


class Idle:
    def predict(self, obs, deterministic=False):  # type: ignore[no-untyped-def]
        return np.zeros(len(obs), dtype=np.int64), None


SEEDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]  # 6 landed, 6 crashed, episodes of 2-4 steps


@pytest.mark.parametrize("num_envs", [1, 2, 3, 5, 12])
@pytest.mark.parametrize("order", ["ascending", "crash last", "shuffled"])
def test_every_episode_gets_its_own_verdict(num_envs, order):
    seeds = list(SEEDS)
    if order == "crash last":
        seeds = [s for s in seeds if s % 2 == 0] + [s for s in seeds if s % 2]
    elif order == "shuffled":
        seeds = [int(s) for s in np.random.default_rng(7).permutation(seeds)]
    items = [{"context": {"g": float(s)}, "seed": s} for s in seeds]
    result = evaluate_contexts(Idle(), Outcome, items, num_envs=num_envs, features=["g"])
    assert result.completed == [s % 2 == 0 for s in seeds]
    assert result.returns == [float(s % 2 == 0) for s in seeds]
    assert [c["g"] for c in result.contexts] == [float(s) for s in seeds]


def test_the_verdict_does_not_depend_on_the_slot_count():
    items = [{"context": {"g": 0.0}, "seed": s} for s in SEEDS]
    verdicts = {n: evaluate_contexts(Idle(), Outcome, items, num_envs=n).completed for n in (1, 4, 12)}
    assert all(a == b for a, b in itertools.pairwise(verdicts.values()))


def test_lunarlander_landings_by_gymnasiums_heuristic_pilot_are_counted_per_episode():
    """gymnasium's heuristic pilot over gravities -16 to -8: each episode's verdict, judged alone
    (one episode per evaluation), is the verdict it gets among 12 episodes on 1, 3 or 12 slots."""
    pytest.importorskip("Box2D")
    from gymnasium.envs.box2d.lunar_lander import heuristic

    from heldout.protocol.families.contextual import make_contextual_env

    class Pilot:
        env = make_contextual_env("lunarlander").unwrapped

        def predict(self, obs, deterministic=False):  # type: ignore[no-untyped-def]
            return np.array([heuristic(self.env, s) for s in obs]), None

    def make() -> gymnasium.Env:
        return make_contextual_env("lunarlander")

    items = [{"context": {"gravity": float(g)}, "seed": s} for s, g in enumerate(np.linspace(-16, -8, 12))]
    alone = [evaluate_contexts(Pilot(), make, [item], num_envs=1).completed[0] for item in items]
    assert 0 < sum(alone) < len(items)  # some landed, some did not: the order matters
    for num_envs in (1, 3, 12):
        assert evaluate_contexts(Pilot(), make, items, num_envs=num_envs).completed == alone


def test_an_env_without_a_notion_of_success_records_no_completion(tmp_path):
    """Pendulum has no goal (every episode runs to its time limit): "completed" is unknown, written as
    an empty cell, its rate None, and the table shows "-" where it would print a meaningless 100%."""
    from heldout.protocol.evaluate import EvalResult
    from heldout.protocol.families.contextual import make_contextual_env
    from heldout.protocol.tables import split_table

    class NoTorque:
        def predict(self, obs, deterministic=False):  # type: ignore[no-untyped-def]
            return np.zeros((len(obs), 1), dtype=np.float32), None

    items = [{"context": {"m": 1.0}, "seed": s} for s in range(3)]
    make = lambda: make_contextual_env("pendulum")  # noqa: E731
    result = evaluate_contexts(NoTorque(), make, items, num_envs=2)
    assert result.completed == [None, None, None] and result.completion_rate is None
    text = result.to_csv()
    assert [line.split(",")[4] for line in text.splitlines()[1:]] == ["", "", ""]
    assert EvalResult.from_csv(text, "test").completed == [None, None, None]
    summary = {"splits": {"test": {**result.summary(), "level_set": "m=1"}}, "kind": "contexts"}
    row = split_table(summary).splitlines()[2].split()
    assert row[6] == "-"  # the "completed" column


@pytest.mark.parametrize(("episodes", "expected"), [(99, [33, 33, 33]), (100, [34, 33, 33]), (6, [2, 2, 2])])
def test_an_explicit_list_of_contexts_is_evaluated_evenly(episodes, expected):
    """100 episodes over 3 listed contexts came out 39/34/27 when drawn with replacement."""
    from collections import Counter

    from heldout.contexts import ContextDistribution
    from heldout.envs import CONTEXTUAL_ENVS
    from heldout.protocol.families.contextual import evaluation_contexts

    space = CONTEXTUAL_ENVS.get("cartpole").context_space
    dist = ContextDistribution.parse({"gravity": "5,10,15"}, space.bounds())
    items = evaluation_contexts(dist, space, episodes)
    counts = Counter(item["context"]["gravity"] for item in items)
    assert [counts[g] for g in (5.0, 10.0, 15.0)] == expected
    first = Counter(item["context"]["gravity"] for item in items[:6])  # a prefix is balanced too
    assert sorted(first.values()) == [2, 2, 2]
    assert len({item["seed"] for item in items}) == episodes  # each episode its own reset seed


def test_weighted_contexts_get_their_shares():
    from collections import Counter

    from heldout.contexts import ContextDistribution
    from heldout.envs import CONTEXTUAL_ENVS
    from heldout.protocol.families.contextual import evaluation_contexts

    space = CONTEXTUAL_ENVS.get("cartpole").context_space
    dist = ContextDistribution.parse(
        {"mixture": [{"gravity": 5.0}, {"gravity": 10.0}], "weights": [3, 1]}, space.bounds()
    )
    counts = Counter(item["context"]["gravity"] for item in evaluation_contexts(dist, space, 40))
    assert counts == {5.0: 30, 10.0: 10}
