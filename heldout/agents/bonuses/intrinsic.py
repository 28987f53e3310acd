"""From raw bonuses to the intrinsic reward an on-policy agent trains on, in either rollout engine.

:class:`IntrinsicReward` holds a :class:`~heldout.agents.bonuses.base.Bonus`, its normaliser and its
coefficient; :class:`BonusVecEnv` is the thin VecEnv wrapper through which
:meth:`heldout.agents.ppo.PPO.collect_rollouts` (both engines, every agent built on it) sees
``r = r_ext + coef * b / s`` during a rollout, where ``b`` is the raw bonus of the state each step
reached and ``s`` the running standard deviation of raw bonuses. Evaluation builds its own envs and
never sees the wrapper: evaluation returns are extrinsic only.

Per step, for every env slot: the state reached is the new observation, or, where the episode just
ended, its ``terminal_observation`` (when the env gives none, as Procgen's, the step's bonus is 0);
the bonus scores it (updating its memory); then slots whose episode ended start a new one with the
reset observation (episodic memories reset and take it; global counts count it).

Normalisation (e3b ``update_running_moments`` / ``get_running_std``, with ``--reward_norm int``): the
raw bonus is divided by the standard deviation of all raw bonuses so far (``norm="std"``), skipped
while it is 0, without subtracting a mean. ``norm="reference"`` reproduces e3b's estimator, which
counts a batch of T x B bonuses as T (here: one step of all slots as 1), so its divisor is near
``sqrt(B) * mean``, not a standard deviation (ALGORITHMS-exploration.md, pitfall 2); ``"none"`` divides
by nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from torch import nn

from heldout.agents.bonuses.base import Bonus, Keys


class IntrinsicReward(nn.Module):
    """A bonus with its running normaliser and coefficient, and the rollout's intrinsic statistics.

    Its ``state_dict`` is everything a resumed run needs: the bonus's networks, optimisers, counts and
    episodic memories, and the normaliser's moments.

    Args:
        bonus: The raw bonus.
        name: The bonus's registered name (for logs and messages).
        coef: beta, the intrinsic reward's weight.
        norm: ``"std"``, ``"reference"`` or ``"none"`` (module docstring).
    """

    def __init__(self, bonus: Bonus, name: str, coef: float, norm: str) -> None:
        super().__init__()
        self.bonus, self.name, self.coef, self.norm = bonus, name, coef, norm
        # the running moments of raw bonuses (float64, on the host) and whether the memories hold a start
        self.moment_count, self.moment_total, self.moment_m2 = 0.0, 0.0, 0.0
        self.started = False
        self._rollout: list[np.ndarray] = []
        self._raw: list[np.ndarray] = []

    # -- normalisation ------------------------------------------------------------------------

    def update_moments(self, raw: torch.Tensor) -> None:
        """Adds one step's raw bonuses (n_envs,) to the running moments (Chan et al.'s parallel update,
        as e3b's ``update_running_moments``; counted as 1 with ``norm="reference"``)."""
        values = raw.detach().double().cpu().numpy()
        n_new = 1.0 if self.norm == "reference" else float(values.size)
        total = float(values.sum())
        mean_new = total / n_new
        n_old = self.moment_count
        mean_old = self.moment_total / n_old if n_old else 0.0
        m2_new = (
            float(((values - mean_new) ** 2).sum())
            + n_old * n_new / (n_old + n_new) * (mean_new - mean_old) ** 2
        )
        self.moment_count += n_new
        self.moment_total += total
        self.moment_m2 += m2_new

    def running_std(self) -> float:
        """``sqrt(M2 / count)`` of the raw bonuses so far (0 before any)."""
        return float(np.sqrt(self.moment_m2 / self.moment_count)) if self.moment_count else 0.0

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "moments": [self.moment_count, self.moment_total, self.moment_m2],
            "started": self.started,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.moment_count, self.moment_total, self.moment_m2 = (float(x) for x in state["moments"])
        self.started = bool(state["started"])

    def rewards(self, raw: torch.Tensor) -> np.ndarray:
        """The intrinsic rewards ``coef * raw / s`` of one step, updating the moments first."""
        scaled = raw.detach().double().cpu()
        if self.norm != "none":
            self.update_moments(raw)
            std = self.running_std()
            if std > 0:
                scaled = scaled / std
        return (self.coef * scaled).numpy().astype(np.float32)

    # -- one step ----------------------------------------------------------------------------

    def keys(self, obs: np.ndarray, infos: list[dict[str, Any]] | None) -> Keys:
        """The state keys the bonus reads: each slot's observation bytes (``"obs"``) or the bytes of
        its ``info[name]`` (None where the info lacks it)."""
        out: Keys = {}
        for name in self.bonus.key_names:
            if name == "obs":
                out[name] = [np.ascontiguousarray(row).tobytes() for row in obs]
            else:
                out[name] = [
                    None if infos is None or name not in infos[i] else np.asarray(infos[i][name]).tobytes()
                    for i in range(len(obs))
                ]
        return out

    def begin(self, obs: np.ndarray, device: torch.device) -> None:
        """Before the first rollout of a run: every slot starts an episode with ``obs``."""
        if self.started:
            return
        mask = torch.ones(len(obs), dtype=torch.bool)
        self.bonus.new_episodes(torch.as_tensor(obs, device=device), self.keys(obs, None), mask)
        self.started = True

    def step(
        self, new_obs: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]], device: torch.device
    ) -> np.ndarray:
        """The intrinsic rewards (n_envs,) of one env step; updates the bonus's memories."""
        reached = np.array(new_obs, copy=True)
        known = np.ones(len(dones), dtype=bool)
        for i in np.flatnonzero(dones):
            terminal = infos[i].get("terminal_observation")
            if terminal is None:
                known[i] = False
            else:
                reached[i] = terminal
        raw = self.bonus.score(torch.as_tensor(reached, device=device), self.keys(reached, infos))
        raw = raw.float().cpu() * torch.from_numpy(known)
        done_mask = torch.from_numpy(np.asarray(dones, dtype=bool))
        if bool(done_mask.any()):
            self.bonus.new_episodes(
                torch.as_tensor(new_obs, device=device), self.keys(new_obs, None), done_mask
            )
        intrinsic = self.rewards(raw)
        self._raw.append(raw.numpy())
        self._rollout.append(intrinsic)
        return intrinsic

    def rollout_logs(self) -> dict[str, float]:
        """Means over the rollout's steps and slots: ``intrinsic`` (the reward added), ``raw`` and
        ``std`` (the divisor); clears them."""
        if not self._rollout:
            return {}
        logs = {
            "intrinsic": float(np.mean(self._rollout)),
            "raw": float(np.mean(self._raw)),
            "std": self.running_std(),
        }
        self._rollout, self._raw = [], []
        return logs

    # -- learning -----------------------------------------------------------------------------

    def learn(self, buffer: Any, last_obs: np.ndarray, last_dones: np.ndarray) -> dict[str, float]:
        """Trains the bonus on the rollout in ``buffer`` (SB3's or the device buffer) and the
        observation after it; returns the bonus's logs."""
        obs, actions, starts = rollout_arrays(buffer)
        device = obs.device
        last = torch.as_tensor(np.asarray(last_obs), device=device).reshape(1, *obs.shape[1:]).to(obs.dtype)
        done = torch.as_tensor(np.asarray(last_dones, dtype=bool), device=device).reshape(1, -1)
        obs = torch.cat([obs, last])
        starts = torch.cat([starts.to(device), done])
        return self.bonus.learn(obs, actions.to(device), starts)


