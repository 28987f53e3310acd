"""benchmarks/offline_study.py, the summary of the offline-vs-online studies (docs/offline.md, "Measured"):
its figures against an independent computation from the run folders' evaluation CSVs with scipy."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from fake_runs import make_run
from scipy.stats import mannwhitneyu, trim_mean

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "offline_study.py"


def _study():
    spec = importlib.util.spec_from_file_location("offline_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mean_return(run: Path, split: str) -> float:
    with open(run / "eval" / f"{split}.csv", newline="") as f:
        return float(np.mean([float(row["return"]) for row in csv.DictReader(f)]))


def _p_better(x: list[float], y: list[float]) -> float:
    return float(mannwhitneyu(x, y).statistic) / (len(x) * len(y))


def test_offline_study_matches_an_independent_computation(tmp_path):
    online, offline, out = tmp_path / "online", tmp_path / "offline", tmp_path / "out"
    runs = {"ppo": [make_run(online, "coinrun", "ppo", s, 0.3) for s in range(3)]}
    for agent, skill in (("bc", 0.25), ("cql", 0.1)):
        runs[agent] = [make_run(offline, "coinrun", agent, s, skill) for s in range(5)]
    _study().main([str(online), str(offline)], str(out))

    result = json.loads((out / "results.json").read_text())
    assert list(result) == ["ppo", "bc", "cql"]
    for agent, folders in runs.items():
        train = [_mean_return(r, "train") for r in folders]
        test = [_mean_return(r, "test") for r in folders]
        got = result[agent]
        assert got["seeds"] == list(range(len(folders)))
        assert got["test"] == pytest.approx(test)
        for key, values in (("train", train), ("test", test), ("gap", np.subtract(train, test))):
            value, (lo, hi) = got[f"{key}_iqm"]
            assert value == pytest.approx(trim_mean(values, 0.25))
            assert lo <= value <= hi
        for ref in ("bc", "ppo"):
            p = got[f"p_test_better_than_{ref}"]
            if ref == agent:
                assert p is None
            else:
                assert p[0] == pytest.approx(_p_better(test, [_mean_return(r, "test") for r in runs[ref]]))
                assert p[1][0] <= p[0] <= p[1][1]
    rows = (out / "results.md").read_text().splitlines()
    assert [row.split(" | ")[0] for row in rows[2:]] == ["| ppo", "| bc", "| cql"]
