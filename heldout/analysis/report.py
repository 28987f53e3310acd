"""Tables and reports from run folders.

- :func:`split_table` (from :mod:`heldout.protocol.tables`): the plain-text train/test table printed
  at the end of ``heldout train`` / ``eval``.
- :func:`write_report`: what ``heldout report RUN_DIR... --out DIR`` writes: run folders grouped by env
  and agent, per-game train/test returns with CIs over seeds and the generalization gap, aggregate
  normalised scores (mean, median, IQM, optimality gap) with stratified-bootstrap CIs, probability
  of improvement between agents, the published Procgen figures beside ours, PNG plots, CSV tables
  and the per-run scores in the published JSON layout.
- :func:`scores_file_report`: what ``heldout stats FILE.json`` prints for any file in that layout.

Statistics follow Agarwal et al. (2021), "Deep RL at the Edge of the Statistical Precipice" (see
``heldout.analysis.stats``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from heldout.analysis import stats as S
from heldout.protocol.tables import _fmt

#: The splits a report reads from ``eval/<split>.csv`` (tagged re-evaluations are left out).
REPORT_SPLITS = ("train", "test", "validation")

#: The published protocol our runs are compared against (BASELINES.md).
PUBLISHED_PROTOCOL = {"distribution_mode": "easy", "num_levels": 200, "start_level": 0}

#: The agents whose published test returns at 25M steps sit beside ours.
PUBLISHED_AGENTS = ("PPO", "UCB-DrAC", "PLR", "PPG", "IDAAC")

#: Fewer runs than this on a game and the report warns that its CIs are unreliable (Agarwal et al.,
#: 2021, recommend at least 5 runs per task; percentile-bootstrap CIs from fewer are too narrow).
FEW_RUNS = 5


# ----------------------------------------------------------------------------------------------------
# Reading run folders


@dataclass
class RunRecord:
    """What a report needs from one run folder.

    Attributes:
        path: The run folder.
        env, agent, seed: From ``config.yaml``.
        distribution_mode, num_levels, start_level: The training protocol.
        timesteps: Environment steps actually trained (``summary.json``; else the config's target).
        returns: Per split, the return of each final-evaluation episode (``eval/<split>.csv``).
        levels: Per split, the level of each of those episodes.
        curve: Periodic evaluations from ``progress.csv``: ``steps`` and, per split, the mean return
            (NaN where a row has none); empty if the run logged none.
    """

    path: Path
    env: str
    agent: str
    seed: int
    distribution_mode: str
    num_levels: int
    start_level: int
    timesteps: int
    returns: dict[str, np.ndarray]
    levels: dict[str, np.ndarray]
    curve: dict[str, np.ndarray] = field(default_factory=dict)

    def mean(self, split: str) -> float | None:
        """The mean final-evaluation return on ``split``, or None if the run has no such split."""
        r = self.returns.get(split)
        return None if r is None or len(r) == 0 else float(np.mean(r))

    @property
    def setting(self) -> tuple[str, int, int, int]:
        return (self.distribution_mode, self.num_levels, self.start_level, self.timesteps)

    @property
    def follows_published_protocol(self) -> bool:
        return all(getattr(self, k) == v for k, v in PUBLISHED_PROTOCOL.items())


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a finished heldout run (``config.yaml``, ``summary.json``, ``eval/``)."""
    p = Path(path)
    return (p / "config.yaml").is_file() and (p / "summary.json").is_file() and (p / "eval").is_dir()


def find_run_folders(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The run folders named by ``paths``: each a run folder or a folder of run folders (searched down).

    Raises:
        ValueError: A path does not exist, or is neither a run folder nor holds any (one line naming it
            and what a run folder contains).
    """
    if not paths:
        raise ValueError("no run folders given")
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            raise ValueError(f"run folder {str(raw)!r} does not exist")
        if is_run_folder(p):
            found.append(p)
            continue
        inner = sorted(q.parent for q in p.rglob("summary.json") if is_run_folder(q.parent))
        if not inner and (p / "config.yaml").is_file():
            missing = [n for n in ("summary.json", "eval") if not (p / n).exists()]
            raise ValueError(
                f"run folder {str(raw)!r} has no {' or '.join(missing)}: the run has not finished"
            )
        if not inner:
            raise ValueError(
                f"{str(raw)!r} is not a heldout run folder (expected config.yaml, summary.json and eval/ "
                "written by 'heldout train') and holds none"
            )
        found.extend(inner)
    unique = list(dict.fromkeys(q.resolve() for q in found))
    return unique


def _read_eval_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return (
            np.array([float(r["return"]) for r in rows], dtype=float),
            np.array([int(r["level"]) for r in rows], dtype=np.int64),
        )
    except (KeyError, ValueError, TypeError, csv.Error) as exc:
        raise ValueError(
            f"{str(path)!r} is not an evaluation CSV (episode,level,return,...): {exc}"
        ) from None


def _read_curve(path: Path, final_steps: int) -> dict[str, np.ndarray]:
    """Periodic evaluations from SB3's ``progress.csv``: ``steps`` and the train/test mean return.

    The protocol logs the final evaluation in a last row without ``time/total_timesteps``: it is placed
    at ``final_steps`` and, being over more episodes, replaces a periodic evaluation at the same step.
    """
    if not path.is_file():
        return {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not a CSV file ({exc})") from None
    columns = {s: f"eval/{s}/mean_return" for s in ("train", "test")}
    points: dict[float, dict[str, float]] = {}
    for line, r in enumerate(rows, 2):
        if not any(r.get(c) for c in columns.values()):
            continue
        try:
            step = float(r["time/total_timesteps"]) if r.get("time/total_timesteps") else float(final_steps)
            points[step] = {s: float(r[c]) if r.get(c) else np.nan for s, c in columns.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{str(path)!r}, line {line}: not a number ({exc})") from None
    if not points:
        return {}
    steps = sorted(points)
    return {"steps": np.array(steps), **{s: np.array([points[t][s] for t in steps]) for s in columns}}


def load_run_record(path: str | os.PathLike[str]) -> RunRecord:
    """Reads one run folder (see :func:`is_run_folder`).

    Raises:
        ValueError: ``path`` is not a finished run folder (names it and what is missing).
    """
    from heldout.protocol.run_folder import read_json, read_yaml

    p = Path(path)
    if not is_run_folder(p):
        raise ValueError(
            f"{str(path)!r} is not a heldout run folder (expected config.yaml, summary.json and eval/)"
        )
    config = read_yaml(p / "config.yaml", mapping=True)
    summary = read_json(p / "summary.json")
    try:
        timesteps = int(summary.get("timesteps") or config.get("timesteps", 0))
        seed = int(config.get("seed", summary.get("seed", 0)))
        num_levels = int(config.get("num_levels", 0))
        start_level = int(config.get("start_level", 0))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"run folder {str(path)!r}: its config.yaml or summary.json holds a malformed number ({exc})"
        ) from None
    returns, levels = {}, {}
    for split in REPORT_SPLITS:
        csv_path = p / "eval" / f"{split}.csv"
        if csv_path.is_file():
            returns[split], levels[split] = _read_eval_csv(csv_path)
    if "test" not in returns:
        raise ValueError(f"{str(path)!r} has no eval/test.csv: the run did not finish its evaluation")
    return RunRecord(
        path=p,
        env=str(config.get("env", summary.get("env"))),
        agent=str(config.get("agent", summary.get("agent"))),
        seed=seed,
        distribution_mode=str(config.get("distribution_mode", "easy")),
        num_levels=num_levels,
        start_level=start_level,
        timesteps=timesteps,
        returns=returns,
        levels=levels,
        curve=_read_curve(p / "progress.csv", timesteps),
    )


# ----------------------------------------------------------------------------------------------------
# Grouping


def steps_label(steps: int) -> str:
    """``25M``, ``4.1k``, ``12288``-style short step counts."""
    if steps >= 1_000_000:
        return f"{steps / 1e6:.3g}M"
    if steps >= 1000:
        return f"{steps / 1e3:.3g}k"
    return str(steps)


def agent_labels(runs: Sequence[RunRecord]) -> dict[Path, str]:
    """A label per run: its agent name, with its setting appended where one agent ran several settings."""
    settings: dict[str, set[tuple[str, int, int, int]]] = {}
    for r in runs:
        settings.setdefault(r.agent, set()).add(r.setting)
    labels = {}
    for r in runs:
        if len(settings[r.agent]) == 1:
            labels[r.path] = r.agent
        else:
            mode, n, start, steps = r.setting
            labels[r.path] = f"{r.agent} ({mode}, {n} levels from {start}, {steps_label(steps)} steps)"
    return labels


def group_runs(runs: Sequence[RunRecord]) -> dict[str, dict[str, list[RunRecord]]]:
    """``{agent label: {env: [runs sorted by seed]}}``."""
    labels = agent_labels(runs)
    groups: dict[str, dict[str, list[RunRecord]]] = {}
    for r in sorted(runs, key=lambda r: (labels[r.path], r.env, r.seed, str(r.path))):
        groups.setdefault(labels[r.path], {}).setdefault(r.env, []).append(r)
    return groups


def _by_game(
    groups: Mapping[str, Mapping[str, Sequence[RunRecord]]],
) -> list[tuple[str, str, Sequence[RunRecord]]]:
    """``(env, agent label, runs)`` sorted by game, then agent as given."""
    order = {label: i for i, label in enumerate(groups)}
    items = [(env, label, runs) for label, envs in groups.items() for env, runs in envs.items()]
    return sorted(items, key=lambda t: (t[0], order[t[1]]))


def per_run_scores(
    groups: Mapping[str, Mapping[str, Sequence[RunRecord]]], split: str
) -> dict[str, dict[str, list[float]]]:
    """Per-run mean returns in the published layout ``{agent: {game: [one score per run]}}``."""
    out: dict[str, dict[str, list[float]]] = {}
    for label, envs in groups.items():
        for env, runs in envs.items():
            values = [m for m in (r.mean(split) for r in runs) if m is not None]
            if values:
                out.setdefault(label, {})[env] = values
    return out


# ----------------------------------------------------------------------------------------------------
# Published figures (heldout/analysis/data/published_easy200.csv, from BASELINES.md)


def published_returns() -> list[dict[str, Any]]:
    """Published per-game mean returns for easy / 200 levels: rows of agent, steps, split, game, mean."""
    text = resources.files("heldout.analysis").joinpath("data/published_easy200.csv").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    rows = []
    for r in csv.DictReader(lines):
        rows.append(
            {
                "agent": r["agent"],
                "steps": int(r["steps"]),
                "split": r["split"],
                "game": r["game"],
                "mean": float(r["mean"]),
                "std": float(r["std"]) if r["std"] else None,
                "runs": int(r["runs"]),
                "source": r["source"],
            }
        )
    return rows


def closest_budget(steps: int, budgets: Sequence[int]) -> int:
    """The published budget closest to ``steps`` on a log scale."""
    return min(budgets, key=lambda b: abs(np.log(b) - np.log(max(steps, 1))))


def small_sample_warnings(groups: Mapping[str, Mapping[str, Sequence[RunRecord]]]) -> list[str]:
    """The report's cautions about run counts, each independent of the other, as markdown lines.

    - a game with fewer than :data:`heldout.analysis.stats.MIN_RUNS_FOR_CI` runs gets no CI;
    - a game with fewer than :data:`FEW_RUNS` runs gets CIs too narrow to trust (this one holds
      whenever the first does: a single run is fewer than 5 too).
    """
    counts = {(label, env): len(rs) for label, envs in groups.items() for env, rs in envs.items()}
    if not counts:
        return []
    out = []
    n_min = min(counts.values())
    if n_min < S.MIN_RUNS_FOR_CI:
        out.append(
            f"**Too few seeds for a confidence interval** where a game has fewer than {S.MIN_RUNS_FOR_CI} "
            'runs: those cells give the point estimate only ("n=1, no CI").'
        )
    cells = sum(1 for n in counts.values() if n < FEW_RUNS)
    if cells:
        out.append(
            f"**Fewer than {FEW_RUNS} runs** on {cells} of {len(counts)} (agent, game) cell(s) (as few as "
            f"{n_min}): percentile-bootstrap CIs from so few runs tend to be too narrow; read them as a "
            f"lower bound on the uncertainty and train at least {FEW_RUNS} seeds per game before comparing "
            "agents."
        )
    return out


# ----------------------------------------------------------------------------------------------------
# Tables


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    return buf.getvalue()


def _est_text(est: S.Estimate | None, digits: int = 2, n: int | None = None) -> str:
    if est is None:
        return "-"
    if est.ci is None:
        note = f"n={n}, no CI" if n is not None else "no CI"
        return f"{est.value:.{digits}f} ({note})"
    return f"{est.value:.{digits}f} [{est.ci[0]:.{digits}f}, {est.ci[1]:.{digits}f}]"


def _ci_cols(est: S.Estimate | None) -> list[float | None]:
    if est is None:
        return [None, None, None]
    return [est.value, *(est.ci if est.ci is not None else (None, None))]


@dataclass
class Report:
    """Everything :func:`write_report` computed: tables (header, rows), the files it wrote, warnings.

    ``warnings`` holds the report's cautions (too few runs for a CI, or for a reliable one), one line
    each, as ``report.md`` states them; ``heldout report`` prints them too.
    """

    markdown: str
    tables: dict[str, tuple[list[str], list[list[Any]]]]
    files: list[Path]
    warnings: list[str] = field(default_factory=list)


def _per_game(
    groups: Mapping[str, Mapping[str, Sequence[RunRecord]]], reps: int, seed: int, confidence: float
) -> tuple[list[str], list[list[Any]], list[list[str]]]:
    header = [
        "game", "agent", "seeds", "steps", "distribution_mode", "num_levels",
        "train_mean", "train_ci_low", "train_ci_high", "test_mean", "test_ci_low", "test_ci_high",
        "gap_mean", "gap_ci_low", "gap_ci_high", "train_normalized", "test_normalized",
    ]  # fmt: skip
    rows, md = [], []
    for env, label, runs in _by_game(groups):
        n = len(runs)
        train = [r.mean("train") for r in runs]
        test = [r.mean("test") for r in runs]
        tr = S.mean_ci_over_seeds(train, reps, seed, confidence) if None not in train else None
        te = S.mean_ci_over_seeds(test, reps, seed, confidence)
        gap = (
            S.mean_ci_over_seeds([a - b for a, b in zip(train, test)], reps, seed, confidence) if tr else None
        )
        mode = runs[0].distribution_mode
        ntr = S.normalized_score(env, mode, tr.value) if tr else None
        nte = S.normalized_score(env, mode, te.value)
        steps = sorted({r.timesteps for r in runs})
        steps_text = ", ".join(steps_label(s) for s in steps)
        rows.append(
            [env, label, n, max(steps), mode, runs[0].num_levels, *_ci_cols(tr), *_ci_cols(te), *_ci_cols(gap), ntr, nte]
        )  # fmt: skip
        md.append(
            [env, label, str(n), steps_text, _est_text(tr, n=n), _est_text(te, n=n), _est_text(gap, n=n),
             _fmt(ntr, 3), _fmt(nte, 3)]
        )  # fmt: skip
    return header, rows, md


def _normalised_matrices(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    groups: Mapping[str, Mapping[str, Sequence[RunRecord]]],
) -> tuple[dict[str, np.ndarray], dict[str, list[str]], dict[str, list[str]]]:
    """Min-max normalised runs x games matrices per agent over the games with published constants."""
    matrices, games_used, games_left = {}, {}, {}
    for label, per_game in scores.items():
        mode = next(iter(groups[label].values()))[0].distribution_mode
        ok = sorted(g for g in per_game if S.score_range(g, mode) is not None)
        games_left[label] = sorted(set(per_game) - set(ok))
        if ok:
            norm = S.min_max_normalize({g: per_game[g] for g in ok}, mode)
            matrices[label] = S.score_matrix(norm, ok)
            games_used[label] = ok
    return matrices, games_used, games_left


def write_report(
    run_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    reference: str | None = None,
    plots: bool = True,
) -> Report:
    """Writes ``report.md``, CSV tables, ``scores_{train,test}.json`` and PNG plots into ``out``.

    Args:
        run_dirs: Run folders, or folders holding run folders.
        out: Output folder (created).
        reps: Bootstrap replications for every CI.
        seed: Seed of the bootstrap generators.
        confidence: CI coverage.
        reference: An agent label to normalise by ("% of <reference>"); None: none.
        plots: Write the PNG plots (needs matplotlib).

    Raises:
        ValueError: A path is not a run folder, ``reference`` is not among the agents, bad ``reps``.
    """
    from heldout.protocol.checks import check_int, check_seed
    from heldout.protocol.run_folder import check_writable, write_atomic, write_json

    check_int("--reps", reps, minimum=1)
    check_seed("--seed", seed)
    paths = find_run_folders(run_dirs)
    runs = [load_run_record(p) for p in paths]
    groups = group_runs(runs)
    if reference is not None and reference not in groups:
        import difflib

        close = difflib.get_close_matches(reference, list(groups), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"--reference {reference!r} is not an agent of these runs{hint}; agents: {', '.join(groups)}"
        )
    out_dir = check_writable(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    md: list[str] = []
    pct = f"{100 * confidence:g}%"

    n_envs = len({r.env for r in runs})
    md.append("# Generalization report\n")
    md.append(
        f"{len(runs)} run folder(s), {len(groups)} agent(s), {n_envs} game(s). Every run trained on its "
        "training levels and was evaluated zero-shot on held-out test levels (one episode per level of "
        "a fixed list). A run's score on a split is the mean return of its final-evaluation episodes; "
        f"intervals are {pct} percentile-bootstrap CIs over runs (seeds), {reps} resamples, seed {seed}; "
        'aggregates use the stratified bootstrap of Agarwal et al. (2021), "Deep RL at the Edge of the '
        'Statistical Precipice" (NeurIPS).\n'
    )
    settings = sorted({(r.agent, *r.setting) for r in runs})
    md.append(
        _md_table(
            ["agent", "distribution mode", "training levels", "steps trained", "runs"],
            [
                [
                    a,
                    m,
                    f"[{s}, {s + n})",
                    f"{t:,}",
                    sum(1 for r in runs if (r.agent, *r.setting) == (a, m, n, s, t)),
                ]
                for a, m, n, s, t in settings
            ],
        )
        + "\n"
    )
    warnings = small_sample_warnings(groups)
    md.extend(f"{w}\n" for w in warnings)

    # per game
    header, rows, md_rows = _per_game(groups, reps, seed, confidence)
    tables["per_game"] = (header, rows)
    md.append("## Per game: train and test return\n")
    md.append(
        "Mean over runs with its CI; gap = train − test return (positive: the agent does worse on unseen "
        "levels); normalised: min-max with the published Procgen constants (Cobbe et al., 2020).\n"
    )
    md.append(
        _md_table(
            [
                "game",
                "agent",
                "runs",
                "steps",
                "train return",
                "test return",
                "gap",
                "norm. train",
                "norm. test",
            ],
            md_rows,
        )
        + "\n"
    )

    # aggregates
    scores_test = per_run_scores(groups, "test")
    scores_train = per_run_scores(groups, "train")
    agg_header = ["agent", "split", "games", "runs_per_game", "metric", "value", "ci_low", "ci_high"]
    agg_rows: list[list[Any]] = []
    agg_est: dict[str, dict[str, dict[str, S.Estimate]]] = {}
    agg_matrices: dict[str, np.ndarray] = {}
    agg_games: dict[str, list[str]] = {}
    md.append("## Aggregate normalised scores\n")
    md_agg: list[list[str]] = []
    games_note: list[str] = []
    for split, scores in (("test", scores_test), ("train", scores_train)):
        matrices, used, left = _normalised_matrices(scores, groups)
        est = S.aggregate_estimates(matrices, S.METRICS, reps, seed, confidence) if matrices else {}
        agg_est[split] = est
        if split == "test":
            agg_matrices, agg_games = matrices, used
        for label, e in est.items():
            counts_ = S.runs_per_task(matrices[label])
            runs_text = (
                str(int(counts_.min()))
                if counts_.min() == counts_.max()
                else f"{counts_.min()}-{counts_.max()}"
            )
            for m in S.METRICS:
                agg_rows.append([label, split, len(used[label]), runs_text, m, *_ci_cols(e[m])])
            n_min = int(counts_.min())
            md_agg.append(
                [label, split, str(len(used[label])), runs_text]
                + [_est_text(e[m], 3, n=n_min if n_min < S.MIN_RUNS_FOR_CI else None) for m in S.METRICS]
            )
        if split == "test":
            for label, gl in left.items():
                if gl:
                    games_note.append(f"{label}: {', '.join(gl)} (no published normalisation constants)")
    tables["aggregate"] = (agg_header, agg_rows)
    if md_agg:
        md.append(
            "Over the games each agent ran, min-max normalised per game (1.0 = the published maximum); "
            "mean and median of per-game means, IQM (25% trimmed mean of all runs of all games) and "
            f"optimality gap (mean shortfall below 1.0; lower is better), each with its {pct} stratified-"
            "bootstrap CI. Compare agents on the same games only.\n"
        )
        md.append(
            _md_table(
                ["agent", "split", "games", "runs/game", "mean", "median", "IQM", "optimality gap"], md_agg
            )
            + "\n"
        )
    else:
        md.append("No game of these runs has published normalisation constants: no aggregate.\n")
    if games_note:
        md.append("Left out of the aggregates: " + "; ".join(games_note) + ".\n")

    if reference is not None:
        md.append(f"### Scores as a fraction of {reference}\n")
        ref_rows = []
        for label, per_game in scores_test.items():
            common = sorted(set(per_game) & set(scores_test[reference]))
            if not common:
                continue
            rel = S.reference_normalize({g: per_game[g] for g in common}, scores_test[reference])
            e = S.bootstrap_ci(S.score_matrix(rel, common), S.aggregate_mean, reps, seed, confidence)
            ref_rows.append(
                [
                    label,
                    str(len(common)),
                    _est_text(S.Estimate(100 * e.value, e.ci and (100 * e.ci[0], 100 * e.ci[1])), 0) + " %",
                ]
            )
            tables.setdefault("reference_normalized", (["agent", "games", "mean_fraction", "ci_low", "ci_high"], []))[1].append(
                [label, len(common), *_ci_cols(e)]
            )  # fmt: skip
        md.append(
            f"Test return divided by {reference}'s mean test return on the same game, averaged over games.\n"
        )
        md.append(_md_table(["agent", "games", f"% of {reference}"], ref_rows) + "\n")

    # probability of improvement
    labels = list(scores_test)
    poi_rows: list[list[Any]] = []
    md_poi: list[list[str]] = []
    for i, x in enumerate(labels):
        for y in labels[i + 1 :]:
            common = sorted(set(scores_test[x]) & set(scores_test[y]))
            if not common:
                continue
            mx, my = S.score_matrix(scores_test[x], common), S.score_matrix(scores_test[y], common)
            e = S.probability_of_improvement_ci(mx, my, reps, seed, confidence)
            n_min = int(min(S.runs_per_task(mx).min(), S.runs_per_task(my).min()))
            poi_rows.append([x, y, len(common), *_ci_cols(e)])
            md_poi.append([x, y, str(len(common)), _est_text(e, 2, n=n_min if e.ci is None else None)])
    tables["probability_of_improvement"] = (["x", "y", "games", "p_x_better", "ci_low", "ci_high"], poi_rows)
    if len(labels) < 2:
        md.append("## Probability of improvement\n")
        md.append("One agent only: no probability of improvement between agents.\n")
    elif not md_poi:
        md.append("## Probability of improvement\n")
        md.append("No two agents ran a game in common: no probability of improvement.\n")
    if md_poi:
        md.append("## Probability of improvement (test return)\n")
        md.append(
            "P(X > Y): the probability that a run of X beats a run of Y on the same game (ties count 1/2), "
            "averaged over the games both ran; 0.5 means no difference. CIs from independent stratified "
            "bootstraps of X and Y.\n"
        )
        md.append(_md_table(["X", "Y", "games", "P(X > Y)"], md_poi) + "\n")

    # published comparison
    pub_rows, pub_md, pub_notes = _published_comparison(groups)
    tables["published_comparison"] = pub_rows
    if pub_md:
        md.append("## Beside the published Procgen runs (easy, 200 levels)\n")
        md.append("\n".join(pub_notes) + "\n")
        md.append(pub_md + "\n")

    # exports
    written = []
    for split, scores in (("test", scores_test), ("train", scores_train)):
        if scores:  # no run evaluated on the split: no file (an empty one would hold no scores)
            files.append(write_json(out_dir / f"scores_{split}.json", scores))
            written.append(f"`scores_{split}.json`")
    modes = sorted({r.distribution_mode for r in runs})
    mode_flag = f" --mode {modes[0]}" if len(modes) == 1 and modes[0] != "easy" else ""
    md.append("## Files\n")
    md.append(
        f"- {', '.join(written)}: per-run mean returns in the published layout "
        f"`{{agent: {{game: [one score per run]}}}}`; `heldout stats scores_test.json{mode_flag}` gives the "
        "aggregate table for them (and works on the published runs alike).\n"
        "- CSV tables: " + ", ".join(f"`{n}.csv`" for n in tables) + ".\n"
    )

    # plots
    if plots:
        from heldout.analysis import plots as P

        figs: list[tuple[str, Path]] = []
        for env in sorted({r.env for r in runs}):
            by_agent = {label: envs[env] for label, envs in groups.items() if env in envs}
            if any(r.curve for rs in by_agent.values() for r in rs):
                figs.append(
                    (
                        f"Learning curves, {env}: train (solid) vs test (dashed) return, mean over runs (band: min to max)",
                        P.learning_curves(env, by_agent, out_dir / f"curves_{env}.png"),
                    )
                )
            figs.append(
                (
                    f"Per-level returns, {env}: train vs test levels",
                    P.level_histograms(env, by_agent, out_dir / f"levels_{env}.png"),
                )
            )
        if agg_est.get("test"):
            figs.append(
                (
                    f"Aggregate normalised test scores with {pct} CIs",
                    P.interval_plot(agg_est["test"], out_dir / "aggregate_test.png"),
                )
            )
        if agg_matrices:
            # from below the lowest score (barely trained runs score under the published minimum, < 0)
            # to above the highest, so every profile falls from 1 to 0 inside the plot
            low = min(0.0, min(float(np.nanmin(m)) for m in agg_matrices.values()))
            high = max(1.0, max(float(np.nanmax(m)) for m in agg_matrices.values()))
            taus = np.linspace(low - 0.02 * (high - low) if low < 0 else 0.0, high, 101)
            profiles = {
                a: S.performance_profile(m, taus, reps, seed, confidence) for a, m in agg_matrices.items()
            }
            n_games = len({g for gs in agg_games.values() for g in gs})
            title = f"Performance profile: normalised test scores, {n_games} game(s) (band: {pct} CI)"
            figs.append(("Performance profiles of normalised test scores", P.performance_profiles(profiles, taus, out_dir / "profile_test.png", title)))  # fmt: skip
        if pub_rows[1]:
            figs.append(
                (
                    "Test return beside the published runs",
                    P.published_bars(pub_rows, out_dir / "published_comparison.png"),
                )
            )
        md.append("## Plots\n")
        for title, path in figs:
            files.append(path)
            md.append(f"### {title}\n\n![{title}]({path.name})\n")  # fmt: skip

    md.append("## Run folders\n")
    md.append("\n".join(f"- `{r.path}` ({r.env}, {r.agent}, seed {r.seed})" for r in runs) + "\n")

    for name, (header_, rows_) in tables.items():
        files.append(write_atomic(out_dir / f"{name}.csv", _csv_text(header_, rows_)))
    text = "\n".join(md)
    files.insert(0, write_atomic(out_dir / "report.md", text))
    return Report(text, tables, files, warnings)


def _published_comparison(
    groups: Mapping[str, Mapping[str, Sequence[RunRecord]]],
) -> tuple[tuple[list[str], list[list[Any]]], str, list[str]]:
    """Our test (and train) returns beside the published per-game means, for runs on the easy-200 protocol."""
    header = [
        "game",
        "agent",
        "runs",
        "steps",
        "split",
        "ours",
        "published_agent",
        "published_steps",
        "published",
    ]
    rows: list[list[Any]] = []
    pub = published_returns()
    index = {(p["agent"], p["steps"], p["split"], p["game"]): p["mean"] for p in pub}
    curve_budgets = sorted({p["steps"] for p in pub if p["agent"] == "PPO (train-procgen)"})
    md_rows, notes, budgets = [], [], set()
    for env, label, runs in _by_game(groups):
        runs = [r for r in runs if r.follows_published_protocol]
        if not runs or ("PPO", 25_000_000, "test", env) not in index:
            continue
        steps = max(r.timesteps for r in runs)
        budgets.add(steps)
        matched = closest_budget(steps, curve_budgets)
        test = float(np.mean([r.mean("test") for r in runs]))
        train_vals = [r.mean("train") for r in runs]
        train = float(np.mean(train_vals)) if None not in train_vals else None
        for split, ours in (("test", test), ("train", train)):
            if ours is None:
                continue
            rows.append(
                [
                    env,
                    label,
                    len(runs),
                    steps,
                    split,
                    ours,
                    "PPO (train-procgen)",
                    matched,
                    index[("PPO (train-procgen)", matched, split, env)],
                ]
            )
            if split == "test":
                for a in PUBLISHED_AGENTS:
                    rows.append(
                        [
                            env,
                            label,
                            len(runs),
                            steps,
                            "test",
                            ours,
                            a,
                            25_000_000,
                            index[(a, 25_000_000, "test", env)],
                        ]
                    )
        ppo_m = index[("PPO (train-procgen)", matched, "test", env)]
        ppo_tr = index[("PPO (train-procgen)", matched, "train", env)]
        md_rows.append(
            [env, f"{label} ({len(runs)} runs)", steps_label(steps), _fmt(train), _fmt(test),
             f"{ppo_tr:.2f} / {ppo_m:.2f} @{steps_label(matched)}"]
            + [f"{index[(a, 25_000_000, 'test', env)]:.2f}" for a in PUBLISHED_AGENTS]
        )  # fmt: skip
    if not md_rows:
        return (header, rows), "", []
    short = [b for b in budgets if b < 25_000_000]
    if short:
        notes.append(
            f"**Not a reproduction:** our runs trained for {', '.join(f'{b:,}' for b in sorted(short))} "
            "environment steps; the published agents trained for 25,000,000. The PPO learning-curve column "
            "gives train-procgen's PPO at the published budget closest to ours (1M, 2M, 5M, 10M or 25M "
            "steps; Cobbe et al., 2020, mean of 3 runs)."
        )
    notes.append(
        "Published test returns at 25M steps: mean of 10 runs each (PPO, UCB-DrAC, PLR, PPG, IDAAC; the "
        "runs behind Agarwal et al., 2021). The references test on the full level distribution; ours on a "
        'held-out seed range with identical-looking levels removed (BASELINES.md, "Leakage").'
    )
    table = _md_table(
        ["game", "ours", "steps", "our train", "our test", "PPO train / test (curve)"]
        + [f"{a} test @25M" for a in PUBLISHED_AGENTS],
        md_rows,
    )
    return (header, rows), table, notes


# ----------------------------------------------------------------------------------------------------
# heldout stats FILE.json


def _with_constants(
    scores: Mapping[str, Mapping[str, Sequence[float]]], mode: str
) -> tuple[dict[str, dict[str, Sequence[float]]], list[str]]:
    """The games of ``scores`` that have ``mode`` normalisation constants, and notes on what was left out.

    Raises:
        ValueError: Unknown ``mode``, or no game of the file has constants (names the games and the
            games with constants).
    """
    from heldout.envs import SCORE_RANGES

    if mode not in SCORE_RANGES:
        raise ValueError(f"unknown --mode {mode!r}; valid modes: {', '.join(SCORE_RANGES)}")
    ranges = SCORE_RANGES[mode]
    unknown = sorted({g for per in scores.values() for g in per if g not in ranges})
    usable = {a: {g: v for g, v in per.items() if g in ranges} for a, per in scores.items()}
    usable = {a: per for a, per in usable.items() if per}
    if not usable:
        raise ValueError(
            f"no game of this file has {mode} normalisation constants ({', '.join(unknown)}); "
            f"games with constants: {', '.join(sorted(ranges))}"
        )
    notes = []
    if unknown:
        notes.append(f"left out, no {mode} normalisation constants: {', '.join(unknown)}")
    dropped = [a for a in scores if a not in usable]
    if dropped:
        notes.append(f"left out, no game with {mode} constants: agent(s) {', '.join(dropped)}")
    return usable, notes


def scores_file_stats(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    mode: str = "easy",
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[dict[str, dict[str, S.Estimate]], dict[tuple[str, str], S.Estimate], list[str], list[str]]:
    """Aggregates and pairwise probabilities of improvement for a file in the published layout.

    Uses the games every agent ran, min-max normalised with the ``mode`` constants, as the published
    comparisons do. What ``heldout report`` exports is accepted as it is: games without constants
    (non-Procgen envs) are left out, and agents with no game in common are each aggregated over their
    own games (as the report does) without a probability of improvement; ``notes`` says so.

    Returns:
        ``(aggregates {agent: {metric: Estimate}}, {(x, y): P(X > Y)}, common games, notes)``.

    Raises:
        ValueError: Unknown ``mode``, or no game of the file has normalisation constants.
    """
    from heldout.protocol.checks import check_int, check_seed

    check_int("--reps", reps, minimum=1)
    check_seed("--seed", seed)
    usable, notes = _with_constants(scores, mode)
    games = S.common_tasks(usable)
    if games:
        left = sorted({g for per in usable.values() for g in per} - set(games))
        if left:
            notes.append(f"left out, not run by every agent: {', '.join(left)}")
        games_of = {a: games for a in usable}
    else:
        notes.append(
            "the agents have no game in common: each agent's aggregate is over its own games (not "
            "comparable between agents), and there is no probability of improvement"
        )
        games_of = {a: sorted(per) for a, per in usable.items()}
    matrices = {
        a: S.score_matrix(S.min_max_normalize({g: usable[a][g] for g in gs}, mode), gs)
        for a, gs in games_of.items()
    }
    agg = S.aggregate_estimates(matrices, S.METRICS, reps, seed, confidence)
    agents = list(usable) if games else []
    poi = {
        (x, y): S.probability_of_improvement_ci(matrices[x], matrices[y], reps, seed, confidence)
        for i, x in enumerate(agents)
        for y in agents[i + 1 :]
    }
    return agg, poi, games, notes


def check_reference(scores: Mapping[str, Any], reference: str) -> str:
    """``reference`` checked to be an agent of a scores file; ValueError naming the file's agents."""
    if reference not in scores:
        import difflib

        close = difflib.get_close_matches(reference, list(scores), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"--reference {reference!r} is not an agent of the file{hint}; agents: {', '.join(scores)}"
        )
    return reference


def reference_normalized_means(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    reference: str,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    games: Sequence[str] | None = None,
) -> dict[str, S.Estimate]:
    """Each agent's mean over common games of return / the reference's mean return ("% of PPO").

    Args:
        games: The games to average over (e.g. those of the aggregates); default: the games every
            agent ran. Where there are none, each agent is compared on the games it shares with the
            reference; an agent sharing none has no entry.
    """
    check_reference(scores, reference)
    common = list(games) if games else S.common_tasks(scores)
    out = {}
    for agent, per in scores.items():
        used = common or sorted(set(per) & set(scores[reference]))
        if not used:
            continue
        rel = S.reference_normalize({g: per[g] for g in used}, scores[reference])
        out[agent] = S.bootstrap_ci(S.score_matrix(rel, used), S.aggregate_mean, reps, seed, confidence)
    return out


def format_scores_file_stats(
    agg: Mapping[str, Mapping[str, S.Estimate]],
    poi: Mapping[tuple[str, str], S.Estimate],
    games: Sequence[str],
    mode: str,
    reps: int,
    seed: int,
    relative: Mapping[str, S.Estimate] | None = None,
    reference: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The text table ``heldout stats`` prints (with ``relative``: a "% of <reference>" column).

    ``notes`` (from :func:`scores_file_stats`) are printed after the table, one ``note:`` line each.
    """
    runs = "95% stratified-bootstrap CIs"
    games_text = f" x {len(games)} games" if games else ", no game in common"
    lines = [
        f"{len(agg)} agents{games_text}, min-max normalised ({mode}); {runs}, {reps} resamples, seed {seed}",
        "",
    ]
    header = ["agent", "mean", "median", "IQM", "optimality gap"]
    rows = [[a] + [e[m].format(3) for m in S.METRICS] for a, e in agg.items()]
    if relative is not None:
        header.append(f"% of {reference} (mean)")
        for row in rows:
            e = relative.get(row[0])
            if e is None:  # no game in common with the reference
                row.append("-")
                continue
            pct_ci = None if e.ci is None else (100 * e.ci[0], 100 * e.ci[1])
            row.append(S.Estimate(100 * e.value, pct_ci).format(0))
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if poi:
        lines += ["", "probability of improvement P(X > Y), averaged over games:"]
        width = max(len(f"P({x} > {y})") for x, y in poi)
        for (x, y), e in poi.items():
            lines.append(f"  {f'P({x} > {y})'.ljust(width)}  {e.format(3)}")
    if notes:
        lines += ["", *(f"note: {n}" for n in notes)]
    return "\n".join(lines)
