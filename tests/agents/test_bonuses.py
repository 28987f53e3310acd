"""Exploration bonuses (heldout.agents.bonuses): the algebra by hand, the hooks, the state.

Each bonus is checked against a second, independent computation: E3B's Sherman-Morrison inverse
against a direct inverse of ``lambda I + sum phi phi^T`` and its bonus of a repeated feature against
the closed form; the counts against hand-worked sequences; the normaliser against numpy's std over
all bonuses so far.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env

import heldout  # noqa: F401  (registers the gymnasium ids)
from heldout.agents import PPO
from heldout.agents.bonuses import BONUSES, attach_bonus, check_bonus, make_bonus
from heldout.agents.bonuses.count import EpisodicCount, GlobalCount
from heldout.agents.bonuses.e3b import E3B, sherman_morrison
from heldout.agents.bonuses.intrinsic import IntrinsicReward

GRID = spaces.Box(0, 10, (7, 7, 3), np.uint8)
ACTIONS = spaces.Discrete(7)


def _keys(*rows: bytes | None) -> dict[str, list[bytes | None]]:
    return {"obs": list(rows)}


# -- E3B's algebra -----------------------------------------------------------------------------


def test_sherman_morrison_inverse_equals_the_direct_inverse():
    generator = torch.Generator().manual_seed(0)
    slots, d, ridge = 3, 6, 0.1
    inverse = torch.eye(d, dtype=torch.float64).repeat(slots, 1, 1) / ridge
    covariance = torch.eye(d, dtype=torch.float64).repeat(slots, 1, 1) * ridge
    for _ in range(20):
        phi = torch.rand(slots, d, generator=generator, dtype=torch.float64)
        direct_bonus = torch.einsum("ei,eij,ej->e", phi, torch.linalg.inv(covariance), phi)
        bonus, inverse = sherman_morrison(inverse, phi)
        covariance = covariance + phi.unsqueeze(-1) * phi.unsqueeze(-2)
        torch.testing.assert_close(bonus, direct_bonus)
        torch.testing.assert_close(inverse, torch.linalg.inv(covariance))
    assert torch.equal(inverse, inverse.transpose(1, 2))  # u u^T keeps A exactly symmetric


def test_a_repeated_features_bonus_shrinks_as_the_closed_form():
    """phi^T (lambda I + k phi phi^T)^-1 phi = |phi|^2 / (lambda + k |phi|^2) after k visits."""
    phi = torch.tensor([[0.5, 1.0, 2.0]], dtype=torch.float64)
    ridge = 0.1
    inverse = torch.eye(3, dtype=torch.float64).unsqueeze(0) / ridge
    norm2 = float((phi**2).sum())
    seen = []
    for k in range(6):
        bonus, inverse = sherman_morrison(inverse, phi)
        assert float(bonus) == pytest.approx(norm2 / (ridge + k * norm2), rel=1e-12)
        seen.append(float(bonus))
    assert all(a > b for a, b in zip(seen, seen[1:]))


def test_e3b_resets_only_the_slots_whose_episode_starts():
    bonus = E3B(GRID, ACTIONS, n_envs=2, seed=0, dim=8)
    obs = torch.randint(0, 11, (2, 7, 7, 3), dtype=torch.uint8)
    bonus.new_episodes(obs, {}, torch.tensor([True, True]))
    first = bonus.score(obs, {})
    second = bonus.score(obs, {})
    assert torch.all(second < first)  # the same state again: smaller
    bonus.new_episodes(obs, {}, torch.tensor([True, False]))  # slot 0 restarts with obs as s_0
    third = bonus.score(obs, {})
    torch.testing.assert_close(third[0], first[0])  # as after its first start
    assert third[1] < second[1]  # slot 1's memory goes on


# -- counts by hand ---------------------------------------------------------------------------


def test_the_global_count_is_one_over_the_root_of_the_visits_shared_by_slots():
    count = GlobalCount(GRID, ACTIONS, n_envs=2, seed=0)
    obs = torch.zeros(2, 1)
    assert count.score(obs, _keys(b"a", b"a")).tolist() == pytest.approx([1.0, 2**-0.5])
    assert count.score(obs, _keys(b"b", b"a")).tolist() == pytest.approx([1.0, 3**-0.5])
    count.new_episodes(obs, _keys(b"b", None), torch.tensor([True, True]))  # a start is a visit
    assert count.score(obs, _keys(b"b", None)).tolist() == pytest.approx([3**-0.5, 0.0])


def test_the_episodic_count_pays_first_visits_and_forgets_at_an_episode_start():
    count = EpisodicCount(GRID, ACTIONS, n_envs=2, seed=0)
    obs = torch.zeros(2, 1)
    count.new_episodes(obs, _keys(b"s0", b"s0"), torch.tensor([True, True]))
    assert count.score(obs, _keys(b"a", b"s0")).tolist() == [1.0, 0.0]  # s0 was counted at the start
    assert count.score(obs, _keys(b"a", b"b")).tolist() == [0.0, 1.0]
    count.new_episodes(obs, _keys(b"s0", None), torch.tensor([True, False]))
    assert count.score(obs, _keys(b"a", b"b")).tolist() == [1.0, 0.0]  # slot 0 forgot a; slot 1 did not
    root = EpisodicCount(GRID, ACTIONS, n_envs=1, seed=0, form="inverse-sqrt")
    assert [float(root.score(obs[:1], _keys(b"x"))) for _ in range(3)] == pytest.approx([1, 2**-0.5, 3**-0.5])


def test_the_combinations_multiply_or_add_their_parts():
    obs = torch.zeros(1, 7, 7, 3, dtype=torch.uint8)
    product = make_bonus(
        "product", {"global": "count", "episodic": "episodic-count"}, GRID, ACTIONS, 1, 0
    ).bonus
    total = make_bonus(
        "sum", {"global": "count", "episodic": "episodic-count", "global_coef": 0.5}, GRID, ACTIONS, 1, 0
    ).bonus
    keys = _keys(obs[0].numpy().tobytes())
    for bonus in (product, total):
        bonus.new_episodes(obs, _keys(b"start"), torch.tensor([True]))
    assert [float(product.score(obs, keys)) for _ in range(2)] == pytest.approx([1.0, 0.0])  # 1*1, 0*2^-1/2
    assert [float(total.score(obs, keys)) for _ in range(2)] == pytest.approx([1.5, 0.5 * 2**-0.5])


# -- the intrinsic reward ----------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["std", "reference", "none"])
def test_the_intrinsic_reward_divides_by_the_running_std_of_every_raw_bonus_so_far(norm):
    intrinsic = IntrinsicReward(GlobalCount(GRID, ACTIONS, 3, 0), "count", coef=0.5, norm=norm)
    rng = np.random.default_rng(0)
    history = []
    for _ in range(5):
        raw = rng.random(3)
        history.append(raw)
        got = intrinsic.rewards(torch.as_tensor(raw, dtype=torch.float32))
        values = np.concatenate(history).astype(np.float32).astype(np.float64)
        if norm == "std":
            divisor = values.std()
        elif norm == "reference":  # e3b: a step of 3 slots counts as 1 (sums over all)
            count, m2, total = 0.0, 0.0, 0.0
            for batch in history:
                batch = batch.astype(np.float32).astype(np.float64)
                mean_new, mean_old = batch.sum(), (total / count if count else 0.0)
                m2 += ((batch - mean_new) ** 2).sum() + count / (count + 1) * (mean_new - mean_old) ** 2
                count, total = count + 1, total + batch.sum()
            divisor = np.sqrt(m2 / count)
        else:
            divisor = 1.0
        np.testing.assert_allclose(got, 0.5 * raw.astype(np.float32) / divisor, rtol=1e-5)


def test_a_step_scores_the_terminal_observation_then_starts_the_new_episode():
    intrinsic = IntrinsicReward(EpisodicCount(GRID, ACTIONS, 2, 0), "episodic-count", coef=1.0, norm="none")
    a, b, c = (np.full((7, 7, 3), v, np.uint8) for v in (1, 2, 3))
    intrinsic.begin(np.stack([a, a]), torch.device("cpu"))
    dones = np.array([True, True])
    infos = [{"terminal_observation": b}, {}]  # slot 1's env gives no terminal observation (Procgen)
    assert intrinsic.step(np.stack([a, a]), dones, infos, torch.device("cpu")).tolist() == [1.0, 0.0]
    # both slots restarted at a: a is seen, c is new
    assert intrinsic.step(
        np.stack([a, c]), np.array([False, False]), [{}, {}], torch.device("cpu")
    ).tolist() == [
        0.0,
        1.0,
    ]


def test_the_bonus_state_round_trips_through_a_state_dict():
    def build() -> IntrinsicReward:
        return make_bonus(
            "sum", {"global": "count", "episodic": "e3b", "episodic.dim": 4}, GRID, ACTIONS, 2, 3
        )

    first = build()
    obs = np.random.default_rng(0).integers(0, 11, (2, 7, 7, 3), dtype=np.uint8)
    first.begin(obs, torch.device("cpu"))
    first.step(obs, np.array([False, True]), [{}, {"terminal_observation": obs[0]}], torch.device("cpu"))
    state = first.state_dict()
    second = build()
    second.load_state_dict(state)
    assert second.bonus.global_.counts == first.bonus.global_.counts
    assert torch.equal(second.bonus.episodic.inverse, first.bonus.episodic.inverse)
    assert (second.moment_count, second.moment_m2, second.started) == (
        first.moment_count,
        first.moment_m2,
        first.started,
    )
    after = [x.step(obs, np.array([False, False]), [{}, {}], torch.device("cpu")) for x in (first, second)]
    np.testing.assert_array_equal(*after)


# -- the hook in PPO -----------------------------------------------------------------------------


def _trained(engine: str, bonus: str, kwargs: dict, coef: float = 0.01) -> PPO:
    env = make_vec_env("heldout/MiniGrid-DoorKey-5x5-v0", n_envs=2, seed=0)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, engine=engine, device="cpu")
    attach_bonus(model, bonus, {**kwargs, "coef": coef}, seed=0)
    model.learn(128)
    return model


@pytest.mark.parametrize("bonus", ["e3b", "product"])
def test_both_rollout_engines_train_the_same_agent_and_bonus(bonus):
    sb3, device = _trained("sb3", bonus, {}), _trained("heldout", bonus, {})
    for a, b in zip(sb3.policy.state_dict().values(), device.policy.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(sb3.bonus.state_dict().values(), device.bonus.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)


def test_the_intrinsic_reward_reaches_training_but_never_the_evaluation_returns(tmp_path):
    """A whole run with a huge bonus: progress.csv logs it apart (``rollout/intrinsic``) and the
    episodes of eval/*.csv keep MiniGrid's extrinsic range (below 1)."""
    import csv

    from heldout.cli import main

    code = main(
        [
            "train", "--preset", "quickstart", "--env", "minigrid-doorkey-5x5", "--timesteps", "256",
            "--num-envs", "2", "--agent-arg", "n_steps=64", "--agent-arg", "batch_size=64",
            "--eval-episodes", "6", "--eval-freq", "0", "--bonus", "count",
            "--bonus-arg", "coef=100", "--out", str(tmp_path), "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    (run,) = tmp_path.glob("minigrid-doorkey-5x5/ppo/seed0-*")
    with open(run / "progress.csv", newline="") as f:
        intrinsic = [float(r["rollout/intrinsic"]) for r in csv.DictReader(f) if r["rollout/intrinsic"]]
    assert len(intrinsic) == 2 and min(intrinsic) > 10  # per step: coef 100 x a normalised bonus
    for split in ("train", "test"):
        with open(run / "eval" / f"{split}.csv", newline="") as f:
            returns = [float(r["return"]) for r in csv.DictReader(f)]
        assert len(returns) == 6 and max(returns) <= 1.0


def test_every_registered_bonus_has_checked_options():
    for name in BONUSES.names():
        assert check_bonus(name, {})["coef"] == 0.01
    with pytest.raises(ValueError, match="dim=0"):
        check_bonus("e3b", {"dim": 0})
    with pytest.raises(ValueError, match=r"episodic\.ridge=-1\.0"):
        check_bonus("product", {"episodic.ridge": -1.0})
    with pytest.raises(KeyError, match="did you mean 'e3b'"):
        check_bonus("e3c", {})
