"""Hyperbolic policy and value heads for every PPO-family agent: the Poincaré ball with S-RYM, and Hyper++.

A PPO agent's geometry is a network option (``--agent-arg representation=...``), not an algorithm:
the trunk stays the agent's own (IMPALA-CNN or MLP) and only the heads change. With
``representation="poincare"`` the final Euclidean representation ``e`` is mapped onto the Poincaré
ball of curvature ``-c`` and the policy logits and the value are hyperbolic multinomial-regression
("gyroplane") outputs (Ganea et al. 2018), as in Cetin et al. 2023; ``s_rym=True`` adds their fix,
spectral normalisation of every encoder layer plus the ``1/sqrt(d)`` rescaling of ``e``.
``representation="hyperboloid"`` is Hyper++'s layer (Klein et al. 2025): the Lorentz model and
its MLR, computed in float64; ``feature_reg=True`` its bounded features and ``hl_gauss=True`` its
categorical value loss (:class:`HLGauss`), each a switch of its own so that each claim can be
tested alone.

The manifold operations are written here, small and tested against their closed forms
(tests/agents/test_hyperbolic.py), rather than taken from geoopt: only four functions are needed,
geoopt's ``arsinh`` is one-sided (inaccurate for negative arguments in float32), and its
Riemannian optimiser is not needed because the ball's points are parameterised through the
exponential map (:class:`PoincareMLR`). The differences from both authors' code are listed in
docs/agents.md ("Hyperbolic representations").

References:
    Cetin, Chamberlain, Bronstein, Hunt 2023, "Hyperbolic Deep Reinforcement Learning", ICLR.
    https://arxiv.org/abs/2210.01542 (code: twitter-research/hyperbolic-rl)
    Klein et al. 2025, "Understanding and Improving Hyperbolic Deep Reinforcement Learning".
    https://arxiv.org/abs/2512.14202 (code: Probabilistic-and-Interactive-ML/hyper-rl)
    Ganea, Bécigneul, Hofmann 2018, "Hyperbolic Neural Networks", NeurIPS.
    Bdeir, Schwethelm, Landwehr 2024, "Fully Hyperbolic Convolutional Neural Networks for Computer
    Vision", ICLR (the Lorentz MLR).
    Farebrother et al. 2024, "Stop Regressing: Training Value Functions via Classification for
    Scalable Deep RL", ICML (HL-Gauss).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: The representations a PPO agent's heads can use (``--agent-arg representation=...``).
REPRESENTATIONS: tuple[str, ...] = ("euclidean", "poincare", "hyperboloid")

#: Width of the final representation of the hyperbolic variants on the IMPALA-CNN (both codebases).
HYPERBOLIC_DIM = 32

#: The norm the Euclidean representation is clipped to before the exponential map (the authors'
#: ``ClipNorm(60)``, a NaN guard).
CLIP_NORM = 60.0

#: Hyper++'s bound on the distance of a point from the origin: ``artanh(0.95) / sqrt(c)``.
FEATURE_BOUND = math.atanh(0.95)

#: Hyper++'s categorical value: the number of bins on [-10, 10].
HL_GAUSS_BINS = 51

#: The guard against division by zero (geoopt's ``min_norm``).
MIN_NORM = 1e-15


def check_geometry(representation: Any, curvature: Any, feature_reg: Any = False) -> None:
    """Raises ValueError naming a bad representation, a curvature that is not a number > 0, or
    ``feature_reg`` without a hyperbolic representation; valid values in the message."""
    if representation not in REPRESENTATIONS:
        raise ValueError(
            f"agent argument representation={representation!r} is not one of {', '.join(REPRESENTATIONS)}"
        )
    if isinstance(curvature, bool) or not isinstance(curvature, (int, float)) or not 0 < curvature < math.inf:
        raise ValueError(
            f"agent argument curvature={curvature!r} must be a finite number > 0 (the manifold's curvature is -curvature)"
        )
    if feature_reg and representation == "euclidean":
        raise ValueError(
            "agent argument feature_reg=true bounds the representation before a hyperbolic map: it needs representation "
            f"{' or '.join(REPRESENTATIONS[1:])}, got euclidean"
        )


def boundary_eps(dtype: torch.dtype) -> float:
    """How far inside the unit boundary a point is kept (geoopt's ``BALL_EPS``): 4e-3 in float32,
    1e-5 in float64; the ball's radius is ``(1 - eps) / sqrt(c)``."""
    return 1e-5 if dtype == torch.float64 else 4e-3


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)


