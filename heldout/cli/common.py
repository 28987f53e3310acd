"""What every ``heldout`` command shares: one-line usage errors and the argument types.

Bad command-line input raises :class:`UsageError` (argparse's own errors too, through :class:`Parser`),
which :func:`heldout.cli.main` prints as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

# one formatter for the commands and the benchmarks' own parsers (bench sits below cli)
from heldout.bench.common import HelpFormatter  # noqa: F401
from heldout.protocol.checks import parse_value


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr with exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    if not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r} (no key)")
    return key.strip().replace("-", "_"), parse_value(value)


def context_item(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"expected FEATURE=SPEC (e.g. gravity=4.9:14.7, gravity=9.8, gravity=5,10,15), got {text!r}"
        )
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


#: The largest count a flag takes (int64, what SB3 and numpy count steps in).
MAX_COUNT = 2**63 - 1


def positive_int(text: str) -> int:
    """A positive whole number, written as an integer or in exponent form (``25e6``, ``2.5e7``).

    Refused, each naming the text: a fraction (``100.5``: a count cannot be rounded silently), NaN or
    an infinity (``1e400``), zero or less, and more than :data:`MAX_COUNT`.
    """
    stripped = text.strip()
    try:
        value = int(stripped)
    except ValueError:
        try:
            number = float(stripped)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
        if not math.isfinite(number):
            raise argparse.ArgumentTypeError(
                f"expected a positive integer, got {text!r} (not a finite number)"
            ) from None
        if not number.is_integer():
            raise argparse.ArgumentTypeError(
                f"expected a positive integer, got {text!r} (not a whole number)"
            ) from None
        value = int(number)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_COUNT} (2**63 - 1), got {text!r}")
    return value


def add_import_flag(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=None,
        metavar="FILE_OR_MODULE",
        help=help,
    )
