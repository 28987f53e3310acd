"""The sweep tests' shared fixture: a working folder with the flaky agent's plugin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.fixture()
def root(tmp_path: Path):
    """A folder with the flaky agent's plugin (unregistered again after the test); the Ray tests
    use it too."""
    from tests.sweep.test_sweep_local import FLAKY

    (tmp_path / "sweep_flaky.py").write_text(FLAKY)
    yield tmp_path
    from heldout.agents import AGENTS

    if "sweep-flaky-ppo" in AGENTS.names():
        AGENTS.unregister("sweep-flaky-ppo")
    sys.modules.pop("sweep_flaky", None)
