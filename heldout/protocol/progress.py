"""One progress bar for a whole run, which says what the run is doing.

SB3's own bar (``learn(progress_bar=True)``) counts env steps only: it stands still through every
update and every evaluation, which on a CPU is most of a run. :class:`RunProgress` is one tqdm bar
(on stderr, as tqdm writes) over the run's env steps whose description names the phase:
``rollout``, ``update``, ``eval train 12/50 ep`` (periodic evaluations), ``final eval test 37/100 ep``.
A heartbeat thread redraws it every ``heartbeat`` seconds, so its clock keeps moving through long
updates. A run without progress (``heldout train --no-progress``) builds no bar and prints nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: What an evaluation calls after each finished episode: ``report(episodes_done, episodes_total)``.
EpisodeReport = Callable[[int, int], None]


class RunProgress:
    """A tqdm bar over a run's env steps whose description is the run's current phase.

    Args:
        total: The env steps the run trains for.
        file: Where the bar is drawn (default: ``sys.stderr``).
        heartbeat: Seconds between redraws while nothing else updates the bar (0: no thread).
    """

    def __init__(self, total: int, file: Any = None, heartbeat: float = 1.0) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=int(total),
            desc="rollout",
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            file=file if file is not None else sys.stderr,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if heartbeat > 0:
            self._thread = threading.Thread(
                target=self._beat, args=(heartbeat,), name="heldout-progress", daemon=True
            )
            self._thread.start()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            with self._lock:
                if not self._stop.is_set():
                    self.bar.refresh()

    @property
    def phase(self) -> str:
        """The bar's current description."""
        return str(self.bar.desc)

    def set_phase(self, text: str, refresh: bool = False) -> None:
        """Shows ``text`` as the bar's description (drawn at the next update, or now with ``refresh``)."""
        with self._lock:
            self.bar.set_description_str(text, refresh=refresh)

    def steps(self, num_timesteps: int) -> None:
        """Moves the bar to ``num_timesteps`` env steps (a rollout may end past the target)."""
        with self._lock:
            n = int(num_timesteps)
            if n > self.bar.total:
                self.bar.total = n
            if n > self.bar.n:
                self.bar.update(n - self.bar.n)

    def episodes(self, label: str) -> EpisodeReport:
        """A report for an evaluation's episodes: shows ``"<label> <done>/<total> ep"`` as the phase."""

        last = [0.0]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            draw = done in (0, total) or now - last[0] >= 0.25
            if draw:
                last[0] = now
            self.set_phase(f"{label} {done}/{total} ep", refresh=draw)

        return report

    def callback(self) -> Any:
        """An SB3 callback that moves the bar with the env steps and shows ``rollout`` / ``update``."""
        from stable_baselines3.common.callbacks import BaseCallback

        progress = self

        class PhaseCallback(BaseCallback):
            """Rollout start: ``rollout``; each step: the step count; rollout end: ``update``."""

            def _on_rollout_start(self) -> None:
                progress.set_phase("rollout")

            def _on_step(self) -> bool:
                progress.steps(self.num_timesteps)
                return True

            def _on_rollout_end(self) -> None:
                progress.steps(self.num_timesteps)
                progress.set_phase("update", refresh=True)

        return PhaseCallback()

    def close(self, phase: str = "done") -> None:
        """Stops the heartbeat, shows ``phase`` and closes the bar (it stays on screen, as tqdm's do)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if not self.bar.disable:
                self.bar.set_description_str(phase, refresh=False)
            self.bar.close()

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close("done" if exc[0] is None else "stopped")


__all__ = ["EpisodeReport", "RunProgress"]
