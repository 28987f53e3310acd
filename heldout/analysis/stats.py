"""Scores and statistics for generalization results.

Min-max normalised scores use the Procgen constants of Cobbe et al. (2020), as published in
openai/train-procgen ``constants.py`` (BASELINES.md): ``(R - R_min) / (R_max - R_min)``.

The aggregate statistics follow Agarwal et al. (2021), "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS, and match the conventions of its reference library rliable 1.2:

- scores are arranged as a matrix of ``runs x tasks`` (one column per game); a task with fewer runs
  than another is padded with NaN ("no run"), so every statistic here accepts ragged results;
- mean and median are taken over the per-task mean scores; the interquartile mean (IQM) and the
  optimality gap pool every run of every task;
- confidence intervals come from a stratified bootstrap (runs resampled with replacement within each
  task, independently per task) with the percentile method;
- the probability of improvement ``P(X > Y)`` is the Mann-Whitney U statistic of each task divided by
  ``n_x * n_y`` (ties count 1/2), averaged over tasks; its CI resamples X and Y independently.

Everything is vectorised over bootstrap replications: the statistics take arrays of shape
``(..., runs, tasks)`` and reduce the last two axes. Randomness comes from ``np.random.default_rng(seed)``
created per call, so a result depends only on its own inputs and seed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from heldout.envs import SCORE_RANGES

# the per-run scores of a summary, re-exported here beside the statistics over them
from heldout.protocol.scores import generalization_gap, normalized_score, score_range  # noqa: F401

#: The aggregate metrics of :func:`aggregate_estimates`, by name.
METRICS: tuple[str, ...] = ("mean", "median", "iqm", "optimality_gap")

#: Fewer runs than this on any task and no confidence interval is given (point estimate only).
MIN_RUNS_FOR_CI = 2


# ----------------------------------------------------------------------------------------------------
# Score matrices and normalisation


def score_matrix(per_task: Mapping[str, Sequence[float]], tasks: Sequence[str] | None = None) -> np.ndarray:
    """Arranges ``{task: [one score per run]}`` as a ``runs x tasks`` matrix, NaN-padded.

    Args:
        per_task: Scores of one agent, one list per task (game); lists may differ in length.
        tasks: Column order; defaults to ``sorted(per_task)``. Every task must be in ``per_task``.

    Raises:
        KeyError: A task of ``tasks`` has no scores (names the task and the ones available).
        ValueError: A task has an empty list of scores.
    """
    tasks = sorted(per_task) if tasks is None else list(tasks)
    missing = [t for t in tasks if t not in per_task]
    if missing:
        raise KeyError(
            f"no scores for task(s) {', '.join(missing)}; available: {', '.join(sorted(per_task))}"
        )
    empty = [t for t in tasks if len(per_task[t]) == 0]
    if empty:
        raise ValueError(f"task(s) {', '.join(empty)} have no runs")
    runs = max(len(per_task[t]) for t in tasks)
    out = np.full((runs, len(tasks)), np.nan)
    for j, t in enumerate(tasks):
        values = np.asarray(per_task[t], dtype=float)
        out[: len(values), j] = values
    return out


def min_max_normalize(
    per_task: Mapping[str, Sequence[float]], distribution_mode: str = "easy"
) -> dict[str, np.ndarray]:
    """Min-max normalises raw returns with the published Procgen constants (Cobbe et al., 2020).

    Raises:
        ValueError: Unknown distribution mode, or a task without published constants (both named,
            with the valid choices).
    """
    if distribution_mode not in SCORE_RANGES:
        raise ValueError(
            f"no normalisation constants for distribution mode {distribution_mode!r}; "
            f"valid modes: {', '.join(SCORE_RANGES)}"
        )
    ranges = SCORE_RANGES[distribution_mode]
    unknown = sorted(t for t in per_task if t not in ranges)
    if unknown:
        raise ValueError(
            f"no {distribution_mode} normalisation constants for {', '.join(unknown)}; "
            f"games with constants: {', '.join(sorted(ranges))}"
        )
    out = {}
    for task, values in per_task.items():
        lo, hi = ranges[task]
        out[task] = (np.asarray(values, dtype=float) - lo) / (hi - lo)
    return out


def reference_normalize(
    per_task: Mapping[str, Sequence[float]], reference: Mapping[str, Sequence[float]]
) -> dict[str, np.ndarray]:
    """Scores as a fraction of a reference agent's mean return on each task (e.g. "% of PPO").

    ``score = R / mean(R_reference)`` per task, so the reference itself averages 1.0 on every task.
    This is the "PPO-normalised" score of the Procgen literature (e.g. Raileanu & Fergus, 2021).

    Raises:
        KeyError: A task has no reference scores.
        ValueError: The reference mean of a task is 0.
    """
    out = {}
    for task, values in per_task.items():
        if task not in reference or len(reference[task]) == 0:
            raise KeyError(
                f"no reference scores for task {task!r}; reference has: {', '.join(sorted(reference))}"
            )
        ref = float(np.mean(np.asarray(reference[task], dtype=float)))
        if ref == 0:
            raise ValueError(f"reference mean return on task {task!r} is 0: cannot normalise by it")
        out[task] = np.asarray(values, dtype=float) / ref
    return out


# ----------------------------------------------------------------------------------------------------
# Aggregate metrics on (..., runs, tasks) arrays, NaN meaning "no run"


def _task_means(scores: np.ndarray) -> np.ndarray:
    return np.nanmean(scores, axis=-2)


def aggregate_mean(scores: np.ndarray) -> np.ndarray | float:
    """Mean over tasks of the per-task mean score (Agarwal et al., 2021).

    Args:
        scores: ``(..., runs, tasks)``; NaN marks a missing run.
    """
    return np.mean(_task_means(np.asarray(scores, dtype=float)), axis=-1)


def aggregate_median(scores: np.ndarray) -> np.ndarray | float:
    """Median over tasks of the per-task mean score (Agarwal et al., 2021)."""
    return np.median(_task_means(np.asarray(scores, dtype=float)), axis=-1)


def aggregate_iqm(scores: np.ndarray) -> np.ndarray | float:
    """Interquartile mean: the 25% trimmed mean of all runs of all tasks pooled (Agarwal et al., 2021).

    Trims ``int(0.25 * n)`` scores from each end of the ``n`` pooled scores, as
    ``scipy.stats.trim_mean(scores, 0.25, axis=None)`` does. NaN entries (missing runs) are left out;
    every slice along the leading axes must have the same number of them.
    """
    scores = np.asarray(scores, dtype=float)
    flat = scores.reshape(*scores.shape[:-2], -1)
    valid = np.sum(~np.isnan(flat), axis=-1)
    n = int(np.max(valid))
    if np.any(valid != n):
        raise ValueError("aggregate_iqm needs the same number of valid scores in every slice")
    if n == 0:
        raise ValueError("aggregate_iqm needs at least one score")
    ordered = np.sort(flat, axis=-1)[..., :n]  # NaN sorts last
    cut = int(0.25 * n)
    return np.mean(ordered[..., cut : n - cut], axis=-1)


def aggregate_optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray | float:
    """Optimality gap: mean over all runs and tasks of ``max(gamma - score, 0)`` (Agarwal et al., 2021).

    The amount by which the agent falls short of ``gamma`` (1.0: the maximum normalised score);
    lower is better.
    """
    scores = np.asarray(scores, dtype=float)
    gap = np.maximum(gamma - scores, 0.0)
    gap = np.where(np.isnan(scores), np.nan, gap)
    return np.nanmean(gap.reshape(*scores.shape[:-2], -1), axis=-1)


AGGREGATES: dict[str, Callable[[np.ndarray], np.ndarray | float]] = {
    "mean": aggregate_mean,
    "median": aggregate_median,
    "iqm": aggregate_iqm,
    "optimality_gap": aggregate_optimality_gap,
}


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray | float:
    """Average probability of improvement ``P(X > Y)`` (Agarwal et al., 2021).

    For each task, the probability that a random run of X scores more than a random run of Y, with
    ties counting 1/2 (the Mann-Whitney U statistic over ``n_x * n_y``), averaged over tasks. Being
    per task, it needs no normalisation: raw returns give the same value.

    Args:
        scores_x: ``(..., runs_x, tasks)``; NaN marks a missing run.
        scores_y: ``(..., runs_y, tasks)`` with the same tasks in the same order.
    """
    x = np.asarray(scores_x, dtype=float)
    y = np.asarray(scores_y, dtype=float)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"X has {x.shape[-1]} tasks and Y has {y.shape[-1]}: they must be the same tasks")
    xe, ye = x[..., :, None, :], y[..., None, :, :]  # (..., nx, ny, tasks)
    valid = ~(np.isnan(xe) | np.isnan(ye))
    wins = np.where(valid, (xe > ye) + 0.5 * (xe == ye), 0.0)
    per_task = wins.sum(axis=(-3, -2)) / valid.sum(axis=(-3, -2))
    return np.mean(per_task, axis=-1)


def score_distribution(scores: np.ndarray, taus: Sequence[float] | np.ndarray) -> np.ndarray:
    """Performance profile: the fraction of runs (all tasks pooled) scoring above each ``tau``.

    The run-score distribution of Agarwal et al. (2021), Sec. 4.2.

    Args:
        scores: ``(..., runs, tasks)``; NaN marks a missing run.
        taus: Thresholds.

    Returns:
        ``(..., len(taus))``.
    """
    scores = np.asarray(scores, dtype=float)
    flat = scores.reshape(*scores.shape[:-2], -1)
    valid = ~np.isnan(flat)
    above = (flat[..., None] > np.asarray(taus, dtype=float)) & valid[..., None]
    return above.sum(axis=-2) / valid.sum(axis=-1)[..., None]


# ----------------------------------------------------------------------------------------------------
# Stratified bootstrap


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval (None where runs are too few for one)."""

    value: float
    ci: tuple[float, float] | None

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci": None if self.ci is None else list(self.ci)}

    def format(self, digits: int = 3) -> str:
        """``0.325 [0.313, 0.336]``, or ``0.325 (no CI)``."""
        if self.ci is None:
            return f"{self.value:.{digits}f} (no CI)"
        return f"{self.value:.{digits}f} [{self.ci[0]:.{digits}f}, {self.ci[1]:.{digits}f}]"