def project(x: torch.Tensor, c: float) -> torch.Tensor:
    """``x`` pulled back inside the ball ``c * |x|^2 < 1``: norm at most ``(1 - eps) / sqrt(c)``."""
    radius = (1.0 - boundary_eps(x.dtype)) / math.sqrt(c)
    norm = _norm(x)
    return torch.where(norm > radius, x / norm * radius, x)


def expmap0(v: torch.Tensor, c: float) -> torch.Tensor:
    """The exponential map at the origin, ``tanh(sqrt(c)|v|) v / (sqrt(c)|v|)``, projected inside the ball."""
    sqrt_c = math.sqrt(c)
    norm = _norm(v)
    return project(torch.tanh((sqrt_c * norm).clamp_max(15.0)) * v / (sqrt_c * norm), c)


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """Möbius addition ``x (+) y`` on the ball of curvature ``-c`` (broadcasting over leading dimensions)."""
    xy = (x * y).sum(dim=-1, keepdim=True)
    x2 = (x * x).sum(dim=-1, keepdim=True)
    y2 = (y * y).sum(dim=-1, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return numerator / (1 + 2 * c * xy + c**2 * x2 * y2).clamp_min(MIN_NORM)


def distance(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """The geodesic distance ``(2 / sqrt(c)) artanh(sqrt(c) |(-x) (+) y|)``, shape ``(...)``."""
    sqrt_c = math.sqrt(c)
    argument = (sqrt_c * mobius_add(-x, y, c).norm(dim=-1)).clamp_max(1 - 1e-7)
    return 2 / sqrt_c * torch.atanh(argument)


def gyroplane_logits(x: torch.Tensor, points: torch.Tensor, normals: torch.Tensor, c: float) -> torch.Tensor:
    """The MLR logits of ``x`` against the gyroplanes ``H_k = {y : <(-p_k) (+) y, a_k> = 0}``.

    With ``w_k = (-p_k) (+) x`` and ``a_k = 2 z_k / lambda_{p_k}`` (the authors' reparameterisation),
    the logit is ``|z_k| / sqrt(c) * asinh(2 sqrt(c) <w_k, z_k> / ((1 - c|w_k|^2) |z_k|))``: half of Ganea
    et al.'s ``lambda_{p_k} |a_k| d(x, H_k)``, exactly what twitter-research/hyperbolic-rl computes at c = 1.
    As ``c -> 0`` it tends to ``2 <x - p_k, z_k>``, a Euclidean linear layer.

    Args:
        x: Points in the ball, shape (B, d).
        points: The gyroplanes' points p_k in the ball, shape (K, d).
        normals: The Euclidean normals z_k, shape (K, d).
        c: The curvature's magnitude (> 0).

    Returns:
        Logits of shape (B, K).
    """
    sqrt_c = math.sqrt(c)
    w = mobius_add(-points.unsqueeze(0), x.unsqueeze(1), c)  # (B, K, d)
    z_norm = normals.norm(dim=-1).clamp_min(MIN_NORM)  # (K,)
    inner = (w * normals.unsqueeze(0)).sum(dim=-1)  # (B, K)
    denominator = ((1 - c * (w * w).sum(dim=-1)) * z_norm).clamp_min(MIN_NORM)
    return z_norm / sqrt_c * torch.asinh(2 * sqrt_c * inner / denominator)


def softclamp(x: torch.Tensor, limit: float, beta: float = 50.0) -> torch.Tensor:
    """``x`` bounded smoothly to ``[-limit, limit]`` (softplus with ``beta``), Hyper++'s guard of ``asinh``."""
    upper = limit - F.softplus(limit - x, beta=beta)
    return F.softplus(upper + limit, beta=beta) - limit


def lorentz_expmap0(v: torch.Tensor, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The exponential map at the hyperboloid's origin of the tangent vector ``(0, v)``.

    Returns:
        ``(x0, xs)``: the time coordinate (B, 1) and the space coordinates (B, d), on
        ``-x0^2 + |xs|^2 = -1/c``; ``x0`` is recomputed from ``xs`` as Hyper++ does.
    """
    sqrt_c = math.sqrt(c)
    norm = _norm(v)
    xs = torch.sinh((sqrt_c * norm).clamp_max(30.0)) * v / (sqrt_c * norm)
    x0 = torch.sqrt((xs * xs).sum(dim=-1, keepdim=True) + 1 / c)
    return x0, xs


def lorentz_logits(
    x0: torch.Tensor, xs: torch.Tensor, normals: torch.Tensor, offsets: torch.Tensor, c: float
) -> torch.Tensor:
    """The Lorentz MLR (Bdeir et al.) of Hyper++: per unit, with ``alpha = cosh(sqrt(c) r)<z, xs> -
    sinh(sqrt(c) r)|z| x0``, the logit ``|z| / sqrt(c) * asinh(softclamp(sqrt(c) alpha / |z|))``.

    Args:
        x0, xs: A point of the hyperboloid (:func:`lorentz_expmap0`), shapes (B, 1) and (B, d).
        normals: z_k, shape (K, d).
        offsets: r_k, shape (K,).
        c: The curvature's magnitude.

    Returns:
        Logits of shape (B, K), in the dtype of the inputs.
    """
    sqrt_c = math.sqrt(c)
    z_norm = normals.norm(dim=-1).clamp_min(MIN_NORM)
    alpha = torch.cosh(sqrt_c * offsets) * (xs @ normals.T) - torch.sinh(sqrt_c * offsets) * z_norm * x0
    limit = math.log(2 / torch.finfo(xs.dtype).eps)
    return z_norm / sqrt_c * torch.asinh(softclamp(sqrt_c * alpha / z_norm, limit))


class FeatureBound(nn.Module):
    """Hyper++'s feature regularisation: ``RMSNorm -> tanh -> / sqrt(d) -> * sigmoid(Linear(d, 1)) *
    artanh(0.95) / sqrt(c)``, so the tangent vector's norm is below ``artanh(0.95) / sqrt(c)``."""

    def __init__(self, dim: int, c: float) -> None:
        super().__init__()
        self.dim, self.c = dim, c
        self.scale = nn.Linear(dim, 1)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(F.rms_norm(e, (self.dim,))) / math.sqrt(self.dim)
        return h * torch.sigmoid(self.scale(h)) * FEATURE_BOUND / math.sqrt(self.c)


class HyperbolicHead(nn.Module):
    """One head (policy logits or value outputs) computed on a hyperbolic representation.

    Forward on a Euclidean representation ``e`` (B, d): the tangent vector ``v`` is ``e`` clipped to norm
    :data:`CLIP_NORM` and divided by ``sqrt(d)`` (``rescale``, S-RYM's half), or Hyper++'s
    :class:`FeatureBound` (``feature_reg``); then mapped to the manifold at its origin and through the
    MLR layer, computed in float32 (Poincaré) or float64 (hyperboloid) whatever the trunk's precision.

    Attributes:
        last_radius: The mean distance from the origin of the last forward pass's points, detached
            (logged per update as ``train/hyperbolic_radius``).

    Args:
        in_dim: Width d of the representation.
        out_dim: Number of outputs K (actions, 1 value, or the HL-Gauss bins).
        model: ``"poincare"`` or ``"hyperboloid"``.
        c: The curvature's magnitude (> 0).
        rescale: Divide the clipped representation by ``sqrt(d)`` (S-RYM).
        feature_reg: Hyper++'s bounded features instead of the clip and rescale.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        model: str,
        c: float,
        rescale: bool = False,
        feature_reg: bool = False,
    ) -> None:
        super().__init__()
        if model not in REPRESENTATIONS[1:]:
            raise ValueError(f"unknown hyperbolic model {model!r}; valid: {', '.join(REPRESENTATIONS[1:])}")
        self.model, self.c, self.rescale = model, float(c), bool(rescale)
        self.features = FeatureBound(in_dim, self.c) if feature_reg else None
        # Normals z_k ~ N(0, 1/d) (Hyper++; see docs/agents.md for the authors' init); points at the origin.
        self.normals = nn.Parameter(torch.randn(out_dim, in_dim) / math.sqrt(in_dim))
        if model == "poincare":  # p_k = expmap0(u_k): always inside the ball, plain Adam suffices
            self.point_tangents = nn.Parameter(torch.zeros(out_dim, in_dim))
        else:
            self.offsets = nn.Parameter(torch.zeros(out_dim))
        self.last_radius: torch.Tensor | None = None

    def tangent(self, e: torch.Tensor) -> torch.Tensor:
        """The tangent vector at the origin that ``e`` is mapped to (before the exponential map)."""
        if self.features is not None:
            return self.features(e)
        norm = _norm(e)
        v = e * (CLIP_NORM / norm).clamp_max(1.0)
        return v / math.sqrt(e.shape[-1]) if self.rescale else v

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=e.device.type, enabled=False):
            e = e.float()
            v = self.tangent(e)
            if self.model == "poincare":
                x = expmap0(v, self.c)
                points = expmap0(self.point_tangents, self.c)
                out = gyroplane_logits(x, points, self.normals, self.c)
                radius = (
                    2
                    / math.sqrt(self.c)
                    * torch.atanh((math.sqrt(self.c) * x.norm(dim=-1)).clamp_max(1 - 1e-7))
                )
            else:
                x0, xs = lorentz_expmap0(v.double(), self.c)
                out = lorentz_logits(x0, xs, self.normals.double(), self.offsets.double(), self.c).float()
                radius = torch.acosh((math.sqrt(self.c) * x0.squeeze(-1)).clamp_min(1.0)).float() / math.sqrt(
                    self.c
                )
        self.last_radius = radius.detach().mean()
        return out


class HLGauss(nn.Module):
    """Hyper++'s categorical value: ``bins`` logits over ``[low, high]``, value = expected bin centre,
    trained with cross-entropy against a Gaussian (sigma 0.75 bin widths) histogram of the return.

    Wraps a head that outputs ``bins`` logits; its forward returns the value (B, 1) that rollouts, GAE
    and every agent use, and keeps the logits of the last pass for :meth:`loss`.

    Args:
        head: The module computing the ``bins`` logits.
        bins: Number of bins (51).
        low, high: The support ([-10, 10]; returns outside it are clamped).
    """

    def __init__(self, head: nn.Module, bins: int = 51, low: float = -10.0, high: float = 10.0) -> None:
        super().__init__()
        self.head = head
        self.register_buffer("edges", torch.linspace(low, high, bins + 1), persistent=False)
        self.sigma = 0.75 * (high - low) / bins
        self.last_logits: torch.Tensor | None = None

    @property
    def centres(self) -> torch.Tensor:
        """The bins' centres."""
        return (self.edges[1:] + self.edges[:-1]) / 2

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        logits = self.head(latent).float()
        self.last_logits = logits
        return (torch.softmax(logits, dim=-1) * self.centres).sum(dim=-1, keepdim=True)

    def target(self, returns: torch.Tensor) -> torch.Tensor:
        """The HL-Gauss histogram of ``returns`` (B,): each bin's Gaussian mass, normalised, (B, bins)."""
        y = returns.float().clamp(self.edges[0], self.edges[-1]).unsqueeze(-1)
        cdf = torch.special.ndtr((self.edges - y) / self.sigma)
        mass = cdf[:, 1:] - cdf[:, :-1]
        return mass / (cdf[:, -1:] - cdf[:, :1]).clamp_min(MIN_NORM)

    def loss(self, returns: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the last forward pass's logits against :meth:`target` (mean over the batch)."""
        if self.last_logits is None:
            raise RuntimeError("HLGauss.loss needs a forward pass first")
        log_probs = torch.log_softmax(self.last_logits, dim=-1)
        return -(self.target(returns) * log_probs).sum(dim=-1).mean()


def spectral_normalise(module: nn.Module) -> int:
    """Spectral normalisation (one power iteration per training forward) of every ``Conv2d`` and
    ``Linear`` inside ``module`` (S-RYM's half; convolutions normalised on their kernel reshaped to
    ``(out, in * kh * kw)``, as the authors' torch call does). Returns how many layers it wrapped."""
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        nn.utils.parametrizations.spectral_norm(layer)
    return len(layers)


__all__ = [
    "CLIP_NORM",
    "FEATURE_BOUND",
    "HYPERBOLIC_DIM",
    "REPRESENTATIONS",
    "FeatureBound",
    "HL_GAUSS_BINS",
    "HLGauss",
    "HyperbolicHead",
    "boundary_eps",
    "check_geometry",
    "distance",
    "expmap0",
    "gyroplane_logits",
    "lorentz_expmap0",
    "lorentz_logits",
    "mobius_add",
    "project",
    "softclamp",
    "spectral_normalise",
]
