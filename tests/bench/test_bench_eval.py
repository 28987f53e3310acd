"""``heldout bench eval``: bad values refused before anything runs, and a tiny run's figures add up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heldout.bench import evaluation


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--episodes", "0"], "--episodes"),
        (["--num-envs", "-3"], "--num-envs"),
        (["--game", "coinrn"], "coinrn"),
        (["--no-untrained"], "--no-untrained"),
        (["--precision", "fp16"], "fp16"),
        (["--floor-seconds", "nan"], "nan"),
        (["--run", "no-such-run"], "no-such-run"),
        (["--json", "no-such-dir/e.json"], "no-such-dir"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluation.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and bad in err[0]


def test_a_tiny_run_reports_consistent_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    argv = ["--game", "bigfish", "--episodes", "3", "--num-envs", "2", "--precision", "fp32"]
    assert evaluation.main([*argv, "--floor-seconds", "0.2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    (row,) = results["rows"]
    assert row["episodes"] == 3 and row["precision"] == "fp32"
    # the policy acted for exactly the listed episodes' steps: none for slots idle in the tail
    assert row["inferred_samples"] == row["env_steps"]
    assert 0 < row["inference_share"] < 1
    assert row["steps_per_second"] == pytest.approx(row["env_steps"] / row["seconds"])
    assert row["of_inference_floor"] == pytest.approx(row["steps_per_second"] / row["inference_floor"])
    assert row["serial_floor"] < min(row["inference_floor"], results["env_floor"])
    assert "of floor" in capsys.readouterr().out
