"""A distracting background, made procedurally: no downloaded images or videos.

In the spirit of DMControl-GB (Hansen & Wang 2021, "Generalization in Reinforcement Learning by Soft
Data Augmentation", ICRA) and the Distracting Control Suite (Stone et al. 2021), which test an agent
on the same task with new colours or natural videos behind it. Here the distractor is generated:

* ``color``: one random colour per episode (DMControl-GB's ``color_hard`` spirit);
* ``waves``: a moving texture, a sum of plane waves with random direction, frequency, speed and colour
  per episode (the ``video`` modes' spirit: something that moves and means nothing);
* ``noise``: scrolling smoothed noise ("TV static" at a coarse scale), a new field per episode.

Where the distractor goes: by default it is blended into every pixel with weight ``intensity``.
With ``dark_threshold`` set, it replaces only the pixels whose channels are all at most that value,
which on Procgen with ``use_backgrounds=False`` (black backgrounds) is exactly the background.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from heldout.wrappers.base import BatchWrapper, WrapperContext, register
from heldout.wrappers.observation import check_image_space

#: Distractor modes.
BACKGROUND_MODES: tuple[str, ...] = ("color", "waves", "noise")

#: Plane waves in the ``waves`` texture.
N_WAVES = 3
#: Side of the ``noise`` field's coarse grid, in cells (it wraps around as it scrolls).
NOISE_CELLS = 16


@register("distracting-background", help="procedural distractor (color | waves | noise) blended or behind")
class DistractingBackground(BatchWrapper):
    """Adds a procedurally generated, moving distractor to image frames (see the module docstring).

    Keeps the observation space, so it works as an evaluation-only shift of a policy trained on clean
    frames, or as a training condition.

    Args:
        mode: One of :data:`BACKGROUND_MODES`.
        intensity: Weight of the distractor where it is blended (0: none, 1: only the distractor).
        dark_threshold: If set (0-255), replace (fully) only pixels whose channels are all at most
            this value, instead of blending everywhere.
        speed: How fast the texture moves, in pixels per step (``waves``, ``noise``).
    """

    kind = "observation"

    def __init__(
        self,
        mode: str = "waves",
        intensity: float = 0.5,
        dark_threshold: int | None = None,
        speed: float = 1.0,
    ) -> None:
        if mode not in BACKGROUND_MODES:
            raise ValueError(
                f"unknown distracting-background mode {mode!r}; valid modes: {', '.join(BACKGROUND_MODES)}"
            )
        if not isinstance(intensity, (int, float)) or isinstance(intensity, bool) or not 0 <= intensity <= 1:
            raise ValueError(f"distracting-background intensity must be in [0, 1], got {intensity!r}")
        if dark_threshold is not None and (
            not isinstance(dark_threshold, int)
            or isinstance(dark_threshold, bool)
            or not 0 <= dark_threshold <= 255
        ):
            raise ValueError(
                f"distracting-background dark_threshold must be an int in [0, 255], got {dark_threshold!r}"
            )
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or speed < 0:
            raise ValueError(f"distracting-background speed must be >= 0, got {speed!r}")
        self.mode = mode
        self.intensity = float(intensity)
        self.dark_threshold = dark_threshold
        self.speed = float(speed)

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        h, w, c = check_image_space(ctx.observation_space, self.name)
        if c != 3:
            raise TypeError(
                f"distracting-background needs RGB frames (3 channels), got {ctx.observation_space}"
            )
        self.ctx = ctx
        n = ctx.num_envs
        self.h, self.w = h, w
        self.t = np.zeros(n, dtype=np.float32)
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.colour = np.zeros((n, N_WAVES, 3), dtype=np.float32)
        self.direction = np.zeros((n, N_WAVES, 2), dtype=np.float32)
        self.freq = np.zeros((n, N_WAVES), dtype=np.float32)
        self.phase = np.zeros((n, N_WAVES), dtype=np.float32)
        self.velocity = np.zeros((n, 2), dtype=np.float32)
        self.field = np.zeros((n, NOISE_CELLS, NOISE_CELLS, 3), dtype=np.float32)
        self._draw(np.arange(n))
        return ctx.observation_space

    def _draw(self, ids: np.ndarray) -> None:
        """New distractor parameters for the episodes starting in slots ``ids``."""
        rng, k = self.ctx.rng, len(ids)
        self.t[ids] = 0.0
        self.colour[ids] = rng.uniform(0, 1, size=(k, N_WAVES, 3))
        angle = rng.uniform(0, 2 * np.pi, size=(k, N_WAVES))
        self.direction[ids] = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        self.freq[ids] = rng.uniform(2, 6, size=(k, N_WAVES)) * 2 * np.pi / max(self.h, self.w)
        self.phase[ids] = rng.uniform(0, 2 * np.pi, size=(k, N_WAVES))
        heading = rng.uniform(0, 2 * np.pi, size=k)
        self.velocity[ids] = np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        self.field[ids] = rng.uniform(0, 1, size=(k, NOISE_CELLS, NOISE_CELLS, 3))

    def texture(self, ids: np.ndarray) -> np.ndarray:
        """The distractor of slots ``ids`` at their current time step, float32 in [0, 1], (k, H, W, 3)."""
        if self.mode == "color":
            return np.broadcast_to(self.colour[ids, 0][:, None, None, :], (len(ids), self.h, self.w, 3))
        shift = (self.t[ids] * self.speed)[:, None] * self.velocity[ids]  # (k, 2) pixels moved
        if self.mode == "waves":
            x = self.xx[None, None] - shift[:, None, 0, None, None]
            y = self.yy[None, None] - shift[:, None, 1, None, None]
            d = self.direction[ids]
            arg = (
                self.freq[ids][..., None, None] * (x * d[..., 0, None, None] + y * d[..., 1, None, None])
                + self.phase[ids][..., None, None]
            )
            wave = 0.5 + 0.5 * np.sin(arg)  # (k, N_WAVES, H, W)
            k = len(ids)
            flat = wave.reshape(k, N_WAVES, self.h * self.w).transpose(0, 2, 1)  # (k, H*W, N_WAVES)
            return (flat @ (self.colour[ids] * (1.5 / N_WAVES))).reshape(k, self.h, self.w, 3)
        # noise: bilinear samples of a wrapping coarse field, scrolled
        cell = max(self.h, self.w) / NOISE_CELLS
        gx = (self.xx[None] + shift[:, 0, None, None]) / cell
        gy = (self.yy[None] + shift[:, 1, None, None]) / cell
        x0, y0 = np.floor(gx), np.floor(gy)
        fx, fy = (gx - x0)[..., None], (gy - y0)[..., None]
        x0 = x0.astype(np.int64) % NOISE_CELLS
        y0 = y0.astype(np.int64) % NOISE_CELLS
        x1, y1 = (x0 + 1) % NOISE_CELLS, (y0 + 1) % NOISE_CELLS
        f = self.field[ids]
        k = np.arange(len(ids))[:, None, None]
        top = f[k, y0, x0] * (1 - fx) + f[k, y0, x1] * fx
        bottom = f[k, y1, x0] * (1 - fx) + f[k, y1, x1] * fx
        return top * (1 - fy) + bottom * fy

    def observation(self, obs, env_ids, new_episode, infos):  # type: ignore[no-untyped-def]
        ids = np.asarray(env_ids)
        new = np.asarray(new_episode, dtype=bool)
        if new.any():
            self._draw(ids[new])
        if (~new).any():
            self.t[ids[~new]] += 1.0
        tex = np.clip(self.texture(ids), 0, 1) * 255.0
        x = obs.astype(np.float32)
        if self.dark_threshold is None:
            out = (1 - self.intensity) * x + self.intensity * tex
        else:
            dark = (obs <= self.dark_threshold).all(axis=-1, keepdims=True)
            out = np.where(dark, tex, x)
        return np.rint(out).clip(0, 255).astype(np.uint8)
