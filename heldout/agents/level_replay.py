"""The piece every on-policy agent shares with a learning level sampler (PLR, Robust PLR).

When the training env's level sampler has ``scoring = True`` (:mod:`heldout.envs.plr`), the PPO of
:mod:`heldout.agents.ppo` (and so every agent built on it: rad, drac, ucb-drac, sg-ppo, sgfd):

1. during the rollout, records the level seed (``info["level_seed"]``), ``done`` and reward of
   every transition, and whether the episode it belongs to trains the agent (the sampler's
   :meth:`training_slots`, read before each step: Robust PLR's new-level episodes do not)
   (:class:`LevelRecorder`);
2. after the rollout, once SB3 has computed GAE and before the update, hands the sampler the level,
   done, advantage, value, return and reward of every transition (:func:`score_rollout`: Jiang et
   al. 2021, "Prioritized Level Replay", level-replay ``update_with_rollouts``);
3. updates on the transitions that train only (:func:`update_mask` and :func:`minibatches`: Robust
   PLR's no gradient on new levels, Jiang, Dennis et al. 2021), skipping an update with none,
   counting student updates apart from env steps, and logs the sampler's statistics under ``plr/``
   (:func:`log_sampler`).

Episodes are never cut at the rollout boundary: no slot is reset between rollouts. Without such a
sampler nothing of this runs, so the default (uniform levels) is unchanged.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn


def find_level_sampler(venv: Any) -> Any:
    """The level sampler of an env chain (the native Procgen env's, or that of the first gymnasium
    env inside a ``DummyVecEnv``), or None."""
    layer = venv
    for _ in range(64):
        if layer is None:
            return None
        sampler = vars(layer).get("level_sampler") if hasattr(layer, "__dict__") else None
        if sampler is not None:
            return sampler
        if isinstance(layer, DummyVecEnv):
            env = layer.envs[0]
            return getattr(getattr(env, "unwrapped", env), "level_sampler", None)
        layer = vars(layer).get("venv") if hasattr(layer, "__dict__") else None
    return None


def scoring_sampler(venv: Any) -> Any:
    """The env's level sampler if it learns from rollouts (``scoring = True``), else None."""
    sampler = find_level_sampler(venv)
    return sampler if getattr(sampler, "scoring", False) else None


class LevelRecorder(VecEnvWrapper):
    """Records ``info["level_seed"]``, ``done`` and the reward of every step of one rollout, and
    whether each transition trains the agent.

    ``info["level_seed"]`` of a step is the level the transition was played on (also on the step
    that ends an episode: the env reports the ended episode's level there, the next level in
    ``reset_infos``). Whether a transition trains is the sampler's :meth:`training_slots` read
    before the step, while the slot still plays the episode the transition belongs to (the sampler
    is asked for the next episode's level during the step). The rewards are copied as the env
    returns them, before SB3 adds a truncation bootstrap.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.sampler = scoring_sampler(venv)
        self.levels: list[np.ndarray] = []
        self.dones: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.trains: list[np.ndarray] = []

    def reset(self) -> Any:
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        if self.sampler is None:
            self.trains.append(np.ones(self.num_envs, dtype=bool))
        else:
            self.trains.append(np.asarray(self.sampler.training_slots(self.num_envs), dtype=bool))
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        try:
            levels = np.array([int(info["level_seed"]) for info in infos], dtype=np.int64)
        except KeyError:
            raise RuntimeError(
                "a learning level sampler needs info['level_seed'] at every step; a wrapper of the "
                "training env dropped it"
            ) from None
        self.levels.append(levels)
        self.dones.append(np.asarray(dones, dtype=bool).copy())
        self.rewards.append(np.asarray(rewards, dtype=np.float64).reshape(-1).copy())
        return obs, rewards, dones, infos


def score_rollout(model: Any, sampler: Any, recorder: LevelRecorder) -> None:
    """Feeds the finished rollout (after GAE, before the update) to the sampler, then commits the
    partial scores of cut episodes (level-replay calls ``after_update`` after the PPO update; no
    level is drawn in between, so the order makes no difference). Keeps which transitions train
    (``sampler.train_mask``, shape (steps, slots)) for :func:`update_mask`."""
    buffer = model.rollout_buffer
    steps = buffer.buffer_size
    sampler.train_mask = None
    if len(recorder.levels) != steps:  # the rollout was cut short (a callback stopped training)
        return
    sampler.update_with_rollout(
        levels=np.stack(recorder.levels),
        dones=np.stack(recorder.dones),
        advantages=np.asarray(buffer.advantages).reshape(steps, -1),
        values=np.asarray(buffer.values).reshape(steps, -1),
        returns=np.asarray(buffer.returns).reshape(steps, -1),
        starts=np.asarray(buffer.episode_starts).reshape(steps, -1),
        rewards=np.stack(recorder.rewards),
    )
    sampler.after_update()
    sampler.train_mask = np.stack(recorder.trains)


def update_mask(model: Any, sampler: Any) -> np.ndarray | None:
    """Before an update: which transitions of the rollout train, as a flat mask in the order of
    the buffer's minibatch indices (env-major: ``env * steps + step``), or None for all of them.
    Counts a student update when any transition trains and logs the sampler (:func:`log_sampler`)."""
    mask = getattr(sampler, "train_mask", None)
    keep = None if mask is None or mask.all() else np.ascontiguousarray(mask.T).reshape(-1)
    trains = keep is None or bool(keep.any())
    sampler.student_updates += int(trains)
    model.logger.record("plr/trained_fraction", 1.0 if keep is None else float(keep.mean()))
    log_sampler(model, sampler)
    return keep


def minibatches(
    buffer: RolloutBuffer, batch_size: int, keep: np.ndarray | None
) -> Generator[Any, None, None]:
    """The buffer's minibatches over the transitions ``keep`` marks (all: ``buffer.get``).

    The buffer draws its permutation and prepares its fields exactly as ``get`` does (its
    ``_get_samples`` is briefly replaced so that the one batch of ``get(None)`` hands back the
    permuted indices instead of the samples); the permutation restricted to the kept indices is
    then cut into minibatches of ``batch_size``, so both engines' buffers give the same batches."""
    if keep is None:
        yield from buffer.get(batch_size)
        return
    buffer._get_samples = lambda batch_inds, env=None: batch_inds  # type: ignore[method-assign]
    try:
        (indices,) = list(buffer.get(None))
    finally:
        del buffer._get_samples
    if isinstance(indices, torch.Tensor):
        kept = indices[torch.as_tensor(keep, device=indices.device)[indices]]
    else:
        kept = indices[keep[indices]]
    for start in range(0, len(kept), batch_size):
        yield buffer._get_samples(kept[start : start + batch_size])


def log_sampler(model: Any, sampler: Any) -> None:
    """``plr/<stat>`` scalars (entropy of P_replay, fraction seen, student updates, env steps, ...)
    and ``plr/level_weights`` (a TensorBoard histogram of P_replay over the seen levels)."""
    for key, value in sampler.stats().items():
        model.logger.record(f"plr/{key}", value)
    model.logger.record("plr/env_steps", int(model.num_timesteps))
    weights = sampler.sample_weights()[sampler.seen]
    if weights.size:
        model.logger.record(
            "plr/level_weights", weights.astype(np.float32), exclude=("stdout", "log", "json", "csv")
        )


__all__ = [
    "LevelRecorder",
    "find_level_sampler",
    "log_sampler",
    "minibatches",
    "score_rollout",
    "scoring_sampler",
    "update_mask",
]
