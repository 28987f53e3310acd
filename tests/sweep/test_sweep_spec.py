"""The sweep spec: checks, grid expansion and zipping, each run's config and folder name."""

from __future__ import annotations

import pytest

from heldout.sweep.spec import build_runs, expand, load_spec, parse_spec, validate_runs

CARTPOLE = "cartpole-gravity-extrapolation"


def spec(**data):
    return parse_spec({"name": "t", "folder": "sweeps/t", **data})


def test_the_grid_is_the_product_of_its_lists_the_last_key_fastest() -> None:
    points = expand(spec(grid={"agent": ["a", "b"], "seed": [0, 1, 2]}))
    assert points == [
        {"agent": "a", "seed": 0},
        {"agent": "a", "seed": 1},
        {"agent": "a", "seed": 2},
        {"agent": "b", "seed": 0},
        {"agent": "b", "seed": 1},
        {"agent": "b", "seed": 2},
    ]


def test_zipped_lists_step_together_and_are_crossed_with_the_rest() -> None:
    s = spec(
        grid={"agent": ["ppo", "drac"], "seed": [0, 1], "agent_kwargs.ent_coef": [0.0, 0.01]},
        zip=[["agent", "agent_kwargs.ent_coef"]],
    )
    points = expand(s)
    # 2 (agent, ent_coef) pairs x 2 seeds, not 2 x 2 x 2
    assert [(p["agent"], p["agent_kwargs.ent_coef"], p["seed"]) for p in points] == [
        ("ppo", 0.0, 0),
        ("ppo", 0.0, 1),
        ("drac", 0.01, 0),
        ("drac", 0.01, 1),
    ]


def test_a_value_may_repeat_in_a_zipped_list_but_a_zipped_row_may_not() -> None:
    # the reference protocol: PPO twice, once with PLR's level sampler
    s = spec(
        grid={"agent": ["ppo", "ucb-drac", "ppo"], "num_envs": [64, 64, 32]}, zip=[["agent", "num_envs"]]
    )
    assert [(p["agent"], p["num_envs"]) for p in expand(s)] == [("ppo", 64), ("ucb-drac", 64), ("ppo", 32)]
    with pytest.raises(ValueError, match=r"zip group \['agent', 'num_envs'\] lists .*ppo.* twice"):
        spec(grid={"agent": ["ppo", "ppo"], "num_envs": [64, 64]}, zip=[["agent", "num_envs"]])


def test_two_zip_groups_are_two_axes() -> None:
    s = spec(
        grid={"agent": ["p", "q"], "env": ["e", "f"], "seed": [5, 6], "timesteps": [10, 20]},
        zip=[["agent", "env"], ["seed", "timesteps"]],
    )
    got = [(p["agent"], p["env"], p["seed"], p["timesteps"]) for p in expand(s)]
    assert got == [("p", "e", 5, 10), ("p", "e", 6, 20), ("q", "f", 5, 10), ("q", "f", 6, 20)]


def test_runs_start_from_the_preset_then_base_then_the_point_mappings_merged() -> None:
    from heldout.protocol.presets import PRESETS

    s = spec(
        base={"preset": CARTPOLE, "timesteps": 512, "agent_kwargs": {"n_steps": 16}},
        grid={"seed": [3, 4], "agent_kwargs.ent_coef": [0.0, 0.05]},
    )
    runs = build_runs(s)
    preset = PRESETS.get(CARTPOLE)
    assert len(runs) == 4
    first = runs[0].config
    assert first.env == "cartpole" and first.timesteps == 512 and first.seed == 3
    # merged key by key: the preset's other agent_kwargs survive
    assert first.agent_kwargs == {**preset.agent_kwargs, "n_steps": 16, "ent_coef": 0.0}
    assert first.contexts == preset.contexts
    assert first.out == "sweeps/t"
    assert [r.name for r in runs] == [
        "ent_coef=0.0/cartpole/ppo/seed3",
        "ent_coef=0.05/cartpole/ppo/seed3",
        "ent_coef=0.0/cartpole/ppo/seed4",
        "ent_coef=0.05/cartpole/ppo/seed4",
    ]


def test_run_names_without_other_varying_keys_are_env_agent_seed() -> None:
    runs = build_runs(spec(base={"preset": CARTPOLE}, grid={"agent": ["ppo", "sgfd"], "seed": [0]}))
    assert [r.name for r in runs] == ["cartpole/ppo/seed0", "cartpole/sgfd/seed0"]


