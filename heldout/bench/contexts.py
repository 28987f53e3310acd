"""``heldout bench contexts``: how hard is each contextual preset's test range, for a reference controller.

    heldout bench contexts [--presets cartpole-gravity-extrapolation,...] [--episodes 100] [--json]

For every contextual preset whose env has a reference controller (:mod:`heldout.bench.controllers`:
LQR for CartPole, energy pumping for both MountainCars and Acrobot, energy swing-up for Pendulum,
gymnasium's heuristic for LunarLander), this plays the controller on the preset's train and test
ranges and reports its success rate (the env's own verdict, as the protocol's evaluation records it)
and mean return. The episodes are the protocol's own evaluation lists (the preset's ``(context,
reset seed)`` pairs, drawn by :meth:`~heldout.protocol.families.ContextualFamily.eval_lists` from
its fixed generator), so the controller meets exactly the contexts an agent is tested on.

A test range the controller solves is one a policy can solve; one where even a controller that
knows the physics fails is, for a context-blind agent, likely impossible, and a low test score
there says little about generalization.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from heldout.bench.common import HelpFormatter, check_positive, table
from heldout.bench.controllers import CONTROLLERS, Controller


def controlled_presets() -> list[str]:
    """The contextual presets whose env has a reference controller, in the presets' order."""
    from heldout.protocol.presets import CONTEXT_PRESET_NAMES, PRESETS

    return [name for name in CONTEXT_PRESET_NAMES if PRESETS.get(name).env in CONTROLLERS.names()]


def check_presets(text: str | None) -> list[str]:
    """``--presets``: comma-separated names (default: all :func:`controlled_presets`); ValueError naming
    an unknown one (with a suggestion) or one without a controller."""
    from heldout.protocol.presets import PRESETS

    valid = controlled_presets()
    if text is None:
        return valid
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"--presets {text!r} names no preset; valid: {', '.join(valid)}")
    for name in names:
        if name in valid:
            continue
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if name in PRESETS.names():
            raise ValueError(
                f"preset {name!r} is not a contextual preset with a reference controller{hint}; valid: "
                f"{', '.join(valid)}"
            )
        raise ValueError(f"unknown preset {name!r}{hint}; valid: {', '.join(valid)}")
    repeated = [n for n in dict.fromkeys(names) if names.count(n) > 1]
    if repeated:
        raise ValueError(f"--presets: {repeated[0]!r} is given twice; give each preset once")
    return names


def play(
    env: Any, controller: Controller, item: dict[str, Any]
) -> tuple[bool | None, float, int, bool | None]:
    """One episode of ``controller`` on ``env`` from an evaluation item ``{"context", "seed"}``, reset
    as the protocol resets (``seed=item["seed"], options={"context": item["context"]}``).

    Returns:
        ``(completed, return, length, at_goal)``; ``completed`` is the env's own verdict
        (``completed_episode``; None for an env with no notion of success), ``at_goal`` the
        controller's own check of the last observation (:meth:`Controller.at_goal`; None: none).
    """
    obs, _ = env.reset(seed=int(item["seed"]), options={"context": item["context"]})
    controller.reset(env.unwrapped)
    total, length = 0.0, 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(controller.act(obs))
        total += float(reward)
        length += 1
        if terminated or truncated:
            verdict = env.unwrapped.completed_episode(terminated, truncated)
            return verdict, total, length, controller.at_goal(obs)


def measure_preset(name: str, episodes: int = 100) -> dict[str, Any]:
    """The controller of preset ``name``'s env on each split's evaluation list of ``episodes`` items.

    Returns:
        ``{"preset", "env", "controller", "uses_context", "splits": {split: {"contexts", "episodes",
        "successes", "success_rate", "at_goal_rate", "mean_return", "stderr", "returns", "completed"}}}``;
        the rate and count are None for an env with no notion of success (Pendulum), whose controller
        reports instead the share of episodes that end at its goal (``at_goal_rate``, upright).
    """
    from heldout.protocol.families import family_for
    from heldout.protocol.families.contextual import make_contextual_env
    from heldout.protocol.presets import PRESETS

    config = PRESETS.get(name)
    family = family_for(config.env)
    split = family.split(config)
    lists, _ = family.eval_lists(config, split, episodes)
    controller = CONTROLLERS.get(config.env)()
    env = make_contextual_env(config.env)
    out: dict[str, Any] = {
        "preset": name,
        "env": config.env,
        "controller": CONTROLLERS.describe(config.env),
        "uses_context": type(controller).uses_context,
        "splits": {},
    }
    try:
        for split_name, items in lists.items():
            rows = [play(env, controller, item) for item in items]
            completed = [c for c, _, _, _ in rows]
            returns = [r for _, r, _, _ in rows]
            at_goal = [g for _, _, _, g in rows]
            known = all(c is not None for c in completed)
            successes = sum(bool(c) for c in completed) if known else None
            out["splits"][split_name] = {
                "contexts": family.describe_set(split, split_name),
                "episodes": len(rows),
                "successes": successes,
                "success_rate": None if successes is None else successes / len(rows),
                "at_goal_rate": None if None in at_goal else sum(map(bool, at_goal)) / len(rows),
                "mean_return": statistics.fmean(returns),
                "stderr": statistics.stdev(returns) / math.sqrt(len(returns)) if len(returns) > 1 else 0.0,
                "returns": returns,
                "completed": completed,
            }
    finally:
        env.close()
    return out


