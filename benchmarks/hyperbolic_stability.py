"""The stability study of hyperbolic PPO (issue 30): per-update diagnostics and test returns per variant.

    nice -n 15 heldout sweep benchmarks/hyperbolic_stability.yaml --workers 1
    python benchmarks/hyperbolic_stability.py runs/hyperbolic-stability --out benchmarks/results/hyperbolic_stability

Reads every complete run of the sweep (``summary.json`` and ``progress.csv``), groups them by variant
(the sweep's grid point), and writes ``results.json`` and ``results.md``:

* per update, over the runs of a variant: the pre-clip gradient norm, the representation norm, the
  hyperbolic radius (distance of the policy head's points from the origin; the Poincaré ball's
  projection caps it at 6.21 for c = 1 in float32), approx KL and clip fraction; reported as the median
  over runs of each run's median and maximum over its updates;
* the test and train returns and the gap: IQM with 95% stratified-bootstrap CIs (Agarwal et al. 2021;
  :mod:`heldout.analysis.stats`), and P(variant > euclidean) on test return.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from heldout.analysis.stats import aggregate_estimates, aggregate_iqm, probability_of_improvement_ci

#: The sweep's grid points, by the short name the results use.
VARIANTS = {
    "euclidean": "representation=euclidean,s_rym=false,feature_reg=false,hl_gauss=false",
    "poincare": "representation=poincare,s_rym=false,feature_reg=false,hl_gauss=false",
    "poincare-srym": "representation=poincare,s_rym=true,feature_reg=false,hl_gauss=false",
    "hyperpp": "representation=hyperboloid,s_rym=false,feature_reg=true,hl_gauss=true",
}
DIAGNOSTICS = ("grad_norm", "representation_norm", "hyperbolic_radius", "approx_kl", "clip_fraction")


def _column(rows: list[dict[str, str]], key: str) -> np.ndarray:
    values = [float(r[key]) for r in rows if r.get(key, "") not in ("", None)]
    return np.asarray(values, dtype=float)


def read_run(run: Path) -> dict[str, Any] | None:
    """A run's per-update diagnostics and, once it is complete, its returns (None before); None for a
    run with no update logged yet."""
    if not (run / "progress.csv").exists():
        return None
    with open(run / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, Any] = {"run": run.name, "complete": (run / "summary.json").exists()}
    summary = json.loads((run / "summary.json").read_text()) if out["complete"] else None
    for split in ("train", "test"):
        out[split] = float(summary["splits"][split]["mean"]) if summary else None
    out["gap"] = out["train"] - out["test"] if summary else None
    for key in DIAGNOSTICS:
        column = _column(rows, f"train/{key}")
        out[key] = {"median": float(np.median(column)), "max": float(column.max())} if len(column) else None
    out["updates"] = len(_column(rows, "train/approx_kl"))
    if out["updates"] == 0:
        return None
    out["nonfinite"] = any(not math.isfinite(v) for k in DIAGNOSTICS if out[k] for v in out[k].values())
    return out


def collect(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """``{variant: [run, ...]}`` of the runs under the sweep ``folder`` that logged an update."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for name, point in VARIANTS.items():
        for run in sorted((folder / point).glob("*/*/seed*")):
            record = read_run(run)
            if record is not None:
                runs.setdefault(name, []).append(record)
    return runs


def statistics(runs: dict[str, list[dict[str, Any]]], reps: int = 2000) -> dict[str, Any]:
    """IQM and CIs of the returns, the diagnostics' medians over runs, P(variant > euclidean)."""
    out: dict[str, Any] = {}
    for name, records in runs.items():
        complete = [r for r in records if r["complete"]]
        entry: dict[str, Any] = {"runs": len(records), "complete": len(complete)}
        entry["updates"] = [r["updates"] for r in records]
        for metric in ("test", "train", "gap"):
            if complete:
                matrix = np.asarray([[r[metric]] for r in complete])
                est = aggregate_estimates({name: matrix}, {"iqm": aggregate_iqm}, reps=reps)[name]["iqm"]
                entry[f"{metric}_iqm"] = est.to_dict()
        for key in DIAGNOSTICS:
            present = [r[key] for r in records if r[key] is not None]
            if present:
                entry[key] = {
                    "median_of_medians": float(np.median([p["median"] for p in present])),
                    "median_of_max": float(np.median([p["max"] for p in present])),
                }
        baseline = [r for r in runs.get("euclidean", []) if r["complete"]]
        if name != "euclidean" and complete and baseline:
            x = np.asarray([[r["test"]] for r in complete])
            y = np.asarray([[r["test"]] for r in baseline])
            entry["p_test_better_than_euclidean"] = probability_of_improvement_ci(x, y, reps=reps).to_dict()
        out[name] = entry
    return out


def _ci(estimate: dict[str, Any]) -> str:
    ci = estimate.get("ci")
    return f"{estimate['value']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def markdown(stats: dict[str, Any]) -> str:
    """The results as two tables: diagnostics, then returns."""
    lines = [
        "| variant | runs (updates) | grad norm (median / max) | representation norm | hyperbolic radius (median / max) "
        "| approx KL (median / max) | clip fraction (median / max) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def pair(e: dict[str, Any], key: str) -> str:
        if key not in e:
            return "-"
        return f"{e[key]['median_of_medians']:.3g} / {e[key]['median_of_max']:.3g}"

    for name, e in stats.items():
        lines.append(
            f"| {name} | {e['runs']} ({', '.join(map(str, e['updates']))}) | {pair(e, 'grad_norm')} | {pair(e, 'representation_norm')} | "
            f"{pair(e, 'hyperbolic_radius')} | {pair(e, 'approx_kl')} | {pair(e, 'clip_fraction')} |"
        )
    lines += [
        "",
        "| variant | complete runs | test return IQM [95% CI] | train return IQM | gap IQM | P(test > euclidean) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, e in stats.items():
        p = e.get("p_test_better_than_euclidean")
        if not e["complete"]:
            lines.append(f"| {name} | 0 | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {e['complete']} | {_ci(e['test_iqm'])} | {_ci(e['train_iqm'])} | {_ci(e['gap_iqm'])} | "
            f"{_ci(p) if p else '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="the sweep's folder (runs/hyperbolic-stability)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/hyperbolic_stability"))
    args = parser.parse_args()
    runs = collect(args.folder)
    stats = statistics(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"stats": stats, "runs": runs}, indent=2) + "\n")
    text = markdown(stats)
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
