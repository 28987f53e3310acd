"""Saliency-guided feature decorrelation by sample reweighting (the maths of SGFD).

Huang et al. 2023, "Saliency-Guided Features Decorrelation for Out-of-Distribution Generalization
in Reinforcement Learning" (SGFD), NeurIPS, https://arxiv.org/abs/2310.05086 (code:
SiliHuang-ai/SGFD ``reweighting.py``, a modified copy of StableNet's sample reweighting: Zhang et al.
2021, "Deep Stable Learning for Out-Of-Distribution Generalization", CVPR). ALGORITHMS.md 4.1.

Sample weights ``w`` (non-negative, summing to 1) are learned so that, under ``w``, the random
Fourier features of different feature dimensions are uncorrelated, each pair weighted by the
saliency of both dimensions for a level (environment) classifier::

    U = RFF(z)  in R^{n x d x 2K}
    C^(k) = sum_n w_n u_n u_n^T - (sum_n w_n u_n)(sum_n w_n u_n)^T     (u_n = U[n, :, k])
    L_B(w) = sum_k sum_{i != j} S_ij (C^(k)_ij)^2,   S = s s^T,  s = 7 softmax_j(mean_n |GBP_z g(z)|)
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from heldout.agents.saliency import attribute


def random_fourier_features(
    z: torch.Tensor, num_f: int = 5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """StableNet / SGFD random Fourier features of each feature dimension, (n, d, 2K).

    ``m[n, j, k] = w_k z[n, j] + b[j, k]`` with ``w_k ~ N(0, 1)``, ``b ~ U[0, 2 pi)``; ``m`` is then
    min-max normalised over the *feature* axis j (per sample and k) to [0, pi/2], and
    ``U = sqrt(2 / K) [cos m, sin m]``. A fresh draw each call (from ``generator``, on the CPU).
    """
    n, d = z.shape
    w = torch.randn(num_f, generator=generator).to(z.device, z.dtype)
    b = (2 * math.pi * torch.rand(d, num_f, generator=generator)).to(z.device, z.dtype)
    m = z[:, :, None] * w[None, None, :] + b[None]
    m = m - m.min(dim=1, keepdim=True).values
    m = m / m.max(dim=1, keepdim=True).values.clamp_min(1e-12) * (math.pi / 2)
    return math.sqrt(2.0 / num_f) * torch.cat([torch.cos(m), torch.sin(m)], dim=-1)


def weighted_covariance(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_n w_n u_n u_n^T - (sum_n w_n u_n)(sum_n w_n u_n)^T`` for u (n, d) or (k, n, d); w sums to 1.

    Equals ``numpy.cov(u.T, aweights=w, bias=True)`` for normalised ``w``.
    """
    if u.ndim == 2:
        return weighted_covariance(u[None], w)[0]
    mean = torch.einsum("n,knd->kd", w, u)
    second = torch.einsum("n,kni,knj->kij", w, u, u)
    return second - mean[:, :, None] * mean[:, None, :]


def decorrelation_loss(
    rff: torch.Tensor, w: torch.Tensor, saliency: torch.Tensor | None = None
) -> torch.Tensor:
    """``L_B = sum_k sum_{i != j} S_ij C^(k)_ij^2`` over the 2K slices of ``rff`` (n, d, 2K).

    ``saliency`` None: all pairs weigh 1 (StableNet).
    """
    cov = weighted_covariance(rff.permute(2, 0, 1), w)  # (2K, d, d)
    sq = cov**2
    d = sq.shape[-1]
    off = 1.0 - torch.eye(d, device=sq.device, dtype=sq.dtype)
    weight = off if saliency is None else off * saliency
    return (sq * weight).sum()


