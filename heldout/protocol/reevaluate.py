"""``heldout eval``: a saved run evaluated again, on a split or under settings it never saw.

:func:`run_eval` reads the run folder (:func:`heldout.protocol.run_folder.load_run`), builds the
evaluation list as training did (leak-free for held-out level splits), or from the given levels,
Procgen distribution mode, visual options or shift, contexts, or evaluation-only wrappers, and writes
``eval/<split>[-<tag>].csv`` and ``.json`` beside the final evaluation, which it never overwrites.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from heldout.protocol.checkpoint import load_trained_model, trained_checkpoint
from heldout.protocol.checks import check_int, check_seed, resolve_device
from heldout.protocol.config import TrainConfig
from heldout.protocol.evaluate import EVAL_LIST_SEED, evaluation_levels, run_threads, torch_threads
from heldout.protocol.families import (
    ContextualFamily,
    LevelFamily,
    SeededGymFamily,
    evaluation_contexts,
    family_for,
)
from heldout.protocol.families.levels import train_list_record
from heldout.protocol.run import summarize
from heldout.protocol.run_folder import load_run, write_atomic, write_json
from heldout.protocol.tables import context_table, split_table
from heldout.protocol.validate import check_wrappers
from heldout.splits import ContextSplit, LevelSet, LevelSplit


def wrapper_suffix(specs: Sequence[Any]) -> str:
    """What evaluation-only wrappers add to a re-evaluated split's name: ``-wrapper-<SPEC>[+<SPEC>...]``
    (each spec's file-name-safe :attr:`~heldout.wrappers.WrapperSpec.slug`), or nothing."""
    return ("-wrapper-" + "+".join(w.slug for w in specs)) if specs else ""


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
    checkpoint: str | None = None,
    trust_pickle: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Re-evaluates a saved run on a split, possibly under settings it never saw.

    Procgen runs take another distribution mode, visual options, explicit levels, or a registered
    visual ``shift`` (``heldout.envs.procgen_shifts.SHIFTS``; recorded as split ``<split>-shift-<NAME>``).
    Seeded level envs (MiniGrid, ...) take explicit levels. Held-out lists are built as at training
    time (distinct levels, none with a training level's identity under the run's ``leakage`` policy,
    shorter with a warning when the set runs out), explicit ``levels`` too; levels that are training
    levels are recorded as split ``"train"``, a mix of both as ``"levels-overlapping-train"``
    (:func:`levels_label`), with a warning line.
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
    # every flag is checked before an evaluation list is built or a model loaded
    check_int("--episodes", episodes, minimum=1)
    if num_envs is not None:
        check_int("--num-envs", num_envs, minimum=1)
    check_seed("--seed", seed)
    resolve_device(device, what="--device")
    weights = trained_checkpoint(path, checkpoint, trust_pickle)  # intact, before any work
    step_dir = weights if checkpoint is not None else None
    family = family_for(config.env)
    run_split = family.split(config)
    run_split.get(split)  # a KeyError naming the run's splits
    eval_only = check_wrappers(list(wrappers or []), what="--wrapper")
    family.check_eval_wrappers(config, eval_only)
    suffix = wrapper_suffix(eval_only)
    leakage_record: dict[str, Any] | None = None
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
        items, stem, evaluated = _context_eval_items(
            family, run_split, split, episodes, contexts, config.context_bins
        )
        eval_kwargs: dict[str, Any] = {}
        name = split
        if contexts and split != "train":
            relation = training_overlap(run_split.train, evaluated, family.space.defaults())
            if relation != "held-out":
                label = "train-range" if relation == "inside" else "partly-train-range"
                what = "inside" if relation == "inside" else "partly inside"
                print(
                    f"warning: --context {_context_tag(contexts)}: the contexts evaluated lie {what} the "
                    f"run's training distribution ({run_split.train.describe()}), so they are not held "
                    f"out: recorded as split {label!r}, not {split!r}",
                    file=sys.stderr,
                )
                name, stem = label, label + stem[len(split) :]
        summary_config = config
        set_desc = None
        if contexts or eval_only:  # bins and the table describe the contexts evaluated
            set_desc = evaluated.describe()
            name, stem = name + suffix, stem + suffix
            run_split = _EvaluatedContexts(name, evaluated)  # type: ignore[assignment]
    else:
        if contexts:
            raise ValueError(f"--context applies to contextual runs; {config.env!r} has levels, not contexts")
        assert isinstance(family, LevelFamily)  # every family has levels or contexts
        if isinstance(family, SeededGymFamily):
            _refuse_procgen_flags(
                {"--distribution-mode": distribution_mode, "--env-option": env_options, "--shift": shift},
                f"{config.env!r} is a seeded level env: use --split or --levels",
            )
        level_set, stem, name, set_desc, eval_kwargs = _level_eval_items(
            config, run_split, split, episodes, distribution_mode, levels, env_options, shift
        )
        label = split if levels is None else levels_label(level_set, run_split.train, split)
        if label != "train" and len(level_set) < episodes:
            where = f"--levels {levels!r}" if levels is not None else f"the run's {split} levels"
            raise ValueError(
                f"{where} hold {len(level_set)} levels, fewer than --episodes {episodes}: held-out levels are "
                f"played once each, never repeated; valid: --episodes <= {len(level_set)}"
                + (" or a larger range" if levels is not None else " or --levels A:B with more levels")
            )
        if levels is None:  # the split's list, leak-free as at training time
            items, record = family.held_out_list(config, run_split, split, episodes)
        else:
            if label != split:
                overlap = level_set.overlap_count(run_split.train)
                print(
                    f"warning: {overlap} of the {len(level_set)} given levels are training levels of this "
                    f"run: recorded as split {label!r}, not {split!r}"
                    if overlap
                    else f"warning: none of the given levels is a training level of this run: recorded as "
                    f"split {label!r}, not {split!r}",
                    file=sys.stderr,
                )
            name = f"{label}-shift-{shift}" if shift else label
            stem = label + stem[len(split) :]
            items, record = explicit_level_list(family, config, run_split, level_set, label, episodes)
        if record.get("warning"):
            print(f"warning: {record['warning']}", file=sys.stderr)
        elif record.get("dropped"):
            print(
                f"note: leakage check: {len(record['dropped'])} {name} levels dropped "
                f"({record['train_duplicates']} same {record['policy']} as a training level, "
                f"{record['repeats']} repeats) and replaced",
                file=stream,
            )
        leakage_record = {name: record}
        summary_config = config.replace(distribution_mode=eval_kwargs["distribution_mode"])
        if eval_only:
            name, stem = name + suffix, stem + suffix
            set_desc = set_desc or run_split.get(split).describe()

    if step_dir is not None:  # an earlier point of the run: its own file, never the final's
        step = step_dir.name
        name, stem = f"{name}-{step}", f"{stem}-{step}"
    if stem == split:
        # a plain re-evaluation never overwrites the final evaluation (eval/<split>.csv), which
        # summary.json and `heldout report` are built on
        stem = f"{split}-reeval"

    with torch_threads(run_threads(config, family)):
        model = load_trained_model(config, path, checkpoint, device=device, trust_pickle=trust_pickle)
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
    if leakage_record is not None:
        summary["leakage"] = leakage_record
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
    given = {name: value for name, value in flags.items() if value}
    if given:
        values = ", ".join(repr(v) for v in given.values())
        raise ValueError(f"{', '.join(given)} apply to Procgen runs only (got {values}); {why}")


#: The split name of ``heldout eval --levels`` levels of which some, not all, are training levels.
OVERLAPPING_TRAIN = "levels-overlapping-train"


def levels_label(levels: LevelSet, train: LevelSet, split: str) -> str:
    """The split name ``heldout eval --split SPLIT --levels A:B`` records its levels under.

    Levels disjoint from the training set are held out: ``split`` (``"test"`` if ``split`` is
    ``"train"``); levels all in the training set: ``"train"``; a mix:
    :data:`OVERLAPPING_TRAIN` (neither a test nor a training score).
    """
    overlap = levels.overlap_count(train)
    if overlap == 0:
        return "test" if split == "train" else split
    if overlap == len(levels):
        return "train"
    return OVERLAPPING_TRAIN


def explicit_level_list(
    family: LevelFamily,
    config: TrainConfig,
    run_split: LevelSplit,
    levels: LevelSet,
    label: str,
    episodes: int,
) -> tuple[list[int], dict[str, Any]]:
    """The list ``heldout eval --levels`` plays, by the rules of the training-time lists.

    Held-out levels (``label`` not ``"train"`` nor :data:`OVERLAPPING_TRAIN`): as a held-out split,
    checked against the training levels by the run's ``leakage`` policy, distinct, never repeated.
    Training levels: as the training split's list (repeated rounds when fewer than ``episodes``,
    recorded). A mix: distinct levels, no two with one fingerprint, none dropped for being a training
    level (the name says what they are).
    """
    if label == "train":
        chosen = evaluation_levels(levels, episodes)
        return chosen, train_list_record(levels, episodes, chosen)
    train = None if label == OVERLAPPING_TRAIN else run_split.train
    return family.level_list(config, levels, episodes, label, train)


def _level_eval_items(
    config: TrainConfig,
    run_split: LevelSplit,
    split: str,
    episodes: int,
    distribution_mode: str | None,
    levels: str | None,
    env_options: dict[str, bool] | None,
    shift: str | None,
) -> tuple[LevelSet, str, str, str | None, dict[str, Any]]:
    """Level envs: the level set, file stem, split name, set description and evaluate() settings."""
    from heldout.envs.procgen import check_distribution_mode, check_options
    from heldout.envs.procgen_shifts import SHIFTS

    mode = distribution_mode or config.distribution_mode
    check_distribution_mode(mode, config.env)
    check_options(env_options or {}, what="--env-option")
    shift_options = SHIFTS.get(shift).options if shift else {}
    if shift and all(config.env_options.get(k) == v for k, v in shift_options.items()):
        print(
            f"note: the run was trained with {shift_options}: shift {shift!r} changes nothing",
            file=sys.stderr,
        )
    options = {**config.env_options, **(env_options or {}), **shift_options}
    level_set = LevelSet.parse(levels) if levels is not None else run_split.get(split)
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
    return level_set, stem, name, desc, {"distribution_mode": mode, "env_options": options}


def _context_eval_items(
    family: ContextualFamily,
    run_split: ContextSplit,
    split: str,
    episodes: int,
    contexts: dict[str, Any] | None,
    bins: int = 5,
) -> tuple[list[dict[str, Any]], str, Any]:
    """Contextual: the (context, seed) list, file stem and the distribution drawn from."""
    from heldout.contexts import ContextDistribution

    dist = run_split.get(split)
    names = list(run_split.splits())
    seed = EVAL_LIST_SEED + names.index(split)
    if not contexts:
        return evaluation_contexts(dist, family.space, episodes, seed=seed, bins=bins), split, dist
    override = family.space.check_distribution(
        ContextDistribution.parse(contexts, family.space.bounds()), what="--context"
    )
    merged = ContextDistribution(
        tuple({**comp, **override.components[0]} for comp in dist.components), dist.weights
    )
    return (
        evaluation_contexts(merged, family.space, episodes, seed=seed, bins=bins),
        f"{split}-{_context_tag(contexts)}",
        merged,
    )


def _context_tag(contexts: dict[str, Any]) -> str:
    """``gravity=5:10`` for ``{"gravity": "5:10"}`` (the file-name tag of a ``--context`` evaluation)."""
    return "-".join(f"{k}={str(v).replace(' ', '')}" for k, v in sorted(contexts.items()))


def training_overlap(train: Any, evaluated: Any, defaults: dict[str, float] | None = None) -> str:
    """How contexts drawn from ``evaluated`` relate to the training distribution ``train``.

    Returns ``"inside"`` when every component of ``evaluated`` lies within one training component in
    every feature (closed ranges, features a component leaves out at ``defaults``), ``"partly"`` when
    some component shares values with a training component in every feature (an overlap with
    positive probability, or a listed value on a training range's end), else ``"held-out"``.
    """
    from heldout.contexts import intervals_overlap, merge_intervals, within

    defaults = defaults or {}
    features = list(dict.fromkeys([*train.features, *evaluated.features]))

    def support(comp: Any, f: str) -> tuple[tuple[float, float], ...] | None:
        if f in comp:
            return merge_intervals(comp[f].support())
        return ((defaults[f], defaults[f]),) if f in defaults else None

    inside_all, overlap_any = True, False
    for ce in evaluated.components:
        inside = overlap = False
        for ct in train.components:
            pairs = [(support(ce, f), support(ct, f)) for f in features]
            if all(a is not None and b is not None and within(a, b) for a, b in pairs):
                inside = True
            if all(a is None or b is None or intervals_overlap(a, b) for a, b in pairs):
                overlap = True
        inside_all &= inside
        overlap_any |= overlap or inside
    if inside_all:
        return "inside"
    return "partly" if overlap_any else "held-out"


class _EvaluatedContexts:
    """The one distribution a custom ``--context`` evaluation drew from, looked up like a split."""

    def __init__(self, name: str, dist: Any) -> None:
        self.name, self.dist = name, dist

    def get(self, name: str) -> Any:
        if name != self.name:
            raise KeyError(name)
        return self.dist


__all__ = ["run_eval", "training_overlap"]
