"""A rollout buffer that also records the level each transition was played on.

SB3's ``RolloutBuffer`` stores observations, actions, values, log-probs, advantages and returns; agents
that learn from the level identity (SGFD's level classifier, Huang et al. 2023) need the level of each
sample too. :class:`LevelRolloutBuffer` keeps one level per (step, env), read from a callable the agent
sets (heldout envs report ``info["level_seed"]`` at every step), and its minibatches carry a ``levels``
tensor beside SB3's fields.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, NamedTuple

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import VecNormalize

from heldout.agents.rollout import DEVICE_COUNTERPARTS, DeviceRolloutBuffer


class LevelRolloutBufferSamples(NamedTuple):
    """SB3's ``RolloutBufferSamples`` plus the level of each sample."""

    observations: torch.Tensor
    actions: torch.Tensor
    old_values: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    levels: torch.Tensor


class _RecordsLevels:
    """The level recording both level buffers share (a mixin before the SB3 or device buffer): a
    ``levels`` array (buffer_size, n_envs) on the host, -1 where ``level_source`` is None, filled at
    every ``add``."""

    level_source: Callable[[], Any] | None = None
    buffer_size: int
    n_envs: int
    pos: int

    def reset(self) -> None:
        self.levels = np.full((self.buffer_size, self.n_envs), -1, dtype=np.int64)
        super().reset()  # type: ignore[misc]

    def add(self, *args: Any, **kwargs: Any) -> None:
        if self.level_source is not None:
            self.levels[self.pos] = np.asarray(self.level_source(), dtype=np.int64).reshape(self.n_envs)
        super().add(*args, **kwargs)  # type: ignore[misc]


class LevelRolloutBuffer(_RecordsLevels, RolloutBuffer):
    """``RolloutBuffer`` with a ``levels`` array (buffer_size, n_envs) filled at every ``add``.

    Attributes:
        level_source: Returns the level of each env for the transition being added (n_envs,);
            None records -1.
    """

    def get(self, batch_size: int | None = None) -> Generator[LevelRolloutBufferSamples, None, None]:  # type: ignore[override]
        if not self.generator_ready:
            self._flat_levels = self.swap_and_flatten(self.levels).reshape(-1)
        yield from super().get(batch_size)  # type: ignore[misc]

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> LevelRolloutBufferSamples:
        samples = super()._get_samples(batch_inds, env)
        levels = torch.as_tensor(self._flat_levels[batch_inds], device=self.device)
        return LevelRolloutBufferSamples(*samples, levels=levels)


class DeviceLevelRolloutBuffer(_RecordsLevels, DeviceRolloutBuffer):
    """:class:`LevelRolloutBuffer` on the training device (``engine="heldout"``): levels recorded on
    the host at every ``add``, moved to the device once per update, indexed like the other fields.

    Attributes:
        level_source: As :class:`LevelRolloutBuffer`'s.
    """

    def get(self, batch_size: int | None = None) -> Generator[LevelRolloutBufferSamples, None, None]:  # type: ignore[override]
        if not self.generator_ready:
            flat = self.swap_and_flatten(self.levels).reshape(-1)
            self._flat_levels = torch.from_numpy(np.ascontiguousarray(flat)).to(self.device)
        yield from super().get(batch_size)  # type: ignore[misc]

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray | torch.Tensor, env: VecNormalize | None = None
    ) -> LevelRolloutBufferSamples:
        samples = super()._get_samples(batch_inds, env)
        if not isinstance(batch_inds, torch.Tensor):
            batch_inds = torch.as_tensor(batch_inds, device=self.device)
        return LevelRolloutBufferSamples(*samples, levels=self._flat_levels[batch_inds])


DEVICE_COUNTERPARTS[LevelRolloutBuffer] = DeviceLevelRolloutBuffer

__all__ = ["DeviceLevelRolloutBuffer", "LevelRolloutBuffer", "LevelRolloutBufferSamples"]
