"""``heldout levels check``: how many distinct levels a training and a test set hold (docs/levels.md)."""

from __future__ import annotations

import argparse
from typing import Any

from heldout.cli.common import HelpFormatter, Parser, UsageError, add_import_flag, key_value
from heldout.splits import DEFAULT_TEST_START

#: The sets checked when none are given: the Procgen protocol's 200 training and 1,000 test levels.
DEFAULT_TRAIN = "0:200"
DEFAULT_TEST = f"{DEFAULT_TEST_START}:{DEFAULT_TEST_START + 1000}"


def add_parser(sub: Any) -> None:
    """Adds ``heldout levels`` (and its ``check``) to the subcommands ``sub``."""
    lv = sub.add_parser(
        "levels",
        help="level identity: distinct training levels, test levels that duplicate training levels",
        description="Questions about levels. 'heldout levels check --help' for the one there is.",
        formatter_class=HelpFormatter,
    )
    what = lv.add_subparsers(dest="levels_command", metavar="CHECK", parser_class=Parser)
    c = what.add_parser(
        "check",
        help="fingerprint a training and a test set: distinct layouts and looks, duplicates (which, with which)",
        description="Fingerprint every level of a training set and a test set, by layout (Procgen with "
        "visual variety off: use_backgrounds=False, restrict_themes=True, use_monochrome_assets=True, "
        "the whole level in view) and by look (under the given --env-option switches), and report the "
        "distinct training layouts and looks, the test levels that duplicate a training level (which, "
        "with which) and the test levels that duplicate an earlier test level. Seeded envs (MiniGrid) "
        "have one fingerprint, their layout. 'heldout train' drops, by default, every held-out level "
        "with a training level's layout (--leakage; docs/levels.md). Writes nothing unless --json.",
        formatter_class=HelpFormatter,
    )
    c.add_argument("--env", help="a Procgen game or seeded env, e.g. maze or minigrid-doorkey-6x6")
    c.add_argument("--all", action="store_true", help="every Procgen game, one row each (instead of --env)")
    c.add_argument("--train", default=DEFAULT_TRAIN, help="training levels 'START:STOP' or 'S1,S2,...'")
    c.add_argument("--test", default=DEFAULT_TEST, help="test levels 'START:STOP' or 'S1,S2,...'")
    c.add_argument("--distribution-mode", default="easy", help="Procgen distribution mode")
    c.add_argument(
        "--env-option",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a Procgen visual option the look is taken under, e.g. use_backgrounds=false (repeatable)",
    )
    c.add_argument("--json", metavar="PATH", help="also write the whole report (every pair) as JSON here")
    c.add_argument(
        "--pairs", type=int, default=8, help="pairs shown per kind of duplicate in the text report"
    )
    add_import_flag(c, "a .py file or module that registers your own seeded env first (repeatable)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Checks the sets (every input before any level is fingerprinted), prints the report."""
    import sys

    from heldout.analysis.levels import check_all, check_inputs, levels_report, levels_table
    from heldout.protocol.plugins import import_plugins

    if args.levels_command != "check":
        raise UsageError(
            "heldout levels: error: name what to do: 'heldout levels check' (see 'heldout levels --help')"
        )
    if args.all == bool(args.env):
        raise UsageError(
            "heldout levels check: error: give --env NAME or --all (every Procgen game), "
            f"not {'both' if args.all else 'neither'} (see 'heldout levels check --help')"
        )
    if args.pairs < 0:
        raise UsageError(f"heldout levels check: error: --pairs must be 0 or more, got {args.pairs}")
    import_plugins(args.imports or [])
    options = dict(args.env_option)
    if args.all:
        from heldout.envs.procgen import PROCGEN_GAMES

        envs = list(PROCGEN_GAMES)
    else:
        envs = [args.env]
    for env in envs:  # bad input is refused before any fingerprint
        check_inputs(env, args.train, args.test, args.distribution_mode, options)
    if args.json:
        from pathlib import Path

        from heldout.protocol.run_folder import check_writable

        target = Path(args.json).expanduser()
        if target.is_dir():
            raise ValueError(f"--json {args.json!r} is a directory; give a file path")
        if not target.absolute().parent.is_dir():
            raise ValueError(
                f"--json {args.json!r}: directory {str(target.absolute().parent)!r} does not exist"
            )
        try:
            check_writable(target.absolute().parent)
        except ValueError as exc:
            raise ValueError(f"--json {args.json!r}: {exc}") from None

    def show(report: dict[str, Any]) -> None:
        print(f"checked {report['env']} in {report['seconds']:.1f} s", file=sys.stderr)

    reports = check_all(envs, args.train, args.test, args.distribution_mode, options, progress=show)
    if args.all:
        print(
            f"train {reports[0]['train']['set']}, test {reports[0]['test']['set']}, "
            f"{args.distribution_mode}{''.join(f', {k}={v}' for k, v in sorted(options.items()))}\n"
        )
        print(levels_table(reports))
    else:
        print(levels_report(reports[0], limit=args.pairs))
    if args.json:
        from heldout.protocol.run_folder import write_json

        data = {"reports": reports} if args.all else reports[0]
        path = write_json(args.json, data)
        print(f"report: {path}")
    return 0
