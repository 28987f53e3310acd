"""SGQN on DQN: saliency-guided Q-networks for Procgen's discrete actions.

Bertoin et al. 2022, "Look where you look! Saliency-guided Q-networks for generalization in visual
RL", NeurIPS, https://arxiv.org/abs/2209.09203 (code: SuReLI/SGQN, ``DMC/src/algorithms/sgsac.py``
on SAC; ALGORITHMS.md 3.1-3.3). The value-based form, on stable-baselines3's DQN:

Per gradient step, on a replay batch (s, a, r, s'), with the current Q-network, before the step::

    y    = r + gamma (1 - d) max_a' Q_target(s', a')                         # SB3's DQN target
    L_Q  = Huber(Q(s, a), y)                                                  # SB3's DQN loss
    A    = GBP_s[Q(s, a)];  M = 1[max_c |A_c| >= quantile_rho]                # detached
    s~   = s * M + u * (1 - M),  u ~ U[min(s_batch), max(s_batch)]          # one draw per batch
    L_C  = lambda_C * MSE(Q(s, a), Q(s~, a))                                  # grads through both
    Q-network optimiser step on L_Q + L_C

Then, every ``aux_update_freq`` (2) steps, the mask is recomputed with the updated network and the
attribution-prediction head learns it on an augmented observation, with its own Adam (lr 3e-4,
betas (0.9, 0.999)) over the decoder *and the Q-network's encoder* (shared, as in SGQN)::

    L_SL = BCEWithLogits(Dec(f(tau(s)), onehot(a)), M)

Reference values: rho 0.9, lambda_C 0.5, aux lr 3e-4, aux every 2 steps, batch 128. SGQN's DMC
augmentation tau is random overlay with Places365 images (not available here); its robot-env variant
uses random convolution, the default here. The trunk is heldout's IMPALA-CNN (``nn.ReLU`` modules,
as guided backprop needs) with a linear Q head.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from torch.nn import functional as F  # noqa: N812

from heldout.agents.attribution_decoder import AttributionDecoder, action_encoding
from heldout.agents.augment import make_augmentation, make_generator
from heldout.agents.networks import ImpalaCNN
from heldout.agents.saliency import (
    ATTRIBUTION_METHODS,
    attribute,
    check_choice,
    masked_observation,
    quantile_mask,
)
from heldout.agents.sg_ppo import batch_fill

#: Q-network keyword arguments filled in for ``"CnnPolicy"``: the IMPALA-CNN trunk, a linear Q head.
IMPALA_Q_KWARGS: dict[str, Any] = {
    "features_extractor_class": ImpalaCNN,
    "features_extractor_kwargs": {"features_dim": 256},
    "net_arch": [],
}


class SGQN(DQN):
    """DQN with SGQN's saliency consistency and attribution-prediction losses.

    Args:
        policy, env: As SB3's ``DQN``; observations must be images, actions ``Discrete``.
        learning_rate: Q-network Adam learning rate (SB3's DQN default 1e-4).
        buffer_size: Replay capacity (50,000 by default: 64x64x3 frames take 24 kB a transition).
        batch_size: Replay batch (SGQN: 128).
        quantile: rho of the mask (SGQN DMC default 0.9).
        consistency_coef: lambda_C (0.5).
        attribution_method: ``"guided_backprop"`` (SGQN) or ``"gradient"``.
        aux_learning_rate: Adam learning rate of the attribution predictor (3e-4).
        aux_update_freq: Gradient steps between attribution-prediction updates (2; 0: never).
        attribution_augmentation: tau, an ``heldout.agents.augment`` name (``"random-conv"``).
        policy_kwargs: For ``"CnnPolicy"`` merged over :data:`IMPALA_Q_KWARGS` (the user's keys win).
        **kwargs: Everything SB3's ``DQN`` takes.

    Logged: ``train/loss`` (L_Q), ``train/sgqn_consistency`` (MSE before lambda_C),
    ``train/sgqn_attribution_loss`` (L_SL), ``train/sgqn_mask_share``.
    """

    #: Whether the agent works on image observations only (as :attr:`heldout.agents.ppo.PPO.image_only`).
    image_only: ClassVar[bool] = True  # saliency masks and augmentations over pixels

    def __init__(
        self,
        policy: Any = "CnnPolicy",
        env: Any = None,
        learning_rate: float = 1e-4,
        buffer_size: int = 50_000,
        batch_size: int = 128,
        quantile: float = 0.9,
        consistency_coef: float = 0.5,
        attribution_method: str = "guided_backprop",
        aux_learning_rate: float = 3e-4,
        aux_update_freq: int = 2,
        attribution_augmentation: str = "random-conv",
        policy_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        check_choice("attribution_method", attribution_method, ATTRIBUTION_METHODS)
        if not 0.0 <= quantile < 1.0:
            raise ValueError(f"quantile must be in [0, 1), got {quantile!r}")
        if consistency_coef < 0:
            raise ValueError(f"consistency_coef must be >= 0, got {consistency_coef!r}")
        if isinstance(aux_update_freq, bool) or not isinstance(aux_update_freq, int) or aux_update_freq < 0:
            raise ValueError(f"aux_update_freq must be a non-negative integer, got {aux_update_freq!r}")
        make_augmentation(attribution_augmentation)
        self.quantile = float(quantile)
        self.consistency_coef = float(consistency_coef)
        self.attribution_method = attribution_method
        self.aux_learning_rate = float(aux_learning_rate)
        self.aux_update_freq = aux_update_freq
        self.attribution_augmentation = attribution_augmentation
        self._sgqn_steps = 0
        if policy == "CnnPolicy":
            policy_kwargs = {**copy.deepcopy(IMPALA_Q_KWARGS), **(policy_kwargs or {})}
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            batch_size=batch_size,
            policy_kwargs=policy_kwargs,
            **kwargs,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "augmenter", "_aug_generator", "_fill_generator"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        return [*state_dicts, "attribution_decoder", "aux_optimizer"], tensors

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.action_space, spaces.Discrete):
            raise TypeError(f"SGQN on DQN needs Discrete actions, got {self.action_space}")
        space = self.policy.observation_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3):
            raise TypeError(f"SGQN needs image observations; got observation space {space}")
        self.attribution_decoder = AttributionDecoder(
            self.q_net.features_extractor.features_dim,
            int(self.action_space.n),
            tuple(int(d) for d in space.shape),  # type: ignore[arg-type]
        ).to(self.device)
        # SGQN's aux optimiser: the decoder and the (shared) encoder of the Q-network.
        params = list(self.attribution_decoder.parameters()) + list(
            self.q_net.features_extractor.parameters()
        )
        self.aux_optimizer = torch.optim.Adam(params, lr=self.aux_learning_rate, betas=(0.9, 0.999))
        self.augmenter = make_augmentation(self.attribution_augmentation)
        self._aug_generator = make_generator(self.seed, "sgqn-attribution-augment")
        self._fill_generator = make_generator(self.seed, "sgqn-fill")

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q(s, a) of the online network, (B, 1)."""
        return torch.gather(self.q_net(obs), dim=1, index=actions.long().reshape(-1, 1))

    def saliency_mask(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The quantile mask of the guided backprop of Q(s, a) (detached)."""
        attr = attribute(
            lambda x: self.q_values(x, actions).reshape(-1),
            obs,
            method=self.attribution_method,
            module=self.q_net,
        )
        return quantile_mask(attr, self.quantile)

    def consistency_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, current_q: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``MSE(Q(s, a), Q(s~, a))``, gradients through both."""
        fill = batch_fill(obs, "batch", self._fill_generator)
        return F.mse_loss(current_q, self.q_values(masked_observation(obs, mask, fill), actions))

    def attribution_loss(self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """L_SL: BCE between the decoder's logits on f(tau(s)) and the mask of channel 0."""
        augmented = self.augmenter(obs / 255.0, self._aug_generator) * 255.0
        features = self.q_net.extract_features(augmented, self.q_net.features_extractor)
        logits = self.attribution_decoder(features, action_encoding(actions, self.action_space))
        return F.binary_cross_entropy_with_logits(logits, mask[:, :1].float())

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's DQN update plus SGQN's consistency loss and attribution-prediction step."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        logs: dict[str, list[float]] = {"loss": [], "sgqn_consistency": [], "sgqn_mask_share": []}
        aux_losses: list[float] = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if getattr(data, "discounts", None) is not None else self.gamma
            with torch.no_grad():
                next_q = self.q_net_target(data.next_observations).max(dim=1).values.reshape(-1, 1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            obs = data.observations.float()
            actions = data.actions.long()
            current_q = self.q_values(obs, actions)
            td_loss = F.smooth_l1_loss(current_q, target_q)
            mask = self.saliency_mask(obs, actions)
            consistency = self.consistency_loss(obs, actions, current_q, mask)
            loss = td_loss + self.consistency_coef * consistency
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            logs["loss"].append(td_loss.item())
            logs["sgqn_consistency"].append(consistency.item())
            logs["sgqn_mask_share"].append(mask.float().mean().item())

            self._sgqn_steps += 1
            if self.aux_update_freq and self._sgqn_steps % self.aux_update_freq == 0:
                mask = self.saliency_mask(obs, actions)  # with the updated Q-network
                aux = self.attribution_loss(obs, actions, mask)
                self.aux_optimizer.zero_grad()
                aux.backward()
                self.aux_optimizer.step()
                aux_losses.append(aux.item())

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))
        if aux_losses:
            self.logger.record("train/sgqn_attribution_loss", float(np.mean(aux_losses)))


__all__ = ["IMPALA_Q_KWARGS", "SGQN"]