def rollout_arrays(buffer: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(observations (T, E, ...), actions (T, E), episode_starts (T, E) bool)`` of a rollout buffer,
    on the buffer's device (no copy on the device buffer before its minibatches are drawn)."""
    steps, envs = buffer.buffer_size, buffer.n_envs

    def field(name: str) -> torch.Tensor:
        getter = getattr(buffer, "device_tensor", None)
        value = (
            getter(name)
            if getter is not None
            else torch.as_tensor(getattr(buffer, name), device=buffer.device)
        )
        if getattr(buffer, "generator_ready", False) and name not in ("rewards", "episode_starts"):
            value = value.reshape(envs, steps, *value.shape[1:]).transpose(0, 1)  # env-major flat -> (T, E)
        return value.reshape(steps, envs, *value.shape[2:])

    obs = field("observations").to(buffer.device)
    actions = field("actions").reshape(steps, envs, -1)[..., 0]
    starts = field("episode_starts").bool()
    return obs, actions, starts


class BonusVecEnv(VecEnvWrapper):
    """Adds the intrinsic reward of :class:`IntrinsicReward` to every step's reward during a rollout.

    Args:
        venv: The training VecEnv.
        intrinsic: The run's intrinsic reward.
        device: Where the bonus's networks run.
    """

    def __init__(self, venv: VecEnv, intrinsic: IntrinsicReward, device: torch.device) -> None:
        super().__init__(venv)
        self.intrinsic, self.device = intrinsic, device

    def reset(self) -> Any:
        obs = self.venv.reset()
        self.intrinsic.started = False  # every slot starts afresh
        self.intrinsic.begin(obs, self.device)
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        intrinsic = self.intrinsic.step(obs, dones, infos, self.device)
        return obs, np.asarray(rewards, dtype=np.float32) + intrinsic, dones, infos


__all__ = ["BonusVecEnv", "IntrinsicReward", "rollout_arrays"]
