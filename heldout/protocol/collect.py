"""``heldout collect``: a dataset of a trained agent's episodes on its run's training levels.

The agent (the weights of one checkpoint, or of several: the "mixed" recipe of gen_dgrl, the steps
shared out evenly between them) plays the run's training env, batched over ``num_envs`` slots as the
run trained (one forward pass for all slots per step), with raw rewards (no normalisation) and the
uniform level distribution of the training levels. Only completed episodes are kept, as gen_dgrl
does: each slot's episode is written when it ends. Once the written episodes and those under way
hold ``steps`` transitions, a slot whose episode ends starts no other and the episodes under way
play to their end, as evaluation's last episodes do: the dataset holds at least ``steps``
transitions and every step played is in it (none discarded).

Actions are sampled from the policy (gen_dgrl's choice), or greedy (``deterministic``), or
epsilon-greedy (``epsilon``: a uniform action with that probability, else the greedy one). All
randomness comes from ``seed`` (default: the run's seed).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from heldout.protocol.background_writer import BackgroundWriter, spare_core
from heldout.protocol.dataset import DatasetWriter, check_out, serialize_space


def _dataset_env_id(family: Any, env: str) -> str:
    spec = getattr(family, "spec", None)
    return str(getattr(spec, "env_id", None) or f"procgen/{env}")


def plan_collect(
    run_dir: str | os.PathLike[str],
    steps: int,
    out: str | os.PathLike[str],
    checkpoints: Sequence[str] = (),
    epsilon: float | None = None,
    num_levels: int | None = None,
) -> tuple[Any, Path, list[str | None], Any, Any]:
    """Checks everything ``heldout collect`` needs before it writes or computes anything.

    ``num_levels``: record on the first ``num_levels`` of the run's training levels (in the order its
    split lists them: the smallest seeds) rather than on all of them.

    Returns:
        ``(config, run folder, checkpoint specs (None: the final one), family, split)``: the split's
        training levels are the ones the dataset is recorded on.

    Raises:
        ValueError: one line naming the bad value.
    """
    from heldout.protocol.checkpoint import trained_checkpoint
    from heldout.protocol.families import family_for
    from heldout.protocol.run_folder import load_run

    if steps < 1:
        raise ValueError(f"--steps {steps} must be a whole number >= 1")
    if epsilon is not None and not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"--epsilon {epsilon} is out of range; valid: a probability in [0, 1]")
    check_out(out)
    config, path = load_run(run_dir)
    family = family_for(config.env)
    if family.kind != "levels" and num_levels is not None:
        raise ValueError(
            f"--num-levels {num_levels} applies to level runs (Procgen, MiniGrid); run {str(run_dir)!r} "
            f"trains on contexts ({config.env}): valid: no --num-levels"
        )
    from heldout.agents import AGENTS

    if config.agent not in AGENTS:
        raise ValueError(
            f"run {str(run_dir)!r} is an offline run ({config.agent}); collect from an online run "
            f"(valid agents: {', '.join(AGENTS.names())})"
        )
    split = family.split(config)
    if num_levels is not None:
        try:
            split = replace(split, train=split.train.head(num_levels))
        except ValueError:
            raise ValueError(
                f"--num-levels {num_levels} is out of range; valid: 1 to {len(split.train)} (the run's "
                f"training levels {split.train.describe()})"
            ) from None
    if family.kind == "contexts":
        from heldout.protocol.offline import probe_spaces

        act_space = probe_spaces(config, family)[1]
        if not hasattr(act_space, "n") or config.visible_context == "dict":
            what = (
                f"{type(act_space).__name__} actions" if not hasattr(act_space, "n") else "Dict observations"
            )
            raise ValueError(
                f"run {str(run_dir)!r} ({config.env}, visible_context {config.visible_context}) has {what}; "
                "datasets hold Box observations and Discrete actions: valid: a discrete-action env, "
                "visible_context hidden or concat"
            )
    specs: list[str | None] = list(checkpoints) or [None]
    for spec in specs:
        trained_checkpoint(path, spec)  # intact, or one line naming it
    if len(specs) > steps:
        raise ValueError(
            f"--steps {steps} cannot be shared between {len(specs)} checkpoints; valid: >= {len(specs)}"
        )
    return config, path, specs, family, split


def collect(
    run_dir: str | os.PathLike[str],
    steps: int,
    out: str | os.PathLike[str],
    checkpoints: Sequence[str] = (),
    epsilon: float | None = None,
    deterministic: bool = False,
    num_envs: int | None = None,
    seed: int | None = None,
    device: str = "auto",
    progress: bool = True,
    recipe: str | None = None,
    num_levels: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Writes a dataset of ``steps`` (at least) transitions at ``out``; returns it and its ``heldout``
    metadata. See the module docstring.

    Raises:
        ValueError: bad input, before anything is written (:func:`plan_collect`).
    """
    import torch

    from heldout.protocol.checkpoint import load_trained_model
    from heldout.protocol.evaluate import run_threads, torch_threads

    config, path, specs, family, split = plan_collect(run_dir, steps, out, checkpoints, epsilon, num_levels)
    seed = config.seed if seed is None else int(seed)
    n_envs = int(num_envs or config.eval_num_envs)
    shares = [steps // len(specs) + (1 if i < steps % len(specs) else 0) for i in range(len(specs))]
    rng = np.random.default_rng([seed, 0xC011EC7])
    torch.manual_seed(seed)
    writer: DatasetWriter | BackgroundWriter | None = None
    used: list[int] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="collect", unit="step", file=sys.stderr)
    try:
        # torch's threads as training and ``heldout eval`` set them (the run's, else the family's),
        # so the play computes evaluation's actions at its speed
        with torch_threads(run_threads(config, family)):
            for spec, share in zip(specs, shares):
                model = load_trained_model(config, path, checkpoint=spec, device=device)
                step = int(_checkpoint_step(path, spec))
                used.append(step)
                venv = _collect_env(family, config, split, n_envs, seed + len(used) - 1)
                if writer is None:  # in a process of its own where a core is spare (background_writer)
                    make = BackgroundWriter if spare_core(getattr(model, "device", "cpu")) else DatasetWriter
                    writer = make(out, venv.observation_space, venv.action_space)
                try:
                    _play(model, venv, writer, share, step, rng, epsilon, deterministic, bar)
                finally:
                    venv.close()
        assert writer is not None
        heldout = {
            "env": config.env,
            "env_id": _dataset_env_id(family, config.env),
            "kind": family.kind,
            "distribution_mode": config.distribution_mode,
            "env_options": dict(config.env_options),
            "recipe": recipe or ("mixed" if len(specs) > 1 else "expert"),
            "run": {"dir": str(path.resolve()), "agent": config.agent, "seed": config.seed},
            "checkpoints": used,
            **_train_set(family, config, split),
            "policy": {
                "actions": "epsilon-greedy"
                if epsilon is not None
                else ("greedy" if deterministic else "sampled"),
                "epsilon": epsilon,
            },
            "seed": seed,
            "num_envs": n_envs,
            "requested_steps": int(steps),
            "observation_space": serialize_space(writer.observation_space),
        }
        dataset_id = f"heldout/{config.env}-{heldout['recipe']}-v0"
        result = writer.close(heldout, dataset_id)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    from heldout.protocol.dataset import open_dataset

    return result, open_dataset(result).heldout


