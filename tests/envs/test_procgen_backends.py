"""The two procgen backends (procgen-mirror on Python 3.11/3.12, procgen-gym on 3.13) play the same
levels: a few cases traced here and in the other stack's venv, compared (the full sweep:
benchmarks/procgen_backends.py; the result and why frames differ: docs/install.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heldout.envs.procgen_backends import (
    Case,
    action_sequences,
    backend_of,
    compare,
    load,
    other_pythons,
    record,
    record_with,
    trace,
)
from heldout.envs.procgen_native import BACKENDS, NativeCore, backend

ROOT = Path(__file__).resolve().parents[2]

#: Cases whose frames the two backends draw identically (the sweep: docs/install.md): every visual
#: switch flipped, and bigfish's plain look.
SAME_FRAMES = [Case("maze", "hard", "flipped"), Case("bigfish", "easy", "default")]
#: Cases whose frames differ in a few anti-aliased edge pixels (Qt 5.9 against Qt 5.15 drawing the
#: same scene); everything else about them is identical.
EDGE_PIXELS = [Case("coinrun", "easy", "default")]


def _splitmix(seed: int, i: int) -> int:
    """splitmix64 in plain Python integers: the second way of computing :func:`action_sequences`."""
    mask = 2**64 - 1
    x = (i * 0x9E3779B97F4A7C15 + (seed + 1) * 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) % 15


def test_action_sequences_are_splitmix64_in_any_numpy():
    acts = action_sequences(7, 3, seed=5)
    expected = [[_splitmix(5, t * 3 + i) for i in range(3)] for t in range(7)]
    assert acts.tolist() == expected
    assert acts.dtype == np.int32


def test_a_trace_is_reproducible_and_tells_seeds_apart():
    case = Case("coinrun", "easy", "default")
    a, b = trace(case, num_envs=2, steps=12, seed=0), trace(case, num_envs=2, steps=12, seed=0)
    assert compare({f"k/{n}": v for n, v in a.items()}, {f"k/{n}": v for n, v in b.items()}) == {"k": []}
    c = trace(case, num_envs=2, steps=12, seed=1)
    found = compare({f"k/{n}": v for n, v in a.items()}, {f"k/{n}": v for n, v in c.items()})["k"]
    assert any(d.startswith("obs_hash") for d in found) and any(d.startswith("level_seed") for d in found)


def test_compare_names_the_array_and_the_first_differing_step_and_slot():
    case = Case("maze", "easy", "flipped")
    a = {f"{case.key}/{n}": v for n, v in trace(case, num_envs=3, steps=10).items()}
    b = {k: v.copy() for k, v in a.items()}
    b[f"{case.key}/rewards"][6, 2] += 1
    del b[f"{case.key}/state_hash_mid"]
    assert compare(a, b) == {
        case.key: [
            "rewards: 1 of 30 differ, first at index (6, 2)",
            "state_hash_mid: only in the first trace",
        ]
    }


def test_set_state_puts_a_one_env_level_into_one_slot():
    """What the trace's halfway check relies on: the odd slots play the set level, the others go on."""
    kw = {"env_name": "coinrun", "distribution_mode": "easy"}
    core = NativeCore(3, start_level=0, num_levels=5, rand_seed=0, **kw)
    one = NativeCore(1, start_level=777, num_levels=1, rand_seed=777, num_threads=0, **kw)
    before = core.observe()[1]
    core.set_state(1, one.get_state(0))
    after = core.observe()[1]
    np.testing.assert_array_equal(after[1], one.observe()[1][0])
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    assert core.info()["level_seed"][1] == 777
    assert core.get_state(1) == one.get_state(0)
    core.close()
    one.close()


def _other_backend() -> Path:
    here = backend()
    for python in other_pythons(ROOT):
        if backend_of(python, ROOT) not in (None, here):
            return python
    other = next(dist for module, dist in BACKENDS.items() if module != here)
    pytest.skip(
        f"no venv with {other} in {ROOT} (make install / make install PYTHON=python3.13 builds both stacks)"
    )


def test_both_backends_play_the_same_levels(tmp_path):
    other = _other_backend()
    cases = SAME_FRAMES + EDGE_PIXELS
    proc = record_with(other, ROOT, cases, tmp_path / "other.npz", 4, 40, 0)
    record(cases, tmp_path / "here.npz", 4, 40, 0)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    ours, theirs = load(tmp_path / "here.npz"), load(tmp_path / "other.npz")
    assert {str(ours["backend"]), str(theirs["backend"])} == set(BACKENDS)
    diffs = compare(ours, theirs)
    for case in SAME_FRAMES:
        assert diffs[case.key] == [], case.key
    for case in EDGE_PIXELS:
        # states (halfway, set into slots, at the end), rewards, dones and level seeds: bit for bit
        assert all(d.startswith(("obs_hash", "frames_")) for d in diffs[case.key]), diffs[case.key]
        for name in ("frames_start", "frames_end"):
            x, y = ours[f"{case.key}/{name}"], theirs[f"{case.key}/{name}"]
            gap = np.abs(x.astype(np.int16) - y.astype(np.int16))
            assert (gap.max(axis=-1) > 0).mean() < 0.01  # under 1% of the pixels, edges only


def test_the_313_stack_has_numpy_2_and_no_gym_so_no_banner():
    """procgen-gym's stack (Python 3.13): NumPy 2, neither gym nor gym3, and importing
    stable-baselines3 prints no deprecation banner (on 3.11/3.12 gym is there, silenced inside heldout:
    tests/cli/test_cli.py)."""
    import importlib.util
    import subprocess
    import sys

    if backend() != "procgen_gym":
        pytest.skip("the 3.11/3.12 stack: procgen-mirror installs gym and gym3 (docs/install.md)")
    assert int(np.__version__.split(".")[0]) >= 2
    assert importlib.util.find_spec("gym") is None and importlib.util.find_spec("gym3") is None
    proc = subprocess.run(
        [sys.executable, "-c", "import stable_baselines3, sb3_contrib"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Gym" not in proc.stderr and "gym" not in proc.stderr, proc.stderr
