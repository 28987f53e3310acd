"""The sweep's one progress line, and the step each run reached, read from its folder.

Both backends follow their runs the same way: through each run folder's ``status.json`` (the step it
reached, written by the run itself every few seconds), so the driver needs no channel to its workers
but the folder. :class:`Display` turns the counts into one line for the whole sweep: runs done,
running and failed, steps, and the overall ETA.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def step_of(path: Path) -> int:
    """The step the run in ``path`` last reported (0: none yet, or an unreadable status)."""
    try:
        step = json.loads((path / "status.json").read_text()).get("step") or 0
    except (OSError, ValueError, AttributeError, RecursionError):
        return 0
    # untrusted: only a whole number in int64's range counts (not 1e400, 10**400, "12" or true)
    return step if isinstance(step, int) and not isinstance(step, bool) and 0 <= step < 2**63 else 0


def clock(seconds: float) -> str:
    """``seconds`` as ``H:MM:SS``."""
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Display:
    """The sweep's one progress line: rewritten in place on a terminal, a line every
    ``every`` seconds (and at each run's end, as its own line) elsewhere."""

    def __init__(self, stream: Any, total_runs: int, total_steps: int, show: bool, every: float = 30.0):
        self.stream, self.total_runs, self.total_steps, self.show = stream, total_runs, total_steps, show
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every, self.last, self.start, self.width = every, time.monotonic(), time.monotonic(), 0

    def line(self, done: int, running: int, failed: int, steps: int) -> str:
        elapsed = time.monotonic() - self.start
        eta = "-"
        if steps > 0 and self.total_steps > steps:
            eta = clock(elapsed * (self.total_steps - steps) / steps)
        elif self.total_steps and steps >= self.total_steps:
            eta = "0:00:00"
        pct = 100.0 * steps / self.total_steps if self.total_steps else 100.0
        return (
            f"sweep: {done}/{self.total_runs} done, {running} running, {failed} failed | "
            f"{steps:,}/{self.total_steps:,} steps ({pct:.0f}%) | {clock(elapsed)} elapsed, ETA {eta}"
        )

    def update(self, *counts: int, force: bool = False) -> None:
        if not self.show:
            return
        now = time.monotonic()
        if self.tty:
            if force or now - self.last >= 0.5:
                text = self.line(*counts)
                self.stream.write("\r" + text.ljust(self.width))
                self.stream.flush()
                self.width, self.last = len(text), now
        elif force or now - self.last >= self.every:
            print(self.line(*counts), file=self.stream, flush=True)
            self.last = now

    def event(self, text: str) -> None:
        """A line of its own (a run started, ended, failed), above the progress line."""
        if self.tty and self.show:
            self.stream.write("\r" + " " * self.width + "\r")
        print(text, file=self.stream, flush=True)
        self.width = 0

    def close(self) -> None:
        """Ends the line in place on a terminal."""
        if self.show and self.tty:
            self.stream.write("\n")


__all__ = ["Display", "clock", "step_of"]