def _check_bootstrap_args(reps: int, confidence: float) -> None:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"bootstrap repetitions must be a positive integer, got {reps!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")


def runs_per_task(scores: np.ndarray) -> np.ndarray:
    """The number of (non-NaN) runs of each task of a ``runs x tasks`` matrix."""
    return np.sum(~np.isnan(np.asarray(scores, dtype=float)), axis=0)


def stratified_resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` stratified bootstrap resamples of a ``runs x tasks`` matrix (Agarwal et al., 2021).

    Each task's runs are resampled with replacement among that task's own runs, independently of the
    other tasks; missing runs (NaN) stay missing, so ragged results keep their shape.

    Returns:
        ``(reps, runs, tasks)``.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"expected a runs x tasks matrix, got shape {scores.shape}")
    runs, tasks = scores.shape
    counts = runs_per_task(scores)
    if np.any(counts == 0):
        raise ValueError(f"task column(s) {np.flatnonzero(counts == 0).tolist()} have no runs")
    # valid runs first in each column, so that index < count picks a real run
    order = np.argsort(np.isnan(scores), axis=0, kind="stable")
    compact = np.take_along_axis(scores, order, axis=0)
    idx = np.floor(rng.random((reps, runs, tasks)) * counts).astype(np.intp)
    out = compact[idx, np.arange(tasks)]
    missing = np.arange(runs)[:, None] >= counts[None, :]
    out[:, missing] = np.nan
    return out


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The percentile-method bootstrap interval of ``samples`` along axis 0 (Efron & Tibshirani, 1993)."""
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(samples, [alpha, 100 - alpha], axis=0)
    return lo, hi


def bootstrap_ci(
    scores: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray | float],
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Estimate:
    """A statistic of a ``runs x tasks`` matrix with its stratified-bootstrap percentile CI.

    Args:
        scores: ``runs x tasks`` (NaN: missing run).
        statistic: Reduces ``(..., runs, tasks)`` to ``(...)`` (e.g. :func:`aggregate_iqm`).
        reps: Bootstrap replications (rliable's Procgen analysis uses 2000).
        seed: Seed of the ``np.random.default_rng`` generator.
        confidence: Coverage of the interval.

    Returns:
        The estimate; its ``ci`` is None when a task has fewer than :data:`MIN_RUNS_FOR_CI` runs.
    """
    return aggregate_estimates({"_": scores}, {"_": statistic}, reps, seed, confidence)["_"]["_"]


def aggregate_estimates(
    scores: Mapping[str, np.ndarray],
    metrics: Mapping[str, Callable[[np.ndarray], np.ndarray | float]] | Sequence[str] = METRICS,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict[str, Estimate]]:
    """Aggregate metrics of each agent with stratified-bootstrap CIs (Agarwal et al., 2021).

    Args:
        scores: ``{agent: runs x tasks matrix}`` (see :func:`score_matrix`), normalised as wanted.
        metrics: Names from :data:`AGGREGATES` or ``{name: statistic}``.
        reps: Bootstrap replications.
        seed: Each agent is resampled by its own ``np.random.default_rng(seed)``, so an agent's CIs do
            not depend on which other agents are analysed with it.
        confidence: Coverage of the intervals (0.95: 95%).

    Returns:
        ``{agent: {metric: Estimate}}``; no CI where a task has fewer than :data:`MIN_RUNS_FOR_CI` runs.
    """
    _check_bootstrap_args(reps, confidence)
    if not isinstance(metrics, Mapping):
        unknown = [m for m in metrics if m not in AGGREGATES]
        if unknown:
            raise ValueError(
                f"unknown metric(s) {', '.join(map(repr, unknown))}; valid metrics: {', '.join(AGGREGATES)}"
            )
        metrics = {m: AGGREGATES[m] for m in metrics}
    out: dict[str, dict[str, Estimate]] = {}
    for agent, matrix in scores.items():
        matrix = np.asarray(matrix, dtype=float)
        with_ci = bool(np.min(runs_per_task(matrix)) >= MIN_RUNS_FOR_CI)
        samples = stratified_resample(matrix, reps, np.random.default_rng(seed)) if with_ci else None
        out[agent] = {}
        for name, fn in metrics.items():
            value = float(fn(matrix))
            ci = None
            if samples is not None:
                lo, hi = percentile_interval(np.asarray(fn(samples)), confidence)
                ci = (float(lo), float(hi))
            out[agent][name] = Estimate(value, ci)
    return out


def probability_of_improvement_ci(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int = 2000, seed: int = 0, confidence: float = 0.95
) -> Estimate:
    """``P(X > Y)`` with a CI from independent stratified bootstraps of X and of Y (Agarwal et al., 2021)."""
    _check_bootstrap_args(reps, confidence)
    x, y = np.asarray(scores_x, dtype=float), np.asarray(scores_y, dtype=float)
    value = float(probability_of_improvement(x, y))
    if min(np.min(runs_per_task(x)), np.min(runs_per_task(y))) < MIN_RUNS_FOR_CI:
        return Estimate(value, None)
    rng = np.random.default_rng(seed)
    xs, ys = stratified_resample(x, reps, rng), stratified_resample(y, reps, rng)
    samples = np.concatenate(
        [probability_of_improvement(xs[i : i + 256], ys[i : i + 256]) for i in range(0, reps, 256)]
    )
    lo, hi = percentile_interval(samples, confidence)
    return Estimate(value, (float(lo), float(hi)))


def iqm_difference_ci(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int = 2000, seed: int = 0, confidence: float = 0.95
) -> Estimate:
    """``IQM(X) - IQM(Y)`` with a CI from independent stratified bootstraps of X and of Y (X's
    resamples first, then Y's, from one generator seeded ``seed``); no CI when either has fewer than
    :data:`MIN_RUNS_FOR_CI` runs of a task."""
    _check_bootstrap_args(reps, confidence)
    x, y = np.asarray(scores_x, dtype=float), np.asarray(scores_y, dtype=float)
    value = float(aggregate_iqm(x) - aggregate_iqm(y))
    if min(np.min(runs_per_task(x)), np.min(runs_per_task(y))) < MIN_RUNS_FOR_CI:
        return Estimate(value, None)
    rng = np.random.default_rng(seed)
    samples = aggregate_iqm(stratified_resample(x, reps, rng)) - aggregate_iqm(
        stratified_resample(y, reps, rng)
    )
    lo, hi = percentile_interval(np.asarray(samples), confidence)
    return Estimate(value, (float(lo), float(hi)))


def performance_profile(
    scores: np.ndarray,
    taus: Sequence[float] | np.ndarray,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The run-score distribution at each ``tau`` with pointwise bootstrap CIs (Agarwal et al., 2021).

    Returns:
        ``(profile, cis)``: ``profile`` of shape ``(len(taus),)`` and ``cis`` of shape
        ``(2, len(taus))`` (lower, upper), or None when runs are too few for a CI.
    """
    _check_bootstrap_args(reps, confidence)
    scores = np.asarray(scores, dtype=float)
    profile = score_distribution(scores, taus)
    if np.min(runs_per_task(scores)) < MIN_RUNS_FOR_CI:
        return profile, None
    samples = score_distribution(stratified_resample(scores, reps, np.random.default_rng(seed)), taus)
    lo, hi = percentile_interval(samples, confidence)
    return profile, np.stack([lo, hi])


def mean_ci_over_seeds(
    values: Sequence[float], reps: int = 2000, seed: int = 0, confidence: float = 0.95
) -> Estimate:
    """The mean of per-seed values with a percentile bootstrap CI over seeds (none for fewer than 2)."""
    return bootstrap_ci(np.asarray(values, dtype=float)[:, None], aggregate_mean, reps, seed, confidence)


# ----------------------------------------------------------------------------------------------------
# The published layout: {agent: {game: [one score per run]}}


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def load_scores(path: str | os.PathLike[str]) -> dict[str, dict[str, list[float]]]:
    """Reads a JSON file in the published layout ``{agent: {game: [one score per run]}}``.

    Raises:
        ValueError: The file cannot be read or does not have that layout (says what is wrong).
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read scores file {str(path)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"scores file {str(path)!r} is not valid JSON: {exc}") from None
    layout = "expected {agent: {game: [one score per run]}}"
    if not isinstance(data, dict) or not data:
        raise ValueError(f"scores file {str(path)!r}: {layout}")
    for agent, games in data.items():
        if not isinstance(games, dict) or not games:
            raise ValueError(f"scores file {str(path)!r}, agent {agent!r}: {layout}")
        for game, values in games.items():
            if (
                not isinstance(values, list)
                or not values
                or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in values
                )
            ):
                raise ValueError(
                    f"scores file {str(path)!r}, agent {agent!r}, game {game!r}: expected a non-empty "
                    f"list of numbers, all finite, got {values!r:.60}"
                )
    return data


def common_tasks(scores: Mapping[str, Mapping[str, Sequence[float]]]) -> list[str]:
    """The tasks every agent has scores for, sorted."""
    sets = [set(games) for games in scores.values()]
    return sorted(set.intersection(*sets)) if sets else []
