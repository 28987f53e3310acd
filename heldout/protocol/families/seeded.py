"""The env family of gymnasium envs whose level is their reset seed (MiniGrid, your own).

:class:`SeededGymFamily` answers the protocol's questions (:class:`~heldout.protocol.families.EnvFamily`)
for every env registered with :func:`heldout.envs.register_seeded_env`:

* the split is a :class:`~heldout.splits.LevelSplit` of seeds, as for Procgen (``--num-levels``,
  ``--start-level``, ``--num-test-levels``, ``--test-start``, ``--num-validation-levels``);
* each held-out evaluation list is checked for leakage: every listed level is fingerprinted (for
  MiniGrid: the full grid encoding, agent position and direction, mission; Chevalier-Boisvert et al.
  2023) and levels identical to a training level are replaced by other held-out levels, until the list
  has none (:func:`leak_free_levels`);
* the training env is SB3's ``DummyVecEnv`` of :class:`~heldout.envs.seeded.SeededLevelEnv`, each
  reset drawing a training level with the env's generator, seeded from the run seed, or, with
  ``level_sampler`` ``plr`` / ``robust-plr``, asking the run's sampler (:mod:`heldout.envs.plr`);
* evaluation plays one episode per listed level (:func:`~heldout.protocol.evaluate.evaluate_levels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from heldout.protocol.evaluate import EvalResult, Progress, evaluate_levels
from heldout.protocol.families.base import (
    eval_wrappers,
    resolve_schedules,
    slot_env_factory,
    train_level_sampler,
    train_vec_env,
)
from heldout.protocol.families.levels import LevelFamily, leak_free_levels
from heldout.splits import LevelSet, LevelSplit

if TYPE_CHECKING:
    from heldout.protocol.config import TrainConfig

#: The one distribution mode a seeded env has (the config's default, which it ignores).
DEFAULT_DISTRIBUTION_MODE = "easy"


class SeededGymFamily(LevelFamily):
    """A registered seeded env (:data:`heldout.envs.SEEDED_ENVS`): level splits, leak-free lists,
    ``DummyVecEnv`` of level envs, one episode per listed level."""

    fingerprint_method = "level fingerprint after reset(seed=level)"
    #: Small MLPs (see ContextualFamily): one torch thread unless the config says otherwise.
    default_torch_threads = 1

    def __init__(self, name: str) -> None:
        from heldout.envs import SEEDED_ENVS

        self.name = name
        self.spec = SEEDED_ENVS.get(name)

    def validate(self, config: TrainConfig) -> None:
        if config.distribution_mode != DEFAULT_DISTRIBUTION_MODE:
            raise ValueError(
                f"distribution_mode {config.distribution_mode!r} is a Procgen setting; env {config.env!r} has "
                f"one level distribution; valid: {DEFAULT_DISTRIBUTION_MODE!r} (the default, ignored)"
            )
        if config.env_options:
            raise ValueError(
                f"env_options {', '.join(sorted(config.env_options))} are Procgen visual switches; env "
                f"{config.env!r} takes none (valid: no --env-option)"
            )
        super().validate(config)
        reason = self.spec.missing()  # last: the same line for a bad option, extra installed or not
        if reason:
            raise ValueError(f"env {config.env!r}: {reason}")

    def fingerprints(self, config: TrainConfig, levels: list[int]) -> list[str]:
        from heldout.envs.seeded import level_fingerprints

        return level_fingerprints(self.name, levels)

    def agent_kwargs(self, config: TrainConfig) -> dict[str, Any]:
        """The env's agent defaults (e.g. ``policy="MlpPolicy"`` for MiniGrid), then the config's."""
        return {**self.spec.agent_kwargs, **resolve_schedules(config.agent_kwargs)}

    def make_env(self, levels: LevelSet | None = None) -> Any:
        """One level env drawing its levels from ``levels`` (any seed if None)."""
        from heldout.envs.seeded import SeededLevelEnv

        return SeededLevelEnv(self.name, levels=levels)

    def make_train_env(self, config: TrainConfig, split: LevelSplit, output_dir: Any = None) -> Any:
        train = split.train
        sampler = train_level_sampler(config, train.to_list())
        if sampler is None:
            return train_vec_env(config, lambda: self.make_env(train), output_dir)
        from heldout.envs.seeded import SeededLevelEnv

        made = [0]

        def make_slot() -> Any:  # SB3 builds the slots in order 0, 1, ...
            slot, made[0] = made[0], made[0] + 1
            return SeededLevelEnv(self.name, levels=train, level_sampler=sampler, slot=slot)

        return train_vec_env(config, make_slot, output_dir)

    def probe_env(self, config: TrainConfig) -> Any:
        return self.make_env()

    def evaluate(
        self,
        model: Any,
        config: TrainConfig,
        items: Sequence[Any],
        split_name: str,
        num_envs: int | None = None,
        deterministic: bool | None = None,
        progress: Progress = False,
        seed: int = 0,
        wrappers: Sequence[Any] = (),
        output_dir: Any = None,
        **_: Any,
    ) -> EvalResult:
        specs = eval_wrappers(config, wrappers)
        make = slot_env_factory(self.make_env, specs, seed, output_dir)
        return evaluate_levels(
            model,
            make,
            [int(x) for x in items],
            split=split_name,
            num_envs=num_envs or config.eval_num_envs,
            deterministic=config.deterministic_eval if deterministic is None else deterministic,
            progress=progress,
            settings={"env": config.env, "env_id": self.spec.env_id, "wrappers": [str(w) for w in specs]},
        )


__all__ = ["SeededGymFamily", "leak_free_levels"]
