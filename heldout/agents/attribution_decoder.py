"""SGQN's attribution-prediction head: from the trunk's embedding and the action, logits of the mask.

Bertoin et al. 2022, "Look where you look! Saliency-guided Q-networks for generalization in visual
RL", NeurIPS (code: SuReLI/SGQN, ``DMC/src/algorithms/modules.py`` ``AttributionDecoder``;
ALGORITHMS.md 3.2 and 3.4). The reference decodes a 100-d projection and the action into 9x84x84
logits; for 64x64 Procgen frames (ALGORITHMS.md 3.4)::

    cat(h, a) -> Linear(-> 32 * H/4 * W/4) -> view(32, H/4, W/4) -> ReLU -> Conv(32 -> 128, 3, p1)
    -> upsample x2 -> ReLU -> Conv(128 -> 64, 3, p1) -> upsample x2 -> ReLU -> Conv(64 -> C, 3, p1)

with ``C`` output channels (1: one mask shared by the RGB channels of a frame).
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F  # noqa: N812


def action_encoding(actions: torch.Tensor, action_space: spaces.Space) -> torch.Tensor:
    """One-hot encoding of ``Discrete`` actions; ``Box`` actions flattened as floats."""
    if isinstance(action_space, spaces.Discrete):
        return F.one_hot(actions.long().reshape(-1), int(action_space.n)).float()
    return actions.float().reshape(actions.shape[0], -1)


def action_width(action_space: spaces.Space) -> int:
    """Width of :func:`action_encoding`'s output."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.Box):
        return int(torch.tensor(action_space.shape).prod())
    raise TypeError(f"the attribution decoder supports Discrete and Box actions, got {action_space}")


class AttributionDecoder(nn.Module):
    """Predicts the saliency mask (as logits) from an embedding and the action taken.

    Args:
        features_dim: Width of the trunk's embedding.
        action_dim: Width of the action encoding (15 for Procgen's one-hot actions).
        image_shape: (C, H, W) of the observations; H and W must be multiples of 4.
        out_channels: Channels of the predicted mask (1: shared by all image channels).
        channels: Widths of the two hidden convolutions (SGQN: 128, 64). Its 128 -> 64 convolution
            at H/2 x W/2 costs about three IMPALA trunks; narrower ones make it affordable on a CPU.
    """

    def __init__(
        self,
        features_dim: int,
        action_dim: int,
        image_shape: tuple[int, int, int],
        out_channels: int = 1,
        channels: tuple[int, int] = (128, 64),
    ) -> None:
        super().__init__()
        _, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"the attribution decoder needs H and W divisible by 4, got {h}x{w}")
        self.base = (h // 4, w // 4)
        self.fc = nn.Linear(features_dim + action_dim, 32 * self.base[0] * self.base[1])
        self.relu0 = nn.ReLU()
        wide, narrow = (int(c) for c in channels)
        self.conv0 = nn.Conv2d(32, wide, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(wide, narrow, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(narrow, out_channels, 3, padding=1)

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.cat([features, actions], dim=1)).view(-1, 32, *self.base)
        x = self.conv0(self.relu0(x))
        x = F.interpolate(x, scale_factor=2)
        x = self.conv1(self.relu1(x))
        x = F.interpolate(x, scale_factor=2)
        return self.conv2(self.relu2(x))


__all__ = ["AttributionDecoder", "action_encoding", "action_width"]
