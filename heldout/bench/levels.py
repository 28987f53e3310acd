"""``heldout bench levels``: generalization against the size of the training set.

    heldout bench levels --env minigrid-doorkey-6x6 --num-levels 1,5,25,100 --seeds 0,1,2 \\
        --total-timesteps 100000 --out runs/bench-levels

Cobbe et al. 2020 ("Leveraging Procedural Generation to Benchmark Reinforcement Learning", ICML,
fig. 2) train one agent on training sets of growing size and plot the final train and test returns
against the number of training levels: with few levels the agent memorises them (high train, low
test return), with more the gap closes. This benchmark does the same with the heldout protocol:
every (training-set size, seed) pair is an ordinary run (:func:`heldout.protocol.run.run_train`)
whose folder lands under ``OUT/levels-<N>/``; the test levels are the protocol's leak-free held-out
list, the same for every size. The figures are each run's ``summary.json`` means (one fixed list of
``eval_episodes`` levels a split), then the mean over seeds with a percentile-bootstrap 95% CI over
seeds (:func:`heldout.analysis.stats.mean_ci_over_seeds`). Written to ``OUT``: ``results.json``,
``results.md`` (the table) and ``levels.png`` (train and test return against training-set size, log
x axis).

Every size is checked before the first run starts: the names, the numbers, that the training range
fits below the test range, and that each size leaves a leak-free test list (MiniGrid's small grids
have few distinct levels, so a large training set can hold every test level).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from heldout.bench.common import HelpFormatter, OtherLoad, check_positive, machine_info, table

#: Training-set sizes by family when ``--num-levels`` is not given: Procgen's follow Cobbe et al.
#: 2020's fig. 2 range; MiniGrid's grids have only a few hundred distinct levels.
DEFAULT_SIZES: dict[str, tuple[int, ...]] = {"procgen": (10, 50, 200, 1000), "seeded": (1, 5, 25, 100)}
#: The preset each family starts from when ``--preset`` is not given.
DEFAULT_PRESET: dict[str, str] = {"procgen": "procgen-easy", "seeded": "minigrid-doorkey"}


def level_envs() -> list[str]:
    """The envs whose levels are seeds (Procgen games and the seeded envs): what ``--env`` takes."""
    from heldout.envs import SEEDED_ENVS
    from heldout.envs.procgen import PROCGEN_GAMES

    return [*PROCGEN_GAMES, *SEEDED_ENVS.names()]


def env_kind(env: str) -> str:
    """``"procgen"`` or ``"seeded"``; ValueError naming the level envs (with a suggestion) otherwise."""
    import difflib

    from heldout.envs import CONTEXTUAL_ENVS, SEEDED_ENVS

    valid = level_envs()
    if env in SEEDED_ENVS:
        return "seeded"
    if env in valid:
        return "procgen"
    if env in CONTEXTUAL_ENVS:
        raise ValueError(
            f"--env {env!r} is a contextual env: it has contexts, not levels, so it has no training-set "
            f"size; valid: {', '.join(valid)}"
        )
    close = difflib.get_close_matches(env, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown --env {env!r}{hint}; valid: {', '.join(valid)}")


def parse_sizes(text: str) -> list[int]:
    """``"5,20,100"`` -> ``[5, 20, 100]`` (sorted); ValueError for an empty list, a size that is not a
    positive integer, or one given twice."""
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ValueError(f"--num-levels {text!r} names no training-set size; give e.g. 10,50,200,1000")
    sizes: list[int] = []
    for part in parts:
        try:
            size = int(part)
        except ValueError:
            raise ValueError(
                f"--num-levels: {part!r} is not a whole number of levels; give positive integers, e.g. 10,50,200"
            ) from None
        if size <= 0:
            raise ValueError(f"--num-levels: {size} is not a positive number of levels; valid: 1, 2, 3, ...")
        if size in sizes:
            raise ValueError(f"--num-levels: {size} is given twice in {text!r}; give each size once")
        sizes.append(size)
    return sorted(sizes)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ValueError for an empty list, a bad seed or a repeated one."""
    from heldout.protocol.checks import check_seed

    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"--seeds {text!r} names no seed; give e.g. 0,1,2")
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None
    for seed in seeds:
        check_seed("--seeds", seed)
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"--seeds: {repeated[0]} is given twice in {text!r}; give each seed once")
    return seeds


