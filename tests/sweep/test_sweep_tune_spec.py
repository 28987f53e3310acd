"""A spec's ``tune:`` section: what it accepts, what it refuses (one line each), and the trials it gives."""

from __future__ import annotations

import math

import pytest

from heldout.sweep.spec import parse_spec
from heldout.sweep.tune_spec import Range, trial_points

CARTPOLE = {"preset": "cartpole-gravity-extrapolation", "contexts.validation": {"gravity": "2.45:4.9"}}


def spec(tune, grid=None, base=None):
    return parse_spec(
        {
            "name": "t",
            "folder": "sweeps/t",
            "base": base or CARTPOLE,
            "grid": grid or {"seed": [0, 1]},
            "tune": tune,
        }
    )


def test_a_grid_space_is_every_combination_named_by_its_values() -> None:
    s = spec({"space": {"agent_kwargs.learning_rate": [1e-4, 3e-4], "agent_kwargs.ent_coef": [0.0, 0.01]}})
    assert s.tune.method == "grid" and s.tune.metric == "mean" and s.tune.seeds is None
    trials = trial_points(s.tune)
    assert [name for name, _ in trials] == [
        "learning_rate=0.0001,ent_coef=0.0",
        "learning_rate=0.0001,ent_coef=0.01",
        "learning_rate=0.0003,ent_coef=0.0",
        "learning_rate=0.0003,ent_coef=0.01",
    ]
    assert trials[1][1] == {"agent_kwargs.learning_rate": 1e-4, "agent_kwargs.ent_coef": 0.01}
    assert s.to_dict()["tune"]["space"]["agent_kwargs.ent_coef"] == [0.0, 0.01]


def test_a_random_search_is_seeded_in_its_bounds_and_grows_by_appending() -> None:
    tune = {
        "method": "random",
        "samples": 12,
        "seed": 3,
        "space": {
            "agent_kwargs.learning_rate": {"low": 1e-5, "high": 1e-2, "log": True},
            "agent_kwargs.n_epochs": {"low": 1, "high": 4, "int": True},
            "agent_kwargs.ent_coef": {"low": 0.0, "high": 0.05},
            "agent": ["ppo", "sgfd"],
        },
    }
    trials = trial_points(spec(tune).tune)
    assert [n for n, _ in trials] == [f"trial-{i:03d}" for i in range(12)]
    lrs = [v["agent_kwargs.learning_rate"] for _, v in trials]
    assert all(1e-5 <= x < 1e-2 for x in lrs)
    # log-uniform: the draws spread over the decades (a uniform draw would put ~90% above 1e-3)
    assert sum(x < 1e-3 for x in lrs) >= 4
    assert {v["agent_kwargs.n_epochs"] for _, v in trials} <= {1, 2, 3, 4}
    assert all(isinstance(v["agent_kwargs.n_epochs"], int) for _, v in trials)
    assert all(0.0 <= v["agent_kwargs.ent_coef"] < 0.05 for _, v in trials)
    assert {v["agent"] for _, v in trials} == {"ppo", "sgfd"}
    # the same seed, the same trials; more samples keep the first ones; another seed, other trials
    assert trial_points(spec(tune).tune) == trials
    assert trial_points(spec({**tune, "samples": 20}).tune)[:12] == trials
    assert trial_points(spec({**tune, "seed": 4}).tune) != trials


def test_a_small_discrete_random_space_gives_each_trial_once() -> None:
    trials = trial_points(spec({"method": "random", "samples": 2, "space": {"agent": ["ppo", "sgfd"]}}).tune)
    assert sorted(v["agent"] for _, v in trials) == ["ppo", "sgfd"]


@pytest.mark.parametrize("method", ["random", "optuna"])
def test_more_samples_than_the_space_holds_is_refused(method: str) -> None:
    """2 agents x the 2 whole numbers of [1, 2] = 4 distinct trials: samples 4 is every one of them
    (drawn without repeating), 5 is refused in one line; a float range has no such bound."""
    space = {"agent": ["ppo", "sgfd"], "agent_kwargs.n_epochs": {"low": 1, "high": 2, "int": True}}
    trials = {"method": method, "samples": 4, "space": space}
    if method == "random":
        drawn = trial_points(spec(trials).tune)
        assert sorted((v["agent"], v["agent_kwargs.n_epochs"]) for _, v in drawn) == [
            (a, n) for a in ("ppo", "sgfd") for n in (1, 2)
        ]
    with pytest.raises(
        ValueError, match=r"tune.samples: 5 trials asked of a space that holds 4 distinct"
    ) as info:
        spec({**trials, "samples": 5})
    assert "\n" not in str(info.value)
    spec({**trials, "samples": 50, "space": {**space, "agent_kwargs.ent_coef": {"low": 0.0, "high": 0.1}}})


