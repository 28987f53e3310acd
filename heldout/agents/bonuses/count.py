"""Count bonuses over hashed state keys: global (all of training) and episodic (this episode).

The state key of a slot is its observation (hashed whole, e3b's ``counts-obs``) or the value of a
declared ``info`` entry (e3b's ``counts-pos`` uses the agent's position); see
:class:`~heldout.agents.bonuses.intrinsic.IntrinsicReward` for how keys are read.

* Global: ``b = 1 / sqrt(N(s'))`` after counting ``s'`` (e3b ``src/algos/count.py``). Unlike e3b,
  whose dict is copied into each forked actor, the counts are shared by all env slots.
* Episodic: ``b = 1{N_e(s') = 1}``, a first-visit indicator (e3b's code, although its comment says
  ``1/sqrt(N_e)``), or ``1/sqrt(N_e(s'))`` with ``form=inverse-sqrt``. Unlike e3b, the first
  observation of an episode is counted in that episode's memory, not in the previous one's.

Reference: Henaff, Jiang, Raileanu 2023, ICML, https://arxiv.org/abs/2306.03236.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from heldout.agents.bonuses.base import Bonus, BonusOption, Keys, state_key

KEY_OPTION = BonusOption(
    "key", str, "obs", help="what is counted: obs (the hashed observation) or the name of an info entry"
)


class GlobalCount(Bonus):
    """``1 / sqrt(N(s'))`` with ``N`` the visits of ``s'``'s key over all of training, all slots together."""

    scope = "global"
    OPTIONS = (KEY_OPTION,)

    def __init__(self, *args: Any, key: str = "obs", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key = key
        self.key_names = (key,)
        self.counts: Counter[int] = Counter()

    def score(self, obs: torch.Tensor, keys: Keys) -> torch.Tensor:
        out = torch.zeros(self.n_envs, dtype=torch.float32)
        for slot, key in enumerate(keys[self.key] if keys else []):
            if key is not None:
                h = state_key(key)
                self.counts[h] += 1
                out[slot] = self.counts[h] ** -0.5
        return out.to(obs.device)

    def new_episodes(self, obs: torch.Tensor, keys: Keys, mask: torch.Tensor) -> None:
        for slot in torch.nonzero(mask.cpu()).flatten().tolist():
            if keys and keys[self.key][slot] is not None:
                self.counts[state_key(keys[self.key][slot])] += 1

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        items = sorted(self.counts.items())
        return {
            "keys": torch.tensor([k for k, _ in items], dtype=torch.int64),
            "counts": torch.tensor([c for _, c in items], dtype=torch.int64),
        }

    def set_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.counts = Counter(dict(zip(state["keys"].tolist(), state["counts"].tolist())))


class EpisodicCount(Bonus):
    """The first-visit indicator ``1{N_e(s') = 1}`` (or ``N_e(s')^-1/2``) over this episode's visits, per slot."""

    scope = "episodic"
    OPTIONS = (
        KEY_OPTION,
        BonusOption(
            "form",
            str,
            "first-visit",
            choices=("first-visit", "inverse-sqrt"),
            help="1{N_e = 1} (e3b's code) or 1/sqrt(N_e)",
        ),
    )

    def __init__(self, *args: Any, key: str = "obs", form: str = "first-visit", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key = key
        self.key_names = (key,)
        self.form = form
        self.memories: list[Counter[int]] = [Counter() for _ in range(self.n_envs)]

    def score(self, obs: torch.Tensor, keys: Keys) -> torch.Tensor:
        out = torch.zeros(self.n_envs, dtype=torch.float32)
        for slot, key in enumerate(keys[self.key] if keys else []):
            if key is not None:
                memory = self.memories[slot]
                h = state_key(key)
                memory[h] += 1
                n = memory[h]
                out[slot] = float(n == 1) if self.form == "first-visit" else n**-0.5
        return out.to(obs.device)

    def new_episodes(self, obs: torch.Tensor, keys: Keys, mask: torch.Tensor) -> None:
        for slot in torch.nonzero(mask.cpu()).flatten().tolist():
            self.memories[slot] = Counter()
            if keys and keys[self.key][slot] is not None:
                self.memories[slot][state_key(keys[self.key][slot])] += 1

    def get_extra_state(self) -> dict[str, list[torch.Tensor]]:
        keys, counts = [], []
        for memory in self.memories:
            items = sorted(memory.items())
            keys.append(torch.tensor([k for k, _ in items], dtype=torch.int64))
            counts.append(torch.tensor([c for _, c in items], dtype=torch.int64))
        return {"keys": keys, "counts": counts}

    def set_extra_state(self, state: dict[str, list[torch.Tensor]]) -> None:
        self.memories = [
            Counter(dict(zip(k.tolist(), c.tolist()))) for k, c in zip(state["keys"], state["counts"])
        ]


__all__ = ["KEY_OPTION", "EpisodicCount", "GlobalCount"]
