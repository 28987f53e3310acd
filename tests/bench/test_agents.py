"""Fast checks of the agent benchmark: throughput keys and ratios, the tables, the CLI error path.

No timing or return assertions: figures depend on the machine, its load and the budget.
"""

from __future__ import annotations

import pytest

from heldout.bench import agents as bench_agents
from heldout.cli import main


def test_agent_throughput_ratios_are_over_ppo() -> None:
    result = bench_agents.agent_throughput(
        ["ppo", "drac"], "starpilot", num_envs=2, n_steps=8, iterations=1, device="cpu"
    )
    sps = result["steps_per_s"]
    assert set(sps) == {"ppo", "drac"} and all(v > 0 for v in sps.values())
    assert result["ratio_to_ppo"]["ppo"] == 1.0
    assert result["ratio_to_ppo"]["drac"] == pytest.approx(sps["drac"] / sps["ppo"])
    assert result["settings"]["batch_size"] == 2  # 2 envs x 8 steps / 8 minibatches
    assert all(0 < result["update_seconds"][a] for a in sps)


def _run(agent: str, game: str, seed: int, train: float, test: float) -> dict:
    return {
        "agent": agent,
        "game": game,
        "seed": seed,
        "train": train,
        "test": test,
        "gap": train - test,
        "steps_per_s": 100.0,
    }


def test_format_results_means_and_standard_errors_over_seeds() -> None:
    results = {
        "config": {"timesteps": 1000, "num_levels": 200, "eval_episodes": 100},
        "runs": [
            _run("ppo", "starpilot", 0, 3.0, 2.0),
            _run("ppo", "starpilot", 1, 5.0, 4.0),
            _run("drac", "starpilot", 0, 4.0, 4.0),
        ],
    }
    text = bench_agents.format_results(results)
    # ppo: test mean 3.0, sample std sqrt(2), se = sqrt(2) / sqrt(2) = 1.00
    ppo_row = next(line for line in text.splitlines() if " ppo " in f" {line} ")
    assert "3.00 ± 1.00" in ppo_row and "4.00 ± 1.00" in ppo_row and "1.00 ± 0.00" in ppo_row
    drac_row = next(line for line in text.splitlines() if "drac" in line)
    assert "4.00 (n/a)" in drac_row and "0.00 (n/a)" in drac_row


def test_format_results_adds_the_focus_columns() -> None:
    runs = []
    for seed, (v_test, lp_test) in enumerate([(0.2, 0.3), (0.4, 0.5)]):
        run = _run("sg-ppo", "starpilot", seed, 3.0, 2.0)
        run["focus"] = {
            "train": {"value": 0.1, "log_prob": 0.1},
            "test": {"value": v_test, "log_prob": lp_test},
        }
        run["foreground_share"] = {"train": 0.01, "test": 0.02}
        run["focus_settings"] = {"episodes": 8, "max_steps": 200, "method": "guided_backprop"}
        runs.append(run)
    text = bench_agents.format_results({"config": {"timesteps": 1000}, "runs": runs})
    header = next(line for line in text.splitlines() if "focus V test" in line)
    assert header.index("focus V train") < header.index("focus V test") < header.index("fg share test")
    row = next(line for line in text.splitlines() if "sg-ppo" in line)
    # train focus 0.100 ± 0.000, test V 0.300 ± 0.100, test log pi 0.400 ± 0.100, fg share 0.020
    assert row.split()[-11:] == "100 0.100 ± 0.000 0.300 ± 0.100 0.400 ± 0.100 0.020".split()
    assert "8 episodes per split" in text


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--agents", "ppo,dracc"], "unknown agent 'dracc'"),
        (["--games", "starpilt"], "starpilt"),
        (["--seeds", "a,b"], "--seeds"),
        (["--agent-arg", "quantile=0.9"], "taken by none of the agents ppo, drac"),
        (["--agent-arg", "quantile"], "expects KEY=VALUE"),
        (["--timesteps", "0"], "--timesteps"),
        (["--augmentation", "corp"], "did you mean 'crop'"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(args: list[str], needle: str, capsys, tmp_path) -> None:
    assert main(["bench", "agents", *args, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "b").exists()
