"""``heldout collect`` on a subset of the run's training levels (``--num-levels``), checked against
the env itself (issue 29, items 1 and 4b)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("h5py", reason="offline datasets need h5py (a dependency: make install installs it)")

from heldout.cli import main  # noqa: E402
from heldout.protocol.dataset import open_dataset  # noqa: E402
from tests.cli.test_bad_inputs import FIXTURE_TRAIN  # noqa: E402

ENV = "minigrid-doorkey-6x6"

#: A tiny MiniGrid PPO run on 5 training levels: the bad-input catalogue's tiny CartPole run, on MiniGrid.
TINY_PPO = ["minigrid-doorkey" if a == "cartpole-gravity-extrapolation" else a for a in FIXTURE_TRAIN]


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def minigrid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("collect")
    code, _, err = _cli(*TINY_PPO, "--out", str(root / "runs"))
    assert code == 0, err
    (run,) = (root / "runs" / ENV / "ppo").iterdir()
    return run


def test_num_levels_records_the_first_k_levels_only(minigrid_run: Path, tmp_path: Path) -> None:
    """Every episode of a ``--num-levels 2`` dataset is on level 0 or 1 (the run trains on 0-4), and
    its first frame is the frame the env itself gives on a reset to that level."""
    from heldout.envs.seeded import SeededLevelEnv

    out = tmp_path / "k2"
    code, printed, err = _cli(
        "collect", str(minigrid_run), "--steps", "700", "--num-levels", "2", "--num-envs", "4",
        "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    dataset = open_dataset(out)
    meta = dataset.heldout
    assert meta["train_levels"] == {"start": 0, "stop": 2} and meta["num_levels"] == 2
    assert meta["run_train_levels"] == {"start": 0, "stop": 5}
    assert "[0, 2)" in printed
    episodes = list(dataset.read_episodes(range(len(dataset.lengths)), keys=("observations", "level_seed")))
    played = sorted({int(x) for e in episodes for x in e["level_seed"]})
    assert played == meta["levels_played"] == dataset.levels
    assert set(played) <= {0, 1} and len(episodes) >= 2
    env = SeededLevelEnv(ENV)
    try:
        for e in episodes:
            level = int(e["level_seed"][0])
            assert (e["level_seed"] == level).all()  # one level an episode
            first, _ = env.reset(options={"level": level})
            np.testing.assert_array_equal(e["observations"][0], first)
    finally:
        env.close()


def test_without_num_levels_every_training_level_may_be_played(minigrid_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "all"
    code, _, err = _cli(
        "collect", str(minigrid_run), "--steps", "400", "--num-envs", "4", "--out", str(out), "--no-progress"
    )
    assert code == 0, err
    meta = json.loads((out / "data" / "metadata.json").read_text())["heldout"]
    assert meta["train_levels"] == meta["run_train_levels"] == {"start": 0, "stop": 5}
    assert meta["num_levels"] == 5 and set(meta["levels_played"]) <= set(range(5))


@pytest.mark.parametrize("k", ["6", "0", "x"])
def test_num_levels_out_of_range_writes_nothing(minigrid_run: Path, tmp_path: Path, k: str) -> None:
    out = tmp_path / "bad"
    code, _, err = _cli("collect", str(minigrid_run), "--steps", "100", "--num-levels", k, "--out", str(out))
    assert code == 2 and not out.exists() and not list(tmp_path.iterdir())
    (line,) = err.strip().splitlines()[-1:]
    assert repr(k) in line or f"--num-levels {k} " in line
    if k == "6":
        assert "valid: 1 to 5" in line


#: The flags of a BC run on the CartPole dataset.
TINY_CARTPOLE = [
    "--preset", "cartpole-gravity-extrapolation",
    "--num-envs", "2",
    "--eval-episodes", "2",
    "--eval-freq", "0",
    "--seed", "0",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def cartpole_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny contextual PPO run and a dataset it collected: ``(run folder, dataset)``."""
    root = tmp_path_factory.mktemp("contextual")
    code, _, err = _cli(*FIXTURE_TRAIN, "--out", str(root / "runs"))
    assert code == 0, err
    (run,) = (root / "runs" / "cartpole" / "ppo").iterdir()
    code, printed, err = _cli(
        "collect", str(run), "--steps", "400", "--num-envs", "2", "--out", str(root / "data"), "--no-progress"
    )
    assert code == 0, err
    assert "contexts gravity U[4.9, 14.7]" in printed
    return run, root / "data"


