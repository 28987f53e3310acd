"""Discrete IQL (Kostrikov et al. 2021, "Offline RL with Implicit Q-Learning"), as gen_dgrl adapts it.

Seven networks, each a trunk of its own with its own Adam: a categorical actor, V, Q1, Q2 and the
targets of Q1 and Q2. Each update, in gen_dgrl's order:

1. u = min(Q1_target, Q2_target)(s, a) - V(s); V takes a step on the expectile loss
   mean(|tau_e - 1[u < 0]| u^2);
2. y = r + gamma (1 - terminated) V(s') with the *updated* V; Q1 and Q2 each take an MSE step to y;
3. the targets are hard copies every ``target_update_freq`` updates (at updates 0, f, 2f, ...);
4. the actor takes a step on -mean(min(exp(beta u), 100) log pi(a|s)) with the *pre-update* u of
   step 1, detached.

Acting: argmax pi (gen_dgrl evaluates IQL greedily), whatever ``deterministic`` says.

References:
    Kostrikov, Nair, Levine 2021. https://arxiv.org/abs/2110.06169 (code: ikostrikov/implicit_q_learning;
    CORL ``algorithms/offline/iql.py``). Mediratta et al. 2024 (gen_dgrl ``offline/agents/iql.py``);
    docs/offline-algorithms.md lists the differences.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from heldout.agents.offline.base import OfflineAgent, Range, make_encoder, with_head

#: The cap of the actor's advantage weight exp(beta u) (gen_dgrl, CORL, the JAX original).
MAX_WEIGHT = 100.0


def expectile_loss(u: torch.Tensor, expectile: float) -> torch.Tensor:
    """``mean(|expectile - 1[u < 0]| u^2)``: the asymmetric L2 loss of IQL's value step."""
    return (torch.abs(expectile - (u < 0).float()) * u.pow(2)).mean()


def advantage_weight(u: torch.Tensor, beta: float) -> torch.Tensor:
    """``min(exp(beta u), 100)``: the actor's weight per sample."""
    return torch.exp(beta * u).clamp(max=MAX_WEIGHT)


class IQL(OfflineAgent):
    """Discrete IQL with hard target copies (the contract's :class:`OfflineAgent`)."""

    name: ClassVar[str] = "iql"
    defaults: ClassVar[dict[str, Any]] = {
        "lr": 5e-4,
        "batch_size": 512,
        "gamma": 0.99,
        "expectile": 0.8,
        "beta": 3.0,
        "target_update_freq": 100,
    }
    ranges: ClassVar[dict[str, Range]] = {
        "expectile": Range(0.0, 1.0, low_open=True, high_open=True),
        "beta": Range(0.0, float("inf"), high_open=True),
    }

    def __init__(self, observation_space: Any, action_space: Any, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        n = self.n_actions
        with self.init_seeded():
            nets = {
                "actor": with_head(make_encoder(observation_space), n, gain=0.01),
                "v": with_head(make_encoder(observation_space), 1),
                "q1": with_head(make_encoder(observation_space), n),
                "q2": with_head(make_encoder(observation_space), n),
            }
        nets = {key: net.to(self.device) for key, net in nets.items()}
        nets["q1_target"] = copy.deepcopy(nets["q1"]).requires_grad_(False)
        nets["q2_target"] = copy.deepcopy(nets["q2"]).requires_grad_(False)
        self.networks = nets
        lr = self.kwargs["lr"]
        self.optimizers = {
            key: torch.optim.Adam(nets[key].parameters(), lr=lr) for key in ("actor", "v", "q1", "q2")
        }

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        k, nets = self.kwargs, self.networks
        self.set_training(True)
        obs, action = batch["obs"], batch["action"].long()[:, None]
        # 1. value: expectile regression of V(s) towards min of the target Qs
        with torch.no_grad():
            q_min = torch.min(
                nets["q1_target"](obs).gather(1, action), nets["q2_target"](obs).gather(1, action)
            )
        u = q_min.squeeze(1) - nets["v"](obs).squeeze(1)
        value_loss = expectile_loss(u, k["expectile"])
        self.gradient_step("v", value_loss)
        # 2. critics: MSE towards r + gamma (1 - terminated) V(s') with the updated V
        with torch.no_grad():
            next_v = nets["v"](batch["next_obs"]).squeeze(1)
            y = batch["reward"].float() + k["gamma"] * (1.0 - batch["terminated"].float()) * next_v
        critic_losses = []
        for key in ("q1", "q2"):
            critic_loss = F.mse_loss(nets[key](obs).gather(1, action).squeeze(1), y)
            self.gradient_step(key, critic_loss)
            critic_losses.append(critic_loss.item())
        # 3. targets
        self.copy_targets(k["target_update_freq"], {"q1_target": "q1", "q2_target": "q2"})
        # 4. actor: advantage-weighted log-likelihood with the pre-update u
        weight = advantage_weight(u.detach(), k["beta"])
        log_prob = F.log_softmax(nets["actor"](obs), dim=1).gather(1, action).squeeze(1)
        actor_loss = -(weight * log_prob).mean()
        self.gradient_step("actor", actor_loss)
        self.step += 1
        return {
            "value_loss": value_loss.item(),
            "critic1_loss": critic_losses[0],
            "critic2_loss": critic_losses[1],
            "actor_loss": actor_loss.item(),
            "v_mean": (q_min.squeeze(1) - u).mean().item(),
            "weight_mean": weight.mean().item(),
        }

    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        return self.networks["actor"](obs).argmax(dim=1)