def test_an_offline_agent_drops_the_presets_online_agent_arguments_as_heldout_train() -> None:
    """The preset's agent arguments are its PPO's: an offline agent keeps only the spec's own."""
    from heldout.protocol.presets import PRESETS

    runs = build_runs(
        spec(
            base={"preset": "minigrid-doorkey", "dataset": "data/x", "agent_kwargs.learning_rate": 1e-3},
            grid={"agent": ["ppo", "bc"]},
        )
    )
    by_agent = {r.config.agent: r.config.agent_kwargs for r in runs}
    assert PRESETS.get("minigrid-doorkey").agent_kwargs  # the preset has some, so the test can fail
    assert by_agent["bc"] == {"learning_rate": 1e-3}
    assert by_agent["ppo"] == {**PRESETS.get("minigrid-doorkey").agent_kwargs, "learning_rate": 1e-3}


def test_a_varying_preset_names_the_folder_and_sets_the_env() -> None:
    runs = build_runs(spec(grid={"preset": [CARTPOLE, "pendulum-mass-extrapolation"]}))
    assert [(r.name, r.config.env) for r in runs] == [
        (f"preset={CARTPOLE}/cartpole/ppo/seed0", "cartpole"),
        ("preset=pendulum-mass-extrapolation/pendulum/ppo/seed0", "pendulum"),
    ]


def test_without_a_preset_runs_start_from_procgen_easy_as_heldout_train() -> None:
    (run,) = build_runs(spec(grid={"env": ["starpilot"]}))
    assert (
        run.config.env == "starpilot" and run.config.num_levels == 200 and run.config.timesteps == 25_000_000
    )


def test_load_spec_reads_yaml_and_defaults_name_and_folder(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("grid:\n  seed: [0, 1]\n")
    s = load_spec(path)
    assert s.name == "mine" and str(s.folder) == "sweeps/mine" and s.grid == {"seed": [0, 1]}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"grid": {"seed": [0]}, "gird": {}}, "unknown key 'gird' (did you mean 'grid'?)"),
        ({"grid": {}}, "the grid is empty"),
        ({}, "the grid is empty"),
        ({"grid": {"seed": [0, 1, 0]}}, "grid.seed lists 0 twice"),
        ({"grid": {"seed": []}}, "grid.seed is an empty list"),
        ({"grid": {"seed": 3}}, "grid.seed must be a list"),
        ({"grid": {"sed": [0]}}, "unknown key 'sed' (did you mean 'seed'?)"),
        ({"grid": {"ent_coef": [0.1]}}, "agent_kwargs.ent_coef"),
        ({"grid": {"agent_kwarg.gamma": [0.9]}}, "did you mean 'agent_kwargs'?"),
        ({"grid": {"out": ["x"]}}, "'out' cannot be set in a sweep"),
        ({"grid": {"seed": [0]}, "base": {"seed": 1}}, "'seed' is both in base and in the grid"),
        ({"grid": {"seed": [0, 1], "agent": ["ppo"]}, "zip": [["seed", "agent"]]}, "seed has 2, agent has 1"),
        ({"grid": {"seed": [0], "agent": ["ppo"]}, "zip": [["seed", "agnt"]]}, "did you mean 'agent'?"),
        ({"grid": {"seed": [0]}, "zip": [["seed"]]}, "two or more grid keys"),
        ({"grid": {"seed": [0]}, "name": "a b"}, "name must be a short name"),
    ],
)
def test_bad_specs_are_refused_naming_the_bad_part(data, needle) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        parse_spec(data, source="s.yaml")
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_an_unknown_preset_and_a_bad_field_value_are_refused_at_build() -> None:
    with pytest.raises(KeyError, match="did you mean 'quickstart'"):
        build_runs(spec(grid={"preset": ["quickstar"]}))
    with pytest.raises(ValueError, match="timesteps"):
        build_runs(spec(base={"preset": CARTPOLE}, grid={"timesteps": [100, -5]}))


def test_two_grid_points_that_are_one_run_are_refused() -> None:
    # the same agent twice through the preset: one folder for two points
    with pytest.raises(ValueError, match="are the same run"):
        build_runs(spec(grid={"env": ["cartpole", "cartpole "]}, base={"preset": CARTPOLE}))


def test_validate_runs_names_the_run_and_the_bad_agent() -> None:
    runs = build_runs(spec(base={"preset": CARTPOLE}, grid={"agent": ["ppo", "ppoo"]}))
    with pytest.raises(KeyError) as info:
        validate_runs(runs)
    message = info.value.args[0]
    assert "cartpole/ppoo/seed0" in message and "did you mean 'ppo'" in message


