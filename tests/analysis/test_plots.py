"""The report's plots, checked on their matplotlib figures: labels, legends that match the lines drawn,
data inside the axes (not on their edges), agents that stay visible where their lines coincide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from fake_runs import make_run, make_runs  # noqa: E402

from heldout.analysis import plots as P  # noqa: E402
from heldout.analysis import stats as S  # noqa: E402
from heldout.analysis.report import group_runs, load_run_record, write_report  # noqa: E402

AGENTS = ["ppo", "drac", "ucb-drac"]


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    P._pyplot().close("all")


def _strictly_inside(values: np.ndarray, limits: tuple[float, float]) -> bool:
    lo, hi = sorted(limits)
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return bool(np.all((values > lo) & (values < hi)))


def lines_inside(ax: Any) -> None:
    """Every point of every line of ``ax`` lies strictly inside its x and y limits."""
    for line in ax.get_lines():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        assert _strictly_inside(x, ax.get_xlim()), (line.get_label(), x.min(), x.max(), ax.get_xlim())
        if line.get_transform() != ax.get_xaxis_transform():  # an axvline spans the height: no y data
            assert _strictly_inside(y, ax.get_ylim()), (line.get_label(), y.min(), y.max(), ax.get_ylim())


def bars(ax: Any) -> list[Any]:
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle)]


def legend_labels(ax: Any) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def visible_colour_pixels(fig: Any, ax: Any, color: Any, tol: float = 0.06) -> int:
    """Pixels inside ``ax`` (legend removed) within ``tol`` of ``color`` in every RGB channel."""
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    box = ax.get_window_extent()
    h = image.shape[0]
    crop = image[int(h - box.y1) + 2 : int(h - box.y0) - 2, int(box.x0) + 2 : int(box.x1) - 2]
    return int(np.sum(np.all(np.abs(crop - np.asarray(color)[:3]) < tol, axis=-1)))


# ----------------------------------------------------------------------------------------------------
# Performance profiles


def test_profiles_that_coincide_still_show_every_agent() -> None:
    """Three agents with the same scores: three lines, each still visible (the one-line-for-three bug)."""
    taus = np.linspace(0.0, 1.0, 101)
    scores = np.array([[0.0, 0.2], [0.1, 0.4]])
    profiles = {a: S.performance_profile(scores, taus, reps=50) for a in AGENTS}
    fig = P.performance_profiles_figure(profiles, taus)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == AGENTS == legend_labels(ax)
    styles = {(str(line.get_linestyle()), line.get_marker()) for line in lines}
    assert len(styles) == len(AGENTS), "coinciding lines need distinct dashes or markers"
    lines_inside(ax)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    for line in lines:
        assert visible_colour_pixels(fig, ax, line.get_color()) > 20, f"{line.get_label()} is hidden"


def test_profiles_below_the_published_minimum_fall_inside_the_plot(tmp_path: Path) -> None:
    """Barely trained runs score < 0 normalised: the report's taus start below them (not all 0 at the edge)."""
    make_runs(tmp_path / "runs", AGENTS, ["coinrun", "starpilot"], 2, skills=dict.fromkeys(AGENTS, -0.5))
    figs = capture_report_figures(tmp_path / "runs", tmp_path / "r")
    ax = figs["profile_test.png"].axes[0]
    lines_inside(ax)
    for line in ax.get_lines():  # each falls from 1 to 0 within the thresholds drawn
        y = np.asarray(line.get_ydata())
        assert y[0] == 1.0 and y[-1] == 0.0, line.get_label()


# ----------------------------------------------------------------------------------------------------
# Aggregate intervals


@pytest.mark.parametrize("with_ci", [True, False])
def test_interval_plot_keeps_every_estimate_off_the_axis_edges(with_ci: bool) -> None:
    rng = np.random.default_rng(0)
    estimates = {}
    for k, a in enumerate(AGENTS):
        estimates[a] = {}
        for m in S.METRICS:
            v = 0.3 + 0.1 * k + rng.normal(0, 0.01)
            estimates[a][m] = S.Estimate(v, (v - 0.02, v + 0.03) if with_ci else None)
    fig = P.interval_figure(estimates)
    assert len(fig.axes) == len(S.METRICS)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == AGENTS  # shared by every panel
    for ax, m in zip(fig.axes, S.METRICS):
        assert ax.get_title(), m
        assert ax.get_shared_y_axes().joined(ax, fig.axes[0]) and list(ax.get_yticks()) == [0, 1, 2]
        xs = [estimates[a][m].value for a in AGENTS]
        if with_ci:
            assert len(bars(ax)) == len(AGENTS)
            for b in bars(ax):
                xs += [b.get_x(), b.get_x() + b.get_width()]
                assert _strictly_inside([b.get_y(), b.get_y() + b.get_height()], ax.get_ylim())
        else:  # a marker per agent instead of a bar
            assert len(ax.get_lines()) == len(AGENTS)
        assert _strictly_inside(xs, ax.get_xlim()), (m, min(xs), max(xs), ax.get_xlim())
        lines_inside(ax)
    assert "normalised" in fig.get_supxlabel()


# ----------------------------------------------------------------------------------------------------
# Beside the published runs


