"""``heldout eval``: a saved run evaluated again, on any split or under settings it never saw."""

from __future__ import annotations

import argparse
from typing import Any

from heldout.cli.common import HelpFormatter, add_import_flag, context_item, key_value, positive_int


def add_parser(sub: Any) -> None:
    """Adds ``heldout eval`` to the subcommands ``sub``."""
    e = sub.add_parser(
        "eval",
        help="re-evaluate a saved run on any split or setting",
        description="Evaluate a saved run's final model zero-shot on a split (or an explicit level set), "
        "possibly under settings it never saw (distribution mode, visual options). Writes "
        "eval/<split>[-<settings>].csv and .json into the run folder (eval/<split>-reeval.* for the split as "
        "trained: the final evaluation that summary.json and reports use is never overwritten).",
        formatter_class=HelpFormatter,
    )
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by 'heldout train'")
    add_import_flag(
        e,
        "import this .py file or module instead of those the run recorded (e.g. a file that moved; repeatable)",
    )
    e.add_argument("--split", default="test", help="train, test or validation")
    e.add_argument(
        "--episodes", type=positive_int, default=100, help="episodes (one per level of a fixed list)"
    )
    e.add_argument(
        "--levels",
        help="explicit levels instead of the split's: 'START:STOP' or 'S1,S2,...' (default: the split's fixed list)",
    )
    e.add_argument(
        "--distribution-mode", help="override the run's distribution mode (e.g. hard; default: the run's)"
    )
    e.add_argument(
        "--env-option",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="override a Procgen visual option (repeatable)",
    )
    e.add_argument(
        "--shift",
        help="Procgen: evaluate under a registered visual shift (see 'heldout list'), e.g. backgrounds-off; "
        "recorded as split <split>-shift-<NAME> (default: none)",
    )
    e.add_argument(
        "--context",
        action="append",
        type=context_item,
        default=[],
        metavar="FEATURE=SPEC",
        help="contextual runs: replace the split's distribution of a feature, e.g. gravity=24.5:29.4",
    )
    e.add_argument(
        "--wrapper",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="an evaluation-only wrapper (a shift the agent never trained on), e.g. --wrapper "
        "distracting-background:mode=waves (repeatable; must keep the observation space); recorded as "
        "split <split>-wrapper-<SPEC>",
    )
    e.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="greedy actions (default: as the run's evaluation, its config's deterministic_eval)",
    )
    e.add_argument(
        "--num-envs", type=positive_int, help="parallel evaluation envs (default: the run's eval_num_envs)"
    )
    e.add_argument("--seed", type=int, default=0, help="evaluation seed")
    e.add_argument("--device", default="auto", help="torch device")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument(
        "--checkpoint",
        metavar="STEP",
        help="evaluate the weights of a checkpoint instead of the final ones: its step (e.g. 40960), "
        "step-40960 or its folder; recorded as split <split>-step-<N>",
    )
    e.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load an older run folder's model.zip (no final checkpoint), which SB3 unpickles: a pickle "
        "runs the code it carries, so only for folders you trust",
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Evaluates the run again; prints the table and the episodes file."""
    from heldout.protocol.reevaluate import run_eval

    csv_path, _ = run_eval(
        args.run_dir,
        split=args.split,
        episodes=args.episodes,
        distribution_mode=args.distribution_mode,
        levels=args.levels,
        env_options=dict(args.env_option),
        deterministic=args.deterministic,
        num_envs=args.num_envs,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        shift=args.shift,
        contexts=dict(args.context) or None,
        wrappers=args.wrapper,
        imports=args.imports,
        checkpoint=args.checkpoint,
        trust_pickle=args.trust_pickle,
    )
    print(f"episodes: {csv_path}")
    return 0
