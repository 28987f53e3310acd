"""The protocol end to end, in process, on a tiny budget; and the CLI's bad-input contract."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from heldout.cli import main
from heldout.protocol.config import TrainConfig
from heldout.protocol.evaluate import evaluation_levels
from heldout.protocol.families import split_of
from heldout.protocol.presets import PRESETS
from heldout.protocol.validate import validate_config
from heldout.splits import LevelSet

# starpilot: short episodes even for an untrained agent (coinrun's run to the 1000-step timeout)
TINY = [
    "--env", "starpilot",
    "--timesteps", "256",
    "--num-envs", "4",
    "--num-levels", "50",
    "--num-test-levels", "40",
    "--agent-arg", "n_steps=32",
    "--agent-arg", "batch_size=64",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "6",
    "--eval-freq", "128",
    "--eval-periodic-episodes", "2",
    "--seed", "3",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs")
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["train", *TINY, "--out", str(out)])
    assert code == 0
    runs = list((out / "starpilot" / "ppo").iterdir())
    assert len(runs) == 1
    return runs[0], buf.getvalue()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_a_complete_run_folder(tiny_run: tuple[Path, str]) -> None:
    run, printed = tiny_run
    assert run.name.startswith("seed3-")
    for name in ("config.yaml", "command.txt", "git.txt", "progress.csv", "model.zip", "summary.json"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*")), "no TensorBoard events"
    assert not list(run.rglob("*.tmp*")), "temporary files left behind"
    config = TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    assert config.timesteps == 256 and config.seed == 3 and config.agent_kwargs["n_steps"] == 32
    assert "--timesteps 256" in (run / "command.txt").read_text()
    # the table then the run folder, last
    lines = printed.strip().splitlines()
    assert lines[-1] == f"run folder: {run}"
    assert any(line.startswith("train ") for line in lines) and any(
        line.startswith("test ") for line in lines
    )


def test_eval_levels_lie_in_their_split(tiny_run: tuple[Path, str]) -> None:
    run, _ = tiny_run
    train, test = _rows(run / "eval" / "train.csv"), _rows(run / "eval" / "test.csv")
    assert len(train) == 6 and len(test) == 6
    split = split_of(TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text())))
    test_levels = [int(r["level"]) for r in test]
    assert all(level in split.test for level in test_levels)
    assert not any(level in split.train for level in test_levels)
    assert all(int(r["level"]) in split.train for r in train)
    assert len(set(test_levels)) == 6, "a fixed list of distinct test levels"
    for r in train + test:
        assert int(r["length"]) > 0 and float(r["return"]) >= 0


def test_summary_matches_the_episode_files(tiny_run: tuple[Path, str]) -> None:
    run, _ = tiny_run
    summary = json.loads((run / "summary.json").read_text())
    means = {}
    for split in ("train", "test"):
        returns = [float(r["return"]) for r in _rows(run / "eval" / f"{split}.csv")]
        means[split] = sum(returns) / len(returns)
        s = summary["splits"][split]
        assert s["episodes"] == len(returns)
        assert s["mean"] == pytest.approx(means[split])
        assert s["normalized"] == pytest.approx((means[split] - 2.5) / (64 - 2.5))  # starpilot easy
    assert summary["gap"] == pytest.approx(means["train"] - means["test"])
    assert summary["timesteps"] >= 256
    assert summary["leakage"]["test"]["checked"] is True


def test_periodic_eval_is_logged(tiny_run: tuple[Path, str]) -> None:
    run, _ = tiny_run
    header = (run / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("eval/train/mean_return", "eval/test/mean_return", "eval/gap", "train/value_loss"):
        assert key in header, key


def test_eval_command_on_settings_never_seen(
    tiny_run: tuple[Path, str], capsys: pytest.CaptureFixture
) -> None:
    run, _ = tiny_run
    code = main(
        [
            "eval",
            str(run),
            "--split",
            "test",
            "--episodes",
            "3",
            "--distribution-mode",
            "hard",
            "--no-progress",
        ]
    )
    assert code == 0
    rows = _rows(run / "eval" / "test-hard.csv")
    assert len(rows) == 3
    summary = json.loads((run / "eval" / "test-hard.json").read_text())
    assert summary["settings"]["distribution_mode"] == "hard"
    assert "test" in capsys.readouterr().out


def test_eval_with_a_visual_shift_records_a_split_on_the_same_test_levels(
    tiny_run: tuple[Path, str], capsys: pytest.CaptureFixture
) -> None:
    run, _ = tiny_run
    args = ["eval", str(run), "--episodes", "3", "--no-progress"]
    assert main([*args, "--shift", "backgrounds-off"]) == 0
    shifted = _rows(run / "eval" / "test-shift-backgrounds-off.csv")
    plain = _rows(run / "eval" / "test.csv")
    assert [r["level"] for r in shifted] == [r["level"] for r in plain][:3]  # the fixed list, in order
    summary = json.loads((run / "eval" / "test-shift-backgrounds-off.json").read_text())
    assert list(summary["splits"]) == ["test-shift-backgrounds-off"]
    assert summary["shift"] == "backgrounds-off"
    assert summary["settings"]["env_options"]["use_backgrounds"] is False
    assert "test-shift-backgrounds-off" in capsys.readouterr().out
    assert main([*args, "--shift", "background-off"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1 and "did you mean 'backgrounds-off'" in err and "monochrome-assets" in err
    )


def test_eval_rejects_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config.yaml" in err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--env", "coinrn"], "did you mean 'coinrun'"),
        (["--agent", "ppoo"], "did you mean 'ppo'"),
        (["--timesteps", "0"], "positive"),
        (["--timesteps", "-5"], "positive"),
        (["--num-levels", "100", "--test-start", "50"], "overlap"),
        (["--distribution-mode", "medium"], "valid modes"),
        (["--env-option", "use_backgrund=false"], "use_backgrounds"),
        (["--preset", "quikstart"], "did you mean 'quickstart'"),
        (["--agent", "ppo", "--augmentation", "crop"], "takes no augmentation"),
        (["--agent", "ucb-drac", "--augmentation", "crop"], "picks among its arms"),
        (["--agent", "drac", "--augmentation", "corp"], "did you mean 'crop'"),
        (["--agent", "drac", "--agent-arg", "aug_cof=0.2"], "did you mean 'aug_coef'"),
        (["--agent", "ucb-drac", "--agent-arg", "arms=[crop,fliip]"], "did you mean 'flip'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_folder(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "runs"
    code = main(["train", *args, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert needle in err
    assert not out.exists(), "a run folder was created for bad input"


def test_unwritable_out_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["train", "--timesteps", "64", "--out", str(blocker / "runs"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--out" in err
    assert blocker.read_text() == "not a folder"


def test_evaluation_levels_are_fixed_distinct_and_exclude() -> None:
    test = LevelSet.range(1000, 2000)
    a, b = evaluation_levels(test, 100), evaluation_levels(test, 100)
    assert a == b and len(set(a)) == 100 and all(x in test for x in a)
    c = evaluation_levels(test, 100, exclude=a[:10])
    assert not set(a[:10]) & set(c)
    small = evaluation_levels(LevelSet.of([1, 2, 3]), 7)
    assert len(small) == 7 and set(small) == {1, 2, 3}


@pytest.mark.parametrize("name", PRESETS.names())
def test_presets_are_valid(name: str) -> None:
    validate_config(PRESETS.get(name).resolved())  # as run_train does ("best" augmentation -> the game's)


def test_reference_preset_matches_the_procgen_protocol() -> None:
    c = PRESETS.get("procgen-easy")
    assert (c.timesteps, c.num_envs, c.num_levels, c.distribution_mode) == (25_000_000, 64, 200, "easy")
    assert c.reward_norm and c.reward_norm_gamma == 0.99 and not c.deterministic_eval


@pytest.mark.parametrize(
    "name", ["procgen-easy", "procgen-hard", "rad-procgen-easy", "drac-procgen-easy", "ucb-drac-procgen-easy"]
)
def test_procgen_presets_evaluate_periodically(name: str) -> None:
    """A learning curve of 25-40 points (learning_curve.png), each evaluation a few % of the steps."""
    c = PRESETS.get(name)
    assert c.eval_freq > 0 and 25 <= c.timesteps // c.eval_freq <= 40
    assert 0 < c.eval_periodic_episodes <= 64


def test_quickstart_shows_a_gap_on_minigrid_and_the_coinrun_one_is_kept() -> None:
    q = PRESETS.get("quickstart")
    assert q.env == "minigrid-doorkey-6x6" and q.num_levels == 5
    assert q.eval_freq > 0 and q.timesteps // q.eval_freq >= 8  # the curve has 8+ points
    old = PRESETS.get("procgen-quickstart")
    assert (old.env, old.timesteps) == ("coinrun", 24_576)


def test_progress_bar_dependencies_are_installed() -> None:
    """heldout train shows its own tqdm bar by default (heldout.protocol.progress)."""
    from heldout.protocol.progress import RunProgress

    RunProgress(1, file=io.StringIO(), heartbeat=0).close()  # raises ImportError when tqdm is missing


def test_best_augmentation_resolves_per_game() -> None:
    drac = PRESETS.get("drac-procgen-easy")
    assert drac.resolved().agent_kwargs["augmentation"] == "random-conv"  # coinrun
    assert drac.replace(env="starpilot").resolved().agent_kwargs["augmentation"] == "crop"
    assert drac.replace(env="bossfight").resolved().agent_kwargs["augmentation"] == "flip"


@pytest.mark.parametrize("agent", ["rad", "drac", "ucb-drac"])
def test_augmented_agents_train_from_the_cli(agent: str, tmp_path: Path) -> None:
    import io
    from contextlib import redirect_stdout

    extra = [] if agent == "ucb-drac" else ["--augmentation", "crop"]
    args = [a for a in TINY if a not in ("--eval-freq", "128")]
    with redirect_stdout(io.StringIO()):
        code = main(["train", *args, "--eval-freq", "0", "--agent", agent, *extra, "--out", str(tmp_path)])
    assert code == 0
    (run,) = (tmp_path / "starpilot" / agent).iterdir()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["agent"] == agent
    if extra:
        assert config["agent_kwargs"]["augmentation"] == "crop"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agent"] == agent and summary["splits"]["test"]["episodes"] == 6
    with open(run / "progress.csv") as f:
        header = f.readline()
    assert ("drac_value_reg" in header) == (agent != "rad")
    assert ("ucb/count/crop" in header) == (agent == "ucb-drac")


OFF_POLICY_ARGS = [
    "--agent-arg",
    "buffer_size=1000",
    "--agent-arg",
    "learning_starts=64",
    "--agent-arg",
    "batch_size=16",
]


@pytest.mark.parametrize(
    "agent, logged",
    [("sg-ppo", "sg_mask_share"), ("sgfd", "sgfd_classifier_accuracy"), ("sgqn", "sgqn_mask_share")],
)
def test_saliency_agents_train_from_the_cli(agent: str, logged: str, tmp_path: Path) -> None:
    import io
    from contextlib import redirect_stdout

    args = [a for a in TINY if a not in ("--eval-freq", "128")]
    if agent == "sgqn":  # an off-policy agent: no rollout arguments
        args = [a for a in args if a not in ("--agent-arg", "n_steps=32", "batch_size=64", "n_epochs=1")]
        args += OFF_POLICY_ARGS
    with redirect_stdout(io.StringIO()):
        code = main(["train", *args, "--eval-freq", "0", "--agent", agent, "--out", str(tmp_path)])
    assert code == 0
    (run,) = (tmp_path / "starpilot" / agent).iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agent"] == agent and summary["splits"]["test"]["episodes"] == 6
    with open(run / "progress.csv") as f:
        assert logged in f.readline()


def test_torch_threads_applies_inside_the_run_and_is_restored() -> None:
    import torch

    from heldout.protocol.evaluate import torch_threads
    from heldout.protocol.families import family_for

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == before
    assert family_for("cartpole").default_torch_threads == 1
    assert family_for("coinrun").default_torch_threads == 0
    with pytest.raises(ValueError, match="torch_threads"):
        TrainConfig(torch_threads=-1).validate()


@pytest.mark.parametrize("units", [False, True])
def test_bf16_on_a_cpu_without_bf16_units_says_so_before_training(
    units, monkeypatch, capsys, tmp_path
) -> None:
    """One line naming the CPU and the measured cost, printed before ``learn`` starts; the run goes on
    (emulated bf16 is correct, only slow). Nothing on a CPU with bf16 units."""
    from heldout.agents import precision
    from heldout.agents.ppo import PPO
    from heldout.protocol.run import run_train

    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: units)
    said_before: list[bool] = []
    learn = PPO.learn

    def spy(self, *args, **kwargs):
        said_before.append("bf16 is emulated" in capsys.readouterr().err)
        return learn(self, *args, **kwargs)

    monkeypatch.setattr(PPO, "learn", spy)
    preset = PRESETS.get("cartpole-gravity-extrapolation")
    config = preset.replace(
        timesteps=128,
        eval_episodes=1,
        agent_kwargs={**preset.agent_kwargs, "precision": "bf16"},
        out=str(tmp_path),
    )
    run_dir, _ = run_train(config, progress=False, stream=io.StringIO())
    assert said_before == [not units]
    assert (run_dir / "summary.json").is_file()