def run(presets: Sequence[str], episodes: int = 100, stream: Any = None) -> dict[str, Any]:
    """:func:`measure_preset` for each preset; a line per preset on ``stream`` (default stderr)."""
    stream = stream or sys.stderr
    results: dict[str, Any] = {"episodes": episodes, "presets": []}
    started = time.perf_counter()
    for index, name in enumerate(presets, 1):
        print(f"[{index}/{len(presets)}] {name} ...", file=stream, flush=True)
        results["presets"].append(measure_preset(name, episodes))
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    return results


def _rate(split: dict[str, Any]) -> str:
    """``"98%"``; for an env with no notion of success, ``"-"`` or, where the controller checks its
    own goal (Pendulum: upright at the end), ``"- (goal 100%)"``."""
    if split["success_rate"] is not None:
        return f"{100 * split['success_rate']:.0f}%"
    if split.get("at_goal_rate") is not None:
        return f"- (goal {100 * split['at_goal_rate']:.0f}%)"
    return "-"


def format_table(results: dict[str, Any]) -> str:
    """One row per (preset, split): its contexts, the controller's success rate and mean return."""
    rows, contexts = [], []
    for p in results["presets"]:
        for split_name, s in p["splits"].items():
            rows.append(
                [
                    p["preset"],
                    split_name,
                    str(s["episodes"]),
                    _rate(s),
                    f"{s['mean_return']:.1f} ± {s['stderr']:.1f}",
                ]
            )
            contexts.append(s["contexts"])
    aligned = table(["preset", "split", "episodes", "success", "mean return ± se"], rows)
    width = max(len(line) for line in aligned)
    lines = [
        f"{aligned[0].ljust(width)}  contexts",
        f"{aligned[1].ljust(width)}  {'-' * max(len(c) for c in ['contexts', *contexts])}",
        *(f"{line.ljust(width)}  {c}" for line, c in zip(aligned[2:], contexts)),
    ]
    controllers = {p["env"]: (p["controller"], p["uses_context"]) for p in results["presets"]}
    lines += ["", "controllers:"]
    for env, (text, uses) in controllers.items():
        lines.append(f"  {env}: {text} ({'knows the context' if uses else 'context-blind'})")
    return "\n".join(lines)


def format_markdown(results: dict[str, Any]) -> str:
    """The table as Markdown (docs/contexts.md, "How hard is each test range")."""
    lines = [
        "| preset | controller | knows the context | train: success, mean return | test: success, mean return |",
        "|---|---|---|---:|---:|",
    ]
    for p in results["presets"]:
        cells = []
        for split_name in ("train", "test"):
            s = p["splits"][split_name]
            cells.append(f"{_rate(s)}, {s['mean_return']:.1f}")
        knows = "yes" if p["uses_context"] else "no"
        lines.append(f"| `{p['preset']}` | {p['controller']} | {knows} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def build_parser(prog: str = "heldout bench contexts") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=(
            "Play a reference controller (LQR for CartPole, energy pumping for MountainCar, "
            "MountainCarContinuous and Acrobot, energy swing-up for Pendulum, gymnasium's heuristic for "
            "LunarLander) on each contextual preset's train and test contexts, the protocol's own "
            "evaluation lists, and print its success rate and mean return: whether a test range is hard "
            "or impossible. Writes nothing."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--presets",
        default=None,
        help="comma-separated contextual presets (default: every one with a controller)",
    )
    parser.add_argument(
        "--episodes", type=int, default=100, help="episodes per split (the presets' eval_episodes)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON (per-episode returns too)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status (2 for bad input, one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        presets = check_presets(args.presets)
        episodes = check_positive("--episodes", args.episodes)
        if args.json and args.markdown:
            raise ValueError("--json and --markdown both name the output: give one of them")
    except (ValueError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"heldout bench contexts: error: {message}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    results = run(presets, episodes)
    if args.json:
        print(json.dumps(results, indent=2))
    elif args.markdown:
        print(format_markdown(results), end="")
    else:
        print(format_table(results))
    return 0


__all__ = [
    "check_presets",
    "controlled_presets",
    "format_markdown",
    "format_table",
    "main",
    "measure_preset",
    "play",
    "run",
]