def size_config(base: Any, size: int, seed: int, out: str | os.PathLike[str]) -> Any:
    """The config of one run: ``base`` with ``size`` training levels and ``seed``, its folder under
    ``out/levels-<size>``."""
    return base.replace(num_levels=size, seed=seed, out=str(Path(out) / f"levels-{size}"))


def check_plan(base: Any, sizes: Sequence[int], out: str | os.PathLike[str]) -> None:
    """Checks every size's config before any run starts (ValueError / KeyError / TypeError, one line).

    Each config must validate, its training range ``[start_level, start_level + N)`` must end at or
    before the test range, and each size must leave a leak-free test list of ``eval_episodes`` levels
    (the list :meth:`~heldout.protocol.families.LevelFamily.eval_lists` would give the run).
    """
    from heldout.protocol.families import family_for
    from heldout.protocol.validate import validate_config

    family = family_for(base.env)
    room = base.test_start - base.start_level
    for size in sizes:
        if size > room:
            raise ValueError(
                f"--num-levels {size} is larger than the seed space below the test range: training levels "
                f"start at {base.start_level} and test levels at {base.test_start}, so at most {room} "
                "training levels fit"
            )
    for size in sizes:
        config = size_config(base, size, base.seed, out).resolved()
        validate_config(config)
        split = family.split(config)
        try:
            family.eval_lists(config, split, config.eval_episodes)
        except ValueError as err:
            raise ValueError(f"--num-levels {size}: {err}") from None


def run_one(config: Any) -> dict[str, Any]:
    """One protocol run; returns its record (size, seed, folder, the summary's means and gap)."""
    from heldout.protocol.run import run_train

    run_dir, summary = run_train(config, command="heldout bench levels", progress=False, stream=io.StringIO())
    splits = summary["splits"]
    return {
        "num_levels": config.num_levels,
        "seed": config.seed,
        "run_dir": str(run_dir),
        "train": splits["train"]["mean"],
        "test": splits["test"]["mean"],
        "gap": summary["gap"],
        "timesteps": int(summary["timesteps"]),
        "train_seconds": summary["train_seconds"],
        "steps_per_s": summary["train_steps_per_second"],
    }


