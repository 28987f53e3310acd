"""PNG plots for reports: learning curves, per-level return histograms, aggregate intervals.

matplotlib is imported lazily with the Agg backend (no display needed). Interval plots follow the
style of Agarwal et al. (2021), "Deep RL at the Edge of the Statistical Precipice": one panel per
aggregate metric, a bar per agent spanning its confidence interval, a tick at the point estimate.

Each plot has a ``*_figure`` function that builds and returns the matplotlib ``Figure`` (for tests
and notebooks; the caller closes it) and a function of the plain name that writes it as a PNG.
Agents keep one colour, line style and marker across a figure, so lines that coincide stay visible
(dashes of one show through the other, markers are staggered along each line).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heldout.analysis import stats as S

_METRIC_TITLES = {
    "mean": "Mean",
    "median": "Median",
    "iqm": "IQM",
    "optimality_gap": "Optimality gap (lower is better)",
}

#: Line styles and markers given to agents in turn (with the tab10 colours).
LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 3)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Saves through a temporary name and a rename, like every run-folder file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    os.replace(tmp, path)
    _pyplot().close(fig)
    return path


def _colors(n: int) -> list[Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def agent_styles(agents: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{agent: {"color", "linestyle", "marker"}}``: a distinct combination per agent."""
    colors = _colors(len(agents))
    return {
        a: {
            "color": colors[i],
            "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)],
        }
        for i, a in enumerate(agents)
    }


def _steps_text(x: float, _pos: Any = None) -> str:
    """Tick labels for environment steps: ``0``, ``250k``, ``1M``, ``2.5M``."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def _padded(lo: float, hi: float, frac: float = 0.08, min_span: float = 0.05) -> tuple[float, float]:
    """Limits holding ``[lo, hi]`` strictly inside: widened to ``min_span`` around its centre if
    narrower (a single point), then padded by ``frac`` of the span each side."""
    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    pad = frac * (hi - lo)
    return lo - pad, hi + pad


# ----------------------------------------------------------------------------------------------------
# Learning curves


def learning_curves_figure(
    env: str, runs_by_agent: Mapping[str, Sequence[Any]], title: str | None = None, show_runs: bool = True
) -> Any:
    """The figure of :func:`learning_curves`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    styles = agent_styles(list(runs_by_agent))
    one = len(runs_by_agent) == 1  # one agent: train and test in two colours, not one
    xs: list[np.ndarray] = []
    for k, (label, runs) in enumerate(runs_by_agent.items()):
        st = styles[label]
        for split, style in (("train", "-"), ("test", "--")):
            color = _colors(2)[split == "test"] if one else st["color"]
            curves = [r.curve for r in runs if r.curve and split in r.curve]
            if not curves:
                continue
            steps = np.unique(np.concatenate([c["steps"] for c in curves]))
            table = np.full((len(curves), len(steps)), np.nan)
            for i, c in enumerate(curves):
                table[i, np.searchsorted(steps, c["steps"])] = c[split]
            keep = ~np.all(np.isnan(table), axis=0)
            steps, table = steps[keep], table[:, keep]
            if steps.size == 0:
                continue
            xs.append(steps)
            mean = np.nanmean(table, axis=0)
            ax.plot(
                steps,
                mean,
                linestyle=style,
                color=color,
                marker=st["marker"],
                ms=4 if split == "train" else 5,
                mfc=color if split == "train" else "white",
                label=f"{label} {split}"
                + (f" ({len(curves)} run{'s' if len(curves) != 1 else ''})" if show_runs else ""),
                zorder=3 + k,
            )
            if len(curves) > 1:
                ax.fill_between(
                    steps, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=color, alpha=0.12
                )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episode return")
    ax.set_title(
        title or f"{env}: return on train (solid, filled) vs test (dashed, open) levels", fontsize=10
    )
    ax.xaxis.set_major_formatter(_steps_text)
    if xs:
        allx = np.concatenate(xs)
        ax.set_xlim(*_padded(float(allx.min()), float(allx.max()), 0.04, 1.0))
    ax.margins(y=0.08)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def learning_curves(
    env: str,
    runs_by_agent: Mapping[str, Sequence[Any]],
    path: str | os.PathLike[str],
    title: str | None = None,
    show_runs: bool = True,
) -> Path:
    """Train (solid) and test (dashed) mean return over training steps, one colour and marker per agent.

    Each line is the mean over runs at each logged step; the band spans the runs' min and max.

    Args:
        env: The game, for the default title.
        runs_by_agent: ``{agent label: [RunRecord]}`` whose ``curve`` holds periodic evaluations.
        path: The PNG to write.
        title: The plot's title (default: which line is train and which test, on ``env``).
        show_runs: Add the number of runs to each legend entry (``"ppo train (3 runs)"``).
    """
    return _save(learning_curves_figure(env, runs_by_agent, title, show_runs), path)


