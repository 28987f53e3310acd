"""What every ``heldout`` command shares: one-line usage errors and the argument types.

Bad command-line input raises :class:`UsageError` (argparse's own errors too, through :class:`Parser`),
which :func:`heldout.cli.main` prints as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

# one formatter for the commands and the benchmarks' own parsers (bench sits below cli)
from heldout.bench.common import HelpFormatter  # noqa: F401


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr with exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def context_item(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"expected FEATURE=SPEC (e.g. gravity=4.9:14.7, gravity=9.8, gravity=5,10,15), got {text!r}"
        )
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def positive_int(text: str) -> int:
    try:
        value = int(float(text)) if ("e" in text.lower() or "." in text) else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
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
