"""The one PPO on which every on-policy heldout agent builds.

:class:`PPO` is stable-baselines3's PPO with the loss of the Procgen references (openai/baselines
``ppo2``, cleanrl ``ppo_procgen.py``; ALGORITHMS.md section 1.4), the Procgen hyper-parameters as
defaults (section 1.3), the IMPALA-CNN as default trunk (section 1.2), and hooks through which
agents (RAD, DrAC, SGQN, ...) add what they need without copying the loss.

References:
    Schulman et al. 2017, "Proximal Policy Optimization Algorithms". https://arxiv.org/abs/1707.06347
    Cobbe et al. 2020, "Leveraging Procedural Generation to Benchmark Reinforcement Learning",
    ICML. https://arxiv.org/abs/1912.01588
    Espeholt et al. 2018, "IMPALA: Scalable Distributed Deep-RL with Importance Weighted
    Actor-Learner Architectures", ICML. https://arxiv.org/abs/1802.01561
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import stable_baselines3
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, RolloutBufferSamples, Schedule
from stable_baselines3.common.utils import explained_variance
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from torch import nn

from heldout.agents.bonuses.intrinsic import BonusVecEnv, IntrinsicReward
from heldout.agents.hyperbolic import (
    HL_GAUSS_BINS,
    HYPERBOLIC_DIM,
    HLGauss,
    HyperbolicHead,
    check_geometry,
    spectral_normalise,
)
from heldout.agents.level_replay import (
    LevelRecorder,
    minibatches,
    score_rollout,
    scoring_sampler,
    update_mask,
)
from heldout.agents.networks import ImpalaCNN
from heldout.agents.precision import precision_context
from heldout.agents.rollout import DeviceRolloutBuffer, collect_on_device, device_buffer_class

#: Policy keyword arguments filled in (for the keys the user leaves out) when the policy is
#: ``"CnnPolicy"``: the IMPALA-CNN trunk with linear heads on its 256-d embedding (ALGORITHMS.md 1.2).
#: The update's precisions (:class:`PPO`'s ``precision``).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
#: The rollout engines (:class:`PPO`'s ``engine``): heldout's device storage, SB3's numpy one, or
#: ``auto`` (:func:`default_engine`).
ENGINES: tuple[str, ...] = ("auto", "heldout", "sb3")


def default_engine(device: Any = "auto") -> str:
    """The engine ``engine="auto"`` picks for a model on ``device`` (SB3's ``"auto"``: CUDA if present).

    ``"heldout"`` on CUDA, where the rollout path decides the speed (host-side numpy storage and GAE
    cannot feed a GPU); ``"sb3"`` elsewhere: on CPU the two are proven equal and equally fast (the
    learner is ~90% of the time; benchmarks/README.md, "The engine"), so the long-tested path stays.
    """
    from stable_baselines3.common.utils import get_device

    return "heldout" if get_device(device).type == "cuda" else "sb3"


IMPALA_POLICY_KWARGS: dict[str, Any] = {
    "features_extractor_class": ImpalaCNN,
    "features_extractor_kwargs": {"features_dim": 256},
    "net_arch": [],
    "ortho_init": False,
}

#: Gains of the orthogonal head initialisation (baselines ``init_scale``, cleanrl ``layer_init``).
POLICY_HEAD_GAIN = 0.01
VALUE_HEAD_GAIN = 1.0


def ppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    clip_range: float,
    clip_range_vf: float | None,
    ent_coef: float,
    vf_coef: float,
    normalize_advantage: bool = True,
    sample_weights: torch.Tensor | None = None,
    value_loss: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO loss of one minibatch, in the openai/baselines ``ppo2`` form (cleanrl identical).

    With ``A`` the advantages (normalised within the minibatch if asked), ``rho = exp(log_prob -
    old_log_prob)`` and ``eps = clip_range``::

        L_pg = mean(max(-A * rho, -A * clip(rho, 1 - eps, 1 + eps)))
        V_clip = old_values + clip(values - old_values, -clip_range_vf, clip_range_vf)
        L_v = 0.5 * mean(max((values - returns)^2, (V_clip - returns)^2))   # clip_range_vf given
        L_v = 0.5 * mean((values - returns)^2)                               # clip_range_vf None
        L = L_pg - ent_coef * mean(entropy) + vf_coef * L_v

    This differs from stable-baselines3's own PPO, whose value loss has no 0.5 factor and uses only
    the clipped prediction instead of the max of both (ALGORITHMS.md 1.6).

    Args:
        log_prob: log pi_theta(a|s) under the current policy, shape (B,).
        old_log_prob: log pi_old(a|s) recorded during the rollout, shape (B,).
        advantages: GAE advantages, shape (B,).
        values: V_theta(s), shape (B,).
        old_values: V_old(s) recorded during the rollout, shape (B,).
        returns: lambda-returns (advantages + old values), shape (B,).
        entropy: Entropy of pi_theta(.|s) per sample, shape (B,).
        clip_range: Policy ratio clip epsilon.
        clip_range_vf: Value clip epsilon, or None for the unclipped value loss.
        ent_coef: Entropy bonus coefficient.
        vf_coef: Value loss coefficient.
        normalize_advantage: Normalise advantages within the minibatch, ``(A - mean) / (std + 1e-8)``
            (torch's unbiased std, as cleanrl and SB3); skipped for a minibatch of one sample.
        sample_weights: Optional per-sample weights of the policy term, shape (B,), mean 1 (SGFD's
            reweighted actor loss): ``L_pg = mean(weights * max(...))``. Value and entropy terms
            stay unweighted. None: plain mean.
        value_loss: A value loss computed elsewhere that replaces ``L_v`` (Hyper++'s HL-Gauss
            cross-entropy, :class:`~heldout.agents.hyperbolic.HLGauss`); ``values``, ``old_values``
            and ``clip_range_vf`` are then unused. None: ``L_v`` as above.

    Returns:
        ``(loss, stats)``: the scalar loss to minimise and detached diagnostics:
        ``policy_gradient_loss`` (L_pg), ``value_loss`` (L_v, with its 0.5 factor), ``entropy_loss``
        (-mean(entropy)), ``approx_kl`` (``mean((rho - 1) - log rho)``, Schulman's k3 estimator, as
        SB3 and cleanrl) and ``clip_fraction`` (fraction of samples with ``|rho - 1| > clip_range``).

    Raises:
        ValueError: If the per-sample tensors do not all have the same shape (a silent broadcast of
            (B, 1) against (B,) would otherwise give a wrong loss).
    """
    shape = log_prob.shape
    named = {
        "old_log_prob": old_log_prob,
        "advantages": advantages,
        "values": values,
        "old_values": old_values,
        "returns": returns,
        "entropy": entropy,
    }
    for name, tensor in named.items():
        if tensor.shape != shape:
            raise ValueError(
                f"ppo_loss: {name} has shape {tuple(tensor.shape)} but log_prob has {tuple(shape)}; "
                "flatten per-sample tensors to (B,)"
            )
    if normalize_advantage and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    pg_loss = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range))
    if sample_weights is not None:
        if sample_weights.shape != shape:
            raise ValueError(
                f"ppo_loss: sample_weights has shape {tuple(sample_weights.shape)} but log_prob has {tuple(shape)}"
            )
        pg_loss = pg_loss * sample_weights.detach()
    pg_loss = pg_loss.mean()

    value_error = (values - returns) ** 2
    if value_loss is not None:
        pass
    elif clip_range_vf is None:
        value_loss = 0.5 * value_error.mean()
    else:
        values_clipped = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
        value_loss = 0.5 * torch.max(value_error, (values_clipped - returns) ** 2).mean()

    entropy_loss = -entropy.mean()
    loss = pg_loss + ent_coef * entropy_loss + vf_coef * value_loss

    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_fraction = ((ratio - 1).abs() > clip_range).float().mean()
    stats = {
        "policy_gradient_loss": pg_loss.detach(),
        "value_loss": value_loss.detach(),
        "entropy_loss": entropy_loss.detach(),
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
    }
    return loss, stats


