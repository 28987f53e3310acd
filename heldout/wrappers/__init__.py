"""Wrappers, grouped by what they change. Never imports torch or SB3.

Every registered wrapper (:data:`WRAPPERS`) is a :class:`~heldout.wrappers.base.BatchWrapper`,
written once on batches of rows and run on a single gymnasium env (:class:`SingleEnvAdapter`) or on a
vectorized env such as the native Procgen env (:class:`VecEnvAdapter`); :func:`apply_wrapper` picks
the adapter. ``heldout train --wrapper NAME[:key=value,...]`` names them for training,
``heldout eval RUN_DIR --wrapper ...`` for an evaluation-only shift (docs/adding-a-wrapper.md).

* observation (:mod:`.observation`, :mod:`.background`): grayscale, resize, frame-stack,
  color-jitter, gaussian-noise, distracting-background;
* context (:mod:`.context`): visible-context;
* reward (:mod:`.reward`): reward-scale, reward-clip;
* recording (:mod:`.recording`): episode-stats, video.
"""

from __future__ import annotations

from heldout.wrappers.background import DistractingBackground
from heldout.wrappers.base import (
    KINDS,
    WRAPPERS,
    BatchWrapper,
    SingleEnvAdapter,
    VecEnvAdapter,
    WrapperContext,
    WrapperSpec,
    applies_at,
    apply_wrapper,
    apply_wrappers,
    is_vec_env,
    parse_specs,
    register,
)
from heldout.wrappers.context import VisibleContextWrapper
from heldout.wrappers.observation import (  # noqa: I001  (registration order: observation first)
    ColorJitter,
    FrameStack,
    GaussianNoise,
    Grayscale,
    Resize,
    VisibleContext,
)
from heldout.wrappers.recording import EpisodeStats, Video
from heldout.wrappers.reward import RewardClip, RewardScale

__all__ = [
    "KINDS",
    "WRAPPERS",
    "BatchWrapper",
    "ColorJitter",
    "DistractingBackground",
    "EpisodeStats",
    "FrameStack",
    "GaussianNoise",
    "Grayscale",
    "Resize",
    "RewardClip",
    "RewardScale",
    "SingleEnvAdapter",
    "VecEnvAdapter",
    "Video",
    "VisibleContext",
    "VisibleContextWrapper",
    "WrapperContext",
    "WrapperSpec",
    "applies_at",
    "apply_wrapper",
    "apply_wrappers",
    "is_vec_env",
    "parse_specs",
    "register",
]