def _physics_step(context: dict[str, float], state: np.ndarray, action: int) -> np.ndarray:
    """gymnasium's own CartPole, its physics set from ``context`` by hand, one step from ``state``."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    env = CartPoleEnv()
    for name, value in context.items():
        setattr(env, name, value)
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length
    env.reset(seed=0)
    env.state = np.asarray(state, dtype=np.float64)
    return env.step(action)[0]


def test_contextual_collection_records_the_context_the_env_had(cartpole_data: tuple[Path, Path]) -> None:
    """Every step's recorded context is the env's: gymnasium's CartPole with that context's physics
    (set independently of heldout's env) turns each recorded state and action into the recorded next
    state, and another episode's context does not."""
    from heldout.envs.contextual.cartpole import ContextualCartPole

    dataset = open_dataset(cartpole_data[1])
    names = ContextualCartPole.context_space.names
    assert dataset.context_features == names and dataset.heldout["kind"] == "contexts"
    assert dataset.heldout["levels_played"] == [] and "train_contexts" in dataset.heldout
    episodes = list(dataset.read_episodes(range(len(dataset.lengths))))
    contexts = []
    for e in episodes:
        values = {n: e[f"context/{n}"] for n in names}
        assert all(len(v) == len(e["observations"]) and (v == v[0]).all() for v in values.values())
        contexts.append({n: float(v[0]) for n, v in values.items()})
        assert 4.9 <= contexts[-1]["gravity"] <= 14.7 and contexts[-1]["masscart"] == 1.0
    gravities = [c["gravity"] for c in contexts]
    assert len(episodes) >= 4 and max(gravities) - min(gravities) > 1.0  # a fresh context per episode
    far = {
        i: max(range(len(contexts)), key=lambda j: abs(gravities[j] - gravities[i]))
        for i in range(len(contexts))
    }
    for i, e in enumerate(episodes):
        obs, actions = e["observations"], e["actions"]
        for t in range(min(len(actions), 8)):
            np.testing.assert_allclose(
                _physics_step(contexts[i], obs[t], int(actions[t])), obs[t + 1], atol=2e-6
            )
        other = [
            _physics_step(contexts[far[i]], obs[t], int(actions[t])) for t in range(1, min(len(actions), 8))
        ]
        assert not np.allclose(other, obs[2 : len(other) + 2], atol=2e-6)


def test_bc_learns_from_a_contextual_dataset(cartpole_data: tuple[Path, Path], tmp_path: Path) -> None:
    bc = [
        "--agent",
        "bc",
        "--dataset",
        str(cartpole_data[1]),
        "--timesteps",
        "256",
        "--agent-arg",
        "batch_size=64",
    ]
    code, _, err = _cli("train", *TINY_CARTPOLE, *bc, "--out", str(tmp_path / "runs"))
    assert code == 0, err
    (run,) = (tmp_path / "runs" / "cartpole" / "bc").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agent"] == "bc" and summary["timesteps"] == 256 and summary["kind"] == "contexts"


def test_a_contextual_dataset_in_held_out_contexts_is_refused(
    cartpole_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Gravity 4.9-14.7 recorded; a run that holds out 4.9-14.7 (and trains on 15-29) is refused."""
    swap = [
        "--train-context",
        "gravity=15:29",
        "--test-context",
        "gravity=4.9:14.7",
        "--context-mode",
        "extrapolation",
    ]
    argv = ["train", *TINY_CARTPOLE, *swap, "--agent", "bc", "--dataset", str(cartpole_data[1])]
    code, _, err = _cli(*argv, "--out", str(tmp_path / "runs"))
    assert code == 2 and not (tmp_path / "runs").exists()
    line = err.strip().splitlines()[-1]
    assert "was played in context gravity=" in line and "test contexts" in line


def test_num_levels_on_a_contextual_run_is_refused(cartpole_data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "d"
    code, _, err = _cli(
        "collect", str(cartpole_data[0]), "--steps", "10", "--num-levels", "2", "--out", str(out)
    )
    assert code == 2 and not out.exists()
    assert "--num-levels 2 applies to level runs" in err.strip().splitlines()[-1]


def test_a_dict_observation_run_is_refused_before_anything_is_written(
    cartpole_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """A dataset holds Box observations: a run whose visible context is a Dict observation is refused."""
    import shutil

    import yaml

    run = tmp_path / "dict-run"
    shutil.copytree(cartpole_data[0], run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "visible_context": "dict"}, sort_keys=False))
    out = tmp_path / "d"
    code, _, err = _cli("collect", str(run), "--steps", "10", "--out", str(out))
    assert code == 2 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert "visible_context dict) has Dict observations" in line and "valid:" in line


def test_every_step_played_is_recorded_and_the_dataset_holds_at_least_steps(
    minigrid_run: Path, tmp_path: Path
) -> None:
    """Collection discards nothing: the actions the model chose (counted at its ``predict``, all
    slots together) are exactly the dataset's, in number and as a multiset; the dataset holds at least
    ``steps`` transitions, and only episodes that ended (the last step of each is a termination or a
    truncation)."""
    from heldout.protocol.checkpoint import load_trained_model
    from heldout.protocol.collect import _collect_env, _play, plan_collect
    from heldout.protocol.dataset import DatasetWriter

    config, path, _, family, split = plan_collect(minigrid_run, 300, tmp_path / "unused")
    model = load_trained_model(config, path, device="cpu")
    chosen: list[int] = []
    predict = model.predict

    def counting(obs: np.ndarray, deterministic: bool = False) -> tuple:
        actions, state = predict(obs, deterministic=deterministic)
        chosen.extend(np.asarray(actions).reshape(-1).tolist())
        return actions, state

    model.predict = counting  # type: ignore[method-assign]
    venv = _collect_env(family, config, split, 4, 0)
    writer = DatasetWriter(tmp_path / "data", venv.observation_space, venv.action_space)
    try:
        _play(model, venv, writer, 300, 0, np.random.default_rng(0), None, False, None)
    finally:
        venv.close()
    writer.close({"env": config.env, "recipe": "test"}, "heldout/test-v0")
    data = open_dataset(tmp_path / "data")
    episodes = list(data.read_episodes(range(len(data.lengths))))
    recorded = np.concatenate([ep["actions"] for ep in episodes]).tolist()
    assert len(recorded) == data.total_steps >= 300
    assert len(recorded) == len(chosen)  # no action the model chose was thrown away
    assert sorted(recorded) == sorted(chosen)
    assert all(bool(ep["terminations"][-1] or ep["truncations"][-1]) for ep in episodes)


def test_collect_writes_the_same_file_with_its_writer_in_a_child_process(
    minigrid_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a core is spare (a GPU acting, more cores than torch's threads) ``heldout collect`` writes
    in a child process; the dataset must be the inline writer's, byte for byte."""
    import heldout.protocol.background_writer as background
    import heldout.protocol.collect as collect_module
    from heldout.protocol.dataset import DATA, MAIN

    made: list[str] = []
    current = [""]
    real = background.BackgroundWriter.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(current[0])
        real(self, *args, **kwargs)

    monkeypatch.setattr(background.BackgroundWriter, "__init__", counting)
    for spare, name in ((False, "inline"), (True, "child")):
        monkeypatch.setattr(collect_module, "spare_core", lambda device, spare=spare: spare)
        current[0] = name
        code, _, err = _cli(
            "collect", str(minigrid_run), "--steps", "300", "--num-envs", "4", "--seed", "3",
            "--out", str(tmp_path / name), "--no-progress",
        )  # fmt: skip
        assert code == 0, err
    assert made == ["child"]  # the child process wrote the second dataset only
    assert (tmp_path / "child" / DATA / MAIN).read_bytes() == (tmp_path / "inline" / DATA / MAIN).read_bytes()


def test_collect_plays_with_the_torch_threads_heldout_eval_uses(
    minigrid_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``heldout eval`` and training limit torch's threads to the run's ``torch_threads`` (else the
    family's default: one for MiniGrid); collection plays under the same limit, and afterwards the
    process has its own threads again."""
    import torch

    import heldout.protocol.collect as collect_module
    from heldout.protocol.families import family_for
    from heldout.protocol.run_folder import load_run

    config = load_run(minigrid_run)[0]
    expected = config.torch_threads or family_for(config.env).default_torch_threads
    assert expected == 1
    seen: list[int] = []
    real = collect_module._play

    def recording(*args: Any) -> None:
        seen.append(torch.get_num_threads())
        real(*args)

    monkeypatch.setattr(collect_module, "_play", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        code, _, err = _cli(
            "collect", str(minigrid_run), "--steps", "100", "--num-envs", "2",
            "--out", str(tmp_path / "data"), "--no-progress",
        )  # fmt: skip
        assert code == 0, err
        assert seen == [expected]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
