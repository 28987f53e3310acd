"""The piece every on-policy agent shares with a learning level sampler (PLR, Robust PLR).

When the training env's level sampler has ``scoring = True`` (:mod:`heldout.envs.plr`), the PPO of
:mod:`heldout.agents.ppo` (and so every agent built on it: rad, drac, ucb-drac, sg-ppo, sgfd):

1. before a rollout, starts the sampler's next batch and resets the env when the sampler decides
   per batch (Robust PLR: :func:`begin_rollout`);
2. during the rollout, records the level seed (``info["level_seed"]``) and ``done`` of every
   transition (:class:`LevelRecorder`);
3. after the rollout, once SB3 has computed GAE and before the update, hands the sampler the level,
   done, advantage, value and return of every transition (:func:`score_rollout`: Jiang et al. 2021,
   "Prioritized Level Replay", level-replay ``update_with_rollouts``);
4. skips the gradient update of a batch the sampler says not to train on (Robust PLR's exploration
   batches; Jiang, Dennis et al. 2021), counting student updates apart from env steps, and logs the
   sampler's statistics under ``plr/`` (:func:`log_sampler`).

Without such a sampler nothing of this runs, so the default (uniform levels) is unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
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
    """Records ``info["level_seed"]`` and ``done`` of every step of one rollout.

    ``info["level_seed"]`` of a step is the level the transition was played on (also on the step
    that ends an episode: the env reports the ended episode's level there, the next level in
    ``reset_infos``).
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.levels: list[np.ndarray] = []
        self.dones: list[np.ndarray] = []

    def reset(self) -> Any:
        return self.venv.reset()

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
        return obs, rewards, dones, infos


def begin_rollout(model: Any, env: VecEnv, sampler: Any) -> None:
    """Robust PLR: when the last batch has been played, draws the next batch's levels and resets
    every slot onto them (dcd resets all envs at the start of each rollout)."""
    if not hasattr(sampler, "begin_batch") or not sampler.needs_new_batch:
        return
    sampler.begin_batch()
    model._last_obs = env.reset()
    model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)


def score_rollout(model: Any, sampler: Any, recorder: LevelRecorder) -> None:
    """Feeds the finished rollout (after GAE, before the update) to the sampler, then commits the
    partial scores of cut episodes (level-replay calls ``after_update`` after the PPO update; no
    level is drawn in between, so the order makes no difference)."""
    buffer = model.rollout_buffer
    steps = buffer.buffer_size
    if len(recorder.levels) != steps:  # the rollout was cut short (a callback stopped training)
        return
    sampler.update_with_rollout(
        levels=np.stack(recorder.levels),
        dones=np.stack(recorder.dones),
        advantages=np.asarray(buffer.advantages).reshape(steps, -1),
        values=np.asarray(buffer.values).reshape(steps, -1),
        returns=np.asarray(buffer.returns).reshape(steps, -1),
        starts=np.asarray(buffer.episode_starts).reshape(steps, -1),
    )
    sampler.after_update()


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
    "begin_rollout",
    "find_level_sampler",
    "log_sampler",
    "score_rollout",
    "scoring_sampler",
]
