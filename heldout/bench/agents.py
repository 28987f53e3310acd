"""Agent comparison benchmark: held-out test return, gap and throughput of agents side by side.

    heldout bench agents --agents ppo,drac --games starpilot,fruitbot --seeds 0,1 --timesteps 131072

Two parts, both in one run so their figures compare:

* **quality**: the whole protocol (:func:`heldout.protocol.run.run_train`) for every
  (game, seed, agent), in that order, so a change in the machine's load during the benchmark hits
  every agent alike; each run leaves a normal run folder. The table gives, per game and agent, the
  mean over seeds of the final train and test returns (100 episodes each on fixed level lists) with
  the standard error over seeds, the gap, and the training steps/s;
* **focus**: for every run, the share of the agent's saliency mass (guided backprop) on the
  foreground of train and test levels (:func:`heldout.protocol.saliency.run_focus`);
* **throughput**: every agent's training steps/s over interleaved PPO iterations on one game, and
  its ratio to PPO's.

Results are written to a JSON file after every run; ``--resume`` skips the runs already there.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from heldout.bench.common import (
    HelpFormatter,
    OtherLoad,
    check_game,
    check_positive,
    machine_info,
    resolve_device,
    table,
    time_interleaved,
)

#: Agents that take an augmentation: the benchmark passes ``--augmentation`` to these.
_AUGMENTED = ("rad", "drac")


def _agent_kwargs(
    agent: str, augmentation: str, n_steps: int, batch_size: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Rollout sizes, the augmentation of rad / drac, and those ``extra`` keywords the agent takes."""
    from heldout.agents import AGENTS
    from heldout.protocol.validate import agent_parameters

    kwargs: dict[str, Any] = {"n_steps": n_steps, "batch_size": batch_size}
    if agent in _AUGMENTED:
        kwargs["augmentation"] = augmentation
    accepted = agent_parameters(AGENTS.get(agent))
    kwargs.update({k: v for k, v in (extra or {}).items() if k in accepted})
    return kwargs


