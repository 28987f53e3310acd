"""Discrete BCQ against its reference formulas (gen_dgrl ``bcq.py``, sfujim/BCQ ``discrete_BCQ``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from heldout.agents.offline.bcq import BCQ, filtered_argmax
from tests.agents.offline.helpers import STATES, TWO_ACTIONS, A, B, chain_batch, random_transitions


def test_the_filtered_argmax_skips_unlikely_actions() -> None:
    q = torch.tensor([[1.0, 5.0, 3.0]])
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.3]]))  # ratios to the best: 1, 0.4, 0.6
    assert filtered_argmax(q, logits, 0.5).item() == 2  # action 1 (Q 5) is filtered out
    assert filtered_argmax(q, logits, 0.3).item() == 1  # now it passes and wins
    assert filtered_argmax(q, logits, 0.99).item() == 0  # only the most likely action is left


def _by_hand(agent: BCQ, batch: dict[str, torch.Tensor], evaluator: torch.nn.Module) -> float:
    """The BCQ loss computed row by row in plain Python, the next action's Q read from ``evaluator``."""
    net, k = agent.networks["net"], agent.kwargs
    with torch.no_grad():
        q_next, logits_next = net(batch["next_obs"])
        q_eval = evaluator(batch["next_obs"])[0]
        q, logits = net(batch["obs"])
    total_q, total_ce = 0.0, 0.0
    for i in range(len(batch["action"])):
        probs = logits_next[i].softmax(0).tolist()
        allowed = [a for a in range(len(probs)) if probs[a] / max(probs) > k["threshold"]]
        best = max(allowed, key=lambda a: q_next[i, a].item())
        y = (
            batch["reward"][i].item()
            + k["gamma"] * (1 - batch["terminated"][i].item()) * q_eval[i, best].item()
        )
        err = abs(q[i, batch["action"][i]].item() - y)
        total_q += 0.5 * err**2 if err < 1 else err - 0.5
        total_ce += -logits[i].log_softmax(0)[batch["action"][i]].item()
    n = len(batch["action"])
    return total_q / n + total_ce / n + 1e-2 * logits.pow(2).mean().item()


def test_the_loss_uses_the_filtered_online_action_evaluated_by_the_target() -> None:
    agent = BCQ(STATES, TWO_ACTIONS, seed=1, lr=1e-2, target_update_freq=1000)
    for seed in range(3):  # the online net moves away from the target (copied at update 0 only)
        agent.update(random_transitions(STATES, 2, 16, seed))
    batch = random_transitions(STATES, 2, 16, seed=9)
    expected = _by_hand(agent, batch, agent.networks["target"])
    wrong = _by_hand(agent, batch, agent.networks["net"])  # the online net evaluating: another number
    stats = agent.update(batch)
    assert abs(stats["loss"] - expected) < 1e-5
    assert abs(wrong - expected) > 1e-4


def test_bcq_learns_the_bootstrapped_best_action_of_the_chain() -> None:
    agent = BCQ(STATES, TWO_ACTIONS, seed=0, lr=3e-3, batch_size=32, target_update_freq=10)
    batch = chain_batch()
    for _ in range(400):
        agent.update(batch)
    q = agent.networks["net"](torch.as_tensor(np.stack([A, B])))[0].detach()
    assert (
        abs(q[0, 0].item() - 0.99) < 0.1 and abs(q[0, 1].item() - 0.5) < 0.1 and abs(q[1, 0].item() - 1) < 0.1
    )
    actions, _ = agent.predict(np.stack([A, B]), deterministic=True)
    assert actions.tolist() == [0, 0]


def test_acting_is_epsilon_greedy_per_slot() -> None:
    agent = BCQ(STATES, TWO_ACTIONS, seed=0, eval_epsilon=1.0)  # every slot uniform
    obs = np.repeat(A[None], 400, axis=0)
    greedy, _ = agent.predict(obs, deterministic=True)
    assert len(set(greedy.tolist())) == 1
    actions, _ = agent.predict(obs)
    assert 150 < int((actions == 0).sum()) < 250  # about half, not one coin for the batch
    agent.kwargs["eval_epsilon"] = 0.0
    assert (agent.predict(obs)[0] == greedy).all()


def test_the_imitation_head_learns_the_behaviour_policy() -> None:
    agent = BCQ(STATES, TWO_ACTIONS, seed=0, lr=1e-2)
    batch = chain_batch()
    batch["action"] = torch.where(batch["obs"][:, 0] > 0, 1, batch["action"])  # A: always action 1
    for _ in range(200):
        agent.update(batch)
    logits = agent.networks["net"](torch.as_tensor(A[None]))[1]
    assert F.softmax(logits, 1)[0, 1].item() > 0.9
