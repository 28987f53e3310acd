"""``heldout report``: tables, confidence intervals and plots from run folders."""

from __future__ import annotations

import argparse
from typing import Any

from heldout.cli.common import HelpFormatter, positive_int


def add_parser(sub: Any) -> None:
    """Adds ``heldout report`` to the subcommands ``sub``."""
    r = sub.add_parser(
        "report",
        help="tables, confidence intervals and plots from run folders",
        description="Group run folders by env and agent and write report.md, CSV tables, the per-run "
        "scores in the published JSON layout and PNG plots into --out: per-game train and test return "
        "with CIs over seeds and the gap, aggregate normalised mean/median/IQM/optimality gap with "
        "stratified-bootstrap CIs, probability of improvement between agents, learning curves, per-level "
        "return histograms and, for runs on the easy-200 protocol, the published Procgen figures beside ours.",
        formatter_class=HelpFormatter,
    )
    r.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, or folders holding run folders"
    )
    r.add_argument("--out", required=True, metavar="DIR", help="folder to write the report into")
    r.add_argument("--reps", type=positive_int, default=2000, help="bootstrap resamples for every CI")
    r.add_argument("--seed", type=int, default=0, help="seed of the bootstrap generators")
    r.add_argument("--reference", metavar="AGENT", help="also report scores as a fraction of this agent's")
    r.add_argument("--no-plots", action="store_true", help="tables only")
    r.add_argument(
        "--include-incomplete",
        action="store_true",
        help="report the complete runs even if some folders are running, interrupted or failed (listed as "
        "left out); without it such folders are refused",
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Writes the report; prints where, and its warnings about too few runs."""
    from heldout.analysis.report import write_report

    report = write_report(
        args.run_dirs,
        args.out,
        reps=args.reps,
        seed=args.seed,
        reference=args.reference,
        plots=not args.no_plots,
        include_incomplete=args.include_incomplete,
    )
    print(f"report: {report.files[0]} ({len(report.files)} files)")
    for warning in report.warnings:
        print("warning: " + warning.replace("**", ""))
    return 0
