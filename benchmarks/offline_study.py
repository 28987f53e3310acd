#!/usr/bin/env python
"""Summarise an offline-vs-online study (issue 29, item 4): the online PPO runs against offline agents
trained on a dataset one of them collected.

Used by the MiniGrid study (benchmarks/offline_minigrid_online.yaml, offline_minigrid.yaml; docs/offline.md,
"Measured: offline vs online on MiniGrid") and the Procgen one (benchmarks/offline_procgen.yaml,
offline_procgen_rl.yaml; docs/offline.md, "Measured: Procgen coinrun at a CPU budget").

Usage: python benchmarks/offline_study.py RUNS [RUNS ...] OUT_DIR   (folders of run folders: online and offline)
  e.g. python benchmarks/offline_study.py runs/offline-minigrid-online runs/offline-minigrid-offline OUT_DIR

Per agent (the online PPO and each offline agent): train and test IQM over seeds with 95%
stratified-bootstrap CIs, the gap, and P(test > BC) and P(test > PPO), from the run folders' final
evaluations (the mean return over each split's evaluation episodes).
"""

import json
import sys
from pathlib import Path

import numpy as np

from heldout.analysis.runs import find_run_folders, load_run_record
from heldout.analysis.stats import Estimate, aggregate_iqm, bootstrap_ci, probability_of_improvement_ci

#: One arm's runs: (seed, mean train return, mean test return) each.
Arm = list[tuple[int, float, float]]


def fmt(e: Estimate) -> str:
    """An estimate as ``value [lo, hi]`` (three decimals)."""
    return f"{e.value:.3f}" + (f" [{e.ci[0]:.3f}, {e.ci[1]:.3f}]" if e.ci else "")


def arm_table(arms: dict[str, Arm], refs: dict[str, str], name: str = "agent") -> tuple[list[str], dict]:
    """Per arm (in ``arms``' order): train, test and gap IQM over seeds with 95% stratified-bootstrap
    CIs, and P(test > ref) with its CI for each ref arm (``refs``: arm -> its label in the header).

    Returns:
        The Markdown table's lines and the figures per arm (``results.json``).
    """

    def col(arm: str, i: int) -> np.ndarray:
        return np.array([row[i] for row in sorted(arms[arm])])[:, None]

    heads = " | ".join(f"P(test > {label})" for label in refs.values())
    lines = [
        f"| {name} | seeds | train IQM [95% CI] | test IQM [95% CI] | gap IQM [95% CI] | {heads} | test per seed |",
        "|---|---|---|---|---|" + "---|" * len(refs) + "---|",
    ]
    result = {}
    for arm in arms:
        train, test = col(arm, 1), col(arm, 2)
        est = {
            k: bootstrap_ci(v, aggregate_iqm)
            for k, v in (("train", train), ("test", test), ("gap", train - test))
        }
        poi = {
            ref: probability_of_improvement_ci(test, col(ref, 2)) if ref in arms and ref != arm else None
            for ref in refs
        }
        result[arm] = {
            "seeds": [row[0] for row in sorted(arms[arm])],
            "train": train[:, 0].tolist(),
            "test": test[:, 0].tolist(),
            **{f"{k}_iqm": [e.value, e.ci] for k, e in est.items()},
            **{f"p_test_better_than_{k}": None if e is None else [e.value, e.ci] for k, e in poi.items()},
        }
        cells = [fmt(est["train"]), fmt(est["test"]), fmt(est["gap"])]
        cells += ["-" if poi[k] is None else fmt(poi[k]) for k in refs]
        per_seed = ", ".join(f"{t:.2f}" for t in test[:, 0])
        lines.append(f"| {arm} | {len(train)} | " + " | ".join(cells) + f" | {per_seed} |")
    return lines, result


def write(out: str, lines: list[str], result: dict) -> None:
    """Prints the table and writes ``results.md`` and ``results.json`` into ``out``."""
    print("\n".join(lines))
    dst = Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "results.json").write_text(json.dumps(result, indent=1))
    (dst / "results.md").write_text("\n".join(lines) + "\n")


def main(runs: list[str], out: str) -> None:
    """Print the table and write OUT/results.{md,json} from the run folders under ``runs``, by agent."""
    arms: dict[str, Arm] = {}
    for p in find_run_folders(runs):
        r = load_run_record(p)
        train, test = float(np.mean(r.returns["train"])), float(np.mean(r.returns["test"]))
        arms.setdefault(r.agent, []).append((r.seed, train, test))
    order = {a: arms[a] for a in ("ppo", "bc", "bcq", "cql", "iql", "dt") if a in arms}
    write(out, *arm_table(order, {"bc": "BC", "ppo": "PPO"}))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:-1], sys.argv[-1])
