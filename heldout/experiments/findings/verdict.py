"""A finding's verdict from its run folders: the statistic over seeds, its CI, and what it says.

The statistic (:data:`~heldout.experiments.findings.finding.STATISTICS`) is computed from each run's
mean final-evaluation return per split (``eval/train.csv``, ``eval/test.csv``), one value per seed,
with the stratified bootstrap of :mod:`heldout.analysis.stats` (percentile 95% CIs). A finding with a
``shift`` reads its test return from the held-out levels evaluated again under it instead
(``eval/test-wrapper-<slug>.csv``, :attr:`~heldout.experiments.findings.finding.Finding.test_split`):

* ``gap``: IQM over seeds of ``train - test``;
* ``difference``: IQM of arm A's test returns minus IQM of arm B's, A and B resampled independently
  (with ``P(A > B)`` and its CI beside it);
* ``slope``: least-squares slope of the mean gap per step against ``log(value)``, the seeds of each
  step resampled within that step.

The verdict: **reproduced** when the CI excludes 0 on the claimed side, **opposite** when it excludes
0 on the other side, else **inconclusive at this budget**, with the seeds a power estimate asks for:
the CI's half-width shrinks as ``1/sqrt(seeds)``, so with ``se = half-width / 1.96`` and the effect
seen ``d``, a two-sided 5% test has 80% power at ``seeds * ((1.96 + 0.84) * se / |d|)^2`` seeds per
arm (the normal approximation; it assumes the effect seen is the true one).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heldout.analysis.runs import RunRecord
from heldout.analysis.stats import (
    Estimate,
    aggregate_iqm,
    iqm_difference_ci,
    percentile_interval,
    probability_of_improvement_ci,
    stratified_resample,
)
from heldout.experiments.findings.finding import Finding

#: The verdicts.
VERDICTS = ("reproduced", "opposite", "inconclusive at this budget")
#: z of a two-sided 95% interval, and of 80% power.
Z_CI, Z_POWER = 1.959964, 0.841621


@dataclass
class Verdict:
    """What a finding's runs say.

    Attributes:
        finding: The finding's name.
        scale: The scale the runs were made at.
        verdict: One of :data:`VERDICTS`.
        estimate: The statistic and its 95% CI (no CI: too few seeds).
        seeds: Seeds per arm or step (the fewest of any).
        seeds_needed: Inconclusive: the power estimate's seeds per arm (None where no effect is seen
            or no CI could be drawn).
        groups: Per arm or step (``"all"`` for a gap): the per-seed values the statistic used.
        extra: Other figures (``P(A > B)`` of a difference).
    """

    finding: str
    scale: str
    verdict: str
    estimate: Estimate
    seeds: int
    seeds_needed: int | None
    groups: dict[str, dict[str, list[float]]]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "scale": self.scale,
            "verdict": self.verdict,
            "estimate": self.estimate.to_dict(),
            "seeds": self.seeds,
            "seeds_needed": self.seeds_needed,
            "groups": self.groups,
            **self.extra,
        }


def run_command(name: str, scale: str, seeds: int | None = None) -> str:
    """The ``heldout findings run`` command of a finding at a scale (with ``--seeds`` when given)."""
    return f"heldout findings run {shlex.quote(name)} --scale {scale}" + (
        f" --seeds {seeds}" if seeds else ""
    )


def decide(estimate: Estimate, direction: int, seeds: int) -> tuple[str, int | None]:
    """The verdict of an estimate on a claim of sign ``direction``, and the seeds it needs if inconclusive."""
    if estimate.ci is not None:
        lo, hi = estimate.ci
        if (lo > 0 and direction > 0) or (hi < 0 and direction < 0):
            return VERDICTS[0], None
        if (lo > 0 and direction < 0) or (hi < 0 and direction > 0):
            return VERDICTS[1], None
    return VERDICTS[2], seeds_needed(estimate, seeds)


def seeds_needed(estimate: Estimate, seeds: int) -> int | None:
    """Seeds per arm for 80% power at the effect seen (module docstring); None without a CI or an effect."""
    if estimate.ci is None or estimate.value == 0 or not math.isfinite(estimate.value):
        return None
    se = (estimate.ci[1] - estimate.ci[0]) / (2 * Z_CI)
    return max(seeds + 1, math.ceil(seeds * ((Z_CI + Z_POWER) * se / abs(estimate.value)) ** 2))


def _column(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)[:, None]


def _ragged(columns: list[list[float]]) -> np.ndarray:
    """A runs x steps matrix, NaN where a step has fewer runs."""
    out = np.full((max(map(len, columns)), len(columns)), np.nan)
    for j, col in enumerate(columns):
        out[: len(col), j] = col
    return out


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``y[..., j]`` against ``x[j]`` along the last axis."""
    xc = x - x.mean()
    return np.sum(xc * (y - y.mean(axis=-1, keepdims=True)), axis=-1) / np.sum(xc**2)


