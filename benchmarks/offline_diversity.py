#!/usr/bin/env python
"""Summarise the offline diversity study (benchmarks/offline_diversity.yaml and .sh; docs/offline.md,
"Measured: diversity vs size").

Usage: python benchmarks/offline_diversity.py runs/offline-diversity-bc EXPERT_RUN_DIR OUT_DIR

Per K (the training levels the BC run's dataset was recorded on): train IQM (the run's final
evaluation on its K levels), test IQM on the expert's held-out list (``heldout eval RUN --levels
<that list>``: ``eval/test-levels=*.csv``, one list for every K, checked), the gap, with 95%
stratified-bootstrap CIs and P(test > K=min); then the claim "diversity beats size": IQM test(K=max)
- IQM test(K=min) with its CI (independent bootstraps), P(improvement), and the verdict of the
findings (reproduced / opposite / inconclusive at this budget). A second table gives each run's own
final test evaluation (its held-out list is leak-free against its K levels only, so it differs by K).
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
from offline_study import Arm, arm_table, fmt, write

from heldout.analysis.runs import find_run_folders, load_run_record
from heldout.analysis.stats import iqm_difference_ci, probability_of_improvement_ci
from heldout.experiments.findings.verdict import decide


def common_test(run: Path, levels: list[int]) -> float:
    """The run's mean return on the expert's held-out list (its ``heldout eval --levels`` file).

    Raises:
        ValueError: no such file, or its episodes are not one on each level of ``levels``.
    """
    found = sorted((run / "eval").glob("test-levels=*.csv"))
    if len(found) != 1:
        raise ValueError(
            f"{run}: expected one eval/test-levels=*.csv (heldout eval --levels), found {len(found)}"
        )
    with open(found[0], newline="") as f:
        rows = list(csv.DictReader(f))
    if sorted(int(r["level"]) for r in rows) != sorted(levels):
        raise ValueError(f"{found[0]}: its levels are not the expert's held-out list")
    return float(np.mean([float(r["return"]) for r in rows]))


def main(folder: str, expert: str, out: str) -> None:
    """The tables and the verdict of docs/offline.md, "Measured: diversity vs size"."""
    levels = json.loads((Path(expert) / "split.json").read_text())["eval_levels"]["test"]
    common: dict[int, Arm] = {}
    own: dict[int, Arm] = {}
    for p in find_run_folders([folder]):
        r = load_run_record(p)
        train = float(np.mean(r.returns["train"]))
        common.setdefault(r.num_levels, []).append((r.seed, train, common_test(p, levels)))
        own.setdefault(r.num_levels, []).append((r.seed, train, float(np.mean(r.returns["test"]))))
    ks = sorted(common)
    few, many = f"K={ks[0]}", f"K={ks[-1]}"
    lines, result = arm_table({f"K={k}": common[k] for k in ks}, {few: few}, name="levels K")
    own_lines, own_result = arm_table({f"K={k}": own[k] for k in ks}, {few: few}, name="levels K")

    def tests(k: int) -> np.ndarray:
        return np.array([t for _, _, t in sorted(common[k])])[:, None]

    diff = iqm_difference_ci(tests(ks[-1]), tests(ks[0]))
    poi = probability_of_improvement_ci(tests(ks[-1]), tests(ks[0]))
    seeds = min(len(common[k]) for k in ks)
    verdict, needed = decide(diff, +1, seeds)
    claim = f"IQM test({many}) - IQM test({few}) = {fmt(diff)}; P(test({many}) > test({few})) = {fmt(poi)}"
    lines += [
        "",
        f"Test: the expert's held-out list ({len(levels)} levels, leak-free against all its training levels).",
        f"Diversity beats size: {claim}: **{verdict}**"
        + (f" (about {needed} seeds an arm would decide it)" if needed else ""),
        "",
        "Each run's own final test evaluation (its list is leak-free against its K levels only):",
        "",
        *own_lines,
    ]
    result = {
        "test_list": levels,
        "by_k_expert_list": result,
        "by_k_own_list": own_result,
        "difference": {
            "arms": [many, few],
            "iqm": [diff.value, diff.ci],
            "p_improvement": [poi.value, poi.ci],
        },
        "verdict": verdict,
        "seeds_needed": needed,
    }
    write(out, lines, result)


if __name__ == "__main__":
    main(*sys.argv[1:4])
