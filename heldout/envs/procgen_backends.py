"""Traces of procgen's native library, to check two backends (procgen-mirror, procgen-gym) bit for bit.

procgen-mirror runs on Python 3.11/3.12 and procgen-gym on 3.13, so the two never share a process:
each side records a trace in its own interpreter (``python -m heldout.envs.procgen_backends record
OUT.npz ...``) and the traces are compared (:func:`compare`). A trace steps one
:class:`~heldout.envs.procgen_native.NativeCore` per case (game, distribution mode, visual options)
with fixed action sequences and keeps, for every step and slot: a hash of the frame, the reward, the
episode flag and procgen's ``level_seed``, ``prev_level_seed`` and ``prev_level_complete``; halfway,
the hash of every slot's serialized state (``get_state``), then levels set into the odd slots from
one-env cores (per-slot ``set_state``, as heldout's level lists and samplers do), and at the end every
slot's state again; a few full frames and one full state are kept to show where two traces differ.

Used by ``tests/envs/test_procgen_backends.py`` (a few cases) and ``benchmarks/procgen_backends.py``
(all 16 games, easy and hard, visual options on and off; docs/install.md).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heldout.envs.procgen_native import NativeCore, backend

#: The visual option sets a trace can use: procgen's defaults, every visual switch flipped from its
#: default, and generated assets (whose games procgen cannot serialize: no state checks there).
VISUALS: dict[str, dict[str, bool]] = {
    "default": {},
    "flipped": {
        "use_backgrounds": False,
        "restrict_themes": True,
        "use_monochrome_assets": True,
        "center_agent": False,
        "paint_vel_info": True,
    },
    "generated": {"use_generated_assets": True},
}


@dataclass(frozen=True)
class Case:
    """One traced setting: a game in a distribution mode under one of :data:`VISUALS`."""

    game: str
    mode: str
    visuals: str

    @property
    def key(self) -> str:
        return f"{self.game}/{self.mode}/{self.visuals}"


def action_sequences(steps: int, num: int, seed: int) -> np.ndarray:
    """``(steps, num)`` actions in ``[0, 15)`` from splitmix64 on uint64 counters: the same on every
    NumPy version (NumPy's own generators promise no stream across versions)."""
    offset = np.uint64(((seed + 1) * 0x9E3779B97F4A7C15) % 2**64)
    x = np.arange(steps * num, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + offset
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(15)).astype(np.int32).reshape(steps, num)


def _digest(data: bytes) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little"))


def _frame_hashes(frames: np.ndarray) -> np.ndarray:
    return np.array([_digest(f.tobytes()) for f in frames], dtype=np.uint64)


def trace(case: Case, num_envs: int = 4, steps: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Steps ``case`` and returns its trace (arrays; see the module docstring).

    The core samples levels ``[seed * 1000, seed * 1000 + 20)`` with ``rand_seed=seed``; halfway,
    odd slot ``j`` is set to level ``10**6 + j`` from a one-env core (its state's hash is kept too).
    """
    options = VISUALS[case.visuals]
    serializable = not options.get("use_generated_assets")
    acts = action_sequences(steps, num_envs, seed)
    common = {"env_name": case.game, "distribution_mode": case.mode, **options}
    core = NativeCore(num_envs, start_level=seed * 1000, num_levels=20, rand_seed=seed, **common)
    out: dict[str, np.ndarray] = {}
    obs_hash = np.zeros((steps + 1, num_envs), dtype=np.uint64)
    rewards = np.zeros((steps, num_envs), dtype=np.float32)
    firsts = np.zeros((steps, num_envs), dtype=np.uint8)
    info_keys = ("level_seed", "prev_level_seed", "prev_level_complete")
    infos = {k: np.zeros((steps + 1, num_envs), dtype=np.int64) for k in info_keys}
    mid = steps // 2
    try:
        obs = core.observe()[1]
        obs_hash[0] = _frame_hashes(obs)
        out["frames_start"] = obs
        info = core.info()
        for k in info_keys:
            infos[k][0] = info[k]
        for t in range(steps):
            if t == mid and serializable:
                out["state_hash_mid"] = np.array([_digest(core.get_state(s)) for s in range(num_envs)])
                set_hashes = []
                for slot in range(1, num_envs, 2):
                    level = 10**6 + slot
                    one = NativeCore(
                        1, start_level=level, num_levels=1, rand_seed=level, num_threads=0, **common
                    )
                    state = one.get_state(0)
                    one.close()
                    set_hashes.append(_digest(state))
                    core.set_state(slot, state)
                out["set_state_hash"] = np.array(set_hashes, dtype=np.uint64)
                out["frames_after_set"] = core.observe()[1]
            core.act(acts[t])
            rew, obs, first = core.observe()
            obs_hash[t + 1] = _frame_hashes(obs)
            rewards[t], firsts[t] = rew, first
            info = core.info()
            for k in info_keys:
                infos[k][t + 1] = info[k]
        out["frames_end"] = obs
        if serializable:
            states = [core.get_state(s) for s in range(num_envs)]
            out["state_hash_end"] = np.array([_digest(s) for s in states], dtype=np.uint64)
            out["state_len_end"] = np.array([len(s) for s in states], dtype=np.int64)
            out["state_end_slot0"] = np.frombuffer(states[0], dtype=np.uint8)
    finally:
        core.close()
    out.update(obs_hash=obs_hash, rewards=rewards, firsts=firsts, **infos)
    return out


def record(cases: list[Case], path: str | Path, num_envs: int = 4, steps: int = 100, seed: int = 0) -> None:
    """Writes the traces of ``cases`` to one ``.npz`` (keys ``<case key>/<array>``), atomically."""
    arrays = {"backend": np.array(backend())}
    for case in cases:
        for name, value in trace(case, num_envs, steps, seed).items():
            arrays[f"{case.key}/{name}"] = value
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Where two traces differ: ``{case key: [what differs, first at which step and slot]}`` for each
    case present in either (an empty list: identical)."""
    cases = sorted({k.rsplit("/", 1)[0] for k in [*a, *b] if "/" in k})
    result: dict[str, list[str]] = {}
    for case in cases:
        diffs = []
        names = sorted({k.rsplit("/", 1)[1] for k in [*a, *b] if k.startswith(case + "/")})
        for name in names:
            x, y = a.get(f"{case}/{name}"), b.get(f"{case}/{name}")
            if x is None or y is None:
                diffs.append(f"{name}: only in {'the first' if y is None else 'the second'} trace")
            elif x.shape != y.shape:
                diffs.append(f"{name}: shapes {x.shape} vs {y.shape}")
            elif x.tobytes() != y.tobytes():
                where = np.argwhere(x != y)
                diffs.append(
                    f"{name}: {len(where)} of {x.size} differ, first at index {tuple(where[0].tolist())}"
                )
        result[case] = diffs
    return result


def load(path: str | Path) -> dict[str, np.ndarray]:
    """A trace file written by :func:`record`, as a dict of arrays (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def other_pythons(root: str | Path) -> list[Path]:
    """The interpreters of the venvs in ``root`` (``.venv``, ``.venv313``, ...) other than this one."""
    here = Path(sys.prefix).resolve()
    found = []
    for venv in sorted(Path(root).glob(".venv*")):
        python = venv / "bin" / "python"
        if python.exists() and venv.resolve() != here:
            found.append(python)
    return found


def backend_of(python: str | Path, root: str | Path) -> str | None:
    """The procgen backend module ``python`` imports with heldout from ``root``, or None if none."""
    code = "from heldout.envs.procgen_native import backend; print(backend())"
    proc = subprocess.run(
        [str(python), "-c", code], cwd=root, env=_child_env(root), capture_output=True, text=True, timeout=300
    )
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else None


def _child_env(root: str | Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = str(Path(root).resolve())
    return env


def record_with(
    python: str | Path,
    root: str | Path,
    cases: list[Case],
    path: str | Path,
    num_envs: int,
    steps: int,
    seed: int,
) -> subprocess.Popen:
    """Starts ``python`` recording ``cases`` to ``path`` with heldout from ``root``; returns the process."""
    argv = [str(python), "-m", "heldout.envs.procgen_backends", "record", str(path)]
    argv += ["--cases", ",".join(c.key for c in cases), "--num-envs", str(num_envs)]
    argv += ["--steps", str(steps), "--seed", str(seed)]
    return subprocess.Popen(
        argv, cwd=root, env=_child_env(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def parse_cases(text: str) -> list[Case]:
    """``game/mode/visuals`` keys, comma-separated, as :class:`Case` objects."""
    cases = []
    for key in text.split(","):
        game, mode, visuals = key.split("/")
        if visuals not in VISUALS:
            raise ValueError(f"unknown visuals {visuals!r}; valid: {', '.join(VISUALS)}")
        cases.append(Case(game, mode, visuals))
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m heldout.envs.procgen_backends", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="write the traces of some cases to an .npz")
    rec.add_argument("out")
    rec.add_argument("--cases", required=True, help="game/mode/visuals keys, comma-separated")
    rec.add_argument("--num-envs", type=int, default=4)
    rec.add_argument("--steps", type=int, default=100)
    rec.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    record(parse_cases(args.cases), args.out, args.num_envs, args.steps, args.seed)


if __name__ == "__main__":
    main()