def _train_set(family: Any, config: Any, split: Any) -> dict[str, Any]:
    """What a dataset records of the training set it was played on: the levels (and the run's own,
    of which they may be the first K), or the contexts' distribution and features."""
    if family.kind == "contexts":
        return {
            "train_contexts": split.train.to_spec(),
            "contexts_described": split.train.describe(),
            "context_features": list(family.space.names),
            "visible_context": config.visible_context,
        }
    return {
        "train_levels": split.train.to_dict(),
        "levels_described": split.train.describe(),
        "run_train_levels": family.split(config).train.to_dict(),
        "num_levels": len(split.train),
    }


def _checkpoint_step(run_dir: Path, spec: str | None) -> int:
    from heldout.protocol.checkpoint import final_checkpoint, find_checkpoint

    found = find_checkpoint(run_dir, spec) if spec is not None else final_checkpoint(run_dir)
    return int(found.name[5:]) if found is not None else -1


def _collect_env(family: Any, config: Any, split: Any, n_envs: int, seed: int) -> Any:
    """The run's training env with ``n_envs`` slots, raw rewards, uniform levels and observations as
    evaluation gives them (channel-last frames: the one form offline agents see)."""
    from stable_baselines3.common.vec_env import VecTransposeImage

    from heldout.wrappers import parse_specs

    kept = [w for w, s in zip(config.wrappers, parse_specs(config.wrappers)) if s.kind != "recording"]
    small = config.replace(
        num_envs=n_envs, reward_norm=False, wrappers=kept, level_sampler="uniform", seed=seed
    )
    venv = family.make_train_env(small, split)
    return venv.venv if isinstance(venv, VecTransposeImage) else venv


