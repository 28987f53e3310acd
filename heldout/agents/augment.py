"""Image augmentations on batched tensors, registered by name in :data:`AUGMENTATIONS`.

The catalogue of the data-augmented agents on Procgen (RAD, DrAC, UCB-DrAC; ALGORITHMS.md 2.1),
written as batched tensor operations: one gather, one grouped convolution or one masked fill per
batch, never a Python loop over images, so they run on whatever device the batch is on.

Every augmentation works in two steps, so that its random parameters can be held fixed or redrawn:

* :meth:`Augmentation.sample` draws one parameter set per sample from a CPU ``torch.Generator``
  (a seed fixes them, whatever the device; no global RNG is touched);
* :meth:`Augmentation.apply` applies given parameters to a batch.

Calling an augmentation does both (new parameters per call), which is what DrAC does after every
minibatch. RAD instead draws one parameter set per env and holds it for a whole rollout
(:class:`heldout.agents.rad.RAD`).

Images are float tensors of shape (B, C, H, W) in [0, 1] (``uint8`` input is divided by 255).
Outputs stay in [0, 1] except ``random-conv`` (unbounded, as the reference) and ``cutout-color`` with
``faithful=True``.

References:
    Laskin et al. 2020, "Reinforcement Learning with Augmented Data", NeurIPS.
    https://arxiv.org/abs/2004.14990 (code: pokaxpoka/rad_procgen)
    Raileanu et al. 2021, "Automatic Data Augmentation for Generalization in Reinforcement
    Learning", NeurIPS. https://arxiv.org/abs/2006.12862 (code: rraileanu/auto-drac, data_augs.py)
    Lee et al. 2020, "Network Randomization: A Simple Technique for Generalization in Deep
    Reinforcement Learning", ICLR. https://arxiv.org/abs/1910.05396 (random convolution)
    DeVries & Taylor 2017, "Improved Regularization of Convolutional Neural Networks with Cutout".
    https://arxiv.org/abs/1708.04552
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from heldout.registry import Registry

#: Per-sample parameters of one draw: name -> tensor whose first dimension is the batch.
Params = dict[str, torch.Tensor]


def as_float_images(x: torch.Tensor) -> torch.Tensor:
    """Returns ``x`` as float images in [0, 1]: ``uint8`` is divided by 255, float is kept.

    Raises:
        ValueError: If ``x`` is not a 4-d (B, C, H, W) tensor.
    """
    if x.ndim != 4:
        raise ValueError(f"augmentations take (B, C, H, W) image batches, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    return x


def _framewise(apply: Any) -> Any:
    """Wraps an RGB augmentation's ``apply`` to take stacks of RGB frames (see ``Augmentation.rgb``)."""

    @functools.wraps(apply)
    def wrapped(self: Augmentation, x: torch.Tensor, params: Params) -> torch.Tensor:
        c = x.shape[1]
        if c == 3:
            return apply(self, x, params)
        if c % 3:
            plain = ", ".join(n for n in AUGMENTATIONS.names() if not AUGMENTATIONS.get(n).rgb)
            raise ValueError(
                f"augmentation {self.name!r} changes colours and needs RGB frames (3 channels, or a stack "
                f"of 3k); these observations have {c} channel(s). Augmentations for any channels: {plain}"
            )
        k = c // 3
        n, _, h, w = x.shape
        frames = x.reshape(n * k, 3, h, w)
        per_frame = {key: value.repeat_interleave(k, dim=0) for key, value in params.items()}
        return apply(self, frames, per_frame).reshape(n, c, h, w)

    return wrapped


def check_channels(aug: Augmentation, observation_space: Any) -> None:
    """Raises ValueError, before training, if ``aug`` changes colours and the image observations
    are not RGB frames or stacks of them (e.g. after ``--wrapper grayscale``)."""
    from stable_baselines3.common.preprocessing import is_image_space_channels_first

    shape = getattr(observation_space, "shape", None)
    if not aug.rgb or shape is None or len(shape) != 3:
        return
    c = shape[0] if is_image_space_channels_first(observation_space) else shape[-1]
    if c % 3:
        plain = ", ".join(n for n in AUGMENTATIONS.names() if not AUGMENTATIONS.get(n).rgb)
        raise ValueError(
            f"augmentation {aug.name!r} changes colours and needs RGB frames (3 channels, or a stack of 3k); "
            f"the observations have {c} channel(s). Augmentations for any channels: {plain}"
        )


def select_params(params: Params, index: torch.Tensor | slice | int) -> Params:
    """The parameters of the samples ``index`` (e.g. one env's parameters out of a rollout's)."""
    if isinstance(index, int):
        index = slice(index, index + 1)
    return {key: value[index] for key, value in params.items()}


