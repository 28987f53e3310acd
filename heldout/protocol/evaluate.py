"""Zero-shot evaluation of a trained agent on a fixed list of levels.

Evaluation plays exactly one episode per entry of a fixed level list, handed out in order to the
parallel env slots (so slow levels are not under-represented), samples actions stochastically by
default as the Procgen references do, and records one row per episode: level, return, length,
whether the level was completed.

Contextual envs are evaluated the same way over a fixed list of ``(context, reset seed)`` pairs
(:func:`evaluate_contexts`); their records carry one extra column per context feature. Gymnasium
level envs (seeded envs such as MiniGrid) play their fixed level list through
:func:`evaluate_levels`; both run on :func:`play_episodes`.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heldout.envs import SequentialLevelSampler, make_vec
from heldout.splits import LevelSet

#: The seed of the generator that picks a split's fixed evaluation list: the same for every run
#: and agent, so that evaluations are comparable level by level.
EVAL_LIST_SEED = 20_200_101

#: Prefix of the context columns in evaluation CSVs (``ctx_gravity``), apart from ``length`` & co.
CONTEXT_COLUMN = "ctx_"


def inference_precision(model: Any, precision: str | None = None) -> str:
    """The precision evaluation acts in: ``precision`` if given, else the model's own (heldout's PPO
    agents carry ``precision``, ``"fp32"`` or ``"bf16"``), else ``"fp32"``."""
    chosen = precision or getattr(model, "precision", None) or "fp32"
    if chosen not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {chosen!r}; valid: fp32, bf16")
    return chosen


def run_threads(config: Any, family: Any) -> int:
    """The torch threads a run trains, evaluates and collects with: its ``torch_threads``, else its
    env family's default (0: torch's own)."""
    return int(config.torch_threads or family.default_torch_threads)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Limits torch's CPU threads to ``threads`` inside the block (0: unchanged), then restores them."""
    import torch

    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def acting_context(model: Any, precision: str) -> Any:
    """The forward passes' context for acting: bf16 on the model's device, or nothing.

    For a model whose torch policy has features extractors (every SB3 and heldout agent) only those
    run in bf16, as in training (:func:`heldout.agents.precision.trunk_autocast`: heads and action
    distribution fp32); any other model's forward passes run under ``torch.autocast`` whole. The
    weights stay fp32.
    """
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    from heldout.agents.precision import trunk_autocast, trunks

    device_type = getattr(getattr(model, "device", None), "type", "cpu")
    policy = getattr(model, "policy", None)
    if isinstance(policy, torch.nn.Module) and trunks(policy):
        return trunk_autocast(policy, device_type)
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


def _take(obs: Any, rows: np.ndarray) -> Any:
    """The observations of the slots ``rows`` (a batch array or a dict of them)."""
    if isinstance(obs, dict):
        return {k: v[rows] for k, v in obs.items()}
    return obs[rows]


#: ``progress`` of the evaluations: False (nothing), True (a tqdm bar of their own), or a callable
#: ``report(episodes_done, episodes_total)`` called as episodes finish (a run's one bar:
#: :meth:`heldout.protocol.progress.RunProgress.episodes`).
Progress = bool | Callable[[int, int], None]


class _EpisodeCount:
    """Counts an evaluation's finished episodes into its ``progress`` (see :data:`Progress`)."""

    def __init__(self, progress: Progress, total: int, desc: str) -> None:
        self.done, self.total = 0, total
        self.report = progress if callable(progress) else None
        self.bar = None
        if self.report is not None:
            self.report(0, total)
        elif progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="ep", leave=False)

    def update(self) -> None:
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)
        elif self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def level_order(levels: LevelSet, episodes: int) -> Iterator[int]:
    """Every level of ``levels`` once, in the fixed order evaluation lists are drawn in.

    The first ``episodes`` levels are :func:`evaluation_levels` ``(levels, episodes)``; the ones after
    them are the replacements a held-out list draws when it drops a level
    (:func:`heldout.protocol.families.levels.leak_free_levels`). A range much larger than
    ``episodes`` is sampled with a generator seeded with :data:`EVAL_LIST_SEED` (repeats skipped);
    a smaller set is shuffled once with it.
    """
    rng = np.random.default_rng(EVAL_LIST_SEED)
    if levels.is_range and len(levels) > 4 * episodes:
        seen: set[int] = set()
        while len(seen) < len(levels):
            for s in levels.sample(rng, max(1, episodes)):
                s = int(s)
                if s not in seen:
                    seen.add(s)
                    yield s
        return
    yield from (int(x) for x in rng.permutation(levels.to_list()))


