"""The evaluation protocol: train on the train split, evaluate zero-shot on every split, record.

``run_train(config)`` is what ``heldout train`` runs:

1. validate the config (names, numbers, a disjoint split) before anything is created;
2. fix one evaluation level list per split (the same for every run and agent) and, with
   ``leakage_check``, drop test/validation levels whose first frame equals a training level's
   (Procgen generates identical levels from different seeds; BASELINES.md "Leakage");
3. train on the training levels with rewards normalised as the references do
   (``VecNormalize(norm_obs=False)``), evaluating periodically on train and test subsets;
4. evaluate at the end on every split (``eval_episodes`` each, stochastic policy by default);
5. write the run folder (``heldout.experiments.run_folder``) and ``summary.json``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from heldout.experiments.config import TrainConfig
from heldout.experiments.evaluate import EvalResult, evaluate, evaluation_levels
from heldout.experiments.report import split_table
from heldout.experiments.run_folder import (
    check_writable,
    git_revision,
    new_run_dir,
    read_yaml,
    write_atomic,
    write_json,
    write_yaml,
)
from heldout.experiments.stats import generalization_gap, normalized_score
from heldout.splits import LevelSet, LevelSplit

#: The largest training set whose first frames the leakage check fingerprints.
LEAKAGE_CHECK_MAX_TRAIN_LEVELS = 20_000


def check_leakage(
    env: str, train: LevelSet, candidates: list[int], distribution_mode: str, env_options: dict[str, bool]
) -> dict[str, Any]:
    """Finds candidate held-out levels whose first frame equals a training level's first frame.

    Returns a record with the number of levels checked and the duplicates found
    (``{"level": held_out_seed, "same_as": train_seed}``).
    """
    from heldout.envs.procgen import PROCGEN_GAMES, level_fingerprints

    record: dict[str, Any] = {"method": "first-frame fingerprint", "checked": False}
    if env not in PROCGEN_GAMES:
        record["reason"] = f"no fingerprint for env {env!r}"
        return record
    if len(train) > LEAKAGE_CHECK_MAX_TRAIN_LEVELS:
        record["reason"] = f"training set larger than {LEAKAGE_CHECK_MAX_TRAIN_LEVELS} levels"
        return record
    train_levels = train.to_list()
    train_fp = dict(
        zip(level_fingerprints(env, train_levels, distribution_mode, **env_options), train_levels)
    )
    cand_fp = level_fingerprints(env, candidates, distribution_mode, **env_options)
    dups = [{"level": lv, "same_as": train_fp[fp]} for lv, fp in zip(candidates, cand_fp) if fp in train_fp]
    record.update(
        checked=True, train_levels=len(train_levels), held_out_levels=len(candidates), duplicates=dups
    )
    return record


def _split_levels(
    config: TrainConfig, split: LevelSplit, episodes: int
) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """The fixed evaluation list of each split and the leakage record."""
    lists: dict[str, list[int]] = {}
    leakage: dict[str, Any] = {}
    for name, levels in split.splits().items():
        chosen = evaluation_levels(levels, episodes)
        if name != "train" and config.leakage_check:
            rec = check_leakage(config.env, split.train, chosen, config.distribution_mode, config.env_options)
            leakage[name] = rec
            if rec.get("duplicates"):
                chosen = evaluation_levels(levels, episodes, exclude=[d["level"] for d in rec["duplicates"]])
                rec["dropped"] = len(rec["duplicates"])
        lists[name] = chosen
    return lists, leakage


def summarize(config: TrainConfig, results: dict[str, EvalResult], split: LevelSplit) -> dict[str, Any]:
    """The ``summary.json`` content: per split mean/std/episodes/normalised score; the gap."""
    splits: dict[str, Any] = {}
    for name, res in results.items():
        s = res.summary()
        s["level_set"] = split.get(name).describe() if name in split.splits() else "custom"
        s["normalized"] = normalized_score(
            config.env, res.settings.get("distribution_mode", config.distribution_mode), s["mean"]
        )
        splits[name] = s
    out: dict[str, Any] = {"env": config.env, "agent": config.agent, "seed": config.seed, "splits": splits}
    if "train" in splits and "test" in splits:
        out["gap"] = generalization_gap(splits["train"]["mean"], splits["test"]["mean"])
        a, b = splits["train"]["normalized"], splits["test"]["normalized"]
        out["normalized_gap"] = None if a is None or b is None else a - b
    return out


def _make_train_env(config: TrainConfig, split: LevelSplit) -> Any:
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
    from stable_baselines3.common.vec_env import VecNormalize, VecTransposeImage

    import heldout.agents  # noqa: F401  (registers ProcgenVecEnv as an SB3 VecEnv)
    from heldout.envs import make_vec

    venv = make_vec(
        config.env,
        num_envs=config.num_envs,
        levels=split.train,
        seed=config.seed,
        distribution_mode=config.distribution_mode,
        **config.env_options,
    )
    # Transpose channel-last images here, under VecNormalize, rather than let SB3 wrap the whole stack:
    # off-policy agents store VecNormalize's original observations in their replay buffer, which
    # must then be channel-first already (the observations the agents see are the same either way).
    if is_image_space(venv.observation_space) and not is_image_space_channels_first(venv.observation_space):
        venv = VecTransposeImage(venv)
    if config.reward_norm:
        venv = VecNormalize(
            venv, norm_obs=False, norm_reward=True, clip_reward=10.0, gamma=config.reward_norm_gamma
        )
    return venv


def _periodic_eval_callback(
    config: TrainConfig, lists: dict[str, list[int]], run_dir: Path, progress: bool
) -> Any:
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
                    res = evaluate(
                        self.model,
                        config.env,
                        lists[name][: config.eval_periodic_episodes],
                        split=name,
                        num_envs=config.eval_num_envs,
                        deterministic=config.deterministic_eval,
                        distribution_mode=config.distribution_mode,
                        env_options=config.env_options,
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
    from stable_baselines3.common.logger import configure

    from heldout.agents import AGENTS

    split = config.split()
    lists, leakage = _split_levels(config, split, config.eval_episodes)
    agent_cls = AGENTS.get(config.agent)

    run_dir = new_run_dir(config.out, config.env, config.agent, config.seed)
    write_yaml(run_dir / "config.yaml", config.to_dict())
    write_atomic(run_dir / "command.txt", (command or "heldout train (in-process)") + "\n")
    write_atomic(run_dir / "git.txt", git_revision() + "\n")
    write_json(run_dir / "split.json", {"split": split.to_dict(), "eval_levels": lists, "leakage": leakage})

    venv = _make_train_env(config, split)
    model = agent_cls(env=venv, seed=config.seed, device=config.device, verbose=0, **config.agent_kwargs)
    model.set_logger(configure(str(run_dir), ["csv", "tensorboard"]))
    callbacks = [_periodic_eval_callback(config, lists, run_dir, progress)]
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
    for name, levels in lists.items():
        res = evaluate(
            model,
            config.env,
            levels,
            split=name,
            num_envs=config.eval_num_envs,
            deterministic=config.deterministic_eval,
            distribution_mode=config.distribution_mode,
            env_options=config.env_options,
            seed=config.seed + 2,
            progress=progress,
        )
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
    write_json(run_dir / "summary.json", summary)
    print(split_table(summary), file=stream)
    return run_dir, summary


def load_run(run_dir: str | os.PathLike[str]) -> tuple[TrainConfig, Path]:
    """Reads a run folder's config; raises ValueError naming what is missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"run folder {str(run_dir)!r} does not exist")
    for name in ("config.yaml", "model.zip"):
        if not (path / name).is_file():
            raise ValueError(
                f"{str(path / name)!r} is missing: is {str(run_dir)!r} a finished heldout run folder?"
            )
    return TrainConfig.from_dict(read_yaml(path / "config.yaml")), path


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
) -> tuple[Path, dict[str, Any]]:
    """Re-evaluates a saved run on a split, possibly under settings it never saw.

    Writes ``eval/<split>[-<tag>].csv`` and ``eval/<split>[-<tag>].json`` into the run folder and
    prints the table; returns the csv path and the summary.
    """
    stream = stream or sys.stdout
    config, path = load_run(run_dir)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes <= 0:
        raise ValueError(f"--episodes must be a positive integer, got {episodes!r}")
    from heldout.envs import DISTRIBUTION_MODES, VISUAL_OPTIONS

    mode = distribution_mode or config.distribution_mode
    if mode not in DISTRIBUTION_MODES:
        raise ValueError(f"unknown distribution mode {mode!r}; valid modes: {', '.join(DISTRIBUTION_MODES)}")
    options = {**config.env_options, **(env_options or {})}
    unknown = sorted(set(options) - set(VISUAL_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown env option(s) {', '.join(unknown)}; valid options: {', '.join(VISUAL_OPTIONS)}"
        )
    run_split = config.split()
    if levels is not None:
        level_set = LevelSet.parse(levels)
        overlap = level_set.overlap_count(run_split.train)
        if overlap and split != "train":
            print(f"note: {overlap} of the given levels are training levels of this run", file=sys.stderr)
    else:
        level_set = run_split.get(split)
    level_list = evaluation_levels(level_set, episodes)

    from heldout.agents import AGENTS

    model = AGENTS.get(config.agent).load(path / "model.zip", device=device)
    res = evaluate(
        model,
        config.env,
        level_list,
        split=split,
        num_envs=num_envs or config.eval_num_envs,
        deterministic=config.deterministic_eval if deterministic is None else deterministic,
        distribution_mode=mode,
        env_options=options,
        seed=seed,
        progress=progress,
    )
    tags = []
    if mode != config.distribution_mode:
        tags.append(mode)
    tags += [f"{k}={int(v)}" for k, v in sorted(options.items()) if config.env_options.get(k) != v]
    if levels is not None:
        tags.append("levels=" + level_set.describe().replace(" ", ""))
    stem = split + ("-" + "-".join(tags) if tags else "")
    summary = summarize(config.replace(distribution_mode=mode), {split: res}, run_split)
    if levels is not None:
        summary["splits"][split]["level_set"] = level_set.describe()
    summary["settings"] = res.settings
    csv_path = write_atomic(path / "eval" / f"{stem}.csv", res.to_csv())
    write_json(path / "eval" / f"{stem}.json", summary)
    print(split_table(summary), file=stream)
    return csv_path, summary
