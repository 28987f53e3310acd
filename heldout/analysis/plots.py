"""PNG plots for reports: learning curves, per-level return histograms, aggregate intervals.

matplotlib is imported lazily with the Agg backend (no display needed). Interval plots follow the
style of Agarwal et al. (2021), "Deep RL at the Edge of the Statistical Precipice": one panel per
aggregate metric, a bar per agent spanning its confidence interval, a tick at the point estimate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heldout.analysis import stats as S

_METRIC_TITLES = {"mean": "Mean", "median": "Median", "iqm": "IQM", "optimality_gap": "Optimality gap"}


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


def learning_curves(
    env: str,
    runs_by_agent: Mapping[str, Sequence[Any]],
    path: str | os.PathLike[str],
    title: str | None = None,
    show_runs: bool = True,
) -> Path:
    """Train (solid) and test (dashed) mean return over training steps, one colour per agent (with
    one agent: blue train, orange test).

    Each line is the mean over runs at each logged step; the band spans the runs' min and max.

    Args:
        env: The game, for the default title.
        runs_by_agent: ``{agent label: [RunRecord]}`` whose ``curve`` holds periodic evaluations.
        path: The PNG to write.
        title: The plot's title (default: ``"<env>: train vs test levels"``).
        show_runs: Add the number of runs to each legend entry (``"ppo train (n=3)"``).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    one = len(runs_by_agent) == 1  # one agent: train and test in two colours, not one
    for agent_color, (label, runs) in zip(_colors(len(runs_by_agent)), runs_by_agent.items()):
        for split, style in (("train", "-"), ("test", "--")):
            color = _colors(2)[split == "test"] if one else agent_color
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
            mean = np.nanmean(table, axis=0)
            name = f"{label} {split}" + (f" (n={len(curves)})" if show_runs else "")
            ax.plot(steps, mean, style, color=color, marker="o", ms=3, label=name)
            if len(curves) > 1:
                ax.fill_between(
                    steps, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=color, alpha=0.15
                )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episode return")
    ax.set_title(title or f"{env}: train vs test levels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


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


def level_histograms(
    env: str, runs_by_agent: Mapping[str, Sequence[Any]], path: str | os.PathLike[str]
) -> Path:
    """Histograms of per-level mean returns (final evaluation, averaged over runs), train vs test, per agent."""
    plt = _pyplot()
    n = len(runs_by_agent)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (label, runs) in zip(axes[0], runs_by_agent.items()):
        data = {s: per_level_means(runs, s) for s in ("train", "test")}
        values = np.concatenate(list(data.values()))
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 21)
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            if data[split].size:
                ax.hist(
                    data[split],
                    bins=bins,
                    alpha=0.55,
                    color=color,
                    label=f"{split} ({data[split].size} levels)",
                )
        ax.set_title(f"{env} / {label} ({len(runs)} runs)", fontsize=9)
        ax.set_xlabel("mean return on a level")
        ax.set_ylabel("levels")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def interval_plot(estimates: Mapping[str, Mapping[str, S.Estimate]], path: str | os.PathLike[str]) -> Path:
    """Aggregate metrics with CIs, one panel per metric and a row per agent (Agarwal et al., 2021, Fig. 1)."""
    plt = _pyplot()
    agents = list(estimates)
    metrics = [m for m in S.METRICS if all(m in e for e in estimates.values())]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics), 0.5 * len(agents) + 1.4), squeeze=False
    )
    colors = _colors(len(agents))
    for ax, m in zip(axes[0], metrics):
        for y, (agent, color) in enumerate(zip(agents, colors)):
            e = estimates[agent][m]
            if e.ci is not None:
                ax.barh(y, e.ci[1] - e.ci[0], left=e.ci[0], height=0.6, color=color, alpha=0.75)
            ax.vlines(e.value, y - 0.3, y + 0.3, color="black", lw=1.5)
        ax.set_yticks(range(len(agents)))
        ax.set_yticklabels(agents if ax is axes[0][0] else [""] * len(agents))
        ax.set_title(_METRIC_TITLES.get(m, m))
        ax.grid(axis="x", alpha=0.3)
        ax.invert_yaxis()
    fig.supxlabel("min-max normalised score (bars: 95% CI; tick: point estimate; no bar: no CI)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def published_bars(table: tuple[list[str], list[list[Any]]], path: str | os.PathLike[str]) -> Path:
    """One panel per game: our agents' test return (colours) beside the published agents' (grey).

    Args:
        table: The ``published_comparison`` table of the report (header, rows).
        path: The PNG to write.
    """
    plt = _pyplot()
    header, rows = table
    col = {h: i for i, h in enumerate(header)}
    rows = [r for r in rows if r[col["split"]] == "test"]
    games = sorted({r[col["game"]] for r in rows})
    agents = list(dict.fromkeys(r[col["agent"]] for r in rows))
    agent_color = dict(zip(agents, _colors(len(agents))))
    ncols = min(4, len(games))
    nrows = -(-len(games) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 0.9 + 0.32 * 8 * nrows), squeeze=False)
    for ax in axes.flat[len(games) :]:
        ax.axis("off")
    for ax, game in zip(axes.flat, games):
        sel = [r for r in rows if r[col["game"]] == game]
        names, values, colors = [], [], []
        for agent in agents:
            mine = [r for r in sel if r[col["agent"]] == agent]
            if mine:
                names.append(f"ours: {agent} ({mine[0][col['runs']]} runs, {mine[0][col['steps']]:,} steps)")
                values.append(mine[0][col["ours"]])
                colors.append(agent_color[agent])
        published = dict.fromkeys(
            (r[col["published_agent"]], r[col["published_steps"]], r[col["published"]]) for r in sel
        )
        for name, steps, value in published:
            names.append(f"{name} @{steps / 1e6:g}M")
            values.append(value)
            colors.append("0.6")
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{game}: test return", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def performance_profiles(
    profiles: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    taus: np.ndarray,
    path: str | os.PathLike[str],
) -> Path:
    """Run-score distributions: the fraction of runs scoring above tau, with CI bands (Agarwal et al., 2021).

    Args:
        profiles: ``{agent: (profile, cis or None)}`` from :func:`heldout.analysis.stats.performance_profile`.
        taus: The thresholds the profiles were evaluated at.
        path: The PNG to write.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for color, (agent, (profile, cis)) in zip(_colors(len(profiles)), profiles.items()):
        ax.plot(taus, profile, color=color, label=agent)
        if cis is not None:
            ax.fill_between(taus, cis[0], cis[1], color=color, alpha=0.2)
    ax.set_xlabel("min-max normalised score τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
