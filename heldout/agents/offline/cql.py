"""Discrete CQL on a Double DQN (Kumar et al. 2020, "Conservative Q-Learning"), as gen_dgrl runs it.

Loss: Huber(Q(s,a), y) + alpha * mean[logsumexp_a' Q(s,a') - Q(s,a)], with the Double-DQN target
y = r + gamma (1 - terminated) Q_target(s', argmax_a' Q(s',a')) and a fixed alpha (4.0; no Lagrangian).
The target is a hard copy every ``target_update_freq`` updates (at updates 0, f, 2f, ...).
Acting: argmax Q, epsilon-greedy with ``eval_epsilon`` (0.001), per env slot.

References:
    Kumar, Zhou, Tucker, Levine 2020. https://arxiv.org/abs/2006.04779. Mediratta et al. 2024
    (gen_dgrl ``offline/agents/ddqn_cql.py``); docs/offline-algorithms.md lists the differences.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from heldout.agents.offline.base import (
    NON_NEGATIVE,
    OfflineAgent,
    Range,
    make_encoder,
    with_head,
)


def double_dqn_target(
    q_next_online: torch.Tensor,
    q_next_target: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """``r + gamma (1 - terminated) Q_target(s', argmax_a' Q_online(s', a'))`` for (B, A) Q-values."""
    best = q_next_online.argmax(dim=1, keepdim=True)
    return reward + gamma * (1.0 - terminated) * q_next_target.gather(1, best).squeeze(1)


def cql_penalty(q: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``mean[logsumexp_a' Q(s,a') - Q(s,a)]`` for Q-values (B, A) and taken actions (B,)."""
    return (torch.logsumexp(q, dim=1) - q.gather(1, action[:, None]).squeeze(1)).mean()


class CQL(OfflineAgent):
    """Discrete CQL(H) with a fixed alpha on a Double DQN (the contract's :class:`OfflineAgent`)."""

    name: ClassVar[str] = "cql"
    defaults: ClassVar[dict[str, Any]] = {
        "lr": 5e-4,
        "batch_size": 256,
        "gamma": 0.99,
        "alpha": 4.0,
        "target_update_freq": 1000,
        "eval_epsilon": 0.001,
    }
    ranges: ClassVar[dict[str, Range]] = {
        "alpha": NON_NEGATIVE,
    }

    def __init__(self, observation_space: Any, action_space: Any, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        with self.init_seeded():
            q = with_head(make_encoder(observation_space), self.n_actions).to(self.device)
        self.networks = {"q": q, "target": copy.deepcopy(q).requires_grad_(False)}
        self.optimizers = {"q": torch.optim.Adam(q.parameters(), lr=self.kwargs["lr"])}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        k = self.kwargs
        q_net, target = self.networks["q"], self.networks["target"]
        self.set_training(True)
        action = batch["action"].long()
        with torch.no_grad():
            y = double_dqn_target(
                q_net(batch["next_obs"]),
                target(batch["next_obs"]),
                batch["reward"].float(),
                batch["terminated"].float(),
                k["gamma"],
            )
        q = q_net(batch["obs"])
        q_taken = q.gather(1, action[:, None]).squeeze(1)
        td_loss = F.smooth_l1_loss(q_taken, y)
        penalty = cql_penalty(q, action)
        loss = td_loss + k["alpha"] * penalty
        self.gradient_step("q", loss)
        self.copy_targets(k["target_update_freq"], {"target": "q"})
        self.step += 1
        return {
            "loss": loss.item(),
            "td_loss": td_loss.item(),
            "cql_penalty": penalty.item(),
            "q_mean": q_taken.mean().item(),
        }

    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        greedy = self.networks["q"](obs).argmax(dim=1)
        return greedy if deterministic else self.epsilon_greedy(greedy, self.kwargs["eval_epsilon"])
