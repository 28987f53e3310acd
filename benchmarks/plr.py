"""Uniform levels vs PLR vs Robust PLR, on MiniGrid DoorKey or a Procgen game, at a CPU budget.

    python benchmarks/plr.py                              # MiniGrid: 3 samplers x 5 seeds, 2 runs at a time
    python benchmarks/plr.py --setting procgen            # coinrun easy at a CPU budget
    python benchmarks/plr.py --seeds 0,1 --jobs 1 --out /tmp/plr

Each run is a real ``heldout train`` with ``--level-sampler uniform | plr | robust-plr`` at the
samplers' defaults (heldout.envs.plr: level-replay's and dcd's), one torch thread, 50 final
evaluation episodes a split on the leak-free lists. The settings (:data:`SETTINGS`):

* ``minigrid``: DoorKey-5x5, the ``minigrid-doorkey`` preset's PPO, 20 training levels, 40,960 env
  steps.
* ``procgen``: coinrun easy, the ``procgen-quickstart`` preset's PPO and IMPALA-CNN with 16 envs x 64
  steps a rollout (4 minibatches of 256, 3 epochs), 50 training levels (so that levels are replayed
  within the budget), 24,576 env steps (24 rollouts), bf16 update.

It writes, under ``--out``:

* ``results.json``: per sampler the runs' train and test returns, gaps, student updates and wall
  times, and the interquartile mean (IQM) of test return and of the gap with 95% stratified
  bootstrap CIs (Agarwal et al. 2021; :mod:`heldout.analysis.stats`), plus P(sampler > uniform) on
  test return;
* ``results.md``: the same as a table;
* ``plr_<setting>.png``: IQM and CI of test return and gap per sampler, every run as a dot.

A CPU budget: 40k MiniGrid steps and 25k Procgen steps are far below the papers' (25M Procgen steps,
250M MiniGrid steps in dcd), so this shows how the samplers behave early in training on a small level
set, not their asymptote. See benchmarks/README.md ("PLR on MiniGrid and Procgen").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

SAMPLERS = ("uniform", "plr", "robust-plr")
COMMON = [
    "--eval-episodes",
    "50",
    "--eval-freq",
    "0",
    "--torch-threads",
    "1",
    "--checkpoint-freq",
    "0",
    "--no-progress",
]
#: Per setting: the ``heldout train`` arguments, the results folder, the figure's title and the header's
#: description of the budget.
SETTINGS: dict[str, dict[str, Any]] = {
    "minigrid": {
        "train": [
            "train", "--preset", "minigrid-doorkey", "--env", "minigrid-doorkey-5x5", "--num-levels", "20",
            "--timesteps", "40960", *COMMON,
        ],
        "out": "benchmarks/results/plr_minigrid",
        "title": "DoorKey-5x5, 20 levels, 41k steps (CPU budget)",
        "budget": "MiniGrid DoorKey-5x5, 20 training levels, 40,960 env steps (a CPU budget)",
    },
    "procgen": {
        "train": [
            "train", "--preset", "procgen-quickstart", "--env", "coinrun", "--num-levels", "50",
            "--num-envs", "16", "--agent-arg", "n_steps=64", "--agent-arg", "batch_size=256",
            "--timesteps", "24576", "--precision", "bf16", *COMMON,
        ],
        "out": "benchmarks/results/plr_procgen",
        "title": "coinrun easy, 50 levels, 25k steps (CPU budget)",
        "budget": (
            "Procgen coinrun easy, 50 training levels, 16 envs x 64 steps a rollout, 24,576 env steps "
            "(24 rollouts; a CPU budget), bf16 update"
        ),
    },
}  # fmt: skip


def run_one(train: list[str], sampler: str, seed: int, out: Path) -> dict[str, Any]:
    """One ``heldout train``; returns its figures (from summary.json and progress.csv)."""
    root = out / "runs" / sampler
    args = [*train, "--level-sampler", sampler, "--seed", str(seed), "--out", str(root)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "heldout", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{sampler} seed {seed} failed: {done.stderr.strip().splitlines()[-1:]}")
    run_dir = Path(done.stdout.strip().splitlines()[-1].split("run folder: ", 1)[1])
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    last = {k: v for row in rows for k, v in row.items() if v not in ("", None)}
    updates = float(last["plr/student_updates"]) if "plr/student_updates" in last else None
    return {
        "sampler": sampler,
        "seed": seed,
        "train": summary["splits"]["train"]["mean"],
        "test": summary["splits"]["test"]["mean"],
        "gap": summary["gap"],
        "timesteps": summary["timesteps"],
        "student_updates": updates,  # None for uniform: every rollout is an update
        "train_seconds": summary["train_seconds"],
        "wall_seconds": round(wall, 1),
        "run_dir": str(run_dir),
    }


def analyse(runs: list[dict[str, Any]], reps: int = 2000) -> dict[str, Any]:
    """IQM and 95% stratified-bootstrap CIs of test return and gap per sampler; P(X > uniform)."""
    from heldout.analysis.stats import aggregate_estimates, aggregate_iqm, probability_of_improvement_ci

    out: dict[str, Any] = {}
    by = {s: [r for r in runs if r["sampler"] == s] for s in SAMPLERS}
    for sampler, rs in by.items():
        if not rs:
            continue
        entry: dict[str, Any] = {"runs": len(rs)}
        for metric in ("test", "train", "gap"):
            matrix = np.array([[r[metric]] for r in rs])
            est = aggregate_estimates({sampler: matrix}, {"iqm": aggregate_iqm}, reps=reps)[sampler]["iqm"]
            entry[f"{metric}_iqm"] = est.to_dict()
        if sampler != "uniform" and by["uniform"]:
            x = np.array([[r["test"]] for r in rs])
            y = np.array([[r["test"]] for r in by["uniform"]])
            entry["p_test_better_than_uniform"] = probability_of_improvement_ci(x, y, reps=reps).to_dict()
        updates = [r["student_updates"] for r in rs if r["student_updates"] is not None]
        if updates:
            entry["student_updates_mean"] = float(np.mean(updates))
        entry["wall_seconds_mean"] = float(np.mean([r["wall_seconds"] for r in rs]))
        out[sampler] = entry
    return out


def _fmt(est: dict[str, Any]) -> str:
    ci = est["ci"]
    return f"{est['value']:.3f}" + ("" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def markdown(stats: dict[str, Any], runs: list[dict[str, Any]], header: str) -> str:
    lines = [
        header,
        "",
        "| sampler | runs | test return IQM [95% CI] | train return IQM | gap IQM [95% CI] "
        "| P(test > uniform) | student updates | wall s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sampler, e in stats.items():
        p = e.get("p_test_better_than_uniform")
        lines.append(
            f"| {sampler} | {e['runs']} | {_fmt(e['test_iqm'])} | {_fmt(e['train_iqm'])} | {_fmt(e['gap_iqm'])} "
            f"| {'-' if p is None else _fmt(p)} | {e.get('student_updates_mean', 'all')} "
            f"| {e['wall_seconds_mean']:.0f} |"
        )
    lines += ["", "Per run (test / train / gap):", ""]
    for r in runs:
        lines.append(
            f"- {r['sampler']} seed {r['seed']}: {r['test']:.3f} / {r['train']:.3f} / {r['gap']:+.3f}"
        )
    return "\n".join(lines) + "\n"


def plot(stats: dict[str, Any], runs: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    names = list(stats)
    for ax, metric, label in (
        (axes[0], "test", "test return"),
        (axes[1], "gap", "gap (train - test)"),
    ):
        for i, sampler in enumerate(names):
            est = stats[sampler][f"{metric}_iqm"]
            ci = est["ci"] or [est["value"], est["value"]]
            ax.bar(i, est["value"], color=f"C{i}", alpha=0.5, width=0.6)
            ax.errorbar(
                i, est["value"], yerr=[[est["value"] - ci[0]], [ci[1] - est["value"]]], color="k", capsize=5
            )
            pts = [r[metric] for r in runs if r["sampler"] == sampler]
            ax.scatter(i + np.linspace(-0.15, 0.15, len(pts)), pts, color="k", s=12, zorder=3)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(f"{label}, IQM and 95% CI")
        ax.axhline(0, color="grey", lw=0.5)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="minigrid", help="what to train on")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated run seeds")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--out", default=None, help="results folder (default: the setting's)")
    args = parser.parse_args(argv)
    setting = SETTINGS[args.setting]
    seeds = [int(s) for s in args.seeds.split(",")]
    samplers = [s for s in args.samplers.split(",") if s]
    out = Path(args.out or setting["out"])
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(s, seed) for seed in seeds for s in samplers]  # interleaved: every sampler sees the same load
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda job: run_one(setting["train"], job[0], job[1], out), jobs))
    total = time.perf_counter() - t0
    stats = analyse(runs)
    load = os.getloadavg()
    header = (
        f"{setting['budget']}, {len(seeds)} seeds per "
        f"sampler, 50 final evaluation episodes a split; {os.cpu_count()} CPUs, {args.jobs} runs at a time, "
        f"1 torch thread each; whole benchmark {total / 60:.1f} min; load average at the end "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    result = {
        "setting": header,
        "command": setting["train"],
        "runs": runs,
        "stats": stats,
        "total_seconds": round(total, 1),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "results.md").write_text(markdown(stats, runs, header))
    name = f"plr_{args.setting}.png"
    plot(stats, runs, out / name, f"{setting['title']}, {len(seeds)} seeds")
    print(markdown(stats, runs, header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
