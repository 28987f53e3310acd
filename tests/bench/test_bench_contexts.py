"""heldout bench contexts: every reference controller solves its env's default context, the Riccati
solution is one, the table's rates match a recount by another route, and bad input is one line."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import heldout  # noqa: F401  (registers the heldout/Contextual*-v0 ids)
from heldout.bench import contexts as bench_contexts
from heldout.bench.controllers import (
    CONTROLLERS,
    CartPoleLQR,
    cartpole_linearization,
    lqr_gain,
    solve_dare,
)
from heldout.envs import CONTEXTUAL_ENVS


def _episode(env_name: str, seed: int, context: dict | None = None) -> tuple[list[float], list, bool, bool]:
    """One episode of the family's controller through ``gymnasium.make`` of its id (not the benchmark's
    own env builder): per-step rewards, observations, and how it ended."""
    env = gymnasium.make(CONTEXTUAL_ENVS.get(env_name).env_id)
    controller = CONTROLLERS.get(env_name)()
    obs, _ = env.reset(seed=seed, options={"context": context or {}})
    controller.reset(env.unwrapped)
    rewards, observations = [], [obs]
    while True:
        obs, reward, terminated, truncated, _ = env.step(controller.act(obs))
        rewards.append(float(reward))
        observations.append(obs)
        if terminated or truncated:
            env.close()
            return rewards, observations, bool(terminated), bool(truncated)


def test_every_contextual_family_has_a_controller() -> None:
    assert set(CONTROLLERS.names()) == set(CONTEXTUAL_ENVS.names())


def test_cartpole_lqr_balances_500_steps_at_the_default_context() -> None:
    for seed in range(3):
        rewards, _, terminated, truncated = _episode("cartpole", seed)
        assert len(rewards) == 500 and truncated and not terminated


@pytest.mark.parametrize("env_name", ["mountaincar", "mountaincar-continuous"])
def test_energy_pumping_reaches_the_goal_at_the_default_context(env_name: str) -> None:
    goal = CONTEXTUAL_ENVS.get(env_name).context_space.feature("goal_position").default
    for seed in range(3):
        rewards, observations, terminated, _ = _episode(env_name, seed)
        assert terminated and observations[-1][0] >= goal
        assert len(rewards) < CONTEXTUAL_ENVS.get(env_name).max_episode_steps


def test_acrobot_pumping_swings_the_tip_above_the_line() -> None:
    for seed in range(3):
        rewards, observations, terminated, _ = _episode("acrobot", seed)
        c1, s1, c2, s2 = observations[-1][:4]
        # gymnasium's goal: -cos(theta1) - cos(theta1 + theta2) > 1
        assert terminated and -c1 - (c1 * c2 - s1 * s2) > 1.0 and len(rewards) < 500


def test_lunarlander_heuristic_lands_most_episodes_at_default_gravity() -> None:
    landed = 0
    for seed in range(10):
        rewards, _, terminated, _ = _episode("lunarlander", seed)
        landed += terminated and rewards[-1] == 100.0  # gymnasium: +100 for coming to rest, -100 a crash
    assert landed >= 8


def test_pendulum_swing_up_ends_upright_at_the_default_context() -> None:
    for seed in range(3):
        rewards, observations, _, truncated = _episode("pendulum", seed)
        assert truncated and observations[-1][0] > 0.99  # cos(theta): upright
        assert sum(rewards) > -400  # gymnasium's Pendulum is "solved" near -150 to -200


def test_the_riccati_solution_solves_the_equation_and_the_linearisation_is_gymnasiums() -> None:
    a, b = cartpole_linearization(9.8, 1.0, 0.1, 0.5, 0.02)
    q, r = CartPoleLQR.Q, CartPoleLQR.R
    p = solve_dare(a, b, q, r)
    residual = a.T @ p @ a - a.T @ p @ b @ np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a) + q - p
    assert np.max(np.abs(residual)) < 1e-8 * np.max(np.abs(p))
    k = lqr_gain(a, b, q, r)
    assert np.all(np.abs(np.linalg.eigvals(a - b @ k)) < 1.0)  # the closed loop is stable
    # finite differences of gymnasium's own step about the upright pole give the same (A, B)
    env = gymnasium.make("heldout/ContextualCartPole-v0").unwrapped
    env.reset(seed=0)
    eps = 1e-6

    def step(state: np.ndarray, action: int) -> np.ndarray:
        env.state = state.copy()
        env.step(action)
        return np.asarray(env.state, dtype=np.float64)  # the float64 state, not the float32 observation

    zero = np.zeros(4)
    push = (step(zero, 1) - step(zero, 0)) / (2 * env.force_mag)  # the force's column, F = +-10
    assert np.allclose(push, b[:, 0], atol=1e-6)
    base = (step(zero, 1) + step(zero, 0)) / 2
    for i in range(4):
        dx = np.zeros(4)
        dx[i] = eps
        column = ((step(dx, 1) + step(dx, 0)) / 2 - base) / eps
        assert np.allclose(column, a[:, i], atol=1e-4), i


@pytest.mark.parametrize(
    "preset",
    [
        "cartpole-length-extrapolation",
        "mountaincar-gravity-extrapolation",
        "lunarlander-gravity-extrapolation",
    ],
)
def test_the_rates_match_a_recount_of_the_protocols_own_episodes(preset: str) -> None:
    from heldout.protocol.families import family_for
    from heldout.protocol.presets import PRESETS

    result = bench_contexts.measure_preset(preset, episodes=6)
    config = PRESETS.get(preset)
    family = family_for(config.env)
    lists, _ = family.eval_lists(config, family.split(config), 6)  # what run_train evaluates on
    goal = None
    for split, items in lists.items():
        successes, returns = 0, []
        for item in items:
            rewards, observations, terminated, truncated = _episode(config.env, item["seed"], item["context"])
            returns.append(sum(rewards))
            if config.env == "cartpole":
                successes += len(rewards) == 500
            elif config.env == "mountaincar":
                goal = item["context"]["goal_position"]
                successes += observations[-1][0] >= goal
            else:  # lunarlander: landed
                successes += rewards[-1] == 100.0
        got = result["splits"][split]
        assert got["episodes"] == 6
        assert got["successes"] == successes
        assert got["success_rate"] == successes / 6
        assert got["mean_return"] == pytest.approx(np.mean(returns), abs=1e-9)
        line = next(
            row
            for row in bench_contexts.format_table({"presets": [result]}).splitlines()
            if row.startswith(preset) and f" {split} " in row
        )
        assert f"{100 * successes / 6:.0f}%" in line


def test_pendulum_has_no_success_rate() -> None:
    result = bench_contexts.measure_preset("pendulum-length-interpolation", episodes=2)
    assert all(s["success_rate"] is None and s["successes"] is None for s in result["splits"].values())
    # the controller's own goal instead: upright at the last step, in every episode
    for split, s in result["splits"].items():
        assert s["at_goal_rate"] == 1.0, split
    assert "| - (goal 100%), " in bench_contexts.format_markdown({"presets": [result]})


@pytest.mark.parametrize(
    ("argv", "bad"),
    [
        (["--presets", "cartpole-gravity-extrapolaton"], "did you mean 'cartpole-gravity-extrapolation'"),
        (["--presets", "procgen-easy"], "'procgen-easy' is not a contextual preset"),
        (["--presets", ","], "names no preset"),
        (["--presets", "acrobot-mass-interpolation,acrobot-mass-interpolation"], "given twice"),
        (["--episodes", "0"], "--episodes"),
        (["--episodes", "many"], "many"),
        (["--json", "--markdown"], "--json and --markdown"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], bad: str, capsys: pytest.CaptureFixture) -> None:
    assert bench_contexts.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0] and lines[0].startswith("heldout bench contexts: error:")