def test_a_range_draws_log_uniformly() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    draws = [Range(1e-4, 1e-2, log=True).draw(rng) for _ in range(2000)]
    # half the draws below the geometric midpoint 1e-3
    assert 0.45 < sum(d < 1e-3 for d in draws) / len(draws) < 0.55
    assert math.isclose(max(draws), 1e-2, rel_tol=0.05)


@pytest.mark.parametrize(
    ("tune", "grid", "base", "match"),
    [
        ({"spcae": {"agent": ["ppo"]}}, None, None, r"unknown key 'spcae' \(did you mean 'space'\?\)"),
        ({"method": "grdi", "space": {"agent": ["ppo"]}}, None, None, r"'grdi' \(did you mean 'grid'\?\)"),
        (
            {"metric": "median", "space": {"agent": ["ppo"]}},
            None,
            None,
            r"unknown metric 'median'.*mean, iqm",
        ),
        ({"space": {}}, None, None, r"tune.space must name at least one config key"),
        ({"space": {"agent_kwargs.lr": []}}, None, None, r"tune.space.agent_kwargs.lr is an empty list"),
        ({"space": {"agent_kwargs.lr": [0.1, 0.1]}}, None, None, r"lists 0.1 twice"),
        ({"space": {"timestep": [1]}}, None, None, r"unknown key 'timestep' \(did you mean 'timesteps'\?\)"),
        ({"space": {"seed": [1, 2]}}, None, None, r"'seed' cannot be tuned: a trial's seeds are tune.seeds"),
        ({"space": {"env": ["cartpole"]}}, None, None, r"'env' cannot be tuned"),
        ({"space": {"contexts.validation": ["x"]}}, None, None, r"cannot be tuned: .*validation split"),
        ({"space": {"agent_kwargs": [{}]}}, None, None, r"tune one key of 'agent_kwargs' at a time"),
        (
            {"space": {"agent": ["ppo"]}},
            {"agent": ["ppo", "sgfd"]},
            None,
            r"'agent' is also in grid; keep one",
        ),
        ({"space": {"timesteps": [64]}}, None, {**CARTPOLE, "timesteps": 32}, r"'timesteps' is also in base"),
        ({"space": {"agent_kwargs.lr": {"low": 0, "high": 1}}}, None, None, r"a range .* method: random"),
        ({"space": {"agent": ["ppo"]}, "samples": 4}, None, None, r"samples applies to method: random"),
        (
            {"method": "random", "space": {"agent": ["ppo"]}},
            None,
            None,
            r"random needs samples: N, the number of trials",
        ),
        ({"method": "random", "samples": 0, "space": {"agent": ["ppo"]}}, None, None, r"got 0"),
        (
            {"method": "random", "samples": 2, "space": {"agent_kwargs.lr": {"low": 1, "high": 1}}},
            None,
            None,
            r"low must be below high",
        ),
        (
            {
                "method": "random",
                "samples": 2,
                "space": {"agent_kwargs.lr": {"low": 0.0, "high": 1, "log": True}},
            },
            None,
            None,
            r"a log range needs low > 0",
        ),
        (
            {
                "method": "random",
                "samples": 2,
                "space": {"agent_kwargs.n_epochs": {"low": 1.5, "high": 4, "int": True}},
            },
            None,
            None,
            r"whole-number bounds",
        ),
        (
            {"method": "random", "samples": 2, "space": {"agent_kwargs.lr": {"low": "1e-4", "high": 1}}},
            None,
            None,
            r"low must be a number, got '1e-4' \(YAML reads 1e-4 as text: write 1.0e-4\)",
        ),
        (
            {"method": "random", "samples": 2, "space": {"agent_kwargs.lr": {"lo": 1, "high": 2}}},
            None,
            None,
            r"unknown range key 'lo' \(did you mean 'low'\?\)",
        ),
        ({"space": {"agent": ["ppo"]}, "seeds": [0, 0]}, None, None, r"tune.seeds lists 0 twice"),
        ({"space": {"agent": ["ppo"]}, "seeds": []}, None, None, r"tune.seeds must be a list"),
        ({"space": {"agent": ["ppo"]}, "seeds": [True]}, None, None, r"tune.seeds must be a list"),
        ("grid", None, None, r"tune must be a mapping with a space"),
        (
            {"space": {"timesteps": [64]}, "by": ["agnet"]},
            {"agent": ["ppo"]},
            None,
            r"'agnet'.*did you mean 'agent'",
        ),
        ({"space": {"timesteps": [64]}, "by": ["seed"]}, None, None, r"'seed' cannot be tuned apart"),
        ({"space": {"timesteps": [64]}, "by": "agent"}, None, None, r"tune.by must be a list of grid keys"),
        (
            {"space": {"timesteps": [64]}, "by": ["agent", "agent"]},
            {"agent": ["ppo"]},
            None,
            r"lists 'agent' twice",
        ),
    ],
)
def test_a_bad_tune_section_is_one_line_naming_it(tune, grid, base, match) -> None:
    with pytest.raises(ValueError, match=match) as info:
        spec(tune, grid=grid, base=base)
    assert "\n" not in str(info.value)


