"""Level sets, context splits and held-out splits.

A *level* is an integer seed of a procedurally generated environment. A :class:`LevelSet` is either a
contiguous seed range ``[start, stop)`` (which Procgen's native core samples from by itself, at no
cost) or an explicit list of seeds (a fixed test set, a curated list). A :class:`LevelSplit` names
disjoint train / optional validation / test level sets; constructing one whose sets overlap raises a
:class:`ValueError` that names the overlapping seeds.

Disjoint seeds are not the whole story: Procgen can generate the same level from two different seeds
(Cobbe et al., 2020; procgen issue 100). ``heldout.envs.procgen.level_fingerprints`` checks a split for
such duplicates by the first observation of each level.

A :class:`ContextSplit` is the same idea for contextual MDPs: train / validation / test context
distributions (:mod:`heldout.contexts`) that must be disjoint and relate to each other as
interpolation, extrapolation or combinatorial generalisation (Kirk et al. 2023).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heldout.contexts import ContextDistribution, intervals_overlap, merge_intervals, within

#: Procgen seeds are C ``int``: valid seeds are ``0 <= seed < MAX_SEED``.
MAX_SEED = 2**31 - 1

#: Where the default test levels start: far from any training range people use.
DEFAULT_TEST_START = 100_000_000


def _check_seed(seed: object, what: str = "level seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {seed!r} ({type(seed).__name__})")
    seed = int(seed)
    if not 0 <= seed < MAX_SEED:
        raise ValueError(f"{what} {seed} is out of range; valid seeds are 0 <= seed < {MAX_SEED}")
    return seed


def unknown_split_message(name: object, valid: Iterable[str]) -> str:
    """``unknown split 'tset' (did you mean 'test'?); valid splits: train, test``."""
    import difflib

    valid = list(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown split {name!r}{hint}; valid splits: {', '.join(valid)}"


@dataclass(frozen=True)
class LevelSet:
    """A set of level seeds: a contiguous range or an explicit list.

    Build one with :meth:`range`, :meth:`of` or :meth:`parse`; ``LevelSet.range(0, 200)`` is the
    200 training levels of the Procgen protocol.

    Attributes:
        start: First seed of a range (``None`` for an explicit list).
        stop: One past the last seed of a range (``None`` for an explicit list).
        seeds: The explicit seeds, sorted and unique (empty for a range).
    """

    start: int | None = None
    stop: int | None = None
    seeds: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.start is None:
            if self.stop is not None:
                raise ValueError("a LevelSet range needs both start and stop")
            # Keep the documented invariant (valid seeds, sorted, unique, a hashable tuple) when the
            # constructor is called directly rather than through ``of``.
            seeds = tuple(sorted({_check_seed(s) for s in self.seeds}))
            if not seeds:
                raise ValueError("a LevelSet needs at least one level")
            object.__setattr__(self, "seeds", seeds)
            object.__setattr__(self, "_members", frozenset(seeds))
            return
        if self.seeds:
            raise ValueError("a LevelSet is either a range or an explicit list, not both")
        start = _check_seed(self.start, "range start")
        if self.stop is None or isinstance(self.stop, bool) or not isinstance(self.stop, (int, np.integer)):
            raise TypeError(f"range stop must be an integer, got {self.stop!r}")
        if not start < int(self.stop) <= MAX_SEED:
            raise ValueError(
                f"empty or invalid level range [{start}, {self.stop}); need start < stop <= {MAX_SEED}"
            )
        object.__setattr__(self, "start", start)  # plain ints, so to_dict() is YAML/JSON-friendly
        object.__setattr__(self, "stop", int(self.stop))

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def range(cls, start: int, stop: int) -> LevelSet:
        """The contiguous seeds ``start, start + 1, ..., stop - 1``."""
        return cls(start=int(start), stop=int(stop))

    @classmethod
    def of(cls, seeds: Iterable[int]) -> LevelSet:
        """An explicit set of seeds (duplicates are dropped, order is not kept)."""
        checked = sorted({_check_seed(s) for s in seeds})
        if not checked:
            raise ValueError("a LevelSet needs at least one level, got an empty list")
        return cls(seeds=tuple(checked))

    @classmethod
    def parse(cls, spec: str | Sequence[int] | LevelSet | range) -> LevelSet:
        """Reads ``"0:200"`` (a range), ``"3,17,42"`` (a list), a ``range``, or a sequence of seeds."""
        if isinstance(spec, LevelSet):
            return spec
        if isinstance(spec, range):
            if spec.step != 1:
                return cls.of(spec)
            return cls.range(spec.start, spec.stop)
        if isinstance(spec, str):
            text = spec.strip()
            m = re.fullmatch(r"(\d+)\s*:\s*(\d+)", text)
            if m:
                return cls.range(int(m.group(1)), int(m.group(2)))
            if re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
                return cls.of(int(x) for x in text.split(","))
            raise ValueError(
                f"cannot read level set {spec!r}; write a range as 'START:STOP' (e.g. '0:200') "
                "or a list as 'S1,S2,...' (e.g. '3,17,42')"
            )
        return cls.of(spec)

    # -- queries ------------------------------------------------------------------------------------
    @property
    def is_range(self) -> bool:
        """True for a contiguous range (which Procgen samples natively)."""
        return self.start is not None

    def __len__(self) -> int:
        return (self.stop - self.start) if self.is_range else len(self.seeds)  # type: ignore[operator]

    def __contains__(self, seed: object) -> bool:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            return False
        if self.is_range:
            return self.start <= int(seed) < self.stop  # type: ignore[operator]
        return int(seed) in self._members  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[int]:
        if self.is_range:
            return iter(range(self.start, self.stop))  # type: ignore[arg-type]
        return iter(self.seeds)

    def to_list(self) -> list[int]:
        """All seeds as a list (sorted)."""
        return list(self)

    def first(self, n: int) -> list[int]:
        """The ``n`` smallest seeds (all of them if there are fewer)."""
        if self.is_range:
            return list(range(self.start, min(self.stop, self.start + n)))  # type: ignore[operator]
        return list(self.seeds[:n])

    def head(self, n: int) -> LevelSet:
        """The ``n`` smallest seeds as a set (a range stays a range).

        Raises:
            ValueError: ``n`` is not between 1 and the set's size.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(self):
            raise ValueError(
                f"{n!r} is out of range; valid: 1 to {len(self)} (the levels of {self.describe()})"
            )
        if self.is_range:
            return LevelSet.range(self.start, self.start + int(n))  # type: ignore[operator]
        return LevelSet(seeds=self.seeds[: int(n)])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` seeds drawn uniformly with replacement using ``rng``."""
        if self.is_range:
            return rng.integers(self.start, self.stop, size=n)  # type: ignore[arg-type]
        return np.asarray(self.seeds)[rng.integers(0, len(self.seeds), size=n)]

    def overlap(self, other: LevelSet, limit: int = 10) -> list[int]:
        """Up to ``limit`` seeds that lie in both sets (sorted); empty if the sets are disjoint."""
        if self.is_range and other.is_range:
            lo, hi = max(self.start, other.start), min(self.stop, other.stop)  # type: ignore[type-var]
            return list(range(lo, min(hi, lo + limit))) if lo < hi else []
        small, big = (self, other) if len(self) <= len(other) else (other, self)
        out = []
        for s in small:
            if s in big:
                out.append(s)
                if len(out) >= limit:
                    break
        return sorted(out)

    def overlap_count(self, other: LevelSet) -> int:
        """How many seeds lie in both sets."""
        if self.is_range and other.is_range:
            return max(0, min(self.stop, other.stop) - max(self.start, other.start))  # type: ignore[type-var]
        small, big = (self, other) if len(self) <= len(other) else (other, self)
        return sum(1 for s in small if s in big)

    def describe(self) -> str:
        """A short human form: ``[0, 200)`` or ``{3, 17, 42}`` / ``1000 levels in [a, b]``."""
        if self.is_range:
            return f"[{self.start}, {self.stop})"
        if len(self.seeds) <= 6:
            return "{" + ", ".join(map(str, self.seeds)) + "}"
        return f"{len(self.seeds)} levels in [{self.seeds[0]}, {self.seeds[-1]}]"

    def to_dict(self) -> dict[str, Any]:
        """A YAML/JSON-friendly form, read back by :meth:`from_dict`."""
        if self.is_range:
            return {"start": self.start, "stop": self.stop}
        return {"seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LevelSet:
        """Inverse of :meth:`to_dict`."""
        if "seeds" in data:
            return cls.of(data["seeds"])
        return cls.range(data["start"], data["stop"])


@dataclass(frozen=True)
class LevelSplit:
    """Disjoint train / optional validation / test level sets.

    Args:
        train: Levels the agent trains on.
        test: Held-out levels, never seen in training.
        validation: Optional held-out levels for model selection.

    Raises:
        ValueError: if any two sets share a seed; the message names the sets and the shared seeds.

    Example:
        >>> split = LevelSplit.default(num_levels=200)
        >>> split.train.describe(), len(split.test)
        ('[0, 200)', 1000)
    """

    train: LevelSet
    test: LevelSet
    validation: LevelSet | None = None

    def __post_init__(self) -> None:
        for name in ("train", "test", "validation"):
            value = getattr(self, name)
            if value is None and name == "validation":
                continue
            if not isinstance(value, LevelSet):
                object.__setattr__(self, name, LevelSet.parse(value))
        named = [("train", self.train), ("test", self.test)]
        if self.validation is not None:
            named.append(("validation", self.validation))
        for i, (name_a, a) in enumerate(named):
            for name_b, b in named[i + 1 :]:
                shared = a.overlap(b, limit=5)
                if shared:
                    count = a.overlap_count(b)
                    more = f" and {count - len(shared)} more" if count > len(shared) else ""
                    raise ValueError(
                        f"{name_a} levels {a.describe()} and {name_b} levels {b.describe()} overlap in "
                        f"{count} seed(s): {', '.join(map(str, shared))}{more}"
                    )

    @classmethod
    def default(
        cls,
        num_levels: int = 200,
        start_level: int = 0,
        num_test_levels: int = 1000,
        test_start: int = DEFAULT_TEST_START,
        num_validation_levels: int = 0,
    ) -> LevelSplit:
        """The Procgen protocol: train on ``[start_level, start_level + num_levels)``, test on
        ``num_test_levels`` levels from a far range (and validation levels just after them)."""
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels <= 0:
            raise ValueError(f"num_levels must be a positive integer, got {num_levels!r}")
        if num_test_levels <= 0:
            raise ValueError(f"num_test_levels must be a positive integer, got {num_test_levels!r}")
        train = LevelSet.range(start_level, start_level + num_levels)
        test = LevelSet.range(test_start, test_start + num_test_levels)
        validation = None
        if num_validation_levels > 0:
            vstart = test_start + num_test_levels
            validation = LevelSet.range(vstart, vstart + num_validation_levels)
        return cls(train=train, test=test, validation=validation)

    def splits(self) -> dict[str, LevelSet]:
        """The named sets present: ``{"train": ..., "test": ..., ["validation": ...]}``."""
        out = {"train": self.train, "test": self.test}
        if self.validation is not None:
            out["validation"] = self.validation
        return out

    def get(self, name: str) -> LevelSet:
        """The level set called ``name``; raises KeyError naming the valid split names."""
        sets = self.splits()
        if name not in sets:
            raise KeyError(unknown_split_message(name, sets))
        return sets[name]

    def to_dict(self) -> dict[str, Any]:
        """A YAML/JSON-friendly form."""
        return {name: s.to_dict() for name, s in self.splits().items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LevelSplit:
        """Inverse of :meth:`to_dict`."""
        val = data.get("validation")
        return cls(
            train=LevelSet.from_dict(data["train"]),
            test=LevelSet.from_dict(data["test"]),
            validation=LevelSet.from_dict(val) if val else None,
        )


#: How test contexts relate to training contexts (Kirk et al. 2023, section 4).
CONTEXT_SPLIT_MODES: tuple[str, ...] = ("interpolation", "extrapolation", "combinatorial")


def _fmt_support(support: Sequence[tuple[float, float]]) -> str:
    return " u ".join(f"{lo:g}" if lo == hi else f"[{lo:g}, {hi:g}]" for lo, hi in support) or "-"


@dataclass(frozen=True)
class ContextSplit:
    """Train / optional validation / test context distributions, disjoint, in one of three modes.

    Modes (Kirk et al. 2023, "A Survey of Zero-shot Generalisation in Deep RL", JAIR, section 4;
    Benjamins et al. 2023, "Contextualize Me", TMLR):

    * ``"interpolation"``: every test value lies inside the training *hull* of its feature (e.g. train
      gravity on ``[4.9, 7.35] u [12.25, 14.7]``, test on the hole ``[7.35, 12.25]``);
    * ``"extrapolation"``: every test context lies outside the training hull in at least one feature
      (train gravity ``[4.9, 14.7]``, test ``[14.7, 24.5]``);
    * ``"combinatorial"``: every test value of each feature was seen in training, but the test
      *combinations* were not (train ``{g low} x {l any} u {g any} x {l low}``, test ``g high, l high``).

    In every mode the sets must be disjoint: no train component may overlap a test (or validation)
    component in all features at once. Ranges are closed: two ranges that only meet at an end do not
    overlap (the end has probability zero), but a listed value on a training range's end does (it is
    a training value, not held out). Features a component
    leaves out take ``defaults`` (the env's default context), when given.

    Raises:
        ValueError: on an unknown mode, overlapping sets, or test contexts that break the mode; the
            message names the feature, the values and the training region.

    Example:
        >>> from heldout.contexts import ContextDistribution as D
        >>> split = ContextSplit(D.parse({"gravity": "4.9:14.7"}), D.parse({"gravity": "14.7:24.5"}))
        >>> split.mode
        'extrapolation'
    """

    train: ContextDistribution
    test: ContextDistribution
    mode: str = "extrapolation"
    validation: ContextDistribution | None = None
    defaults: dict[str, float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in CONTEXT_SPLIT_MODES:
            raise ValueError(
                f"unknown context split mode {self.mode!r}; valid modes: {', '.join(CONTEXT_SPLIT_MODES)}"
            )
        for name in ("train", "test", "validation"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, ContextDistribution):
                object.__setattr__(self, name, ContextDistribution.parse(value))
        named = list(self.splits().items())
        for i, (name_a, a) in enumerate(named):
            for name_b, b in named[i + 1 :]:
                self._check_disjoint(name_a, a, name_b, b)
        for name, dist in named:
            if name != "train":
                self._check_mode(name, dist)

    # -- checks -------------------------------------------------------------------------------------
    def _default(self, feature: str) -> float | None:
        return None if self.defaults is None else self.defaults.get(feature)

    def _comp_support(self, comp: Any, feature: str) -> tuple[tuple[float, float], ...] | None:
        if feature in comp:
            return merge_intervals(comp[feature].support())
        d = self._default(feature)
        return None if d is None else ((d, d),)

    def features(self) -> tuple[str, ...]:
        """Every feature any of the distributions names."""
        names: list[str] = []
        for dist in self.splits().values():
            names += [f for f in dist.features if f not in names]
        return tuple(names)

    def _check_disjoint(
        self, name_a: str, a: ContextDistribution, name_b: str, b: ContextDistribution
    ) -> None:
        features = self.features()
        for ca in a.components:
            for cb in b.components:
                shared = []
                edge = False  # a listed value on the closed end of the other side's range
                for f in features:
                    sa, sb = self._comp_support(ca, f), self._comp_support(cb, f)
                    if sa is None or sb is None:  # unknown value: assume it may coincide
                        shared.append(f"{f} (unset)")
                        continue
                    if not intervals_overlap(sa, sb):
                        break
                    shared.append(f"{f} {_fmt_support(sa)} vs {_fmt_support(sb)}")
                    ends = {v for lo, hi in sa + sb if lo < hi for v in (lo, hi)}
                    edge |= any(lo == hi and lo in ends for lo, hi in sa + sb)
                else:
                    hint = (
                        "a value on the end of a closed range belongs to that range, so a test set on "
                        "the edge of a training box is not held out: move it strictly outside"
                        if edge
                        else "make the ranges meet at most at an end point"
                    )
                    raise ValueError(
                        f"{name_a} contexts and {name_b} contexts overlap in every feature: "
                        f"{'; '.join(shared) or 'no feature varies'}; the {self.mode} split needs disjoint "
                        f"context sets ({hint})"
                    )

    def _check_mode(self, name: str, dist: ContextDistribution) -> None:
        features = self.features()
        for comp in dist.components:
            if self.mode == "extrapolation":
                inside = []
                for f in features:
                    s = self._comp_support(comp, f)
                    hull = self.train.hull(f, self._default(f))
                    if s is None or hull is None or not intervals_overlap(s, (hull,)):
                        break
                    inside.append(f"{f} {_fmt_support(s)} within train {_fmt_support((hull,))}")
                else:
                    raise ValueError(
                        f"extrapolation needs every {name} context outside the training range in at least "
                        f"one feature, but {'; '.join(inside)}"
                    )
                continue
            for f in features:
                s = self._comp_support(comp, f)
                if s is None:
                    continue
                if self.mode == "interpolation":
                    hull = self.train.hull(f, self._default(f))
                    region = (hull,) if hull is not None else ()
                    what = "inside the training range"
                else:
                    region = self.train.support(f, self._default(f))
                    what = "among the training values"
                if not within(s, region):
                    raise ValueError(
                        f"{self.mode} needs every {name} value {what}: {name} {f} {_fmt_support(s)} is not "
                        f"within train {f} {_fmt_support(region)}"
                    )

    # -- queries ------------------------------------------------------------------------------------
    def splits(self) -> dict[str, ContextDistribution]:
        """The named distributions present: ``{"train": ..., "test": ..., ["validation": ...]}``."""
        out = {"train": self.train, "test": self.test}
        if self.validation is not None:
            out["validation"] = self.validation
        return out

    def get(self, name: str) -> ContextDistribution:
        """The distribution called ``name``; raises KeyError naming the valid split names."""
        sets = self.splits()
        if name not in sets:
            raise KeyError(unknown_split_message(name, sets))
        return sets[name]

    def to_dict(self) -> dict[str, Any]:
        """A YAML/JSON-friendly form, read back by :meth:`from_dict`."""
        out: dict[str, Any] = {"mode": self.mode}
        out.update({name: d.to_spec() for name, d in self.splits().items()})
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], defaults: dict[str, float] | None = None) -> ContextSplit:
        """Inverse of :meth:`to_dict`."""
        val = data.get("validation")
        return cls(
            train=ContextDistribution.parse(data["train"]),
            test=ContextDistribution.parse(data["test"]),
            mode=data.get("mode", "extrapolation"),
            validation=ContextDistribution.parse(val) if val else None,
            defaults=defaults,
        )