def summarize_runs(runs: Sequence[dict[str, Any]], reps: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Per training-set size (ascending): the seeds and, for train, test and gap, the mean over seeds
    with its percentile-bootstrap CI (None for one seed)."""
    from heldout.analysis.stats import mean_ci_over_seeds

    rows = []
    for size in sorted({r["num_levels"] for r in runs}):
        sel = [r for r in runs if r["num_levels"] == size]
        row: dict[str, Any] = {"num_levels": size, "seeds": [r["seed"] for r in sel]}
        for key in ("train", "test", "gap"):
            est = mean_ci_over_seeds([r[key] for r in sel], reps=reps, seed=seed)
            row[key] = est.to_dict()
        rows.append(row)
    return rows


def _cell(est: dict[str, Any]) -> str:
    ci = est["ci"]
    return (
        f"{est['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci is not None else f"{est['value']:.3f} (no CI)"
    )


def format_markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown page: the settings, then one row per training-set size."""
    c = results["config"]
    lines = [
        f"# Generalization vs training-set size: {c['agent']} on {c['env']}",
        "",
        f"{c['timesteps']:,} training steps per run (preset `{c['preset']}`), seeds {', '.join(map(str, c['seeds']))}; "
        f"final evaluation: {c['eval_episodes']} episodes per split, train on the training levels, test on "
        "the protocol's leak-free held-out list (the same for every size). Mean return over seeds with a "
        "percentile-bootstrap 95% CI over seeds (Cobbe et al. 2020, fig. 2).",
        "",
        "| training levels | seeds | train return | test return | gap (train - test) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in results["table"]:
        lines.append(
            f"| {row['num_levels']} | {len(row['seeds'])} | {_cell(row['train'])} | {_cell(row['test'])} | "
            f"{_cell(row['gap'])} |"
        )
    m = results.get("machine", {})
    if m:
        lines += [
            "",
            f"Machine: {m.get('torch_device')}, {m.get('cpus_usable')} usable CPUs; other processes' load "
            f"during the runs {results.get('other_load')}; wall time {results.get('wall_seconds', 0):.0f} s.",
        ]
    if results.get("command"):
        lines += ["", "```", results["command"], "```"]
    return "\n".join(lines) + "\n"


def format_text(results: dict[str, Any]) -> str:
    """The table as aligned text, for the terminal."""
    rows = [
        [str(r["num_levels"]), str(len(r["seeds"])), _cell(r["train"]), _cell(r["test"]), _cell(r["gap"])]
        for r in results["table"]
    ]
    return "\n".join(table(["levels", "seeds", "train return", "test return", "gap"], rows))


def run_levels(
    base: Any,
    sizes: Sequence[int],
    seeds: Sequence[int],
    out: str | os.PathLike[str],
    preset: str = "",
    command: str = "",
    stream: Any = None,
) -> dict[str, Any]:
    """Trains ``base`` with every training-set size and seed, writes ``OUT/results.json``,
    ``results.md`` and ``levels.png``; returns the results dict.

    Call :func:`check_plan` first: this starts training at once. Runs go size by size, seed by seed;
    ``stream`` (default stderr) gets a line per run.
    """
    from heldout.analysis.plots import levels_curve
    from heldout.protocol.run_folder import write_atomic, write_json

    stream = stream or sys.stderr
    out = Path(out)
    results: dict[str, Any] = {
        "config": {
            "env": base.env,
            "agent": base.agent,
            "preset": preset,
            "timesteps": base.timesteps,
            "num_levels": list(sizes),
            "seeds": list(seeds),
            "eval_episodes": base.eval_episodes,
            "num_envs": base.num_envs,
            "agent_kwargs": base.agent_kwargs,
            "device": base.device,
        },
        "command": command,
        "machine": machine_info(base.device if base.device != "auto" else None),
        "runs": [],
    }
    todo = [(size, seed) for size in sizes for seed in seeds]
    started = time.perf_counter()
    with OtherLoad() as load:
        for index, (size, seed) in enumerate(todo, 1):
            print(
                f"[{index}/{len(todo)}] {base.agent} on {base.env}, {size} training level(s), seed {seed} ...",
                file=stream,
                flush=True,
            )
            t0 = time.perf_counter()
            run = run_one(size_config(base, size, seed, out))
            results["runs"].append(run)
            elapsed = time.perf_counter() - started
            left = elapsed / index * (len(todo) - index)
            print(
                f"    train {run['train']:.3f}  test {run['test']:.3f}  ({run['steps_per_s']:.0f} steps/s, "
                f"{time.perf_counter() - t0:.0f} s; about {left / 60:.1f} min left)",
                file=stream,
                flush=True,
            )
    results["other_load"] = None if load.value is None else round(load.value, 2)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["table"] = summarize_runs(results["runs"])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    write_atomic(out / "results.md", format_markdown(results))
    levels_curve(
        results["table"], out / "levels.png", title=f"{base.agent} on {base.env}: {base.timesteps:,} steps"
    )
    return results


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def build_parser(prog: str = "heldout bench levels") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=(
            "Train one agent on training sets of several sizes and plot train and test return against "
            "the number of training levels (Cobbe et al. 2020, fig. 2). Each (size, seed) is an ordinary "
            "run folder under OUT/levels-<N>/; OUT gets results.json, results.md and levels.png. Every "
            "size is checked before the first run starts."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--env", default="coinrun", help="a Procgen game or seeded env (MiniGrid)")
    parser.add_argument("--agent", default="ppo", help="agent")
    parser.add_argument(
        "--num-levels",
        default=None,
        help="comma-separated training-set sizes (default: 10,50,200,1000 for Procgen, 1,5,25,100 for MiniGrid)",
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="the config every run starts from (default: procgen-easy for Procgen, minigrid-doorkey for MiniGrid)",
    )
    parser.add_argument(
        "--total-timesteps", type=int, default=None, help="training steps per run (default: the preset's)"
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated run seeds")
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=None,
        help="final evaluation episodes per split (default: the preset's)",
    )
    parser.add_argument(
        "--eval-freq",
        type=int,
        default=None,
        help="steps between periodic evaluations, 0: only the final one (default: the preset's)",
    )
    parser.add_argument("--num-envs", type=int, default=None, help="training envs (default: the preset's)")
    parser.add_argument(
        "--agent-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="agent keyword argument (YAML value), over the preset's (repeatable)",
    )
    parser.add_argument(
        "--no-leakage-check",
        action="store_true",
        help="keep test levels identical to a training level (the protocol drops them by default)",
    )
    parser.add_argument("--device", default="auto", help="torch device")
    parser.add_argument("--out", default="runs/bench-levels", help="root of the run folders and the results")
    parser.add_argument("--json", action="store_true", help="print results.json instead of the table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status (2 for bad input: one line, nothing written)."""
    from heldout.agents import AGENTS
    from heldout.bench.common import resolve_device
    from heldout.protocol.presets import PRESETS
    from heldout.protocol.run_folder import check_writable

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        kind = env_kind(args.env)
        AGENTS.get(args.agent)
        sizes = parse_sizes(args.num_levels) if args.num_levels is not None else list(DEFAULT_SIZES[kind])
        seeds = parse_seeds(args.seeds)
        preset = args.preset or DEFAULT_PRESET[kind]
        base = PRESETS.get(preset)
        changes: dict[str, Any] = {
            "env": args.env,
            "agent": args.agent,
            "device": resolve_device(args.device),
        }
        for flag, field in (
            ("total_timesteps", "timesteps"),
            ("eval_episodes", "eval_episodes"),
            ("num_envs", "num_envs"),
        ):
            value = getattr(args, flag)
            if value is not None:
                changes[field] = check_positive(f"--{flag.replace('_', '-')}", value)
        if args.no_leakage_check:
            changes["leakage_check"] = False
        if args.eval_freq is not None:
            from heldout.protocol.checks import check_int

            changes["eval_freq"] = check_int("--eval-freq", args.eval_freq, minimum=0)
        if args.agent_arg:
            from heldout.bench.agents import _parse_agent_args

            changes["agent_kwargs"] = {**base.agent_kwargs, **_parse_agent_args(args.agent_arg, [args.agent])}
        base = base.replace(**changes)
        if "eval_episodes" in changes:
            base = base.replace(
                eval_num_envs=min(base.eval_num_envs, base.eval_episodes),
                eval_periodic_episodes=min(base.eval_periodic_episodes, base.eval_episodes),
            )
        check_writable(args.out)
        check_plan(base, sizes, args.out)
    except (ValueError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"heldout bench levels: error: {message}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    command = "heldout bench levels " + " ".join(argv)
    results = run_levels(base, sizes, seeds, args.out, preset=preset, command=command.strip())
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_text(results))
        print(f"results: {Path(args.out) / 'results.md'}, {Path(args.out) / 'levels.png'}")
    return 0


__all__ = [
    "check_plan",
    "env_kind",
    "format_markdown",
    "main",
    "parse_seeds",
    "parse_sizes",
    "run_levels",
    "summarize_runs",
]
