"""Run folders as a report reads them: finding them, their records, grouping them by experiment.

A run folder is what ``heldout train`` writes (:mod:`heldout.protocol.run`); a report reads its
``config.yaml``, ``summary.json``, ``eval/<split>.csv`` and ``progress.csv`` into a :class:`RunRecord`.
Runs are seeds of one experiment when their :func:`heldout.analysis.experiment.experiment_identity`
is equal; one experiment is one row of a report.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heldout.analysis.experiment import ExperimentIdentity, experiment_identity, experiment_labels, preset_of

#: The splits a report reads from ``eval/<split>.csv`` (tagged re-evaluations are left out).
REPORT_SPLITS = ("train", "test", "validation")

#: The published protocol our runs are compared against (BASELINES.md).
PUBLISHED_PROTOCOL = {"distribution_mode": "easy", "num_levels": 200, "start_level": 0}


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
        experiment: The run's experiment (:func:`heldout.analysis.experiment.experiment_identity`).
        contexts: Contextual runs: per split, ``{feature: the value of each episode}`` (the
            ``ctx_<feature>`` columns of ``eval/<split>.csv``); empty for level runs.
        config: ``config.yaml`` as read.
        summary: ``summary.json`` as read.
        preset: The preset ``command.txt`` names (labels only; None if none).
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
    experiment: ExperimentIdentity | None = None
    contexts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.experiment is None:
            self.experiment = experiment_identity(
                self.config
                or {
                    "env": self.env,
                    "agent": self.agent,
                    "timesteps": self.timesteps,
                    "distribution_mode": self.distribution_mode,
                    "num_levels": self.num_levels,
                    "start_level": self.start_level,
                },
                self.summary,
            )

    @property
    def kind(self) -> str:
        """``"contexts"`` for a contextual run, ``"levels"`` for Procgen and MiniGrid."""
        assert self.experiment is not None
        return self.experiment.kind

    def mean(self, split: str) -> float | None:
        """The mean final-evaluation return on ``split``, or None if the run has no such split."""
        r = self.returns.get(split)
        return None if r is None or len(r) == 0 else float(np.mean(r))

    @property
    def setting(self) -> tuple[str, int, int, int]:
        return (self.distribution_mode, self.num_levels, self.start_level, self.timesteps)

    @property
    def follows_published_protocol(self) -> bool:
        return self.kind == "levels" and all(getattr(self, k) == v for k, v in PUBLISHED_PROTOCOL.items())


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a finished heldout run (``config.yaml``, ``summary.json``, ``eval/``)."""
    p = Path(path)
    return (p / "config.yaml").is_file() and (p / "summary.json").is_file() and (p / "eval").is_dir()


@dataclass
class RunFolders:
    """The run folders a report was given: the complete ones, and those it must not average in.

    Attributes:
        complete: Finished runs (``status.json`` says complete, or an older folder with its summary).
        incomplete: ``(folder, what its status says)`` for runs that are running, interrupted or failed.
    """

    complete: list[Path]
    incomplete: list[tuple[Path, str]] = field(default_factory=list)


def _is_run_root(path: Path) -> bool:
    """A run folder, finished or not: ``heldout train`` writes its ``config.yaml`` first."""
    return (path / "config.yaml").is_file()


def scan_run_folders(paths: Sequence[str | os.PathLike[str]]) -> RunFolders:
    """The run folders named by ``paths`` (each a run folder or a folder of run folders, searched
    down), sorted into complete and incomplete by their status (:mod:`heldout.protocol.status`).

    Raises:
        ValueError: A path does not exist, or is neither a run folder nor holds any (one line naming it
            and what a run folder contains).
    """
    from heldout.protocol.status import describe_status, read_status

    if not paths:
        raise ValueError("no run folders given")
    roots: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            raise ValueError(f"run folder {str(raw)!r} does not exist")
        inner = (
            [p]
            if _is_run_root(p)
            else sorted(q.parent for q in p.rglob("config.yaml") if _is_run_root(q.parent))
        )
        if not inner:
            raise ValueError(
                f"{str(raw)!r} is not a heldout run folder (expected config.yaml, summary.json and eval/ "
                "written by 'heldout train') and holds none"
            )
        roots.extend(inner)
    found = RunFolders([])
    for root in dict.fromkeys(q.resolve() for q in roots):
        status = read_status(root)
        if status["state"] == "complete" and is_run_folder(root):
            found.complete.append(root)
        else:
            what = (
                describe_status(status)
                if status["state"] != "complete"
                else "complete, but no summary.json or eval/"
            )
            found.incomplete.append((root, what))
    return found


