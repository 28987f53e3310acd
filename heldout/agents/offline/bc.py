"""Behavioural cloning: the policy that maximises the log-likelihood of the dataset's actions.

gen_dgrl's BC (``offline/agents/bc.py``; ALGORITHMS-offline.md section 3.2): the online trunk, a linear
head to the action logits initialised orthogonally with gain 0.01, ``L = -mean log pi(a|s)``, Adam at
a constant learning rate 5e-4, minibatches of 256; it acts by sampling pi (gen_dgrl's ``eval_eps``
0.001 is no greedy choice), or greedily with ``deterministic``. Differences: images are scaled to
[0, 1] (gen_dgrl feeds raw 0-255 pixels), and vector observations get SB3's MLP (64, 64, tanh).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from heldout.agents.offline.base import COUNT, POSITIVE, OfflineAgent, Range, make_encoder

#: gen_dgrl's final BC head gain.
HEAD_GAIN = 0.01


class BC(OfflineAgent):
    """Behavioural cloning (cross-entropy on the dataset's actions)."""

    name: ClassVar[str] = "bc"
    defaults: ClassVar[dict[str, Any]] = {"learning_rate": 5e-4, "batch_size": 256}
    ranges: ClassVar[dict[str, Range]] = {"learning_rate": POSITIVE, "batch_size": COUNT}

    def __init__(self, observation_space: Any, action_space: Any, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        with self.init_seeded():
            encoder = make_encoder(observation_space)
            head = nn.Linear(encoder.features_dim, self.n_actions)
            nn.init.orthogonal_(head.weight, gain=HEAD_GAIN)
            nn.init.zeros_(head.bias)
            self.policy = nn.Sequential(encoder, head).to(self.device)
        self.networks["policy"] = self.policy
        self.optimizers["policy"] = torch.optim.Adam(
            self.policy.parameters(), lr=float(self.kwargs["learning_rate"])
        )

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One Adam step on the mean negative log-likelihood of ``batch["action"]``."""
        self.set_training(True)
        logits = self.policy(batch["obs"])
        loss = nn.functional.cross_entropy(logits, batch["action"])
        opt = self.optimizers["policy"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.step += 1
        with torch.no_grad():
            accuracy = (logits.argmax(dim=1) == batch["action"]).float().mean()
        return {"loss": float(loss.item()), "accuracy": float(accuracy.item())}

    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Greedy, or sampled from pi with the agent's generator."""
        logits = self.policy(obs)
        if deterministic:
            return logits.argmax(dim=1)
        probs = torch.softmax(logits.float(), dim=1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(1)


__all__ = ["BC"]
