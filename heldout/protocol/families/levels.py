"""What every family whose levels are integer seeds shares: the level split and leak-free lists.

Procgen (:mod:`heldout.protocol.families.procgen`) and the seeded gymnasium envs
(:mod:`heldout.protocol.families.seeded`: MiniGrid, your own) differ in how they build envs and
fingerprint a level; the split, the evaluation lists and the leakage check are the same, and live
here once.

Disjoint seeds are not disjoint levels: Procgen and MiniGrid generate identical levels from different
seeds (procgen issue 100). Each held-out list is therefore checked as a whole, and every level whose
fingerprint equals a training level's is replaced by another held-out level, and the replacements
checked again, until the list holds none (:func:`leak_free_levels`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from heldout.protocol.evaluate import evaluation_levels
from heldout.protocol.families.base import EnvFamily
from heldout.splits import LevelSet, LevelSplit

if TYPE_CHECKING:
    from heldout.protocol.config import TrainConfig

#: The largest training set the leakage check fingerprints (and the most held-out levels it checks).
LEAKAGE_CHECK_MAX_TRAIN_LEVELS = 20_000


def level_split(config: TrainConfig) -> LevelSplit:
    """The level split of a config: train ``[start_level, start_level + num_levels)``, test and
    validation ranges from ``test_start`` (:meth:`LevelSplit.default`)."""
    return LevelSplit.default(
        num_levels=config.num_levels,
        start_level=config.start_level,
        num_test_levels=config.num_test_levels,
        test_start=config.test_start,
        num_validation_levels=config.num_validation_levels,
    )


def leak_free_levels(
    name: str,
    train: LevelSet,
    held_out: LevelSet,
    episodes: int,
    split: str = "test",
    max_levels: int = LEAKAGE_CHECK_MAX_TRAIN_LEVELS,
    fingerprints: Callable[[list[int]], Sequence[Any]] | None = None,
    method: str = "level fingerprint after reset(seed=level)",
) -> tuple[list[int], dict[str, Any]]:
    """The fixed evaluation list of ``held_out`` with no level identical to a training level.

    Draws the list as :func:`~heldout.protocol.evaluate.evaluation_levels` does, fingerprints every
    listed level, drops those whose fingerprint is a training level's and draws again, checking the
    replacements too, until the list holds no duplicate. Without duplicates the list is exactly the
    one drawn without the check.

    Args:
        name: The env (for messages, and for the default fingerprint).
        train, held_out: The training levels and the held-out set the list is drawn from.
        episodes: The list's length.
        split: The held-out split's name (for messages).
        max_levels: The most training levels, and held-out levels, the check fingerprints.
        fingerprints: Levels -> one hashable fingerprint each; default: the seeded env's
            (:func:`heldout.envs.seeded.level_fingerprints`).
        method: How the fingerprint is taken, for the record.

    Returns:
        The list and a record: ``method``, ``checked``, ``train_levels``, ``held_out_levels`` (how many
        were fingerprinted), ``duplicates`` (``{"level": held_out_seed, "same_as": train_seed}``) and
        ``dropped``.

    Raises:
        ValueError: if every held-out level duplicates a training level, or more than ``max_levels``
            held-out levels had to be checked; the message names the env, the sets and what to change.
    """
    if fingerprints is None:
        from heldout.envs.seeded import level_fingerprints

        def fingerprints(levels: list[int]) -> Sequence[Any]:
            return level_fingerprints(name, levels)

    record: dict[str, Any] = {"method": method, "checked": False}
    if len(train) > max_levels:
        record["reason"] = f"training set larger than {max_levels} levels"
        return evaluation_levels(held_out, episodes), record
    train_fp: dict[Any, int] = {}
    train_levels = train.to_list()
    for level, fp in zip(train_levels, fingerprints(train_levels)):
        train_fp.setdefault(fp, level)
    checked: dict[int, Any] = {}
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
        for level, fp in zip(new, fingerprints(new)):
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


class LevelFamily(EnvFamily):
    """A family whose levels are integer seeds: level splits, leak-free held-out lists.

    Subclasses say how a level is fingerprinted (:meth:`fingerprints`) and build their envs.
    """

    kind = "levels"
    #: How :meth:`fingerprints` identifies a level, for the leakage record.
    fingerprint_method: str = ""

    def validate(self, config: TrainConfig) -> None:
        from heldout.protocol.config import TrainConfig

        if config.contexts or config.visible_context != "hidden":
            given = [f"contexts={config.contexts!r}"] if config.contexts else []
            if config.visible_context != "hidden":
                given.append(f"visible_context={config.visible_context!r}")
            raise ValueError(
                f"env {config.env!r} has levels, not contexts; drop {', '.join(given)} "
                "(contextual envs: see 'heldout list')"
            )
        if config.visible_context_scale != TrainConfig().visible_context_scale:
            raise ValueError(
                f"visible_context_scale={config.visible_context_scale!r} applies to contextual envs; env "
                f"{config.env!r} has levels, not contexts: drop it (contextual envs: see 'heldout list')"
            )
        if config.context_bins != TrainConfig().context_bins:
            raise ValueError(
                f"context_bins={config.context_bins!r} (--context-bins) applies to contextual envs; env "
                f"{config.env!r} has levels, not contexts: drop it (contextual envs: see 'heldout list')"
            )
        self.split(config)

    def split(self, config: TrainConfig) -> LevelSplit:
        return level_split(config)

    def fingerprints(self, config: TrainConfig, levels: list[int]) -> Sequence[Any]:
        """One hashable fingerprint per level: equal fingerprints, the same level."""
        raise NotImplementedError

    def held_out_list(
        self, config: TrainConfig, split: LevelSplit, name: str, episodes: int
    ) -> tuple[list[int], dict[str, Any] | None]:
        """The fixed evaluation list of split ``name`` (leak-free for held-out splits when the config's
        ``leakage_check`` is on), and its leakage record (None for the training split or no check)."""
        levels = split.get(name)
        if name == "train" or not config.leakage_check:
            return evaluation_levels(levels, episodes), None
        return leak_free_levels(
            config.env,
            split.train,
            levels,
            episodes,
            split=name,
            fingerprints=lambda lv: self.fingerprints(config, lv),
            method=self.fingerprint_method,
        )

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