def test_the_grid_size_is_the_number_of_points_without_expanding() -> None:
    from heldout.sweep.spec import grid_size

    for grid, zipped in (
        ({"agent": ["a", "b"], "seed": [0, 1, 2]}, []),
        ({"agent": ["p", "q"], "env": ["e", "f"], "seed": [5, 6], "timesteps": [10, 20]}, [["agent", "env"]]),
        (
            {"agent": ["p", "q"], "env": ["e", "f"], "seed": [5, 6], "timesteps": [10, 20]},
            [["agent", "env"], ["seed", "timesteps"]],
        ),
        ({"seed": [0]}, []),
    ):
        s = spec(grid=grid, zip=zipped)
        assert grid_size(s) == len(expand(s))


def test_a_million_run_grid_is_refused_without_being_expanded(tmp_path, monkeypatch) -> None:
    """10 games x 1000 seeds x 100 learning rates: refused by its size alone (the expander and the
    run builder are never called), naming the size, its factors and --max-runs."""
    import contextlib
    import io
    import json

    import heldout.sweep.spec as spec_module
    from heldout.cli import main

    def never(*args, **kwargs):
        raise AssertionError("the grid was expanded")

    monkeypatch.setattr(spec_module, "expand", never)
    monkeypatch.setattr(spec_module, "build_runs", never)
    monkeypatch.setattr(spec_module, "build_run", never)
    games = [
        "coinrun",
        "starpilot",
        "bigfish",
        "maze",
        "jumper",
        "heist",
        "ninja",
        "miner",
        "chaser",
        "leaper",
    ]
    grid = {
        "env": games,
        "seed": list(range(1000)),
        "agent_kwargs.learning_rate": [i * 1e-5 for i in range(1, 101)],
    }
    path = tmp_path / "huge.yaml"
    path.write_text(f"name: huge\nfolder: {tmp_path / 'sweep'}\ngrid: {json.dumps(grid)}\n")
    for extra in ([], ["--tune"], ["--max-runs", "999999"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert main(["sweep", str(path), "--dry-run", *extra]) == 2
        (line,) = err.getvalue().splitlines()
        assert "1,000,000 runs (10 env x 1000 seed x 100 agent_kwargs.learning_rate)" in line
        assert "--max-runs 1000000" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.yaml"]


def test_max_runs_confirms_a_grid_above_the_default(tmp_path) -> None:
    import contextlib
    import io

    from heldout.cli import main
    from heldout.sweep.spec import DEFAULT_MAX_RUNS, check_grid_size

    s = spec(grid={"seed": list(range(DEFAULT_MAX_RUNS + 1))})
    with pytest.raises(ValueError, match=f"holds {DEFAULT_MAX_RUNS + 1:,} runs"):
        check_grid_size(s)
    assert check_grid_size(s, DEFAULT_MAX_RUNS + 1) == DEFAULT_MAX_RUNS + 1
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\nfolder: {tmp_path / 'sweep'}\n"
        f"base: {{preset: {CARTPOLE}, timesteps: 64, num_envs: 2}}\ngrid: {{seed: [0, 1, 2]}}\n"
    )
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(out):
        assert main(["sweep", str(path), "--dry-run", "--max-runs", "2"]) == 2
        assert main(["sweep", str(path), "--dry-run", "--max-runs", "3"]) == 0
    assert "3 run" in out.getvalue()


def test_a_spec_sets_the_bonus_and_its_options_key_by_key_and_checks_them() -> None:
    """``bonus`` and ``bonus_kwargs`` (a mapping field: ``bonus_kwargs.KEY`` sets one key over the
    base's); a bad option is refused by the bonus's own check, naming the run."""
    s = spec(
        base={"preset": "quickstart", "bonus": "product", "bonus_kwargs": {"global": "count"}},
        grid={"bonus_kwargs.coef": [0.01, 0.1]},
    )
    runs = build_runs(s)
    assert [r.config.bonus_kwargs for r in runs] == [
        {"global": "count", "coef": 0.01},
        {"global": "count", "coef": 0.1},
    ]
    validate_runs(runs[:1])
    bad = build_runs(spec(base={"preset": "quickstart", "bonus": "e3b"}, grid={"bonus_kwargs.dim": [0]}))
    with pytest.raises(ValueError, match="dim=0"):
        validate_runs(bad)
