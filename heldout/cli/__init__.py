"""The ``heldout`` command (also ``python -m heldout``).

    heldout train --env coinrun --agent ppo --timesteps 1000000 --num-levels 200 --seed 0 --out runs
    heldout train --preset quickstart        # make run: MiniGrid, 5 training levels, a gap in ~3 min
    heldout train --import my_agent.py --agent my-agent --env coinrun
    heldout eval RUN_DIR --split test --episodes 100 [--distribution-mode hard]
    heldout collect RUN_DIR --steps N --out DIR [--checkpoint STEP ...] [--epsilon E | --deterministic]
    heldout train --agent bc --dataset DIR --timesteps N   # offline: learns from a dataset
    heldout saliency RUN_DIR --split test --episodes 4 --out DIR [--target value|log_prob|q]
    heldout train --preset cartpole-gravity-extrapolation [--test-context gravity=19.6:29.4]
    heldout eval RUN_DIR --shift backgrounds-off
    heldout report RUN_DIR... --out DIR
    heldout stats FILE.json [--mode easy|hard] [--reps N] [--seed S] [--json]
    heldout sweep SPEC.yaml [--dry-run] [--workers N] [--max-retries N]
    heldout findings list | run NAME [--scale cpu|paper] [--dry-run] [--workers N] | report NAME
    heldout levels check --env maze --train 0:200 --test 100000000:100001000 [--all] [--json PATH]
    heldout list
    heldout bench throughput

Bad input (an unknown env or agent, an overlapping split, a non-positive number, an unwritable
``--out``) prints one line on stderr and exits with code 2, before anything is created.
"""

from __future__ import annotations

import argparse
import sys

from heldout.cli import (
    bench,
    catalogue,
    collect,
    evaluate,
    findings,
    levels,
    report,
    saliency,
    stats,
    sweep,
    train,
)
from heldout.cli.common import Parser, UsageError
from heldout.protocol.status import TrainingDiverged

#: The commands, each a module with ``add_parser(sub)`` and ``run(args, argv) -> exit code``.
COMMANDS = {
    "train": train,
    "collect": collect,
    "eval": evaluate,
    "saliency": saliency,
    "report": report,
    "stats": stats,
    "sweep": sweep,
    "findings": findings,
    "levels": levels,
    "list": catalogue,
    "bench": bench,
}

EXAMPLES = """examples:
  heldout train --preset quickstart                      # make run: learns 5 MiniGrid levels, shows the gap (~3 min)
  heldout train --preset procgen-quickstart              # the Procgen protocol on coinrun in minutes on a CPU
  heldout train --env coinrun --timesteps 25000000 --num-levels 200 --seed 1
  heldout eval runs/coinrun/ppo/seed0-20260101-120000 --split test --episodes 500
  heldout train --import docs/examples/l2_ppo.py --agent l2-ppo --env coinrun   # your agent, one file
  heldout eval RUN_DIR --distribution-mode hard          # zero-shot under settings never trained on
  heldout saliency RUN_DIR --split test --episodes 4 --out saliency   # overlays, GIFs, focus metric
  heldout eval RUN_DIR --shift monochrome-assets         # a Procgen visual shift of the test levels
  heldout eval RUN_DIR --wrapper distracting-background:mode=waves   # any env: an evaluation-only wrapper
  heldout train --env starpilot --wrapper frame-stack:k=2 --wrapper episode-stats   # training wrappers
  heldout train --preset cartpole-gravity-extrapolation  # contexts: train gravity 4.9-14.7, test 14.7-29.4
  heldout train --preset minigrid-doorkey                # MiniGrid DoorKey 6x6: 5 training levels, ~1 min
  heldout train --preset cartpole-gravity-extrapolation --test-context gravity=19.6:29.4
  heldout eval RUN_DIR --context gravity=24.5:29.4       # a contextual run on contexts of your choice
  heldout report runs/coinrun runs/starpilot --out report   # tables, CIs, plots, published figures
  heldout stats report/scores_test.json                   # IQM & co. for {agent: {game: [scores]}}
  heldout sweep docs/examples/sweep-tiny.yaml --dry-run   # a grid of runs: the plan; without --dry-run, run it
  heldout findings run gap-few-levels --workers 2        # a known result, run and decided (docs/findings.md)
  heldout levels check --env maze                        # distinct layouts; test levels that repeat training ones
  heldout collect RUN_DIR --steps 100000 --out data/doorkey   # a dataset of a trained agent (docs/offline.md)
  heldout train --preset minigrid-doorkey --agent bc --dataset data/doorkey --timesteps 200000   # offline
  heldout list
"""


def build_parser() -> argparse.ArgumentParser:
    from heldout import __version__

    parser = Parser(
        prog="heldout",
        description="Train RL agents on some levels and measure them zero-shot on held-out levels.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"heldout {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def _command_options(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[str, list[str]]:
    """The prog and the option strings of the innermost (sub)command ``argv`` names (``heldout findings
    run``'s for ``findings run NAME --sedes 5``; the top-level parser's when it names none)."""
    words = [a for a in argv if not a.startswith("-")]
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = next((w for w in words if sub is not None and w in sub.choices), None)
        if sub is None or name is None:
            return parser.prog, [o for a in parser._actions for o in a.option_strings]
        parser, words = sub.choices[name], words[words.index(name) + 1 :]


def _misspelt_flags(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The flags ``argv`` gives that its command's parser does not know (nor abbreviates): when
    argparse stops at a required flag first (``--stpes`` for ``--steps``), these say why."""
    options = _command_options(parser, argv)[1]
    flags = [a.split("=", 1)[0] for a in argv if a.startswith("--") and a != "--"]
    return [f for f in flags if not any(o.startswith(f) for o in options)]


def _unknown_flags(parser: argparse.ArgumentParser, argv: list[str], extra: list[str]) -> str:
    """``heldout CMD: error: unrecognized arguments: ...`` from the command itself, with the flag it
    most resembles (argparse says it from the top-level parser, naming neither)."""
    import difflib

    prog, options = _command_options(parser, argv)
    flag = next((e.split("=", 1)[0] for e in extra if e.startswith("-")), None)
    close = difflib.get_close_matches(flag, options, n=1, cutoff=0.6) if flag else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{prog}: error: unrecognized arguments: {' '.join(extra)}{hint} (see '{prog} --help')"


def _one_line(message: str) -> str:
    """A message on one line (a value's repr may span several, e.g. a numpy array's)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``heldout`` console script; returns the exit code."""
    import heldout  # noqa: F401  (silences gym's banner before anything imports it)

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        try:
            args, extra = parser.parse_known_args(argv)
        except UsageError as exc:  # a required flag missing because it was misspelt: name the typo
            unknown = _misspelt_flags(parser, argv)
            if "arguments are required" not in str(exc) or not unknown:
                raise
            raise UsageError(_unknown_flags(parser, argv, unknown)) from None
        if extra:
            raise UsageError(_unknown_flags(parser, argv, extra))
        if args.command is None:
            parser.print_help()
            return 2
        if args.command in ("list", "train"):
            from heldout.protocol.plugins import import_plugins

            import_plugins(args.imports or [])  # before the preset, agent and env names are looked up
        return COMMANDS[args.command].run(args, argv)
    except UsageError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        line = f"heldout {getattr(args, 'command', '')}: error: {message}".replace("  ", " ")
        print(_one_line(line), file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"heldout {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk or a folder gone unwritable mid-run: the run folder says failed
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"heldout {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("heldout: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
