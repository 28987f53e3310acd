"""PLR / Robust PLR through the agent: the levels the env plays are the ones the sampler handed out
(MiniGrid and Procgen), and Robust PLR makes no gradient step on an exploration batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from heldout.agents.level_replay import scoring_sampler
from heldout.agents.ppo import PPO
from heldout.protocol.config import TrainConfig
from heldout.protocol.families import family_for


def _setup(env: str, sampler: str, num_envs: int = 4, n_steps: int = 32, **sampler_kwargs):
    config = TrainConfig(
        env=env,
        num_envs=num_envs,
        num_levels=12,
        reward_norm=False,
        level_sampler=sampler,
        sampler_kwargs=sampler_kwargs,
    )
    family = family_for(env)
    venv = family.make_train_env(config, family.split(config))
    kwargs = family.agent_kwargs(config)
    kwargs.update(n_steps=n_steps, batch_size=64, n_epochs=1)
    if env == "coinrun":
        kwargs["policy_kwargs"] = {"features_extractor_kwargs": {"features_dim": 16, "depths": (4, 4, 4)}}
    model = PPO(env=venv, seed=0, device="cpu", **kwargs)
    return model, scoring_sampler(venv)


class _Trace(BaseCallback):
    """Per slot: the level of every episode played (info["level_seed"]) and the levels handed out."""

    def __init__(self, sampler, num_envs: int) -> None:
        super().__init__()
        self.sampler = sampler
        self.handed: list[list[int]] = [[] for _ in range(num_envs)]
        self.played: list[list[int]] = [[] for _ in range(num_envs)]
        self.first_frames: list[tuple[int, np.ndarray]] = []
        real = sampler.next_level

        def next_level(slot: int) -> int:
            level = real(slot)
            self.handed[slot].append(level)
            return level

        sampler.next_level = next_level
        self._new_episode = [True] * num_envs

    def _on_training_start(self) -> None:
        # the levels handed out before learning began: each slot plays its last one now
        self.handed = [[self.sampler.slot_levels[s]] for s in range(len(self.handed))]

    def _on_step(self) -> bool:
        for slot, info in enumerate(self.locals["infos"]):
            if self._new_episode[slot]:
                self.played[slot].append(int(info["level_seed"]))
            assert int(info["level_seed"]) == self.played[slot][-1]  # one level a whole episode
            self._new_episode[slot] = bool(self.locals["dones"][slot])
            if self.locals["dones"][slot]:
                self.first_frames.append(
                    (self.sampler.slot_levels[slot], self.locals["new_obs"][slot].copy())
                )
        return True


def _assert_played_what_was_handed_out(trace: _Trace) -> None:
    for handed, played in zip(trace.handed, trace.played):
        assert played == handed[: len(played)]
        assert len(handed) - len(played) in (0, 1)  # the last hand-out may not have been stepped yet
    assert sum(len(p) for p in trace.played) > len(trace.played)  # some slot played several episodes


def test_a_plr_run_on_minigrid_plays_exactly_the_levels_the_sampler_handed_out():
    # 2 slots x 256 steps: each slot ends at least one episode (DoorKey-5x5 truncates at 250)
    model, sampler = _setup("minigrid-doorkey-5x5", "plr", num_envs=2, n_steps=128)
    trace = _Trace(sampler, 2)
    model.learn(total_timesteps=2 * 128 * 2, callback=trace)
    _assert_played_what_was_handed_out(trace)
    assert sampler.rollouts == 2 and sampler.seen.any()
    assert set(sampler.levels.tolist()) == set(range(12))


@pytest.mark.slow
def test_a_plr_run_on_procgen_places_the_sampled_levels_frame_for_frame():
    from heldout.envs import make_vec

    model, sampler = _setup("coinrun", "plr", num_envs=4, n_steps=64)
    trace = _Trace(sampler, 4)
    model.learn(total_timesteps=4 * 64 * 3, callback=trace)
    _assert_played_what_was_handed_out(trace)
    assert trace.first_frames
    for level, frame in trace.first_frames:  # the frame the slot restarted on is that level's first one
        ref = make_vec("coinrun", num_envs=1, levels=[level], seed=0)
        first = ref.reset()[0].transpose(2, 0, 1)  # the agent sees channel-first frames
        ref.close()
        np.testing.assert_array_equal(frame, first)


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def test_robust_plr_takes_no_gradient_step_on_an_exploration_batch_and_one_on_a_replay_batch():
    model, sampler = _setup("minigrid-doorkey-5x5", "robust-plr", num_envs=2, n_steps=32)
    before = _params(model)
    model.learn(total_timesteps=64)  # the first batch: the buffer is empty, so new levels
    assert sampler.batches == 1 and not sampler.batch_replay
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model)))
    assert model._n_updates == 0 and sampler.student_updates == 0 and model.num_timesteps == 64
    assert sampler.seen.sum() == 2  # but its levels were scored into the buffer
    sampler.rho, sampler.replay_prob, sampler.schedule = 0.0, 1.0, "fixed"
    model.learn(total_timesteps=64, reset_num_timesteps=False)
    assert sampler.batches == 2 and sampler.batch_replay
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(model)))
    assert sampler.student_updates == 1 and model.num_timesteps == 128


def test_the_uniform_default_builds_the_env_as_before_and_trains_bit_identically():
    """uniform (the default) adds no sampler: the same env and the same weights as a config that
    never heard of level samplers."""
    from heldout.protocol.families.base import train_vec_env

    config = TrainConfig(env="minigrid-doorkey-5x5", num_envs=2, num_levels=12, reward_norm=False)
    family = family_for(config.env)
    split = family.split(config)
    venv = family.make_train_env(config, split)
    assert scoring_sampler(venv) is None
    plain = train_vec_env(config, lambda: family.make_env(split.train), None)  # what it built before
    weights = []
    for env in (venv, plain):
        kwargs = {**family.agent_kwargs(config), "n_steps": 32, "batch_size": 64, "n_epochs": 1}
        model = PPO(env=env, seed=0, device="cpu", **kwargs)
        model.learn(total_timesteps=128)
        weights.append(_params(model))
    assert all(torch.equal(a, b) for a, b in zip(*weights))
