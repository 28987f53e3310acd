"""What every family whose levels are integer seeds shares: the level split and leak-free lists.

Procgen (:mod:`heldout.protocol.families.procgen`) and the seeded gymnasium envs
(:mod:`heldout.protocol.families.seeded`: MiniGrid, your own) differ in how they build envs and
fingerprint a level; the split, the evaluation lists and the leakage check are the same, and live
here once.

Disjoint seeds are not disjoint levels: Procgen and MiniGrid generate identical levels from different
seeds (procgen issue 100). Each held-out list is therefore built level by level in a fixed order
(:func:`~heldout.protocol.evaluate.level_order`) and checked as a whole: a candidate is dropped when
its fingerprint is a training level's, or a level already in the list has its fingerprint, and the
next candidate is checked the same way, until the list is full or the set runs out
(:func:`leak_free_levels`). A held-out list never repeats a level: when the set runs out, the list is
shorter, a warning says so and the record keeps it. docs/levels.md defines a level's identity (its
*layout*, or its *look*) and the policy (``TrainConfig.leakage``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from heldout.protocol.evaluate import evaluation_levels, level_order
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
    train: LevelSet | None,
    held_out: LevelSet,
    episodes: int,
    split: str = "test",
    max_levels: int = LEAKAGE_CHECK_MAX_TRAIN_LEVELS,
    fingerprints: Callable[[list[int]], Sequence[Any]] | None = None,
    method: str = "level fingerprint after reset(seed=level)",
    identity: str = "layout",
) -> tuple[list[int], dict[str, Any]]:
    """The fixed evaluation list of ``held_out``: distinct levels, none equal to a training level.

    Candidates come in the fixed order of :func:`~heldout.protocol.evaluate.level_order` (so without
    duplicates the list is exactly :func:`~heldout.protocol.evaluate.evaluation_levels`). Each is
    fingerprinted and dropped if its fingerprint is a training level's (``"same layout as train level
    N"``) or a listed level's (``"repeat of test level M"``); the next candidates are checked the same
    way, against the training levels and the whole list so far, until the list holds ``episodes``
    levels. No seed is listed twice. If the set runs out first, the list is shorter: the record says
    so (``short``, ``warning``), and the caller prints the warning.

    Args:
        name: The env (for messages, and for the default fingerprint).
        train: The training levels; None: no training level to compare with (a list the caller
            knows to overlap the training set, as ``heldout eval --levels`` over training levels).
        held_out: The set the list is drawn from.
        episodes: The list's length (at most).
        split: The list's name (for messages and reasons).
        max_levels: The most training levels, and held-out levels, the check fingerprints.
        fingerprints: Levels -> one hashable fingerprint each; default: the seeded env's
            (:func:`heldout.envs.seeded.level_fingerprints`).
        method: How the fingerprint is taken, for the record.
        identity: ``"layout"`` or ``"look"`` (the word in the reasons), or ``"off"``: no fingerprint,
            only distinct seeds.

    Returns:
        The list and a record: ``policy``, ``method``, ``checked``, ``episodes`` (asked for),
        ``listed`` (given), ``train_levels`` and ``train_distinct`` (distinct training fingerprints),
        ``held_out_levels`` (how many were fingerprinted), ``dropped`` (``{"level", "reason",
        "same_as"}`` each), ``train_duplicates`` and ``repeats`` (how many of each were dropped), and,
        when the set ran out, ``short: true`` and a one-line ``warning``.

    Raises:
        ValueError: if no held-out level is left (every one duplicates a training level); the
            message names the env, the sets and what to change.
    """
    if fingerprints is None and identity != "off":
        from heldout.envs.seeded import level_fingerprints

        def fingerprints(levels: list[int]) -> Sequence[Any]:
            return level_fingerprints(name, levels)

    record: dict[str, Any] = {"policy": identity, "method": method, "checked": False}
    order = level_order(held_out, episodes)
    check = identity != "off" and fingerprints is not None
    if check and train is not None and len(train) > max_levels:
        record["reason"] = f"training set larger than {max_levels} levels"
        check = False
    if not check:
        if identity == "off":
            record.update(method="none", reason="leakage check off (leakage: off)")
        chosen = list(itertools.islice(order, episodes))
        record.update(episodes=episodes, listed=len(chosen), dropped=[], train_duplicates=0, repeats=0)
        _note_short(record, name, split, held_out, episodes, chosen)
        return chosen, record

    assert fingerprints is not None
    train_fp: dict[Any, int] = {}
    train_levels = train.to_list() if train is not None else []
    for level, fp in zip(train_levels, fingerprints(train_levels)):
        train_fp.setdefault(fp, level)
    listed: dict[Any, int] = {}  # fingerprint -> the listed level that has it
    chosen: list[int] = []
    dropped: list[dict[str, Any]] = []
    seen = 0
    batch = episodes
    while len(chosen) < episodes and seen < max_levels:
        candidates = list(itertools.islice(order, min(batch, max_levels - seen)))
        if not candidates:
            break
        seen += len(candidates)
        for level, fp in zip(candidates, fingerprints(candidates)):
            if len(chosen) == episodes:
                break
            if fp in train_fp:
                dropped.append(
                    {
                        "level": level,
                        "reason": f"same {identity} as train level {train_fp[fp]}",
                        "same_as": train_fp[fp],
                    }
                )
            elif fp in listed:
                dropped.append(
                    {"level": level, "reason": f"repeat of {split} level {listed[fp]}", "same_as": listed[fp]}
                )
            else:
                listed[fp] = level
                chosen.append(level)
        batch = max(2 * (episodes - len(chosen)), 32)
    if not chosen:
        raise ValueError(
            f"every {split} level in {held_out.describe()} of env {name!r} is the same level as a training "
            f"level in {train.describe() if train is not None else '-'} ({len(dropped)} duplicates): the env "
            "has few distinct levels; train on fewer levels (--num-levels), test on more (--num-test-levels), "
            "or turn the check off (--leakage off, or --no-leakage-check)"
        )
    train_dups = sum(1 for d in dropped if d["reason"].startswith("same "))
    record.update(
        checked=True,
        episodes=episodes,
        listed=len(chosen),
        train_levels=len(train_levels),
        train_distinct=len(train_fp),
        held_out_levels=seen,
        dropped=dropped,
        train_duplicates=train_dups,
        repeats=len(dropped) - train_dups,
    )
    if len(chosen) < episodes and seen >= max_levels and seen < len(held_out):
        record["stopped"] = f"stopped after fingerprinting {max_levels} {split} levels"
    _note_short(record, name, split, held_out, episodes, chosen)
    return chosen, record


def _note_short(
    record: dict[str, Any], name: str, split: str, held_out: LevelSet, episodes: int, chosen: list[int]
) -> None:
    """Marks a list the set could not fill (``short``) and words the warning its caller prints."""
    if len(chosen) >= episodes:
        return
    why = (
        f"{record['train_duplicates']} dropped as training levels, {record['repeats']} as repeats"
        if record.get("checked")
        else "no level is repeated"
    )
    where = record.get("stopped") or f"{held_out.describe()} holds only {len(chosen)} usable levels"
    record["short"] = True
    record["warning"] = (
        f"{split} list of env {name!r}: {len(chosen)} of {episodes} episodes: {where} ({why}); "
        f"evaluating {len(chosen)} episodes, none repeated (more levels: --num-test-levels or a larger range)"
    )


def train_list_record(levels: LevelSet, episodes: int, chosen: list[int]) -> dict[str, Any]:
    """The record of the training split's list, which may repeat levels: with fewer training
    levels than episodes each is played in shuffled rounds (``evaluation_levels``), as the training
    distribution plays them."""
    distinct = len(set(chosen))
    record: dict[str, Any] = {
        "checked": False,
        "reason": "the training split (its levels are the training levels)",
        "episodes": episodes,
        "listed": len(chosen),
        "distinct_levels": distinct,
    }
    if distinct < len(chosen):
        record["repeated"] = (
            f"{len(levels)} training levels for {episodes} episodes: each level is played "
            f"{len(chosen) // distinct} or {-(-len(chosen) // distinct)} times, in shuffled rounds"
        )
    return record


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
        split = self.split(config)
        for name, held_out in (("test", split.test), ("validation", split.validation)):
            if held_out is not None and len(held_out) < config.eval_episodes:
                raise ValueError(
                    f"{name} levels {held_out.describe()} hold {len(held_out)} levels, fewer than "
                    f"eval_episodes {config.eval_episodes} (--eval-episodes): held-out levels are played "
                    f"once each, never repeated; valid: --num-{name}-levels >= {config.eval_episodes} or "
                    f"--eval-episodes <= {len(held_out)}"
                )

    def split(self, config: TrainConfig) -> LevelSplit:
        return level_split(config)

    def fingerprints(self, config: TrainConfig, levels: list[int]) -> Sequence[Any]:
        """One hashable fingerprint per level under the config's identity (``config.leakage``:
        ``"layout"`` or ``"look"``): equal fingerprints, the same level. A family with one notion
        of identity (a seeded env, whose fingerprint is its layout) ignores ``config.leakage``."""
        raise NotImplementedError

    def identity_method(self, config: TrainConfig) -> str:
        """How :meth:`fingerprints` identifies a level under ``config.leakage``, for the record."""
        return self.fingerprint_method

    def level_list(
        self,
        config: TrainConfig,
        levels: LevelSet,
        episodes: int,
        name: str,
        train: LevelSet | None,
    ) -> tuple[list[int], dict[str, Any]]:
        """A held-out evaluation list drawn from ``levels`` by the config's policy
        (:func:`leak_free_levels`): distinct levels, none with a training level's identity (compared
        with ``train``; None: with none), no two with one fingerprint; shorter, with a warning in
        the record, when ``levels`` runs out."""
        return leak_free_levels(
            config.env,
            train,
            levels,
            episodes,
            split=name,
            fingerprints=lambda lv: self.fingerprints(config, lv),
            method=self.identity_method(config) if config.leakage != "off" else "none",
            identity=config.leakage,
        )

    def held_out_list(
        self, config: TrainConfig, split: LevelSplit, name: str, episodes: int
    ) -> tuple[list[int], dict[str, Any]]:
        """The fixed evaluation list of split ``name`` and its record.

        Held-out splits: :meth:`level_list` against the training levels. The training split: its
        levels in shuffled rounds when there are fewer than ``episodes`` (:func:`train_list_record`
        says how often each is played).
        """
        levels = split.get(name)
        if name == "train":
            chosen = evaluation_levels(levels, episodes)
            return chosen, train_list_record(levels, episodes, chosen)
        return self.level_list(config, levels, episodes, name, split.train)

    def eval_lists(
        self, config: TrainConfig, split: LevelSplit, episodes: int
    ) -> tuple[dict[str, list], dict]:
        """Every split's fixed list and its record (``split.json``'s ``eval_levels`` and ``leakage``);
        a held-out list the set could not fill has a ``warning`` in its record, which the protocol
        prints."""
        lists: dict[str, list] = {}
        leakage: dict[str, Any] = {}
        for name in split.splits():
            lists[name], leakage[name] = self.held_out_list(config, split, name, episodes)
        return lists, leakage
