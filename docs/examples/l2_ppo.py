"""A heldout agent in one file: PPO with an L2 penalty on the network's weights.

Cobbe et al. 2019, "Quantifying Generalization in Reinforcement Learning", ICML, section 4.2.
https://arxiv.org/abs/1812.02341. On CoinRun an L2 penalty on the weights narrows the gap between
training and held-out levels. Their code (openai/coinrun, ``coinrun/ppo2.py``) adds
``L2_WEIGHT * sum(tf.nn.l2_loss(w))`` over every weight (biases excluded) to the PPO loss, with
``tf.nn.l2_loss(w) = sum(w ** 2) / 2``. They swept L2_WEIGHT up to 2.5e-4 and used 1e-4 when they
combined regularisers.

The agent overrides a single hook of heldout's PPO, ``auxiliary_loss``, and never copies the PPO
loss. It also registers itself, so the command line finds it (docs/adding-an-agent.md):

    heldout train --import docs/examples/l2_ppo.py --agent l2-ppo --env coinrun
    heldout train --import docs/examples/l2_ppo.py --agent l2-ppo --agent-arg l2_coef=2.5e-4 ...
    heldout eval RUN_DIR    # imports this file again (config.yaml records it)
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.type_aliases import RolloutBufferSamples

from heldout.agents import AGENTS, PPO


class L2PPO(PPO):
    """PPO plus ``l2_coef * sum(w ** 2) / 2`` over the policy's weights (Cobbe et al. 2019).

    The weights are the parameters with two or more dimensions: linear and convolution kernels,
    the value and policy heads included. Biases and a Gaussian policy's ``log_std`` are left out.
    Unlike Adam's ``weight_decay``, the penalty is part of the loss. So, as in the reference, it goes
    through the global gradient-norm clip and Adam's normalisation, and it spares the biases.

    Args:
        policy, env: As :class:`heldout.agents.PPO`.
        l2_coef: Weight of the penalty (the reference's ``L2_WEIGHT``; 1e-4).
        **kwargs: Everything :class:`heldout.agents.PPO` takes (``n_steps``, ``ent_coef``, ...).

    Logged: ``train/l2_penalty`` (``sum(w ** 2) / 2``, before the coefficient).
    """

    def __init__(
        self, policy: Any = "CnnPolicy", env: Any = None, l2_coef: float = 1e-4, **kwargs: Any
    ) -> None:
        if isinstance(l2_coef, bool) or not isinstance(l2_coef, (int, float)) or l2_coef < 0:
            raise ValueError(f"l2_coef must be a number >= 0, got {l2_coef!r}")
        self.l2_coef = float(l2_coef)  # set before super().__init__: SB3's save/load keeps it
        super().__init__(policy, env, **kwargs)

    def auxiliary_loss(
        self, batch: RolloutBufferSamples, outputs: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        weights = [p for p in self.policy.parameters() if p.ndim >= 2]
        penalty = 0.5 * torch.stack([w.pow(2).sum() for w in weights]).sum()
        # a 0-d tensor in the logs: no device synchronisation per minibatch
        return self.l2_coef * penalty, {"l2_penalty": penalty.detach()}


AGENTS.register(
    "l2-ppo",
    L2PPO,
    help="PPO + L2 penalty on the weights, 1e-4 (Cobbe et al. 2019); docs/examples/l2_ppo.py",
)
