"""heldout bench levels on a budget of seconds: one ordinary run folder per (size, seed), a table whose
figures are the runs' own evaluation files averaged by hand, and bad input refused before any work."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml

from heldout.bench import levels as bench_levels
from heldout.splits import LevelSet

#: MiniGrid DoorKey-5x5, 2 envs x 64 steps, 1 update of 1 epoch per run, 2 evaluation episodes a split.
TINY = [
    "--env", "minigrid-doorkey-5x5",
    "--total-timesteps", "128",
    "--num-envs", "2",
    "--agent-arg", "n_steps=64",
    "--agent-arg", "batch_size=64",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "2",
    "--eval-freq", "0",
]  # fmt: skip


def _mean_return(csv_path: Path) -> float:
    with open(csv_path, newline="") as f:
        return statistics.fmean(float(row["return"]) for row in csv.DictReader(f))


def test_levels_runs_one_folder_per_size_and_seed_and_tables_their_means(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "bench"
    code = bench_levels.main([*TINY, "--num-levels", "2,1", "--seeds", "0,1", "--out", str(out), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert "[4/4] ppo on minigrid-doorkey-5x5, 2 training level(s), seed 1" in captured.err  # progress
    results = json.loads((out / "results.json").read_text())
    assert printed["table"] == results["table"]
    # an independent read: every run folder, its config.yaml and its eval CSVs
    found: dict[int, dict[str, list[float]]] = {}
    folders = sorted(out.glob("levels-*/minigrid-doorkey-5x5/ppo/seed*"))
    assert len(folders) == 4
    for folder in folders:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert folder.parent.parent.parent.name == f"levels-{config['num_levels']}"
        assert json.loads((folder / "status.json").read_text())["state"] == "complete"
        split = json.loads((folder / "split.json").read_text())
        assert LevelSet.from_dict(split["split"]["train"]).to_list() == list(range(config["num_levels"]))
        assert set(split["eval_levels"]["train"]) <= set(range(config["num_levels"]))
        per = found.setdefault(config["num_levels"], {"train": [], "test": [], "seeds": []})
        per["seeds"].append(config["seed"])
        for name in ("train", "test"):
            per[name].append(_mean_return(folder / "eval" / f"{name}.csv"))
    assert sorted(found) == [1, 2]
    assert [row["num_levels"] for row in results["table"]] == [1, 2]  # ascending, whatever the order given
    markdown = (out / "results.md").read_text()
    for row in results["table"]:
        mine = found[row["num_levels"]]
        assert sorted(row["seeds"]) == sorted(mine["seeds"]) == [0, 1]
        for name in ("train", "test"):
            assert row[name]["value"] == pytest.approx(statistics.fmean(mine[name]), abs=1e-9)
            lo, hi = row[name]["ci"]  # a bootstrap over two seeds stays within them
            assert min(mine[name]) - 1e-12 <= lo <= hi <= max(mine[name]) + 1e-12
        gap = statistics.fmean(a - b for a, b in zip(mine["train"], mine["test"], strict=True))
        assert row["gap"]["value"] == pytest.approx(gap, abs=1e-9)
        cells = f"| {row['num_levels']} | 2 | {statistics.fmean(mine['train']):.3f} ["
        assert cells in markdown
    assert (out / "levels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summarize_runs_by_hand() -> None:
    runs = [
        {"num_levels": 10, "seed": 0, "train": 4.0, "test": 1.0, "gap": 3.0},
        {"num_levels": 10, "seed": 1, "train": 6.0, "test": 3.0, "gap": 3.0},
        {"num_levels": 5, "seed": 0, "train": 9.0, "test": 0.0, "gap": 9.0},
    ]
    rows = bench_levels.summarize_runs(runs)
    assert [r["num_levels"] for r in rows] == [5, 10]
    assert rows[0]["train"] == {"value": 9.0, "ci": None}  # one seed: no interval
    assert rows[1]["train"]["value"] == 5.0 and rows[1]["test"]["value"] == 2.0
    lo, hi = rows[1]["train"]["ci"]
    assert 4.0 <= lo < hi <= 6.0
    assert rows[1]["gap"] == {"value": 3.0, "ci": [3.0, 3.0]}


@pytest.mark.parametrize(
    ("argv", "bad"),
    [
        (["--env", "minigrid-dorkey-5x5"], "did you mean 'minigrid-doorkey-5x5'"),
        (["--env", "cartpole"], "contextual env"),
        (["--agent", "ppoo"], "did you mean 'ppo'"),
        (["--num-levels", "5,5"], "5 is given twice"),
        (["--num-levels", "0,5"], "0 is not a positive number"),
        (["--num-levels", "-3"], "-3 is not a positive number"),
        (["--num-levels", "ten"], "'ten'"),
        (["--num-levels", ","], "names no training-set size"),
        (["--num-levels", "100000001"], "larger than the seed space"),
        (["--seeds", "0,0"], "0 is given twice"),
        (["--seeds", "-1"], "-1"),
        (["--total-timesteps", "0"], "--total-timesteps"),
        (["--preset", "procgen-esy"], "did you mean 'procgen-easy'"),
        (["--agent-arg", "gama=0.9"], "gama"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    argv: list[str], bad: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "bench"
    assert bench_levels.main(["--env", "minigrid-doorkey-5x5", "--out", str(out), *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1, captured.err
    assert lines[0].startswith("heldout bench levels: error:") and bad in lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow  # fingerprints 5,000 training and 1,000 test levels: ~8 s of CPU
def test_a_size_with_no_leak_free_test_list_is_refused_before_any_run(tmp_path: Path, capsys) -> None:
    """DoorKey-5x5 has few distinct levels: 5000 training levels hold every one of 20 test levels."""
    out = tmp_path / "bench"
    argv = [*TINY, "--num-levels", "1,5000", "--seeds", "0", "--out", str(out)]
    code = bench_levels.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--num-levels 5000" in err[0], err
    assert not out.exists()
