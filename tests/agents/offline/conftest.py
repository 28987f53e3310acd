"""One torch thread for the offline-agent tests: their networks are tiny, and two threads on a busy
2-core machine made each update ~15x slower (thread hand-offs, not arithmetic)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
