"""heldout: a gym for zero-shot generalization in reinforcement learning.

Train an agent on a set of levels (or contexts) and measure, without further training, how it does
on levels it never saw. Importing ``heldout`` registers the gymnasium ids ``heldout/<game>-v0``.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

__version__ = "0.1.0"


def _import_gym_quietly() -> None:
    """Imports the legacy ``gym`` package (pulled in by procgen and SB3) without its banner.

    ``gym`` prints a deprecation notice to stderr when imported; heldout never uses ``gym`` itself, and
    the notice would otherwise sit on top of every command's output and error message.
    """
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import gym  # noqa: F401
        except Exception:  # pragma: no cover - gym absent or broken: procgen will say so itself
            pass


_import_gym_quietly()
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from heldout.envs import register_gymnasium_ids  # noqa: E402

register_gymnasium_ids()

__all__ = ["__version__"]
