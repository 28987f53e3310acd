"""Discrete BCQ (Fujimoto et al. 2019, "Benchmarking Batch Deep RL Algorithms"), as gen_dgrl runs it.

One trunk with two heads: Q-values and imitation logits. The next action is the argmax of the online Q
over the actions the imitation model finds likely enough (``G(a|s') / max_b G(b|s') > threshold``);
the target evaluates it with the target network; the loss is Huber on Q plus the imitation
cross-entropy plus 0.01 times the mean squared logit, under one Adam. The target is a hard copy every
``target_update_freq`` updates (at updates 0, f, 2f, ... as gen_dgrl's ``total_steps % f == 0``).
Acting: the same filtered argmax, epsilon-greedy with ``eval_epsilon`` (0.001), per env slot.

References:
    Fujimoto, Conti, Ghavamzadeh, Pineau 2019. https://arxiv.org/abs/1910.01708 (code: sfujim/BCQ,
    ``discrete_BCQ``). Mediratta et al. 2024 (gen_dgrl ``offline/agents/bcq.py``);
    docs/offline-algorithms.md lists the differences.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from heldout.agents.offline.base import OfflineAgent, Range, make_encoder


def filtered_argmax(q: torch.Tensor, logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """The argmax of ``q`` (B, A) over the actions with ``softmax(logits) / max > threshold``.

    The most likely action always passes (its ratio is 1 and ``threshold`` < 1), so the set is never empty.
    """
    probs = logits.softmax(dim=1)
    allowed = probs / probs.max(dim=1, keepdim=True).values > threshold
    return q.masked_fill(~allowed, -torch.inf).argmax(dim=1)


class BCQNetwork(nn.Module):
    """The shared trunk with a Q head and an imitation head, each Linear-ReLU-Linear (gen_dgrl's
    ``bcqresnetbase``; here on the 256-wide IMPALA features or the 64-wide MLP features)."""

    def __init__(self, observation_space: Any, n_actions: int) -> None:
        super().__init__()
        self.encoder = make_encoder(observation_space)
        width = self.encoder.features_dim
        self.q = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_actions))
        self.imitation = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_actions))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(obs)
        return self.q(h), self.imitation(h)


class BCQ(OfflineAgent):
    """Discrete BCQ on heldout's networks (the contract's :class:`OfflineAgent`)."""

    name: ClassVar[str] = "bcq"
    defaults: ClassVar[dict[str, Any]] = {
        "lr": 5e-4,
        "batch_size": 512,
        "gamma": 0.99,
        "threshold": 0.5,
        "target_update_freq": 1000,
        "eval_epsilon": 0.001,
    }
    ranges: ClassVar[dict[str, Range]] = {
        "threshold": Range(0.0, 1.0, high_open=True),
    }

    def __init__(self, observation_space: Any, action_space: Any, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        with self.init_seeded():
            net = BCQNetwork(observation_space, self.n_actions).to(self.device)
        target = copy.deepcopy(net).requires_grad_(False)
        self.networks = {"net": net, "target": target}
        self.optimizers = {"net": torch.optim.Adam(net.parameters(), lr=self.kwargs["lr"])}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        k = self.kwargs
        net, target = self.networks["net"], self.networks["target"]
        self.set_training(True)
        action = batch["action"].long()
        with torch.no_grad():
            q_next, logits_next = net(batch["next_obs"])
            best = filtered_argmax(q_next, logits_next, k["threshold"])
            q_best = target(batch["next_obs"])[0].gather(1, best[:, None]).squeeze(1)
            y = batch["reward"].float() + k["gamma"] * (1.0 - batch["terminated"].float()) * q_best
        q, logits = net(batch["obs"])
        q_taken = q.gather(1, action[:, None]).squeeze(1)
        q_loss = F.smooth_l1_loss(q_taken, y)
        imitation_loss = F.cross_entropy(logits, action)
        logit_penalty = 1e-2 * logits.pow(2).mean()
        loss = q_loss + imitation_loss + logit_penalty
        self.gradient_step("net", loss)
        self.copy_targets(k["target_update_freq"], {"target": "net"})
        self.step += 1
        return {
            "loss": loss.item(),
            "q_loss": q_loss.item(),
            "imitation_loss": imitation_loss.item(),
            "logit_penalty": logit_penalty.item(),
            "q_mean": q_taken.mean().item(),
        }

    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        q, logits = self.networks["net"](obs)
        greedy = filtered_argmax(q, logits, self.kwargs["threshold"])
        return greedy if deterministic else self.epsilon_greedy(greedy, self.kwargs["eval_epsilon"])
