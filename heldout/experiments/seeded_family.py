"""The env family of gymnasium envs whose level is their reset seed (MiniGrid, your own).

:class:`SeededGymFamily` answers the protocol's questions (:class:`~heldout.experiments.families.EnvFamily`)
for every env registered with :func:`heldout.envs.register_seeded_env`:

* the split is a :class:`~heldout.splits.LevelSplit` of seeds, as for Procgen (``--num-levels``,
  ``--start-level``, ``--num-test-levels``, ``--test-start``, ``--num-validation-levels``);
* each held-out evaluation list is checked for leakage: every listed level is fingerprinted (for
  MiniGrid: the full grid encoding, agent position and direction, mission; Chevalier-Boisvert et al.
  2023) and levels identical to a training level are replaced by other held-out levels, until the list
  has none (:func:`leak_free_levels`);
* the training env is SB3's ``DummyVecEnv`` of :class:`~heldout.envs.seeded.SeededLevelEnv`, each
  reset drawing a training level with the env's generator, seeded from the run seed;
* evaluation plays one episode per listed level (:func:`~heldout.experiments.evaluate.evaluate_levels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from heldout.experiments.evaluate import EvalResult, evaluate_levels, evaluation_levels
from heldout.experiments.families import (
    LEAKAGE_CHECK_MAX_TRAIN_LEVELS,
    EnvFamily,
    _reward_norm,
    _wrap_train,
    eval_wrappers,
    level_split,
    resolve_schedules,
    slot_env_factory,
)
from heldout.splits import LevelSet, LevelSplit

if TYPE_CHECKING:
    from heldout.experiments.config import TrainConfig

#: The one distribution mode a seeded env has (the config's default, which it ignores).
DEFAULT_DISTRIBUTION_MODE = "easy"


def leak_free_levels(
    name: str,
    train: LevelSet,
    held_out: LevelSet,
    episodes: int,
    split: str = "test",
    max_levels: int = LEAKAGE_CHECK_MAX_TRAIN_LEVELS,
) -> tuple[list[int], dict[str, Any]]:
    """The fixed evaluation list of ``held_out`` with no level identical to a training level.

    Draws the list as :func:`~heldout.experiments.evaluate.evaluation_levels` does, fingerprints every
    listed level (:func:`heldout.envs.seeded.level_fingerprints`), drops those whose fingerprint is a
    training level's and draws again, until the list holds no duplicate. Without duplicates the list
    is exactly the one drawn without the check.

    Returns:
        The list and a record: ``method``, ``checked``, ``train_levels``, ``held_out_levels`` (how many
        were fingerprinted), ``duplicates`` (``{"level": held_out_seed, "same_as": train_seed}``) and
        ``dropped``.

    Raises:
        ValueError: if every held-out level duplicates a training level, or more than ``max_levels``
            held-out levels had to be checked; the message names the env, the sets and what to change.
    """
    from heldout.envs.seeded import level_fingerprints

    record: dict[str, Any] = {"method": "level fingerprint after reset(seed=level)", "checked": False}
    if len(train) > max_levels:
        record["reason"] = f"training set larger than {max_levels} levels"
        return evaluation_levels(held_out, episodes), record
    train_fp: dict[str, int] = {}
    train_levels = train.to_list()
    for level, fp in zip(train_levels, level_fingerprints(name, train_levels)):
        train_fp.setdefault(fp, level)
    checked: dict[int, str] = {}
    duplicates: list[dict[str, int]] = []
    excluded: list[int] = []
    while True:
        try:
            chosen = evaluation_levels(held_out, episodes, exclude=excluded)
        except ValueError:
            raise ValueError(
                f"every {split} level in {held_out.describe()} of env {name!r} is the same level as a training "
                f"level in {train.describe()} ({len(duplicates)} duplicates): the env has few distinct levels; "
                "train on fewer levels (--num-levels), test on more (--num-test-levels), "
                "or turn the check off (--no-leakage-check)"
            ) from None
        new = [level for level in dict.fromkeys(chosen) if level not in checked]
        if len(checked) + len(new) > max_levels:
            raise ValueError(
                f"the leakage check of env {name!r} fingerprinted {len(checked)} {split} levels and still "
                f"finds duplicates of training levels ({len(duplicates)} so far): the env has few distinct "
                "levels; train on fewer levels (--num-levels) or turn the check off (--no-leakage-check)"
            )
        found = False
        for level, fp in zip(new, level_fingerprints(name, new)):
            checked[level] = fp
            if fp in train_fp:
                duplicates.append({"level": level, "same_as": train_fp[fp]})
                excluded.append(level)
                found = True
        if not found:
            break
    record.update(
        checked=True,
        train_levels=len(train_levels),
        held_out_levels=len(checked),
        duplicates=duplicates,
        dropped=len(duplicates),
    )
    return chosen, record


class SeededGymFamily(EnvFamily):
    """A registered seeded env (:data:`heldout.envs.SEEDED_ENVS`): level splits, leakage check,
    ``DummyVecEnv`` of level envs, one episode per listed level."""

    kind = "levels"
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
        if config.contexts or config.visible_context != "hidden":
            raise ValueError(
                f"env {config.env!r} has levels, not contexts; drop contexts / visible_context "
                "(contextual envs: see 'heldout list')"
            )
        self.split(config)

    def split(self, config: TrainConfig) -> LevelSplit:
        return level_split(config)

    def held_out_list(
        self, config: TrainConfig, split: LevelSplit, name: str, episodes: int
    ) -> tuple[list[int], dict[str, Any] | None]:
        """The fixed evaluation list of split ``name`` (leak-free for held-out splits when the config's
        ``leakage_check`` is on), and its leakage record (None for the training split or no check)."""
        levels = split.get(name)
        if name == "train" or not config.leakage_check:
            return evaluation_levels(levels, episodes), None
        return leak_free_levels(self.name, split.train, levels, episodes, split=name)

    def eval_lists(
        self, config: TrainConfig, split: LevelSplit, episodes: int
    ) -> tuple[dict[str, list], dict]:
        lists: dict[str, list] = {}
        leakage: dict[str, Any] = {}
        for name in split.splits():
            lists[name], record = self.held_out_list(config, split, name, episodes)
            if record is not None:
                leakage[name] = record
        return lists, leakage

    def agent_kwargs(self, config: TrainConfig) -> dict[str, Any]:
        """The env's agent defaults (e.g. ``policy="MlpPolicy"`` for MiniGrid), then the config's."""
        return {**self.spec.agent_kwargs, **resolve_schedules(config.agent_kwargs)}

    def make_env(self, levels: LevelSet | None = None) -> Any:
        """One level env drawing its levels from ``levels`` (any seed if None)."""
        from heldout.envs.seeded import SeededLevelEnv

        return SeededLevelEnv(self.name, levels=levels)

    def make_train_env(self, config: TrainConfig, split: LevelSplit, output_dir: Any = None) -> Any:
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv

        train = split.train
        venv = make_vec_env(
            lambda: self.make_env(train), n_envs=config.num_envs, seed=config.seed, vec_env_cls=DummyVecEnv
        )
        return _reward_norm(config, _wrap_train(config, venv, output_dir, config.seed))

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
        progress: bool = False,
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
