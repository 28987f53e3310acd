"""Per-context results of contextual experiments: return against each varied context feature.

The report's CARL figures and per-context table (Benjamins et al. 2023, "Contextualize Me - The Case
for Context in Reinforcement Learning", TMLR, Figs. 3-5) are computed here from the runs of one
experiment (its seeds, :mod:`heldout.analysis.experiment`), each read from the ``ctx_<feature>``
columns of its ``eval/<split>.csv``:

* **bins**: for each feature that varies in the final evaluation and each split, ``context_bins``
  equal-width bins over that split's range (as ``summary.json``'s ``by_context``); per bin, each
  run's mean return over its episodes in the bin, then the mean over runs with a percentile-bootstrap
  CI over runs (:func:`heldout.analysis.stats.mean_ci_over_seeds`). All seeds of an experiment are
  evaluated on the same fixed context list, so a bin holds the same episodes in every run.
* **gap per bin**: per run, its mean return over the whole *training* evaluation minus its mean
  return in the test bin (train and test contexts are disjoint, so no bin holds both); mean over runs
  with its CI. Positive: the agent does worse in that test bin than on its training distribution.
* **grid**: for two varied features, a ``bins x bins`` grid over both splits' joint range, each cell
  the mean over runs of the runs' cell means (the combinatorial figure).
* **training support**: the intervals of the training distribution per feature (shaded in figures),
  features a training distribution leaves out at the env's default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heldout.analysis import stats as S

Interval = tuple[float, float]


@dataclass
class ContextBin:
    """One bin of one feature on one split.

    Attributes:
        lo, hi: Edges (the last bin includes its upper edge).
        episodes: Episodes in the bin per run (the first run's count; every run has the same list).
        x: Mean feature value of the bin's episodes (where the point is drawn), None if empty.
        mean: Mean over runs of each run's mean return in the bin, with its CI; None if empty.
        gap: Test bins: mean over runs of (run's train mean - run's bin mean), with its CI.
        runs: Runs with an episode in the bin.
    """

    lo: float
    hi: float
    episodes: int
    x: float | None
    mean: S.Estimate | None
    gap: S.Estimate | None = None
    runs: int = 0


@dataclass
class ContextResults:
    """Everything the per-context figures and table show for one contextual experiment.

    Attributes:
        env, label: The env and the experiment's row label.
        mode: The context split mode (interpolation / extrapolation / combinatorial).
        features: The features that vary in its final evaluation.
        train_support, test_support: Per feature, the intervals of the training / test distribution.
        bins: ``{split: {feature: [ContextBin]}}``.
        grid: For two varied features: ``{"features": (fx, fy), "x_edges", "y_edges", "mean"
            (y by x, NaN where no episode), "episodes" (per run), "train_boxes", "test_boxes"
            (each component's ``(x range, y range)``)}``; None otherwise.
        runs: Number of runs (seeds).
    """

    env: str
    label: str
    mode: str
    features: list[str]
    train_support: dict[str, tuple[Interval, ...]]
    test_support: dict[str, tuple[Interval, ...]]
    bins: dict[str, dict[str, list[ContextBin]]]
    grid: dict[str, Any] | None = None
    runs: int = 0
    title: str = field(default="")


def _space_defaults(env: str) -> dict[str, float]:
    try:
        from heldout.envs import CONTEXTUAL_ENVS

        return dict(CONTEXTUAL_ENVS.get(env).context_space.defaults())
    except Exception:  # an env this install does not have: fall back to what the episodes show
        return {}


def _support(spec: Any, feature: str, default: float | None) -> tuple[Interval, ...]:
    from heldout.contexts import ContextDistribution

    try:
        return ContextDistribution.parse(spec).support(feature, default)
    except (TypeError, ValueError, KeyError):
        return ()


def _edges(lo: float, hi: float, bins: int) -> np.ndarray:
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-6, 1e-12)
    return np.linspace(lo, hi, bins + 1)


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value (the last bin closed; values outside go to the nearest end bin)."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def varied_features(runs: Sequence[Any]) -> list[str]:
    """Features whose value differs between final-evaluation episodes (any split, any run), in the
    order of the eval CSV columns."""
    order: list[str] = []
    values: dict[str, list[np.ndarray]] = {}
    for r in runs:
        for per_feature in r.contexts.values():
            for f, v in per_feature.items():
                if f not in values:
                    order.append(f)
                values.setdefault(f, []).append(v)
    out = []
    for f in order:
        allv = np.concatenate(values[f])
        if allv.size and float(np.ptp(allv)) > 0:
            out.append(f)
    return out


def context_results(
    env: str,
    label: str,
    runs: Sequence[Any],
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    bins: int | None = None,
) -> ContextResults | None:
    """The per-context results of one contextual experiment (its runs: seeds), or None when its
    evaluation CSVs hold no context columns or no feature varies.

    Args:
        env: The env.
        label: The experiment's row label.
        runs: :class:`heldout.analysis.runs.RunRecord` of one experiment.
        reps, seed, confidence: The bootstrap of every CI.
        bins: Bins per feature and split (default: the runs' ``context_bins``, else 5).
    """
    runs = [r for r in runs if r.contexts]
    if not runs:
        return None
    features = varied_features(runs)
    if not features:
        return None
    config = runs[0].config or {}
    n_bins = int(bins or config.get("context_bins") or 5)
    spec = config.get("contexts") or {}
    defaults = _space_defaults(env)
    train_support, test_support = {}, {}
    for f in features:
        train_support[f] = _support(spec.get("train"), f, defaults.get(f)) if spec.get("train") else ()
        test_support[f] = _support(spec.get("test"), f, defaults.get(f)) if spec.get("test") else ()
    out: dict[str, dict[str, list[ContextBin]]] = {}
    splits = [s for s in ("train", "test", "validation") if any(s in r.contexts for r in runs)]
    for split in splits:
        with_split = [r for r in runs if split in r.contexts]
        train_means = {id(r): r.mean("train") for r in with_split}
        out[split] = {}
        for f in features:
            values = np.concatenate([r.contexts[split][f] for r in with_split if f in r.contexts[split]])
            if values.size == 0:
                continue
            support = {"train": train_support, "test": test_support}.get(split, {}).get(f) or ()
            lo, hi = (
                (support[0][0], support[-1][1]) if support else (float(values.min()), float(values.max()))
            )
            lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
            if hi <= lo:  # the feature does not vary in this split: one bin
                edges = _edges(lo, hi, 1)
            else:
                edges = _edges(lo, hi, n_bins)
            per_run_means: list[np.ndarray] = []
            per_run_x: list[np.ndarray] = []
            counts = None
            for r in with_split:
                v = r.contexts[split][f]
                idx = _bin_index(v, edges)
                nb = len(edges) - 1
                n = np.bincount(idx, minlength=nb)
                sums = np.bincount(idx, weights=r.returns[split], minlength=nb)
                xs = np.bincount(idx, weights=v, minlength=nb)
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_run_means.append(np.where(n > 0, sums / np.maximum(n, 1), np.nan))
                per_run_x.append(np.stack([xs, n]))
                counts = n if counts is None else counts
            table = np.array(per_run_means)
            xsum = np.sum(per_run_x, axis=0)
            result = []
            for b in range(len(edges) - 1):
                col = table[:, b]
                ok = ~np.isnan(col)
                if not ok.any():
                    result.append(ContextBin(float(edges[b]), float(edges[b + 1]), 0, None, None))
                    continue
                est = S.mean_ci_over_seeds(col[ok], reps, seed, confidence)
                gap = None
                if split != "train":
                    diffs = [
                        train_means[id(r)] - col[i]
                        for i, r in enumerate(with_split)
                        if ok[i] and train_means[id(r)] is not None
                    ]
                    gap = S.mean_ci_over_seeds(diffs, reps, seed, confidence) if diffs else None
                result.append(
                    ContextBin(
                        float(edges[b]),
                        float(edges[b + 1]),
                        int(counts[b]) if counts is not None else 0,
                        float(xsum[0, b] / xsum[1, b]),
                        est,
                        gap,
                        int(ok.sum()),
                    )
                )
            out[split][f] = result
    grid = (
        _grid(runs, features, train_support, test_support, n_bins, defaults) if len(features) == 2 else None
    )
    return ContextResults(
        env=env,
        label=label,
        mode=str(spec.get("mode", "extrapolation")),
        features=features,
        train_support=train_support,
        test_support=test_support,
        bins=out,
        grid=grid,
        runs=len(runs),
    )


def _grid(
    runs: Sequence[Any],
    features: Sequence[str],
    train_support: dict[str, tuple[Interval, ...]],
    test_support: dict[str, tuple[Interval, ...]],
    n_bins: int,
    defaults: dict[str, float],
) -> dict[str, Any]:
    """Mean return over a grid of two features, over train and test together: about ``n_bins`` cells
    per axis, with every edge of a training or test box on a cell edge (so no cell straddles one)."""
    fx, fy = features
    spec = runs[0].config.get("contexts", {}) if runs[0].config else {}
    train_boxes = _boxes(spec.get("train"), fx, fy, defaults)
    test_boxes = _boxes(spec.get("test"), fx, fy, defaults)
    edges = []
    for axis, f in enumerate((fx, fy)):
        vals = np.concatenate([r.contexts[s][f] for r in runs for s in ("train", "test") if s in r.contexts])
        ends = [iv for sup in (train_support.get(f, ()), test_support.get(f, ())) for iv in sup]
        lo = min([float(vals.min())] + [a for a, _ in ends])
        hi = max([float(vals.max())] + [b for _, b in ends])
        cuts = sorted({lo, hi} | {v for box in train_boxes + test_boxes for v in box[axis] if lo < v < hi})
        if hi <= lo:
            edges.append(_edges(lo, hi, 1))
            continue
        pieces = [
            np.linspace(a, b, max(1, round(n_bins * (b - a) / (hi - lo))) + 1)[:-1]
            for a, b in zip(cuts, cuts[1:])
        ]
        edges.append(np.append(np.concatenate(pieces), hi))
    nx, ny = len(edges[0]) - 1, len(edges[1]) - 1
    per_run = []
    counts = None
    for r in runs:
        xs = np.concatenate([r.contexts[s][fx] for s in ("train", "test") if s in r.contexts])
        ys = np.concatenate([r.contexts[s][fy] for s in ("train", "test") if s in r.contexts])
        rets = np.concatenate([r.returns[s] for s in ("train", "test") if s in r.contexts])
        ix, iy = _bin_index(xs, edges[0]), _bin_index(ys, edges[1])
        flat = iy * nx + ix
        n = np.bincount(flat, minlength=nx * ny)
        sums = np.bincount(flat, weights=rets, minlength=nx * ny)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_run.append(np.where(n > 0, sums / np.maximum(n, 1), np.nan).reshape(ny, nx))
        counts = n.reshape(ny, nx) if counts is None else counts
    stack = np.array(per_run)
    seen = ~np.all(np.isnan(stack), axis=0)
    mean = np.full(seen.shape, np.nan)
    mean[seen] = np.nanmean(stack[:, seen], axis=0)
    return {
        "features": (fx, fy),
        "x_edges": edges[0],
        "y_edges": edges[1],
        "mean": mean,
        "episodes": counts,
        "train_boxes": train_boxes,
        "test_boxes": test_boxes,
    }


def _boxes(spec: Any, fx: str, fy: str, defaults: dict[str, float]) -> list[tuple[Interval, Interval]]:
    """The ``(x range, y range)`` of each component of a distribution (its mixture's boxes)."""
    from heldout.contexts import ContextDistribution

    if not spec:
        return []
    try:
        dist = ContextDistribution.parse(spec)
    except (TypeError, ValueError, KeyError):
        return []
    out = []
    for comp in dist.components:
        one = ContextDistribution((comp,))
        hx, hy = one.hull(fx, defaults.get(fx)), one.hull(fy, defaults.get(fy))
        if hx is not None and hy is not None:
            out.append((hx, hy))
    return out


def _range_text(support: Sequence[Interval]) -> str:
    return " u ".join(f"{lo:g}" if lo == hi else f"[{lo:g}, {hi:g}]" for lo, hi in support) or "-"


def per_context_rows(
    results: ContextResults, digits: int = 1
) -> tuple[list[str], list[list[Any]], list[list[str]]]:
    """The per-context table of one experiment: ``(csv header, csv rows, markdown rows)``.

    One row per split, varied feature and bin: its range, episodes per run, mean return over runs
    with its CI and, for test bins, the gap to the training mean with its CI.
    """
    from heldout.analysis.text import ci_cols, est_text

    header = [
        "env", "agent", "split", "feature", "bin_lo", "bin_hi", "episodes_per_run", "runs",
        "mean", "ci_low", "ci_high", "gap_mean", "gap_ci_low", "gap_ci_high",
    ]  # fmt: skip
    rows: list[list[Any]] = []
    md: list[list[str]] = []
    for split, per_feature in results.bins.items():
        for f, bins in per_feature.items():
            for i, b in enumerate(bins):
                closing = "]" if i == len(bins) - 1 else ")"
                rows.append([results.env, results.label, split, f, b.lo, b.hi, b.episodes, b.runs,
                             *ci_cols(b.mean), *ci_cols(b.gap)])  # fmt: skip
                md.append(
                    [
                        split,
                        f,
                        f"[{b.lo:.4g}, {b.hi:.4g}{closing}",
                        str(b.episodes),
                        est_text(b.mean, digits, n=b.runs),
                        "" if split == "train" else est_text(b.gap, digits, n=b.runs),
                    ]
                )
    return header, rows, md


__all__ = ["ContextBin", "ContextResults", "context_results", "per_context_rows", "varied_features"]
