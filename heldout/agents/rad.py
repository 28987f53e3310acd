"""RAD: PPO trained on augmented observations, augmented at collection time.

Laskin et al. 2020, "Reinforcement Learning with Augmented Data", NeurIPS.
https://arxiv.org/abs/2004.14990 (Procgen code: pokaxpoka/rad_procgen, ``train_procgen/runner.py``;
ALGORITHMS.md 2.2).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

from heldout.agents.augment import (
    Augmentation,
    Params,
    check_channels,
    make_augmentation,
    make_generator,
    select_params,
)
from heldout.agents.ppo import PPO


class RAD(PPO):
    """RAD as the Procgen reference runs it; overrides :meth:`augment_rollout` (and its device form
    :meth:`augment_rollout_tensor`, which ``engine="heldout"`` calls) and :meth:`after_update`.

    The runner augments each observation before the policy acts on it and stores the augmented one,
    so PPO's ratio pi_theta(a|f(s)) / pi_old(a|f(s)) compares the same f(s): the objective is plain
    PPO on augmented data. Each env holds one parameter set for a whole rollout (one shift, one
    colour, ...), redrawn after every update. Evaluation and ``predict`` see clean observations.

    Augmented frames are stored as ``uint8`` (rounded, clipped to [0, 255]), as the reference runner
    does; for ``random-conv``, whose output is unbounded, that clips it (RAD-Procgen instead puts its
    random convolution inside the network).

    Args:
        policy, env: As :class:`heldout.agents.ppo.PPO`; the observations must be images.
        augmentation: Name of the augmentation (``heldout.agents.augment.AUGMENTATIONS``).
        augmentation_kwargs: Keyword arguments of the augmentation.
        **kwargs: Everything :class:`heldout.agents.ppo.PPO` takes.
    """

    image_only: ClassVar[bool] = True  # augments uint8 frames

    def __init__(
        self,
        policy: Any = "CnnPolicy",
        env: Any = None,
        augmentation: str = "crop",
        augmentation_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.augmentation = augmentation
        self.augmentation_kwargs = dict(augmentation_kwargs or {})
        make_augmentation(augmentation, **self.augmentation_kwargs)  # fail early on a bad name
        super().__init__(policy, env, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "augmenter", "_aug_generator", "_rollout_params"]

    def _setup_model(self) -> None:
        super()._setup_model()
        space = self.observation_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8):
            raise TypeError(f"RAD augments uint8 image observations; got observation space {space}")
        self.augmenter: Augmentation = make_augmentation(self.augmentation, **self.augmentation_kwargs)
        check_channels(self.augmenter, space)
        self._aug_generator = make_generator(self.seed, "augment")
        self._rollout_params: Params | None = None

    def _draw_rollout_params(self) -> None:
        self._rollout_params = self.augmenter.sample(self.n_envs, self._aug_generator)

    def augment_rollout_tensor(self, obs: torch.Tensor, env_index: int | None = None) -> torch.Tensor:
        if self._rollout_params is None:
            self._draw_rollout_params()
        assert self._rollout_params is not None
        batch = obs.to(self.device)
        params = self._rollout_params
        if env_index is not None:
            batch = batch.unsqueeze(0)
            params = select_params(params, env_index)
        out = self.augmenter.apply(batch, params)
        out = (out * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        return out[0] if env_index is not None else out

    def augment_rollout(self, obs: np.ndarray, env_index: int | None = None) -> np.ndarray:
        return self.augment_rollout_tensor(torch.as_tensor(obs, device=self.device), env_index).cpu().numpy()

    def after_update(self) -> None:
        self._draw_rollout_params()


__all__ = ["RAD"]