class Augmentation:
    """Base class: per-sample random parameters, then a batched transform.

    Subclasses implement :meth:`_sample` (parameters for ``n`` samples from a CPU generator) and
    :meth:`apply`. Parameters are drawn on the CPU and moved to the batch's device by ``apply``.
    """

    #: Registered name, set by :func:`register`.
    name: str = ""
    #: Whether outputs stay in [0, 1] (tests check it).
    bounded: bool = True
    #: Whether it changes colours, so needs RGB frames: a stack of ``k`` RGB frames (``3k``
    #: channels, e.g. ``--wrapper frame-stack``) is augmented frame by frame with the same
    #: parameters for every frame of a sample; other channel counts are refused.
    rgb: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("rgb", False) and "apply" in cls.__dict__:
            cls.apply = _framewise(cls.__dict__["apply"])  # type: ignore[method-assign]

    def sample(self, n: int, generator: torch.Generator) -> Params:
        """Draws parameters for ``n`` samples.

        Args:
            n: Batch size.
            generator: A CPU ``torch.Generator``; the draw consumes it and nothing else.
        """
        if n < 1:
            raise ValueError(f"batch size must be >= 1, got {n}")
        return self._sample(n, generator)

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        return {}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Applies ``params`` (one set per sample) to float images ``x`` in [0, 1]."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augments ``x`` with fresh per-sample parameters from ``generator``."""
        x = as_float_images(x)
        return self.apply(x, self.sample(x.shape[0], generator))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


#: Augmentation name -> class. ``AUGMENTATIONS.get("crop")()`` builds one with default parameters.
AUGMENTATIONS = Registry[type]("augmentation")


def register(name: str, help: str):  # noqa: A002 - mirrors Registry.register
    """Class decorator that registers an :class:`Augmentation` subclass under ``name``."""

    def decorate(cls: type[Augmentation]) -> type[Augmentation]:
        cls.name = name
        AUGMENTATIONS.register(name, cls, help=help)
        return cls

    return decorate


def make_augmentation(name: str, **kwargs: Any) -> Augmentation:
    """Builds the augmentation registered as ``name`` with keyword arguments ``kwargs``.

    Raises:
        KeyError: Unknown name (the message lists the valid ones).
        TypeError: A keyword the augmentation does not take.
    """
    cls = AUGMENTATIONS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise TypeError(f"augmentation {name!r}: {error}") from None


def make_generator(seed: int | None, stream: str) -> torch.Generator:
    """A CPU generator for the random stream ``stream`` of the run seeded with ``seed``.

    Distinct streams of one run (e.g. ``"augment"`` and ``"drac-actions"``) are independent, and
    none touches torch's global RNG. With ``seed=None`` the generator is seeded from OS entropy.
    """
    sequence = np.random.SeedSequence(
        None if seed is None else int(seed) & 0xFFFFFFFF, spawn_key=tuple(ord(ch) for ch in stream)
    )
    return torch.Generator().manual_seed(int(sequence.generate_state(1, dtype=np.uint64)[0]) >> 1)