def evaluation_levels(levels: LevelSet, episodes: int, exclude: Sequence[int] = ()) -> list[int]:
    """The fixed list of levels an evaluation of ``episodes`` episodes plays, in order.

    Draws ``episodes`` distinct levels from ``levels`` (minus ``exclude``) with a fixed generator;
    if the set is smaller than ``episodes`` every level is played, in repeated shuffled rounds. Only
    the training split's list repeats levels this way (recorded in ``split.json``); held-out lists
    never do (:func:`heldout.protocol.families.levels.leak_free_levels` evaluates fewer episodes).
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
        completed: Whether each episode completed its level (procgen's ``level_complete``; for a
            contextual env, reaching its goal or surviving to its time limit); None for an env with no
            notion of success (written as an empty cell, its completion rate None, shown as "-").
        settings: What was evaluated (env, distribution mode, deterministic, ...).
        contexts: The context of each episode (contextual envs only; empty for Procgen).
        features: The context features written as CSV columns, in order.
    """

    split: str
    levels: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    completed: list[bool | None] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    contexts: list[dict[str, float]] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else float("nan")

    @property
    def completion_rate(self) -> float | None:
        """The share of completed episodes; None if the env has no notion of success (or no episode)."""
        if not self.completed or any(c is None for c in self.completed):
            return None
        return float(np.mean(self.completed))

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
            "completion_rate": self.completion_rate,
            "mean_length": float(np.mean(self.lengths)) if n else float("nan"),
        }

    def to_csv(self) -> str:
        """One row per episode: ``episode,level,return,length,completed``, then for contextual envs
        one column ``ctx_<feature>`` per context feature (``level`` is then the episode's reset seed)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        features = list(self.features) or (list(self.contexts[0]) if self.contexts else [])
        writer.writerow(
            ["episode", "level", "return", "length", "completed", *(CONTEXT_COLUMN + f for f in features)]
        )
        for i, (lv, r, n, c) in enumerate(zip(self.levels, self.returns, self.lengths, self.completed)):
            ctx = [repr(float(self.contexts[i][f])) for f in features] if features else []
            writer.writerow([i, lv, f"{r:g}", n, "" if c is None else int(c), *ctx])
        return buf.getvalue()

    @classmethod
    def from_csv(cls, text: str, split: str) -> EvalResult:
        """The result :meth:`to_csv` wrote, every cell checked (the file is untrusted input): levels
        and lengths whole numbers in int64's range, returns and contexts finite numbers.

        Raises:
            ValueError: naming the line and column of the first bad cell (or the missing column).
        """
        try:
            reader = csv.DictReader(io.StringIO(text))
            rows = list(reader)
        except csv.Error as exc:
            raise ValueError(f"not a CSV file ({exc})") from None
        names = reader.fieldnames or []
        missing = [c for c in ("level", "return", "length", "completed") if c not in names]
        if missing:
            raise ValueError(f"no {missing[0]!r} column (its columns: {', '.join(names) or 'none'})")
        columns = [c for c in names if c.startswith(CONTEXT_COLUMN)]
        features = [c[len(CONTEXT_COLUMN) :] for c in columns]
        cells = [
            (line, {c: csv_cell(r, c, line) for c in ("level", "return", "length", *columns)})
            for line, r in enumerate(rows, 2)
        ]
        completed = []
        for line, r in enumerate(rows, 2):
            if r["completed"] not in ("", "0", "1"):
                raise ValueError(
                    f"line {line}: completed must be 0, 1 or empty, got {str(r['completed'])[:40]!r}"
                )
            completed.append(None if r["completed"] == "" else r["completed"] == "1")
        return cls(
            contexts=[{f: c[CONTEXT_COLUMN + f] for f in features} for _, c in cells] if features else [],
            features=features,
            split=split,
            levels=[int(c["level"]) for _, c in cells],
            returns=[c["return"] for _, c in cells],
            lengths=[int(c["length"]) for _, c in cells],
            completed=completed,
        )


def csv_cell(row: dict[str, Any], column: str, line: int) -> float | int:
    """Cell ``column`` of a row of an evaluation CSV (untrusted input): ``level`` and ``length`` whole
    numbers in int64's range (a level >= 0), any other a finite number.

    Raises:
        ValueError: naming the line, the column and the cell.
    """
    text = row.get(column)
    whole = column in ("level", "length")
    try:
        if not isinstance(text, str):
            raise ValueError
        value: float | int = int(text) if whole else float(text)
    except ValueError:
        value = math.nan
    if whole and not (isinstance(value, int) and 0 <= value < 2**63):
        raise ValueError(f"line {line}: {column} must be a whole number >= 0, got {str(text)[:40]!r}")
    if not whole and not math.isfinite(value):
        raise ValueError(f"line {line}: {column} must be a finite number, got {str(text)[:40]!r}")
    return value


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
    progress: Progress = False,
    wrappers: Sequence[Any] = (),
    output_dir: Any = None,
    precision: str | None = None,
) -> EvalResult:
    """Plays one episode on each level of ``levels`` with ``model`` and records every episode.

    Every slot plays the list's next level as soon as its episode ends, until the list is handed out.
    The policy then acts only for the slots still playing a listed level (one batched forward pass
    over those, others idle), so the last, longest episodes do not pay for a full batch; a recurrent
    model (one that returns a state) always acts on the full batch.

    Args:
        model: Anything with SB3's ``predict(obs, deterministic=...)``; its ``observe(rewards, dones)``,
            where it has one, is called after every vectorized step (an offline DT lowers its
            return-to-go there).
        env: Environment name (see ``heldout.envs.ENVS``).
        levels: The fixed level list, one episode each (see :func:`evaluation_levels`).
        split: Name recorded in the result.
        num_envs: Parallel env slots (capped at ``len(levels)``).
        deterministic: Greedy actions instead of sampling (the references sample).
        distribution_mode: Procgen distribution mode, which may differ from training.
        env_options: Procgen visual switches, which may differ from training.
        seed: Seed of the env's generator.
        progress: A progress bar of its own (True) or a report of finished episodes (see :data:`Progress`).
        wrappers: Wrapper specs (``heldout.wrappers``) applied to the vectorized env, in order.
            Returns are the env's own (``info["episode"]``), whatever reward wrappers do.
        output_dir: Where recording wrappers write.
        precision: ``"fp32"`` or ``"bf16"`` (autocast) for acting; None: the model's own
            (:func:`inference_precision`).

    Returns:
        An :class:`EvalResult` with episodes in the order of ``levels``.
    """
    levels = [int(x) for x in levels]
    if not levels:
        raise ValueError("evaluate needs at least one level")
    precision = inference_precision(model, precision)
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
    if wrappers:
        from heldout.wrappers import apply_wrappers

        venv = apply_wrappers(venv, wrappers, seed=seed, stage="eval", output_dir=output_dir)
    obs = venv.reset()
    rows: list[tuple[int, float, int, bool] | None] = [None] * n
    done_count = 0
    bar = _EpisodeCount(progress, n, f"eval {split}")
    state = None
    episode_start = np.ones(venv.num_envs, dtype=bool)
    # which hand-out index each slot is playing (None: an uncounted extra episode)
    playing = dict(sampler.assignment)
    actions: Any = None
    observe = getattr(model, "observe", None)  # offline DT lowers its return-to-go by each reward
    try:
        while done_count < n:
            counted = np.array(
                [playing.get(s) is not None and rows[playing[s]] is None for s in range(venv.num_envs)]
            )
            with acting_context(model, precision):
                if actions is None or state is not None or counted.all():
                    actions, state = model.predict(
                        obs, state=state, episode_start=episode_start, deterministic=deterministic
                    )
                else:  # the tail: only the slots still playing a listed level act
                    active = np.flatnonzero(counted)
                    actions = np.array(actions, copy=True)
                    actions[active], _ = model.predict(_take(obs, active), deterministic=deterministic)
            obs, rewards, dones, infos = venv.step(actions)
            if observe is not None:
                observe(rewards, dones)
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
                    bar.update()
                playing[int(slot)] = sampler.assignment.get(int(slot))
    finally:
        bar.close()
        venv.close()
    result = EvalResult(
        split=split,
        settings={
            "env": env,
            "distribution_mode": distribution_mode,
            "env_options": dict(env_options or {}),
            "deterministic": deterministic,
            "precision": precision,
            "seed": seed,
            "wrappers": [str(w) for w in wrappers],
        },
    )
    for level, ret, length, complete in rows:  # type: ignore[misc]
        result.levels.append(level)
        result.returns.append(ret)
        result.lengths.append(length)
        result.completed.append(complete)
    return result


def play_episodes(
    model: Any,
    make_env: Callable[[], Any],
    resets: Sequence[dict[str, Any]],
    num_envs: int = 8,
    deterministic: bool = False,
    progress: Progress = False,
    desc: str = "eval",
    judge: Callable[[Any, bool, bool], bool | None] | None = None,
) -> list[tuple[bool | None, float, int, bool, bool, dict[str, Any]]]:
    """Plays one episode per entry of ``resets`` (keyword arguments of ``env.reset``), in order.

    Up to ``num_envs`` gymnasium envs from ``make_env`` play side by side, acting on batched
    ``model.predict``; each slot takes the next entry when its episode ends. A model whose ``predict``
    takes SB3's ``state`` and ``episode_start`` gets them, and once it returns a state it acts on every
    slot (idle ones too), so its per-slot state stays aligned; ``model.observe(rewards, dones)``, where
    the model has one, is called after every step of the slots it acted for (DT lowers its return-to-go).

    Args:
        judge: ``(env, terminated, truncated) -> completed``, asked at each episode's last step,
            before its slot resets for the next entry (an env's state then is that episode's end).

    Returns:
        Per entry, in order: ``(completed or None without a judge, return, length, terminated,
        truncated, last step's info)``.
    """
    n = len(resets)
    envs = [make_env() for _ in range(min(num_envs, n))]
    rows: list[tuple[bool | None, float, int, bool, bool, dict[str, Any]] | None] = [None] * n
    obs: list[Any] = [None] * len(envs)
    playing: list[int | None] = [None] * len(envs)
    totals = [0.0] * len(envs)
    lengths = [0] * len(envs)
    next_item = 0
    bar = _EpisodeCount(progress, n, desc)
    # a model that keeps a state (a recurrent one, DT's context window) acts on every slot, idle ones
    # included, in slot order; a model with SB3's full predict signature gets state and episode_start
    params = inspect.signature(model.predict).parameters.values()
    takes_state = any(p.name == "episode_start" or p.kind is p.VAR_KEYWORD for p in params)
    state = None
    episode_start = np.ones(len(envs), dtype=bool)
    observe = getattr(model, "observe", None)

    def start(slot: int) -> None:
        nonlocal next_item
        if next_item >= n:
            playing[slot] = None
            return
        obs[slot], _ = envs[slot].reset(**resets[next_item])
        playing[slot], totals[slot], lengths[slot] = next_item, 0.0, 0
        next_item += 1

    try:
        for slot in range(len(envs)):
            start(slot)
        while any(p is not None for p in playing):
            active = [s for s in range(len(envs)) if playing[s] is not None]
            acting = list(range(len(envs))) if state is not None else active
            first = obs[acting[0]]
            if isinstance(first, dict):
                batch: Any = {k: np.stack([obs[s][k] for s in acting]) for k in first}
            else:
                batch = np.stack([obs[s] for s in acting])
            if takes_state:
                actions, state = model.predict(
                    batch, state=state, episode_start=episode_start[acting], deterministic=deterministic
                )
            else:  # a bare predict(obs, deterministic=...)
                actions, _ = model.predict(batch, deterministic=deterministic)
            episode_start[:] = False
            rewards, dones = np.zeros(len(acting)), np.zeros(len(acting), dtype=bool)
            for i, (a, slot) in enumerate(zip(actions, acting)):
                if playing[slot] is None:
                    continue
                obs[slot], reward, terminated, truncated, info = envs[slot].step(a)
                rewards[i], dones[i] = float(reward), bool(terminated or truncated)
                totals[slot] += float(reward)
                lengths[slot] += 1
                if terminated or truncated:
                    index = playing[slot]
                    verdict = None if judge is None else judge(envs[slot], terminated, truncated)
                    verdict = None if verdict is None else bool(verdict)
                    rows[index] = (  # type: ignore[index]
                        verdict,
                        totals[slot],
                        lengths[slot],
                        bool(terminated),
                        bool(truncated),
                        dict(info),
                    )
                    bar.update()
                    start(slot)
                    episode_start[slot] = True
            if observe is not None:
                observe(rewards, dones)
    finally:
        bar.close()
        for env in envs:
            env.close()
    return rows  # type: ignore[return-value]


def evaluate_contexts(
    model: Any,
    make_env: Callable[[], Any],
    items: Sequence[dict[str, Any]],
    split: str = "test",
    num_envs: int = 8,
    deterministic: bool = False,
    success_on: str | None = "terminated",
    features: Sequence[str] = (),
    progress: Progress = False,
    settings: dict[str, Any] | None = None,
) -> EvalResult:
    """Plays one episode per ``{"context": ..., "seed": ...}`` item with ``model``, in order.

    Up to ``num_envs`` gymnasium envs from ``make_env`` play side by side; each slot takes the next
    item when its episode ends and resets with ``seed=item["seed"], options={"context": item["context"]}``.

    Args:
        model: Anything with SB3's ``predict(obs, deterministic=...)``.
        make_env: Builds one (time-limited) contextual gymnasium env.
        items: The fixed evaluation list (``heldout.protocol.families.evaluation_contexts``).
        split: Name recorded in the result.
        num_envs: Envs played side by side (capped at ``len(items)``).
        deterministic: Greedy actions instead of sampling.
        success_on: ``"terminated"`` or ``"truncated"``: how an episode counts as completed (None:
            the env has no notion of success; an env's own ``completed_episode`` decides first).
        features: Context features recorded as columns (default: all of the env's).
        progress: A progress bar of its own (True) or a report of finished episodes (see :data:`Progress`).
        settings: Recorded in the result.

    Returns:
        An :class:`EvalResult` with episodes in the order of ``items`` and their contexts.
    """
    items = list(items)
    if not items:
        raise ValueError("evaluate_contexts needs at least one (context, seed) item")
    resets = [{"seed": int(item["seed"]), "options": {"context": item["context"]}} for item in items]

    def judge(env: Any, terminated: bool, truncated: bool) -> bool | None:
        own = getattr(env.unwrapped, "completed_episode", None)
        if own is not None:
            return own(terminated, truncated)
        if success_on is None:
            return None
        return terminated if success_on == "terminated" else (truncated and not terminated)

    rows = play_episodes(
        model, make_env, resets, num_envs, deterministic, progress=progress, desc=f"eval {split}", judge=judge
    )
    result = EvalResult(
        split=split,
        settings={**(settings or {}), "deterministic": deterministic},
        features=list(features) or list(items[0]["context"]),
    )
    for item, (done, ret, length, _, _, info) in zip(items, rows):
        result.levels.append(int(item["seed"]))
        result.returns.append(ret)
        result.lengths.append(length)
        result.completed.append(done)
        result.contexts.append(dict(info["context"]))
    return result


def evaluate_levels(
    model: Any,
    make_env: Callable[[], Any],
    levels: Sequence[int],
    split: str = "test",
    num_envs: int = 8,
    deterministic: bool = False,
    progress: Progress = False,
    settings: dict[str, Any] | None = None,
) -> EvalResult:
    """Plays one episode on each level of ``levels`` in gymnasium level envs, in order.

    The level envs (``heldout.envs.seeded.SeededLevelEnv``) play level ``k`` on
    ``reset(options={"level": k})`` and report ``info["level_seed"]`` and, at an episode's end,
    ``info["level_complete"]``.

    Args:
        model: Anything with SB3's ``predict(obs, deterministic=...)``.
        make_env: Builds one level env.
        levels: The fixed level list, one episode each (see :func:`evaluation_levels`).
        split: Name recorded in the result.
        num_envs: Envs played side by side (capped at ``len(levels)``).
        deterministic: Greedy actions instead of sampling.
        progress: A progress bar of its own (True) or a report of finished episodes (see :data:`Progress`).
        settings: Recorded in the result.

    Returns:
        An :class:`EvalResult` with episodes in the order of ``levels``.

    Raises:
        RuntimeError: if an env played another level than the one it was handed.
    """
    levels = [int(x) for x in levels]
    if not levels:
        raise ValueError("evaluate_levels needs at least one level")
    resets = [{"options": {"level": level}} for level in levels]
    rows = play_episodes(
        model, make_env, resets, num_envs, deterministic, progress=progress, desc=f"eval {split}"
    )
    result = EvalResult(split=split, settings={**(settings or {}), "deterministic": deterministic})
    for level, (_, ret, length, _, _, info) in zip(levels, rows):
        if int(info["level_seed"]) != level:
            raise RuntimeError(f"an env played level {info['level_seed']}, expected {level}")
        result.levels.append(level)
        result.returns.append(ret)
        result.lengths.append(length)
        result.completed.append(bool(info.get("level_complete", False)))
    return result
