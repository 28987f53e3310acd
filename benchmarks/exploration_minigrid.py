#!/usr/bin/env python
"""Summarise the exploration study (benchmarks/exploration_minigrid.yaml; docs/exploration.md)

Usage: python benchmarks/exploration_minigrid.py runs/exploration-minigrid benchmarks/results/exploration_minigrid

Reads runs/exploration-minigrid: per (num_levels, bonus) test/train IQM with 95% stratified-bootstrap
CIs and P(test > no bonus), from the run folders' final evaluations."""

import json
import sys
from pathlib import Path

import numpy as np

from heldout.analysis.runs import find_run_folders, load_run_record
from heldout.analysis.stats import aggregate_iqm, bootstrap_ci, probability_of_improvement_ci

root = Path(sys.argv[1])
arms = {}
for p in find_run_folders([root]):
    r = load_run_record(p)
    key = (int(r.config["num_levels"]), r.config.get("bonus", "none"))
    arms.setdefault(key, []).append(
        (r.seed, float(np.mean(r.returns["train"])), float(np.mean(r.returns["test"])))
    )
out = {}
lines = [
    "| training levels | bonus | seeds | train IQM [95% CI] | test IQM [95% CI] | P(test > no bonus) [95% CI] | test per seed (0-4) |",
    "|---|---|---|---|---|---|---|",
]
fmt = lambda e: f"{e.value:.3f}" + (f" [{e.ci[0]:.3f}, {e.ci[1]:.3f}]" if e.ci else "")
for n in sorted({k[0] for k in arms}):
    base = np.array([t for _, _, t in sorted(arms[(n, "none")])])[:, None]
    for bonus in ("none", "count", "episodic-count", "product"):
        rows = sorted(arms[(n, bonus)])
        train = np.array([x for _, x, _ in rows])[:, None]
        test = np.array([t for _, _, t in rows])[:, None]
        tr, te = bootstrap_ci(train, aggregate_iqm), bootstrap_ci(test, aggregate_iqm)
        poi = probability_of_improvement_ci(test, base) if bonus != "none" else None
        out[f"{n}/{bonus}"] = {
            "seeds": [s for s, _, _ in rows],
            "train": train[:, 0].tolist(),
            "test": test[:, 0].tolist(),
            "train_iqm": [tr.value, tr.ci],
            "test_iqm": [te.value, te.ci],
            "p_test_better_than_none": None if poi is None else [poi.value, poi.ci],
        }
        lines.append(
            f"| {n} | {bonus} | {len(rows)} | {fmt(tr)} | {fmt(te)} | {'-' if poi is None else fmt(poi)} | {', '.join(f'{t:.2f}' for t in test[:, 0])} |"
        )
print("\n".join(lines))
dst = Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
(dst / "results.json").write_text(json.dumps(out, indent=1))
(dst / "results.md").write_text("\n".join(lines) + "\n")