def _gather_pixels(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``out[b, c, p] = x[b, c, index[b, p]]`` over flattened pixels; ``index`` is (B, H*W)."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    return flat.gather(2, index.unsqueeze(1).expand(b, c, h * w)).reshape(b, c, h, w)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


# ------------------------------------------------------------------------------------------------
# Geometric
# ------------------------------------------------------------------------------------------------


@register("identity", help="no change (the control arm)")
class Identity(Augmentation):
    """Returns its input unchanged."""

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return as_float_images(x)


class _Shift(Augmentation):
    """Per-sample integer shift in [-pad, pad] on both axes; the border is replicated or zeroed."""

    replicate = True

    def __init__(self, pad: int = 12) -> None:
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.pad = pad

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        shift = torch.randint(-self.pad, self.pad + 1, (n, 2), generator=generator)
        return {"shift": shift}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        b, _, h, w = x.shape
        shift = params["shift"].to(x.device)
        rows = torch.arange(h, device=x.device).unsqueeze(0) + shift[:, :1]  # (B, H)
        cols = torch.arange(w, device=x.device).unsqueeze(0) + shift[:, 1:]  # (B, W)
        rows_in = rows.clamp(0, h - 1)
        cols_in = cols.clamp(0, w - 1)
        index = rows_in.unsqueeze(2) * w + cols_in.unsqueeze(1)  # (B, H, W)
        out = _gather_pixels(x, index.reshape(b, h * w))
        if not self.replicate:
            inside = ((rows >= 0) & (rows < h)).unsqueeze(2) & ((cols >= 0) & (cols < w)).unsqueeze(1)
            out = out * inside.unsqueeze(1).to(out.dtype)
        return out


@register("crop", help="DrAC's crop: replicate-pad 12 then a random 64x64 window (a shift in [-12, 12])")
class Crop(_Shift):
    """DrAC's "crop": ``ReplicationPad2d(pad)`` then a random window of the original size.

    That is an independent integer shift in [-pad, pad] on each axis per sample with the edge
    pixels replicated (the "random shift" of DrQ). RAD-Procgen's true crop needs the game rendered
    at 75x75, which procgen does not offer; this is the variant the DrAC numbers use.

    Args:
        pad: Maximum shift in pixels (DrAC: 12).
    """

    replicate = True


@register("translate", help="shift in [-pad, pad] with a zero (black) border (RAD's random translate)")
class Translate(_Shift):
    """Shifts each image by an integer offset in [-pad, pad] per axis and fills the border with 0.

    RAD-DMC's ``random_translate`` pastes the image at a random place on a larger black canvas; at
    Procgen's fixed 64x64 input this is the same window cut back to 64x64.

    Args:
        pad: Maximum shift in pixels (default 12, as crop).
    """

    replicate = False


@register("flip", help="horizontal flip with p=0.5 (vertical=True: the auto-drac code's upside-down flip)")
class Flip(Augmentation):
    """Flips each image with probability ``p``.

    auto-drac's ``Flip`` calls ``np.flip(x, 2)`` on NCHW batches, which flips rows: an upside-down
    (vertical) flip, although the paper and RAD-Procgen (``np.flip`` on NHWC, axis 2 = width) mean a
    horizontal one. The default here is the horizontal flip; ``vertical=True`` reproduces the code
    behind DrAC's published numbers.

    Args:
        p: Probability of flipping a sample.
        vertical: Flip upside-down instead of left-right.
    """

    def __init__(self, p: float = 0.5, vertical: bool = False) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p
        self.vertical = vertical

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        return {"flip": torch.rand(n, generator=generator) < self.p}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        flip = params["flip"].to(x.device).view(-1, 1, 1, 1)
        flipped = torch.flip(x, dims=[2] if self.vertical else [3])
        return torch.where(flip, flipped, x)


@register("rotate", help="rotation by k*90 degrees, k uniform in {0, 1, 2, 3} per sample")
class Rotate(Augmentation):
    """Rotates each (square) image by ``k * 90`` degrees counter-clockwise, ``k ~ U{0, 1, 2, 3}``.

    As auto-drac's ``Rotate`` (``np.rot90(x, k, axes=(2, 3))``), as one gather over four
    precomputed index maps.
    """

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        return {"k": torch.randint(0, 4, (n,), generator=generator)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        b, _, h, w = x.shape
        if h != w:
            raise ValueError(f"rotate needs square images, got {h}x{w}")
        grid = torch.arange(h * w, device=x.device).reshape(h, w)
        maps = torch.stack([torch.rot90(grid, k, dims=(0, 1)).reshape(-1) for k in range(4)])
        return _gather_pixels(x, maps[params["k"].to(x.device)])


# ------------------------------------------------------------------------------------------------
# Occlusion
# ------------------------------------------------------------------------------------------------


class _Box(Augmentation):
    """The auto-drac cutout box: rows [ph + h, ph + 2h), cols [pw + w, pw + 2w), h, w ~ U{7..21}."""

    def __init__(self, box_min: int = 7, box_max: int = 21, pivot_h: int = 12, pivot_w: int = 24) -> None:
        if not 0 < box_min <= box_max:
            raise ValueError(f"need 0 < box_min <= box_max, got box_min={box_min}, box_max={box_max}")
        self.box_min = box_min
        self.box_max = box_max
        self.pivot_h = pivot_h
        self.pivot_w = pivot_w

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        size = torch.randint(self.box_min, self.box_max + 1, (n, 2), generator=generator)
        return {"size": size}

    def _mask(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Boolean (B, 1, H, W) mask of the box (clipped at the image border)."""
        _, _, h, w = x.shape
        size = params["size"].to(x.device)
        bh, bw = size[:, :1], size[:, 1:]
        rows = torch.arange(h, device=x.device).unsqueeze(0)
        cols = torch.arange(w, device=x.device).unsqueeze(0)
        in_rows = (rows >= self.pivot_h + bh) & (rows < self.pivot_h + 2 * bh)
        in_cols = (cols >= self.pivot_w + bw) & (cols < self.pivot_w + 2 * bw)
        return (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)


@register("cutout", help="a black box whose position is tied to its size (auto-drac's cutout)")
class Cutout(_Box):
    """Zeroes a box of rows [12 + h, 12 + 2h) and cols [24 + w, 24 + 2w), ``h, w ~ U{7..21}``.

    The box's position is tied to its size, as in auto-drac and RAD-Procgen (the columns are
    clipped at the border).
    """

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        return x.masked_fill(self._mask(x, params), 0.0)


@register("cutout-color", help="cutout's box filled with one random colour per sample")
class CutoutColor(_Box):
    """Cutout's box filled with one random RGB colour per sample, channels ``randint(0, 255) / 255``.

    auto-drac divides the colours by 255 only in its constructor: every redraw after the first
    minibatch omits ``/ 255``, so on [0, 1] images the boxes then hold values up to 254. The default
    is the intended behaviour (always in [0, 1]); ``faithful=True`` reproduces the bug (the first
    draw of an instance is divided by 255, later ones are not).

    Args:
        faithful: Reproduce auto-drac's missing ``/ 255`` after the first draw.
        box_min, box_max, pivot_h, pivot_w: The box, as :class:`Cutout`.
    """

    rgb = True

    def __init__(self, faithful: bool = False, **box: int) -> None:
        super().__init__(**box)
        self.faithful = faithful
        self._draws = 0

    @property
    def bounded(self) -> bool:  # type: ignore[override]
        return not self.faithful

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        params = super()._sample(n, generator)
        color = torch.randint(0, 255, (n, 3), generator=generator).float()
        if not (self.faithful and self._draws > 0):
            color = color / 255.0
        self._draws += 1
        params["color"] = color
        return params

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        color = params["color"].to(device=x.device, dtype=x.dtype).view(x.shape[0], -1, 1, 1)
        if color.shape[1] != x.shape[1]:
            raise ValueError(f"cutout-color draws RGB colours; images have {x.shape[1]} channels")
        return torch.where(self._mask(x, params), color.expand_as(x), x)


# ------------------------------------------------------------------------------------------------
# Colour
# ------------------------------------------------------------------------------------------------

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


@register("grayscale", help="ITU-R 601 luma repeated to 3 channels (p=1 as DrAC; RAD used p=0.5)")
class Grayscale(Augmentation):
    """Replaces RGB by its luma ``0.299 R + 0.587 G + 0.114 B``, repeated to three channels.

    Args:
        p: Probability of converting a sample (DrAC: 1, every sample; RAD-Procgen: 0.5).
    """

    rgb = True

    def __init__(self, p: float = 1.0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        return {"gray": torch.rand(n, generator=generator) < self.p}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        weights = torch.tensor(_GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        gray = (x * weights).sum(dim=1, keepdim=True).expand_as(x)
        return torch.where(params["gray"].to(x.device).view(-1, 1, 1, 1), gray, x)


@register("random-conv", help="a random 3x3 conv per sample, Xavier-normal weights, unclamped (DrAC)")
class RandomConv(Augmentation):
    """Convolves each sample with its own random 3x3, 3->3 kernel (no bias, zero padding 1).

    Weights are Xavier-normal (std ``sqrt(2 / (27 + 27))``), as auto-drac's ``RandomConv``; the
    output is neither clamped nor squashed, as there. All samples go through one grouped
    convolution. ``clamp=True`` clips the result to [0, 1].

    Args:
        clamp: Clip the output to [0, 1].
    """

    rgb = True

    def __init__(self, clamp: bool = False) -> None:
        self.clamp = clamp

    @property
    def bounded(self) -> bool:  # type: ignore[override]
        return self.clamp

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        std = math.sqrt(2.0 / (27 + 27))
        return {"weight": torch.randn(n, 3, 3, 3, 3, generator=generator) * std}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        b, c, h, w = x.shape
        if c != 3:
            raise ValueError(f"random-conv maps RGB images; got {c} channels")
        weight = params["weight"].to(device=x.device, dtype=x.dtype).reshape(b * 3, 3, 3, 3)
        out = F.conv2d(x.reshape(1, b * 3, h, w), weight, padding=1, groups=b).reshape(b, 3, h, w)
        return out.clamp(0.0, 1.0) if self.clamp else out


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] -> HSV with every channel in [0, 1] (hue as a fraction of a turn)."""
    r, g, b = x.unbind(1)
    value, argmax = x.max(dim=1)
    minimum = x.min(dim=1).values
    delta = value - minimum
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue_r = ((g - b) / safe) % 6.0
    hue_g = (b - r) / safe + 2.0
    hue_b = (r - g) / safe + 4.0
    hue = torch.where(argmax == 0, hue_r, torch.where(argmax == 1, hue_g, hue_b)) / 6.0
    hue = torch.where(delta > 0, hue, torch.zeros_like(hue)) % 1.0
    saturation = torch.where(value > 0, delta / torch.where(value > 0, value, torch.ones_like(value)), 0.0)
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    hue, saturation, value = x.unbind(1)
    k = torch.stack([(5.0 + hue * 6.0) % 6.0, (3.0 + hue * 6.0) % 6.0, (1.0 + hue * 6.0) % 6.0], dim=1)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return value.unsqueeze(1) - (value * saturation).unsqueeze(1) * ramp


@register("color-jitter", help="brightness, contrast, saturation in [0.6, 1.4], hue shift (DrAC's maths)")
class ColorJitter(Augmentation):
    """auto-drac's colour jitter: contrast in RGB; brightness, hue and saturation in HSV.

    Per sample: brightness, contrast and saturation factors ~ U[1 - b, 1 + b] (0.4 each), hue
    factor ~ U[-hue, hue] (0.5). Contrast scales each channel around its spatial mean and clips;
    in HSV, ``v <- clip(v * brightness)``, ``h <- (h + f * 255 / 360) mod 1``,
    ``s <- clip(s * saturation)``. Per call (so per RAD rollout), with probability 1/2 contrast is
    applied before the HSV steps, else after.

    Args:
        brightness, contrast, saturation: Half-widths of the factor ranges around 1.
        hue: Half-width of the hue factor range around 0 (at most 0.5).
    """

    rgb = True

    def __init__(
        self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.5
    ) -> None:
        for label, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue

    def _sample(self, n: int, generator: torch.Generator) -> Params:
        return {
            "brightness": _uniform(n, 1 - self.brightness, 1 + self.brightness, generator),
            "contrast": _uniform(n, 1 - self.contrast, 1 + self.contrast, generator),
            "saturation": _uniform(n, 1 - self.saturation, 1 + self.saturation, generator),
            "hue": _uniform(n, -self.hue, self.hue, generator),
            # One draw per call (auto-drac shuffles the order per batch), stored per sample.
            "contrast_first": (torch.rand(1, generator=generator) < 0.5).expand(n),
        }

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = as_float_images(x)
        p = {key: value.to(x.device) for key, value in params.items()}
        view = (-1, 1, 1)

        def contrast(images: torch.Tensor) -> torch.Tensor:
            means = images.mean(dim=(2, 3), keepdim=True)
            return ((images - means) * p["contrast"].view(-1, 1, 1, 1) + means).clamp(0.0, 1.0)

        def hsv_steps(images: torch.Tensor) -> torch.Tensor:
            h, s, v = rgb_to_hsv(images).unbind(1)
            v = (v * p["brightness"].view(view)).clamp(0.0, 1.0)
            h = (h + p["hue"].view(view) * 255.0 / 360.0) % 1.0
            s = (s * p["saturation"].view(view)).clamp(0.0, 1.0)
            return hsv_to_rgb(torch.stack([h, s, v], dim=1)).clamp(0.0, 1.0)

        first = p["contrast_first"].view(-1, 1, 1, 1)
        return torch.where(first, hsv_steps(contrast(x)), contrast(hsv_steps(x)))


#: The UCB-DrAC arms, in the reference order (ties go to the lowest index; ALGORITHMS.md 2.4).
UCB_ARMS: tuple[str, ...] = (
    "crop",
    "random-conv",
    "grayscale",
    "flip",
    "rotate",
    "cutout",
    "cutout-color",
    "color-jitter",
)

#: The "DrAC (best)" augmentation per game, as a third-party fork of auto-drac hard-codes it
#: (ALGORITHMS.md 2.3; its source is unconfirmed).
BEST_AUGMENTATION: dict[str, str] = {
    "bigfish": "crop",
    "starpilot": "crop",
    "fruitbot": "crop",
    "bossfight": "flip",
    "ninja": "color-jitter",
    "plunder": "crop",
    "caveflyer": "rotate",
    "coinrun": "random-conv",
    "jumper": "random-conv",
    "chaser": "crop",
    "climber": "color-jitter",
    "dodgeball": "crop",
    "heist": "crop",
    "leaper": "crop",
    "maze": "crop",
    "miner": "color-jitter",
}

__all__ = [
    "AUGMENTATIONS",
    "BEST_AUGMENTATION",
    "UCB_ARMS",
    "Augmentation",
    "as_float_images",
    "hsv_to_rgb",
    "make_augmentation",
    "make_generator",
    "rgb_to_hsv",
    "select_params",
]