def _play(
    model: Any,
    venv: Any,
    writer: DatasetWriter | BackgroundWriter,
    steps: int,
    checkpoint: int,
    rng: np.random.Generator,
    epsilon: float | None,
    deterministic: bool,
    bar: Any,
) -> None:
    """Plays ``venv`` with ``model`` until its completed episodes hold ``steps`` transitions.

    The forward passes run in the precision evaluation acts in (the model's own: bf16 trunks for a
    bf16 agent, :func:`heldout.protocol.evaluate.acting_context`), so a dataset records the actions
    ``heldout eval`` would take, at its speed.
    """
    from heldout.protocol.evaluate import acting_context, inference_precision

    precision = inference_precision(model)
    n = venv.num_envs
    n_actions = int(venv.action_space.n)
    greedy = deterministic or epsilon is not None
    obs = venv.reset()
    infos0 = getattr(venv, "reset_infos", None) or [{}] * n
    buf: list[_Episode | None] = [_Episode(obs[i], infos0[i]) for i in range(n)]
    actions = np.zeros(n, dtype=np.int64)
    done_steps, covered = 0, False
    while any(ep is not None for ep in buf):
        # once the finished episodes and those under way hold ``steps`` transitions, a slot whose
        # episode ends starts no other (it idles, stepped with its last action, as evaluation's tail
        # does): every step played is recorded, none discarded
        active = np.flatnonzero([ep is not None for ep in buf])
        with acting_context(model, precision):  # a fresh context each step: hooks on, then off
            chosen, _ = model.predict(obs if len(active) == n else obs[active], deterministic=greedy)
        chosen = np.asarray(chosen).reshape(len(active))
        if epsilon:
            coin = rng.random(len(active)) < epsilon
            chosen = np.where(coin, rng.integers(0, n_actions, len(active)), chosen)
        actions[active] = chosen
        obs, rewards, dones, infos = venv.step(actions)
        reset_infos = getattr(venv, "reset_infos", None) or [{}] * n
        covered = covered or done_steps + sum(len(ep.actions) + 1 for ep in buf if ep is not None) >= steps
        for i in active:
            ep = buf[i]
            assert ep is not None
            info = infos[i]
            ep.actions.append(int(actions[i]))
            ep.rewards.append(float(rewards[i]))
            ep.add_info(info)
            if not dones[i]:
                ep.observations.append(np.array(obs[i]))
                continue
            ep.observations.append(np.array(info.get("terminal_observation", obs[i])))
            t = ep.write(writer, info, checkpoint)
            done_steps += t
            if bar is not None:
                bar.update(t)
            buf[i] = None if covered else _Episode(obs[i], reset_infos[i])


class _Episode:
    """One slot's episode so far: T+1 observations, levels and (contextual envs) contexts, T actions
    and rewards.

    Args:
        first_obs: The reset's observation.
        info: The reset's info (``level_seed``, or a contextual env's ``context``), or a level (-1: none).
    """

    def __init__(self, first_obs: np.ndarray, info: dict[str, Any] | int) -> None:
        self.observations: list[np.ndarray] = [np.array(first_obs)]
        self.levels: list[int] = []
        self.contexts: list[dict[str, float]] = []
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.add_info({"level_seed": info} if isinstance(info, int) else info)

    def add_info(self, info: dict[str, Any]) -> None:
        """Records the level and context of one more observation (the reset's or a step's)."""
        self.levels.append(int(info.get("level_seed", -1)))
        if "context" in info:
            self.contexts.append(dict(info["context"]))

    def write(
        self, writer: DatasetWriter | BackgroundWriter, last_info: dict[str, Any], checkpoint: int
    ) -> int:
        """Hands the ended episode to ``writer`` (its last step a truncation where ``last_info``
        says ``TimeLimit.truncated``, else a termination); returns its length."""
        t = len(self.actions)
        truncated = bool(last_info.get("TimeLimit.truncated", False))
        writer.add_episode(
            np.stack(self.observations),
            np.asarray(self.actions),
            np.asarray(self.rewards),
            np.asarray([False] * (t - 1) + [not truncated]),
            np.asarray([False] * (t - 1) + [truncated]),
            np.asarray(self.levels),
            checkpoint,
            contexts=self.context_arrays(),
        )
        return t

    def context_arrays(self) -> dict[str, np.ndarray] | None:
        """Each context feature's value at every observation (T+1), or None for a level env."""
        if not self.contexts:
            return None
        if len(self.contexts) != len(self.observations):
            raise RuntimeError(f"{len(self.contexts)} contexts for {len(self.observations)} observations")
        return {
            name: np.array([c[name] for c in self.contexts], dtype=np.float64) for name in self.contexts[0]
        }


