"""``heldout levels check``: how many distinct levels a training set and a test set really hold.

Disjoint seeds are not disjoint levels (procgen issue 100): :func:`check_levels` fingerprints every
level of a training and a test set under both notions of identity (docs/levels.md) and reports the
distinct training layouts and looks, the test levels that duplicate a training level (which, with
which), and the test levels that duplicate an earlier test level. For a seeded env (MiniGrid) the
one fingerprint is the layout, and the look is the same. :func:`levels_table` prints one report, or
one row a game for several (``--all``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from heldout.analysis.text import md_table
from heldout.protocol.config import TrainConfig
from heldout.protocol.families import LevelFamily, family_for
from heldout.splits import LevelSet, LevelSplit

#: The most levels ``heldout levels check`` fingerprints in one set.
MAX_CHECK_LEVELS = 100_000

#: The identities a report compares by, in order.
IDENTITIES: tuple[str, ...] = ("layout", "look")


def check_inputs(
    env: str,
    train: str | LevelSet,
    test: str | LevelSet,
    distribution_mode: str = "easy",
    env_options: dict[str, Any] | None = None,
) -> tuple[LevelFamily, TrainConfig, LevelSplit]:
    """Everything :func:`check_levels` needs, checked before any level is fingerprinted.

    Raises:
        KeyError: an unknown env (with the closest name).
        ValueError / TypeError: a contextual env, an empty, unreadable, too large or overlapping
            range, a distribution mode or visual option the env does not take; each names the value
            and the valid ones.
    """
    family = family_for(env)
    if not isinstance(family, LevelFamily):
        raise ValueError(
            f"env {env!r} has contexts, not levels: 'heldout levels check' compares level seeds "
            "(level envs: Procgen games and seeded envs such as minigrid-doorkey-6x6; see 'heldout list')"
        )
    sets = {}
    for what, spec in (("--train", train), ("--test", test)):
        try:
            sets[what] = LevelSet.parse(spec)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{what} {spec!r}: {exc}") from None
        if len(sets[what]) > MAX_CHECK_LEVELS:
            raise ValueError(
                f"{what} {spec!r} holds {len(sets[what])} levels; the check fingerprints at most "
                f"{MAX_CHECK_LEVELS} a set"
            )
    split = LevelSplit(train=sets["--train"], test=sets["--test"])  # overlapping sets: ValueError
    config = TrainConfig(env=env, distribution_mode=distribution_mode, env_options=dict(env_options or {}))
    family.validate(config)  # the env's own checks: its distribution modes, its visual options
    return family, config, split


def _first_with(levels: Sequence[int], fps: Sequence[Any]) -> dict[Any, int]:
    first: dict[Any, int] = {}
    for level, fp in zip(levels, fps):
        first.setdefault(fp, level)
    return first


def check_levels(
    env: str,
    train: str | LevelSet,
    test: str | LevelSet,
    distribution_mode: str = "easy",
    env_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The level-identity report of a training and a test set of ``env``.

    Args:
        env: A Procgen game or a seeded env (``heldout list``).
        train, test: Level sets (``"0:200"``, ``"3,17,42"``, a :class:`~heldout.splits.LevelSet`);
            disjoint.
        distribution_mode, env_options: Procgen's; the look is taken under ``env_options``.

    Returns:
        ``{"env", "distribution_mode", "env_options", "train": {"set", "levels"}, "test": {...},
        "layout": {...}, "look": {...}, "same_layout_other_look", "seconds"}``, where each identity
        holds ``method``, ``train_distinct``, ``test_distinct``, ``test_same_as_train`` (how many test
        levels duplicate a training level), its ``rate`` (of the test set), ``test_repeats`` (test
        levels that duplicate an earlier test level, by seed order) and the pairs
        ``test_train_pairs`` / ``test_test_pairs`` (``{"level", "same_as"}``).
        ``same_layout_other_look`` counts the test levels with a training layout but no training
        look: those ``leakage: look`` keeps and ``leakage: layout`` drops.
    """
    family, config, split = check_inputs(env, train, test, distribution_mode, env_options)
    t0 = time.perf_counter()
    train_levels, test_levels = split.train.to_list(), split.test.to_list()
    out: dict[str, Any] = {
        "env": env,
        "distribution_mode": config.distribution_mode,
        "env_options": dict(config.env_options),
        "train": {"set": split.train.describe(), "levels": len(train_levels)},
        "test": {"set": split.test.describe(), "levels": len(test_levels)},
    }
    seen_as: dict[str, set[int]] = {}
    done: dict[str, tuple[list[Any], list[Any]]] = {}  # method -> fingerprints
    for identity in IDENTITIES:
        ident_config = config.replace(leakage=identity)
        method = family.identity_method(ident_config)
        if method not in done:  # a seeded env has one identity: its look is its layout
            done[method] = (
                list(family.fingerprints(ident_config, train_levels)),
                list(family.fingerprints(ident_config, test_levels)),
            )
        train_fp, test_fp = done[method]
        train_first = _first_with(train_levels, train_fp)
        test_first: dict[Any, int] = {}
        test_train, test_test = [], []
        for level, fp in zip(test_levels, test_fp):
            if fp in train_first:
                test_train.append({"level": level, "same_as": train_first[fp]})
            if fp in test_first:
                test_test.append({"level": level, "same_as": test_first[fp]})
            else:
                test_first[fp] = level
        seen_as[identity] = {p["level"] for p in test_train}
        out[identity] = {
            "method": method,
            "train_distinct": len(train_first),
            "test_distinct": len(test_first),
            "test_same_as_train": len(test_train),
            "rate": len(test_train) / len(test_levels),
            "test_repeats": len(test_test),
            "test_train_pairs": test_train,
            "test_test_pairs": test_test,
        }
    out["same_layout_other_look"] = len(seen_as["layout"] - seen_as["look"])
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def check_all(
    envs: Sequence[str],
    train: str | LevelSet,
    test: str | LevelSet,
    distribution_mode: str = "easy",
    env_options: dict[str, Any] | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """:func:`check_levels` for each env (every input checked for all of them first)."""
    for env in envs:
        check_inputs(env, train, test, distribution_mode, env_options)
    reports = []
    for env in envs:
        reports.append(check_levels(env, train, test, distribution_mode, env_options))
        if progress is not None:
            progress(reports[-1])
    return reports


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def levels_table(reports: Sequence[dict[str, Any]]) -> str:
    """One Markdown row per report: distinct training layouts and looks, test levels equal to a
    training level by layout and by look (and their rate), test-test repeats, seconds."""
    header = [
        "env",
        "train layouts",
        "train looks",
        "test layouts",
        "test = train layout",
        "test = train look",
        "same layout, other look",
        "test repeats (layout)",
        "seconds",
    ]
    rows = []
    for r in reports:
        n_train, n_test = r["train"]["levels"], r["test"]["levels"]
        lay, look = r["layout"], r["look"]
        rows.append(
            [
                r["env"],
                f"{lay['train_distinct']} / {n_train}",
                f"{look['train_distinct']} / {n_train}",
                f"{lay['test_distinct']} / {n_test}",
                f"{lay['test_same_as_train']} ({_pct(lay['rate'])})",
                f"{look['test_same_as_train']} ({_pct(look['rate'])})",
                r["same_layout_other_look"],
                lay["test_repeats"],
                f"{r['seconds']:.1f}",
            ]
        )
    return md_table(header, rows)


def _pairs_text(pairs: list[dict[str, int]], limit: int, what: str) -> str:
    shown = ", ".join(f"{p['level']} = {what} {p['same_as']}" for p in pairs[:limit])
    more = f", ... ({len(pairs) - limit} more; --json PATH for all)" if len(pairs) > limit else ""
    return shown + more


def levels_report(report: dict[str, Any], limit: int = 8) -> str:
    """One env's report as text: the table row, then which test levels equal which."""
    mode = report["distribution_mode"]
    opts = ", ".join(f"{k}={v}" for k, v in sorted(report["env_options"].items()))
    lines = [
        f"{report['env']} ({mode}{', ' + opts if opts else ''}): train {report['train']['set']}, "
        f"test {report['test']['set']}",
        "",
        levels_table([report]),
        "",
    ]
    for identity in IDENTITIES:
        r = report[identity]
        lines.append(r["method"])
        if r["test_train_pairs"]:
            lines.append(
                f"  test levels with a training {identity} ({r['test_same_as_train']}): "
                + _pairs_text(r["test_train_pairs"], limit, "train")
            )
        if r["test_test_pairs"]:
            lines.append(
                f"  test levels with an earlier test level's {identity} ({r['test_repeats']}): "
                + _pairs_text(r["test_test_pairs"], limit, "test")
            )
    return "\n".join(lines)


__all__ = ["MAX_CHECK_LEVELS", "check_all", "check_inputs", "check_levels", "levels_report", "levels_table"]


# -- validating a fingerprint against a stronger check --------------------------------------------


def strong_action_sequences(steps: int = 100, seed: int = 12_345) -> Any:
    """The stronger check's three action sequences, shape ``(3, steps)``: two uniformly random, one
    drawn from up, right and up-right (which carries platformer agents through their level)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return np.stack(
        [rng.integers(0, 15, steps), rng.integers(0, 15, steps), rng.choice([5, 7, 8], steps)]
    ).astype(np.int32)


def strong_hashes(
    env: str, levels: Sequence[int], distribution_mode: str = "easy", steps: int = 100
) -> list[str]:
    """The stronger check's identity of each level, with visual variety off: for a Procgen game the
    whole-level first frame and the agent-centred frames along :func:`strong_action_sequences`; for a
    seeded env the observations, rewards and ends along three random action sequences from
    ``reset(seed=level)``."""
    import hashlib

    import numpy as np

    from heldout.envs.procgen import LAYOUT_OPTIONS, PROCGEN_GAMES, level_fingerprints, trajectory_hashes

    if env in PROCGEN_GAMES:
        whole = level_fingerprints(env, levels, distribution_mode, **LAYOUT_OPTIONS)
        moving = trajectory_hashes(
            env,
            levels,
            strong_action_sequences(steps),
            distribution_mode,
            **{**LAYOUT_OPTIONS, "center_agent": True},
        )
        return [f"{a}|{b}" for a, b in zip(whole, moving)]
    from heldout.envs.seeded import SEEDED_ENVS

    spec = SEEDED_ENVS.get(env)
    made = spec.make()
    n_actions = int(made.action_space.n)
    acts = np.random.default_rng(12_345).integers(0, n_actions, size=(3, steps))
    out = []
    try:
        for level in levels:
            h = hashlib.blake2b(digest_size=8)
            for seq in acts:
                obs, _ = made.reset(seed=int(level))
                h.update(np.asarray(obs).tobytes())
                for a in seq:
                    obs, rew, term, trunc, _ = made.step(int(a))
                    h.update(np.asarray(obs).tobytes() + f"{rew}|{term}|{trunc}".encode())
                    if term or trunc:
                        obs, _ = made.reset(seed=int(level))
            out.append(h.hexdigest())
    finally:
        made.close()
    return out


def _groups(levels: Sequence[int], fps: Sequence[Any]) -> list[list[int]]:
    by: dict[Any, list[int]] = {}
    for level, fp in zip(levels, fps):
        by.setdefault(fp, []).append(level)
    return [g for g in by.values() if len(g) > 1]


def _pairs(groups: list[list[int]]) -> set[tuple[int, int]]:
    return {(a, b) for g in groups for i, a in enumerate(g) for b in g[i + 1 :]}


def fingerprint_agreement(
    game: str, levels: Sequence[int], distribution_mode: str = "easy", steps: int = 100
) -> dict[str, Any]:
    """How the layout fingerprint of a Procgen ``game`` agrees with the stronger check on ``levels``.

    Both are taken on every pair of ``levels``: ``pairs`` are the pairs equal by fingerprint,
    ``confirmed`` those the stronger check also calls equal, ``false`` those it tells apart, and
    ``missed`` the pairs the stronger check calls equal and the fingerprint does not. The stronger
    check contains the whole-level first frame, so only levels that share a first frame with another
    level can be equal by it: it is run on those (all other pairs differ by both), which keeps it
    exact and fast.
    """
    from heldout.envs.procgen import LAYOUT_OPTIONS, level_fingerprints, level_identities

    t0 = time.perf_counter()
    levels = list(levels)
    fp = level_identities(game, levels, distribution_mode, "layout")
    t_fp = time.perf_counter() - t0
    first = level_fingerprints(game, levels, distribution_mode, **LAYOUT_OPTIONS)
    candidates = sorted({lv for g in _groups(levels, first) for lv in g})
    t1 = time.perf_counter()
    strong = dict(zip(candidates, strong_hashes(game, candidates, distribution_mode, steps)))
    t_strong = time.perf_counter() - t1
    by_fp = _pairs(_groups(levels, fp))
    index = {lv: i for i, lv in enumerate(levels)}
    by_strong = _pairs(_groups(candidates, [strong[lv] for lv in candidates]))
    by_strong = {tuple(sorted(p, key=index.__getitem__)) for p in by_strong}  # type: ignore[misc]
    return {
        "game": game,
        "levels": len(levels),
        "distinct": len(set(fp)),
        "pairs": len(by_fp),
        "confirmed": len(by_fp & by_strong),
        "false": len(by_fp - by_strong),
        "missed": len(by_strong - by_fp),
        "strong_checked": len(candidates),
        "fingerprint_seconds": round(t_fp, 2),
        "strong_seconds": round(t_strong, 2),
    }


def check_list_strongly(
    env: str,
    train: Sequence[int],
    listed: Sequence[int],
    distribution_mode: str = "easy",
    steps: int = 100,
) -> dict[str, Any]:
    """An evaluation list checked by the stronger check: ``repeats`` (seeds listed twice),
    ``same_as_train`` (listed levels the stronger check calls equal to a training level) and
    ``same_in_list`` (listed levels equal to an earlier listed one)."""
    train, listed = list(train), list(listed)
    distinct = list(dict.fromkeys(listed))
    hashes = strong_hashes(env, list(dict.fromkeys(train + distinct)), distribution_mode, steps)
    of = dict(zip(dict.fromkeys(train + distinct), hashes))
    train_h = {of[lv] for lv in train}
    seen: set[str] = set()
    in_list = 0
    for lv in distinct:
        in_list += of[lv] in seen
        seen.add(of[lv])
    return {
        "listed": len(listed),
        "repeats": len(listed) - len(distinct),
        "same_as_train": sum(of[lv] in train_h for lv in distinct),
        "same_in_list": in_list,
    }