def compute(finding: Finding, scale: str, runs: list[RunRecord], reps: int = 2000, seed: int = 0) -> Verdict:
    """The verdict of ``finding`` from its complete runs (one per seed and arm or step).

    Raises:
        ValueError: A run lacks the train split, or an arm or step the scale names has no run.
    """
    s = finding.scales[scale]
    gaps: dict[str, list[float]] = {}
    tests: dict[str, list[float]] = {}
    trains: dict[str, list[float]] = {}
    labels = [str(v) for v in s.values] or ["all"]
    clean: dict[str, list[float]] = {}  # the test return without the shift (shown under one)
    for label in labels:
        gaps[label], tests[label], trains[label], clean[label] = [], [], [], []
    split = finding.test_split
    for run in sorted(runs, key=lambda r: r.seed):
        label = "all" if finding.key is None else str(finding.arm_of(run.config))
        if label not in gaps:
            continue
        train, test, measured = run.mean("train"), run.mean("test"), run.mean(split)
        if train is None or test is None:
            raise ValueError(f"run folder {str(run.path)!r} has no eval/train.csv: the gap needs both splits")
        if measured is None:
            raise ValueError(
                f"run folder {str(run.path)!r} has no eval/{split}.csv (its test levels under "
                f"{finding.shift}); '{run_command(finding.name, scale)}' evaluates it"
            )
        trains[label].append(train)
        tests[label].append(measured)
        gaps[label].append(train - measured)
        clean[label].append(test)
    missing = [label for label in labels if not gaps[label]]
    if missing:
        raise ValueError(
            f"finding {finding.name!r} ({scale}): no complete run for "
            f"{', '.join(f'{finding.key}={label}' for label in missing)}; "
            f"run '{run_command(finding.name, scale)}' to finish it"
        )
    seeds = min(len(v) for v in gaps.values())
    groups = {label: {"train": trains[label], "test": tests[label], "gap": gaps[label]} for label in labels}
    if finding.shift is not None:  # "test" is the return under the shift, "clean test" without it
        for label in labels:
            groups[label]["clean test"] = clean[label]
    rng = np.random.default_rng(seed)
    extra: dict[str, Any] = {
        "statistic": finding.statistic,
        "claim": finding.claim,
        "direction": finding.direction,
        **({"shift": finding.shift} if finding.shift else {}),
    }
    if finding.statistic == "difference":
        a, b = _column(tests[labels[0]]), _column(tests[labels[1]])
        extra["p_improvement"] = probability_of_improvement_ci(a, b, reps=reps, seed=seed).to_dict()
        estimate = iqm_difference_ci(a, b, reps=reps, seed=seed)
        verdict, needed = decide(estimate, finding.direction, seeds)
        return Verdict(finding.name, scale, verdict, estimate, seeds, needed, groups, extra)
    if finding.statistic == "gap":
        matrix = _column(gaps["all"])
        value, samples = float(aggregate_iqm(matrix)), aggregate_iqm(stratified_resample(matrix, reps, rng))
    else:
        x = np.log(np.asarray([float(v) for v in s.values]))
        matrix = _ragged([gaps[label] for label in labels])
        value = float(_slope(x, np.nanmean(matrix, axis=0)))
        samples = _slope(x, np.nanmean(stratified_resample(matrix, reps, rng), axis=1))
    ci = None
    if seeds >= 2:
        lo, hi = percentile_interval(np.asarray(samples), 0.95)
        ci = (float(lo), float(hi))
    estimate = Estimate(value, ci)
    verdict, needed = decide(estimate, finding.direction, seeds)
    return Verdict(finding.name, scale, verdict, estimate, seeds, needed, groups, extra)