def find_run_folders(paths: Sequence[str | os.PathLike[str]], include_incomplete: bool = False) -> list[Path]:
    """The complete run folders named by ``paths`` (see :func:`scan_run_folders`).

    Raises:
        ValueError: As :func:`scan_run_folders`; and, unless ``include_incomplete``, when any of the
            folders is not complete (an average over whichever seeds happened to finish is no result),
            or when none is.
    """
    found = scan_run_folders(paths)
    if found.incomplete and not include_incomplete:
        first, what = found.incomplete[0]
        more = f" and {len(found.incomplete) - 1} more" if len(found.incomplete) > 1 else ""
        raise ValueError(
            f"run folder {str(first)!r} is {what}{more}: not complete, so not reported; resume it "
            "('heldout train --resume RUN_DIR') or pass --include-incomplete to report the complete runs "
            "alone (the others are listed as left out)"
        )
    if not found.complete:
        first, what = found.incomplete[0]
        raise ValueError(f"no complete run to report: {str(first)!r} is {what}")
    return found.complete


def one_run_per_seed(runs: Sequence[RunRecord]) -> tuple[list[RunRecord], list[tuple[RunRecord, RunRecord]]]:
    """Keeps one run per experiment and seed (the one that finished last), so a seed run twice counts once.

    An experiment is :func:`heldout.analysis.experiment.experiment_identity`; returns the kept runs
    and ``(dropped, kept instead)`` pairs.
    """
    newest: dict[tuple[Any, ...], RunRecord] = {}
    dropped: list[tuple[RunRecord, RunRecord]] = []
    for r in sorted(runs, key=lambda r: ((r.path / "summary.json").stat().st_mtime_ns, str(r.path))):
        key = (r.experiment, r.seed)
        if key in newest:
            dropped.append((newest[key], r))
        newest[key] = r
    kept = set(map(id, newest.values()))
    return [r for r in runs if id(r) in kept], dropped


def _read_eval_csv(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Returns, levels and (contextual runs) ``{feature: values}`` of an ``eval/<split>.csv``, every
    cell checked (:func:`heldout.protocol.evaluate.csv_cell`: no NaN, no level beyond int64)."""
    from heldout.protocol.evaluate import csv_cell

    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            features = [c[4:] for c in (reader.fieldnames or []) if c.startswith("ctx_")]
        for column in ("level", "return"):
            if column not in (reader.fieldnames or []):
                raise ValueError(f"no {column!r} column")
        return (
            np.array([csv_cell(r, "return", line) for line, r in enumerate(rows, 2)], dtype=float),
            np.array([csv_cell(r, "level", line) for line, r in enumerate(rows, 2)], dtype=np.int64),
            {
                f: np.array([csv_cell(r, f"ctx_{f}", line) for line, r in enumerate(rows, 2)], dtype=float)
                for f in features
            },
        )
    except (ValueError, csv.Error) as exc:
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


def load_run_record(path: str | os.PathLike[str], extra_splits: tuple[str, ...] = ()) -> RunRecord:
    """Reads one run folder (see :func:`is_run_folder`), with the re-evaluations ``extra_splits``
    (``eval/<split>.csv`` of ``heldout eval``, e.g. ``test-wrapper-color-jitter``) where they exist.

    Raises:
        ValueError: ``path`` is not a finished run folder (names it and what is missing).
    """
    from heldout.protocol.checks import check_fields
    from heldout.protocol.families.contextual import MAX_CONTEXT_BINS
    from heldout.protocol.run_folder import read_config, read_summary, read_yaml

    p = Path(path)
    if not is_run_folder(p):
        raise ValueError(
            f"{str(path)!r} is not a heldout run folder (expected config.yaml, summary.json and eval/)"
        )
    read_config(p / "config.yaml")  # every field checked as the run's own (untrusted input)
    config = read_yaml(p / "config.yaml", mapping=True)
    summary = read_summary(p / "summary.json")
    # untrusted: a number of any size, NaN or text is refused here, never converted
    check_fields(
        config,
        {
            "timesteps": "count?",
            "seed": "count?",
            "num_levels": "count?",
            "start_level": "count?",
            "context_bins": (1, MAX_CONTEXT_BINS, "?"),
        },
        repr(str(p / "config.yaml")),
    )
    timesteps = int(summary.get("timesteps") or config.get("timesteps") or 0)
    seed = int(config.get("seed", summary.get("seed")) or 0)
    num_levels = int(config.get("num_levels") or 0)
    start_level = int(config.get("start_level") or 0)
    returns, levels, contexts = {}, {}, {}
    for split in (*REPORT_SPLITS, *extra_splits):
        csv_path = p / "eval" / f"{split}.csv"
        if csv_path.is_file():
            returns[split], levels[split], ctx = _read_eval_csv(csv_path)
            if ctx:
                contexts[split] = ctx
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
        experiment=experiment_identity(config, summary),
        contexts=contexts,
        config=dict(config),
        summary=dict(summary),
        preset=preset_of(p),
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
    """A label per run: its agent name, with what tells its experiment apart where one agent ran
    several experiments on one env (:func:`heldout.analysis.experiment.experiment_labels`)."""
    return experiment_labels([(r.path, r.agent, r.env, r.experiment, r.preset) for r in runs])


def group_runs(runs: Sequence[RunRecord]) -> dict[str, dict[str, list[RunRecord]]]:
    """``{agent label: {env: [runs sorted by seed]}}``: one (label, env) cell per experiment."""
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