def agent_throughput(
    agents: Sequence[str],
    game: str = "starpilot",
    num_envs: int = 64,
    n_steps: int = 32,
    iterations: int = 2,
    augmentation: str = "crop",
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Training env steps/s of each agent on the same env and settings, interleaved.

    Each agent first runs one untimed iteration (rollout + update); then ``iterations`` rounds time
    one iteration per agent in turn. Minibatch size is ``num_envs * n_steps / 8``, 3 epochs.

    Returns:
        ``{"settings": {...}, "steps_per_s": {agent: float}, "update_seconds": {agent: float},
        "ratio_to_ppo": {agent: float}}`` (ratios only when "ppo" is among the agents).
    """
    from heldout.agents import AGENTS
    from heldout.envs.procgen import ProcgenVecEnv

    device = resolve_device(device)
    batch_size = max(1, num_envs * n_steps // 8)
    rollout = num_envs * n_steps

    def builder(agent: str) -> Any:
        def build() -> Any:
            env = ProcgenVecEnv(game, num_envs=num_envs, levels=range(200), seed=seed)
            kwargs = _agent_kwargs(agent, augmentation, n_steps, batch_size)
            return AGENTS.get(agent)("CnnPolicy", env, seed=seed, device=device, **kwargs)

        return build

    seconds, rollout_seconds = time_interleaved(
        {agent: builder(agent) for agent in agents}, rollout, iterations, device
    )
    sps = {agent: iterations * rollout / seconds[agent] for agent in agents}
    result: dict[str, Any] = {
        "settings": {
            "game": game,
            "num_envs": num_envs,
            "n_steps": n_steps,
            "batch_size": batch_size,
            "iterations": iterations,
            "augmentation": augmentation,
            "device": device,
        },
        "steps_per_s": sps,
        "update_seconds": {agent: seconds[agent] - rollout_seconds[agent] for agent in agents},
        "ratio_to_ppo": {},
    }
    if "ppo" in sps:
        result["ratio_to_ppo"] = {agent: sps[agent] / sps["ppo"] for agent in agents}
    return result


def quality_config(
    agent: str,
    game: str,
    seed: int,
    timesteps: int,
    out: str,
    augmentation: str = "crop",
    num_envs: int = 32,
    n_steps: int = 128,
    num_levels: int = 200,
    eval_episodes: int = 100,
    device: str = "auto",
    agent_args: dict[str, Any] | None = None,
    imports: Sequence[str] = (),
) -> Any:
    """The :class:`~heldout.protocol.config.TrainConfig` of one run of :func:`quality_run`."""
    from heldout.protocol.config import TrainConfig

    return TrainConfig(
        env=game,
        agent=agent,
        timesteps=timesteps,
        num_envs=num_envs,
        num_levels=num_levels,
        seed=seed,
        device=device,
        agent_kwargs=_agent_kwargs(agent, augmentation, n_steps, max(1, num_envs * n_steps // 4), agent_args),
        eval_episodes=eval_episodes,
        eval_freq=0,
        eval_num_envs=min(eval_episodes, 50),
        out=out,
        imports=list(imports),
    )


def quality_run(agent: str, game: str, seed: int, timesteps: int, out: str, **options: Any) -> dict[str, Any]:
    """One protocol run (train on ``num_levels`` easy levels, evaluate on train and test lists).

    ``options`` are those of :func:`quality_config` (``augmentation``, ``num_envs``, ``n_steps``,
    ``num_levels``, ``eval_episodes``, ``device``, ``agent_args``, ``imports``: user modules that
    register agents, recorded in the run's ``TrainConfig.imports``).

    Returns:
        The run's summary figures: ``train``, ``test`` (mean returns), ``train_se``, ``test_se``
        (standard errors over episodes), ``gap``, ``steps_per_s``, ``run_dir``.
    """
    from heldout.protocol.run import run_train

    config = quality_config(agent, game, seed, timesteps, out, **options)
    run_dir, summary = run_train(config, command="heldout bench agents", progress=False, stream=io.StringIO())
    splits = summary["splits"]

    return {
        "agent": agent,
        "game": game,
        "seed": seed,
        "timesteps": int(summary["timesteps"]),
        "train": splits["train"]["mean"],
        "test": splits["test"]["mean"],
        "train_se": splits["train"]["stderr"],
        "test_se": splits["test"]["stderr"],
        "gap": summary["gap"],
        "steps_per_s": summary["train_steps_per_second"],
        "run_dir": str(run_dir),
    }


def add_focus(run: dict[str, Any], episodes: int, max_steps: int, device: str = "auto") -> dict[str, Any]:
    """Adds the focus metric of a finished run (train and test) to its record, in place."""
    from heldout.protocol.saliency import run_focus

    summaries = run_focus(
        run["run_dir"], ("train", "test"), episodes=episodes, max_steps=max_steps, device=device
    )
    run["focus"] = {split: s["focus"] for split, s in summaries.items()}
    run["foreground_share"] = {split: s["foreground_share"] for split, s in summaries.items()}
    run["focus_settings"] = {"episodes": episodes, "max_steps": max_steps, "method": "guided_backprop"}
    return run


def _focus_cell(runs: Sequence[dict[str, Any]], split: str, target: str) -> str:
    values = [r["focus"][split][target] for r in runs if target in r.get("focus", {}).get(split, {})]
    if len(values) != len(runs):
        return "n/a"
    mean, se = _mean_se(values)
    return f"{mean:.3f} ± {se:.3f}" if se is not None else f"{mean:.3f}"


def _mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return mean, se


def format_results(results: dict[str, Any]) -> str:
    """The markdown tables of a results dict (quality per game and agent, then throughput)."""
    lines: list[str] = []
    runs = results.get("runs", [])
    config = results.get("config", {})
    if runs:
        lines.append(
            f"Quality: {config.get('timesteps')} steps per run, {config.get('num_levels')} training levels "
            f"(easy), test on unseen levels; final evaluation {config.get('eval_episodes')} episodes "
            "per split. Mean over seeds (± standard error over seeds; n/a for one seed)."
        )
        lines.append("")
        header = ["game", "agent", "seeds", "train return", "test return", "gap", "train steps/s"]
        with_focus = any("focus" in r for r in runs)
        if with_focus:
            header += ["focus V train", "focus V test", "focus logπ test", "fg share test"]
        rows = []
        games = list(dict.fromkeys(r["game"] for r in runs))
        agents = list(dict.fromkeys(r["agent"] for r in runs))
        for game in games:
            for agent in agents:
                sel = [r for r in runs if r["game"] == game and r["agent"] == agent]
                if not sel:
                    continue
                cells = [game, agent, ",".join(str(r["seed"]) for r in sel)]
                for key in ("train", "test", "gap"):
                    mean, se = _mean_se([r[key] for r in sel])
                    cells.append(f"{mean:.2f} ± {se:.2f}" if se is not None else f"{mean:.2f} (n/a)")
                cells.append(f"{statistics.fmean(r['steps_per_s'] for r in sel):.0f}")
                if with_focus:
                    target = "q" if any("q" in r.get("focus", {}).get("test", {}) for r in sel) else "value"
                    cells += [
                        _focus_cell(sel, "train", target),
                        _focus_cell(sel, "test", target),
                        _focus_cell(sel, "test", "log_prob"),
                    ]
                    shares = [r["foreground_share"]["test"] for r in sel if "foreground_share" in r]
                    cells.append(f"{statistics.fmean(shares):.3f}" if len(shares) == len(sel) else "n/a")
                rows.append(cells)
        lines += table(header, rows)
        lines.append("")
        if with_focus:
            settings = next(r["focus_settings"] for r in runs if "focus_settings" in r)
            lines.append(
                f"Focus: share of the guided-backprop saliency mass of V(s) (Q(s,a) for Q-networks) and of "
                f"log pi(a|s) on the foreground (the level rendered without background), averaged over the "
                f"steps of {settings['episodes']} episodes per split (at most {settings['max_steps']} steps "
                "each); 'fg share' is the share of the frame the foreground covers, what a uniform map scores."
            )
            lines.append("")
    throughput = results.get("throughput")
    if throughput:
        s = throughput["settings"]
        lines.append(
            f"Throughput: {s['game']}, {s['num_envs']} envs x {s['n_steps']} steps, minibatch "
            f"{s['batch_size']}, 3 epochs, {s['iterations']} interleaved iterations per agent, "
            f"{s['device']}; other load {results.get('other_load', {}).get('throughput')}."
        )
        lines.append("")
        rows = [
            [
                agent,
                f"{sps:.0f}",
                f"{throughput['ratio_to_ppo'].get(agent, float('nan')):.2f}",
            ]
            for agent, sps in throughput["steps_per_s"].items()
        ]
        lines += table(["agent", "train steps/s", "ratio to ppo"], rows)
        lines.append("")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _names(text: str, kind: str, valid: Sequence[str]) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"--{kind} is empty")
    for name in names:
        if name not in valid:
            import difflib

            close = difflib.get_close_matches(name, list(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {kind[:-1]} {name!r}{hint}; valid: {', '.join(valid)}")
    return names


def _parse_agent_args(items: Sequence[str], agents: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict; a key no listed agent takes raises ValueError naming them."""
    from heldout.agents import AGENTS
    from heldout.protocol.checks import parse_value
    from heldout.protocol.validate import agent_parameters

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--agent-arg expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not any(key in agent_parameters(AGENTS.get(a)) for a in agents):
            raise ValueError(f"--agent-arg {key!r} is taken by none of the agents {', '.join(agents)}")
        out[key] = parse_value(value)
    return out


def build_parser(prog: str = "heldout bench agents") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=(
            "Train agents with the heldout protocol on several games and seeds and report their held-out "
            "test return, generalization gap and training throughput side by side (see "
            "benchmarks/README.md). CPU budgets are far below the reference's 25M steps: compare agents "
            "with each other, not with published numbers."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--agents", default="ppo,drac", help="comma-separated agents")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="FILE_OR_MODULE",
        help="a .py file or module to import first, which registers your own agents (repeatable)",
    )
    parser.add_argument("--games", default="starpilot,fruitbot", help="comma-separated Procgen games")
    parser.add_argument("--seeds", default="0,1", help="comma-separated run seeds")
    parser.add_argument("--timesteps", type=int, default=131_072, help="training steps per run")
    parser.add_argument("--augmentation", default="crop", help="augmentation of rad and drac")
    parser.add_argument("--num-envs", type=int, default=32, help="training envs per run")
    parser.add_argument("--n-steps", type=int, default=128, help="rollout length per env (minibatch: 1/4)")
    parser.add_argument("--num-levels", type=int, default=200, help="training levels")
    parser.add_argument("--eval-episodes", type=int, default=100, help="final evaluation episodes per split")
    parser.add_argument(
        "--focus-episodes", type=int, default=8, help="episodes per split for the focus metric (0: skip)"
    )
    parser.add_argument("--focus-max-steps", type=int, default=200, help="steps per focus episode at most")
    parser.add_argument(
        "--agent-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="agent keyword argument (YAML value), passed to the agents that take it (repeatable)",
    )
    parser.add_argument("--throughput-iterations", type=int, default=2, help="0: skip the throughput part")
    parser.add_argument("--skip-quality", action="store_true", help="only measure throughput")
    parser.add_argument("--device", default="auto", help="torch device")
    parser.add_argument("--out", default="runs/bench-agents", help="root of the run folders")
    parser.add_argument("--json", default=None, help="results file (default: OUT/results.json)")
    parser.add_argument("--resume", action="store_true", help="skip runs already in the results file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the agent benchmark; returns the exit status (2 for bad values)."""
    from heldout.agents import AGENTS
    from heldout.agents.augment import AUGMENTATIONS
    from heldout.envs.procgen import PROCGEN_GAMES
    from heldout.protocol.checks import check_int, check_seed
    from heldout.protocol.run_folder import check_writable, read_json
    from heldout.protocol.validate import validate_config

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        from heldout.protocol.plugins import import_plugins, normalize_import

        import_plugins(args.imports)
        imports = [normalize_import(spec) for spec in args.imports]
        agents = _names(args.agents, "agents", AGENTS.names())
        games = [check_game(g) for g in _names(args.games, "games", list(PROCGEN_GAMES))]
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise ValueError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
        for name in ("timesteps", "num_envs", "n_steps", "num_levels", "eval_episodes", "focus_max_steps"):
            check_positive(f"--{name.replace('_', '-')}", getattr(args, name))
        for name in ("focus_episodes", "throughput_iterations"):
            check_int(f"--{name.replace('_', '-')}", getattr(args, name), minimum=0)
        for seed in seeds:
            check_seed("--seeds", seed)
        AUGMENTATIONS.get(args.augmentation)
        agent_args = _parse_agent_args(args.agent_arg, agents)
        device = resolve_device(args.device)
        path = args.json or os.path.join(args.out, "results.json")
        check_writable(args.out)
        check_writable(os.path.dirname(os.path.abspath(path)))
        previous = read_json(path) if args.resume and os.path.exists(path) else None
        options = {  # every run's settings but agent, game and seed
            "augmentation": args.augmentation,
            "num_envs": args.num_envs,
            "n_steps": args.n_steps,
            "num_levels": args.num_levels,
            "eval_episodes": args.eval_episodes,
            "device": device,
            "agent_args": agent_args,
            "imports": imports,
        }
        if not args.skip_quality:  # every run's config, before the first folder is made
            for game in games:
                for agent in agents:
                    validate_config(
                        quality_config(agent, game, seeds[0], args.timesteps, args.out, **options)
                    )
    except (ValueError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) else str(err)
        print(f"heldout bench agents: error: {message}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    results: dict[str, Any] = {"runs": [], "other_load": {}}
    if previous is not None:
        results = previous
    results["config"] = {
        "agents": agents,
        "games": games,
        "seeds": seeds,
        "timesteps": args.timesteps,
        **options,
    }
    results["machine"] = machine_info(device)

    def save() -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, path)

    done = {(r["game"], r["seed"], r["agent"]) for r in results["runs"]}
    todo = [(g, s, a) for g in games for s in seeds for a in agents if (g, s, a) not in done]
    if args.skip_quality:
        todo = []
    started = time.perf_counter()
    with OtherLoad() as load:
        for index, (game, seed, agent) in enumerate(todo, 1):
            print(f"[{index}/{len(todo)}] {agent} on {game}, seed {seed} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            run = quality_run(agent, game, seed, args.timesteps, args.out, **options)
            print(
                f"    train {run['train']:.2f}  test {run['test']:.2f}  ({run['steps_per_s']:.0f} steps/s, "
                f"{time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            if args.focus_episodes > 0:
                add_focus(run, args.focus_episodes, args.focus_max_steps, device=device)
            results["runs"].append(run)
            save()
        if args.focus_episodes > 0:  # runs recorded before focus was measured (or --resume)
            for run in results["runs"]:
                if "focus" not in run and os.path.isdir(run["run_dir"]):
                    print(
                        f"focus of {run['agent']} on {run['game']}, seed {run['seed']} ...", file=sys.stderr
                    )
                    add_focus(run, args.focus_episodes, args.focus_max_steps, device=device)
                    save()
    if todo:
        results["other_load"]["quality"] = load.value
    if args.throughput_iterations > 0:
        print(f"measuring throughput of {', '.join(agents)} ...", file=sys.stderr, flush=True)
        with OtherLoad() as load:
            results["throughput"] = agent_throughput(
                agents,
                games[0],
                iterations=args.throughput_iterations,
                augmentation=args.augmentation,
                device=device,
            )
        results["other_load"]["throughput"] = load.value
    results["wall_seconds"] = time.perf_counter() - started
    save()
    print(format_results(results), end="")
    print(f"results: {path}")
    return 0


__all__ = ["add_focus", "agent_throughput", "format_results", "main", "quality_run"]
