"""Agent benchmark: PPO next to RAD / DrAC / UCB-DrAC on held-out levels, and their throughput.

    python benchmarks/augmented_agents.py --agents ppo,drac --games starpilot,fruitbot --seeds 0,1

Same as ``heldout bench agents``; see benchmarks/README.md for how to read the tables.
"""

from heldout.bench.agents import main

if __name__ == "__main__":
    raise SystemExit(main())
