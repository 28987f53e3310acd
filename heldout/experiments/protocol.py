"""The evaluation protocol: train on the train split, evaluate zero-shot on every split, record.

The protocol is the same for Procgen levels and for contextual envs: it asks the env's family
(``heldout.experiments.families``) for the split, the fixed evaluation lists, the training env and
the evaluation, and writes the same run folder.

``run_train(config)`` is what ``heldout train`` runs:

1. validate the config (names, numbers, a disjoint split) before anything is created;
2. fix one evaluation list per split (levels, or (context, seed) pairs) (the same for every run and agent) and, with
   ``leakage_check``, drop test/validation levels whose first frame equals a training level's
   (Procgen generates identical levels from different seeds; BASELINES.md "Leakage");
3. train on the training levels with rewards normalised as the references do
   (``VecNormalize(norm_obs=False)``), evaluating periodically on train and test subsets;
4. evaluate at the end on every split (``eval_episodes`` each, stochastic policy by default);
5. write the run folder (``heldout.experiments.run_folder``) and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heldout.experiments.config import TrainConfig
from heldout.experiments.evaluate import EvalResult, evaluation_levels
from heldout.experiments.families import (  # check_leakage lives with the Procgen family now
    LEAKAGE_CHECK_MAX_TRAIN_LEVELS,
    ContextualFamily,
    EnvFamily,
    check_leakage,
    family_for,
)
from heldout.experiments.report import context_table, split_table
from heldout.experiments.run_folder import (
    check_writable,
    git_revision,
    new_run_dir,
    read_yaml,
    write_atomic,
    write_json,
    write_yaml,
)
from heldout.experiments.seeded_family import SeededGymFamily
from heldout.experiments.stats import generalization_gap, normalized_score
from heldout.splits import ContextSplit, LevelSet, LevelSplit


def summarize(
    config: TrainConfig, results: dict[str, EvalResult], split: LevelSplit | ContextSplit
) -> dict[str, Any]:
    """The ``summary.json`` content: per split mean/std/episodes/normalised score (and, for contextual
    envs, returns by context bin); the gap."""
    family = family_for(config.env)
    splits: dict[str, Any] = {}
    for name, res in results.items():
        s = res.summary()
        s["level_set"] = family.describe_set(split, name)
        s["normalized"] = normalized_score(
            config.env, res.settings.get("distribution_mode", config.distribution_mode), s["mean"]
        )
        s.update(family.summarize_split(config, split, name, res))
        splits[name] = s
    out: dict[str, Any] = {
        "env": config.env,
        "agent": config.agent,
        "seed": config.seed,
        "kind": family.kind,
        "splits": splits,
    }
    if isinstance(split, ContextSplit):
        out["context_mode"] = split.mode
    if "train" in splits and "test" in splits:
        out["gap"] = generalization_gap(splits["train"]["mean"], splits["test"]["mean"])
        a, b = splits["train"]["normalized"], splits["test"]["normalized"]
        out["normalized_gap"] = None if a is None or b is None else a - b
    return out


def _periodic_eval_callback(config: TrainConfig, lists: dict[str, list], family: EnvFamily) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class PeriodicEval(BaseCallback):
        """Evaluates on train and test subsets every ``eval_freq`` timesteps; logs eval/<split>/..."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = config.eval_freq

        def _on_step(self) -> bool:
            if config.eval_freq and self.num_timesteps >= self.next_eval:
                self.next_eval += config.eval_freq
                means = {}
                for name in ("train", "test"):
                    res = family.evaluate(
                        self.model,
                        config,
                        lists[name][: config.eval_periodic_episodes],
                        name,
                        seed=config.seed + 1,
                    )
                    means[name] = res.mean
                    self.logger.record(f"eval/{name}/mean_return", res.mean)
                    self.logger.record(f"eval/{name}/completion_rate", float(np.mean(res.completed)))
                self.logger.record("eval/gap", means["train"] - means["test"])
            return True

    return PeriodicEval()


