"""Agents: stable-baselines3 algorithms, registered by name in :data:`AGENTS`.

Every on-policy agent builds on :class:`heldout.agents.ppo.PPO` and overrides its hooks only
(see docs/agents.md). Importing this package also makes heldout's torch-free vectorized Procgen env
an SB3 ``VecEnv`` (a virtual subclass), so SB3 algorithms and wrappers accept it as it is.
"""

from __future__ import annotations

from stable_baselines3.common.vec_env import VecEnv

from heldout.agents.ppo import PPO
from heldout.registry import Registry

#: Agent name -> SB3 algorithm class.
AGENTS = Registry[type]("agent")
AGENTS.register(
    "ppo",
    PPO,
    help="PPO with the Procgen reference loss and hyper-parameters, IMPALA-CNN (Cobbe et al. 2020)",
)

try:
    from heldout.envs.procgen import ProcgenVecEnv
except ImportError:  # pragma: no cover - the Procgen env is optional here
    ProcgenVecEnv = None
else:
    VecEnv.register(ProcgenVecEnv)

__all__ = ["AGENTS", "PPO"]
