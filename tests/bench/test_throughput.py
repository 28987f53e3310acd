"""Fast checks of the throughput benchmark: result keys, ratios, the table and the CLI error path.

No timing assertions: figures depend on the machine and its load.
"""

from __future__ import annotations

import math

import pytest

from heldout.bench import throughput as bench


@pytest.fixture(scope="module")
def env_results() -> dict[str, float]:
    return bench.env_throughput("coinrun", num_envs=4, steps=200, seed=0, repeats=2)


def test_env_throughput_keys_are_positive_numbers(env_results: dict[str, float]) -> None:
    for key in bench.ENV_VARIANTS:
        assert f"{key}_steps_per_s" in env_results
    for key, value in env_results.items():
        assert isinstance(value, float), key
        assert math.isfinite(value) and value > 0, key
    assert env_results["num_envs"] == 4
    assert env_results["env_steps"] == 200  # 50 vector steps of 4 envs
    assert env_results["repeats"] == 2


def test_env_throughput_ratios_are_ours_over_raw(env_results: dict[str, float]) -> None:
    raw = env_results["raw_core_steps_per_s"]
    for key in ("procgen_vec_env", "gymnasium_sync"):
        assert env_results[f"{key}_vs_raw_core"] == pytest.approx(env_results[f"{key}_steps_per_s"] / raw)


def test_env_steps_round_up_to_whole_vector_steps() -> None:
    result = bench.env_throughput("coinrun", num_envs=3, steps=10, seed=1, repeats=1)
    assert result["env_steps"] == 12


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"steps": -5}, "steps"),
        ({"repeats": 0}, "repeats"),
        ({"game": "coinrn"}, "coinrn"),
    ],
)
def test_env_throughput_rejects_bad_values(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        bench.env_throughput(**{"num_envs": 2, "steps": 10, **kwargs})


def test_format_throughput_names_every_variant(env_results: dict[str, float]) -> None:
    train = {
        "device": "cpu",
        "num_envs": 4,
        "n_steps": 8,
        "iterations": 1,
        "batch_size": 4,
        "n_epochs": 3,
        "timed_env_steps": 32,
        "warmup_iterations": 1,
        "steps_per_s": {
            "heldout_ppo_vec": 120.0,
            "heldout_ppo_vec_bf16": 200.0,
            "heldout_engine": 135.0,
            "heldout_engine_bf16": 225.0,
            "sb3_ppo_vec": 100.0,
            "sb3_ppo_dummy": 80.0,
        },
        "floor_steps_per_s": {"fp32": 150.0, "bf16": 250.0},
        "seconds": dict.fromkeys(bench.TRAIN_VARIANTS, 1.0),
        "rollout_seconds": dict.fromkeys(bench.TRAIN_VARIANTS, 0.4),
        "update_seconds": dict.fromkeys(bench.TRAIN_VARIANTS, 0.6),
        "ratios": {"heldout_ppo_vec/sb3_ppo_vec": 1.2},
    }
    results = {
        "config": {"game": "coinrun"},
        "machine": bench.machine_info("cpu"),
        "env": env_results,
        "train": train,
    }
    text = bench.format_throughput(results)
    for label in bench.ENV_VARIANTS.values():
        assert label.format(n=4, game="coinrun") in text
    for label in bench.TRAIN_VARIANTS.values():
        assert label.format(n=4, game="coinrun") in text
    assert "torch" in text and "python" in text and "CPUs" in text
    assert "1.50x" in text  # 120 / 80 vs SB3 + DummyVecEnv
    assert "learner floor (fp32): 150.0 steps/s" in text
    assert "reaches 80% with engine sb3, 90% with engine heldout" in text  # 120 / 150, 135 / 150
    assert "learner floor (bf16): 250.0 steps/s" in text
    assert "reaches 80% with engine sb3, 90% with engine heldout" in text.split("learner floor (bf16)")[1]
    engine_row = next(
        line for line in text.splitlines() if line.startswith(bench.TRAIN_VARIANTS["heldout_engine"])
    )
    assert (
        "1.35x" in engine_row and "1.69x" in engine_row and "90%" in engine_row
    )  # vs stock, vs dummy, floor
    floor_row = next(line for line in text.splitlines() if line.startswith("learner floor (bf16): bare"))
    assert "250.0" in floor_row and "2.50x" in floor_row  # the floor as a row, vs stock SB3


def test_format_throughput_without_train(env_results: dict[str, float]) -> None:
    text = bench.format_throughput({"config": {"game": "coinrun"}, "env": env_results})
    assert "procgen raw core" in text
    assert "PPO training" not in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--num-envs", "0"],
        ["--env-steps", "-1"],
        ["--iterations", "0"],
        ["--n-steps", "abc"],
        ["--game", "coinrn"],
        ["--device", "tpu"],
        ["--no-such-option"],
        ["--variants", "heldout_engine,warp_drive"],
    ],
)
def test_main_bad_values_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("heldout bench: error: ")
    assert argv[-1].split(",")[-1] in lines[0]


def test_main_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--game",
        "--num-envs",
        "--env-steps",
        "--n-steps",
        "--iterations",
        "--device",
        "--skip-train",
        "--variants",
        "--json",
    ):
        assert option in out