def _checkpoint_callback(config: TrainConfig, run_dir: Path) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpoint(BaseCallback):
        """Saves ``checkpoints/model_<steps>.zip`` every ``checkpoint_freq`` timesteps (atomically)."""

        def __init__(self) -> None:
            super().__init__()
            self.next_save = config.checkpoint_freq

        def _on_step(self) -> bool:
            if config.checkpoint_freq and self.num_timesteps >= self.next_save:
                self.next_save += config.checkpoint_freq
                save_model(self.model, run_dir / "checkpoints" / f"model_{self.num_timesteps}.zip")
            return True

    return Checkpoint()


def save_model(model: Any, path: Path) -> None:
    """Saves an SB3 model atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


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


def run_train(
    config: TrainConfig, command: str = "", progress: bool = True, stream: Any = None
) -> tuple[Path, dict[str, Any]]:
    """Runs the whole protocol for ``config``; returns the run folder and the summary.

    Raises:
        ValueError, KeyError, TypeError: on bad input, before any folder is created.
    """
    stream = stream or sys.stdout
    config = config.resolved()
    config.validate()
    check_writable(config.out)

    from heldout.agents import AGENTS

    family = family_for(config.env)
    split = family.split(config)
    lists, leakage = family.eval_lists(config, split, config.eval_episodes)
    agent_cls = AGENTS.get(config.agent)

    run_dir = new_run_dir(config.out, config.env, config.agent, config.seed)
    write_yaml(run_dir / "config.yaml", config.to_dict())
    write_atomic(run_dir / "command.txt", (command or "heldout train (in-process)") + "\n")
    write_atomic(run_dir / "git.txt", git_revision() + "\n")
    write_json(run_dir / "split.json", {"split": split.to_dict(), "eval_levels": lists, "leakage": leakage})

    with torch_threads(config.torch_threads or family.default_torch_threads):
        return _train_and_evaluate(
            config, family, split, lists, leakage, agent_cls, run_dir, progress, stream
        )


def _train_and_evaluate(
    config: TrainConfig,
    family: Any,
    split: Any,
    lists: dict[str, list],
    leakage: Any,
    agent_cls: type,
    run_dir: Path,
    progress: bool,
    stream: Any,
) -> tuple[Path, dict[str, Any]]:
    from stable_baselines3.common.logger import configure

    venv = family.make_train_env(config, split, output_dir=run_dir / "wrappers")
    model = agent_cls(
        env=venv, seed=config.seed, device=config.device, verbose=0, **family.agent_kwargs(config)
    )
    model.set_logger(configure(str(run_dir), ["csv", "tensorboard"]))
    callbacks = [_periodic_eval_callback(config, lists, family)]
    if config.checkpoint_freq:
        callbacks.append(_checkpoint_callback(config, run_dir))
    if config.saliency_log_freq:
        from heldout.experiments.saliency_run import saliency_log_callback

        callbacks.append(saliency_log_callback(config.saliency_log_freq))

    t0 = time.perf_counter()
    model.learn(total_timesteps=config.timesteps, callback=callbacks, progress_bar=progress)
    train_seconds = time.perf_counter() - t0
    save_model(model, run_dir / "model.zip")
    if hasattr(venv, "save"):
        tmp = run_dir / ".vecnormalize.tmp.pkl"
        venv.save(str(tmp))
        os.replace(tmp, run_dir / "vecnormalize.pkl")

    t1 = time.perf_counter()
    results: dict[str, EvalResult] = {}
    for name, items in lists.items():
        res = family.evaluate(model, config, items, name, seed=config.seed + 2, progress=progress)
        results[name] = res
        write_atomic(run_dir / "eval" / f"{name}.csv", res.to_csv())
        model.logger.record(f"eval/{name}/mean_return", res.mean)
    if "train" in results and "test" in results:
        model.logger.record("eval/gap", results["train"].mean - results["test"].mean)
    model.logger.dump(model.num_timesteps)
    model.logger.close()
    venv.close()

    summary = summarize(config, results, split)
    summary.update(
        timesteps=int(model.num_timesteps),
        train_seconds=round(train_seconds, 2),
        train_steps_per_second=round(model.num_timesteps / max(train_seconds, 1e-9), 1),
        eval_seconds=round(time.perf_counter() - t1, 2),
        device=str(model.device),
        leakage=leakage,
        run_dir=str(run_dir),
    )
    if config.wrappers:
        summary["wrappers"] = {"train": list(config.wrappers), "eval": []}
    write_json(run_dir / "summary.json", summary)
    print(split_table(summary), file=stream)
    bins = context_table(summary)
    if bins:
        print(bins, file=stream)
    return run_dir, summary


def load_run(run_dir: str | os.PathLike[str], imports: list[str] | None = None) -> tuple[TrainConfig, Path]:
    """Reads a run folder's config and imports the user modules its run imported.

    Args:
        run_dir: A run folder written by :func:`run_train`.
        imports: User modules to import instead of the config's recorded ``imports`` (e.g. the new
            place of a file that has moved); None: the recorded ones.

    Raises:
        ValueError: naming what is missing (the folder, its config or model, an imported file).
    """
    from heldout.experiments.plugins import import_plugins

    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"run folder {str(run_dir)!r} does not exist")
    for name in ("config.yaml", "model.zip"):
        if not (path / name).is_file():
            raise ValueError(
                f"{str(path / name)!r} is missing: is {str(run_dir)!r} a finished heldout run folder?"
            )
    config = TrainConfig.from_dict(read_yaml(path / "config.yaml"))
    try:
        import_plugins(config.imports if imports is None else imports)
    except ValueError as exc:
        if imports is not None:
            raise
        raise ValueError(
            f"{exc} (recorded in {str(path / 'config.yaml')!r}; pass --import to replace it)"
        ) from None
    return config, path


def run_eval(
    run_dir: str | os.PathLike[str],
    split: str = "test",
    episodes: int = 100,
    distribution_mode: str | None = None,
    levels: str | None = None,
    env_options: dict[str, bool] | None = None,
    deterministic: bool | None = None,
    num_envs: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    stream: Any = None,
    shift: str | None = None,
    contexts: dict[str, Any] | None = None,
    wrappers: Sequence[str] | None = None,
    imports: list[str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Re-evaluates a saved run on a split, possibly under settings it never saw.

    Procgen runs take another distribution mode, visual options, explicit levels, or a registered
    visual ``shift`` (``heldout.envs.procgen_shifts.SHIFTS``; recorded as split ``<split>-shift-<NAME>``).
    Seeded level envs (MiniGrid, ...) take explicit levels; their held-out split lists are leak-free
    as at training time (when the run's ``leakage_check`` is on).
    Contextual runs take ``contexts``: feature specs that replace the split's distribution for those
    features (e.g. ``{"gravity": "24.5:29.4"}``). Both take evaluation-only ``wrappers``
    (``heldout.wrappers``, e.g. ``["distracting-background:mode=waves"]``), applied to the env before
    the run's own observation wrappers (a shift of the env itself); they must keep the env's
    observation space. Recorded as split
    ``<split>[-shift-<NAME>]-wrapper-<SPEC>[+<SPEC>...]``; recording wrappers write into
    ``eval/wrappers-<stem>/``.

    Writes ``eval/<split>[-<tag>].csv`` and ``eval/<split>[-<tag>].json`` into the run folder and
    prints the table; with no tag (the split as trained), ``eval/<split>-reeval.*``, so the final
    evaluation that ``summary.json`` and reports rest on is never overwritten; returns the csv path and the summary. The user modules the run imported
    (``config.yaml``'s ``imports``) are imported first, or ``imports`` instead when given.
    """
    stream = stream or sys.stdout
    config, path = load_run(run_dir, imports)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes <= 0:
        raise ValueError(f"--episodes must be a positive integer, got {episodes!r}")
    family = family_for(config.env)
    run_split = family.split(config)
    from heldout.experiments.config import check_wrappers

    eval_only = check_wrappers(list(wrappers or []), what="--wrapper")
    family.check_eval_wrappers(config, eval_only)
    suffix = ("-wrapper-" + "+".join(w.slug for w in eval_only)) if eval_only else ""
    if isinstance(family, ContextualFamily):
        _refuse_procgen_flags(
            {
                "--distribution-mode": distribution_mode,
                "--levels": levels,
                "--env-option": env_options,
                "--shift": shift,
            },
            f"{config.env!r} is contextual: use --context FEATURE=SPEC",
        )
        items, stem, evaluated = _context_eval_items(family, run_split, split, episodes, contexts)
        eval_kwargs: dict[str, Any] = {}
        name = split
        summary_config = config
        set_desc = None
        if contexts or eval_only:  # bins and the table describe the contexts evaluated
            set_desc = evaluated.describe()
            name, stem = name + suffix, stem + suffix
            run_split = _EvaluatedContexts(name, evaluated)  # type: ignore[assignment]
    else:
        if contexts:
            raise ValueError(f"--context applies to contextual runs; {config.env!r} has levels, not contexts")
        seeded = isinstance(family, SeededGymFamily)
        if seeded:
            _refuse_procgen_flags(
                {"--distribution-mode": distribution_mode, "--env-option": env_options, "--shift": shift},
                f"{config.env!r} is a seeded level env: use --split or --levels",
            )
        items, stem, name, set_desc, eval_kwargs = _level_eval_items(
            config, run_split, split, episodes, distribution_mode, levels, env_options, shift
        )
        if seeded and levels is None:  # the split's list, leak-free as at training time
            items, record = family.held_out_list(config, run_split, split, episodes)  # type: ignore[attr-defined]
            if record and record.get("dropped"):
                print(
                    f"note: leakage check: {record['dropped']} {split} levels duplicate training levels "
                    "and were replaced",
                    file=stream,
                )
        summary_config = config.replace(distribution_mode=eval_kwargs["distribution_mode"])
        if eval_only:
            name, stem = name + suffix, stem + suffix
            set_desc = set_desc or run_split.get(split).describe()

    if stem == split:
        # a plain re-evaluation never overwrites the final evaluation (eval/<split>.csv), which
        # summary.json and `heldout report` are built on
        stem = f"{split}-reeval"

    from heldout.agents import AGENTS

    with torch_threads(config.torch_threads or family.default_torch_threads):
        model = AGENTS.get(config.agent).load(path / "model.zip", device=device)
        res = family.evaluate(
            model,
            config,
            items,
            name,
            num_envs=num_envs,
            deterministic=deterministic,
            seed=seed,
            progress=progress,
            wrappers=eval_only,
            output_dir=path / "eval" / f"wrappers-{stem}",
            **eval_kwargs,
        )
    summary = summarize(summary_config, {name: res}, run_split)
    if set_desc is not None:
        summary["splits"][name]["level_set"] = set_desc
    if shift:
        summary["shift"] = shift
    if eval_only or config.wrappers:
        summary["wrappers"] = {"train": list(config.wrappers), "eval": [str(w) for w in eval_only]}
    summary["settings"] = res.settings
    csv_path = write_atomic(path / "eval" / f"{stem}.csv", res.to_csv())
    write_json(path / "eval" / f"{stem}.json", summary)
    print(split_table(summary), file=stream)
    bins = context_table(summary)
    if bins:
        print(bins, file=stream)
    return csv_path, summary


