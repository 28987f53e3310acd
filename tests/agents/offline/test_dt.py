"""The return-conditioned Decision Transformer: RTGs, the causal mask, padding, conditioning, acting."""

from __future__ import annotations

import math

import numpy as np
import torch

from heldout.agents.offline.dt import (
    DecisionTransformer,
    DTModel,
    masked_cross_entropy,
    param_groups,
    returns_to_go,
)
from tests.agents.offline.helpers import STATES

SMALL = {"n_layer": 2, "n_head": 2, "n_embd": 16, "dropout": 0.0, "warmup_tokens": 0}
THREE = __import__("gymnasium").spaces.Discrete(3)


def test_returns_to_go_are_undiscounted_suffix_sums() -> None:
    assert returns_to_go(np.array([1.0, 2.0, 3.0])).tolist() == [6.0, 5.0, 3.0]
    assert returns_to_go(np.array([0.0, 0.0, 10.0, 0.0])).tolist() == [10.0, 10.0, 10.0, 0.0]


def _model(k: int = 4) -> DTModel:
    torch.manual_seed(0)
    return DTModel(STATES, 3, k, n_layer=2, n_head=2, n_embd=16, dropout=0.0, max_timestep=100).eval()


def _window(b: int = 2, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(b, k, 3, generator=g)
    action = torch.randint(0, 3, (b, k), generator=g)
    rtg = torch.rand(b, k, generator=g) * 5
    return obs, action, rtg, torch.tensor([0, 7])[:b]


def test_a_later_token_cannot_change_an_earlier_logit() -> None:
    model = _model()
    obs, action, rtg, t0 = _window()
    with torch.no_grad():
        base = model(obs, action, rtg, t0)
        for what, step in (("obs", 2), ("action", 1), ("rtg", 3)):
            o, a, r = obs.clone(), action.clone(), rtg.clone()
            if what == "obs":
                o[:, step] += 1.0
            elif what == "action":
                a[:, step] = (a[:, step] + 1) % 3
            else:
                r[:, step] += 3.0
            out = model(o, a, r, t0)
            first_seen = step if what != "action" else step + 1  # a_t follows s_t: it informs step t+1
            assert torch.equal(out[:, :first_seen], base[:, :first_seen]), what
            assert not torch.allclose(out[:, first_seen], base[:, first_seen]), what


def test_the_return_to_go_changes_the_output() -> None:
    model = _model()
    obs, action, rtg, t0 = _window()
    with torch.no_grad():
        assert not torch.allclose(model(obs, action, rtg, t0)[:, 0], model(obs, action, rtg + 1, t0)[:, 0])


def test_masked_cross_entropy_by_hand() -> None:
    logits = torch.tensor([[[0.0, math.log(3.0)], [5.0, 0.0]]])
    loss = masked_cross_entropy(logits, torch.tensor([[1, 1]]), torch.tensor([[True, False]]))
    assert abs(loss.item() - math.log(4 / 3)) < 1e-6  # -log(3/4); the masked step (CE ~5) is ignored


def _batch(seed: int = 0, k: int = 4) -> dict[str, torch.Tensor]:
    obs, action, rtg, _ = _window(3, k, seed)
    return {
        "obs": obs,
        "action": action,
        "rtg": rtg,
        "timestep": torch.arange(k).repeat(3, 1) + torch.tensor([[0], [5], [9]]),
        "mask": torch.tensor([[True] * k, [True, True, False, False], [True] + [False] * (k - 1)]),
    }


def _first_loss(batch: dict[str, torch.Tensor]) -> float:
    """The loss of a fresh agent's first update on ``batch`` (the same weights every time)."""
    return DecisionTransformer(STATES, THREE, seed=0, context_length=4, **SMALL).update(batch)["loss"]


def test_padding_is_ignored_in_the_loss() -> None:
    batch = _batch()
    garbage = {key: value.clone() for key, value in batch.items()}
    pad = ~garbage["mask"]
    garbage["obs"][pad] = 9.0
    garbage["action"][pad] = 2 - garbage["action"][pad]
    garbage["rtg"][pad] = -50.0
    assert _first_loss(batch) == _first_loss(garbage)
    real = {key: value.clone() for key, value in batch.items()}
    real["action"][1, 1] = (real["action"][1, 1] + 1) % 3  # a real step does count
    assert _first_loss(real) != _first_loss(batch)


def _bandit(n: int = 48) -> dict[str, torch.Tensor]:
    """One-step episodes from one state: action a earns a + 1, all actions equally often."""
    action = torch.arange(n) % 3
    return {
        "obs": torch.tensor(np.eye(3, dtype=np.float32)[0]).repeat(n, 2, 1),
        "action": torch.stack([action, torch.zeros(n, dtype=torch.long)], 1),
        "rtg": torch.stack([action.float() + 1, torch.zeros(n)], 1),
        "timestep": torch.zeros(n, 2, dtype=torch.long),
        "mask": torch.tensor([[True, False]]).repeat(n, 1),
    }


def test_dt_learns_to_act_on_the_return_it_is_asked_for() -> None:
    agent = DecisionTransformer(
        STATES, THREE, seed=0, context_length=2, lr=3e-3, return_multiplier=1.0, **SMALL
    )
    batch = _bandit()
    for _ in range(150):
        agent.update(batch)
    obs = np.eye(3, dtype=np.float32)[[0]]
    assert agent.target_return == 3.0  # 1 x the best return seen
    assert agent.predict(obs, deterministic=True)[0].tolist() == [2]
    chosen = []
    for target in (1.0, 2.0, 3.0):
        agent.kwargs["target_return"] = target
        chosen.append(int(agent.predict(obs, deterministic=True)[0][0]))
    assert chosen == [0, 1, 2]


def test_acting_keeps_a_window_per_slot_and_lowers_the_return_by_each_reward() -> None:
    agent = DecisionTransformer(STATES, THREE, seed=0, context_length=3, target_return=10.0, **SMALL)
    obs = np.eye(3, dtype=np.float32)[[0, 1]]
    actions, state = agent.predict(obs)
    assert state.length.tolist() == [1, 1] and state.rtg[:, 0].tolist() == [10.0, 10.0]
    taken = [actions.tolist()]
    for step, reward in enumerate([[1.0, 2.0], [0.5, 0.0], [2.0, 1.0]]):
        agent.observe(np.array(reward), np.zeros(2, dtype=bool))
        start = np.array([False, step == 2])  # slot 1 starts a new episode before the 4th step
        actions, state = agent.predict(obs, state=state, episode_start=start)
        taken.append(actions.tolist())
    # slot 0: 4 steps in a window of 3: the first fell out; RTGs 10-1, 10-1-0.5, 10-1-0.5-2
    assert state.length.tolist() == [3, 1]
    assert state.rtg[0].tolist() == [9.0, 8.5, 6.5] and state.timestep.tolist() == [3, 0]
    assert state.action[0].tolist() == [t[0] for t in taken[1:]]
    assert state.rtg[1, 0].item() == 10.0 and state.action[1, 1:].tolist() == [3, 3]  # reset; padding after


def test_the_lr_warms_up_then_decays_to_a_tenth_and_stays() -> None:
    agent = DecisionTransformer(
        STATES, THREE, seed=0, context_length=2, batch_size=5, warmup_tokens=100, final_tokens=1100, n_layer=1
    )
    tokens = lambda step: (step + 1) * 10  # noqa: E731
    assert agent.lr_multiplier(4) == tokens(4) / 100
    assert abs(agent.lr_multiplier(59) - 0.5 * (1 + math.cos(math.pi * 0.5))) < 1e-9  # halfway: 600 tokens
    assert agent.lr_multiplier(109) == 0.1 and agent.lr_multiplier(10_000) == 0.1


def test_weight_decay_only_on_linear_conv_and_attention_weights() -> None:
    model = _model()
    decay, rest = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert (
        len(decay["params"]) + len(rest["params"])
        == len(names)
        == len(decayed | {names[id(p)] for p in rest["params"]})
    )
    assert all(n.endswith("weight") for n in decayed)
    assert not any("norm" in n or "action_embedding" in n or "position" in n for n in decayed)
    assert "head.weight" in decayed and any(n.endswith("in_proj_weight") for n in decayed)


def test_the_acting_window_holds_the_embeddings_of_the_last_k_frames() -> None:
    agent = DecisionTransformer(STATES, THREE, seed=0, context_length=3, target_return=4.0, **SMALL)
    frames = torch.rand(5, 2, 3, generator=torch.Generator().manual_seed(0))
    state = None
    for step in range(5):
        actions, state = agent.predict(
            frames[step].numpy(), state=state, episode_start=np.array([step == 0] * 2)
        )
        agent.observe(np.ones(2), np.zeros(2, dtype=bool))
    window = frames[2:5].transpose(0, 1)  # (slots, K, obs): the last 3 frames, oldest first
    model = agent.networks["model"]
    with torch.no_grad():
        assert torch.allclose(state.states, model.embed_states(window), atol=1e-6)
        full = model(window, state.action, state.rtg, state.timestep - 3)  # the uncached forward pass
        cached = model.logits(state.states, state.action, state.rtg, state.timestep - 3)
    assert torch.allclose(full, cached, atol=1e-5)
    assert state.rtg[0].tolist() == [2.0, 1.0, 0.0] and state.timestep.tolist() == [5, 5]