# ----------------------------------------------------------------------------------------------------
# Per-level histograms


def run_learning_curve(run: Any, path: str | os.PathLike[str]) -> Path | None:
    """One run's learning curve: its train and test mean return at each periodic evaluation, the
    final evaluation as the last point; None (and no file) if that makes fewer than two points (a run
    without periodic evaluation).

    Args:
        run: A :class:`heldout.analysis.report.RunRecord` (``heldout.analysis.report.load_run_record``).
        path: The PNG to write (``heldout train`` writes ``<run folder>/learning_curve.png``).
    """
    if not run.curve or len(run.curve["steps"]) < 2:
        return None
    title = f"{run.env} / {run.agent} / seed {run.seed}: training vs held-out test"
    return learning_curves(run.env, {run.agent: [run]}, path, title=title, show_runs=False)


def per_level_means(runs: Sequence[Any], split: str) -> np.ndarray:
    """The mean final-evaluation return of each level of ``split``, over every episode of every run on it."""
    with_split = [r for r in runs if split in r.levels]
    if not with_split:
        return np.zeros(0)
    levels = np.concatenate([r.levels[split] for r in with_split])
    returns = np.concatenate([r.returns[split] for r in with_split])
    _, inverse = np.unique(levels, return_inverse=True)
    return np.bincount(inverse, weights=returns) / np.bincount(inverse)


