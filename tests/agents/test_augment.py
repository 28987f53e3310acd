"""The augmentation catalogue: every registered augmentation, then each one's own maths."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from heldout.agents.augment import (
    AUGMENTATIONS,
    UCB_ARMS,
    hsv_to_rgb,
    make_augmentation,
    make_generator,
    rgb_to_hsv,
    select_params,
)

NAMES = AUGMENTATIONS.names()
RANDOM = [n for n in NAMES if n not in ("identity", "grayscale")]  # these two are deterministic


def _images(n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_catalogue_has_the_reference_augmentations():
    for name in (*UCB_ARMS, "translate"):
        assert name in AUGMENTATIONS
    with pytest.raises(KeyError, match="did you mean 'crop'"):
        make_augmentation("corp")
    with pytest.raises(TypeError, match="'flip'"):
        make_augmentation("flip", axis=2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_range(name, dtype):
    aug = make_augmentation(name)
    x = _images().to(dtype) / 255
    y = aug(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.isfinite(y).all()
    if aug.bounded:
        assert y.min() >= 0 and y.max() <= 1
    # uint8 input is read as [0, 255] and comes out as float in [0, 1].
    y8 = aug(_images(), torch.Generator().manual_seed(1))
    assert y8.dtype == torch.float32
    torch.testing.assert_close(y8, y.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_under_a_generator(name):
    aug = make_augmentation(name)
    x = _images()
    a = aug(x, make_generator(7, "augment"))
    b = aug(x, make_generator(7, "augment"))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", RANDOM)
def test_parameters_differ_across_samples_and_redraws(name):
    aug = make_augmentation(name)
    gen = torch.Generator().manual_seed(3)
    x = _images(1).expand(64, -1, -1, -1)  # the same image 64 times
    y = aug(x, gen)
    distinct = {y[i].numpy().tobytes() for i in range(len(y))}
    assert len(distinct) > 1, "every sample got the same parameters"
    # Fixed parameters give a fixed result; a new draw gives another.
    params = aug.sample(64, gen)
    torch.testing.assert_close(aug.apply(x.float() / 255, params), aug.apply(x.float() / 255, params))
    assert not torch.equal(aug(x, gen), aug(x, gen))


@pytest.mark.parametrize("name", NAMES)
def test_select_params_applies_one_samples_parameters(name):
    aug = make_augmentation(name)
    x = _images(8).float() / 255
    params = aug.sample(8, torch.Generator().manual_seed(0))
    full = aug.apply(x, params)
    one = aug.apply(x[5:6], select_params(params, 5))
    torch.testing.assert_close(one, full[5:6])


def test_generator_streams_are_independent_and_do_not_touch_global_rng():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = torch.rand(4, generator=make_generator(0, "augment"))
    b = torch.rand(4, generator=make_generator(0, "drac-actions"))
    c = torch.rand(4, generator=make_generator(1, "augment"))
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.equal(a, b) and not torch.equal(a, c)


def test_crop_is_replicate_pad_then_window():
    x = _images(3).float() / 255
    shifts = torch.tensor([[0, 0], [-12, 12], [5, -3]])
    y = make_augmentation("crop").apply(x, {"shift": shifts})
    padded = F.pad(x, (12, 12, 12, 12), mode="replicate")
    for i, (dy, dx) in enumerate(shifts.tolist()):
        window = padded[i, :, 12 + dy : 12 + dy + 64, 12 + dx : 12 + dx + 64]
        torch.testing.assert_close(y[i], window, rtol=0, atol=0)


def test_translate_fills_the_border_with_black():
    x = torch.ones(1, 3, 64, 64)
    y = make_augmentation("translate").apply(x, {"shift": torch.tensor([[4, -6]])})
    assert y[0, :, 60:, :].abs().sum() == 0  # rows shifted in from below the image
    assert y[0, :, :, :6].abs().sum() == 0  # cols shifted in from the left
    assert y[0, :, :60, 6:].min() == 1
    assert y.sum() == 3 * 60 * 58


def test_flip_axis_and_faithful_vertical_flag():
    x = _images(2).float() / 255
    params = {"flip": torch.tensor([True, False])}
    y = make_augmentation("flip").apply(x, params)
    torch.testing.assert_close(y[0], torch.flip(x[0], dims=[2]))  # left-right
    torch.testing.assert_close(y[1], x[1])
    v = make_augmentation("flip", vertical=True).apply(x, params)
    torch.testing.assert_close(v[0], torch.flip(x[0], dims=[1]))  # upside down, as auto-drac's code


def test_flip_probability():
    params = make_augmentation("flip", p=0.5).sample(10_000, torch.Generator().manual_seed(0))
    assert abs(params["flip"].float().mean().item() - 0.5) < 0.02


def test_rotate_matches_rot90():
    x = _images(4).float() / 255
    y = make_augmentation("rotate").apply(x, {"k": torch.tensor([0, 1, 2, 3])})
    for k in range(4):
        torch.testing.assert_close(y[k], torch.rot90(x[k], k, dims=(1, 2)), rtol=0, atol=0)


def test_cutout_box_position_is_tied_to_its_size():
    x = torch.ones(2, 3, 64, 64)
    y = make_augmentation("cutout").apply(x, {"size": torch.tensor([[7, 7], [21, 21]])})
    zero0 = (y[0, 0] == 0).nonzero()
    assert zero0[:, 0].min() == 19 and zero0[:, 0].max() == 25  # rows [12 + 7, 12 + 14)
    assert zero0[:, 1].min() == 31 and zero0[:, 1].max() == 37  # cols [24 + 7, 24 + 14)
    zero1 = (y[1, 0] == 0).nonzero()
    assert zero1[:, 0].min() == 33 and zero1[:, 0].max() == 53
    assert zero1[:, 1].min() == 45 and zero1[:, 1].max() == 63  # clipped at the border (66)
    sizes = make_augmentation("cutout").sample(5000, torch.Generator().manual_seed(0))["size"]
    assert sizes.min() == 7 and sizes.max() == 21


def test_cutout_color_fills_one_colour_and_the_faithful_bug():
    x = torch.zeros(1, 3, 64, 64)
    params = {"size": torch.tensor([[10, 10]]), "color": torch.tensor([[0.2, 0.4, 0.6]])}
    y = make_augmentation("cutout-color").apply(x, params)
    torch.testing.assert_close(y[0, :, 25, 40], torch.tensor([0.2, 0.4, 0.6]))
    assert y[0, :, 0, 0].abs().sum() == 0
    gen = torch.Generator().manual_seed(0)
    correct = make_augmentation("cutout-color")
    faithful = make_augmentation("cutout-color", faithful=True)
    assert correct.bounded and not faithful.bounded
    for _ in range(3):
        assert correct.sample(256, gen)["color"].max() <= 1
    assert faithful.sample(256, gen)["color"].max() <= 1  # the first draw divides by 255 ...
    assert faithful.sample(256, gen)["color"].max() > 1  # ... later draws do not (auto-drac's bug)


def test_grayscale_is_luma_and_p():
    x = _images(2).float() / 255
    y = make_augmentation("grayscale").apply(x, {"gray": torch.tensor([True, False])})
    luma = 0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2]
    for c in range(3):
        torch.testing.assert_close(y[0, c], luma)
    torch.testing.assert_close(y[1], x[1])


def test_random_conv_is_a_per_sample_convolution():
    aug = make_augmentation("random-conv")
    x = _images(5).float() / 255
    params = aug.sample(5, torch.Generator().manual_seed(0))
    y = aug.apply(x, params)
    for i in range(5):
        ref = F.conv2d(x[i : i + 1], params["weight"][i], padding=1)
        torch.testing.assert_close(y[i : i + 1], ref, atol=1e-5, rtol=1e-5)
    weights = aug.sample(4000, torch.Generator().manual_seed(1))["weight"]
    assert weights.std().item() == pytest.approx(math.sqrt(2 / 54), rel=0.02)  # Xavier normal
    assert make_augmentation("random-conv", clamp=True).apply(x, params).max() <= 1


def test_hsv_round_trip_matches_colorsys():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    hsv = rgb_to_hsv(x)
    for i, j in ((0, 0), (3, 5), (7, 7)):
        expected = colorsys.rgb_to_hsv(*x[1, :, i, j].tolist())
        torch.testing.assert_close(hsv[1, :, i, j], torch.tensor(expected), atol=1e-6, rtol=0)
    torch.testing.assert_close(hsv_to_rgb(hsv), x, atol=1e-5, rtol=0)


def test_color_jitter_neutral_factors_are_identity_and_hue_shifts_hue():
    jitter = make_augmentation("color-jitter")
    x = _images(4).float() / 255
    neutral = {
        "brightness": torch.ones(4),
        "contrast": torch.ones(4),
        "saturation": torch.ones(4),
        "hue": torch.zeros(4),
        "contrast_first": torch.tensor([True, False, True, False]),
    }
    torch.testing.assert_close(jitter.apply(x, neutral), x, atol=1e-5, rtol=0)
    shifted = jitter.apply(x, {**neutral, "hue": torch.full((4,), 0.5)})
    expected_hue = (rgb_to_hsv(x)[:, 0] + 0.5 * 255 / 360) % 1
    got_hue = rgb_to_hsv(shifted)[:, 0]
    saturated = rgb_to_hsv(x)[:, 1] > 0.1
    diff = (got_hue - expected_hue).abs()
    diff = torch.minimum(diff, 1 - diff)  # hue is circular
    assert diff[saturated].max() < 1e-4
    dark = jitter.apply(x, {**neutral, "brightness": torch.full((4,), 0.6)})
    torch.testing.assert_close(dark.amax(dim=1), 0.6 * x.amax(dim=1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", [n for n in AUGMENTATIONS.names()])
def test_stacks_of_rgb_frames_get_the_same_parameters_per_frame(name):
    """A frame stack (--wrapper frame-stack) of 3k channels: each frame of a sample is augmented
    with that sample's parameters, so two equal frames stay equal."""
    torch.manual_seed(0)
    frame = torch.rand(4, 3, 64, 64)
    stack = torch.cat([frame, frame], dim=1)
    aug = AUGMENTATIONS.get(name)()
    params = aug.sample(4, make_generator(0, "stack"))
    out = aug.apply(stack, params)
    assert out.shape == stack.shape
    torch.testing.assert_close(out[:, :3], out[:, 3:])
    torch.testing.assert_close(out[:, :3], aug.apply(frame, params))


def test_colour_augmentations_refuse_other_channel_counts():
    from gymnasium import spaces

    from heldout.agents.augment import check_channels

    grey = torch.rand(2, 1, 64, 64)
    for name in AUGMENTATIONS.names():
        aug = AUGMENTATIONS.get(name)()
        params = aug.sample(2, make_generator(0, "grey"))
        box = spaces.Box(0, 255, (1, 64, 64), np.uint8)
        if aug.rgb:
            with pytest.raises(ValueError, match=f"{name}' changes colours.*1 channel"):
                aug.apply(grey, params)
            with pytest.raises(ValueError, match="Augmentations for any channels: crop"):
                check_channels(aug, box)
        else:
            assert aug.apply(grey, params).shape == grey.shape
            check_channels(aug, box)
