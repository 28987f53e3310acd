"""Zero-shot evaluation of a trained agent on a fixed list of levels.

Evaluation plays exactly one episode per entry of a fixed level list, handed out in order to the
parallel env slots (so slow levels are not under-represented), samples actions stochastically by
default as the Procgen references do, and records one row per episode: level, return, length,
whether the level was completed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heldout.envs import SequentialLevelSampler, make_vec
from heldout.splits import LevelSet

#: The seed of the generator that picks a split's fixed evaluation list: the same for every run
#: and agent, so that evaluations are comparable level by level.
EVAL_LIST_SEED = 20_200_101


def evaluation_levels(levels: LevelSet, episodes: int, exclude: Sequence[int] = ()) -> list[int]:
    """The fixed list of levels an evaluation of ``episodes`` episodes plays, in order.

    Draws ``episodes`` distinct levels from ``levels`` (minus ``exclude``) with a fixed generator;
    if the set is smaller than ``episodes`` every level is played, in repeated shuffled rounds.
    """
    excluded = set(int(x) for x in exclude)
    rng = np.random.default_rng(EVAL_LIST_SEED)
    if levels.is_range and len(levels) > 4 * (episodes + len(excluded)):
        chosen: list[int] = []
        seen: set[int] = set()
        while len(chosen) < episodes:
            for s in levels.sample(rng, episodes):
                s = int(s)
                if s not in seen and s not in excluded:
                    seen.add(s)
                    chosen.append(s)
                    if len(chosen) == episodes:
                        break
        return chosen
    pool = [s for s in levels if s not in excluded]
    if not pool:
        raise ValueError(
            f"no levels left to evaluate on in {levels.describe()} after excluding {len(excluded)}"
        )
    out: list[int] = []
    while len(out) < episodes:
        round_ = list(rng.permutation(pool))
        out.extend(int(x) for x in round_[: episodes - len(out)])
    return out


@dataclass
class EvalResult:
    """Per-episode results of one evaluation.

    Attributes:
        split: Name of the evaluated split (``"train"``, ``"test"``, ...).
        levels: Level of each episode.
        returns: Undiscounted return of each episode.
        lengths: Length of each episode.
        completed: Whether each episode completed its level (procgen's ``level_complete``).
        settings: What was evaluated (env, distribution mode, deterministic, ...).
    """

    split: str
    levels: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    completed: list[bool] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else float("nan")

    def summary(self) -> dict[str, Any]:
        """Mean, std, standard error, median, episodes, distinct levels, completion rate."""
        n = self.episodes
        return {
            "episodes": n,
            "levels": len(set(self.levels)),
            "mean": self.mean,
            "std": self.std,
            "stderr": self.std / np.sqrt(n) if n else float("nan"),
            "median": float(np.median(self.returns)) if n else float("nan"),
            "completion_rate": float(np.mean(self.completed)) if n else float("nan"),
            "mean_length": float(np.mean(self.lengths)) if n else float("nan"),
        }

    def to_csv(self) -> str:
        """One row per episode: ``episode,level,return,length,completed``."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["episode", "level", "return", "length", "completed"])
        for i, (lv, r, n, c) in enumerate(zip(self.levels, self.returns, self.lengths, self.completed)):
            writer.writerow([i, lv, f"{r:g}", n, int(c)])
        return buf.getvalue()

    @classmethod
    def from_csv(cls, text: str, split: str) -> EvalResult:
        rows = list(csv.DictReader(io.StringIO(text)))
        return cls(
            split=split,
            levels=[int(r["level"]) for r in rows],
            returns=[float(r["return"]) for r in rows],
            lengths=[int(r["length"]) for r in rows],
            completed=[bool(int(r["completed"])) for r in rows],
        )


def evaluate(
    model: Any,
    env: str,
    levels: Sequence[int],
    split: str = "test",
    num_envs: int = 64,
    deterministic: bool = False,
    distribution_mode: str = "easy",
    env_options: dict[str, bool] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> EvalResult:
    """Plays one episode on each level of ``levels`` with ``model`` and records every episode.

    Args:
        model: Anything with SB3's ``predict(obs, deterministic=...)``.
        env: Environment name (see ``heldout.envs.ENVS``).
        levels: The fixed level list, one episode each (see :func:`evaluation_levels`).
        split: Name recorded in the result.
        num_envs: Parallel env slots (capped at ``len(levels)``).
        deterministic: Greedy actions instead of sampling (the references sample).
        distribution_mode: Procgen distribution mode, which may differ from training.
        env_options: Procgen visual switches, which may differ from training.
        seed: Seed of the env's generator.
        progress: Show a progress bar.

    Returns:
        An :class:`EvalResult` with episodes in the order of ``levels``.
    """
    levels = [int(x) for x in levels]
    if not levels:
        raise ValueError("evaluate needs at least one level")
    n = len(levels)
    sampler = SequentialLevelSampler(levels)
    venv = make_vec(
        env,
        num_envs=min(num_envs, n),
        levels=LevelSet.of(levels),
        level_sampler=sampler,
        distribution_mode=distribution_mode,
        seed=seed,
        **(env_options or {}),
    )
    obs = venv.reset()
    rows: list[tuple[int, float, int, bool] | None] = [None] * n
    done_count = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"eval {split}", unit="ep", leave=False)
    state = None
    episode_start = np.ones(venv.num_envs, dtype=bool)
    # which hand-out index each slot is playing (None: an uncounted extra episode)
    playing = dict(sampler.assignment)
    try:
        while done_count < n:
            actions, state = model.predict(
                obs, state=state, episode_start=episode_start, deterministic=deterministic
            )
            obs, _, dones, infos = venv.step(actions)
            episode_start = dones
            for slot in np.flatnonzero(dones):
                index = playing.get(int(slot))
                if index is not None and rows[index] is None:
                    ep = infos[slot]["episode"]
                    level = int(infos[slot]["level_seed"])
                    if level != levels[index]:
                        raise RuntimeError(f"slot {slot} played level {level}, expected {levels[index]}")
                    rows[index] = (level, float(ep["r"]), int(ep["l"]), bool(infos[slot]["level_complete"]))
                    done_count += 1
                    if bar is not None:
                        bar.update(1)
                playing[int(slot)] = sampler.assignment.get(int(slot))
    finally:
        if bar is not None:
            bar.close()
        venv.close()
    result = EvalResult(
        split=split,
        settings={
            "env": env,
            "distribution_mode": distribution_mode,
            "env_options": dict(env_options or {}),
            "deterministic": deterministic,
            "seed": seed,
        },
    )
    for level, ret, length, complete in rows:  # type: ignore[misc]
        result.levels.append(level)
        result.returns.append(ret)
        result.lengths.append(length)
        result.completed.append(complete)
    return result
