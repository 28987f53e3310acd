"""Offline agents: learn from a fixed dataset, registered by name in :data:`OFFLINE_AGENTS`.

Every agent subclasses :class:`heldout.agents.offline.base.OfflineAgent` (the interface the offline
training loop drives; docs/offline-algorithms.md describes each algorithm and its references).
"""

from __future__ import annotations

from heldout.agents.offline.base import OfflineAgent
from heldout.agents.offline.bc import BC
from heldout.agents.offline.bcq import BCQ
from heldout.agents.offline.cql import CQL
from heldout.agents.offline.dt import DecisionTransformer
from heldout.agents.offline.iql import IQL
from heldout.registry import Registry

#: Offline agent name -> :class:`OfflineAgent` subclass.
OFFLINE_AGENTS = Registry[type]("offline agent")
OFFLINE_AGENTS.register(
    "bc", BC, help="behavioural cloning: cross-entropy on the dataset's actions, sampled acting (gen_dgrl)"
)
OFFLINE_AGENTS.register(
    "bcq",
    BCQ,
    help="discrete BCQ: Q-learning over the actions an imitation head finds likely, threshold 0.5 (Fujimoto et al. 2019)",
)
OFFLINE_AGENTS.register(
    "cql",
    CQL,
    help="discrete CQL on a Double DQN, fixed alpha 4 (Kumar et al. 2020, as gen_dgrl runs it)",
)
OFFLINE_AGENTS.register(
    "iql",
    IQL,
    help="discrete IQL: expectile V 0.8, advantage-weighted actor beta 3 (Kostrikov et al. 2021, as gen_dgrl adapts it)",
)
OFFLINE_AGENTS.register(
    "dt",
    DecisionTransformer,
    help="Decision Transformer conditioned on 5x the best return, context 10 (Chen et al. 2021)",
)

__all__ = ["BC", "BCQ", "CQL", "IQL", "OFFLINE_AGENTS", "DecisionTransformer", "OfflineAgent"]
