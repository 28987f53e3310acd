"""``heldout bench wrappers``: what each registered wrapper costs on the native 64-env Procgen batch.

Every wrapper runs on the vectorized env through :class:`~heldout.wrappers.VecEnvAdapter` (one call
per step for the whole batch). For each wrapper that applies to Procgen frames, this times env steps
per second with the wrapper and without it, interleaved in rounds so that a change in the machine's
load hits both alike, and reports the ratio. As a reference for "written once on batches" it also
times the same wrapper run the way a per-env gymnasium wrapper runs, one row at a time
(``--per-env``), on the same batch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from heldout.bench.common import HelpFormatter, machine_info, table
from heldout.wrappers import WRAPPERS, VecEnvAdapter, WrapperSpec


class _PerEnv:
    """Runs a wrapper one row at a time (what ``num_envs`` separate gymnasium wrappers would do)."""

    def __init__(self, venv: Any, spec: WrapperSpec, seed: int) -> None:
        self.venv = venv
        self.adapters = [
            VecEnvAdapter(_OneSlot(venv, i), spec.build(), seed=seed + i) for i in range(venv.num_envs)
        ]

    def reset(self) -> Any:
        obs = self.venv.reset()
        return np.stack(
            [
                a.wrapper.observation(obs[i : i + 1], np.zeros(1, int), np.ones(1, bool), [{}])[0]
                for i, a in enumerate(self.adapters)
            ]
        )

    def step(self, actions: Any) -> Any:
        obs, rew, done, infos = self.venv.step(actions)
        out = []
        for i, a in enumerate(self.adapters):
            row = a.wrapper.observation(obs[i : i + 1], np.zeros(1, int), done[i : i + 1], [infos[i]])
            a.wrapper.reward(rew[i : i + 1].astype(np.float64), np.zeros(1, int), [infos[i]])
            a.wrapper.on_step(row, rew[i : i + 1], done[i : i + 1], np.zeros(1, int), [infos[i]])
            out.append(row[0])
        return np.stack(out), rew, done, infos

    def close(self) -> None:
        for a in self.adapters:
            a.wrapper.close()
        self.venv.close()


class _OneSlot:
    """A one-slot view of a vectorized env's spaces, for setting a wrapper up per env."""

    def __init__(self, venv: Any, index: int) -> None:
        self.num_envs = 1
        self.observation_space = venv.observation_space
        self.action_space = venv.action_space
        self.index = index

    def get_attr(self, name: str, indices: Any = None) -> list[Any]:
        raise AttributeError(name)


def _steps_per_second(env: Any, steps: int, actions: np.ndarray) -> float:
    start = time.perf_counter()
    for t in range(steps):
        env.step(actions[t])
    return steps * actions.shape[1] / (time.perf_counter() - start)


def run(
    game: str = "starpilot",
    num_envs: int = 64,
    steps: int = 200,
    rounds: int = 3,
    wrappers: list[str] | None = None,
    per_env: bool = True,
    out_dir: str | Path = "runs/bench-wrappers",
) -> dict[str, Any]:
    """Times every wrapper (or ``wrappers``) on ``num_envs`` Procgen envs; returns the results dict."""
    from heldout.envs import ProcgenVecEnv

    out_dir = Path(out_dir)
    names = wrappers or WRAPPERS.names()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 15, size=(steps, num_envs))

    def make(spec: str | None, mode: str) -> Any:
        venv = ProcgenVecEnv(game, num_envs=num_envs, levels=range(200), seed=0)
        if spec is None:
            return venv
        parsed = WrapperSpec.parse(spec)
        if parsed.name in ("episode-stats", "video"):
            parsed = WrapperSpec.parse(
                f"{parsed.name}:path={out_dir / (parsed.name + ('.csv' if parsed.name == 'episode-stats' else '.gif'))}"
            )
        if mode == "per-env":
            return _PerEnv(venv, parsed, seed=0)
        return VecEnvAdapter(venv, parsed.build(), seed=0, output_dir=out_dir)

    applicable = []
    for name in names:
        try:
            make(name, "batched").close()
            applicable.append(name)
        except TypeError:
            pass
    keys = [("none", None, "batched")] + [(f"{n}", n, "batched") for n in applicable]
    if per_env:
        keys += [(f"{n} (per env)", n, "per-env") for n in applicable]
    envs = {key: make(spec, mode) for key, spec, mode in keys}
    totals = dict.fromkeys(envs, 0.0)
    try:
        for env in envs.values():
            env.reset()
            _steps_per_second(env, min(10, steps), actions[:10])  # warm-up
        for _ in range(rounds):
            for key, env in envs.items():
                totals[key] += _steps_per_second(env, steps, actions)
    finally:
        for env in envs.values():
            env.close()
    sps = {k: v / rounds for k, v in totals.items()}
    base = sps["none"]
    return {
        "settings": {"game": game, "num_envs": num_envs, "steps": steps, "rounds": rounds},
        "machine": machine_info("cpu"),
        "env_steps_per_s": sps,
        "ratio_to_none": {k: v / base for k, v in sps.items()},
    }


def format_results(results: dict[str, Any]) -> str:
    s = results["settings"]
    rows = [
        [k, f"{v:,.0f}", f"{results['ratio_to_none'][k]:.2f}"] for k, v in results["env_steps_per_s"].items()
    ]
    head = (
        f"Wrapper cost: {s['game']}, {s['num_envs']} envs, {s['steps']} steps x {s['rounds']} interleaved rounds, "
        "random actions; env steps/s (all envs) and ratio to the unwrapped env"
    )
    return "\n".join([head, "", *table(["wrapper", "env steps/s", "ratio"], rows)])


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def main(argv: list[str] | None = None) -> int:
    """Runs the wrapper benchmark; returns the exit status (2 for bad values, one line on stderr)."""
    import sys

    from heldout.bench.common import check_game, check_positive
    from heldout.protocol.run_folder import check_writable
    from heldout.protocol.validate import check_wrappers

    parser = _Parser(
        prog="heldout bench wrappers",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--game", default="starpilot", help="Procgen game")
    parser.add_argument("--num-envs", type=int, default=64, help="envs in the batch")
    parser.add_argument("--steps", type=int, default=200, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--wrappers", help="comma-separated wrapper specs (default: every registered one)")
    parser.add_argument("--no-per-env", action="store_true", help="skip the one-row-at-a-time reference")
    parser.add_argument("--out", default="runs/bench-wrappers", help="folder for results.json and recordings")
    try:
        args = parser.parse_args(argv)
        game = check_game(args.game)
        for name in ("num_envs", "steps", "rounds"):
            check_positive(f"--{name.replace('_', '-')}", getattr(args, name))
        specs = [w for w in args.wrappers.split(",") if w.strip()] if args.wrappers else None
        if args.wrappers is not None and not specs:
            raise ValueError(
                f"--wrappers {args.wrappers!r} names no wrapper; valid: {', '.join(WRAPPERS.names())}"
            )
        check_wrappers(specs, what="--wrappers")
        check_writable(args.out)
    except (ValueError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"heldout bench wrappers: error: {message}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    results = run(
        game,
        args.num_envs,
        args.steps,
        args.rounds,
        specs,
        per_env=not args.no_per_env,
        out_dir=args.out,
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2))
    print(format_results(results))
    print(f"results: {Path(args.out) / 'results.json'}")
    return 0
