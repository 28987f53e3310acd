"""Agents: stable-baselines3 algorithms, registered by name in :data:`AGENTS`.

Every on-policy agent builds on :class:`heldout.agents.ppo.PPO` and overrides its hooks only
(see docs/agents.md). Importing this package also makes heldout's torch-free vectorized Procgen env
an SB3 ``VecEnv`` (a virtual subclass), so SB3 algorithms and wrappers accept it as it is.
"""

from __future__ import annotations

from stable_baselines3.common.vec_env import VecEnv

from heldout.agents.drac import DrAC
from heldout.agents.ppo import PPO
from heldout.agents.rad import RAD
from heldout.agents.ucb_drac import UCBDrAC
from heldout.registry import Registry

#: Agent name -> SB3 algorithm class.
AGENTS = Registry[type]("agent")
AGENTS.register(
    "ppo",
    PPO,
    help="PPO with the Procgen reference loss and hyper-parameters, IMPALA-CNN (Cobbe et al. 2020)",
)
AGENTS.register(
    "rad",
    RAD,
    help="PPO on observations augmented at collection time, one draw per env and rollout (Laskin et al. 2020)",
)
AGENTS.register(
    "drac",
    DrAC,
    help="PPO + policy and value invariance regularisers, alpha_r 0.1 (Raileanu et al. 2021)",
)
AGENTS.register(
    "ucb-drac",
    UCBDrAC,
    help="DrAC with the augmentation picked per update by a sliding-window UCB bandit (Raileanu et al. 2021)",
)

#: Agents that take an ``augmentation`` keyword (``heldout train --augmentation NAME``).
AUGMENTED_AGENTS = ("rad", "drac")

try:
    from heldout.envs.procgen import ProcgenVecEnv
except ImportError:  # pragma: no cover - the Procgen env is optional here
    ProcgenVecEnv = None
else:
    VecEnv.register(ProcgenVecEnv)

__all__ = ["AGENTS", "AUGMENTED_AGENTS", "PPO", "RAD", "DrAC", "UCBDrAC"]
