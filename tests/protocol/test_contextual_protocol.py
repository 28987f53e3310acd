"""The protocol on contextual envs, in process and tiny: context columns, by-bin summary, presets,
CLI context overrides and their refusals."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from heldout.cli import main
from heldout.envs import CONTEXTUAL_ENVS
from heldout.protocol.config import TrainConfig
from heldout.protocol.families import split_of
from heldout.protocol.presets import CONTEXT_PRESET_NAMES, PRESETS
from heldout.protocol.validate import validate_config

TINY = [
    "--preset", "cartpole-gravity-extrapolation",
    "--timesteps", "512",
    "--eval-episodes", "12",
    "--eval-freq", "256",
    "--eval-periodic-episodes", "2",
    "--context-bins", "3",
    "--test-context", "gravity=19.6:29.4",
    "--seed", "5",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def ctx_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ctxruns")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["train", *TINY, "--out", str(out)]) == 0
    (run,) = list((out / "cartpole" / "ppo").iterdir())
    return run, buf.getvalue()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_eval_csv_has_a_column_per_context_feature_within_each_split(ctx_run):
    run, _ = ctx_run
    features = CONTEXTUAL_ENVS.get("cartpole").context_space.names
    for split, (lo, hi) in {"train": (4.9, 14.7), "test": (19.6, 29.4)}.items():
        rows = _rows(run / "eval" / f"{split}.csv")
        assert len(rows) == 12
        assert list(rows[0])[5:] == [f"ctx_{f}" for f in features]
        gravities = [float(r["ctx_gravity"]) for r in rows]
        assert all(lo <= g <= hi for g in gravities), (split, gravities)
        assert len(set(gravities)) == 12, "a fresh context per episode"
        assert all(float(r["ctx_length"]) == 0.5 for r in rows)  # not varied: the default
        assert all(int(r["length"]) == float(r["return"]) for r in rows)  # CartPole: +1 a step


def test_summary_breaks_test_returns_down_by_context_bin(ctx_run):
    run, printed = ctx_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "contexts" and summary["context_mode"] == "extrapolation"
    rows = _rows(run / "eval" / "test.csv")
    bins = summary["splits"]["test"]["by_context"]["gravity"]
    edges = [bins[0]["lo"]] + [b["hi"] for b in bins]
    assert edges == pytest.approx([19.6, 22.8667, 26.1333, 29.4], abs=1e-3)
    assert sum(b["episodes"] for b in bins) == len(rows)
    for b in bins:
        inside = [
            float(r["return"])
            for r in rows
            if b["lo"] <= float(r["ctx_gravity"]) < b["hi"]
            or (b["hi"] == 29.4 and float(r["ctx_gravity"]) == 29.4)
        ]
        assert b["episodes"] == len(inside)
        if inside:
            assert b["mean"] == pytest.approx(sum(inside) / len(inside))
    assert set(summary["splits"]["test"]["by_context"]) == {"gravity"}  # only varying features
    assert "mean return by context bin:" in printed
    assert any(line.startswith("test   gravity") for line in printed.splitlines())
    assert summary["gap"] == pytest.approx(
        summary["splits"]["train"]["mean"] - summary["splits"]["test"]["mean"]
    )


def test_cli_context_overrides_land_in_the_config_and_periodic_evals_are_logged(ctx_run):
    run, _ = ctx_run
    config = TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    assert config.contexts["test"] == {"gravity": "19.6:29.4"}
    assert config.contexts["train"] == {"gravity": "4.9:14.7"}
    assert config.reward_norm is False and config.agent_kwargs["policy"] == "MlpPolicy"
    header = (run / "progress.csv").read_text().splitlines()[0].split(",")
    assert "eval/test/mean_return" in header and "eval/gap" in header


def test_eval_on_contexts_of_choice(ctx_run, capsys):
    run, _ = ctx_run
    assert main(["eval", str(run), "--episodes", "4", "--context", "gravity=25:29", "--no-progress"]) == 0
    rows = _rows(run / "eval" / "test-gravity=25:29.csv")
    assert len(rows) == 4 and all(25 <= float(r["ctx_gravity"]) <= 29 for r in rows)
    bins = json.loads((run / "eval" / "test-gravity=25:29.json").read_text())["splits"]["test"]["by_context"]
    assert bins["gravity"][0]["lo"] == 25 and bins["gravity"][-1]["hi"] == 29  # the range evaluated
    assert main(["eval", str(run), "--episodes", "4", "--shift", "backgrounds-off", "--no-progress"]) == 2
    assert "Procgen" in capsys.readouterr().err


def test_contexts_of_training_episodes_are_logged(ctx_run):
    run, _ = ctx_run
    rows = [r for r in _rows(run / "progress.csv") if r.get("train_context/episodes")]
    assert rows, "every rollout in which an episode ended logs its contexts"
    for r in rows:
        lo, mean, hi = (float(r[f"train_context/gravity_{k}"]) for k in ("min", "mean", "max"))
        assert 4.9 <= lo <= mean <= hi <= 14.7  # the training range, not the test one
    assert not any(k.startswith("train_context/length") for k in rows[0])  # only varied features
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = run.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"histograms": 0})
    acc.Reload()
    assert "train_context/gravity" in acc.Tags()["histograms"]
    counts = sum(h.histogram_value.num for h in acc.Histograms("train_context/gravity"))
    assert counts == sum(int(r["train_context/episodes"]) for r in rows)


def test_eval_on_contexts_inside_the_training_range_is_labelled_train_range(ctx_run, capsys):
    run, _ = ctx_run
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "3", "--context", "gravity=5:10", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "warning: --context gravity=5:10" in err and "inside the run's training distribution" in err
    assert "recorded as split 'train-range', not 'test'" in err
    assert not (run / "eval" / "test-gravity=5:10.csv").exists()
    summary = json.loads((run / "eval" / "train-range-gravity=5:10.json").read_text())
    assert list(summary["splits"]) == ["train-range"]
    # half inside, half outside: partly
    assert main(["eval", str(run), "--episodes", "3", "--context", "gravity=10:20", "--no-progress"]) == 0
    assert "'partly-train-range'" in capsys.readouterr().err
    assert (run / "eval" / "partly-train-range-gravity=10:20.csv").is_file()


def test_training_overlap_is_judged_per_component_on_closed_ranges():
    from heldout.contexts import ContextDistribution as D
    from heldout.protocol.reevaluate import training_overlap

    train = D.parse({"gravity": "4.9:7.35|12.25:14.7"})
    defaults = {"gravity": 9.8, "length": 0.5}
    assert training_overlap(train, D.parse({"gravity": "5:7"}), defaults) == "inside"
    assert training_overlap(train, D.parse({"gravity": "7:8"}), defaults) == "partly"
    assert training_overlap(train, D.parse({"gravity": "7.35:12.25"}), defaults) == "held-out"  # ends touch
    assert training_overlap(train, D.parse({"gravity": 14.7}), defaults) == "inside"  # a closed end
    assert training_overlap(train, D.parse({"gravity": "5:6", "length": "0.75:1"}), defaults) == "held-out"
    assert training_overlap(train, D.parse({"gravity": "5:6", "length": 0.5}), defaults) == "inside"
    combinatorial = D.parse(
        [{"gravity": "4.9:9.8", "length": "0.25:0.75"}, {"gravity": "4.9:14.7", "length": "0.25:0.5"}]
    )
    assert (
        training_overlap(combinatorial, D.parse({"gravity": "9.8:14.7", "length": "0.5:0.75"})) == "held-out"
    )
    assert training_overlap(combinatorial, D.parse({"gravity": "10:14", "length": "0.3:0.4"})) == "inside"


@pytest.mark.parametrize(
    "test",
    [
        {"gravity": 9.8, "length": "0.5:0.75"},  # on the gravity edge of the first training box
        {"gravity": "9.8:14.7", "length": 0.5},  # on the length edge of the second
        [{"gravity": 9.8, "length": 0.75}],  # a corner of the first box
        {"length": "0.5:0.75"},  # gravity at its default 9.8: the edge again
    ],
)
def test_a_combinatorial_test_set_on_the_edge_of_a_training_box_is_refused(test):
    from heldout.contexts import ContextDistribution as D
    from heldout.splits import ContextSplit

    train = D.parse(
        [{"gravity": "4.9:9.8", "length": "0.25:0.75"}, {"gravity": "4.9:14.7", "length": "0.25:0.5"}]
    )
    defaults = {"gravity": 9.8, "length": 0.5}
    with pytest.raises(ValueError, match="overlap in every feature"):
        ContextSplit(train, D.parse(test), mode="combinatorial", defaults=defaults)
    # strictly outside both boxes (meeting them only on a face of probability zero): accepted
    ok = ContextSplit(
        train, D.parse({"gravity": "9.8:14.7", "length": "0.5:0.75"}), mode="combinatorial", defaults=defaults
    )
    assert ok.mode == "combinatorial"


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--test-context", "gravity=10:20"], ["overlap", "gravity"]),
        (["--test-context", "gravity=5:6", "--context-mode", "interpolation"], ["overlap"]),
        (["--test-context", "gravity=20:40"], ["'gravity'", "40", "[0.98, 29.4]"]),
        (["--train-context", "gravty=5:6"], ["'gravty'", "did you mean 'gravity'"]),
        (["--train-context", "gravity=abc"], ["cannot read context distribution 'abc'"]),
        (["--env-option", "use_backgrounds=false"], ["Procgen visual switches"]),
        (["--visible-context", "shown"], ["invalid choice"]),
    ],
)
def test_bad_context_input_is_one_line_exit_2(tmp_path, capsys, args, needles):
    code = main(["train", "--preset", "cartpole-gravity-extrapolation", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "o").exists(), "nothing is created on bad input"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--visible-context", "concat"], "levels, not contexts"),
        (["--test-context", "gravity=1:2"], "levels, not contexts"),
        (["--context-mode", "interpolation"], "levels, not contexts"),
    ],
)
def test_context_flags_on_a_procgen_env_are_refused(tmp_path, capsys, args, needle):
    assert main(["train", "--env", "coinrun", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "coinrun" in err


@pytest.mark.parametrize("name", CONTEXT_PRESET_NAMES)
def test_every_contextual_preset_is_a_valid_split_of_its_mode(name):
    config = PRESETS.get(name)
    validate_config(config)
    split = split_of(config)
    assert split.mode == config.contexts["mode"] and split.mode in name


@pytest.mark.parametrize("family", CONTEXTUAL_ENVS.names())
def test_every_family_has_interpolation_and_extrapolation_presets(family):
    modes = {PRESETS.get(n).contexts["mode"] for n in CONTEXT_PRESET_NAMES if PRESETS.get(n).env == family}
    assert {"interpolation", "extrapolation"} <= modes


@pytest.mark.parametrize("visible", ["concat", "dict"])
def test_visible_context_trains_and_evaluates(tmp_path, visible):
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(
            ["train", "--preset", "pendulum-mass-extrapolation", "--timesteps", "256", "--num-envs", "2",
             "--agent-arg", "n_steps=128", "--eval-episodes", "2", "--visible-context", visible,
             "--out", str(tmp_path), "--no-progress"]
        )  # fmt: skip
    assert code == 0
    (run,) = list((tmp_path / "pendulum" / "ppo").iterdir())
    rows = _rows(run / "eval" / "test.csv")
    assert len(rows) == 2 and all(1.5 <= float(r["ctx_m"]) <= 3.0 for r in rows)
    assert all(int(r["length"]) == 200 for r in rows)


def test_zoo_linear_schedules_resolve_and_bad_ones_are_refused():
    from heldout.protocol.families import LinearSchedule, resolve_schedules

    kwargs = resolve_schedules({"learning_rate": "lin_1e-3", "clip_range": 0.2, "n_steps": 32})
    assert isinstance(kwargs["learning_rate"], LinearSchedule)
    assert kwargs["learning_rate"](1.0) == pytest.approx(1e-3) and kwargs["learning_rate"](
        0.25
    ) == pytest.approx(2.5e-4)
    assert kwargs["clip_range"] == 0.2 and kwargs["n_steps"] == 32
    for bad in ("lin_x", "cosine_1e-3"):
        with pytest.raises(ValueError, match="learning_rate"):
            resolve_schedules({"learning_rate": bad})


@pytest.mark.slow
def test_the_cartpole_extrapolation_preset_learns_and_reports_bins(tmp_path):
    """The done-when run in full (about half a minute on 2 CPU cores): PPO learns CartPole on the
    training gravities, and the summary breaks test returns down by gravity bin."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert (
            main(
                [
                    "train",
                    "--preset",
                    "cartpole-gravity-extrapolation",
                    "--out",
                    str(tmp_path),
                    "--no-progress",
                ]
            )
            == 0
        )
    (run,) = list((tmp_path / "cartpole" / "ppo").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["timesteps"] >= 100_000
    assert summary["splits"]["train"]["mean"] > 450
    bins = summary["splits"]["test"]["by_context"]["gravity"]
    assert len(bins) == 5 and sum(b["episodes"] for b in bins) == 100
