"""A global and an episodic bonus together: their sum or their product.

e3b's ``--bonus_combine`` (``src/algos/e3b_noveld.py``): ``mult`` (the default, and the paper's
final algorithm E3B x RND) gives ``b = b_episodic * b_global``; ``add`` gives
``b = b_episodic + global_coef * b_global``. For counts (``src/algos/count.py``) the product is
``1{N_e = 1} * N^-1/2``. Neither part is normalised on its own: the combination is, as one raw bonus
(:class:`~heldout.agents.bonuses.intrinsic.IntrinsicReward`).

Reference: Henaff, Jiang, Raileanu 2023, ICML, https://arxiv.org/abs/2306.03236.
"""

from __future__ import annotations

from typing import Any

import torch

from heldout.agents.bonuses.base import Bonus, Keys


class Combined(Bonus):
    """``b_episodic * b_global`` (``form="product"``) or ``b_episodic + global_coef * b_global`` (``"sum"``).

    Args:
        episodic: The episodic part (resets each episode).
        global_: The global part.
        form: ``"product"`` or ``"sum"``.
        global_coef: The global part's weight in a sum.
        *args, **kwargs: As :class:`~heldout.agents.bonuses.base.Bonus`.
    """

    scope = "combined"

    def __init__(
        self, *args: Any, episodic: Bonus, global_: Bonus, form: str, global_coef: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.episodic, self.global_ = episodic, global_
        self.form, self.global_coef = form, global_coef
        self.key_names = tuple(dict.fromkeys((*episodic.key_names, *global_.key_names)))

    def score(self, obs: torch.Tensor, keys: Keys) -> torch.Tensor:
        episodic, global_ = self.episodic.score(obs, keys), self.global_.score(obs, keys)
        if self.form == "product":
            return episodic * global_
        return episodic + self.global_coef * global_

    def new_episodes(self, obs: torch.Tensor, keys: Keys, mask: torch.Tensor) -> None:
        self.episodic.new_episodes(obs, keys, mask)
        self.global_.new_episodes(obs, keys, mask)

    def learn(self, obs: torch.Tensor, actions: torch.Tensor, starts: torch.Tensor) -> dict[str, float]:
        return {**self.episodic.learn(obs, actions, starts), **self.global_.learn(obs, actions, starts)}


__all__ = ["Combined"]