def lines(finding: Finding, v: Verdict) -> list[str]:
    """The printed verdict."""
    out = [
        f"finding {finding.name} ({v.scale}): {finding.claim}",
        f"  source: {finding.source}",
        f"  statistic: {finding.statistic}, {v.estimate.format()} (95% CI), {v.seeds} seed(s)"
        + {"difference": " per arm", "slope": " per step"}.get(finding.statistic, ""),
    ]
    if "p_improvement" in v.extra:
        p = Estimate(
            v.extra["p_improvement"]["value"],
            v.extra["p_improvement"]["ci"] and tuple(v.extra["p_improvement"]["ci"]),
        )
        # an arm that is not a name (a boolean, a number) is shown with its key: P(s_rym=True > s_rym=False)
        a, b = (
            arm if isinstance(arm, str) else f"{str(finding.key).rsplit('.', 1)[-1]}={arm}"
            for arm in finding.scales[v.scale].values
        )
        out.append(f"  P({a} > {b}) on test: {p.format(2)}")
    if finding.shift:
        out.append(f"  test: the held-out levels under {finding.shift} (a shift no run trained on)")
    for label, g in v.groups.items():
        name = "runs" if label == "all" else f"{finding.key}={label}"
        clean = f", test without the shift {np.mean(g['clean test']):.3f}" if "clean test" in g else ""
        out.append(
            f"  {name}: train {np.mean(g['train']):.3f}, test {np.mean(g['test']):.3f}, gap "
            f"{np.mean(g['gap']):.3f}{clean} (means of {len(g['gap'])} seed(s))"
        )
    verdict = v.verdict
    if v.seeds_needed is not None:
        verdict += (
            f" (about {v.seeds_needed} seeds per arm would decide it at the effect seen: "
            f"{run_command(finding.name, v.scale, v.seeds_needed)})"
        )
    elif v.verdict == VERDICTS[2]:
        verdict += " (no effect or no CI to base a power estimate on)"
    out.append(f"  verdict: {verdict}")
    if finding.scales[v.scale].published:
        out.append(f"  published: {finding.scales[v.scale].published}")
    return out


def plot(finding: Finding, v: Verdict, path: str | Path) -> Path:
    """verdict.png: each seed's train and test return per arm or step, and the statistic with its CI."""
    from heldout.analysis.plots import _pyplot, _save

    plt = _pyplot()
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 1.3]}, layout="constrained"
    )
    labels = list(v.groups)
    # under a shift the "test" group is the shifted return and "clean test" the plain one
    legend = {
        "train": "train",
        "clean test": "test",
        "test": f"test under {finding.shift}" if finding.shift else "test",
    }
    for i, label in enumerate(labels):
        g = v.groups[label]
        shown = [
            (k, c)
            for k, c in (("train", "tab:blue"), ("clean test", "tab:green"), ("test", "tab:orange"))
            if k in g
        ]
        for j, (split, color) in enumerate(shown):
            xs = np.full(len(g[split]), i + (j - (len(shown) - 1) / 2) * 0.25)
            left.scatter(xs, g[split], color=color, alpha=0.7, label=legend[split] if i == 0 else None)
            left.hlines(np.mean(g[split]), xs[0] - 0.12, xs[0] + 0.12, color=color)
    left.set_xticks(range(len(labels)))
    left.set_xticklabels(["all seeds" if label == "all" else f"{finding.key}={label}" for label in labels])
    left.set_ylabel("mean return per seed")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    left.set_title(f"{finding.name} ({v.scale}): each dot a seed, each bar the mean")
    lo, hi = v.estimate.ci if v.estimate.ci else (v.estimate.value, v.estimate.value)
    right.errorbar(
        [0],
        [v.estimate.value],
        yerr=[[v.estimate.value - lo], [hi - v.estimate.value]],
        fmt="o",
        color="black",
        capsize=6,
    )
    right.axhline(0, color="gray", linestyle="--")
    right.set_xticks([0])
    right.set_xticklabels([finding.statistic])
    right.set_title(f"{v.verdict}\n(95% bootstrap CI)", fontsize=10)
    values = finding.scales[v.scale].values
    right.set_ylabel(
        {
            "gap": "IQM over seeds of train - test",
            "difference": f"IQM test({values[0]}) - IQM test({values[-1]})"
            + ("\nunder the shift" if finding.shift else "")
            if values
            else "",
            "slope": f"d gap / d log({finding.key})",
        }[finding.statistic]
    )
    return _save(fig, path)
