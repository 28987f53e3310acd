"""DrAC: PPO with policy and value regularisers for invariance to an image augmentation.

Raileanu et al. 2021, "Automatic Data Augmentation for Generalization in Reinforcement Learning",
NeurIPS. https://arxiv.org/abs/2006.12862 (code: rraileanu/auto-drac, ``ucb_rl2_meta/algo/drac.py``;
ALGORITHMS.md 2.3).

    J_DrAC = J_PPO - alpha_r * (G_pi + G_V)
    G_pi = KL[pi(.|s) || pi(.|f(s))],   G_V = (V(s) - V(f(s)))^2

The clean predictions pi(.|s) and V(s) are targets: no gradient reaches them from the regularisers,
while the gradients of G_pi and G_V flow into the shared trunk through f(s). Rollouts are collected
and the PPO loss computed on clean observations; the augmentation is used only in the regularisers.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from stable_baselines3.common.distributions import CategoricalDistribution, Distribution
from stable_baselines3.common.type_aliases import RolloutBufferSamples

from heldout.agents.augment import Augmentation, check_channels, make_augmentation, make_generator
from heldout.agents.ppo import PPO

#: Ways to compute G_pi: the reference's one-sample cross-entropy, or the exact KL (same expected
#: gradient, lower variance; ALGORITHMS.md 2.3).
POLICY_REGULARIZERS = ("sample", "kl")


class DrAC(PPO):
    """Data-regularized actor-critic (DrAC) on heldout's PPO; overrides :meth:`auxiliary_loss` only.

    Per minibatch, after the PPO loss on the clean observations ``s``, the batch is augmented with
    fresh per-sample parameters, ``f(s)``, and one more forward pass gives ``pi(.|f(s))`` and
    ``V(f(s))``. Then (code-exact, auto-drac ``drac.py``)::

        a' ~ pi(.|s)                                  (no gradient; a fresh sample)
        G_pi = -mean(log pi(a'|f(s)))                 (policy_regularizer="sample", the reference)
        G_pi = mean(KL(pi(.|s).detach() || pi(.|f(s))))   (policy_regularizer="kl")
        G_V  = 0.5 * mean((V(s).detach() - V(f(s)))^2)
        loss = PPO loss + aug_coef * (G_pi + G_V)

    The "kl" form has the same gradient in expectation (no gradient reaches pi(.|s) in either) and
    a lower variance; it needs a categorical policy. Augmentation parameters and the sampled
    actions come from generators seeded by the run seed (never torch's global RNG).

    Args:
        policy, env: As :class:`heldout.agents.ppo.PPO`.
        augmentation: Name of the augmentation (``heldout.agents.augment.AUGMENTATIONS``).
        augmentation_kwargs: Keyword arguments of the augmentation (e.g. ``{"vertical": True}`` for
            auto-drac's flip).
        aug_coef: alpha_r, the weight of the regularisers (auto-drac default 0.1).
        policy_regularizer: ``"sample"`` (reference) or ``"kl"``.
        **kwargs: Everything :class:`heldout.agents.ppo.PPO` takes.

    Logged: ``train/drac_policy_reg`` (G_pi), ``train/drac_value_reg`` (G_V).
    """

    image_only: ClassVar[bool] = True  # augments (B, C, H, W) frames

    def __init__(
        self,
        policy: Any = "CnnPolicy",
        env: Any = None,
        augmentation: str = "crop",
        augmentation_kwargs: dict[str, Any] | None = None,
        aug_coef: float = 0.1,
        policy_regularizer: str = "sample",
        **kwargs: Any,
    ) -> None:
        if policy_regularizer not in POLICY_REGULARIZERS:
            raise ValueError(
                f"unknown policy_regularizer {policy_regularizer!r}; valid: {', '.join(POLICY_REGULARIZERS)}"
            )
        if aug_coef < 0:
            raise ValueError(f"aug_coef must be >= 0, got {aug_coef}")
        self.augmentation = augmentation
        self.augmentation_kwargs = dict(augmentation_kwargs or {})
        self.aug_coef = float(aug_coef)
        self.policy_regularizer = policy_regularizer
        make_augmentation(augmentation, **self.augmentation_kwargs)  # fail early on a bad name
        super().__init__(policy, env, **kwargs)

    # Generators and augmentation objects are rebuilt from the config after loading.
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "augmenter", "_aug_generator", "_action_generator"]

    def _setup_model(self) -> None:
        super()._setup_model()
        self.augmenter = self.build_augmentation()
        check_channels(self.augmenter, self.observation_space)
        self._aug_generator = make_generator(self.seed, "augment")
        self._action_generator = make_generator(self.seed, "drac-actions")

    def build_augmentation(self) -> Augmentation:
        """The augmentation object used by the regularisers."""
        return make_augmentation(self.augmentation, **self.augmentation_kwargs)

    def current_augmentation(self) -> Augmentation:
        """The augmentation of the current update (UCB-DrAC switches it between updates)."""
        return self.augmenter

    def auxiliary_loss(
        self, batch: RolloutBufferSamples, outputs: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        clean = outputs["distribution"]
        if clean is None:
            raise TypeError("DrAC needs an SB3 ActorCriticPolicy (one that exposes its distribution)")
        augmented_obs = self.current_augmentation()(batch.observations, self._aug_generator) * 255.0
        augmented, values_aug, _ = self.forward_policy(augmented_obs)
        values_aug = values_aug.flatten()

        policy_reg = self.policy_regularization(clean, augmented)
        value_reg = 0.5 * ((outputs["values"].detach() - values_aug) ** 2).mean()
        loss = self.aug_coef * (policy_reg + value_reg)
        return loss, {"drac_policy_reg": policy_reg.detach(), "drac_value_reg": value_reg.detach()}

    def policy_regularization(self, clean: Distribution, augmented: Distribution) -> torch.Tensor:
        """G_pi between the clean distribution (a target) and the augmented one."""
        if self.policy_regularizer == "kl":
            if not isinstance(clean, CategoricalDistribution):
                raise TypeError("policy_regularizer='kl' needs a categorical (Discrete) policy")
            target = clean.distribution.probs.detach()
            log_target = clean.distribution.logits.detach()
            log_aug = augmented.distribution.logits
            return (target * (log_target - log_aug)).sum(dim=-1).mean()
        with torch.no_grad():
            if isinstance(clean, CategoricalDistribution):
                probs = clean.distribution.probs
                generator = self._action_generator
                draws = torch.multinomial(probs.cpu().float(), 1, generator=generator).squeeze(1)
                actions = draws.to(probs.device)
            else:  # no generator-aware sampler in torch.distributions
                actions = clean.sample()
        return -augmented.log_prob(actions).mean()


__all__ = ["POLICY_REGULARIZERS", "DrAC"]
