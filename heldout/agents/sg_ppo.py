"""SG-PPO: SGQN's saliency guidance ported to heldout's PPO (ALGORITHMS.md 3.4).

SGQN (Bertoin et al. 2022, "Look where you look! Saliency-guided Q-networks for generalization in
visual RL", NeurIPS, https://arxiv.org/abs/2209.09203; code SuReLI/SGQN ``DMC/src/algorithms/sgsac.py``)
teaches a critic to keep its decision on the pixels that matter with two self-supervised terms:

* **consistency**: the critic's output on the observation ``s`` and on ``s~``, the observation with
  every pixel outside the saliency mask replaced by one random value, should agree;
* **attribution prediction**: a decoder on the (shared) encoder's embedding of an augmented
  observation predicts the saliency mask (binary cross-entropy), with its own optimiser.

No reference code exists for PPO; this port follows the design of ALGORITHMS.md 3.4. Per
minibatch, with the current parameters (before the step)::

    A = GBP_s[y(s)]  with y = V(s) ("value") or log pi(a|s) ("log_prob")     # guided backprop
    M = 1[max_c |A_c| >= quantile_rho]                                      # detached
    s~ = s * M + u * (1 - M),  u ~ U[min(s_batch), max(s_batch)]           # one draw per batch
    L_C  = lambda_V * mean((V(s) - V(s~))^2) + lambda_pi * mean(KL(pi(.|s) || pi(.|s~)))
    L_SL = BCEWithLogits(Dec(h(tau(s)), onehot(a)), M)                     # tau: an augmentation
    loss = L_PPO + L_C + lambda_SL * L_SL

As in SGQN, the consistency gradients flow through both ``s`` and ``s~``. The encoder learns from
``L_SL`` through the policy's optimiser; the decoder has its own Adam (lr 3e-4, as SGQN's
``aux_opt``), stepped on the gradient each minibatch's backward pass leaves on it (at the start of
the next minibatch and at the end of the update, since heldout's PPO has no per-step hook).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from torch.nn import functional as F  # noqa: N812

from heldout.agents.attribution_decoder import AttributionDecoder, action_encoding, action_width
from heldout.agents.augment import make_augmentation, make_generator
from heldout.agents.ppo import PPO
from heldout.agents.saliency import (
    ATTRIBUTION_METHODS,
    attribute,
    check_choice,
    masked_observation,
    policy_target,
    quantile_mask,
)

#: Saliency targets SG-PPO can guide: the value or the chosen action's log-probability.
SG_PPO_TARGETS = ("value", "log_prob")

#: How the masked-out pixels are filled: one draw for the batch (SGQN) or one per sample.
FILL_MODES = ("batch", "sample")


def batch_fill(obs: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """SGQN's fill value ``u ~ U[min(s), max(s)]``: one for the batch, or one per sample (B, 1, 1, 1)."""
    low, high = obs.min(), obs.max()
    n = 1 if mode == "batch" else obs.shape[0]
    u = torch.rand(n, generator=generator).to(obs.device, obs.dtype)
    u = low + (high - low) * u
    return u.reshape(()) if mode == "batch" else u.reshape(n, 1, 1, 1)