def level_histograms_figure(env: str, runs_by_agent: Mapping[str, Sequence[Any]]) -> Any:
    """The figure of :func:`level_histograms`."""
    plt = _pyplot()
    n = len(runs_by_agent)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows + 0.5), squeeze=False)
    data = {
        label: {s: per_level_means(runs, s) for s in ("train", "test")}
        for label, runs in runs_by_agent.items()
    }
    values = np.concatenate([v for d in data.values() for v in d.values()] + [np.zeros(0)])
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 21)  # one binning for every agent: comparable panels
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (label, runs) in zip(axes.flat, runs_by_agent.items()):
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            d = data[label][split]
            if d.size:
                ax.hist(
                    d,
                    bins=bins,
                    alpha=0.55,
                    color=color,
                    label=f"{split}: {d.size} levels, mean {d.mean():.2f}",
                )
                ax.axvline(d.mean(), color=color, lw=1.5, ls="--")
        ax.set_xlim(*_padded(float(bins[0]), float(bins[-1]), 0.04))
        ax.margins(y=0.1)
        ax.set_title(f"{label} ({len(runs)} run{'s' if len(runs) != 1 else ''})", fontsize=9)
        ax.set_xlabel("mean return on a level (final evaluation)", fontsize=9)
        ax.set_ylabel("number of levels", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{env}: per-level mean return, train vs test levels (dashed: split mean)", fontsize=10)
    fig.tight_layout()
    return fig


def level_histograms(
    env: str, runs_by_agent: Mapping[str, Sequence[Any]], path: str | os.PathLike[str]
) -> Path:
    """Histograms of per-level mean returns (final evaluation, averaged over runs), train vs test, per agent."""
    return _save(level_histograms_figure(env, runs_by_agent), path)


# ----------------------------------------------------------------------------------------------------
# Aggregate intervals


def interval_figure(estimates: Mapping[str, Mapping[str, S.Estimate]]) -> Any:
    """The figure of :func:`interval_plot`."""
    plt = _pyplot()
    agents = list(estimates)
    metrics = [m for m in S.METRICS if all(m in e for e in estimates.values())]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.4 * len(metrics), 0.5 * len(agents) + 1.6), squeeze=False, sharey=True
    )
    colors = _colors(len(agents))
    for ax, m in zip(axes[0], metrics):
        xs: list[float] = []
        for y, (agent, color) in enumerate(zip(agents, colors)):
            e = estimates[agent][m]
            xs.append(e.value)
            if e.ci is not None:
                xs.extend(e.ci)
                ax.barh(y, e.ci[1] - e.ci[0], left=e.ci[0], height=0.6, color=color, alpha=0.75)
            else:  # no CI: the point estimate as a marker, so the row still shows the agent's colour
                ax.plot([e.value], [y], "D", color=color, ms=7, mec="black", zorder=3)
            ax.vlines(e.value, y - 0.3, y + 0.3, color="black", lw=1.5, zorder=4)
        ax.set_xlim(*_padded(min(xs), max(xs), 0.12, 0.1))
        ax.set_ylim(len(agents) - 0.4, -0.6)  # first agent on top, half a row of room above and below
        ax.set_yticks(range(len(agents)))
        ax.set_yticklabels(agents)
        ax.set_title(_METRIC_TITLES.get(m, m), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    fig.supxlabel(
        "min-max normalised score (bars: 95% CI; black tick: point estimate; diamond: no CI, too few runs)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def interval_plot(estimates: Mapping[str, Mapping[str, S.Estimate]], path: str | os.PathLike[str]) -> Path:
    """Aggregate metrics with CIs, one panel per metric and a row per agent (Agarwal et al., 2021, Fig. 1)."""
    return _save(interval_figure(estimates), path)


# ----------------------------------------------------------------------------------------------------
# Beside the published runs


def published_figure(table: tuple[list[str], list[list[Any]]]) -> Any:
    """The figure of :func:`published_bars`."""
    plt = _pyplot()
    header, rows = table
    col = {h: i for i, h in enumerate(header)}
    rows = [r for r in rows if r[col["split"]] == "test"]
    games = sorted({r[col["game"]] for r in rows})
    agents = list(dict.fromkeys(r[col["agent"]] for r in rows))
    agent_color = dict(zip(agents, _colors(len(agents))))
    # the same rows, in the same order, in every panel: ours first, then the published agents
    pub_keys = list(dict.fromkeys((r[col["published_agent"]], r[col["published_steps"]]) for r in rows))
    pub_keys.sort(key=lambda k: (k[0] != "PPO (train-procgen)", k[1] if k[0] == "PPO (train-procgen)" else 0))
    keys: list[tuple[str, Any]] = [("ours", a) for a in agents] + [("published", k) for k in pub_keys]
    names = [f"{k} (ours)" if kind == "ours" else f"{k[0]} @{_steps_text(k[1])}" for kind, k in keys]
    ncols = min(4, len(games))
    nrows = -(-len(games) // ncols)
    panel_h = 0.24 * len(keys) + 0.7
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.9 * ncols + 1.8, panel_h * nrows + 1.0), squeeze=False, sharey=True
    )
    for ax in axes.flat[len(games) :]:
        ax.axis("off")
    for ax, game in zip(axes.flat, games):
        sel = [r for r in rows if r[col["game"]] == game]
        bars: list[tuple[int, float, Any, int | None]] = []  # (row, value, colour, our runs)
        for y, (kind, k) in enumerate(keys):
            if kind == "ours":
                mine = [r for r in sel if r[col["agent"]] == k]
                if mine:
                    bars.append((y, mine[0][col["ours"]], agent_color[k], mine[0][col["runs"]]))
            else:
                pub = [r for r in sel if (r[col["published_agent"]], r[col["published_steps"]]) == k]
                if pub:
                    grey = "0.75" if k[0] == "PPO (train-procgen)" else "0.55"
                    bars.append((y, pub[0][col["published"]], grey, None))
        ys, values, colors, runs = (list(t) for t in zip(*bars))
        ax.barh(ys, values, height=0.75, color=colors)
        lo, hi = min(0.0, *values), max(0.0, *values)
        span = max(hi - lo, 1e-6)
        ax.set_xlim(lo - 0.03 * span, hi + 0.32 * span)  # the zero line in view; room for the labels
        for y, v, n in zip(ys, values, runs):
            if n is not None:  # ours: the value (a bar near 0 is hard to see) and the number of runs
                ax.text(max(v, 0.0) + 0.02 * span, y, f"{v:.3g}, n={n}", va="center", fontsize=6.5)
        ax.set_title(game, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.tick_params(axis="y", labelsize=8)
        ax.axvline(0, color="black", lw=0.6)
    axes[0][0].set_yticks(range(len(keys)))
    axes[0][0].set_yticklabels(names)
    axes[0][0].set_ylim(len(keys) - 0.4, -0.6)
    steps = sorted({r[col["steps"]] for r in rows})
    fig.suptitle(
        "Test return per game (easy, 200 training levels)\n"
        f"ours (colours: mean, n = runs; {', '.join(_steps_text(s) for s in steps)} steps) beside the "
        "published agents (grey; @ training steps)",
        fontsize=10,
    )
    fig.supxlabel("mean test return", fontsize=9)
    fig.tight_layout()
    return fig


def published_bars(table: tuple[list[str], list[list[Any]]], path: str | os.PathLike[str]) -> Path:
    """One panel per game: our agents' test return (colours) beside the published agents' (grey).

    Every panel holds the same rows in the same order, named once on the left; each game keeps its
    own return scale.

    Args:
        table: The ``published_comparison`` table of the report (header, rows).
        path: The PNG to write.
    """
    return _save(published_figure(table), path)


# ----------------------------------------------------------------------------------------------------
# Performance profiles


def performance_profiles_figure(
    profiles: Mapping[str, tuple[np.ndarray, np.ndarray | None]], taus: np.ndarray, title: str | None = None
) -> Any:
    """The figure of :func:`performance_profiles`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = agent_styles(list(profiles))
    n = max(len(profiles), 1)
    every = max(1, len(taus) // 10)
    for k, (agent, (profile, cis)) in enumerate(profiles.items()):
        st = styles[agent]
        ax.plot(
            taus,
            profile,
            color=st["color"],
            linestyle=st["linestyle"],
            marker=st["marker"],
            ms=5,
            lw=1.8,
            markevery=(k * every // n, every),  # staggered, so coinciding lines still show each marker
            label=agent,
            zorder=3 + k,
        )
        if cis is not None:
            ax.fill_between(taus, cis[0], cis[1], color=st["color"], alpha=0.15, lw=0)
    ax.set_xlabel("min-max normalised score τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.04, 1.04)
    if len(taus):
        ax.set_xlim(*_padded(float(np.min(taus)), float(np.max(taus)), 0.03))
    ax.set_title(title or "Performance profile (band: 95% CI)", fontsize=10)
    ax.grid(alpha=0.3)
    if profiles:
        ax.legend(fontsize=8, loc="best")
    return fig


def performance_profiles(
    profiles: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    taus: np.ndarray,
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Run-score distributions: the fraction of runs scoring above tau, with CI bands (Agarwal et al., 2021).

    Args:
        profiles: ``{agent: (profile, cis or None)}`` from :func:`heldout.analysis.stats.performance_profile`.
        taus: The thresholds the profiles were evaluated at.
        path: The PNG to write.
        title: The axes title (default: "Performance profile").
    """
    return _save(performance_profiles_figure(profiles, taus, title), path)


# ----------------------------------------------------------------------------------------------------
# Contextual experiments (the CARL figures)

_SPLIT_COLORS = {"train": "tab:blue", "test": "tab:orange", "validation": "tab:green"}


def context_figure(results: Any, confidence: float = 0.95) -> Any:
    """The figure of :func:`context_plot`."""
    plt = _pyplot()
    features = results.features
    ncols = len(features)
    fig, axes = plt.subplots(
        2,
        ncols,
        figsize=(5.2 * ncols + 0.6, 6.4),
        squeeze=False,
        gridspec_kw={"height_ratios": [2.2, 1.0]},
        sharex="col",
    )
    pct = f"{100 * confidence:g}%"
    for j, f in enumerate(features):
        ax, gap_ax = axes[0][j], axes[1][j]
        for k, (lo, hi) in enumerate(results.train_support.get(f, ())):
            for a in (ax, gap_ax):
                if hi > lo:
                    a.axvspan(
                        lo,
                        hi,
                        color="tab:blue",
                        alpha=0.12,
                        lw=0,
                        label="training range" if k == 0 and a is ax else None,
                    )
                else:
                    a.axvline(
                        lo,
                        color="tab:blue",
                        alpha=0.4,
                        lw=2,
                        label="training value" if k == 0 and a is ax else None,
                    )
        xs_all: list[float] = []
        for split, per_feature in results.bins.items():
            bins = per_feature.get(f)
            if not bins:
                continue
            color = _SPLIT_COLORS.get(split, "tab:gray")
            x = np.array([b.x if b.x is not None else np.nan for b in bins], dtype=float)
            m = np.array([b.mean.value if b.mean else np.nan for b in bins], dtype=float)
            lo = np.array([b.mean.ci[0] if b.mean and b.mean.ci else np.nan for b in bins], dtype=float)
            hi = np.array([b.mean.ci[1] if b.mean and b.mean.ci else np.nan for b in bins], dtype=float)
            xs_all += [b.lo for b in bins] + [b.hi for b in bins]
            ax.plot(x, m, "-o" if split == "train" else "--s", color=color, ms=5, label=f"{split} (bin mean)")
            if np.any(~np.isnan(lo)):
                ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
                ax.errorbar(x, m, yerr=[m - lo, hi - m], fmt="none", ecolor=color, capsize=3, lw=1)
            if split != "train":
                centres = np.array([(b.lo + b.hi) / 2 for b in bins])
                widths = np.array([0.8 * (b.hi - b.lo) for b in bins])
                g = np.array([b.gap.value if b.gap else np.nan for b in bins], dtype=float)
                glo = np.array([b.gap.ci[0] if b.gap and b.gap.ci else np.nan for b in bins], dtype=float)
                ghi = np.array([b.gap.ci[1] if b.gap and b.gap.ci else np.nan for b in bins], dtype=float)
                gap_ax.bar(centres, g, width=widths, color=color, alpha=0.7, label=f"{split} bins")
                if np.any(~np.isnan(glo)):
                    gap_ax.errorbar(
                        centres, g, yerr=[g - glo, ghi - g], fmt="none", ecolor="black", capsize=3, lw=1
                    )
        gap_ax.axhline(0, color="black", lw=0.7)
        if xs_all:
            span = [v for iv in results.train_support.get(f, ()) for v in iv] + xs_all
            ax.set_xlim(*_padded(float(min(span)), float(max(span)), 0.04, 1e-9))
        ax.set_ylabel("mean episode return")
        ax.set_title(f"return by {f}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        gap_ax.set_ylabel("gap: train mean\n− test bin", fontsize=9)
        gap_ax.set_xlabel(f"context feature {f}")
        gap_ax.grid(alpha=0.3)
    fig.suptitle(
        f"{results.env} / {results.label}\n{results.mode} split, {results.runs} run(s): mean over runs "
        f"per bin ({pct} CI over runs; shaded: training range)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def context_plot(results: Any, path: str | os.PathLike[str], confidence: float = 0.95) -> Path:
    """Return against each varied context feature, train and test, with the training range shaded.

    Top row: one panel per feature; each split's bins (``summary.json``'s ``context_bins``) as the
    mean over runs of each run's bin mean, drawn at the mean context of the bin's episodes, with its
    CI over runs (band and bars); the training distribution's intervals shaded, so an interpolation
    hole and an extrapolation tail show at a glance. Bottom row: the generalization gap per test bin
    (a run's mean training return minus its return in the bin, mean over runs and CI). After
    Benjamins et al. 2023 ("Contextualize Me", TMLR).

    Args:
        results: A :class:`heldout.analysis.contexts.ContextResults`.
        path: The PNG to write.
        confidence: The CIs' coverage (for the title).
    """
    return _save(context_figure(results, confidence), path)


def context_grid_figure(results: Any) -> Any:
    """The figure of :func:`context_grid_plot`."""
    from matplotlib.patches import Rectangle

    plt = _pyplot()
    grid = results.grid
    fx, fy = grid["features"]
    xe, ye, mean = grid["x_edges"], grid["y_edges"], np.ma.masked_invalid(grid["mean"])
    fig, ax = plt.subplots(figsize=(6.6, 5.0))
    mesh = ax.pcolormesh(xe, ye, mean, cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="mean episode return (mean over runs)")
    finite = grid["mean"][np.isfinite(grid["mean"])]
    mid = float(np.mean([finite.min(), finite.max()])) if finite.size else 0.0
    for i in range(len(ye) - 1):
        for j in range(len(xe) - 1):
            v = grid["mean"][i, j]
            if np.isfinite(v):
                ax.text((xe[j] + xe[j + 1]) / 2, (ye[i] + ye[i + 1]) / 2, f"{v:.0f}", ha="center",
                        va="center", fontsize=7, color="white" if v < mid else "black")  # fmt: skip
    for k, ((x0, x1), (y0, y1)) in enumerate(grid["train_boxes"]):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="tab:blue", lw=2.2,
                               label="training box" if k == 0 else None))  # fmt: skip
    for k, ((x0, x1), (y0, y1)) in enumerate(grid["test_boxes"]):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="tab:red", lw=2.2, ls="--",
                               label="test box" if k == 0 else None))  # fmt: skip
    ax.set_xlabel(f"context feature {fx}")
    ax.set_ylabel(f"context feature {fy}")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2, frameon=False)
    ax.set_title(
        f"{results.env} / {results.label}\n{results.mode} split, {results.runs} run(s): mean return per "
        "cell, train and test episodes (blank: no episode)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def context_grid_plot(results: Any, path: str | os.PathLike[str]) -> Path:
    """A heatmap of mean return over two varied context features (train and test episodes together,
    their contexts being disjoint), with each training component's box outlined (solid) and each test
    box (dashed): the combinatorial split's figure.

    Args:
        results: A :class:`heldout.analysis.contexts.ContextResults` whose ``grid`` is set.
        path: The PNG to write.
    """
    return _save(context_grid_figure(results), path)


# ----------------------------------------------------------------------------------------------------
# Generalization against training-set size (heldout bench levels)


def levels_curve_figure(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> Any:
    """The figure of :func:`levels_curve`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sizes = np.array([r["num_levels"] for r in rows], dtype=float)
    for (split, marker, fill), color in zip(
        (("train", "o", True), ("test", "s", False)), _colors(2), strict=True
    ):
        mean = np.array([r[split]["value"] for r in rows], dtype=float)
        ax.plot(
            sizes,
            mean,
            marker=marker,
            color=color,
            mfc=color if fill else "white",
            linestyle="-" if split == "train" else "--",
            label=f"{split} (mean over seeds)",
            zorder=3,
        )
        with_ci = [i for i, r in enumerate(rows) if r[split]["ci"] is not None]
        if with_ci:
            lo = np.array([rows[i][split]["ci"][0] for i in with_ci], dtype=float)
            hi = np.array([rows[i][split]["ci"][1] for i in with_ci], dtype=float)
            ax.fill_between(sizes[with_ci], lo, hi, color=color, alpha=0.15, lw=0, label=f"{split} 95% CI")
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{int(s):,}" for s in sizes])
    ax.minorticks_off()
    if len(sizes):
        lo_x, hi_x = float(sizes.min()), float(sizes.max())
        ax.set_xlim(lo_x / 1.4, hi_x * 1.4)
    ax.set_xlabel("training levels (log scale)")
    ax.set_ylabel("mean episode return")
    ax.set_title(title or "Generalization vs training-set size", fontsize=10)
    ax.margins(y=0.08)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def levels_curve(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Train and test return against the number of training levels, log x axis (Cobbe et al. 2020, fig. 2).

    Args:
        rows: One per training-set size, ascending: ``{"num_levels": N, "train": {"value": mean,
            "ci": [lo, hi] or None}, "test": {...}}`` (:func:`heldout.bench.levels.summarize_runs`).
        path: The PNG to write.
        title: The axes title.
    """
    return _save(levels_curve_figure(rows, title), path)
