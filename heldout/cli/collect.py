"""``heldout collect``: a dataset (Minari's layout) of a trained agent on its run's training levels."""

from __future__ import annotations

import argparse
from typing import Any

from heldout.cli.common import HelpFormatter, positive_int


def add_parser(sub: Any) -> None:
    """Adds ``heldout collect`` to the subcommands ``sub``."""
    c = sub.add_parser(
        "collect",
        help="record a dataset of a trained agent on its run's training levels or contexts (offline RL)",
        description="Play a trained run's agent on the run's training levels (or contexts), batched over env "
        "slots, and write its completed episodes as a dataset in Minari's layout (OUT/data/main_data.hdf5 and "
        "metadata.json: 'minari' opens OUT/data; docs/offline.md). Rewards are raw; every step records its "
        "level (or its context's values). 'heldout train --agent bc --dataset OUT' learns from it.",
        formatter_class=HelpFormatter,
    )
    c.add_argument("run_dir", metavar="RUN_DIR", help="a trained run folder (an online agent's)")
    c.add_argument(
        "--steps",
        type=positive_int,
        required=True,
        help="transitions to record (at least: only completed episodes are kept, and the episodes under way when N is reached play to their end; at most one episode a slot more)",
    )
    c.add_argument("--out", required=True, help="the dataset folder to create (missing or empty)")
    c.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="STEP",
        help="the weights of this checkpoint (step-N or N; default: the final ones); repeat it for the "
        "'mixed' recipe: the steps are shared out evenly between the checkpoints",
    )
    how = c.add_mutually_exclusive_group()
    how.add_argument(
        "--epsilon",
        type=float,
        metavar="E",
        help="epsilon-greedy: a uniform action with probability E, else the greedy one (default: sample the policy)",
    )
    how.add_argument(
        "--deterministic", action="store_true", help="greedy actions (default: sample the policy)"
    )
    c.add_argument(
        "--num-levels",
        type=positive_int,
        metavar="K",
        help="record on the first K of the run's training levels (the smallest seeds, as its split lists "
        "them) rather than all of them: the same steps from fewer levels (default: all)",
    )
    c.add_argument(
        "--num-envs",
        type=positive_int,
        help="env slots played side by side (default: the run's eval_num_envs)",
    )
    c.add_argument(
        "--seed", type=int, help="seed of the envs and the action choices (default: the run's seed)"
    )
    c.add_argument("--device", default="auto", help="torch device of the agent (default: auto)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Writes the dataset and prints what it holds."""
    from heldout.protocol.collect import collect

    if args.seed is not None and not 0 <= args.seed < 2**31 - 1:
        raise ValueError(f"--seed {args.seed} is out of range; valid: 0 <= seed < 2147483647")
    path, info = collect(
        args.run_dir,
        args.steps,
        args.out,
        checkpoints=args.checkpoint,
        epsilon=args.epsilon,
        deterministic=args.deterministic,
        num_envs=args.num_envs,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        num_levels=args.num_levels,
    )
    where = (
        f"levels {info['levels_described']}"
        if "levels_described" in info
        else f"contexts {info['contexts_described']} (recorded at every step)"
    )
    print(
        f"dataset: {path} ({info['steps']} transitions, {info['episodes']} episodes, mean return "
        f"{info['mean_return']:.3f}, env {info['env']}, {where}, "
        f"checkpoints {', '.join(map(str, info['checkpoints']))})"
    )
    return 0
