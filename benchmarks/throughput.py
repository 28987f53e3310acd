"""Throughput benchmark: heldout's Procgen env and PPO next to procgen's raw core and stock SB3.

    python benchmarks/throughput.py [--help] [--skip-train] [--json results.json] ...

Same as ``heldout bench throughput`` and ``python -m heldout.bench.throughput``; see
benchmarks/README.md for how to read the table.
"""

from heldout.bench.throughput import main

if __name__ == "__main__":
    raise SystemExit(main())