def _refuse_procgen_flags(flags: dict[str, Any], why: str) -> None:
    """Raises ValueError naming the Procgen-only ``heldout eval`` flags given (truthy) for another env."""
    given = [name for name, value in flags.items() if value]
    if given:
        raise ValueError(f"{', '.join(given)} apply to Procgen runs; {why}")


def _level_eval_items(
    config: TrainConfig,
    run_split: LevelSplit,
    split: str,
    episodes: int,
    distribution_mode: str | None,
    levels: str | None,
    env_options: dict[str, bool] | None,
    shift: str | None,
) -> tuple[list[int], str, str, str | None, dict[str, Any]]:
    """Level envs: the level list, file stem, split name, set description and evaluate() settings."""
    from heldout.envs import DISTRIBUTION_MODES, VISUAL_OPTIONS
    from heldout.envs.procgen_shifts import SHIFTS

    mode = distribution_mode or config.distribution_mode
    if mode not in DISTRIBUTION_MODES:
        raise ValueError(f"unknown distribution mode {mode!r}; valid modes: {', '.join(DISTRIBUTION_MODES)}")
    shift_options = SHIFTS.get(shift).options if shift else {}
    if shift and all(config.env_options.get(k) == v for k, v in shift_options.items()):
        print(
            f"note: the run was trained with {shift_options}: shift {shift!r} changes nothing",
            file=sys.stderr,
        )
    options = {**config.env_options, **(env_options or {}), **shift_options}
    unknown = sorted(set(options) - set(VISUAL_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown env option(s) {', '.join(unknown)}; valid options: {', '.join(VISUAL_OPTIONS)}"
        )
    if levels is not None:
        level_set = LevelSet.parse(levels)
        overlap = level_set.overlap_count(run_split.train)
        if overlap and split != "train":
            print(f"note: {overlap} of the given levels are training levels of this run", file=sys.stderr)
    else:
        level_set = run_split.get(split)
    level_list = evaluation_levels(level_set, episodes)
    tags = []
    if mode != config.distribution_mode:
        tags.append(mode)
    if shift:
        tags.append(f"shift-{shift}")
    tags += [
        f"{k}={int(v)}"
        for k, v in sorted(options.items())
        if config.env_options.get(k) != v and k not in shift_options
    ]
    if levels is not None:
        tags.append("levels=" + level_set.describe().replace(" ", ""))
    stem = split + ("-" + "-".join(tags) if tags else "")
    name = f"{split}-shift-{shift}" if shift else split
    desc = level_set.describe() if (levels is not None or shift) else None
    return level_list, stem, name, desc, {"distribution_mode": mode, "env_options": options}


def _context_eval_items(
    family: ContextualFamily,
    run_split: ContextSplit,
    split: str,
    episodes: int,
    contexts: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], str, Any]:
    """Contextual: the (context, seed) list, file stem and the distribution drawn from."""
    from heldout.contexts import ContextDistribution
    from heldout.experiments.evaluate import EVAL_LIST_SEED
    from heldout.experiments.families import evaluation_contexts

    dist = run_split.get(split)
    names = list(run_split.splits())
    seed = EVAL_LIST_SEED + names.index(split)
    if not contexts:
        return evaluation_contexts(dist, family.space, episodes, seed=seed), split, dist
    override = family.space.check_distribution(
        ContextDistribution.parse(contexts, family.space.bounds()), what="--context"
    )
    merged = ContextDistribution(
        tuple({**comp, **override.components[0]} for comp in dist.components), dist.weights
    )
    tag = "-".join(f"{k}={str(v).replace(' ', '')}" for k, v in sorted(contexts.items()))
    return evaluation_contexts(merged, family.space, episodes, seed=seed), f"{split}-{tag}", merged


class _EvaluatedContexts:
    """The one distribution a custom ``--context`` evaluation drew from, looked up like a split."""

    def __init__(self, name: str, dist: Any) -> None:
        self.name, self.dist = name, dist

    def get(self, name: str) -> Any:
        if name != self.name:
            raise KeyError(name)
        return self.dist


__all__ = [
    "LEAKAGE_CHECK_MAX_TRAIN_LEVELS",
    "check_leakage",
    "load_run",
    "run_eval",
    "run_train",
    "save_model",
    "summarize",
]
