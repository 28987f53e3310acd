"""``heldout bench``: throughput, agents, wrappers, levels and contexts benchmarks (each parses its own
options)."""

from __future__ import annotations

import argparse
from typing import Any

#: benchmark name -> one line of help (each is the module ``heldout.bench.<name>``)
BENCHMARKS: dict[str, str] = {
    "throughput": "env and PPO speed",
    "eval": "evaluation speed on held-out levels next to its inference floor",
    "agents": "test return, gap and speed of agents side by side",
    "wrappers": "what each wrapper costs on the Procgen batch",
    "levels": "train and test return against the number of training levels (Cobbe et al. 2020)",
    "contexts": "reference controllers on each contextual preset's train and test range",
}


def add_parser(sub: Any) -> None:
    """Adds ``heldout bench`` to the subcommands ``sub``."""
    b = sub.add_parser(
        "bench",
        help="benchmarks: " + ", ".join(BENCHMARKS),
        description="Run a benchmark ('heldout bench NAME --help' for its options): "
        + "; ".join(f"{name}: {text}" for name, text in BENCHMARKS.items())
        + ".",
        add_help=True,
    )
    b.add_argument("benchmark", choices=list(BENCHMARKS), help="which benchmark")
    b.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options (see --help after it)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Runs the named benchmark with its own options."""
    # explicit imports, so that tests/test_layout.py sees every arrow of the graph
    if args.benchmark == "wrappers":
        from heldout.bench import wrappers as module
    elif args.benchmark == "agents":
        from heldout.bench import agents as module  # type: ignore[no-redef]
    elif args.benchmark == "levels":
        from heldout.bench import levels as module  # type: ignore[no-redef]
    elif args.benchmark == "contexts":
        from heldout.bench import contexts as module  # type: ignore[no-redef]
    elif args.benchmark == "eval":
        from heldout.bench import evaluation as module  # type: ignore[no-redef]
    else:
        from heldout.bench import throughput as module  # type: ignore[no-redef]
    return module.main(args.args)
