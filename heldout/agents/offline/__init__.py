"""Offline agents: learn from a fixed dataset, registered by name in :data:`OFFLINE_AGENTS`.

Every agent subclasses :class:`heldout.agents.offline.base.OfflineAgent` (the interface the offline
training loop drives; docs/offline-algorithms.md describes each algorithm and its references).
"""

from __future__ import annotations

from heldout.agents.offline.base import OfflineAgent
from heldout.registry import Registry

#: Offline agent name -> :class:`OfflineAgent` subclass.
OFFLINE_AGENTS = Registry[type]("offline agent")

from heldout.agents.offline.bc import BC  # noqa: E402

OFFLINE_AGENTS.register(
    "bc", BC, help="behavioural cloning: cross-entropy on the dataset's actions, sampled acting (gen_dgrl)"
)

__all__ = ["BC", "OFFLINE_AGENTS", "OfflineAgent"]
