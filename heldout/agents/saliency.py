"""Attribution maps of an agent's decision with respect to its input pixels, and saliency masks.

Two attribution methods, for any differentiable scalar per sample ``y(s)`` (a value, the
log-probability of the chosen action, a Q-value):

* ``"gradient"``: the vanilla gradient ``dy/ds`` (Simonyan et al. 2014, "Deep Inside Convolutional
  Networks: Visualising Image Classification Models and Saliency Maps", ICLR workshop,
  https://arxiv.org/abs/1312.6034);
* ``"guided_backprop"``: guided backpropagation (Springenberg et al. 2015, "Striving for Simplicity:
  The All Convolutional Net", ICLR workshop, https://arxiv.org/abs/1412.6806): through every ReLU
  the backward pass keeps only positive gradients, ``g_in = relu(g_out) * 1[x > 0]``. This is the
  method of SGQN (Bertoin et al. 2022, "Look where you look! Saliency-guided Q-networks for
  generalization in visual RL", NeurIPS, https://arxiv.org/abs/2209.09203), computed there with
  captum's ``GuidedBackprop``, which, like this module, acts on ``nn.ReLU`` *modules* only
  (ALGORITHMS.md 1.6): functional ``F.relu`` calls are not seen. heldout's IMPALA-CNN uses one
  non-inplace ``nn.ReLU`` module per activation. On networks without skip connections this module's
  maps equal captum 0.9's ``GuidedBackprop`` exactly (checked on SB3's NatureCNN). On residual
  networks they differ: captum hooks the ReLU's *input tensor*, so where that tensor also feeds a
  skip connection (IMPALA's ``x + f(relu(x))``) it rectifies the gradient of both paths, while
  here only the gradient through the ReLU is rectified, as the guided-backprop rule says.

Masks (SGQN ``compute_attribution_mask``, ALGORITHMS.md 3.1): per sample and per stacked frame,
``a(i, j) = max_c |A_c(i, j)|``, ``q = quantile_rho(a)``, ``M = 1[a >= q]``, broadcast to the
frame's channels; with ``rho = 0.9`` about 10 % of the pixels are kept.

The attribution is computed with ``torch.autograd.grad``: it never touches the parameters' ``.grad``
and the maps are detached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

#: Attribution methods: name -> description.
ATTRIBUTION_METHODS: dict[str, str] = {
    "gradient": "vanilla gradient of the target w.r.t. the pixels (Simonyan et al. 2014)",
    "guided_backprop": "guided backpropagation: positive gradients only through ReLUs (Springenberg et al. 2015)",
}

#: What is attributed: name -> description (see :func:`policy_target`).
SALIENCY_TARGETS: dict[str, str] = {
    "value": "the state value V(s) of an actor-critic",
    "log_prob": "log pi(a|s) of the chosen action a (the greedy one unless actions are given)",
    "q": "Q(s, a) of the chosen action of a Q-network (the greedy one unless actions are given)",
}


def check_choice(kind: str, value: str, valid: dict[str, str] | tuple[str, ...]) -> str:
    """Returns ``value`` if it is one of ``valid``; else raises ValueError naming the valid ones."""
    if value not in valid:
        import difflib

        close = difflib.get_close_matches(str(value), list(valid), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {kind} {value!r}{hint}; valid: {', '.join(valid)}")
    return value


def _guided_relu_hook(module: nn.Module, grad_input: Any, grad_output: Any) -> tuple[torch.Tensor, ...]:
    # For ReLU, grad_input = grad_output * 1[x > 0]; clamping it at 0 gives
    # grad_output * 1[x > 0] * 1[grad_output > 0], guided backprop's rule.
    return tuple(None if g is None else g.clamp(min=0) for g in grad_input)


@contextmanager
def guided_relus(module: nn.Module) -> Iterator[int]:
    """Within this context, every ``nn.ReLU`` in ``module`` backpropagates guided gradients.

    Args:
        module: The network (its ``nn.ReLU`` submodules get a backward hook).

    Yields:
        The number of ReLU modules hooked.

    Raises:
        ValueError: If the network has no ``nn.ReLU`` module, or an in-place one (whose backward
            hook cannot see the input it overwrote).
    """
    relus = [m for m in module.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(
            f"guided backprop needs nn.ReLU modules, found none in {type(module).__name__} "
            "(functional F.relu calls cannot be hooked; use method='gradient')"
        )
    inplace = [name for name, m in module.named_modules() if isinstance(m, nn.ReLU) and m.inplace]
    if inplace:
        raise ValueError(f"guided backprop cannot hook in-place nn.ReLU modules: {', '.join(inplace)}")
    handles = [m.register_full_backward_hook(_guided_relu_hook) for m in relus]
    try:
        yield len(relus)
    finally:
        for handle in handles:
            handle.remove()


def attribute(
    target_fn: Callable[[torch.Tensor], torch.Tensor],
    obs: torch.Tensor,
    method: str = "guided_backprop",
    module: nn.Module | None = None,
) -> torch.Tensor:
    """The attribution ``dy/ds`` of a per-sample scalar ``y = target_fn(s)`` to the input ``s``.

    Args:
        target_fn: Maps a batch of inputs (B, ...) to one scalar per sample (B,). Samples must not
            interact (no batch norm in training mode), so that the gradient of the sum is the
            per-sample gradient.
        obs: The inputs, any float or integer tensor (converted to float); not modified.
        method: ``"gradient"`` or ``"guided_backprop"`` (:data:`ATTRIBUTION_METHODS`).
        module: The network whose ``nn.ReLU`` modules guided backprop hooks (required for it).

    Returns:
        The attribution, same shape as ``obs``, float, detached.

    Raises:
        ValueError: Unknown method, missing module, or a target that is not one scalar per sample.
    """
    check_choice("attribution method", method, ATTRIBUTION_METHODS)
    x = obs.detach().float().clone().requires_grad_(True)

    def grad() -> torch.Tensor:
        with torch.enable_grad():
            y = target_fn(x)
            if y.shape != (x.shape[0],):
                raise ValueError(
                    f"the attribution target must give one scalar per sample, shape ({x.shape[0]},); "
                    f"got {tuple(y.shape)}"
                )
            (g,) = torch.autograd.grad(y.sum(), x)
        return g.detach()

    if method == "guided_backprop":
        if module is None:
            raise ValueError("guided_backprop needs the network (module=...) whose nn.ReLU modules it hooks")
        with guided_relus(module):
            return grad()
    return grad()


def pixel_saliency(attribution: torch.Tensor, frame_channels: int | None = None) -> torch.Tensor:
    """Per-pixel saliency ``a(i, j) = max_c |A_c(i, j)|`` of channel-first attributions.

    Args:
        attribution: (B, C, H, W).
        frame_channels: Channels per stacked frame (3 for RGB); the max is taken within each frame,
            giving (B, C // frame_channels, H, W). None: one map over all channels, (B, 1, H, W).

    Returns:
        Non-negative maps, (B, K, H, W) with K frames.
    """
    if attribution.ndim != 4:
        raise ValueError(f"attributions must be (B, C, H, W), got shape {tuple(attribution.shape)}")
    b, c, h, w = attribution.shape
    k = frame_channels or c
    if c % k:
        raise ValueError(f"{c} channels do not split into frames of {k} channels")
    return attribution.abs().reshape(b, c // k, k, h, w).amax(dim=2)


def quantile_mask(
    attribution: torch.Tensor, quantile: float = 0.95, frame_channels: int | None = None
) -> torch.Tensor:
    """SGQN's binary saliency mask: the pixels whose saliency reaches the per-sample ``quantile``.

    ``M_c(i, j) = 1[a_k(i, j) >= quantile_rho(a_k)]`` for every channel c of frame k, with
    ``a_k = max_{c in frame k} |A_c|`` (Bertoin et al. 2022, ``compute_attribution_mask``). For
    continuous attributions the mask keeps a share ``1 - rho`` of the pixels; ties (e.g. pixels with
    zero gradient when ``rho`` is small) can make it keep more.

    Args:
        attribution: (B, C, H, W) attributions.
        quantile: rho in [0, 1).
        frame_channels: As :func:`pixel_saliency`; None: one mask for all channels.

    Returns:
        A boolean mask of the shape of ``attribution`` (no gradient).
    """
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"quantile must be in [0, 1), got {quantile!r}")
    sal = pixel_saliency(attribution.detach(), frame_channels)  # (B, K, H, W)
    b, k, h, w = sal.shape
    flat = sal.reshape(b, k, h * w).float()
    q = torch.quantile(flat, quantile, dim=2, keepdim=True)
    mask = (flat >= q).reshape(b, k, 1, h, w)
    c = attribution.shape[1]
    return mask.expand(b, k, c // k, h, w).reshape(attribution.shape)


def masked_observation(obs: torch.Tensor, mask: torch.Tensor, fill: float | torch.Tensor) -> torch.Tensor:
    """``s * M + fill * (1 - M)``: the observation with the non-salient pixels replaced by ``fill``.

    Args:
        obs: Float observations (B, C, H, W).
        mask: Boolean mask, same shape.
        fill: A scalar (SGQN: one draw ``u ~ U[min(s), max(s)]`` for the whole batch) or a tensor
            broadcastable to ``obs``.
    """
    fill_t = torch.as_tensor(fill, dtype=obs.dtype, device=obs.device)
    return torch.where(mask, obs, fill_t)


# ------------------------------------------------------------------------------------------------
# Targets of SB3 policies
# ------------------------------------------------------------------------------------------------


def policy_network(model: Any) -> nn.Module:
    """The module whose ReLUs guided backprop hooks: an SB3 model's policy (or the module itself)."""
    policy = getattr(model, "policy", model)
    if not isinstance(policy, nn.Module):
        raise TypeError(f"cannot find a torch policy in {type(model).__name__}")
    return policy


def policy_target(
    model: Any, target: str = "value", actions: torch.Tensor | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A per-sample scalar of an SB3 (or heldout) agent's policy, as a function of observations.

    The function takes observations as the policy does (channel-first, pixel scale 0-255 for
    images, float) and returns (B,):

    * ``"value"``: V(s) of an actor-critic policy (``predict_values``);
    * ``"log_prob"``: log pi(a|s) of ``actions``, or of the greedy action when None;
    * ``"q"``: Q(s, a) of ``actions`` (greedy when None) for DQN-like policies (``q_net``), the
      mean over quantiles for QR-DQN (``quantile_net``).

    Raises:
        ValueError: Unknown target, or one the policy does not have.
    """
    check_choice("saliency target", target, SALIENCY_TARGETS)
    policy = policy_network(model)

    def pick(scores: torch.Tensor) -> torch.Tensor:
        chosen = scores.argmax(dim=1) if actions is None else actions.long().reshape(-1).to(scores.device)
        return scores.gather(1, chosen[:, None]).squeeze(1)

    if target == "value":
        if not hasattr(policy, "predict_values"):
            raise ValueError(
                f"target 'value' needs an actor-critic policy; {type(policy).__name__} has no V(s)"
            )
        return lambda obs: policy.predict_values(obs).reshape(-1)
    if target == "log_prob":
        if not hasattr(policy, "get_distribution"):
            raise ValueError(f"target 'log_prob' needs a stochastic policy; {type(policy).__name__} has none")

        def log_prob(obs: torch.Tensor) -> torch.Tensor:
            dist = policy.get_distribution(obs).distribution
            if actions is None:
                logits = dist.logits if hasattr(dist, "logits") else None
                if logits is None:
                    raise ValueError("target 'log_prob' without actions needs a categorical policy")
                return pick(torch.log_softmax(logits, dim=1))
            return dist.log_prob(actions.to(obs.device).long().reshape(-1))

        return log_prob
    # "q"
    q_net = getattr(policy, "q_net", None)
    if q_net is not None:
        return lambda obs: pick(q_net(obs))
    quantile_net = getattr(policy, "quantile_net", None)
    if quantile_net is not None:
        return lambda obs: pick(quantile_net(obs).mean(dim=1))
    raise ValueError(
        f"target 'q' needs a Q-network policy (q_net or quantile_net); got {type(policy).__name__}"
    )


def default_target(model: Any) -> str:
    """``"q"`` for Q-network policies, ``"value"`` for actor-critics, else ``"log_prob"``."""
    policy = policy_network(model)
    if hasattr(policy, "q_net") or hasattr(policy, "quantile_net"):
        return "q"
    if hasattr(policy, "predict_values"):
        return "value"
    return "log_prob"


def observation_tensor(model: Any, obs: np.ndarray) -> torch.Tensor:
    """Observations as the model's policy takes them (channel-first, float, on its device).

    Transposes channel-last images the way SB3's ``VecTransposeImage`` does, as ``predict`` would.
    """
    policy = policy_network(model)
    tensor, _ = policy.obs_to_tensor(obs)  # handles the channel transpose and the batch dimension
    return tensor.float()


def saliency_maps(
    model: Any,
    obs: np.ndarray | torch.Tensor,
    target: str | None = None,
    method: str = "guided_backprop",
    actions: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """Per-pixel saliency ``max_c |dy/ds_c|`` of a trained SB3 / heldout agent.

    Args:
        model: An SB3 algorithm (PPO, DQN, QR-DQN, heldout's agents) with an image policy.
        obs: Observations as the env returns them (channel-last uint8 images are transposed), or a
            tensor already in the policy's layout.
        target: :data:`SALIENCY_TARGETS` key; None: :func:`default_target`.
        method: :data:`ATTRIBUTION_METHODS` key.
        actions: The actions whose log-probability or Q-value is attributed (default: greedy).

    Returns:
        Float32 maps of shape (B, H, W), one per observation.
    """
    x = obs if isinstance(obs, torch.Tensor) else observation_tensor(model, np.asarray(obs))
    acts = None if actions is None else torch.as_tensor(np.asarray(actions)).to(x.device)
    fn = policy_target(model, target or default_target(model), acts)
    policy = policy_network(model)
    was_training = policy.training
    policy.set_training_mode(False) if hasattr(policy, "set_training_mode") else policy.eval()
    try:
        attr = attribute(fn, x, method=method, module=policy)
    finally:
        if was_training:
            policy.set_training_mode(True) if hasattr(policy, "set_training_mode") else policy.train()
    return pixel_saliency(attr).squeeze(1).cpu().numpy().astype(np.float32)


def focus(saliency: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """The share of saliency mass on the foreground, per map: ``sum(a * F) / sum(a)``.

    Args:
        saliency: Non-negative maps (B, H, W).
        foreground: Boolean foreground masks (B, H, W).

    Returns:
        (B,) shares in [0, 1]; NaN for an all-zero map.
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    foreground = np.asarray(foreground, dtype=bool)
    if saliency.shape != foreground.shape:
        raise ValueError(f"saliency {saliency.shape} and foreground {foreground.shape} differ in shape")
    total = saliency.reshape(len(saliency), -1).sum(axis=1)
    on = (saliency * foreground).reshape(len(saliency), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, on / np.where(total > 0, total, 1.0), np.nan)


__all__ = [
    "ATTRIBUTION_METHODS",
    "SALIENCY_TARGETS",
    "attribute",
    "default_target",
    "focus",
    "guided_relus",
    "masked_observation",
    "observation_tensor",
    "pixel_saliency",
    "policy_target",
    "quantile_mask",
    "saliency_maps",
]
