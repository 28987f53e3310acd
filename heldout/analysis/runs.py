"""Run folders as a report reads them: finding them, their records, grouping them by agent and game.

A run folder is what ``heldout train`` writes (:mod:`heldout.protocol.run`); a report reads its
``config.yaml``, ``summary.json``, ``eval/<split>.csv`` and ``progress.csv`` into a :class:`RunRecord`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return (
            np.array([float(r["return"]) for r in rows], dtype=float),
            np.array([int(r["level"]) for r in rows], dtype=np.int64),
        )
    except (KeyError, ValueError) as exc:
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
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {s: f"eval/{s}/mean_return" for s in ("train", "test")}
    points: dict[float, dict[str, float]] = {}
    for r in rows:
        if not any(r.get(c) for c in columns.values()):
            continue
        step = float(r["time/total_timesteps"]) if r.get("time/total_timesteps") else float(final_steps)
        points[step] = {s: float(r[c]) if r.get(c) else np.nan for s, c in columns.items()}
    if not points:
        return {}
    steps = sorted(points)
    return {"steps": np.array(steps), **{s: np.array([points[t][s] for t in steps]) for s in columns}}


def load_run_record(path: str | os.PathLike[str]) -> RunRecord:
    """Reads one run folder (see :func:`is_run_folder`).

    Raises:
        ValueError: ``path`` is not a finished run folder (names it and what is missing).
    """
    from heldout.protocol.run_folder import read_yaml

    p = Path(path)
    if not is_run_folder(p):
        raise ValueError(
            f"{str(path)!r} is not a heldout run folder (expected config.yaml, summary.json and eval/)"
        )
    config = read_yaml(p / "config.yaml") or {}
    with open(p / "summary.json") as f:
        summary = json.load(f)
    timesteps = int(summary.get("timesteps") or config.get("timesteps", 0))
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
        seed=int(config.get("seed", summary.get("seed", 0))),
        distribution_mode=str(config.get("distribution_mode", "easy")),
        num_levels=int(config.get("num_levels", 0)),
        start_level=int(config.get("start_level", 0)),
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