def test_the_docs_example_plans_three_trials_each_with_a_validation_split() -> None:
    from pathlib import Path

    from heldout.sweep.spec import load_spec
    from heldout.sweep.tune import build_groups, check_validation_split

    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sweep-tune-tiny.yaml"
    groups = build_groups(load_spec(example))
    assert [g.name for g in groups] == ["cartpole/ppo"]
    assert [t.name for t in groups[0].trials] == [
        "learning_rate=0.0001",
        "learning_rate=0.0003",
        "learning_rate=0.001",
    ]
    assert [r.config.seed for t in groups[0].trials for r in t.runs] == [1000, 1000, 1000]
    check_validation_split(groups)


@pytest.mark.parametrize("validation_levels", [0, 50])
def test_level_envs_are_tuned_per_game_on_levels_after_the_test_range(validation_levels: int) -> None:
    from heldout.sweep.tune import build_groups, check_validation_split

    s = parse_spec(
        {
            "name": "p",
            "folder": "sweeps/p",
            "base": {
                "preset": "procgen-easy",
                **({"num_validation_levels": 50} if validation_levels else {}),
            },
            "grid": {"env": ["coinrun", "starpilot"], "seed": [3, 1]},
            "tune": {"space": {"agent_kwargs.ent_coef": [0.0, 0.01]}},
        }
    )
    groups = build_groups(s)
    assert [g.name for g in groups] == ["coinrun/ppo", "starpilot/ppo"]
    assert [r.name for t in groups[1].trials for r in t.runs] == [
        "tune/ent_coef=0.0/starpilot/ppo/seed1000",  # a seed no grid run trains
        "tune/ent_coef=0.01/starpilot/ppo/seed1000",
    ]
    if validation_levels:
        check_validation_split(groups)
    else:
        with pytest.raises(ValueError, match=r"no validation split .*num_validation_levels > 0"):
            check_validation_split(groups)


def test_tuning_seeds_are_apart_from_the_evaluation_seeds() -> None:
    """By default a trial trains a seed no grid run trains (1000, or the first free one above it);
    tune.seeds that a grid run also trains are refused in one line naming them."""
    from heldout.sweep.tune import build_groups, tune_seeds

    def seeds_of(tune, grid=None, base=None):
        return [r.config.seed for r in build_groups(spec(tune, grid, base))[0].trials[0].runs]

    space = {"agent_kwargs.ent_coef": [0.0, 0.01]}
    assert seeds_of({"space": space}) == [1000]
    assert seeds_of({"space": space}, grid={"seed": [1000, 0, 1001]}) == [1002]
    assert seeds_of({"space": space, "seeds": [5, 6]}) == [5, 6]
    # no seed in the grid: the evaluation runs' seed is base's (or the preset's)
    assert seeds_of({"space": space}, grid={"agent": ["ppo"]}, base={**CARTPOLE, "seed": 1000}) == [1001]
    for tune, grid, base, shared in [
        ({"space": space, "seeds": [1, 7]}, None, None, "1"),
        ({"space": space, "seeds": [4]}, {"agent": ["ppo"]}, {**CARTPOLE, "seed": 4}, "4"),
        ({"space": space, "seeds": [0]}, {"agent": ["ppo"]}, None, "0"),  # the preset's seed 0
    ]:
        with pytest.raises(ValueError, match=rf"tune.seeds: {shared} also seed\(s\) the grid's runs") as info:
            tune_seeds(spec(tune, grid, base))
        assert "\n" not in str(info.value) and "leave tune.seeds out" in str(info.value)
