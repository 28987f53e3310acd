"""Evaluation tells a model each step's rewards (``model.observe``) and keeps a stateful model's slots
aligned: what the offline Decision Transformer needs to lower its return-to-go as it plays."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from heldout.protocol.evaluate import evaluate, play_episodes


class _Counter(gym.Env):
    """Observation: the step index; reward at step t: t + 1; the episode lasts ``length`` steps."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.t, self.length = 0, int((options or {})["length"])
        return np.array([0.0], np.float32), {}

    def step(self, action: int):
        self.t += 1
        return np.array([self.t], np.float32), float(self.t), self.t >= self.length, False, {}


class _Tally:
    """A stateful stand-in: each slot sums the rewards ``observe`` reports since its episode started,
    and checks at every step that this equals what the env paid (1 + 2 + ... + t at step t)."""

    def __init__(self) -> None:
        self.totals: np.ndarray | None = None
        self.checked = 0
        self.observed: list[np.ndarray] = []

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ):
        if self.totals is None:
            self.totals, self.idle = np.zeros(len(obs)), np.zeros(len(obs), dtype=bool)
        assert episode_start is not None and len(episode_start) == len(obs) == len(self.totals)
        start, t = np.asarray(episode_start), obs[:, 0]
        self.totals[start] = 0.0
        self.idle |= start & (t != 0)  # a slot with no entry left idles on its last episode's end
        live = ~self.idle
        assert np.array_equal(self.totals[live], (t * (t + 1) / 2)[live])
        self.checked += int(live.sum())
        return np.zeros(len(obs), dtype=np.int64), "window"

    def observe(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        self.observed.append(np.asarray(rewards))
        self.totals += rewards


def test_play_episodes_reports_every_reward_to_a_stateful_model_slot_by_slot() -> None:
    model = _Tally()
    lengths = [3, 1, 5, 2, 4]
    rows = play_episodes(model, _Counter, [{"options": {"length": n}} for n in lengths], num_envs=2)
    assert [r[1] for r in rows] == [n * (n + 1) / 2 for n in lengths]
    assert model.checked >= sum(lengths)  # every step was checked against the env's pay
    assert {len(r) for r in model.observed} == {2}  # the full batch of slots, idle ones included
    assert sum(r.sum() for r in model.observed) == sum(n * (n + 1) / 2 for n in lengths)


def test_a_bare_predict_still_works() -> None:
    class Bare:
        def predict(self, obs, deterministic=False):  # type: ignore[no-untyped-def]
            return np.zeros(len(obs), dtype=np.int64), None

    rows = play_episodes(Bare(), _Counter, [{"options": {"length": 2}}] * 3, num_envs=2)
    assert [r[2] for r in rows] == [2, 2, 2]


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.rewards = 0.0

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ):
        self.calls.append("predict")
        return np.arange(len(obs)) % 15, "state"

    def observe(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        assert len(rewards) == len(dones) == 2
        self.calls.append("observe")
        self.rewards += float(np.sum(rewards))


@pytest.mark.slow  # ~25 s on the loaded 2-core machine (Procgen env start-up)
def test_evaluate_calls_observe_after_each_vectorized_step() -> None:
    model = _Recorder()
    result = evaluate(model, "bigfish", [100_000_000, 100_000_001], num_envs=2)
    assert model.calls == ["predict", "observe"] * (len(model.calls) // 2)
    assert model.rewards >= sum(result.returns)  # the listed episodes' rewards all went through observe
    assert len(model.calls) // 2 >= max(result.lengths)  # one observe per step
