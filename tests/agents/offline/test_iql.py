"""Discrete IQL against its reference (gen_dgrl ``iql.py``; CORL ``iql.py``)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from heldout.agents.offline.iql import IQL, advantage_weight, expectile_loss
from tests.agents.offline.helpers import STATES, TWO_ACTIONS, A, B, chain_batch, random_transitions


def test_the_expectile_loss_weights_positive_and_negative_errors_asymmetrically() -> None:
    u = torch.tensor([1.0, -2.0])
    assert abs(expectile_loss(u, 0.8).item() - (0.8 * 1 + 0.2 * 4) / 2) < 1e-6
    assert abs(expectile_loss(u, 0.5).item() - (0.5 * 1 + 0.5 * 4) / 2) < 1e-6


def test_the_advantage_weight_is_capped_at_100() -> None:
    w = advantage_weight(torch.tensor([0.0, 1.0, 2.0, -1.0]), beta=3.0)
    assert np.allclose(w.tolist(), [1.0, math.exp(3.0), 100.0, math.exp(-3.0)], rtol=1e-6)


def test_the_actor_is_weighted_by_u_from_before_the_value_step() -> None:
    agent = IQL(STATES, TWO_ACTIONS, seed=2, lr=5e-2)
    for seed in range(3):
        agent.update(random_transitions(STATES, 2, 16, seed))
    batch = random_transitions(STATES, 2, 16, seed=11)
    nets, action = agent.networks, batch["action"][:, None]
    with torch.no_grad():
        q_min = torch.min(nets["q1_target"](batch["obs"]), nets["q2_target"](batch["obs"])).gather(1, action)[
            :, 0
        ]
        u_before = q_min - nets["v"](batch["obs"])[:, 0]
        log_pi = F.log_softmax(nets["actor"](batch["obs"]), 1).gather(1, action)[:, 0]
    expected = -(torch.exp(3.0 * u_before).clamp(max=100) * log_pi).mean().item()
    stats = agent.update(batch)
    assert abs(stats["actor_loss"] - expected) < 1e-5
    assert abs(stats["value_loss"] - expectile_loss(u_before, 0.8).item()) < 1e-6
    with torch.no_grad():  # the value step moved V, so the post-update u would give another weight
        u_after = q_min - nets["v"](batch["obs"])[:, 0]
    other = -(torch.exp(3.0 * u_after).clamp(max=100) * log_pi).mean().item()
    assert abs(other - expected) > 1e-4


def test_the_critics_regress_on_the_updated_value() -> None:
    agent = IQL(STATES, TWO_ACTIONS, seed=4, lr=5e-2)
    agent.update(random_transitions(STATES, 2, 16, 0))
    batch = random_transitions(STATES, 2, 16, seed=5)
    nets = agent.networks
    v_before = [p.detach().clone() for p in nets["v"].parameters()]
    q1_before = [p.detach().clone() for p in nets["q1"].parameters()]
    stats = agent.update(batch)
    # recompute the critic loss with the updated V and the pre-update Q1
    with torch.no_grad():
        updated = [p.detach().clone() for p in nets["q1"].parameters()]
        for p, old in zip(nets["q1"].parameters(), q1_before):
            p.copy_(old)
        y = batch["reward"] + 0.99 * (1 - batch["terminated"]) * nets["v"](batch["next_obs"])[:, 0]
        loss = F.mse_loss(nets["q1"](batch["obs"]).gather(1, batch["action"][:, None])[:, 0], y).item()
        for p, new in zip(nets["q1"].parameters(), updated):
            p.copy_(new)
    assert abs(stats["critic1_loss"] - loss) < 1e-5
    assert any(not torch.equal(a, b) for a, b in zip(v_before, nets["v"].parameters()))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_the_targets_are_copied_every_100_updates() -> None:
    agent = IQL(STATES, TWO_ACTIONS, seed=0, lr=1e-2, batch_size=8)
    batch = random_transitions(STATES, 2, 8)
    copied = []
    for _ in range(102):
        agent.update(batch)
        copied.append(_same(agent.networks["q1_target"], agent.networks["q1"]))
        assert copied[-1] == _same(agent.networks["q2_target"], agent.networks["q2"])
    # copies after the critics' step of updates 0 and 100 (gen_dgrl: total_steps % 100 == 0)
    assert [i for i, same in enumerate(copied) if same] == [0, 100]


def test_iql_learns_the_bootstrapped_best_action_of_the_chain() -> None:
    agent = IQL(STATES, TWO_ACTIONS, seed=0, lr=3e-3, batch_size=32, target_update_freq=10)
    batch = chain_batch()
    for _ in range(400):
        agent.update(batch)
    q = agent.networks["q1"](torch.as_tensor(np.stack([A, B]))).detach()
    assert q[0, 0] > q[0, 1] + 0.1 and q[1, 0] > q[1, 1] + 0.5
    pi = agent.networks["actor"](torch.as_tensor(np.stack([A, B]))).softmax(1).detach()
    assert pi[0, 0] > 0.6 and pi[1, 0] > 0.6  # the data is uniform: the advantage makes the choice
    assert agent.predict(np.stack([A, B]))[0].tolist() == [0, 0]
