"""Observation wrappers.

:class:`VisibleContext` makes a contextual env's context part of what the agent sees: the context,
normalised (``(value - lo) / (hi - lo)`` over its declared bounds, or over a given range such as a
run's training distribution), either concatenated to a Box observation or given next to it in a Dict observation. Hidden is the default
everywhere in heldout; a visible context is the "context-aware" setting of Benjamins et al. 2023
("Contextualize Me - The Case for Context in Reinforcement Learning", TMLR, section 6).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

#: How the context is shown.
VISIBLE_MODES: tuple[str, ...] = ("concat", "dict")


class VisibleContext(gymnasium.ObservationWrapper, gymnasium.utils.RecordConstructorArgs):
    """Adds the env's current context, normalised, to every observation.

    Args:
        env: A contextual env (its ``unwrapped`` has ``context_space`` and ``context``).
        mode: ``"concat"``: a float32 Box, the flattened observation then the context;
            ``"dict"``: ``{"obs": observation, "context": normalised context}``.
        scale: ``{feature: (lo, hi)}``: map these ranges to [0, 1] (a run passes its training
            distribution's, so what the agent sees spans [0, 1] over training and held-out contexts
            fall outside it); other features, and all without ``scale``, map their declared bounds to
            [0, 1]. The observation space holds every in-bounds context either way; the raw values
            stay in ``info["context"]``.

    Example:
        >>> import gymnasium, heldout
        >>> env = VisibleContext(gymnasium.make("heldout/ContextualCartPole-v0"), mode="concat")
        >>> env.observation_space.shape
        (10,)
    """

    def __init__(
        self, env: gymnasium.Env, mode: str = "concat", scale: dict[str, tuple[float, float]] | None = None
    ) -> None:
        gymnasium.utils.RecordConstructorArgs.__init__(self, mode=mode, scale=scale)
        gymnasium.ObservationWrapper.__init__(self, env)
        if mode not in VISIBLE_MODES:
            raise ValueError(
                f"unknown visible-context mode {mode!r}; valid modes: {', '.join(VISIBLE_MODES)}"
            )
        space = getattr(env.unwrapped, "context_space", None)
        if space is None:
            raise TypeError(f"{env.unwrapped!r} has no context_space: VisibleContext needs a contextual env")
        self.mode = mode
        self.context_space_ = space
        self.scale = dict(scale) if scale else None
        ctx_low, ctx_high = space.normalised_bounds(self.scale)
        ctx_box = spaces.Box(ctx_low, ctx_high, dtype=np.float32)
        inner = env.observation_space
        if mode == "dict":
            self.observation_space = spaces.Dict({"obs": inner, "context": ctx_box})
        else:
            if not isinstance(inner, spaces.Box):
                raise TypeError(f"concat needs a Box observation space, got {inner}; use mode='dict'")
            low = np.concatenate([inner.low.reshape(-1).astype(np.float32), ctx_box.low])
            high = np.concatenate([inner.high.reshape(-1).astype(np.float32), ctx_box.high])
            self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: Any) -> Any:
        ctx = self.context_space_.normalise(self.env.unwrapped.context, self.scale)
        if self.mode == "dict":
            return {"obs": observation, "context": ctx}
        return np.concatenate([np.asarray(observation, dtype=np.float32).reshape(-1), ctx])


# ------------------------------------------------------------------- batched image wrappers
# Registered BatchWrappers (heldout.wrappers.base): each runs on a single env and on a vectorized one.

from heldout.wrappers.base import BatchWrapper, WrapperContext, register  # noqa: E402

#: ITU-R BT.601 luma weights (what PIL's ``convert("L")`` and OpenCV's ``cvtColor`` use).
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def check_image_space(space: spaces.Space, who: str) -> tuple[int, int, int]:
    """Returns ``(H, W, C)`` of a channel-last uint8 image Box, or raises TypeError naming the space."""
    if not (
        isinstance(space, spaces.Box)
        and len(space.shape) == 3
        and space.dtype == np.uint8
        and space.shape[-1] in (1, 3)
    ):
        raise TypeError(
            f"wrapper {who!r} needs channel-last uint8 images (a Box of shape (H, W, 1 or 3)), got {space}"
        )
    h, w, c = space.shape
    return int(h), int(w), int(c)


def _image_box(h: int, w: int, c: int) -> spaces.Box:
    return spaces.Box(0, 255, (h, w, c), np.uint8)


@register("grayscale", help="RGB -> luma (ITU-R BT.601); channels=3 keeps the shape (an eval-only shift)")
class Grayscale(BatchWrapper):
    """Turns RGB frames into grey ones.

    Args:
        channels: 1 gives ``(H, W, 1)`` frames (a training wrapper: the policy's input changes);
            3 repeats the grey level in three channels, keeping the observation space, so a policy
            trained on colour can be evaluated on grey frames (colour shift of Kirk et al. 2023, JAIR).
    """

    kind = "observation"

    def __init__(self, channels: int = 1) -> None:
        if channels not in (1, 3):
            raise ValueError(f"grayscale channels must be 1 or 3, got {channels!r}")
        self.channels = int(channels)

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        h, w, c = check_image_space(ctx.observation_space, self.name)
        if c != 3:
            raise TypeError(f"grayscale needs RGB frames (3 channels), got {ctx.observation_space}")
        self.ctx = ctx
        return _image_box(h, w, self.channels)

    def observation(self, obs, env_ids, new_episode, infos):  # type: ignore[no-untyped-def]
        grey = np.rint(obs.astype(np.float32) @ LUMA).clip(0, 255).astype(np.uint8)[..., None]
        return np.repeat(grey, self.channels, axis=-1) if self.channels == 3 else grey


def _bilinear_indices(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a half-pixel-centred bilinear resize along one axis."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


@register("resize", help="bilinear resize of image frames to size=[H, W] (or one int)")
class Resize(BatchWrapper):
    """Resizes frames with half-pixel-centred bilinear interpolation (as OpenCV's ``INTER_LINEAR``),
    on the whole batch at once.

    Args:
        size: ``[height, width]`` or one int for a square.
    """

    kind = "observation"

    def __init__(self, size: int | list[int] = 84) -> None:
        sz = [size, size] if isinstance(size, int) and not isinstance(size, bool) else list(size)
        if len(sz) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sz):
            raise ValueError(f"resize size must be a positive int or [height, width], got {size!r}")
        self.size = (int(sz[0]), int(sz[1]))

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        h, w, c = check_image_space(ctx.observation_space, self.name)
        self.ctx = ctx
        self._rows = _bilinear_indices(h, self.size[0])
        self._cols = _bilinear_indices(w, self.size[1])
        return _image_box(*self.size, c)

    def observation(self, obs, env_ids, new_episode, infos):  # type: ignore[no-untyped-def]
        r0, r1, wr = self._rows
        c0, c1, wc = self._cols
        x = obs.astype(np.float32)
        top = x[:, r0] * (1 - wr)[None, :, None, None] + x[:, r1] * wr[None, :, None, None]
        out = top[:, :, c0] * (1 - wc)[None, None, :, None] + top[:, :, c1] * wc[None, None, :, None]
        return np.rint(out).clip(0, 255).astype(np.uint8)


@register("frame-stack", help="the last k observations concatenated on the last (channel) axis")
class FrameStack(BatchWrapper):
    """Stacks the last ``k`` observations along the last axis, as SB3's ``VecFrameStack`` does
    (``(H, W, C)`` -> ``(H, W, k*C)``; vectors ``(n,)`` -> ``(k*n,)``). An episode's first observation
    fills the whole stack (Mnih et al. 2015, Nature).

    Args:
        k: Number of observations stacked.
    """

    kind = "observation"

    def __init__(self, k: int = 4) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"frame-stack k must be a positive integer, got {k!r}")
        self.k = int(k)

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        space = ctx.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) == 0:
            raise TypeError(f"frame-stack needs a Box observation space with at least one axis, got {space}")
        self.ctx = ctx
        self.width = int(space.shape[-1])
        reps = (1,) * (len(space.shape) - 1) + (self.k,)
        out = spaces.Box(np.tile(space.low, reps), np.tile(space.high, reps), dtype=space.dtype)
        self.stack = np.zeros((ctx.num_envs, *out.shape), dtype=space.dtype)
        return out

    def observation(self, obs, env_ids, new_episode, infos):  # type: ignore[no-untyped-def]
        ids = np.asarray(env_ids)
        new = np.asarray(new_episode, dtype=bool)
        reps = (1,) * (obs.ndim - 1) + (self.k,)
        if len(ids) and (len(ids) == 1 or bool(np.all(np.diff(ids) == 1))):
            # consecutive slots (the usual case): shift the stack in place in a view, no gathers
            view = self.stack[ids[0] : ids[-1] + 1]
            if self.k > 1:
                view[..., : -self.width] = view[..., self.width :]
            view[..., -self.width :] = obs
            if new.any():
                view[new] = np.tile(obs[new], reps)
            return view.copy()
        if new.any():
            self.stack[ids[new]] = np.tile(obs[new], reps)
        cont = ~new
        if cont.any():
            old = self.stack[ids[cont]]
            self.stack[ids[cont]] = np.concatenate([old[..., self.width :], obs[cont]], axis=-1)
        return self.stack[ids].copy()


@register("color-jitter", help="random brightness/contrast/saturation/hue, drawn per episode (or step)")
class ColorJitter(BatchWrapper):
    """Random colour changes that keep the observation space: an evaluation shift of looks, or a
    training-time augmentation of the env itself.

    Factors are drawn uniformly from ``[1 - x, 1 + x]`` (brightness, contrast, saturation) and the hue
    rotation from ``[-hue, hue]`` turns of the colour wheel (rotation in YIQ space), as in torchvision's
    ``ColorJitter`` and DMControl-GB's colour modes (Hansen & Wang 2021, ICRA).

    Args:
        brightness: Brightness factor range.
        contrast: Contrast factor range (around each frame's mean grey level).
        saturation: Saturation factor range.
        hue: Hue rotation range, in turns (0.5 = half the wheel).
        per: ``"episode"`` (one draw per episode and slot) or ``"step"`` (a new draw every step).
    """

    kind = "observation"

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        per: str = "episode",
    ) -> None:
        for n, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
                raise ValueError(f"color-jitter {n} must be in [0, 1], got {v!r}")
        if not isinstance(hue, (int, float)) or isinstance(hue, bool) or not 0 <= hue <= 0.5:
            raise ValueError(f"color-jitter hue must be in [0, 0.5], got {hue!r}")
        if per not in ("episode", "step"):
            raise ValueError(f"color-jitter per must be 'episode' or 'step', got {per!r}")
        self.ranges = np.array([brightness, contrast, saturation], dtype=np.float32)
        self.hue = float(hue)
        self.per = per

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        check_image_space(ctx.observation_space, self.name)
        if ctx.observation_space.shape[-1] != 3:
            raise TypeError(f"color-jitter needs RGB frames (3 channels), got {ctx.observation_space}")
        self.ctx = ctx
        self.factors = np.ones((ctx.num_envs, 4), dtype=np.float32)
        self.factors[:, 3] = 0.0
        return ctx.observation_space

    def _draw(self, n: int) -> np.ndarray:
        rng = self.ctx.rng
        f = np.empty((n, 4), dtype=np.float32)
        f[:, :3] = 1 + rng.uniform(-1, 1, size=(n, 3)) * self.ranges
        f[:, 3] = rng.uniform(-self.hue, self.hue, size=n)
        return f

    def observation(self, obs, env_ids, new_episode, infos):  # type: ignore[no-untyped-def]
        ids = np.asarray(env_ids)
        redraw = np.ones(len(ids), dtype=bool) if self.per == "step" else np.asarray(new_episode, dtype=bool)
        if redraw.any():
            self.factors[ids[redraw]] = self._draw(int(redraw.sum()))
        return jitter(obs, self.factors[ids])


#: RGB -> YIQ and back (NTSC), for hue rotation as a linear map.
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32)
_RGB = np.linalg.inv(_YIQ).astype(np.float32)


def jitter(obs: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Applies per-row ``[brightness, contrast, saturation, hue turns]`` to uint8 RGB frames."""
    x = obs.astype(np.float32) / 255.0
    b, c, s, h = (factors[:, i].reshape(-1, 1, 1, 1) for i in range(4))
    x = x * b
    mean = (x @ LUMA).mean(axis=(1, 2)).reshape(-1, 1, 1, 1)
    x = (x - mean) * c + mean
    grey = (x @ LUMA)[..., None]
    x = grey + (x - grey) * s
    theta = 2 * np.pi * factors[:, 3]
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.zeros((len(factors), 3, 3), dtype=np.float32)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    # rows: pixel @ YIQ^T @ R^T @ RGB^T, one 3x3 matrix per row, as a batched matmul
    m = _YIQ.T @ rot.transpose(0, 2, 1) @ _RGB.T
    n, h, w, _ = x.shape
    x = (x.reshape(n, h * w, 3) @ m).reshape(n, h, w, 3)
    return np.rint(x.clip(0, 1) * 255).astype(np.uint8)


@register(
    "gaussian-noise",
    help="Gaussian noise on every observation (std in the space's units), clipped to its bounds",
)
class GaussianNoise(BatchWrapper):
    """Adds zero-mean Gaussian noise to observations, a sensor-noise shift for any Box env: vectors
    (contextual envs) and images alike (for uint8 frames ``std`` is in pixel levels, 0-255).

    Keeps the observation space (values are clipped to its bounds), so it works as an
    evaluation-only shift (Kirk et al. 2023, JAIR: "observation noise" as a generalisation axis).

    Args:
        std: Standard deviation of the noise.
    """

    kind = "observation"

    def __init__(self, std: float = 0.1) -> None:
        if not isinstance(std, (int, float)) or isinstance(std, bool) or not std >= 0 or not np.isfinite(std):
            raise ValueError(f"gaussian-noise std must be a finite number >= 0, got {std!r}")
        self.std = float(std)

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        space = ctx.observation_space
        if not isinstance(space, spaces.Box):
            raise TypeError(f"gaussian-noise needs a Box observation space, got {space}")
        self.ctx = ctx
        return space

    def observation(self, obs, env_ids, new_episode, infos):  # type: ignore[no-untyped-def]
        space = self.ctx.observation_space
        noise = self.ctx.rng.standard_normal(size=obs.shape, dtype=np.float32)
        x = obs.astype(np.float32) + noise * np.float32(self.std)
        x = np.clip(x, space.low, space.high)
        if np.issubdtype(space.dtype, np.integer):
            x = np.rint(x)
        return x.astype(space.dtype)