class SGPPO(PPO):
    """Saliency-guided PPO: SGQN's consistency and attribution-prediction losses as a PPO hook.

    Overrides :meth:`auxiliary_loss` only (and builds its decoder in ``_setup_model``).

    Args:
        policy, env: As :class:`heldout.agents.ppo.PPO`; observations must be images.
        saliency_target: ``"value"`` (V(s), the default) or ``"log_prob"`` (log pi(a|s) of the
            stored action, action-conditioned like SGQN's Q(s, a)).
        attribution_method: ``"guided_backprop"`` (SGQN) or ``"gradient"``.
        quantile: rho of the mask; 0.95 keeps about 5 % of the pixels (205 of 4096).
        value_consistency_coef: lambda_V (0.5, mirroring SGQN's lambda_C).
        policy_consistency_coef: lambda_pi (0.5).
        attribution_coef: lambda_SL, weight of the attribution-prediction loss (1.0).
        aux_learning_rate: Adam learning rate of the decoder (SGQN's aux lr, 3e-4).
        attribution_augmentation: tau, the augmentation of the decoder's input (an
            ``heldout.agents.augment`` name; ``"identity"`` for none). SGQN uses random overlay
            (DMC) or random conv (robot env); default ``"random-conv"``.
        fill: ``"batch"`` (SGQN: one value for the whole batch) or ``"sample"``.
        guidance_batch_size: Compute the saliency terms on only the first this many samples of each
            (shuffled) minibatch; None: all of them. SGQN's own batch is 128; PPO's minibatches are
            1,024-2,048, and the guidance costs several forward-backward passes per sample.
        decoder_channels: Hidden widths of the attribution decoder (SGQN: (128, 64)).
        **kwargs: Everything :class:`heldout.agents.ppo.PPO` takes.

    Logged: ``train/sg_value_consistency``, ``train/sg_policy_consistency``,
    ``train/sg_attribution_loss`` (L_SL), ``train/sg_mask_share`` (share of pixels kept).
    """

    image_only: ClassVar[bool] = True  # saliency masks and augmentations over pixels

    def __init__(
        self,
        policy: Any = "CnnPolicy",
        env: Any = None,
        saliency_target: str = "value",
        attribution_method: str = "guided_backprop",
        quantile: float = 0.95,
        value_consistency_coef: float = 0.5,
        policy_consistency_coef: float = 0.5,
        attribution_coef: float = 1.0,
        aux_learning_rate: float = 3e-4,
        attribution_augmentation: str = "random-conv",
        fill: str = "batch",
        guidance_batch_size: int | None = None,
        decoder_channels: tuple[int, int] | list[int] = (128, 64),
        **kwargs: Any,
    ) -> None:
        check_choice("saliency_target", saliency_target, SG_PPO_TARGETS)
        check_choice("attribution_method", attribution_method, ATTRIBUTION_METHODS)
        check_choice("fill", fill, FILL_MODES)
        if not 0.0 <= quantile < 1.0:
            raise ValueError(f"quantile must be in [0, 1), got {quantile!r}")
        for name, value in (
            ("value_consistency_coef", value_consistency_coef),
            ("policy_consistency_coef", policy_consistency_coef),
            ("attribution_coef", attribution_coef),
            ("aux_learning_rate", aux_learning_rate),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if guidance_batch_size is not None and (
            isinstance(guidance_batch_size, bool)
            or not isinstance(guidance_batch_size, int)
            or guidance_batch_size < 1
        ):
            raise ValueError(
                f"guidance_batch_size must be a positive integer or None, got {guidance_batch_size!r}"
            )
        if len(decoder_channels) != 2 or any(int(c) < 1 for c in decoder_channels):
            raise ValueError(f"decoder_channels must be two positive widths, got {decoder_channels!r}")
        make_augmentation(attribution_augmentation)  # fail early on a bad name
        self.guidance_batch_size = guidance_batch_size
        self.decoder_channels = tuple(int(c) for c in decoder_channels)
        self.saliency_target = saliency_target
        self.attribution_method = attribution_method
        self.quantile = float(quantile)
        self.value_consistency_coef = float(value_consistency_coef)
        self.policy_consistency_coef = float(policy_consistency_coef)
        self.attribution_coef = float(attribution_coef)
        self.aux_learning_rate = float(aux_learning_rate)
        self.attribution_augmentation = attribution_augmentation
        self.fill = fill
        super().__init__(policy, env, **kwargs)

    # Generators and the augmentation object are rebuilt after loading; the decoder and its
    # optimiser are saved as state dicts (see _get_torch_save_params).
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "augmenter", "_aug_generator", "_fill_generator"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        return [*state_dicts, "attribution_decoder", "aux_optimizer"], tensors

    def _setup_model(self) -> None:
        super()._setup_model()
        space = self.observation_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3):
            raise TypeError(f"SG-PPO needs image observations; got observation space {space}")
        image_shape = tuple(int(d) for d in self.policy.observation_space.shape)
        self.attribution_decoder = AttributionDecoder(
            self.policy.features_extractor.features_dim,
            action_width(self.action_space),
            image_shape,  # type: ignore[arg-type]
            channels=self.decoder_channels,  # type: ignore[arg-type]
        ).to(self.device)
        self.aux_optimizer = torch.optim.Adam(
            self.attribution_decoder.parameters(), lr=self.aux_learning_rate
        )
        self.augmenter = make_augmentation(self.attribution_augmentation)
        self._aug_generator = make_generator(self.seed, "sg-attribution-augment")
        self._fill_generator = make_generator(self.seed, "sg-fill")

    # ------------------------------------------------------------------------------------------

    def saliency_mask(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attribution of the saliency target and its quantile mask (both detached).

        Args:
            obs: Observations in the policy's layout and scale (B, C, H, W), 0-255.
            actions: The stored actions (used by the ``"log_prob"`` target).
        """
        fn = policy_target(self, self.saliency_target, actions)
        attr = attribute(fn, obs, method=self.attribution_method, module=self.policy)
        return attr, quantile_mask(attr, self.quantile)

    def consistency_loss(
        self, outputs: dict[str, Any], masked_obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean((V(s) - V(s~))^2), mean(KL(pi(.|s) || pi(.|s~))))``, gradients on both sides."""
        masked_dist, masked_values, _ = self.forward_policy(masked_obs)
        value_term = ((outputs["values"] - masked_values.flatten()) ** 2).mean()
        clean = outputs["distribution"]
        if clean is None:
            raise TypeError("SG-PPO needs an SB3 ActorCriticPolicy (one that exposes its distribution)")
        kl = torch.distributions.kl_divergence(clean.distribution, masked_dist.distribution)
        if kl.ndim > 1:  # independent Gaussian dimensions
            kl = kl.sum(dim=-1)
        return value_term, kl.mean()

    def attribution_loss(self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """L_SL: BCE between the decoder's logits on h(tau(s)) and the mask of channel 0."""
        augmented = self.augmenter(obs / 255.0, self._aug_generator) * 255.0
        features = self.policy.extract_features(augmented)
        if isinstance(features, tuple):  # separate extractors: the policy's
            features = features[0]
        logits = self.attribution_decoder(features, action_encoding(actions, self.action_space))
        target = mask[:, :1].float()
        return F.binary_cross_entropy_with_logits(logits, target)

    def _step_decoder(self) -> None:
        """Adam step of the decoder on the gradient the last backward pass left on it."""
        params = list(self.attribution_decoder.parameters())
        if any(p.grad is not None for p in params):
            self.aux_optimizer.step()
            self.aux_optimizer.zero_grad(set_to_none=True)

    def auxiliary_loss(
        self, batch: RolloutBufferSamples, outputs: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        self._step_decoder()
        obs = batch.observations.float()
        actions = outputs["actions"]
        n = self.guidance_batch_size
        if n is not None and n < obs.shape[0]:  # the clean pass again, on the subset only
            obs, actions = obs[:n], actions[:n]
            distribution, values, _ = self.forward_policy(obs)
            outputs = {**outputs, "values": values.flatten(), "distribution": distribution}
        _, mask = self.saliency_mask(obs, actions)
        fill = batch_fill(obs, self.fill, self._fill_generator)
        value_term, policy_term = self.consistency_loss(outputs, masked_observation(obs, mask, fill))
        loss = self.value_consistency_coef * value_term + self.policy_consistency_coef * policy_term
        logs: dict[str, Any] = {
            "sg_value_consistency": value_term.detach(),
            "sg_policy_consistency": policy_term.detach(),
            "sg_mask_share": mask.float().mean(),
        }
        if self.attribution_coef > 0:
            sl = self.attribution_loss(obs, actions, mask)
            loss = loss + self.attribution_coef * sl
            logs["sg_attribution_loss"] = sl.detach()
        return loss, logs

    def after_update(self) -> None:
        self._step_decoder()


__all__ = ["FILL_MODES", "SG_PPO_TARGETS", "SGPPO", "batch_fill"]
