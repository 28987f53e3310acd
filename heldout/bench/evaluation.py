"""Evaluation speed: how fast heldout plays a list of held-out Procgen levels, next to its floors.

Evaluation (:func:`heldout.protocol.evaluate.evaluate`) plays one episode per listed level on
``num_envs`` slots of the native vector env, one batched forward pass of the policy per vector
step; once the list is handed out, only the slots still playing a listed level act. Its cost is the
policy's forward passes plus the env's steps, one after the other. This benchmark measures, for an
untrained agent (heldout's PPO with the IMPALA-CNN) and, with ``--run``, a trained one from a run
folder, in each precision (fp32, bf16 autocast), side by side in one process:

* **eval**: ``evaluate`` on ``--episodes`` test levels (``100000000`` on), as env steps of listed
  episodes per second, and the seconds it would take for 1,000 episodes of that agent
  (``seconds / episodes * 1000``; episode lengths depend on the agent: an untrained coinrun agent
  mostly runs into the 1,000-step time limit);
* **inference floor**: ``model.predict`` alone on a fixed batch of ``num_envs`` observations (timed
  before and after the evaluation, averaged), as
  samples per second: what evaluation would reach if stepping the env cost nothing;
* **env floor**: the same vector env stepped with random actions and no policy;
* **serial floor**: ``1 / (1/inference + 1/env)``: both, one after the other, nothing else.

The ratio eval / inference floor is the target's measure (issue: within 25%); eval / serial floor
says what is left to the Python loop around them. Ratios are measured in one run on one machine, so
other load hurts them alike; absolute figures are printed with the machine for orientation only.

Run ``heldout bench eval --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from heldout.bench.common import (
    HelpFormatter,
    OtherLoad,
    check_game,
    check_positive,
    machine_info,
    resolve_device,
    table,
)

#: The first test level of the Procgen protocol (``heldout.splits``): evaluation lists start here.
TEST_START = 100_000_000

#: Precisions measured by default.
PRECISIONS = ("fp32", "bf16")


def _untrained_model(game: str, num_envs: int, device: str, seed: int) -> Any:
    from heldout.agents.ppo import PPO
    from heldout.envs.procgen import ProcgenVecEnv

    env = ProcgenVecEnv(game, num_envs=min(num_envs, 2), levels=range(200), seed=seed)
    return PPO("CnnPolicy", env, n_steps=16, batch_size=32, seed=seed, device=device, verbose=0)


def _trained_model(run: str, device: str) -> tuple[Any, str]:
    from heldout.protocol.checkpoint import load_trained_model
    from heldout.protocol.run_folder import load_run

    config, path = load_run(run)
    if config.env not in _procgen_games():
        raise ValueError(f"--run {run!r} trained on {config.env!r}; this benchmark plays Procgen games")
    return load_trained_model(config, path, device=device), config.env


def _procgen_games() -> tuple[str, ...]:
    from heldout.envs.procgen import PROCGEN_GAMES

    return PROCGEN_GAMES


def inference_floor(model: Any, game: str, num_envs: int, precision: str, seconds: float, seed: int) -> float:
    """Samples per second of ``model.predict`` alone on a fixed batch of ``num_envs`` observations."""
    from heldout.envs.procgen import ProcgenVecEnv
    from heldout.protocol.evaluate import acting_context

    env = ProcgenVecEnv(game, num_envs=num_envs, levels=range(TEST_START, TEST_START + num_envs), seed=seed)
    try:
        obs = env.reset()
    finally:
        env.close()
    with acting_context(model, precision):
        model.predict(obs)  # warm-up: first-call kernel selection
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds:
            model.predict(obs)
            calls += 1
        elapsed = time.perf_counter() - start
    return calls * num_envs / elapsed


def env_floor(game: str, num_envs: int, vector_steps: int, seed: int) -> float:
    """Env steps per second of the vector env with random actions, no policy."""
    from heldout.envs.procgen import ProcgenVecEnv

    env = ProcgenVecEnv(game, num_envs=num_envs, levels=range(TEST_START, TEST_START + 1000), seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.action_space.n, size=(vector_steps, num_envs))
    try:
        env.reset()
        env.step(actions[0])
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        elapsed = time.perf_counter() - start
    finally:
        env.close()
    return vector_steps * num_envs / elapsed


class _TimedModel:
    """``model`` with its ``predict`` timed: seconds inside it and samples it acted for."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.seconds = 0.0
        self.samples = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict(self, obs: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = self._model.predict(obs, *args, **kwargs)
        self.seconds += time.perf_counter() - start
        self.samples += len(obs)
        return out


def eval_speed(
    model: Any, game: str, episodes: int, num_envs: int, precision: str, seed: int
) -> dict[str, Any]:
    """Times :func:`~heldout.protocol.evaluate.evaluate` on ``episodes`` test levels, with the share of
    its time spent in the policy's forward passes."""
    from heldout.protocol.evaluate import evaluate

    levels = list(range(TEST_START, TEST_START + episodes))
    timed = _TimedModel(model)
    start = time.perf_counter()
    result = evaluate(timed, game, levels, num_envs=num_envs, seed=seed, precision=precision)
    seconds = time.perf_counter() - start
    steps = int(sum(result.lengths))
    return {
        "inference_seconds": timed.seconds,
        "inferred_samples": timed.samples,
        "inference_share": timed.seconds / seconds,
        "inferred_samples_per_second": timed.samples / timed.seconds,
        "episodes": episodes,
        "seconds": seconds,
        "env_steps": steps,
        "steps_per_second": steps / seconds,
        "seconds_per_1000_episodes": seconds / episodes * 1000,
        "mean_length": steps / episodes,
        "mean_return": float(np.mean(result.returns)),
    }


def measure(
    models: dict[str, Any],
    game: str,
    episodes: int,
    num_envs: int,
    precisions: Sequence[str],
    seed: int,
    floor_seconds: float = 5.0,
) -> dict[str, Any]:
    """Every (agent, precision) row: eval, inference floor, env floor, serial floor and ratios."""
    env = env_floor(game, num_envs, vector_steps=max(20, 2000 // num_envs), seed=seed)
    rows = []
    for agent, model in models.items():
        for precision in precisions:
            print(f"  {agent}, {precision}: inference floor ...", file=sys.stderr, flush=True)
            before = inference_floor(model, game, num_envs, precision, floor_seconds, seed)
            print(f"  {agent}, {precision}: {episodes} episodes ...", file=sys.stderr, flush=True)
            speed = eval_speed(model, game, episodes, num_envs, precision, seed)
            after = inference_floor(model, game, num_envs, precision, floor_seconds, seed)
            inference = (before + after) / 2  # measured either side of the evaluation: the same load
            serial = 1.0 / (1.0 / inference + 1.0 / env)
            rows.append(
                {
                    "agent": agent,
                    "precision": precision,
                    **speed,
                    "inference_floor": inference,
                    "serial_floor": serial,
                    "of_inference_floor": speed["steps_per_second"] / inference,
                    "of_serial_floor": speed["steps_per_second"] / serial,
                }
            )
    return {"env_floor": env, "rows": rows}


def format_eval(results: dict[str, Any]) -> str:
    """The results as a text table."""
    config, machine = results["config"], results["machine"]
    load = results.get("other_load")
    lines = [
        f"heldout bench eval: {config['game']}, {config['episodes']} test episodes on {config['num_envs']} "
        f"env slots, device {config['device']}",
        f"machine: {machine['cpus_usable']} CPUs ({machine['cpu_model']}), torch threads "
        f"{machine['torch_threads']}" + ("" if load is None else f", other load {load:.2f}"),
        f"env floor (random actions, no policy): {results['env_floor']:,.0f} env steps/s",
        "",
    ]
    header = [
        "agent",
        "precision",
        "eval steps/s",
        "inference floor",
        "of floor",
        "serial floor",
        "of serial",
        "in predict",
        "s / 1000 eps",
        "mean length",
    ]
    body = [
        [
            r["agent"],
            r["precision"],
            f"{r['steps_per_second']:,.0f}",
            f"{r['inference_floor']:,.0f}",
            f"{r['of_inference_floor']:.2f}",
            f"{r['serial_floor']:,.0f}",
            f"{r['of_serial_floor']:.2f}",
            f"{r['inference_share']:.0%}",
            f"{r['seconds_per_1000_episodes']:,.0f}",
            f"{r['mean_length']:.0f}",
        ]
        for r in results["rows"]
    ]
    lines += table(header, body)
    return "\n".join(lines) + "\n"


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every error is one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgumentError(message)


def build_parser(prog: str = "heldout bench eval") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=(
            "Measure evaluation speed on held-out Procgen levels (one episode per level, batched "
            "inference) next to its floors: the policy's forward passes alone (inference floor), the env "
            "alone, and both one after the other, for an untrained agent and optionally a trained run, in "
            "fp32 and bf16. Default run: about 5 minutes on 2 CPU cores."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--game", default=None, help="Procgen game (default: the --run's game, else coinrun)."
    )
    parser.add_argument("--episodes", type=int, default=128, help="Test levels played, one episode each.")
    parser.add_argument("--num-envs", type=int, default=64, help="Env slots (and the inference batch).")
    parser.add_argument(
        "--precision",
        action="append",
        choices=PRECISIONS,
        help="Precisions to measure (repeatable; default: fp32 and bf16).",
    )
    parser.add_argument("--run", default=None, help="Also a trained agent: this run folder's final model.")
    parser.add_argument("--no-untrained", action="store_true", help="Only the --run agent.")
    parser.add_argument("--device", default="auto", help="Torch device: auto (CUDA if available), cpu, cuda.")
    parser.add_argument(
        "--floor-seconds", type=float, default=5.0, help="Seconds each inference-floor timing runs."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of envs and network.")
    parser.add_argument("--json", metavar="PATH", default=None, help="Also save the results as JSON to PATH.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the evaluation benchmark and prints the table; exit 2 for bad values (nothing run)."""
    from heldout.protocol.checks import check_int

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        game = check_game(args.game or "coinrun")
        episodes = check_positive("--episodes", args.episodes)
        num_envs = check_positive("--num-envs", args.num_envs)
        check_int("--seed", args.seed, minimum=0)
        if not args.floor_seconds > 0 or args.floor_seconds == float("inf"):
            raise ValueError(
                f"--floor-seconds must be a positive number of seconds, got {args.floor_seconds!r}"
            )
        device = resolve_device(args.device)
        if args.no_untrained and args.run is None:
            raise ValueError("--no-untrained leaves no agent to measure: give --run RUN too")
        if args.json is not None:
            parent = os.path.dirname(os.path.abspath(args.json))
            if not os.path.isdir(parent):
                raise ValueError(f"--json {args.json!r}: directory {parent!r} does not exist")
            if os.path.isdir(args.json):
                raise ValueError(f"--json {args.json!r} is a directory; give a file path")
        models: dict[str, Any] = {}
        if args.run is not None:
            trained, trained_game = _trained_model(args.run, device)
            if args.game is None:
                game = trained_game
            elif trained_game != game:
                raise ValueError(f"--run {args.run!r} trained on {trained_game!r}, not --game {game!r}")
        else:
            trained = None
    except (_ArgumentError, ValueError) as err:
        print(f"heldout bench: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)

    if not args.no_untrained:
        models["untrained"] = _untrained_model(game, num_envs, device, args.seed)
    if trained is not None:
        models[f"trained ({os.path.basename(os.path.normpath(args.run))})"] = trained
    precisions = tuple(dict.fromkeys(args.precision or PRECISIONS))
    results: dict[str, Any] = {
        "config": {
            "game": game,
            "episodes": episodes,
            "num_envs": num_envs,
            "device": device,
            "seed": args.seed,
        },
        "machine": machine_info(device),
    }
    print(
        f"measuring evaluation ({game}, {len(models)} agent(s) x {len(precisions)} precision(s)) ...",
        file=sys.stderr,
    )
    started = time.perf_counter()
    with OtherLoad() as load:
        results.update(
            measure(models, game, episodes, num_envs, precisions, args.seed, floor_seconds=args.floor_seconds)
        )
    results["other_load"] = load.value
    results["wall_seconds"] = time.perf_counter() - started
    print(format_eval(results), end="")
    print(f"(benchmark took {results['wall_seconds']:.0f} s)")
    if args.json is not None:
        from heldout.protocol.run_folder import write_atomic

        write_atomic(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
