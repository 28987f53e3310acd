"""``heldout stats``: IQM, CIs and P(improvement) for a ``{agent: {game: [scores]}}`` file."""

from __future__ import annotations

import argparse
from typing import Any

from heldout.cli.common import HelpFormatter, positive_int


def add_parser(sub: Any) -> None:
    """Adds ``heldout stats`` to the subcommands ``sub``."""
    st = sub.add_parser(
        "stats",
        help="aggregate table (IQM, CIs, P(improvement)) for a {agent: {game: [scores]}} JSON file",
        description="Print, per agent, the min-max normalised mean, median, IQM and optimality gap over the "
        "games every agent ran, each with its 95%% stratified-bootstrap CI, and the probability of "
        "improvement between agents (Agarwal et al., 2021). FILE.json holds raw returns in the published "
        "layout {agent: {game: [one score per run]}}, as 'heldout report' exports them; games without "
        "normalisation constants are left out and agents with no game in common are aggregated over their "
        "own games, each said in a note.",
        formatter_class=HelpFormatter,
    )
    st.add_argument(
        "file", metavar="FILE.json", help="scores in the layout {agent: {game: [one score per run]}}"
    )
    st.add_argument("--mode", default="easy", help="normalisation constants: easy or hard")
    st.add_argument("--reps", type=positive_int, default=2000, help="bootstrap resamples")
    st.add_argument("--seed", type=int, default=0, help="seed of the bootstrap generators")
    st.add_argument(
        "--reference", metavar="AGENT", help="add each agent's mean return as a %% of this agent's (e.g. PPO)"
    )
    st.add_argument(
        "--json",
        action="store_true",
        help='print {agent: {"mean"|"median"|"iqm"|"optimality_gap": {"value": v, "ci": [low, high]}}}',
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Prints the aggregate table (or JSON) of a scores file."""
    import json
    import sys

    from heldout.analysis.scores_file import (
        check_reference,
        format_scores_file_stats,
        reference_normalized_means,
        scores_file_stats,
    )
    from heldout.analysis.stats import load_scores

    scores = load_scores(args.file)
    if args.reference is not None:  # before the bootstrap, not after it
        check_reference(scores, args.reference)
    agg, poi, games, notes = scores_file_stats(scores, args.mode, args.reps, args.seed)
    relative = None
    if args.reference is not None:
        relative = reference_normalized_means(
            scores, args.reference, args.reps, args.seed, games=games or None
        )
    if args.json:
        data = {a: {m: e.to_dict() for m, e in per.items()} for a, per in agg.items()}
        print(json.dumps(data, indent=2))
        for note in notes:  # stdout stays JSON
            print(f"heldout stats: note: {note}", file=sys.stderr)
    else:
        text = format_scores_file_stats(
            agg,
            poi,
            games,
            args.mode,
            args.reps,
            args.seed,
            relative=relative,
            reference=args.reference,
            notes=notes,
        )
        print(text)
    return 0