class _RolloutObservationHook(VecEnvWrapper):
    """Routes a VecEnv's observations through a transform during one rollout collection.

    Keeps the env's raw last observation (``raw_last_obs``) and also transforms the
    ``terminal_observation`` of finished episodes, which SB3 uses to bootstrap truncations.
    """

    def __init__(self, venv: VecEnv, transform: Any) -> None:
        super().__init__(venv)
        self.transform = transform
        self.raw_last_obs: Any = None

    def reset(self) -> Any:
        self.raw_last_obs = self.venv.reset()
        return self.transform(self.raw_last_obs)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.raw_last_obs = obs
        for index, info in enumerate(infos):
            if "terminal_observation" in info:
                info["terminal_observation"] = self.transform(info["terminal_observation"], env_index=index)
        return self.transform(obs), rewards, dones, infos


def _is_cnn_policy(policy: str | type[ActorCriticPolicy]) -> bool:
    if isinstance(policy, str):
        return policy == "CnnPolicy"
    return isinstance(policy, type) and issubclass(policy, ActorCriticCnnPolicy)


class PPO(stable_baselines3.PPO):
    """PPO with the Procgen reference loss, defaults and network, and hooks for agents.

    Everything SB3 users expect works unchanged (``learn``, callbacks, the logger, ``predict``,
    ``save`` / ``PPO.load``); only :meth:`train` is rewritten, so that each minibatch minimises
    :func:`ppo_loss` (the baselines / cleanrl loss; ALGORITHMS.md 1.4) plus an agent's auxiliary loss.
    Rollout collection and GAE are SB3's (``engine="sb3"``) or heldout's device engine
    (``engine="heldout"``, :mod:`heldout.agents.rollout`).

    Defaults are the Procgen reference (Cobbe et al. 2020; ALGORITHMS.md 1.3) for 64 envs: 256 steps
    per env, 8 minibatches of 2,048, 3 epochs, Adam lr 5e-4 (eps 1e-5, SB3's default), gamma 0.999,
    GAE lambda 0.95, clip 0.2 for policy and value, entropy 0.01, value coefficient 0.5 (on a value
    loss that has a 0.5 factor), global gradient-norm clip 0.5. With ``policy="CnnPolicy"`` (the
    default) the missing ``policy_kwargs`` are filled from :data:`IMPALA_POLICY_KWARGS`: IMPALA-CNN
    trunk, linear heads (``net_arch=[]``) and ``ortho_init=False`` (PyTorch default init of the trunk,
    as cleanrl). Whatever the policy, the heads are then initialised orthogonally, gain 0.01 for the
    policy head and 1.0 for the value head, zero bias. Rewards are not normalised here: wrap the env
    in SB3 ``VecNormalize(norm_obs=False, norm_reward=True, clip_reward=10, gamma=0.99)``.

    Hooks (override these, never :meth:`train`):
        * :meth:`augment_batch` ``(obs) -> obs``: transforms each minibatch's observations before
          the forward pass (data augmentation). Default: identity.
        * :meth:`auxiliary_loss` ``(batch, outputs) -> (loss, logs)``: an extra loss added to the
          PPO loss of each minibatch, before the backward pass; ``logs`` are recorded as
          ``train/<key>`` (mean over the minibatches). Default: zero and no logs.
        * :meth:`policy_loss_weights` ``(batch, outputs) -> weights | None``: per-sample weights
          (mean 1) of the policy term of the PPO loss (SGFD's reweighting). Default: None.
        * :meth:`before_update` ``() -> None``: runs at the start of each :meth:`train`, when the
          rollout buffer holds the new rollout with its returns and advantages. Default: nothing.
        * :meth:`after_update` ``() -> None``: runs at the end of each :meth:`train`, after all
          epochs and after the train logs are recorded. Default: nothing.
        * :meth:`augment_rollout` ``(obs, env_index=None) -> obs``: transforms the observations
          the policy acts on during rollout collection, which are also the ones stored in the
          rollout buffer (RAD's collection-time augmentation). Only when an agent overrides it does
          :meth:`collect_rollouts` route observations through it. Default: identity.
        * :meth:`augment_rollout_tensor` ``(obs, env_index=None) -> obs``: the same on device
          tensors, which ``engine="heldout"`` calls (default: :meth:`augment_rollout` via numpy).

    Logged keys: those of SB3's PPO (``train/entropy_loss``, ``train/policy_gradient_loss``,
    ``train/value_loss``, ``train/approx_kl``, ``train/clip_fraction``, ``train/loss``,
    ``train/explained_variance``, ``train/n_updates``, ``train/clip_range``, ``train/clip_range_vf``,
    ``train/std`` for Gaussian policies), with ``train/value_loss`` being L_v of :func:`ppo_loss`
    (with its 0.5 factor) and ``train/loss`` the total of the last minibatch, auxiliary loss included.
    SB3's ``target_kl`` early stop is kept.

    Args:
        policy: SB3 policy (alias or class). Default ``"CnnPolicy"`` with the IMPALA-CNN.
        env: The environment (an SB3 ``VecEnv`` or anything SB3 wraps); may be None when loading.
        learning_rate: Adam learning rate or schedule of the remaining progress.
        n_steps: Steps per env per rollout.
        batch_size: Minibatch size (64 envs x 256 steps / 8 minibatches = 2048).
        n_epochs: Passes over each rollout.
        gamma: Discount factor.
        gae_lambda: GAE lambda.
        clip_range: Policy ratio clip (float or schedule).
        clip_range_vf: Value clip (float or schedule); None for the unclipped value loss.
        normalize_advantage: Normalise advantages per minibatch (eps 1e-8).
        ent_coef: Entropy coefficient.
        vf_coef: Value loss coefficient.
        max_grad_norm: Global gradient-norm clip.
        policy_kwargs: Policy keyword arguments; for ``"CnnPolicy"`` merged over
            :data:`IMPALA_POLICY_KWARGS` (the user's keys win).
        precision: ``"fp32"`` (default) or ``"bf16"``: the trunk (each features extractor) under
            ``torch.autocast(dtype=torch.bfloat16)``, when acting during rollouts and in the update
            (the policy's and every agent hook's forward passes), for CPUs with bf16 units and GPUs;
            the trunk's output goes on as fp32, and the heads, the action distribution, the values,
            the PPO loss, every auxiliary loss and every optimiser run in fp32
            (:mod:`heldout.agents.precision`). With identical weights the policy ratio is exactly 1.
        engine: ``"auto"`` (default): ``"heldout"`` on CUDA, ``"sb3"`` on CPU (:func:`default_engine`);
            ``"sb3"``: SB3's rollout collection, numpy ``RolloutBuffer`` and GAE; ``"heldout"``: the same algorithm on :mod:`heldout.agents.rollout` (storage, GAE and
            minibatches on the training device, one host-to-device copy of the observations and one
            device-to-host copy of the actions per step), proven equal to ``"sb3"`` (same
            advantages, returns and weights; ``tests/agents/test_engine.py``). A
            ``rollout_buffer_class`` of SB3's or :class:`~heldout.agents.level_buffer.LevelRolloutBuffer`
            is replaced by its device counterpart.
        representation: The geometry of the heads (:mod:`heldout.agents.hyperbolic`):
            ``"euclidean"`` (default, linear heads), ``"poincare"`` (Cetin et al. 2023: the
            representation mapped onto the Poincaré ball, policy logits and value from gyroplane
            distances) or ``"hyperboloid"`` (Hyper++'s Lorentz MLR, in float64). On the IMPALA-CNN a
            hyperbolic head reads a 32-d representation with no final ReLU, as both authors' code does
            (unless ``policy_kwargs`` sets the extractor's arguments).
        curvature: The magnitude c > 0 of the manifold's curvature -c (1.0 in both papers).
        s_rym: S-RYM (Cetin et al.): spectral normalisation of every Conv2d and Linear before the
            heads, and (hyperbolic heads) the representation divided by sqrt(d) before the map. With
            Euclidean heads: the spectral normalisation only (the authors' ``ppo_sn`` control).
        feature_reg: Hyper++'s bounded features (RMSNorm, tanh, a learned scale below
            artanh(0.95)/sqrt(c)) before the map, in place of the clip and rescale; hyperbolic heads only.
        hl_gauss: Hyper++'s categorical value: 51 bins on [-10, 10], HL-Gauss cross-entropy loss
            (times ``vf_coef``, no value clipping) in place of the squared error; any representation.
        **kwargs: Every other keyword argument of ``stable_baselines3.PPO`` (``use_sde``,
            ``target_kl``, ``tensorboard_log``, ``verbose``, ``seed``, ``device``, ...).
    """

    #: Whether the agent works on image observations only (augmentations or saliency over pixels);
    #: ``heldout train`` checks the env against it before any run folder exists.
    image_only: ClassVar[bool] = False

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy] = "CnnPolicy",
        env: GymEnv | str | None = None,
        learning_rate: float | Schedule = 5e-4,
        n_steps: int = 256,
        batch_size: int = 2048,
        n_epochs: int = 3,
        gamma: float = 0.999,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = 0.2,
        normalize_advantage: bool = True,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        policy_kwargs: dict[str, Any] | None = None,
        precision: str = "fp32",
        engine: str = "auto",
        representation: str = "euclidean",
        curvature: float = 1.0,
        s_rym: bool = False,
        feature_reg: bool = False,
        hl_gauss: bool = False,
        **kwargs: Any,
    ) -> None:
        check_geometry(representation, curvature, feature_reg)
        self.representation = representation
        self.curvature = float(curvature)
        self.s_rym = bool(s_rym)
        self.feature_reg = bool(feature_reg)
        self.hl_gauss = bool(hl_gauss)
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
        if engine == "auto":
            engine = default_engine(kwargs.get("device", "auto"))
        self.precision = precision
        self.engine = engine
        #: The exploration bonus (:mod:`heldout.agents.bonuses`), or None; :func:`~heldout.agents.bonuses.attach_bonus` sets it.
        self.bonus: IntrinsicReward | None = None
        if engine == "heldout":
            kwargs["rollout_buffer_class"] = device_buffer_class(kwargs.get("rollout_buffer_class"))
        if _is_cnn_policy(policy):
            defaults = copy.deepcopy(IMPALA_POLICY_KWARGS)
            if representation != "euclidean":
                defaults["features_extractor_kwargs"] = {"features_dim": HYPERBOLIC_DIM, "final_relu": False}
            policy_kwargs = {**defaults, **(policy_kwargs or {})}
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            policy_kwargs=policy_kwargs,
            **kwargs,
        )

    # ------------------------------------------------------------------------------------------
    # Hooks
    # ------------------------------------------------------------------------------------------

    def augment_batch(self, obs: torch.Tensor) -> torch.Tensor:
        """Transforms a minibatch's observations before the forward pass of :meth:`train`.

        Args:
            obs: The observations as the rollout buffer stores them and the policy receives them:
                for images, channel-first ``uint8`` in [0, 255] on ``self.device``, shape
                (B, C, H, W). The policy divides images by 255 itself.

        Returns:
            Observations in the same scale (they may be float), fed to the policy. Default: ``obs``.
        """
        return obs

    def auxiliary_loss(
        self, batch: RolloutBufferSamples, outputs: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """An extra loss added to the PPO loss of each minibatch.

        Args:
            batch: The minibatch from the rollout buffer (un-augmented observations, actions,
                old values, old log-probs, advantages, returns).
            outputs: The forward pass the PPO loss used: ``obs`` (after :meth:`augment_batch`),
                ``actions`` (long and flat for ``Discrete``), ``values`` (B,), ``log_prob`` (B,),
                ``entropy`` (B,), ``features`` (the extractor's output; a ``(pi, vf)`` tuple when
                the extractor is not shared) and ``distribution`` (SB3's action distribution);
                the last two are None for policies with their own ``evaluate_actions``.

        Returns:
            ``(loss, logs)``: a scalar tensor added to the loss before the backward pass, and
            floats (or 0-d tensors) recorded as ``train/<key>``, averaged over minibatches.
            Default: a zero tensor and no logs.
        """
        return torch.zeros((), device=self.device), {}

    def policy_loss_weights(
        self, batch: RolloutBufferSamples, outputs: dict[str, Any]
    ) -> torch.Tensor | None:
        """Per-sample weights of the minibatch's policy-gradient term, or None for the plain mean.

        Called after the forward pass, before :func:`ppo_loss`; ``outputs`` as for
        :meth:`auxiliary_loss`. The weights (shape (B,), mean 1) are treated as constants.
        """
        return None

    def before_update(self) -> None:
        """Runs at the start of every :meth:`train` call, before the first epoch. Default: nothing.

        ``self.rollout_buffer`` then holds the rollout just collected, with its GAE returns and
        advantages (e.g. UCB-DrAC credits its last arm with their mean here).
        """

    def after_update(self) -> None:
        """Runs at the end of every :meth:`train` call, after all epochs. Default: nothing."""

    def augment_rollout(self, obs: np.ndarray, env_index: int | None = None) -> np.ndarray:
        """Transforms observations during rollout collection, before the policy acts on them.

        What this returns is what the policy sees when acting and bootstrapping and what the rollout
        buffer stores, so the update trains on exactly these observations. Evaluation and
        ``predict`` are not affected.

        Args:
            obs: The observations of all envs, as the (wrapped) env returns them, shape
                (n_envs, ...); or, when ``env_index`` is given, one env's final observation of an
                episode (shape without the env dimension), used to bootstrap a truncated episode.
            env_index: The env the single observation comes from, or None for the whole batch.

        Returns:
            Observations of the same shape and dtype. Default: ``obs``.
        """
        return obs

    def augment_rollout_tensor(self, obs: torch.Tensor, env_index: int | None = None) -> torch.Tensor:
        """:meth:`augment_rollout` on a device tensor, as ``engine="heldout"`` collects rollouts.

        The engine writes each step's observations to the device once and, when an agent overrides
        this hook, augments them there (no round trip through numpy). Override it together with
        :meth:`augment_rollout` (which ``engine="sb3"`` calls) so that both give the same result,
        e.g. one calling the other (RAD). Default: :meth:`augment_rollout` through numpy.

        Args:
            obs: The observations of all envs on ``self.device``, shape (n_envs, ...), in the
                observation space's dtype; or one env's observation when ``env_index`` is given.
            env_index: As :meth:`augment_rollout`.

        Returns:
            A tensor of the same shape and dtype on the same device.
        """
        out = self.augment_rollout(obs.cpu().numpy(), env_index)
        return torch.as_tensor(out, device=obs.device)

    def _precision(self) -> Any:
        """The forward passes' context: with ``precision="bf16"`` the trunk under bf16 autocast (its
        output fp32; :func:`~heldout.agents.precision.trunk_autocast`), else nothing."""
        return precision_context(self.policy, getattr(self, "precision", "fp32"), self.device)

    def _overrides(self, hook: str) -> bool:
        """Whether this agent's class overrides the PPO hook named ``hook``."""
        return getattr(type(self), hook) is not getattr(PPO, hook)

    # ------------------------------------------------------------------------------------------
    # SB3 overrides
    # ------------------------------------------------------------------------------------------

    def _setup_model(self) -> None:
        super()._setup_model()
        self._init_heads()
        self._setup_geometry()

    def _setup_geometry(self) -> None:
        """The heads of ``representation`` / ``hl_gauss`` and S-RYM's spectral normalisation, in place
        of the linear heads; the optimiser is rebuilt over the new parameters."""
        policy = self.policy
        representation = getattr(self, "representation", "euclidean")
        s_rym, hl_gauss = getattr(self, "s_rym", False), getattr(self, "hl_gauss", False)
        if representation == "euclidean" and not s_rym and not hl_gauss:
            return
        if not isinstance(policy, ActorCriticPolicy):
            raise TypeError(f"hyperbolic heads need an SB3 ActorCriticPolicy, got {type(policy).__name__}")
        if s_rym:
            encoders = {id(m): m for m in (policy.pi_features_extractor, policy.vf_features_extractor)}
            for module in [*encoders.values(), policy.mlp_extractor]:
                spectral_normalise(module)
        latent_pi, latent_vf = policy.mlp_extractor.latent_dim_pi, policy.mlp_extractor.latent_dim_vf
        value_outputs = HL_GAUSS_BINS if hl_gauss else 1

        def head(in_dim: int, out_dim: int) -> nn.Module:
            if representation == "euclidean":
                return nn.Linear(in_dim, out_dim)
            return HyperbolicHead(
                in_dim, out_dim, representation, self.curvature, rescale=s_rym, feature_reg=self.feature_reg
            )

        if representation != "euclidean":
            if not isinstance(self.action_space, spaces.Discrete):
                raise ValueError(
                    f"representation={representation!r} needs a Discrete action space (its heads output "
                    f"logits), got {type(self.action_space).__name__}; valid for it: euclidean"
                )
            policy.action_net = head(latent_pi, int(self.action_space.n)).to(self.device)
        value_net = (
            head(latent_vf, value_outputs) if representation != "euclidean" or hl_gauss else policy.value_net
        )
        policy.value_net = (HLGauss(value_net, bins=HL_GAUSS_BINS) if hl_gauss else value_net).to(self.device)
        policy.optimizer = policy.optimizer_class(
            policy.parameters(), lr=self.lr_schedule(1), **policy.optimizer_kwargs
        )

    def _init_heads(self) -> None:
        """Orthogonal init of the linear heads: policy gain 0.01, value gain 1.0, zero bias."""
        heads = (
            (getattr(self.policy, "action_net", None), POLICY_HEAD_GAIN),
            (getattr(self.policy, "value_net", None), VALUE_HEAD_GAIN),
        )
        for module, gain in heads:
            if isinstance(module, nn.Linear):
                nn.init.orthogonal_(module.weight, gain=gain)
                nn.init.zeros_(module.bias)

    def _excluded_save_params(self) -> list[str]:
        # the bonus trains only: model.zip (acting, evaluation) does not need it; checkpoints hold it
        return [*super()._excluded_save_params(), "bonus"]

    def forward_policy(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor, Any]:
        """One forward pass of an actor-critic policy, keeping what agents reuse.

        Args:
            obs: Observations as the policy takes them (images: channel-first, 0-255 scale).

        Returns:
            ``(distribution, values, features)``: SB3's action distribution, the values (B, 1) and
            the features extractor's output (a ``(pi, vf)`` tuple when it is not shared).

        Raises:
            TypeError: For policies that are not SB3 ``ActorCriticPolicy`` subclasses.
        """
        policy = self.policy
        if not isinstance(policy, ActorCriticPolicy):
            raise TypeError(f"forward_policy needs an SB3 ActorCriticPolicy, got {type(policy).__name__}")
        features = policy.extract_features(obs)
        if policy.share_features_extractor:
            latent_pi, latent_vf = policy.mlp_extractor(features)
        else:
            pi_features, vf_features = features
            latent_pi = policy.mlp_extractor.forward_actor(pi_features)
            latent_vf = policy.mlp_extractor.forward_critic(vf_features)
        # SB3 policies reuse one distribution object and overwrite it on every forward pass: a
        # shallow copy keeps this pass's distribution when an agent runs another one.
        distribution = copy.copy(policy._get_action_dist_from_latent(latent_pi))
        return distribution, policy.value_net(latent_vf), features

    def _evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, Any, Distribution | None]:
        """SB3's ``ActorCriticPolicy.evaluate_actions``, also returning features and distribution.

        Policies that override ``evaluate_actions`` are called as they are (features and
        distribution None).
        """
        policy = self.policy
        if not isinstance(policy, ActorCriticPolicy) or (
            type(policy).evaluate_actions is not ActorCriticPolicy.evaluate_actions
        ):
            values, log_prob, entropy = policy.evaluate_actions(obs, actions)
            return values, log_prob, entropy, None, None
        distribution, values, features = self.forward_policy(obs)
        return values, distribution.log_prob(actions), distribution.entropy(), features, distribution

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """SB3's rollout collection; observations pass through :meth:`augment_rollout` if overridden.

        With a learning level sampler on the env (PLR, Robust PLR; :mod:`heldout.agents.level_replay`)
        the level of every transition is recorded and the rollout scored once GAE is computed.
        """
        sampler = scoring_sampler(env)
        if sampler is None:
            return self._collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        recorder = LevelRecorder(env)
        done = self._collect_rollouts(recorder, callback, rollout_buffer, n_rollout_steps)
        if done:
            score_rollout(self, sampler, recorder)
        return done

    def _collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """Either engine's collection, acting in the update's precision (bf16: the trunk only,
        :meth:`_precision`), so the recorded log-probs and values are the ones the update computes
        from the same weights (the ratio is exactly 1 before the first step).

        With an exploration bonus (:attr:`bonus`) the env is seen through
        :class:`~heldout.agents.bonuses.intrinsic.BonusVecEnv`, innermost, so the bonus scores the
        env's own observations and every step's reward is ``r_ext + r_int``; ``rollout/intrinsic``
        (the mean ``r_int`` per step) and ``bonus/raw``, ``bonus/std`` are logged apart.
        """
        if self.bonus is not None:
            self.bonus.begin(self._last_obs, self.device)  # type: ignore[arg-type]
            env = BonusVecEnv(env, self.bonus, self.device)
        with self._precision():
            done = self._collect_with(env, callback, rollout_buffer, n_rollout_steps)
        if self.bonus is not None:
            logs = self.bonus.rollout_logs()
            if logs:
                self.logger.record("rollout/intrinsic", logs["intrinsic"])
                self.logger.record("bonus/raw", logs["raw"])
                self.logger.record("bonus/std", logs["std"])
        return done

    def _collect_with(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        if isinstance(rollout_buffer, DeviceRolloutBuffer):
            augment = None
            if self._overrides("augment_rollout_tensor"):
                augment = self.augment_rollout_tensor
            elif self._overrides("augment_rollout"):
                augment = self.augment_rollout_tensor  # the default: through augment_rollout
            return collect_on_device(self, env, callback, rollout_buffer, n_rollout_steps, augment)
        if not self._overrides("augment_rollout"):
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        hooked = _RolloutObservationHook(env, self.augment_rollout)
        raw_last_obs = self._last_obs
        hooked.raw_last_obs = raw_last_obs
        self._last_obs = self.augment_rollout(raw_last_obs)  # type: ignore[arg-type]
        try:
            return super().collect_rollouts(hooked, callback, rollout_buffer, n_rollout_steps)
        finally:
            # Keep the env's own last observation, so the next rollout augments it afresh.
            self._last_obs = hooked.raw_last_obs

    def dump_logs(self, iteration: int = 0) -> None:
        """SB3's, with ``time/iterations`` counted over the whole run: a run resumed from a checkpoint
        (whose ``learn`` counts its iterations afresh) continues the count."""
        super().dump_logs(self.num_timesteps // (self.n_steps * self.n_envs) if iteration > 0 else 0)

    def train(self) -> None:
        """One PPO update on the collected rollout: ``n_epochs`` passes of minibatch Adam steps.

        Per minibatch: :meth:`augment_batch`, forward pass, :func:`ppo_loss` + :meth:`auxiliary_loss`,
        backward, global gradient-norm clip, Adam step. Statistics stay on the device until the end
        of the update (no per-minibatch synchronisation unless ``target_kl`` is set).
        """
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = float(self.clip_range(self._current_progress_remaining))  # type: ignore[operator]
        clip_range_vf = None
        if self.clip_range_vf is not None:
            clip_range_vf = float(self.clip_range_vf(self._current_progress_remaining))  # type: ignore[operator]

        if self.bonus is not None:  # the bonus's own networks learn from the rollout, apart from the policy
            bonus_logs = self.bonus.learn(self.rollout_buffer, self._last_obs, self._last_episode_starts)  # type: ignore[arg-type]
            for key, value in bonus_logs.items():
                self.logger.record(f"bonus/{key}", value)
        sampler = scoring_sampler(self.env)
        keep = None if sampler is None else update_mask(self, sampler)
        if keep is not None and not keep.any():  # Robust PLR: new levels only, scored, not trained on
            return
        self._reweights = self._overrides("policy_loss_weights")
        self.before_update()
        stats_history: dict[str, list[torch.Tensor]] = defaultdict(list)
        aux_history: dict[str, list[Any]] = defaultdict(list)
        approx_kl_divs: list[torch.Tensor] = []
        loss = torch.zeros(())
        continue_training = True
        head_inputs: list[torch.Tensor] = []
        hook = self.policy.action_net.register_forward_pre_hook(
            lambda _, args: head_inputs.append(args[0].detach().float().norm(dim=-1).mean())
        )
        try:
            for epoch in range(self.n_epochs):
                approx_kl_divs = []
                for rollout_data in minibatches(self.rollout_buffer, self.batch_size, keep):
                    actions = rollout_data.actions
                    if isinstance(self.action_space, spaces.Discrete):
                        actions = rollout_data.actions.long().flatten()
                    with self._precision():  # bf16: the trunk only; heads, losses, optimisers fp32
                        obs = self.augment_batch(rollout_data.observations)
                        values, log_prob, entropy, features, distribution = self._evaluate_actions(
                            obs, actions
                        )
                        values = values.flatten()
                        value_loss = (
                            self.policy.value_net.loss(rollout_data.returns) if self.hl_gauss else None
                        )
                        if entropy is None:
                            # No analytical entropy (e.g. squashed Gaussian): SB3's estimate -log_prob.
                            entropy = -log_prob
                        outputs = {
                            "obs": obs,
                            "actions": actions,
                            "values": values,
                            "log_prob": log_prob,
                            "entropy": entropy,
                            "features": features,
                            "distribution": distribution,
                        }
                        weights = self.policy_loss_weights(rollout_data, outputs) if self._reweights else None
                        aux_loss, aux_logs = self.auxiliary_loss(rollout_data, outputs)
                    loss, stats = ppo_loss(
                        log_prob,
                        rollout_data.old_log_prob,
                        rollout_data.advantages,
                        values,
                        rollout_data.old_values,
                        rollout_data.returns,
                        entropy,
                        clip_range=clip_range,
                        clip_range_vf=clip_range_vf,
                        ent_coef=self.ent_coef,
                        vf_coef=self.vf_coef,
                        normalize_advantage=self.normalize_advantage,
                        sample_weights=weights,
                        value_loss=value_loss,
                    )
                    loss = loss + aux_loss
                    for key in ("policy_gradient_loss", "value_loss", "entropy_loss", "clip_fraction"):
                        stats_history[key].append(stats[key])
                    for key, value in aux_logs.items():
                        aux_history[key].append(value.detach() if isinstance(value, torch.Tensor) else value)
                    approx_kl_divs.append(stats["approx_kl"])

                    if self.target_kl is not None:
                        approx_kl_div = stats["approx_kl"].item()
                        if approx_kl_div > 1.5 * self.target_kl:
                            continue_training = False
                            if self.verbose >= 1:
                                print(
                                    f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}"
                                )
                            break

                    self.policy.optimizer.zero_grad()
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                    stats_history["grad_norm"].append(grad_norm.detach())
                    self.policy.optimizer.step()

                self._n_updates += 1
                if not continue_training:
                    break
        finally:
            hook.remove()

        explained_var = explained_variance(
            self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
        )
        # One device-to-host transfer for all the means.
        names = ["entropy_loss", "policy_gradient_loss", "value_loss", "clip_fraction", "grad_norm"]
        means = [torch.stack(stats_history[name]).mean() for name in names]
        names += ["approx_kl", "loss", "representation_norm"]
        means += [
            torch.stack(approx_kl_divs).mean(),
            loss.detach().reshape(()),
            torch.stack(head_inputs).mean(),
        ]
        radius = getattr(self.policy.action_net, "last_radius", None)
        if radius is not None:  # the policy head's points, last minibatch: distance from the origin
            names.append("hyperbolic_radius")
            means.append(radius)
        values_host = torch.stack([m.float().to(means[0].device) for m in means]).cpu().tolist()
        logged = dict(zip(names, values_host))

        for name in ("entropy_loss", "policy_gradient_loss", "value_loss", "approx_kl", "clip_fraction"):
            self.logger.record(f"train/{name}", logged[name])
        # Per update (issue 30): the pre-clip global gradient norm (mean over minibatches), the mean norm
        # of the representation the policy head reads, and for hyperbolic heads the points' radius.
        for name in ("grad_norm", "representation_norm", "hyperbolic_radius"):
            if name in logged:
                self.logger.record(f"train/{name}", logged[name])
        self.logger.record("train/loss", logged["loss"])
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", torch.exp(self.policy.log_std).mean().item())
        for key, history in aux_history.items():
            self.logger.record(f"train/{key}", float(np.mean([float(v) for v in history])))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)

        self.after_update()


__all__ = ["ENGINES", "IMPALA_POLICY_KWARGS", "PPO", "PRECISIONS", "default_engine", "ppo_loss"]