def test_main_skip_train_writes_json(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = tmp_path / "bench.json"
    argv = ["--num-envs", "2", "--env-steps", "20", "--repeats", "1", "--skip-train", "--device", "cpu"]
    assert bench.main([*argv, "--json", str(path)]) == 0
    assert "heldout ProcgenVecEnv" in capsys.readouterr().out
    saved = json.loads(path.read_text())
    assert saved["env"]["procgen_vec_env_steps_per_s"] > 0
    assert "train" not in saved


@pytest.mark.slow  # builds and trains three IMPALA PPOs: seconds on a quiet machine, a minute on a busy one
def test_train_throughput_tiny() -> None:
    result = bench.train_throughput("coinrun", num_envs=2, n_steps=8, iterations=1, device="cpu", seed=0)
    assert result["batch_size"] == 2
    assert result["timed_env_steps"] == 16
    assert set(result["steps_per_s"]) == set(bench.TRAIN_VARIANTS)
    assert set(result["floor_steps_per_s"]) == {"fp32", "bf16"}
    for precision, floor in result["floor_steps_per_s"].items():  # timed in the same rounds
        assert floor == pytest.approx(result["timed_env_steps"] / result["floor_seconds"][precision])
    for key in bench.TRAIN_VARIANTS:
        assert result["steps_per_s"][key] > 0
        assert result["seconds"][key] == pytest.approx(
            result["rollout_seconds"][key] + result["update_seconds"][key]
        )
    sps = result["steps_per_s"]
    assert result["ratios"]["heldout_ppo_vec/sb3_ppo_vec"] == pytest.approx(
        sps["heldout_ppo_vec"] / sps["sb3_ppo_vec"]
    )
    text = bench.format_throughput({"train": result})
    assert "PPO training" in text and "rollout storage MB" in text
    # rollout bytes, worked by hand: 8 steps x 2 envs of 64x64x3 uint8 frames (the engine: 9 steps, the
    # bootstrap frame too) plus small float32 fields of 16 or 18 entries each
    frame = 64 * 64 * 3
    memory = result["memory"]
    assert set(memory) == set(bench.TRAIN_VARIANTS) | set(bench.FLOOR_KEYS.values())
    for key in ("sb3_ppo_vec", "heldout_ppo_vec"):
        assert 8 * 2 * frame < memory[key]["rollout_bytes"] < 8 * 2 * frame + 2048, key
    for key in ("heldout_engine", "heldout_engine_bf16"):
        assert 9 * 2 * frame < memory[key]["rollout_bytes"] < 9 * 2 * frame + 2048, key
    assert all(memory[k]["rollout_bytes"] is None for k in bench.FLOOR_KEYS.values())
    assert all(m["held_bytes"] is None or m["held_bytes"] >= 0 for m in memory.values())


def test_train_throughput_rejects_tiny_rollout() -> None:
    with pytest.raises(ValueError, match="num_envs \\* n_steps"):
        bench.train_throughput(num_envs=1, n_steps=8, device="cpu")


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=pytest.mark.slow)])
def test_the_learner_floor_is_rollout_samples_per_second_of_update(
    precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a clock that advances one second per reading, one update takes one second: the floor is
    then the rollout's sample count, num_envs x n_steps (not minibatches, not epochs)."""
    ticks = iter(range(10**6))
    monkeypatch.setattr(bench.time, "perf_counter", lambda: float(next(ticks)))
    floor = bench.learner_floor(
        num_envs=2, n_steps=4, batch_size=8, device="cpu", precision=precision, repeats=1
    )
    assert floor == 2 * 4


@pytest.mark.parametrize(
    ("reason", "argv"),
    [("emulated here", []), (None, []), ("emulated here", ["--variants", "heldout_engine_bf16"])],
)
def test_the_default_run_leaves_bf16_out_where_it_is_emulated(
    reason, argv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a CPU without bf16 units the default variants drop the bf16 ones and the output says why;
    asked for by name they run; on other machines every variant runs."""
    from heldout.agents import precision

    monkeypatch.setattr(precision, "emulated_bf16", lambda device="cpu": reason)
    timed: list[list[str]] = []
    monkeypatch.setattr(bench, "env_throughput", lambda *a, **k: {})
    monkeypatch.setattr(bench, "train_throughput", lambda *a, variants, **k: timed.append(variants) or {})
    assert bench.main(["--device", "cpu", *argv]) == 0
    captured = capsys.readouterr()
    bf16 = [v for v in bench.TRAIN_VARIANTS if v.endswith("_bf16")]
    if reason and not argv:
        assert timed == [[v for v in bench.TRAIN_VARIANTS if v not in bf16]]
        line = f"bf16 variants left out: {reason}; name them in --variants to time them anyway"
        assert line in captured.err and line in captured.out
    else:
        assert timed == [argv[1:] or list(bench.TRAIN_VARIANTS)]
        assert "left out" not in captured.err + captured.out


def test_seeded_env_row_counts_its_steps_and_lands_in_the_json(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--seeded-env``: both variants step whole vector steps (25 asked of 4 envs: 7 vector steps = 28
    env steps), the table names the env and the ratio is the two figures' quotient."""
    import json

    path = tmp_path / "bench.json"
    argv = ["--num-envs", "4", "--env-steps", "25", "--repeats", "1", "--skip-train", "--device", "cpu"]
    assert bench.main([*argv, "--seeded-env", "minigrid-doorkey-5x5", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Env stepping: minigrid-doorkey-5x5, 4 envs" in out and "SeededLevelEnv x 4" in out
    seeded = json.loads(path.read_text())["seeded_env"]
    assert seeded["env_steps"] == 28 and seeded["num_envs"] == 4
    assert seeded["level_env_vs_raw"] == pytest.approx(
        seeded["level_env_steps_per_s"] / seeded["raw_steps_per_s"]
    )
