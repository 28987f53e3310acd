"""SGFD on PPO: saliency-guided feature decorrelation by reweighting the policy loss (ALGORITHMS.md 4.3).

Huang et al. 2023, "Saliency-Guided Features Decorrelation for Out-of-Distribution Generalization in
Reinforcement Learning", NeurIPS, https://arxiv.org/abs/2310.05086 (code: SiliHuang-ai/SGFD, on SAC).
SGFD learns, per batch, sample weights under which the encoder's features are decorrelated (random
Fourier features, StableNet-style), each pair of dimensions weighted by how salient both are for a
classifier of the training environment; the actor loss is then the weighted one. The encoder, critic
and entropy terms are not reweighted.

On PPO (no reference code; the design of ALGORITHMS.md 4.3): the features are the 256-d IMPALA
embedding of each minibatch (a detached copy); the environment label is the Procgen level
(``level mod num_classes``: exact for the usual 200 training levels); the classifier is trained on the
minibatch's features with cross-entropy while its accuracy is below 0.8; the weights ``w`` (sum 1) from
:class:`heldout.agents.decorrelation.SampleWeightLearner` enter the clipped surrogate as ``B * w``
(mean 1) through PPO's :meth:`policy_loss_weights` hook.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.type_aliases import RolloutBufferSamples

from heldout.agents.augment import make_generator
from heldout.agents.decorrelation import (
    LevelClassifier,
    SampleWeightLearner,
    classifier_step,
    saliency_matrix,
)
from heldout.agents.level_buffer import DeviceLevelRolloutBuffer, LevelRolloutBuffer
from heldout.agents.ppo import PPO


class SGFD(PPO):
    """PPO whose policy loss is reweighted to decorrelate the trunk's features, guided by saliency.

    Overrides :meth:`policy_loss_weights` (and :meth:`auxiliary_loss` for its logs only).

    Args:
        policy, env: As :class:`heldout.agents.ppo.PPO`. Envs should report ``info["level_seed"]``
            (heldout's Procgen envs do); without it every sample has level -1 (one class).
        num_classes: E, classes of the level classifier (levels are taken modulo E).
        num_rff: K, random Fourier features per dimension (SGFD ``num_f`` 5).
        weight_epochs: Inner SGD steps of the weight learner (``epochb`` 20).
        weight_lr: Its learning rate (``lrbl`` 1.0).
        decay_pow: Power of its weight-concentration penalty (2).
        presave_ratio: Decay of its memory of features and weights (0.9).
        classifier_lr: SGD learning rate of the classifier (0.01; momentum 0.9, weight decay 1e-4).
        classifier_threshold: The classifier trains only while its minibatch accuracy is below this (0.8).
        saliency_scale: Sum of the saliency vector s (SGFD's 7).
        saliency_guided: False: plain StableNet decorrelation (all pairs weigh 1), an ablation.
        **kwargs: Everything :class:`heldout.agents.ppo.PPO` takes.

    Logged: ``train/sgfd_classifier_accuracy``, ``train/sgfd_max_weight`` (largest B * w),
    ``train/sgfd_decorrelation`` (L_B at the last inner step).
    """

    def __init__(
        self,
        policy: Any = "CnnPolicy",
        env: Any = None,
        num_classes: int = 200,
        num_rff: int = 5,
        weight_epochs: int = 20,
        weight_lr: float = 1.0,
        decay_pow: float = 2.0,
        presave_ratio: float = 0.9,
        classifier_lr: float = 0.01,
        classifier_threshold: float = 0.8,
        saliency_scale: float = 7.0,
        saliency_guided: bool = True,
        **kwargs: Any,
    ) -> None:
        for name, value in (
            ("num_classes", num_classes),
            ("num_rff", num_rff),
            ("weight_epochs", weight_epochs),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= presave_ratio <= 1.0:
            raise ValueError(f"presave_ratio must be in [0, 1], got {presave_ratio!r}")
        self.num_classes = num_classes
        self.num_rff = num_rff
        self.weight_epochs = weight_epochs
        self.weight_lr = float(weight_lr)
        self.decay_pow = float(decay_pow)
        self.presave_ratio = float(presave_ratio)
        self.classifier_lr = float(classifier_lr)
        self.classifier_threshold = float(classifier_threshold)
        self.saliency_scale = float(saliency_scale)
        self.saliency_guided = bool(saliency_guided)
        kwargs.setdefault("rollout_buffer_class", LevelRolloutBuffer)
        super().__init__(policy, env, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "weight_learner", "_step_levels", "_sgfd_logs"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        return [*state_dicts, "level_classifier", "classifier_optimizer"], tensors

    def _setup_model(self) -> None:
        super()._setup_model()
        features_dim = self.policy.features_extractor.features_dim
        self.level_classifier = LevelClassifier(features_dim, self.num_classes).to(self.device)
        self.classifier_optimizer = torch.optim.SGD(
            self.level_classifier.parameters(), lr=self.classifier_lr, momentum=0.9, weight_decay=1e-4
        )
        self.weight_learner = SampleWeightLearner(
            num_f=self.num_rff,
            epochs=self.weight_epochs,
            lr=self.weight_lr,
            decay_pow=self.decay_pow,
            presave_ratio=self.presave_ratio,
            generator=make_generator(self.seed, "sgfd-rff"),
        )
        self._step_levels = np.full(self.n_envs, -1, dtype=np.int64)
        self._sgfd_logs: dict[str, float] = {}
        if isinstance(self.rollout_buffer, (LevelRolloutBuffer, DeviceLevelRolloutBuffer)):
            self.rollout_buffer.level_source = lambda: self._step_levels

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        # Called by SB3's collect_rollouts after each env step and before the transition is added
        # to the rollout buffer: the step's infos name the level each env's last observation was on.
        self._step_levels = np.array([int(info.get("level_seed", -1)) for info in infos], dtype=np.int64)
        super()._update_info_buffer(infos, dones)

    def policy_loss_weights(self, batch: RolloutBufferSamples, outputs: dict[str, Any]) -> torch.Tensor:
        features = outputs["features"]
        if features is None:
            raise TypeError("SGFD needs an SB3 ActorCriticPolicy (one that exposes its features)")
        if isinstance(features, tuple):
            features = features[0]
        z = features.detach().float()
        levels = getattr(batch, "levels", None)
        if levels is None:
            levels = torch.full((z.shape[0],), -1, device=z.device)
        labels = torch.remainder(levels.long(), self.num_classes)
        accuracy = classifier_step(
            self.level_classifier, self.classifier_optimizer, z, labels, self.classifier_threshold
        )
        saliency = None
        if self.saliency_guided:
            saliency = saliency_matrix(self.level_classifier, z, labels, self.saliency_scale)
        w = self.weight_learner.learn(z, saliency)
        weights = w * w.shape[0]
        self._sgfd_logs = {
            "sgfd_classifier_accuracy": accuracy,
            "sgfd_max_weight": float(weights.max()),
            "sgfd_decorrelation": self.weight_learner.history[-1],
        }
        return weights

    def auxiliary_loss(
        self, batch: RolloutBufferSamples, outputs: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        return torch.zeros((), device=self.device), dict(self._sgfd_logs)


__all__ = ["SGFD"]
