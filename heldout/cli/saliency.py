"""``heldout saliency``: saliency maps of a saved run (PNG overlays, GIFs, the focus metric)."""

from __future__ import annotations

import argparse
from typing import Any

from heldout.cli.common import HelpFormatter, add_import_flag, positive_int


def add_parser(sub: Any) -> None:
    """Adds ``heldout saliency`` to the subcommands ``sub``."""
    sa = sub.add_parser(
        "saliency",
        help="saliency maps of a saved run: PNG overlays, animated GIFs and the focus metric",
        description="Play one episode on each of the first K levels of a split's fixed evaluation list with "
        "the run's final model and compute its saliency map at every step (guided backprop or the plain "
        "gradient of V(s), log pi(a|s) or Q(s,a) w.r.t. the pixels). Writes, into --out, a contact-sheet PNG and "
        "an animated GIF per episode (frame beside frame-with-map) and focus-<split>.json: the share of the "
        "saliency mass on the foreground (the same level rendered without background), per episode and "
        "on average, beside the share of the frame the foreground covers (what a uniform map would score).",
        formatter_class=HelpFormatter,
    )
    sa.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by 'heldout train'")
    add_import_flag(
        sa,
        "import this .py file or module instead of those the run recorded (e.g. a file that moved; repeatable)",
    )
    sa.add_argument("--split", default="test", help="train, test or validation")
    sa.add_argument("--episodes", type=positive_int, default=4, help="episodes (one per level)")
    sa.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the images and focus-<split>.json"
    )
    sa.add_argument(
        "--target", help="what is attributed: value, log_prob or q (default: q for Q-networks, else value)"
    )
    sa.add_argument("--method", default="guided_backprop", help="guided_backprop or gradient")
    sa.add_argument("--max-steps", type=positive_int, default=500, help="steps per episode at most")
    sa.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="greedy actions (default: as the run's evaluation, its config's deterministic_eval)",
    )
    sa.add_argument("--no-images", action="store_true", help="only the focus metric")
    sa.add_argument("--seed", type=int, default=0, help="env seed")
    sa.add_argument("--device", default="auto", help="torch device")
    sa.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load an older run folder's model.zip (no final checkpoint), which SB3 unpickles: a pickle "
        "runs the code it carries, so only for folders you trust",
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Writes the saliency images and prints the focus metric."""
    from heldout.protocol.saliency import format_focus, run_saliency

    summary = run_saliency(
        args.run_dir,
        args.out,
        split=args.split,
        episodes=args.episodes,
        target=args.target,
        method=args.method,
        max_steps=args.max_steps,
        deterministic=args.deterministic,
        render=not args.no_images,
        device=args.device,
        seed=args.seed,
        imports=args.imports,
        trust_pickle=args.trust_pickle,
    )
    print(format_focus(summary))
    print(f"images: {args.out} ({len(summary['files'])} files)")
    return 0
