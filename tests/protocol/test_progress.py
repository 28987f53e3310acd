"""The run's one progress bar: phases, evaluation episodes, the heartbeat, and closing cleanly."""

from __future__ import annotations

import io
import threading
import time

from heldout.protocol.evaluate import _EpisodeCount
from heldout.protocol.progress import RunProgress


def test_the_bar_shows_phases_steps_and_evaluation_episodes() -> None:
    out = io.StringIO()
    bar = RunProgress(1000, file=out, heartbeat=0)
    bar.steps(256)
    bar.set_phase("update", refresh=True)
    report = bar.episodes("eval test")
    for done in range(6):
        report(done, 5)
    bar.steps(1024)  # a rollout may end past the target
    bar.close()
    text = out.getvalue()
    assert "update" in text and "eval test 5/5 ep" in text and "done" in text
    assert bar.bar.n == bar.bar.total == 1024


def test_the_heartbeat_redraws_while_nothing_moves_and_stops_on_close() -> None:
    out = io.StringIO()
    bar = RunProgress(10, file=out, heartbeat=0.02)
    bar.set_phase("update", refresh=True)
    before = out.getvalue().count("\r")
    time.sleep(0.3)
    assert out.getvalue().count("\r") > before + 3, "the bar stood still"
    bar.close()
    assert not any(t.name == "heldout-progress" for t in threading.enumerate())
    after = out.getvalue()
    time.sleep(0.1)
    assert out.getvalue() == after, "drawn after close"


def test_an_evaluation_reports_its_episodes_to_a_callable() -> None:
    seen: list[tuple[int, int]] = []
    count = _EpisodeCount(lambda done, total: seen.append((done, total)), 3, "eval")
    for _ in range(3):
        count.update()
    count.close()
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    quiet = _EpisodeCount(False, 3, "eval")
    quiet.update()
    assert quiet.bar is None and quiet.report is None
