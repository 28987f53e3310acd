"""The published Procgen figures (heldout/analysis/data/published_easy200.csv, from BASELINES.md)
and our runs beside them."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np

from heldout.analysis.runs import RunRecord, _by_game, steps_label
from heldout.analysis.text import md_table
from heldout.protocol.tables import _fmt

#: The agents whose published test returns at 25M steps sit beside ours.
PUBLISHED_AGENTS = ("PPO", "UCB-DrAC", "PLR", "PPG", "IDAAC")


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


def published_comparison(
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
    table = md_table(
        ["game", "ours", "steps", "our train", "our test", "PPO train / test (curve)"]
        + [f"{a} test @25M" for a in PUBLISHED_AGENTS],
        md_rows,
    )
    return (header, rows), table, notes
