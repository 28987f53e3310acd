"""procgen-mirror against procgen-gym, bit for bit: all 16 games, easy and hard, visual options on and
off, per-slot set_state (docs/install.md gives the result and its explanation).

    python benchmarks/procgen_backends.py [--other PYTHON] [--games coinrun,maze] [--num-envs 8]
        [--steps 200] [--seed 0] [--out benchmarks/results/procgen_backends.json]

Run with either stack's interpreter (``.venv/bin/python`` or ``.venv313/bin/python`` after
``make install`` and ``make install PYTHON=python3.13``); the other one (``--other``, else the other
venv found in the repository root) records the same cases in a subprocess at the same time, and the
two traces (``heldout.envs.procgen_backends``) are compared: frame hashes, rewards, episode flags,
``level_seed`` / ``prev_level_seed`` / ``prev_level_complete``, serialized states (halfway, after
``set_state`` of levels from one-env cores into the odd slots, and at the end). Where frames differ,
the full frames kept at the start, after the set_state and at the end give how many pixels differ
and by how much.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAME_SETS = ("frames_start", "frames_after_set", "frames_end")


def pixel_stats(a: dict[str, np.ndarray], b: dict[str, np.ndarray], case: str) -> dict[str, float]:
    """How the full frames two traces kept for ``case`` differ: frames, pixels, largest channel gap."""
    frames = pixels = differing_frames = differing_pixels = 0
    largest = 0
    for name in FRAME_SETS:
        x, y = a.get(f"{case}/{name}"), b.get(f"{case}/{name}")
        if x is None or y is None:
            continue
        gap = np.abs(x.astype(np.int16) - y.astype(np.int16)).max(axis=-1)  # (slots, 64, 64)
        frames += len(gap)
        pixels += gap.size
        differing_frames += int((gap.reshape(len(gap), -1) > 0).any(axis=1).sum())
        differing_pixels += int((gap > 0).sum())
        largest = max(largest, int(gap.max()))
    return {
        "full_frames_compared": frames,
        "full_frames_differing": differing_frames,
        "pixels_differing_fraction": differing_pixels / max(pixels, 1),
        "largest_channel_difference": largest,
    }


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(ROOT))
    from heldout.envs.procgen import PROCGEN_GAMES
    from heldout.envs.procgen_backends import (
        VISUALS,
        Case,
        backend_of,
        compare,
        load,
        other_pythons,
        record,
        record_with,
    )
    from heldout.envs.procgen_native import backend

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--other", help="the other stack's python (default: the other venv in the repo root)")
    parser.add_argument("--games", default=",".join(PROCGEN_GAMES))
    parser.add_argument("--modes", default="easy,hard")
    parser.add_argument("--visuals", default=",".join(VISUALS))
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/procgen_backends.json"))
    args = parser.parse_args(argv)

    here = backend()
    candidates = [Path(args.other)] if args.other else other_pythons(ROOT)
    other = next((p for p in candidates if backend_of(p, ROOT) not in (None, here)), None)
    if other is None:
        sys.exit(f"no interpreter with the other procgen backend (this one: {here}); tried: {candidates}")
    cases = [
        Case(g, m, v)
        for g in args.games.split(",")
        for m in args.modes.split(",")
        for v in args.visuals.split(",")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        theirs_path, ours_path = Path(tmp, "other.npz"), Path(tmp, "here.npz")
        start = time.perf_counter()
        proc = record_with(other, ROOT, cases, theirs_path, args.num_envs, args.steps, args.seed)
        record(cases, ours_path, args.num_envs, args.steps, args.seed)
        _, err = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"{other} failed:\n{err.decode()}")
        seconds = time.perf_counter() - start
        ours, theirs = load(ours_path), load(theirs_path)
    diffs = compare(ours, theirs)
    rows = []
    for case in cases:
        found = diffs[case.key]
        frames_only = all(d.startswith(("obs_hash", "frames_")) for d in found)
        row = {
            "case": case.key,
            "identical": not found,
            "dynamics_identical": frames_only,  # states, rewards, dones, level seeds
            "differences": found,
            "frames_differing_fraction": float(
                (ours[f"{case.key}/obs_hash"] != theirs[f"{case.key}/obs_hash"]).mean()
            ),
            **pixel_stats(ours, theirs, case.key),
        }
        rows.append(row)
        print(
            f"{case.key:32s} {'identical' if not found else 'frames differ' if frames_only else 'DIFFERS'}"
            f"  frames differing {row['frames_differing_fraction']:.3f}"
            f"  pixels {row['pixels_differing_fraction']:.5f}  max {row['largest_channel_difference']}"
        )
    result = {
        "backends": {"here": f"{here} ({sys.executable})", "other": f"{theirs['backend']} ({other})"},
        "settings": {"num_envs": args.num_envs, "steps": args.steps, "seed": args.seed},
        "seconds": round(seconds, 1),
        "cases": len(rows),
        "identical": sum(r["identical"] for r in rows),
        "dynamics_identical": sum(r["dynamics_identical"] for r in rows),
        "rows": rows,
    }
    out = Path(args.out)
    fd, tmp_out = tempfile.mkstemp(dir=out.parent, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp_out, out)
    print(
        f"{result['identical']}/{len(rows)} cases identical, {result['dynamics_identical']}/{len(rows)} with "
        f"identical states, rewards, dones and level seeds ({seconds:.0f} s); {out}"
    )


if __name__ == "__main__":
    main()
