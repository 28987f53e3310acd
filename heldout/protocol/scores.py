"""What a run's summary scores: min-max normalised returns and the generalization gap.

Min-max normalised scores use the Procgen constants of Cobbe et al. (2020), as published in
openai/train-procgen ``constants.py`` (BASELINES.md): ``(R - R_min) / (R_max - R_min)``.
"""

from __future__ import annotations

from heldout.envs import SCORE_RANGES


def score_range(env: str, distribution_mode: str) -> tuple[float, float] | None:
    """``(R_min, R_max)`` for ``env`` in ``distribution_mode``, or None where none is published."""
    return SCORE_RANGES.get(distribution_mode, {}).get(env)


def normalized_score(env: str, distribution_mode: str, value: float) -> float | None:
    """The min-max normalised score of a mean return, or None where no constants exist."""
    bounds = score_range(env, distribution_mode)
    if bounds is None:
        return None
    lo, hi = bounds
    return (float(value) - lo) / (hi - lo)


def generalization_gap(train_mean: float, test_mean: float) -> float:
    """Train minus test return: how much of the training performance is lost on unseen levels."""
    return float(train_mean) - float(test_mean)
