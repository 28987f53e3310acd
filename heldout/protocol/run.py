"""The evaluation protocol: train on the train split, evaluate zero-shot on every split, record.

The protocol is the same for Procgen levels and for contextual envs: it asks the env's family
(``heldout.protocol.families``) for the split, the fixed evaluation lists, the training env and
the evaluation, and writes the same run folder.

``run_train(config)`` is what ``heldout train`` runs:

1. validate the config (names, numbers, a disjoint split) before anything is created;
2. fix one evaluation list per split (levels, or (context, seed) pairs) (the same for every run and agent) and, with
   ``leakage_check``, drop test/validation levels whose first frame equals a training level's
   (Procgen generates identical levels from different seeds; BASELINES.md "Leakage");
3. train on the training levels with rewards normalised as the references do
   (``VecNormalize(norm_obs=False)``), evaluating periodically on train and test subsets;
4. evaluate at the end on every split (``eval_episodes`` each, stochastic policy by default);
5. write the run folder (``heldout.protocol.run_folder``) and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from heldout.protocol.config import TrainConfig
from heldout.protocol.evaluate import EvalResult
from heldout.protocol.families import EnvFamily, family_for
from heldout.protocol.progress import RunProgress
from heldout.protocol.run_folder import (
    check_writable,
    git_revision,
    new_run_dir,
    write_atomic,
    write_json,
    write_yaml,
)
from heldout.protocol.scores import generalization_gap, normalized_score
from heldout.protocol.tables import context_table, split_table
from heldout.protocol.validate import validate_config
from heldout.splits import ContextSplit, LevelSplit


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


def _periodic_eval_callback(
    config: TrainConfig, lists: dict[str, list], family: EnvFamily, progress: RunProgress | None = None
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
                    res = family.evaluate(
                        self.model,
                        config,
                        lists[name][: config.eval_periodic_episodes],
                        name,
                        seed=config.seed + 1,
                        progress=progress.episodes(f"eval {name}") if progress else False,
                    )
                    means[name] = res.mean
                    self.logger.record(f"eval/{name}/mean_return", res.mean)
                    self.logger.record(f"eval/{name}/completion_rate", float(np.mean(res.completed)))
                self.logger.record("eval/gap", means["train"] - means["test"])
                if progress is not None:
                    progress.set_phase("rollout", refresh=True)
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
    validate_config(config)
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
    # one bar for the whole run, naming its phase (rollout / update / eval ...); none without progress
    bar = RunProgress(config.timesteps) if progress else None
    with bar or contextlib.nullcontext():
        callbacks = [_periodic_eval_callback(config, lists, family, bar)]
        if bar is not None:
            callbacks.insert(0, bar.callback())
        if config.checkpoint_freq:
            callbacks.append(_checkpoint_callback(config, run_dir))
        if config.saliency_log_freq:
            from heldout.protocol.saliency import saliency_log_callback

            callbacks.append(saliency_log_callback(config.saliency_log_freq))

        t0 = time.perf_counter()
        model.learn(total_timesteps=config.timesteps, callback=callbacks)
        train_seconds = time.perf_counter() - t0
        if bar is not None:
            bar.set_phase("saving", refresh=True)
        save_model(model, run_dir / "model.zip")
        if hasattr(venv, "save"):
            tmp = run_dir / ".vecnormalize.tmp.pkl"
            venv.save(str(tmp))
            os.replace(tmp, run_dir / "vecnormalize.pkl")

        t1 = time.perf_counter()
        results: dict[str, EvalResult] = {}
        for name, items in lists.items():
            report = bar.episodes(f"final eval {name}") if bar is not None else False
            res = family.evaluate(model, config, items, name, seed=config.seed + 2, progress=report)
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


__all__ = ["run_train", "save_model", "summarize", "torch_threads"]
