"""Fake but realistic run folders for ``heldout report``: agents x Procgen games x seeds.

Each folder holds what ``heldout train`` writes and the report reads (``config.yaml``,
``summary.json``, ``eval/train.csv``, ``eval/test.csv``, ``progress.csv``), on the easy / 200 levels
protocol, so every table and plot of the report appears, the published comparison included. Returns
are made up: per game, each agent reaches a fraction of the game's published score range, train
above test, with noise over seeds and levels, and a learning curve rising to the final evaluation.

Used by the tests (``from fake_runs import make_runs``) and as a script, to look at a report::

    PYTHONPATH=. python tests/analysis/fake_runs.py /tmp/runs [--seeds 3] [--ragged]
    heldout report /tmp/runs --out /tmp/rep
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from heldout.envs import PROCGEN_GAMES, SCORE_RANGES

#: Agents and the fraction of each game's score range they reach on test levels (train: more).
SKILL = {"ppo": 0.35, "drac": 0.45, "ucb-drac": 0.5}

TEST_START = 100_000_000


def make_run(
    root: Path,
    env: str,
    agent: str,
    seed: int,
    skill: float,
    timesteps: int = 1_000_000,
    levels: int = 40,
    curve_points: int = 8,
) -> Path:
    """One run folder ``root/env/agent/seed<seed>-...`` with made-up returns.

    Args:
        root: Folder to create the run folder under.
        env: A Procgen game (published easy constants give the return scale).
        agent: Agent name written into ``config.yaml``.
        seed: Run seed (also seeds the fake returns).
        skill: Fraction of the game's min-max range reached on test levels (below 0: under the
            published minimum, as a barely trained agent scores).
        timesteps: Steps trained (``summary.json``).
        levels: Final-evaluation episodes per split, one per level.
        curve_points: Periodic evaluations in ``progress.csv``.
    """
    rng = np.random.default_rng([seed, sum(map(ord, env)), sum(map(ord, agent))])
    lo, hi = SCORE_RANGES["easy"][env]
    test_skill = float(np.clip(skill + rng.normal(0, 0.06), -1.0, 0.98))
    train_skill = float(np.clip(test_skill + 0.15 + rng.normal(0, 0.03), -1.0, 1.0))
    path = root / env / agent / f"seed{seed}-20260101-000000"
    (path / "eval").mkdir(parents=True, exist_ok=True)
    config = {
        "env": env,
        "agent": agent,
        "seed": seed,
        "timesteps": timesteps,
        "distribution_mode": "easy",
        "num_levels": 200,
        "start_level": 0,
        "test_start": TEST_START,
    }
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    means = {}
    for split, s, first in (("train", train_skill, 0), ("test", test_skill, TEST_START)):
        returns = np.clip(rng.normal(lo + s * (hi - lo), 0.25 * (hi - lo), levels), min(0.0, lo), hi)
        means[split] = float(returns.mean())
        with open(path / "eval" / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["episode", "level", "return", "length", "completed"])
            for i, r in enumerate(returns):
                w.writerow([i, first + i, f"{r:.4f}", int(rng.integers(50, 1000)), int(r > lo)])
    summary = {
        "env": env,
        "agent": agent,
        "seed": seed,
        "timesteps": timesteps,
        "splits": {k: {"mean_return": v, "episodes": levels} for k, v in means.items()},
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    with open(path / "progress.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["rollout/ep_rew_mean", "time/total_timesteps", "eval/train/mean_return", "eval/test/mean_return"]
        )
        steps = np.linspace(0, timesteps, curve_points + 1)[1:].astype(int)
        for k, step in enumerate(steps):
            frac = 1 - np.exp(-3 * (k + 1) / curve_points)
            w.writerow([means["train"] * frac, step - step // 2, "", ""])  # a rollout row, no evaluation
            w.writerow(
                [
                    means["train"] * frac,
                    step,
                    f"{means['train'] * frac + rng.normal(0, 0.03 * (hi - lo)):.4f}",
                    f"{means['test'] * frac + rng.normal(0, 0.03 * (hi - lo)):.4f}",
                ]
            )
        w.writerow(["", "", f"{means['train']:.4f}", f"{means['test']:.4f}"])  # the final evaluation
    return path


def make_runs(
    root: str | Path,
    agents: Sequence[str] = tuple(SKILL),
    games: Sequence[str] = PROCGEN_GAMES,
    seeds: int | Sequence[int] = 3,
    ragged: bool = False,
    skills: dict[str, float] | None = None,
    **kwargs: object,
) -> Path:
    """Run folders for ``agents x games x seeds`` under ``root``; returns ``root``.

    Args:
        root: Folder to create them in.
        agents: Agent names (skills from :data:`SKILL`, else 0.4).
        games: Procgen games.
        seeds: Seeds per game (an int: ``range(seeds)``).
        ragged: Give each (agent, game) 1 or 2 seeds instead (alternating), the few-seeds case.
        skills: Per agent, the skill given to :func:`make_run` (default :data:`SKILL`, else 0.4).
        **kwargs: Passed to :func:`make_run`.
    """
    root = Path(root)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    for a, agent in enumerate(agents):
        for g, game in enumerate(games):
            chosen = seed_list[: 1 + (a + g) % 2] if ragged else seed_list
            for seed in chosen:
                make_run(root, game, agent, seed, (skills or SKILL).get(agent, 0.4), **kwargs)  # type: ignore[arg-type]
    return root


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="folder to write the run folders into")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--ragged", action="store_true", help="1 or 2 seeds per agent and game")
    p.add_argument("--games", nargs="*", default=list(PROCGEN_GAMES))
    p.add_argument("--agents", nargs="*", default=list(SKILL))
    p.add_argument("--skill", type=float, help="one skill for every agent (e.g. -0.5: barely trained)")
    args = p.parse_args(argv)
    skills = None if args.skill is None else dict.fromkeys(args.agents, args.skill)
    make_runs(args.root, args.agents, args.games, args.seeds, ragged=args.ragged, skills=skills)
    print(args.root)


if __name__ == "__main__":
    main()


def make_context_run(
    root: Path,
    contexts: dict,
    seed: int = 0,
    env: str = "cartpole",
    agent: str = "ppo",
    episodes: int = 40,
    offset: float = 0.0,
    timesteps: int = 4096,
    **config_changes: object,
) -> Path:
    """A contextual run folder whose return is a known function of the context.

    Each episode's return is ``offset + sum of its context values of the features the split names``
    (for a single feature: the feature value itself), so bin means can be computed by hand. Train and
    test contexts are drawn uniformly from the spec's ranges (``"lo:hi"`` or ``"a:b|c:d"`` strings)
    with a generator fixed by the split name, the same for every seed, as the protocol's fixed
    evaluation lists are.
    """
    from heldout.contexts import ContextDistribution

    config = {"env": env, "agent": agent, "seed": seed, "timesteps": timesteps, "contexts": contexts}
    config.update(config_changes)
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    path = root / env / agent / f"seed{seed}-{digest}"
    (path / "eval").mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    means = {}
    for i, split in enumerate(("train", "test")):
        dist = ContextDistribution.parse(contexts[split])
        rng = np.random.default_rng(100 + i)
        rows = [dist.sample(rng) for _ in range(episodes)]
        features = list(dist.features)
        returns = [offset + sum(c[f] for f in features) for c in rows]
        means[split] = float(np.mean(returns))
        with open(path / "eval" / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["episode", "level", "return", "length", "completed"] + [f"ctx_{k}" for k in features])
            for k, (c, r) in enumerate(zip(rows, returns)):
                w.writerow([k, 1000 + k, repr(r), 10, 0] + [repr(c[f]) for f in features])
    summary = {
        "env": env,
        "agent": agent,
        "seed": seed,
        "kind": "contexts",
        "context_mode": contexts.get("mode", "extrapolation"),
        "timesteps": timesteps,
        "splits": {k: {"mean": v, "episodes": episodes} for k, v in means.items()},
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    (path / "command.txt").write_text(f"heldout train --seed {seed}\n")
    return path
