"""Discrete CQL on a Double DQN against its reference formulas (gen_dgrl ``ddqn_cql.py``)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from heldout.agents.offline.cql import CQL, cql_penalty, double_dqn_target
from tests.agents.offline.helpers import STATES, TWO_ACTIONS, A, B, chain_batch, random_transitions


def test_the_penalty_is_logsumexp_minus_the_taken_q() -> None:
    q = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expected = ((math.log(math.e + math.e**2 + math.e**3) - 1.0) + (math.log(3.0) - 0.0)) / 2
    assert abs(cql_penalty(q, torch.tensor([0, 2])).item() - expected) < 1e-6


def test_the_target_evaluates_the_online_argmax_with_the_target_net() -> None:
    online = torch.tensor([[1.0, 3.0], [2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[10.0, 20.0], [30.0, 40.0], [5.0, 6.0]])
    y = double_dqn_target(online, target, torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 0.0, 1.0]), 0.5)
    # row 2: the online argmax is action 0, so 2 + 0.5 * 30 (a max over the target would give 22)
    assert y.tolist() == [11.0, 17.0, 3.0]


def test_the_update_minimises_huber_plus_alpha_times_the_penalty() -> None:
    agent = CQL(STATES, TWO_ACTIONS, seed=3, alpha=4.0, lr=1e-2)
    for seed in range(3):
        agent.update(random_transitions(STATES, 2, 16, seed))
    batch = random_transitions(STATES, 2, 16, seed=7)
    q_net, target = agent.networks["q"], agent.networks["target"]
    with torch.no_grad():
        q, q_next, q_next_target = q_net(batch["obs"]), q_net(batch["next_obs"]), target(batch["next_obs"])
    rows = range(16)
    y = [
        batch["reward"][i].item()
        + 0.99 * (1 - batch["terminated"][i].item()) * q_next_target[i, int(q_next[i].argmax())].item()
        for i in rows
    ]
    taken = [q[i, batch["action"][i]].item() for i in rows]
    huber = F.smooth_l1_loss(torch.tensor(taken), torch.tensor(y)).item()
    penalty = float(np.mean([math.log(sum(math.exp(v) for v in q[i].tolist())) - taken[i] for i in rows]))
    stats = agent.update(batch)
    assert abs(stats["td_loss"] - huber) < 1e-5 and abs(stats["cql_penalty"] - penalty) < 1e-5
    assert abs(stats["loss"] - (huber + 4.0 * penalty)) < 1e-4


def test_cql_learns_the_bootstrapped_best_action_of_the_chain() -> None:
    agent = CQL(STATES, TWO_ACTIONS, seed=0, lr=3e-3, alpha=0.5, target_update_freq=10)
    batch = chain_batch()
    for _ in range(400):
        agent.update(batch)
    q = agent.networks["q"](torch.as_tensor(np.stack([A, B]))).detach()
    assert q[0, 0] > q[0, 1] + 0.05 and q[1, 0] > q[1, 1] + 0.3
    assert agent.predict(np.stack([A, B]), deterministic=True)[0].tolist() == [0, 0]


def test_the_penalty_lowers_the_q_of_actions_the_data_never_takes() -> None:
    batch = chain_batch()
    keep = batch["action"] == 0  # the data takes only action 0
    batch = {k: v[keep] for k, v in batch.items()}
    gaps = []
    for alpha in (0.0, 4.0):
        agent = CQL(STATES, TWO_ACTIONS, seed=0, lr=3e-3, alpha=alpha, target_update_freq=10)
        for _ in range(200):
            agent.update(batch)
        q = agent.networks["q"](torch.as_tensor(A[None])).detach()[0]
        gaps.append((q[0] - q[1]).item())
    assert gaps[1] > gaps[0] + 1.0  # the unseen action is pushed down only with the penalty