#: The folder of a run that records its rollouts (``heldout train --record-rollouts``).
ROLLOUTS = "rollouts"


def rollout_recorder(config: Any, family: Any, split: Any, venv: Any, run_dir: Path, start_step: int) -> Any:
    """An SB3 callback that writes the agent's own training rollouts as a dataset, ``run_dir/rollouts``
    (gen_dgrl's "suboptimal" recipe: the whole training log): every completed training episode, with
    raw rewards (before reward normalisation) and channel-last frames, as :func:`collect` writes them.

    Each slot's first episode after the start is recorded only if it began there: a resumed run
    (``start_step`` > 0) records the episodes that began after its checkpoint. Call ``finish()`` when
    training ends (the folder appears) or ``abort()``.
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecTransposeImage
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper

    from heldout.protocol.dataset import DatasetWriter

    def layer(cls: type) -> Any:
        env = venv
        while isinstance(env, VecEnvWrapper):
            if isinstance(env, cls):
                return env
            env = env.venv
        return None

    for stale in run_dir.glob(f".{ROLLOUTS}.tmp-*"):  # an interrupted process's partial recording
        shutil.rmtree(stale, ignore_errors=True)
    transposed = layer(VecTransposeImage) is not None
    from stable_baselines3.common.vec_env import VecNormalize

    normalizer = layer(VecNormalize)
    space = layer(VecTransposeImage).venv.observation_space if transposed else venv.observation_space

    class Recorder(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.writer = DatasetWriter(run_dir / ROLLOUTS, space, venv.action_space)
            self.slots: list[_Episode | None] = [None] * venv.num_envs
            self.fresh = start_step == 0  # the envs were just reset: every slot starts an episode

        def _frame(self, obs: np.ndarray) -> np.ndarray:
            return np.moveaxis(obs, 0, -1) if transposed else np.array(obs)

        def _on_step(self) -> bool:
            last = self.model._last_obs
            if self.fresh:
                self.slots = [_Episode(self._frame(last[i]), -1) for i in range(venv.num_envs)]
                self.fresh = False
            rewards = normalizer.get_original_reward() if normalizer is not None else self.locals["rewards"]
            actions = np.asarray(self.locals["actions"]).reshape(venv.num_envs)
            new_obs, dones, infos = self.locals["new_obs"], self.locals["dones"], self.locals["infos"]
            for i in range(venv.num_envs):
                ep = self.slots[i]
                if ep is not None:
                    ep.actions.append(int(actions[i]))
                    ep.rewards.append(float(rewards[i]))
                    ep.levels.append(int(infos[i].get("level_seed", -1)))
                    if ep.levels[0] == -1:
                        ep.levels[0] = ep.levels[1]
                if dones[i]:
                    if ep is not None:
                        final = infos[i].get("terminal_observation", new_obs[i])
                        ep.observations.append(self._frame(final))
                        ep.write(self.writer, infos[i], int(self.num_timesteps))
                    self.slots[i] = _Episode(self._frame(new_obs[i]), -1)
                elif ep is not None:
                    ep.observations.append(self._frame(new_obs[i]))
            return True

        def finish(self) -> Path:
            """Writes the metadata and puts the dataset in place; returns its folder."""
            info = {
                "env": config.env,
                "env_id": _dataset_env_id(family, config.env),
                "kind": family.kind,
                "distribution_mode": config.distribution_mode,
                "env_options": dict(config.env_options),
                "recipe": "rollouts",
                "run": {"dir": str(run_dir.resolve()), "agent": config.agent, "seed": config.seed},
                "checkpoints": [],
                "from_step": int(start_step),
                "train_levels": split.train.to_dict(),
                "levels_described": split.train.describe(),
                "policy": {"actions": "the training policy as it learnt (sampled)", "epsilon": None},
                "seed": config.seed,
                "num_envs": venv.num_envs,
            }
            return self.writer.close(info, f"heldout/{config.env}-rollouts-v0")

        def abort(self) -> None:
            self.writer.abort()

    return Recorder()


__all__ = ["ROLLOUTS", "collect", "plan_collect", "rollout_recorder"]
