"""heldout bench wrappers: every applicable wrapper timed batched and per env, against no wrapper."""

from __future__ import annotations

import json

from heldout.bench import wrappers as bench_wrappers


def test_bench_wrappers_times_the_applicable_wrappers(tmp_path, capsys):
    code = bench_wrappers.main(
        [
            "--num-envs", "4", "--steps", "5", "--rounds", "1",
            "--wrappers", "grayscale,reward-scale:scale=2,visible-context,episode-stats",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    sps = results["env_steps_per_s"]
    # visible-context needs a contextual env: left out, not an error
    assert set(sps) == {
        "none",
        "grayscale",
        "reward-scale:scale=2",
        "episode-stats",
        "grayscale (per env)",
        "reward-scale:scale=2 (per env)",
        "episode-stats (per env)",
    }
    assert all(v > 0 for v in sps.values())
    assert results["ratio_to_none"]["none"] == 1.0
    assert abs(results["ratio_to_none"]["grayscale"] - sps["grayscale"] / sps["none"]) < 1e-12
    assert (tmp_path / "episode-stats.csv").is_file()
    assert "ratio" in capsys.readouterr().out
