"""E3B: the elliptical episodic bonus over an inverse-dynamics embedding.

Per env slot and episode, with ``phi`` a learned embedding and ``C = lambda I + sum_i phi_i phi_i^T``
over the states of the episode so far, the bonus of a reached state is ``phi^T C^-1 phi``
(Henaff, Raileanu, Jiang, Rocktaschel 2022, "Exploration via Elliptical Episodic Bonuses", NeurIPS,
https://arxiv.org/abs/2210.05805; e3b ``src/utils.py::act``). Only ``A = C^-1`` is kept, one per
slot, reset to ``I / lambda`` at each episode start and updated by Sherman-Morrison::

    u = A phi,   b = phi^T u,   A <- A - u u^T / (1 + b)

batched over slots on the bonus's device (one ``bmm`` a step). ``u u^T`` is exactly symmetric in
floating point, so ``A`` stays symmetric; ``b`` is clamped at 0 against rounding (ALGORITHMS-
exploration.md, pitfall 3).

``phi`` is trained as e3b does: an inverse-dynamics model ``concat(phi(s), phi(s')) -> 256 -> |A|``
logits, cross-entropy of the action taken, its own Adam (lr 1e-4), gradient-norm clip 40; ``phi``
ends in a ReLU. Unlike e3b it learns after each rollout on that rollout (not in the policy's
backward pass), and pairs that straddle two episodes are left out (as e3b's Sample Factory version).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from heldout.agents.bonuses.base import BonusOption, Keys, LearnedBonus, encoder, seeded_init
from heldout.agents.bonuses.rnd import LEARNING_OPTIONS

#: e3b's gradient-norm clip (``--max_grad_norm``).
MAX_GRAD_NORM = 40.0


def sherman_morrison(inverse: torch.Tensor, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One elliptical step for a batch of slots: the bonuses and the updated inverses.

    Args:
        inverse: (E, d, d) ``A = C^-1`` of each slot (symmetric positive definite).
        phi: (E, d) embeddings.

    Returns:
        ``(b, A')``: (E,) bonuses ``phi^T A phi`` (clamped >= 0) and (E, d, d) ``(C + phi phi^T)^-1``.
    """
    u = torch.bmm(inverse, phi.unsqueeze(-1)).squeeze(-1)
    b = (phi * u).sum(-1).clamp_min(0.0)
    outer = u.unsqueeze(-1) * u.unsqueeze(-2)
    return b, inverse - outer / (1.0 + b).reshape(-1, 1, 1)


class E3B(LearnedBonus):
    """The elliptical episodic bonus ``phi(s')^T C^-1 phi(s')`` with ``phi`` from inverse dynamics."""

    scope = "episodic"
    OPTIONS = (
        BonusOption(
            "dim", int, 256, low=1, high=4096, help="embedding size d (e3b: 1024; its Sample Factory: 256)"
        ),
        BonusOption("ridge", float, 0.1, low=0.0, low_open=True, help="lambda: C starts as lambda * I"),
        *LEARNING_OPTIONS,
    )

    def __init__(
        self,
        *args: Any,
        dim: int = 256,
        ridge: float = 0.1,
        lr: float = 1e-4,
        epochs: int = 1,
        batch_size: int = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ridge = ridge
        n_actions = int(self.action_space.n)
        self.embedding = seeded_init(self.seed, lambda: encoder(self.observation_space, dim, final_relu=True))
        self.inverse_dynamics = seeded_init(self.seed + 1, lambda: _inverse_dynamics(dim, n_actions))
        self.setup_learning(self._learned(), lr, epochs, batch_size)
        self.register_buffer("inverse", torch.eye(dim).repeat(self.n_envs, 1, 1) / ridge)

    @torch.no_grad()
    def score(self, obs: torch.Tensor, keys: Keys) -> torch.Tensor:
        phi = self.embedding(obs).float()
        b, self.inverse = sherman_morrison(self.inverse, phi)
        return b

    @torch.no_grad()
    def new_episodes(self, obs: torch.Tensor, keys: Keys, mask: torch.Tensor) -> None:
        mask = mask.to(self.inverse.device)
        if not bool(mask.any()):
            return
        eye = torch.eye(self.inverse.shape[-1], device=self.inverse.device) / self.ridge
        fresh = torch.where(mask.reshape(-1, 1, 1), eye, self.inverse)
        phi = self.embedding(obs).float()
        _, entered = sherman_morrison(fresh, phi)  # phi(s_0) enters C; its bonus is not paid
        self.inverse = torch.where(mask.reshape(-1, 1, 1), entered, self.inverse)

    def _learned(self) -> list[nn.Parameter]:
        """The parameters the inverse-dynamics loss trains: the embedding's and the model's."""
        return [*self.embedding.parameters(), *self.inverse_dynamics.parameters()]

    def learn(self, obs: torch.Tensor, actions: torch.Tensor, starts: torch.Tensor) -> dict[str, float]:
        keep = ~starts[1:].reshape(-1)  # (s, s') within one episode
        before = obs[:-1].reshape(-1, *obs.shape[2:])[keep]
        after = obs[1:].reshape(-1, *obs.shape[2:])[keep]
        taken = actions.reshape(-1)[keep].long()
        losses = []
        for index in self.minibatches(taken.shape[0], taken.device):
            logits = self.inverse_dynamics(
                torch.cat([self.embedding(before[index]), self.embedding(after[index])], dim=-1)
            )
            loss = nn.functional.cross_entropy(logits, taken[index])
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self._learned(), MAX_GRAD_NORM)
            self.optimizer.step()
            losses.append(loss.detach())
        if not losses:
            return {}
        return {"inverse_dynamics_loss": float(torch.stack(losses).mean())}


def _inverse_dynamics(dim: int, n_actions: int) -> nn.Sequential:
    """e3b's inverse-dynamics head: ``concat(phi, phi') -> 256 -> ReLU -> n_actions``, orthogonal init."""
    net = nn.Sequential(nn.Linear(2 * dim, 256), nn.ReLU(), nn.Linear(256, n_actions))
    for layer in (net[0], net[2]):
        nn.init.orthogonal_(layer.weight)
        nn.init.zeros_(layer.bias)
    return net


__all__ = ["E3B", "MAX_GRAD_NORM", "sherman_morrison"]
