"""The manifold operations of the hyperbolic heads against closed forms computed another way.

Möbius addition against the complex-number form of the Poincaré disk; the distance against its
``arcosh`` form; the gyroplane distance against a brute-force minimum of the distance over the
gyroplane's points; the exponential map strictly inside the ball whatever the input; finite
gradients at the boundary; curvature -> 0 giving the Euclidean linear layer; the hyperboloid's
constraint and distance; HL-Gauss's histogram and value.
"""

from __future__ import annotations

import math

import pytest
import torch

from heldout.agents.hyperbolic import (
    FEATURE_BOUND,
    FeatureBound,
    HLGauss,
    HyperbolicHead,
    boundary_eps,
    check_geometry,
    distance,
    expmap0,
    gyroplane_logits,
    lorentz_expmap0,
    lorentz_logits,
    mobius_add,
    softclamp,
)

CURVATURES = [0.3, 1.0, 2.5]


def _in_ball(n: int, d: int, c: float, radius: float = 0.9, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    r = torch.rand(n, 1, generator=g, dtype=torch.float64) * radius
    return x / x.norm(dim=-1, keepdim=True) * r / math.sqrt(c)


@pytest.mark.parametrize("c", CURVATURES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_expmap0_lands_strictly_inside_the_ball_for_any_norm(c: float, dtype: torch.dtype) -> None:
    norms = torch.tensor([0.0, 1e-8, 0.1, 1.0, 5.0, 20.0, 1e3, 1e8], dtype=dtype)
    v = torch.randn(len(norms), 7, dtype=dtype)
    v = v / v.norm(dim=-1, keepdim=True) * norms[:, None]
    x = expmap0(v, c)
    assert torch.isfinite(x).all()
    assert (c * (x * x).sum(-1) < 1).all()
    assert (x.norm(dim=-1) <= (1 - boundary_eps(dtype)) / math.sqrt(c) * (1 + 1e-6)).all()


@pytest.mark.parametrize("c", CURVATURES)
def test_expmap0_puts_v_at_distance_2v_from_the_origin(c: float) -> None:
    v = torch.randn(20, 5, dtype=torch.float64) * 0.4 / math.sqrt(c)
    x = expmap0(v, c)
    assert torch.allclose(distance(torch.zeros_like(x), x, c), 2 * v.norm(dim=-1), atol=1e-9)


@pytest.mark.parametrize("c", CURVATURES)
def test_mobius_addition_is_the_complex_form_on_the_disk(c: float) -> None:
    # On the disk of curvature -c, x (+) y = (x + y) / (1 + c conj(x) y) in complex numbers.
    x, y = _in_ball(50, 2, c, seed=1), _in_ball(50, 2, c, seed=2)
    zx, zy = torch.complex(x[:, 0], x[:, 1]), torch.complex(y[:, 0], y[:, 1])
    expected = (zx + zy) / (1 + c * zx.conj() * zy)
    got = mobius_add(x, y, c)
    assert torch.allclose(got[:, 0], expected.real, atol=1e-12)
    assert torch.allclose(got[:, 1], expected.imag, atol=1e-12)
    assert torch.allclose(mobius_add(-x, x, c), torch.zeros_like(x), atol=1e-12)


@pytest.mark.parametrize("c", CURVATURES)
def test_distance_is_the_arcosh_form(c: float) -> None:
    x, y = _in_ball(40, 6, c, seed=3), _in_ball(40, 6, c, seed=4)
    cx, cy = 1 - c * (x * x).sum(-1), 1 - c * (y * y).sum(-1)
    expected = torch.acosh(1 + 2 * c * ((x - y) ** 2).sum(-1) / (cx * cy)) / math.sqrt(c)
    assert torch.allclose(distance(x, y, c), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_gyroplane_logit_is_norm_z_times_the_signed_distance_to_the_gyroplane(c: float) -> None:
    # Brute force: the gyroplane H = p (+) {t * z_perp}, and d(x, H) is the minimum over its points.
    points, xs = _in_ball(3, 2, c, radius=0.6, seed=5), _in_ball(4, 2, c, radius=0.8, seed=6)
    normals = torch.randn(3, 2, dtype=torch.float64)
    logits = gyroplane_logits(xs, points, normals, c)  # (4, 3)
    t = torch.linspace(-1, 1, 200_001, dtype=torch.float64)[1:-1, None] / math.sqrt(c)
    for k in range(3):
        perp = torch.stack([-normals[k, 1], normals[k, 0]]) / normals[k].norm()
        plane = mobius_add(points[k].expand(len(t), 2), t * perp, c)
        for i in range(4):
            nearest = distance(xs[i].expand(len(t), 2), plane, c).min()
            signed = logits[i, k] / normals[k].norm()
            assert abs(signed.abs() - nearest) < 1e-6, (i, k)
            # the sign: positive on the side z points to (at p, x - p along z)
            side = ((mobius_add(-points[k], xs[i], c)) * normals[k]).sum()
            assert torch.sign(signed) == torch.sign(side)


def test_gyroplane_logits_at_the_origin_are_2_x_dot_z_for_small_x() -> None:
    x = torch.randn(8, 4, dtype=torch.float64) * 1e-4
    z = torch.randn(3, 4, dtype=torch.float64)
    logits = gyroplane_logits(x, torch.zeros(3, 4, dtype=torch.float64), z, 1.0)
    assert torch.allclose(logits, 2 * x @ z.T, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("model", ["poincare", "hyperboloid"])
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4, 1e8])
def test_gradients_stay_finite_at_the_boundary(model: str, scale: float) -> None:
    head = HyperbolicHead(16, 5, model, c=1.0)
    if model == "poincare":
        with torch.no_grad():  # the gyroplanes' points near the boundary too
            head.point_tangents.normal_().mul_(10.0)
    e = (torch.randn(32, 16) * scale).requires_grad_()
    out = head(e)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(e.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


def test_curvature_to_zero_gives_the_euclidean_linear_layer() -> None:
    # c -> 0: expmap0 -> identity, w -> x - p, logit -> 2 <x - p, z>: a linear layer.
    torch.manual_seed(0)
    head = HyperbolicHead(6, 4, "poincare", c=1e-8)
    with torch.no_grad():
        head.point_tangents.normal_()
    e = torch.randn(10, 6)
    linear = 2 * (e @ head.normals.T) - 2 * (head.point_tangents * head.normals).sum(-1)
    assert torch.allclose(head(e), linear, rtol=1e-4, atol=1e-4)
    # and a larger curvature really differs
    head.c = 1.0
    assert not torch.allclose(head(e), linear, rtol=1e-2, atol=1e-2)


def test_curvature_to_zero_gives_a_linear_layer_on_the_hyperboloid_too() -> None:
    torch.manual_seed(0)
    head = HyperbolicHead(6, 4, "hyperboloid", c=1e-10)
    with torch.no_grad():
        head.offsets.normal_()
    e = torch.randn(10, 6)
    linear = e @ head.normals.T - head.offsets * head.normals.norm(dim=-1)
    assert torch.allclose(head(e), linear, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("c", CURVATURES)
def test_the_hyperboloid_point_satisfies_its_constraint_and_sits_at_distance_v(c: float) -> None:
    v = torch.randn(20, 5, dtype=torch.float64) * 0.5 / math.sqrt(c)
    x0, xs = lorentz_expmap0(v, c)
    assert torch.allclose(
        -(x0**2).squeeze(-1) + (xs**2).sum(-1), torch.full((20,), -1 / c, dtype=torch.float64), rtol=1e-9
    )
    assert torch.allclose(
        torch.acosh(math.sqrt(c) * x0.squeeze(-1)) / math.sqrt(c), v.norm(dim=-1), rtol=1e-9
    )


def test_lorentz_logits_match_the_formula_and_are_bounded() -> None:
    x0, xs = lorentz_expmap0(torch.randn(5, 3, dtype=torch.float64), 1.0)
    z, r = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    alpha = torch.cosh(r) * (xs @ z.T) - torch.sinh(r) * z.norm(dim=-1) * x0
    expected = z.norm(dim=-1) * torch.asinh(alpha / z.norm(dim=-1))
    assert torch.allclose(lorentz_logits(x0, xs, z, r, 1.0), expected, rtol=1e-9)
    huge = lorentz_logits(*lorentz_expmap0(torch.full((1, 3), 1e4, dtype=torch.float64), 1.0), z, r, 1.0)
    assert torch.isfinite(huge).all()


def test_softclamp_is_the_identity_inside_and_bounded_outside() -> None:
    x = torch.tensor([-1e9, -20.0, -3.0, 0.0, 3.0, 20.0, 1e9])
    y = softclamp(x, 10.0)
    assert torch.allclose(y[2:5], x[2:5], atol=1e-6)
    assert (y.abs() <= 10.0 + 1e-6).all()


def test_feature_bound_keeps_the_tangent_norm_below_artanh_095_over_sqrt_c() -> None:
    bound = FeatureBound(32, c=2.0)
    v = bound(torch.randn(64, 32) * 1e6)
    assert (v.norm(dim=-1) <= FEATURE_BOUND / math.sqrt(2.0) + 1e-6).all()


def test_hl_gauss_target_is_a_histogram_around_the_return_and_its_value_the_return() -> None:
    value = HLGauss(torch.nn.Identity(), bins=51, low=-10.0, high=10.0)
    returns = torch.tensor([-7.3, 0.0, 2.5, 9.0, 50.0])
    target = value.target(returns)
    assert torch.allclose(target.sum(-1), torch.ones(5), atol=1e-6)
    assert (target >= 0).all()
    # logits = log target: the value is the histogram's mean, the (clamped) return up to edge effects
    v = value(torch.log(target.clamp_min(1e-30))).squeeze(-1)
    assert torch.allclose(v[:3], returns[:3], atol=1e-3)
    assert v[4] < 10.0 and v[4] > 9.5  # 50 is clamped to the support's edge
    # the cross-entropy is smallest at the target's own logits
    value(torch.log(target.clamp_min(1e-30)))
    best = value.loss(returns)
    value(torch.zeros(5, 51))
    assert value.loss(returns) > best


@pytest.mark.parametrize(
    ("representation", "curvature", "feature_reg", "match"),
    [
        ("klein", 1.0, False, "representation='klein' is not one of euclidean, poincare, hyperboloid"),
        ("poincare", 0, False, "curvature=0 must be a finite number > 0"),
        ("poincare", -1.0, False, "curvature=-1.0 must be"),
        ("poincare", math.inf, False, "curvature=inf must be"),
        ("poincare", True, False, "curvature=True must be"),
        ("euclidean", 1.0, True, "feature_reg=true .* needs representation poincare or hyperboloid"),
    ],
)
def test_bad_geometry_is_named(representation, curvature, feature_reg, match) -> None:
    with pytest.raises(ValueError, match=match):
        check_geometry(representation, curvature, feature_reg)
