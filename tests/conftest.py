"""Suite-wide pytest options.

``--heldout-import FILE_OR_MODULE`` imports a user module before the tests are collected, so the
registry-parametrized tests also cover the agents, envs and augmentations it registers:

    pytest tests/agents/test_registry_agents.py --heldout-import docs/examples/l2_ppo.py
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--heldout-import",
        action="append",
        default=[],
        metavar="FILE_OR_MODULE",
        help="import a .py file or module that registers agents (envs, ...) before collection, so the "
        "registry-parametrized tests cover them (repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    specs = config.getoption("heldout_import")
    if specs:
        from heldout.protocol.plugins import import_plugins

        import_plugins(specs)


@pytest.fixture(autouse=True, scope="session")
def _sb3_logdir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SB3's ``learn`` without a logger makes a fresh ``/tmp/SB3-<time>`` folder each call: keep them
    in pytest's own temporary folder (SB3 reads ``SB3_LOGDIR``; subprocesses inherit it)."""
    os.environ.setdefault("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3-logs")))
