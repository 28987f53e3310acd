"""A wrapper in one file: sensor dropout, for Procgen frames and contextual vectors alike.

Each observation entry is lost (set to 0, clipped into the space's bounds) with probability ``p``,
independently at every step: a failing-sensor shift in the spirit of the observation-noise axis of
Kirk et al. 2023 ("A Survey of Zero-shot Generalisation in Deep Reinforcement Learning", JAIR).
It keeps the observation space, so it can be a training condition or an evaluation-only shift:

    heldout train --import docs/examples/sensor_dropout.py --wrapper sensor-dropout:p=0.05 ...
    heldout eval RUN_DIR --import docs/examples/sensor_dropout.py --wrapper sensor-dropout:p=0.2

See docs/adding-a-wrapper.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from heldout.wrappers import BatchWrapper, WrapperContext, register


@register("sensor-dropout", help="each observation entry set to 0 with probability p, every step")
class SensorDropout(BatchWrapper):
    """Zeroes each observation entry with probability ``p`` (see the module docstring).

    Args:
        p: Probability that an entry is lost, in [0, 1].
    """

    kind = "observation"

    def __init__(self, p: float = 0.1) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"sensor-dropout p must be a number in [0, 1], got {p!r}")
        self.p = float(p)

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        space = ctx.observation_space
        if not isinstance(space, spaces.Box):
            raise TypeError(f"sensor-dropout needs a Box observation space, got {space}")
        self.ctx = ctx
        self.lost_value = np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
        return space  # unchanged: fine as an evaluation-only shift

    def observation(
        self, obs: np.ndarray, env_ids: np.ndarray, new_episode: np.ndarray, infos: Any
    ) -> np.ndarray:
        # one call for the whole batch: rows are env slots, drawn from the wrapper's own generator
        lost = self.ctx.rng.random(obs.shape) < self.p
        return np.where(lost, self.lost_value, obs)
