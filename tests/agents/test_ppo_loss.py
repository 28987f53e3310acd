"""ppo_loss against numbers computed by hand (plain Python arithmetic), ALGORITHMS.md 1.4."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from heldout.agents.ppo import ppo_loss

CLIP = 0.2
ENT_COEF = 0.01
VF_COEF = 0.5

# Four samples chosen so that every branch of both max() terms is taken:
#  0: A > 0, ratio 1.5 -> policy clip binds (-A * 1.2 > -A * 1.5); value: the clipped term wins.
#  1: A < 0, ratio 0.5 -> policy clip binds (-A * 0.8 > -A * 0.5); value: V == V_old, both terms equal.
#  2: A > 0, ratio 1.1 -> inside the clip range, both policy terms equal.
#  3: A < 0, ratio 1.5 -> the unclipped policy term wins (pessimistic); value: the unclipped term wins.
RATIOS = [1.5, 0.5, 1.1, 1.5]
OLD_LOG_PROB = [-1.0, -2.0, -0.5, -3.0]
ADVANTAGES = [1.0, -2.0, 1.0, -1.0]
VALUES = [1.0, 0.0, 2.0, 3.0]
OLD_VALUES = [0.5, 0.0, 2.0, 2.0]
RETURNS = [2.0, 1.0, 1.0, 1.0]
ENTROPY = [1.0, 2.0, 3.0, 0.5]


def _t(values, requires_grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


def _inputs(requires_grad=False):
    log_prob = [math.log(r) + old for r, old in zip(RATIOS, OLD_LOG_PROB)]
    return dict(
        log_prob=_t(log_prob, requires_grad),
        old_log_prob=_t(OLD_LOG_PROB),
        advantages=_t(ADVANTAGES),
        values=_t(VALUES, requires_grad),
        old_values=_t(OLD_VALUES),
        returns=_t(RETURNS),
        entropy=_t(ENTROPY),
    )


def _clip(x, low, high):
    return min(max(x, low), high)


def _expected_pg(advantages):
    terms = [max(-a * r, -a * _clip(r, 1 - CLIP, 1 + CLIP)) for a, r in zip(advantages, RATIOS)]
    return sum(terms) / len(terms)


def test_hand_computed_loss_without_advantage_normalisation():
    loss, stats = ppo_loss(
        **_inputs(),
        clip_range=CLIP,
        clip_range_vf=CLIP,
        ent_coef=ENT_COEF,
        vf_coef=VF_COEF,
        normalize_advantage=False,
    )
    # Policy terms by hand: max(-1.5, -1.2) = -1.2; max(1.0, 1.6) = 1.6; max(-1.1, -1.1) = -1.1;
    # max(1.5, 1.2) = 1.5.
    pg = (-1.2 + 1.6 - 1.1 + 1.5) / 4
    assert _expected_pg(ADVANTAGES) == pytest.approx(pg)
    # Value terms by hand: V_clip = [0.7, 0.0, 2.0, 2.2];
    #  0: max((1-2)^2, (0.7-2)^2) = max(1, 1.69) = 1.69  (clipped wins)
    #  1: max(1, 1) = 1;  2: max(1, 1) = 1;
    #  3: max((3-1)^2, (2.2-1)^2) = max(4, 1.44) = 4    (unclipped wins)
    vl = 0.5 * (1.69 + 1.0 + 1.0 + 4.0) / 4
    ent = (1.0 + 2.0 + 3.0 + 0.5) / 4
    expected = pg - ENT_COEF * ent + VF_COEF * vl

    assert stats["policy_gradient_loss"].item() == pytest.approx(pg)
    assert stats["value_loss"].item() == pytest.approx(vl)
    assert stats["entropy_loss"].item() == pytest.approx(-ent)
    assert loss.item() == pytest.approx(expected)
    # |ratio - 1| > 0.2 for samples 0, 1, 3.
    assert stats["clip_fraction"].item() == pytest.approx(0.75)
    kl = sum((r - 1) - math.log(r) for r in RATIOS) / 4
    assert stats["approx_kl"].item() == pytest.approx(kl)
    assert all(not s.requires_grad for s in stats.values())


def test_hand_computed_loss_with_minibatch_advantage_normalisation():
    loss, stats = ppo_loss(
        **_inputs(), clip_range=CLIP, clip_range_vf=CLIP, ent_coef=ENT_COEF, vf_coef=VF_COEF
    )
    mean = sum(ADVANTAGES) / 4
    std = statistics.stdev(ADVANTAGES)  # unbiased, as torch.std
    normalised = [(a - mean) / (std + 1e-8) for a in ADVANTAGES]
    pg = _expected_pg(normalised)
    assert stats["policy_gradient_loss"].item() == pytest.approx(pg)
    vl = 0.5 * (1.69 + 1.0 + 1.0 + 4.0) / 4
    ent = (1.0 + 2.0 + 3.0 + 0.5) / 4
    assert loss.item() == pytest.approx(pg - ENT_COEF * ent + VF_COEF * vl)


def test_unclipped_value_loss_when_clip_range_vf_is_none():
    loss, stats = ppo_loss(
        **_inputs(),
        clip_range=CLIP,
        clip_range_vf=None,
        ent_coef=ENT_COEF,
        vf_coef=VF_COEF,
        normalize_advantage=False,
    )
    # 0.5 * mean((V - R)^2) = 0.5 * (1 + 1 + 1 + 4) / 4
    vl = 0.5 * (1.0 + 1.0 + 1.0 + 4.0) / 4
    assert stats["value_loss"].item() == pytest.approx(vl)
    ent = (1.0 + 2.0 + 3.0 + 0.5) / 4
    assert loss.item() == pytest.approx(_expected_pg(ADVANTAGES) - ENT_COEF * ent + VF_COEF * vl)


def test_gradient_vanishes_where_clipping_binds():
    inputs = _inputs(requires_grad=True)
    loss, _ = ppo_loss(
        **inputs,
        clip_range=CLIP,
        clip_range_vf=CLIP,
        ent_coef=0.0,
        vf_coef=VF_COEF,
        normalize_advantage=False,
    )
    loss.backward()
    g_logp = inputs["log_prob"].grad.tolist()
    # d/dlogp of -A * ratio / 4 = -A * ratio / 4 where the unclipped term is active, 0 where clipped.
    assert g_logp[0] == pytest.approx(0.0)
    assert g_logp[1] == pytest.approx(0.0)
    assert g_logp[2] == pytest.approx(-1.0 * 1.1 / 4)
    assert g_logp[3] == pytest.approx(1.0 * 1.5 / 4)
    g_v = inputs["values"].grad.tolist()
    # Clipped value term wins for sample 0 and V - V_old = 0.5 is outside the clip: no gradient.
    # Elsewhere d/dV of vf_coef * 0.5 * (V - R)^2 / 4 = vf_coef * (V - R) / 4.
    assert g_v[0] == pytest.approx(0.0)
    assert g_v[1] == pytest.approx(VF_COEF * (0.0 - 1.0) / 4)
    assert g_v[2] == pytest.approx(VF_COEF * (2.0 - 1.0) / 4)
    assert g_v[3] == pytest.approx(VF_COEF * (3.0 - 1.0) / 4)


def test_ratio_one_and_unchanged_values():
    # ALGORITHMS.md section 6: with rho = 1 and V = V_old, L_pg = -mean(A_norm) = 0 and
    # L_v = 0.5 * mean((V - R)^2).
    adv = _t([0.3, -1.2, 2.0, 0.1, 0.0])
    logp = _t([-1.0, -0.3, -2.0, -0.7, -1.1])
    v = _t([0.1, 0.2, 0.3, 0.4, 0.5])
    r = _t([1.1, 0.2, -0.7, 0.4, 2.5])
    loss, stats = ppo_loss(logp, logp, adv, v, v, r, torch.zeros(5, dtype=torch.float64), 0.2, 0.2, 0.01, 0.5)
    assert stats["policy_gradient_loss"].item() == pytest.approx(0.0, abs=1e-12)
    assert stats["value_loss"].item() == pytest.approx(0.5 * (1.0 + 0.0 + 1.0 + 0.0 + 4.0) / 5)
    assert stats["clip_fraction"].item() == 0.0
    assert stats["approx_kl"].item() == pytest.approx(0.0)


def test_mismatched_shapes_raise():
    inputs = _inputs()
    inputs["values"] = inputs["values"].reshape(-1, 1)
    with pytest.raises(ValueError, match="values"):
        ppo_loss(**inputs, clip_range=CLIP, clip_range_vf=CLIP, ent_coef=ENT_COEF, vf_coef=VF_COEF)
