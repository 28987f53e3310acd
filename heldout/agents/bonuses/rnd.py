"""Random Network Distillation: a global bonus from the error of predicting a fixed random network.

``b(s') = || f_pred(s') - f_target(s') ||_2`` with ``f_target`` a frozen random network and ``f_pred``
trained to match it on the states the agent reaches, so the error shrinks on states seen often, over
all of training (Burda et al. 2019, "Exploration by Random Network Distillation", ICLR,
https://arxiv.org/abs/1810.12894). As e3b's NovelD-style RND (``src/algos/e3b_noveld.py``): a
128-d output, the predictor trained with Adam lr 1e-4 on the mean L2 error (not squared). e3b puts
both heads on a frozen random NetHack encoder; here target and predictor are each a small encoder
(:func:`~heldout.agents.bonuses.base.encoder`) of the observation.
"""

from __future__ import annotations

from typing import Any

import torch

from heldout.agents.bonuses.base import BonusOption, Keys, LearnedBonus, encoder, seeded_init

LEARNING_OPTIONS = (
    BonusOption(
        "lr", float, 1e-4, low=0.0, low_open=True, high=1.0, help="Adam learning rate of the bonus networks"
    ),
    BonusOption("epochs", int, 1, low=1, high=100, help="passes over each rollout"),
    BonusOption("batch_size", int, 512, low=1, high=2**20, help="transitions per minibatch"),
)


class RND(LearnedBonus):
    """``|| f_pred(s') - f_target(s') ||_2``; the predictor learns after every rollout."""

    scope = "global"
    OPTIONS = (
        BonusOption("dim", int, 128, low=1, high=4096, help="output size of target and predictor"),
        *LEARNING_OPTIONS,
    )

    def __init__(
        self,
        *args: Any,
        dim: int = 128,
        lr: float = 1e-4,
        epochs: int = 1,
        batch_size: int = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.target = seeded_init(self.seed, lambda: encoder(self.observation_space, dim, final_relu=False))
        self.predictor = seeded_init(
            self.seed + 1, lambda: encoder(self.observation_space, dim, final_relu=False)
        )
        self.target.requires_grad_(False)
        self.setup_learning(list(self.predictor.parameters()), lr, epochs, batch_size)

    def error(self, obs: torch.Tensor) -> torch.Tensor:
        """(B,) prediction errors of observations (B, ...)."""
        return (self.predictor(obs) - self.target(obs)).norm(dim=-1)

    @torch.no_grad()
    def score(self, obs: torch.Tensor, keys: Keys) -> torch.Tensor:
        return self.error(obs).float()

    def learn(self, obs: torch.Tensor, actions: torch.Tensor, starts: torch.Tensor) -> dict[str, float]:
        flat = obs[1:].reshape(-1, *obs.shape[2:])  # the states reached (s'), as the bonus scores them
        losses = []
        for index in self.minibatches(flat.shape[0], flat.device):
            loss = self.error(flat[index]).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.detach())
        return {"rnd_loss": float(torch.stack(losses).mean())}


__all__ = ["LEARNING_OPTIONS", "RND"]