def test_published_comparison_is_legible_with_sixteen_games(tmp_path: Path) -> None:
    make_runs(tmp_path / "runs", AGENTS, seeds=1, levels=4, curve_points=2)
    table = write_report([tmp_path / "runs"], tmp_path / "r", reps=20, plots=False).tables[
        "published_comparison"
    ]
    fig = P.published_figure(table)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert sorted(ax.get_title() for ax in panels) == sorted(S.SCORE_RANGES["easy"])
    width, height = fig.get_size_inches()
    assert (
        width <= 16 and height <= 16 and height / len(panels) ** 0.5 >= 2.0
    )  # each panel of a readable size
    names = [t.get_text() for t in panels[0].get_yticklabels()]
    assert [f"{a} (ours)" for a in sorted(AGENTS)] == names[: len(AGENTS)]
    assert "PPO @25M" in names and "IDAAC @25M" in names and len(names) == len(set(names))
    for ax in panels:
        assert ax.get_shared_y_axes().joined(ax, panels[0])  # the same rows in every panel ...
        if ax.get_subplotspec().is_first_col():  # ... named on the left of each row of panels
            assert [t.get_text() for t in ax.get_yticklabels()] == names
            assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 7
        assert len(bars(ax)) == len(names)
        ends = [b.get_x() for b in bars(ax)] + [b.get_x() + b.get_width() for b in bars(ax)]
        assert _strictly_inside(ends, ax.get_xlim()), ax.get_title()
        assert _strictly_inside([b.get_y() for b in bars(ax)], ax.get_ylim())
        for text in ax.texts:  # the "value, n=runs" labels of our bars stay inside the panel
            assert _strictly_inside([text.get_position()[0]], ax.get_xlim()), ax.get_title()
        assert ax.get_legend() is None  # nothing laid over the bars
    assert "published" in fig.get_suptitle()


# ----------------------------------------------------------------------------------------------------
# Learning curves and per-level histograms


def _runs_by_agent(root: Path, env: str) -> dict[str, list[Any]]:
    runs = [load_run_record(p.parent) for p in sorted(root.rglob("summary.json"))]
    return {label: envs[env] for label, envs in group_runs(runs).items() if env in envs}


def test_learning_curves_label_every_line_once(tmp_path: Path) -> None:
    make_runs(tmp_path, AGENTS, ["coinrun"], 2, levels=5)
    by_agent = _runs_by_agent(tmp_path, "coinrun")
    fig = P.learning_curves_figure("coinrun", by_agent)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2 * len(AGENTS)  # train and test per agent
    assert legend_labels(ax) == [line.get_label() for line in lines] and len(set(legend_labels(ax))) == len(
        lines
    )
    assert {(line.get_color(), line.get_marker()) for line in lines[::2]} == {
        (line.get_color(), line.get_marker()) for line in lines[1::2]
    }  # an agent's train and test lines share colour and marker ...
    assert len({line.get_marker() for line in lines}) == len(AGENTS)  # ... which differ between agents
    assert {line.get_linestyle() for line in lines} == {"-", "--"}
    assert "coinrun" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    lines_inside(ax)
    for line in lines:
        assert visible_colour_pixels(fig, ax, line.get_color()) > 20


def test_level_histograms_are_labelled_and_inside(tmp_path: Path) -> None:
    make_runs(tmp_path, AGENTS, ["bigfish"], 1, levels=30)
    by_agent = _runs_by_agent(tmp_path, "bigfish")
    fig = P.level_histograms_figure("bigfish", by_agent)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == len(AGENTS)
    for ax, agent in zip(panels, by_agent):
        assert agent in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        labels = legend_labels(ax)
        assert len(labels) == 2 and labels[0].startswith("train") and labels[1].startswith("test")
        heights = [b.get_height() for b in bars(ax)]
        assert sum(heights) == 2 * 30  # every level of both splits is counted once
        lefts = [b.get_x() for b in bars(ax)] + [b.get_x() + b.get_width() for b in bars(ax)]
        assert _strictly_inside(lefts, ax.get_xlim())
        assert max(heights) < ax.get_ylim()[1]
        lines_inside(ax)  # the dashed split means
    assert "bigfish" in fig.get_suptitle()


# ----------------------------------------------------------------------------------------------------
# Every figure the report writes


def capture_report_figures(runs: Path, out: Path, **kwargs: Any) -> dict[str, Any]:
    """Runs :func:`write_report` and returns ``{png name: Figure}`` of every plot it saved."""
    figs: dict[str, Any] = {}
    save = P._save

    def recording_save(fig: Any, path: Any) -> Path:
        figs[Path(path).name] = fig
        return save(fig, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(P, "_save", recording_save)
    try:
        write_report([runs], out, reps=kwargs.pop("reps", 50), **kwargs)
    finally:
        mp.undo()
    return figs


def test_every_report_figure_is_labelled_with_its_data_inside(tmp_path: Path) -> None:
    root = make_runs(
        tmp_path / "runs", AGENTS, ["coinrun", "starpilot", "fruitbot"], 2, ragged=True, levels=6
    )
    make_run(root, "coinrun", "ppo", 7, 0.3, levels=6)
    figs = capture_report_figures(root, tmp_path / "r")
    expected = {"aggregate_test.png", "profile_test.png", "published_comparison.png"}
    expected |= {
        f"{kind}_{g}.png" for kind in ("curves", "levels") for g in ("coinrun", "starpilot", "fruitbot")
    }
    assert set(figs) == expected
    assert {p.name for p in (tmp_path / "r").glob("*.png")} == expected
    for name, fig in figs.items():
        has_xlabel = fig.get_supxlabel() or all(ax.get_xlabel() for ax in fig.axes if ax.axison)
        assert has_xlabel, name
        for ax in fig.axes:
            if not ax.axison:
                continue
            assert ax.get_title() or fig.get_suptitle(), name
            lines_inside(ax)
            if ax.get_legend() is not None:  # one entry per labelled artist drawn, none missing or extra
                assert legend_labels(ax) == ax.get_legend_handles_labels()[1], name