class LevelClassifier(nn.Module):
    """SGFD's environment classifier ``Envclassify``: Linear(d, 128)-ReLU-Linear(128, 128)-ReLU-Linear(128, E).

    Returns logits; ReLUs are modules, so guided backprop sees them.
    """

    def __init__(self, features_dim: int, num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def saliency_matrix(
    classifier: nn.Module, z: torch.Tensor, labels: torch.Tensor, scale: float = 7.0
) -> torch.Tensor:
    """SGFD's ``S = s s^T`` with ``s = scale * softmax_j(mean_n |A_nj|)``, detached.

    ``A`` is the guided backprop of the classifier's probability of each sample's level
    (SGFD averages over its four hard-coded classes; with many levels the true label is used,
    ALGORITHMS.md 4.3).
    """
    labels = labels.long().reshape(-1)

    def prob_of_label(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(classifier(x), dim=1).gather(1, labels[:, None]).squeeze(1)

    attr = attribute(prob_of_label, z, method="guided_backprop", module=classifier)
    s = scale * torch.softmax(attr.abs().mean(dim=0), dim=0)
    return (s[:, None] * s[None, :]).detach()


class SampleWeightLearner:
    """SGFD's ``weight_learner``: sample weights that decorrelate features, with a running memory.

    Each call starts from ``theta = 1`` and runs ``epochs`` SGD steps (momentum 0.9, learning rate
    ``lr * 0.1^(it // 10)``) on ``L_B / L_B.detach() + 5 L_P / L_P.detach()``, where ``L_B`` is
    :func:`decorrelation_loss` of the current and the remembered features under
    ``softmax(cat(theta, theta_pre))`` (over 2B) and ``L_P = sum softmax_B(theta)^decay_pow``. The
    memory then becomes ``z_pre <- r z_pre + (1 - r) z``, ``theta_pre <- r theta_pre + (1 - r) theta``
    (``r = presave_ratio``; the first call stores the batch itself).

    Args:
        num_f: Random Fourier features per dimension (K; 2K slices with cos and sin).
        epochs: Inner SGD steps (SGFD ``epochb``, 20).
        lr: SGFD ``lrbl`` (1.0).
        decay_pow: Power of the weight-concentration penalty (2).
        presave_ratio: Memory decay (0.9).
        generator: CPU generator of the random Fourier features.
    """

    def __init__(
        self,
        num_f: int = 5,
        epochs: int = 20,
        lr: float = 1.0,
        decay_pow: float = 2.0,
        presave_ratio: float = 0.9,
        generator: torch.Generator | None = None,
    ) -> None:
        self.num_f = num_f
        self.epochs = epochs
        self.lr = lr
        self.decay_pow = decay_pow
        self.presave_ratio = presave_ratio
        self.generator = generator
        self.z_pre: torch.Tensor | None = None
        self.theta_pre: torch.Tensor | None = None
        self.history: list[float] = []

    def learn(self, z: torch.Tensor, saliency: torch.Tensor | None = None) -> torch.Tensor:
        """Weights (B,) summing to 1 for the features ``z`` (B, d) (detached)."""
        z = z.detach()
        b = z.shape[0]
        memory = self.z_pre is not None and self.z_pre.shape == z.shape
        all_z = torch.cat([z, self.z_pre]) if memory else z  # type: ignore[list-item]
        theta = torch.ones(b, 1, device=z.device, dtype=z.dtype, requires_grad=True)
        optimizer = torch.optim.SGD([theta], lr=self.lr, momentum=0.9)
        self.history = []
        for it in range(self.epochs):
            for group in optimizer.param_groups:
                group["lr"] = self.lr * 0.1 ** (it // 10)
            all_theta = torch.cat([theta, self.theta_pre]) if memory else theta  # type: ignore[list-item]
            w = torch.softmax(all_theta, dim=0).reshape(-1)
            loss_b = decorrelation_loss(
                random_fourier_features(all_z, self.num_f, self.generator), w, saliency
            )
            loss_p = (torch.softmax(theta, dim=0) ** self.decay_pow).sum()
            loss = loss_b / loss_b.detach().clamp_min(1e-12) + 5.0 * loss_p / loss_p.detach()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            self.history.append(float(loss_b.detach()))
        theta = theta.detach()
        if memory:
            r = self.presave_ratio
            self.z_pre = r * self.z_pre + (1 - r) * z  # type: ignore[operator]
            self.theta_pre = r * self.theta_pre + (1 - r) * theta  # type: ignore[operator]
        else:
            self.z_pre, self.theta_pre = z.clone(), theta.clone()
        return torch.softmax(theta, dim=0).reshape(-1)


def classifier_step(
    classifier: nn.Module,
    optimizer: torch.optim.Optimizer,
    z: torch.Tensor,
    labels: torch.Tensor,
    threshold: float = 0.8,
) -> float:
    """One cross-entropy step of the level classifier on detached features, if its accuracy is below
    ``threshold`` (SGFD trains it only while accuracy < 0.8); returns the accuracy before the step.

    (SGFD applies cross-entropy to softmax outputs, a double softmax; this uses the logits.)
    """
    logits = classifier(z.detach())
    labels = labels.long().reshape(-1)
    accuracy = float((logits.argmax(dim=1) == labels).float().mean())
    if accuracy >= threshold:
        return accuracy
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return accuracy


__all__ = [
    "LevelClassifier",
    "SampleWeightLearner",
    "classifier_step",
    "decorrelation_loss",
    "random_fourier_features",
    "saliency_matrix",
    "weighted_covariance",
]
