"""Issue 29, item 2: collection speed against ``heldout eval``'s, and the loader's resident memory.

1. **Speed.** A run's trained agent (``--run``; else ``procgen-quickstart``'s PPO on coinrun,
   untrained), then in the same process with the same model and env slots, alternated ``--repeats``
   times: ``heldout eval``'s evaluation of the training levels (``family.evaluate``), ``heldout
   collect``'s play and writing (:func:`heldout.protocol.collect._play` into a :class:`DatasetWriter`:
   batched play plus HDF5 writing and compression) and the same play into a writer that keeps
   nothing, each as env steps per second; the ratios to evaluation, their medians and a bootstrap
   interval of each median.
2. **Memory.** A synthetic Procgen-shaped dataset (64x64x3 uint8 frames in 8x8 blocks of random
   colours; they compress less than game frames with ISA-L's fast deflate) of ``--frames``
   transitions, written with heldout's writer; then a fresh process opens it and streams
   ``--batches`` minibatches of 256 through :class:`heldout.protocol.loader.MinibatchLoader` as an offline run does (torch tensors),
   and reports its peak resident memory (``ru_maxrss``: interpreter and torch included).

    nice -n 15 python benchmarks/offline_data.py --json benchmarks/results/offline_data_cpu.json

Nothing here is a timed assertion: the figures are written to the JSON and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def speed(
    work: Path,
    steps: int,
    episodes: int,
    run: Path | None = None,
    repeats: int = 1,
    device: str = "cpu",
    threads: int | None = None,
) -> dict:
    """Evaluation and collection speed of one Procgen agent, in env steps per second.

    The agent is ``run``'s trained one (as ``heldout collect RUN`` loads it), or else
    ``procgen-quickstart``'s PPO on coinrun as built (untrained: its weights do not change the cost of
    a forward pass, but its episodes run to the 1,000-step time-out, so the slots' unfinished episodes
    at the end, which neither side counts, weigh more than a trained agent's); both play the training
    levels with the same ``eval_num_envs`` slots and torch's ``threads`` (None: as both commands set
    them, the run's ``torch_threads`` else the env family's default; 0: torch's own).
    ``played_steps_per_second`` counts every env step collection took, the unfinished episodes at the
    end included.
    """
    import gymnasium as gym
    import torch

    from heldout.agents import AGENTS
    from heldout.protocol.background_writer import spare_core
    from heldout.protocol.checkpoint import load_trained_model
    from heldout.protocol.collect import _collect_env, _play, plan_collect
    from heldout.protocol.evaluate import run_threads, torch_threads
    from heldout.protocol.families import family_for
    from heldout.protocol.presets import PRESETS

    if run is not None:
        config, path, _, family, split = plan_collect(run, steps, work / "unused")
    else:
        config = PRESETS.get("procgen-quickstart")
        family = family_for(config.env)
        split = family.split(config)
    if run is not None:
        model = load_trained_model(config, path, device=device)
    else:
        venv = _collect_env(family, config, split, config.eval_num_envs, 0)
        model = AGENTS.get(config.agent)(
            env=venv, seed=0, device=device, verbose=0, **family.agent_kwargs(config)
        )
        venv.close()
    levels = split.train.to_list()
    items = [levels[i % len(levels)] for i in range(episodes)]

    def play(r: int, writer: Any) -> tuple[float, int, int]:
        """Collects into ``writer`` as ``heldout collect`` does, its env made in the time measured
        (evaluation makes its own too); returns the seconds, transitions and env steps played."""
        t0 = time.perf_counter()
        venv = _collect_env(family, config, split, config.eval_num_envs, r)
        played, step = [0], venv.step

        def counted(actions: np.ndarray) -> tuple:
            played[0] += venv.num_envs
            return step(actions)

        venv.step = counted
        space = gym.spaces.Discrete(int(venv.action_space.n))
        if isinstance(writer, type):  # DatasetWriter (inline) or BackgroundWriter (a child process)
            writer = writer(work / f"data{r}", venv.observation_space, space)
        _play(model, venv, writer, steps, 0, np.random.default_rng(r), None, False, None)
        if not isinstance(writer, _NoWriter):
            writer.close({"env": config.env, "recipe": "bench"}, "heldout/bench-v0")
        venv.close()
        return time.perf_counter() - t0, writer.steps, played[0]

    if threads is None:
        threads = run_threads(config, family)
    with torch_threads(threads):
        rounds = [_round(r, family, model, config, items, play, work) for r in range(repeats)]
        used_threads, spare = torch.get_num_threads(), spare_core(getattr(model, "device", device))
    return {
        "agent": str(run) if run is not None else "procgen-quickstart's PPO, untrained",
        "env": config.env,
        "num_envs": config.eval_num_envs,
        "torch_threads": used_threads,
        "note": "collect: playing plus HDF5 writing and compression inline, counting the transitions of "
        "completed episodes (steps) and every env step taken (played_steps); collect_process: the same with "
        "the writing in a child process (BackgroundWriter; heldout collect uses it where spare_core); play_only: the same play with the "
        "episodes handed to a writer that keeps nothing (what the writing costs is the difference); each "
        "side makes its env in the time measured and starts from a reset",
        "rounds": rounds,
        "device": str(getattr(model, "device", device)),
        "spare_core": spare,
        **_median_ci("collect_over_eval", [x["collect_over_eval"] for x in rounds]),
        **_median_ci("collect_process_over_eval", [x["collect_process_over_eval"] for x in rounds]),
        **_median_ci("play_only_over_eval", [x["play_only_over_eval"] for x in rounds]),
    }


def _round(r: int, family: Any, model: Any, config: Any, items: list, play: Any, work: Path) -> dict:
    """One round: evaluation, then collection writing inline, in a child process and nowhere
    (alternated, so a change in the machine's load hits all of them alike)."""
    from heldout.protocol.background_writer import BackgroundWriter
    from heldout.protocol.dataset import DatasetWriter

    t0 = time.perf_counter()
    res = family.evaluate(model, config, items, "train", seed=1)
    eval_s = time.perf_counter() - t0
    eval_steps = int(sum(res.lengths))
    collect_s, collect_steps, played = play(r, DatasetWriter)
    bytes_per_frame = (work / f"data{r}" / "data" / "main_data.hdf5").stat().st_size / collect_steps
    shutil.rmtree(work / f"data{r}")
    process_s, process_steps, _ = play(r, BackgroundWriter)
    shutil.rmtree(work / f"data{r}")
    play_s, play_steps, _ = play(r, _NoWriter())
    eval_rate = eval_steps / eval_s
    return {
        "eval": {"episodes": len(items), "steps": eval_steps, "seconds": round(eval_s, 2),
                 "steps_per_second": round(eval_rate, 1)},
        "collect": {"steps": collect_steps, "seconds": round(collect_s, 2),
                    "steps_per_second": round(collect_steps / collect_s, 1),
                    "played_steps": played, "played_steps_per_second": round(played / collect_s, 1),
                    "bytes_per_frame": round(bytes_per_frame, 1)},
        "collect_process": {"steps": process_steps, "seconds": round(process_s, 2),
                            "steps_per_second": round(process_steps / process_s, 1)},
        "play_only": {"steps": play_steps, "seconds": round(play_s, 2),
                      "steps_per_second": round(play_steps / play_s, 1)},
        "collect_over_eval": round(collect_steps / collect_s / eval_rate, 3),
        "collect_process_over_eval": round(process_steps / process_s / eval_rate, 3),
        "play_only_over_eval": round(play_steps / play_s / eval_rate, 3),
    }  # fmt: skip


class _NoWriter:
    """A writer that keeps nothing: collection's playing alone."""

    steps = 0

    def add_episode(self, observations: np.ndarray, actions: np.ndarray, *args: Any, **kwargs: Any) -> None:
        self.steps += len(actions)


def _median_ci(name: str, ratios: list[float]) -> dict[str, Any]:
    """The rounds' median ratio and its 95% percentile-bootstrap interval (heldout.analysis.stats)."""
    from heldout.analysis.stats import bootstrap_ci

    def median(scores: np.ndarray) -> np.ndarray:  # (..., rounds, 1) -> (...)
        return np.median(scores[..., 0], axis=-1)

    estimate = bootstrap_ci(np.asarray(ratios, dtype=float)[:, None], median, reps=10_000)
    return {f"{name}_median": float(estimate.value), f"{name}_ci95": [float(v) for v in estimate.ci or ()]}


def stream(path: str, batches: int) -> None:
    """In a fresh process: streams ``batches`` minibatches; prints JSON with the peak RSS."""
    import torch

    from heldout.protocol.dataset import open_dataset
    from heldout.protocol.loader import MinibatchLoader

    t0 = time.perf_counter()
    dataset = open_dataset(path)
    opened = time.perf_counter() - t0
    loader = MinibatchLoader(dataset, 256, seed=0, device=torch.device("cpu"))
    it = loader.batches()
    t0 = time.perf_counter()
    first = next(it)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(batches - 1):
        batch = next(it)
    rest_s = time.perf_counter() - t0
    assert batch["obs"].shape == first["obs"].shape == (256, 64, 64, 3)
    print(json.dumps({
        "frames": dataset.total_steps,
        "episodes": len(dataset.lengths),
        "file_gb": round(dataset.file.stat().st_size / 1e9, 3),
        "raw_gb": round(dataset.total_steps * 64 * 64 * 3 / 1e9, 2),
        "open_seconds": round(opened, 2),
        "block_frames": loader.block_steps,
        "blocks_per_epoch": len(loader.blocks(0)),
        "first_batch_seconds": round(first_s, 2),
        "batches": batches,
        "batches_per_second_after_first": round((batches - 1) / rest_s, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),
    }))  # fmt: skip


def memory(work: Path, frames: int, batches: int) -> dict:
    """Writes the synthetic dataset, then streams it in a fresh process."""
    import gymnasium as gym

    from heldout.protocol.dataset import write_synthetic

    t0 = time.perf_counter()
    space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    path = write_synthetic(work / "synthetic", "coinrun", space, 15, range(200), frames, (100, 500))
    write_s = time.perf_counter() - t0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, __file__, "--stream", str(path), "--batches", str(batches)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["write_seconds"] = round(write_s, 1)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1_000_000, help="transitions of the synthetic dataset")
    p.add_argument("--batches", type=int, default=400, help="minibatches of 256 streamed")
    p.add_argument("--steps", type=int, default=5_000, help="transitions collected")
    p.add_argument("--episodes", type=int, default=32, help="episodes evaluated")
    p.add_argument(
        "--run", type=Path, help="a trained Procgen run whose agent plays (default: an untrained PPO)"
    )
    p.add_argument("--repeats", type=int, default=3, help="evaluation/collection rounds, alternated")
    p.add_argument(
        "--device", default="cpu", help="the policy's device for the speed figure (cpu, cuda, auto)"
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        help="torch's threads for both sides (default: as heldout eval and collect set them, the run's "
        "torch_threads else the env family's default; 0: torch's own)",
    )
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--stream", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_threads is not None and args.torch_threads < 0:
        p.error(f"--torch-threads {args.torch_threads} is out of range; valid: 0 (torch's own) or more")
    if args.stream:
        stream(args.stream, args.batches)
        return 0
    work = Path(tempfile.mkdtemp(prefix="heldout-offline-bench-"))
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
        },
        "command": "python " + " ".join(sys.argv),
    }
    try:
        if not args.skip_speed:
            result["speed"] = speed(
                work, args.steps, args.episodes, args.run, args.repeats, args.device, args.torch_threads
            )
            print(json.dumps(result["speed"], indent=1))
        if not args.skip_memory:
            result["memory"] = memory(work, args.frames, args.batches)
            print(json.dumps(result["memory"], indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["machine"]["load_after"] = os.getloadavg()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
