"""``heldout bench``: throughput, agents and wrappers benchmarks (each parses its own options)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    """Adds ``heldout bench`` to the subcommands ``sub``."""
    b = sub.add_parser(
        "bench",
        help="benchmarks: throughput (env and PPO speed), agents (test return, gap and speed of agents)",
        description="Run a benchmark: 'heldout bench throughput --help', 'heldout bench agents --help'.",
        add_help=True,
    )
    b.add_argument("benchmark", choices=["throughput", "agents", "wrappers"], help="which benchmark")
    b.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options (see --help after it)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Runs the named benchmark with its own options."""
    if args.benchmark == "wrappers":
        from heldout.bench import wrappers

        return wrappers.main(args.args)
    if args.benchmark == "agents":
        from heldout.bench import agents

        return agents.main(args.args)
    from heldout.bench import throughput

    return throughput.main(args.args)
