"""Reward wrappers: change the training signal, never what evaluation records.

Named for training, they apply to the training env only: evaluation always records the env's own
returns, so runs with and without them stay comparable (see :func:`heldout.wrappers.base.applies_at`).
"""

from __future__ import annotations

import numpy as np

from heldout.wrappers.base import BatchWrapper, register


@register("reward-scale", help="multiplies every reward by scale")
class RewardScale(BatchWrapper):
    """Multiplies rewards by a constant.

    Args:
        scale: The factor (non-zero).
    """

    kind = "reward"

    def __init__(self, scale: float = 1.0) -> None:
        if (
            not isinstance(scale, (int, float))
            or isinstance(scale, bool)
            or scale == 0
            or not np.isfinite(scale)
        ):
            raise ValueError(f"reward-scale scale must be a finite non-zero number, got {scale!r}")
        self.scale = float(scale)

    def reward(self, reward, env_ids, infos):  # type: ignore[no-untyped-def]
        return reward * self.scale


@register("reward-clip", help="clips every reward to [low, high]; sign=true gives sign(r) as in Atari DQN")
class RewardClip(BatchWrapper):
    """Clips rewards to ``[low, high]``, or to their sign (Mnih et al. 2015, Nature).

    Args:
        low: Lower bound.
        high: Upper bound (> low).
        sign: Use ``sign(r)`` instead.
    """

    kind = "reward"

    def __init__(self, low: float = -1.0, high: float = 1.0, sign: bool = False) -> None:
        if not (isinstance(low, (int, float)) and isinstance(high, (int, float))) or not low < high:
            raise ValueError(f"reward-clip needs numbers low < high, got low={low!r}, high={high!r}")
        self.low, self.high, self.sign = float(low), float(high), bool(sign)

    def reward(self, reward, env_ids, infos):  # type: ignore[no-untyped-def]
        return np.sign(reward) if self.sign else np.clip(reward, self.low, self.high)
