"""Agents: stable-baselines3 algorithms, registered by name in :data:`AGENTS`.

Every on-policy agent builds on :class:`heldout.agents.ppo.PPO` and overrides its hooks only
(see docs/agents.md). Importing this package also makes heldout's torch-free vectorized Procgen env
and its wrapper adapter (``heldout.wrappers.VecEnvAdapter``) SB3 ``VecEnv`` virtual subclasses, so
SB3 algorithms and wrappers accept them as they are.
"""

from __future__ import annotations

from stable_baselines3.common.vec_env import VecEnv

from heldout.agents.drac import DrAC
from heldout.agents.ppo import PPO
from heldout.agents.rad import RAD
from heldout.agents.sg_ppo import SGPPO
from heldout.agents.sgfd import SGFD
from heldout.agents.sgqn import SGQN
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

AGENTS.register(
    "sg-ppo",
    SGPPO,
    help="PPO + SGQN's saliency consistency of V and pi and attribution prediction (Bertoin et al. 2022 port)",
)

AGENTS.register(
    "sgfd",
    SGFD,
    help="PPO with its policy loss reweighted to decorrelate features under level-classifier saliency (Huang et al. 2023)",
)

AGENTS.register(
    "sgqn",
    SGQN,
    help="DQN + SGQN's saliency consistency of Q and attribution prediction, rho 0.9 (Bertoin et al. 2022)",
)

#: Agents that take an ``augmentation`` keyword (``heldout train --augmentation NAME``).
AUGMENTED_AGENTS = ("rad", "drac")

from heldout.wrappers.base import VecEnvAdapter  # noqa: E402

VecEnv.register(VecEnvAdapter)  # heldout's wrappers on vectorized envs: an SB3 VecEnv too

try:
    from heldout.envs.procgen import ProcgenVecEnv
except ImportError:  # pragma: no cover - the Procgen env is optional here
    ProcgenVecEnv = None
else:
    VecEnv.register(ProcgenVecEnv)

__all__ = ["AGENTS", "AUGMENTED_AGENTS", "PPO", "RAD", "SGFD", "SGPPO", "SGQN", "DrAC", "UCBDrAC"]
