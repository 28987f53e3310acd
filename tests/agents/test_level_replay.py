"""PLR / Robust PLR through the agent: the levels the env plays are the ones the sampler handed out
(MiniGrid and Procgen); Robust PLR masks exactly the transitions of new-level episodes out of the
gradient, and never cuts an episode at the rollout boundary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from heldout.agents.level_replay import minibatches, scoring_sampler
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
@pytest.mark.parametrize("name", ["plr", "robust-plr"])
def test_a_plr_run_on_procgen_places_the_sampled_levels_frame_for_frame(name):
    from heldout.envs import make_vec

    model, sampler = _setup("coinrun", name, num_envs=4, n_steps=64)
    trace = _Trace(sampler, 4)
    model.learn(total_timesteps=4 * 64 * 3, callback=trace)
    _assert_played_what_was_handed_out(trace)
    assert max(info["l"] for info in model.ep_info_buffer) > 64  # episodes run on across rollouts
    assert trace.first_frames
    for level, frame in trace.first_frames:  # the frame the slot restarted on is that level's first one
        ref = make_vec("coinrun", num_envs=1, levels=[level], seed=0)
        first = ref.reset()[0].transpose(2, 0, 1)  # the agent sees channel-first frames
        ref.close()
        np.testing.assert_array_equal(frame, first)


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


class _Kinds(_Trace):
    """A :class:`_Trace` that also keeps, per slot, whether each episode handed out is a replay
    episode, and the sampler's train mask of every rollout scored."""

    def __init__(self, sampler, num_envs: int) -> None:
        super().__init__(sampler, num_envs)
        self.kinds: list[list[bool]] = [[] for _ in range(num_envs)]
        self.masks: list[np.ndarray] = []
        self.dones: list[np.ndarray] = []
        traced = sampler.next_level

        def next_level(slot: int) -> int:
            level = traced(slot)
            self.kinds[slot].append(sampler.slot_replay[slot])
            return level

        sampler.next_level = next_level

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self.kinds = [[self.sampler.slot_replay[s]] for s in range(len(self.kinds))]

    def _on_rollout_start(self) -> None:
        if self.sampler.train_mask is not None:
            self.masks.append(self.sampler.train_mask.copy())

    def _on_step(self) -> bool:
        self.dones.append(np.asarray(self.locals["dones"]).copy())
        return super()._on_step()


def _numbered_buffers(steps: int, envs: int):
    """An SB3 buffer and the device one, whose transition (t, env) observes the number t * envs + env."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    from heldout.agents.rollout import DeviceRolloutBuffer

    args = (steps, spaces.Box(0, 255, (1,), np.float32), spaces.Discrete(2))
    buffers = [cls(*args, device="cpu", n_envs=envs) for cls in (RolloutBuffer, DeviceRolloutBuffer)]
    zeros = torch.zeros((envs, 1))
    for t in range(steps):
        obs = (t * envs + np.arange(envs, dtype=np.float32)).reshape(envs, 1)
        for buffer in buffers:
            buffer.add(obs, np.zeros((envs, 1)), np.zeros(envs), np.zeros(envs, bool), zeros, zeros[:, 0])
    for buffer in buffers:
        buffer.compute_returns_and_advantage(zeros, np.zeros(envs, bool))
    return buffers


def test_minibatches_hold_exactly_the_kept_transitions_in_the_buffers_order():
    steps, envs = 6, 3
    mask = np.zeros((steps, envs), dtype=bool)  # (step, env): the transitions that train
    mask[[0, 1, 4], 0] = True
    mask[2:, 2] = True
    keep = np.ascontiguousarray(mask.T).reshape(-1)  # the buffers' env-major flat order
    kept = {t * envs + e for t, e in zip(*np.nonzero(mask))}
    seen = []
    for buffer in _numbered_buffers(steps, envs):
        np.random.seed(5)
        batches = [b.observations.flatten().tolist() for b in minibatches(buffer, 3, keep)]
        seen.append(batches)
        assert [len(b) for b in batches] == [3, 3, 1]
        assert {int(x) for b in batches for x in b} == kept
    assert seen[0] == seen[1]  # both engines' buffers: the same minibatches
    # the order: the one permutation ``get`` draws, restricted to the kept transitions
    np.random.seed(5)
    order = np.random.permutation(steps * envs)
    flat_ids = [(i % steps) * envs + i // steps for i in order if keep[i]]
    assert [x for b in seen[0] for x in b] == flat_ids
    # keep None: the buffer's own minibatches
    buffer = _numbered_buffers(steps, envs)[0]
    np.random.seed(5)
    whole = [b.observations.flatten().tolist() for b in minibatches(buffer, 6, None)]
    assert [len(b) for b in whole] == [6, 6, 6] and sorted(x for b in whole for x in b) == list(range(18))


def _half_filled(sampler) -> None:
    """Six of the twelve training levels in the buffer (filled 0.5 = rho): from the first reset on,
    each episode replays with probability 0.5."""
    sampler.seen[:6] = True
    sampler.scores[:6] = np.linspace(0.1, 0.6, 6)


def test_robust_plr_masks_exactly_the_transitions_of_new_level_episodes():
    """The train mask of every rollout, against the kind (replay or new) of the episode each
    transition belongs to, found independently from the episodes' ends and the kinds handed out."""
    model, sampler = _setup("minigrid-doorkey-5x5", "robust-plr", num_envs=2, n_steps=64)
    _half_filled(sampler)
    trace = _Kinds(sampler, 2)
    model.learn(total_timesteps=2 * 64 * 4, callback=trace)
    trace.masks.append(sampler.train_mask)  # the last rollout's (the others: at each rollout start)
    dones = np.stack(trace.dones)  # (all steps, slots)
    expected = np.zeros(dones.shape, dtype=bool)
    for slot in range(2):
        episode = 0
        for t in range(len(dones)):
            expected[t, slot] = trace.kinds[slot][episode]
            episode += int(dones[t, slot])
    got = np.concatenate(trace.masks)
    np.testing.assert_array_equal(got, expected)
    assert got.any() and not got.all()  # both kinds were played
    assert sampler.new_episodes > 0 and sampler.replay_episodes > 0


def test_robust_plr_takes_no_gradient_step_on_new_levels_only():
    model, sampler = _setup("minigrid-doorkey-5x5", "robust-plr", num_envs=2, n_steps=32)
    before = _params(model)
    model.learn(total_timesteps=64)  # the buffer is empty: every episode plays a new level
    assert sampler.replay_episodes == 0 and not sampler.train_mask.any()
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model)))
    assert model._n_updates == 0 and sampler.student_updates == 0 and model.num_timesteps == 64


def test_robust_plr_never_cuts_an_episode_at_the_rollout_boundary():
    """No slot is reset between rollouts: episodes run on across them (DoorKey-5x5 ends at 250
    steps, far beyond 32-step rollouts), and each slot keeps the episode it was playing."""
    model, sampler = _setup("minigrid-doorkey-5x5", "robust-plr", num_envs=2, n_steps=32)
    trace = _Kinds(sampler, 2)
    model.learn(total_timesteps=2 * 32 * 10, callback=trace)
    _assert_played_what_was_handed_out(trace)
    lengths = [info["l"] for info in model.ep_info_buffer]
    assert lengths and max(lengths) > 32
    # a slot's episodes are exactly the ones its dones end: one more than its dones (the last runs on)
    dones = np.stack(trace.dones)
    assert [len(p) for p in trace.played] == [int(dones[:, slot].sum()) + 1 for slot in range(2)]


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
