"""Learning unchanged by the engine and by bf16 (issue 18): IQM and CIs over seeds from a sweep.

Run the sweep first, then this on its folder::

    heldout sweep benchmarks/engine_learning.yaml          # 15 runs, about 2 min on 2 CPU cores
    python benchmarks/engine_learning.py runs/engine-learning --out benchmarks/results/engine_learning

Per variant (``engine`` x ``precision`` of the runs' ``agent_kwargs``): the IQM of the runs' final
train and test returns with 95% stratified-bootstrap CIs (Agarwal et al. 2021;
:mod:`heldout.analysis.stats`), P(variant > the current path, ``engine=sb3, fp32``) on test, and,
as a second and exact check of the equivalence tests, whether each run's test episodes (every
``eval/test.csv`` row) equal those of the current path's run with the same seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = ("sb3", "fp32")


def read_runs(folder: Path) -> list[dict[str, Any]]:
    """Every complete run under ``folder``: its variant, seed, final returns and test episodes."""
    from heldout.protocol.run_folder import read_config

    runs = []
    for summary_path in sorted(folder.rglob("summary.json")):
        run = summary_path.parent
        if run.parent.name == "report" or not (run / "config.yaml").is_file():
            continue
        config = read_config(run / "config.yaml")
        summary = json.loads(summary_path.read_text())
        kwargs = config.agent_kwargs or {}
        with open(run / "eval" / "test.csv", newline="") as f:
            episodes = [tuple(row.values()) for row in csv.DictReader(f)]
        runs.append(
            {
                "run": str(run.relative_to(folder)),
                "variant": (str(kwargs.get("engine", "auto")), str(kwargs.get("precision", "fp32"))),
                "seed": config.seed,
                "train": summary["splits"]["train"]["mean"],
                "test": summary["splits"]["test"]["mean"],
                "episodes": episodes,
            }
        )
    return runs


def analyse(runs: list[dict[str, Any]], reps: int = 2000) -> dict[str, Any]:
    """IQM [95% CI] of train and test per variant, P(test > reference), equal episodes."""
    from heldout.analysis.stats import aggregate_estimates, aggregate_iqm, probability_of_improvement_ci

    variants = sorted({r["variant"] for r in runs}, key=lambda v: (v != REFERENCE, v))
    reference = {r["seed"]: r for r in runs if r["variant"] == REFERENCE}
    out: dict[str, Any] = {}
    for variant in variants:
        rs = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        entry: dict[str, Any] = {"runs": len(rs), "seeds": [r["seed"] for r in rs]}
        for split in ("train", "test"):
            matrix = np.array([[r[split]] for r in rs])
            est = aggregate_estimates({"x": matrix}, {"iqm": aggregate_iqm}, reps=reps)["x"]["iqm"]
            entry[f"{split}_iqm"] = est.to_dict()
        if variant != REFERENCE and reference:
            x = np.array([[r["test"]] for r in rs])
            y = np.array([[r["test"]] for r in reference.values()])
            entry["p_test_better_than_reference"] = probability_of_improvement_ci(x, y, reps=reps).to_dict()
            entry["test_episodes_equal_to_reference"] = sum(
                r["seed"] in reference and r["episodes"] == reference[r["seed"]]["episodes"] for r in rs
            )
        out["/".join(variant)] = entry
    return out


def _fmt(est: dict[str, Any]) -> str:
    ci = est["ci"]
    return f"{est['value']:.1f}" + ("" if ci is None else f" [{ci[0]:.1f}, {ci[1]:.1f}]")


def markdown(stats: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    lines = [
        "| engine/precision | runs | test return IQM [95% CI] | train return IQM [95% CI] "
        "| P(test > sb3/fp32) | runs with test episodes equal to sb3/fp32's |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in stats.items():
        p = e.get("p_test_better_than_reference")
        same = e.get("test_episodes_equal_to_reference")
        equal = "(reference)" if same is None else f"{same}/{e['runs']}"
        lines.append(
            f"| {name} | {e['runs']} | {_fmt(e['test_iqm'])} | {_fmt(e['train_iqm'])} "
            f"| {'-' if p is None else _fmt_p(p)} | {equal} |"
        )
    lines += ["", "Per run (test / train):", ""]
    for r in sorted(runs, key=lambda r: (r["variant"], r["seed"])):
        lines.append(f"- {'/'.join(r['variant'])} seed {r['seed']}: {r['test']:.2f} / {r['train']:.2f}")
    return "\n".join(lines) + "\n"


def _fmt_p(est: dict[str, Any]) -> str:
    ci = est["ci"]
    return f"{est['value']:.2f}" + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the sweep's folder (benchmarks/engine_learning.yaml's)")
    parser.add_argument("--out", type=Path, default=None, help="write results.json and results.md here")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(
            f"error: {args.folder} is not a folder; run heldout sweep benchmarks/engine_learning.yaml first"
        )
        return 2
    runs = read_runs(args.folder)
    if not runs:
        print(f"error: no complete run under {args.folder}")
        return 2
    stats = analyse(runs, args.reps)
    text = markdown(stats, runs)
    print(text, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        per_run = [{k: v for k, v in r.items() if k != "episodes"} for r in runs]
        (args.out / "results.json").write_text(json.dumps({"stats": stats, "runs": per_run}, indent=2) + "\n")
        (args.out / "results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
