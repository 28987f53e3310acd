"""Context distributions: which contexts a split draws from (the analogue of a level set).

A *context* is a dict of named floats (``{"gravity": 12.0, "length": 0.7}``). A
:class:`ContextDistribution` draws contexts from a seeded generator; it is a mixture of *components*,
each of which draws every named feature independently from a :class:`FeatureDistribution`:

* :class:`Fixed` - one value (a context held fixed);
* :class:`Uniform` - uniform over one interval or a union of intervals (an interpolation train set
  with a hole in it is ``Uniform(((4.9, 7.35), (12.25, 14.7)))``);
* :class:`TruncatedNormal` - a normal truncated to ``[low, high]``;
* :class:`Categorical` - a finite set of values, optionally weighted.

An explicit list of contexts is a mixture of all-:class:`Fixed` components
(:meth:`ContextDistribution.of`). The kinds are registered in :data:`FEATURE_DISTRIBUTIONS`, so specs
read from YAML or the command line name them (``{"uniform": [4.9, 14.7]}``, ``"4.9:14.7"``).

Every distribution reports its *support* as closed intervals (a point is ``(v, v)``), which is what
:class:`heldout.splits.ContextSplit` checks for overlap, interpolation and extrapolation.

References:
    Benjamins et al. 2023, "Contextualize Me - The Case for Context in Reinforcement Learning", TMLR.
    Kirk et al. 2023, "A Survey of Zero-shot Generalisation in Deep Reinforcement Learning", JAIR.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from heldout.registry import Registry

Context = dict[str, float]
Interval = tuple[float, float]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return value


@runtime_checkable
class FeatureDistribution(Protocol):
    """Draws values of one context feature."""

    def sample(self, rng: np.random.Generator) -> float:
        """One value drawn with ``rng``."""

    def support(self) -> tuple[Interval, ...]:
        """The closed intervals holding every value this distribution can draw (points as ``(v, v)``)."""

    def to_spec(self) -> Any:
        """A YAML/JSON-friendly spec that :func:`parse_feature` reads back."""


@dataclass(frozen=True)
class Fixed:
    """Always the same value (a feature held fixed)."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _number(self.value, "fixed value"))

    def sample(self, rng: np.random.Generator) -> float:
        return self.value

    def support(self) -> tuple[Interval, ...]:
        return ((self.value, self.value),)

    def to_spec(self) -> Any:
        return self.value


@dataclass(frozen=True)
class Uniform:
    """Uniform over one interval or a union of disjoint intervals (weighted by their lengths).

    Args:
        intervals: ``(low, high)`` or a sequence of them, e.g. ``((4.9, 7.35), (12.25, 14.7))``.
    """

    intervals: tuple[Interval, ...]

    def __post_init__(self) -> None:
        raw = self.intervals
        if len(raw) == 2 and not isinstance(raw[0], (tuple, list)):
            raw = (tuple(raw),)  # type: ignore[assignment]
        out = []
        for item in raw:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"a uniform interval is (low, high), got {item!r}")
            lo, hi = _number(item[0], "uniform low"), _number(item[1], "uniform high")
            if not lo < hi:
                raise ValueError(f"uniform interval ({lo:g}, {hi:g}) is empty: need low < high")
            out.append((lo, hi))
        if not out:
            raise ValueError("a uniform distribution needs at least one interval")
        out.sort()
        for (a_lo, a_hi), (b_lo, b_hi) in zip(out, out[1:]):
            if b_lo < a_hi:
                raise ValueError(f"uniform intervals ({a_lo:g}, {a_hi:g}) and ({b_lo:g}, {b_hi:g}) overlap")
        object.__setattr__(self, "intervals", tuple(out))

    def sample(self, rng: np.random.Generator) -> float:
        widths = np.array([hi - lo for lo, hi in self.intervals])
        i = int(rng.choice(len(widths), p=widths / widths.sum())) if len(widths) > 1 else 0
        lo, hi = self.intervals[i]
        return float(rng.uniform(lo, hi))

    def support(self) -> tuple[Interval, ...]:
        return self.intervals

    def to_spec(self) -> Any:
        if len(self.intervals) == 1:
            return {"uniform": list(self.intervals[0])}
        return {"uniform": [list(iv) for iv in self.intervals]}


@dataclass(frozen=True)
class TruncatedNormal:
    """A normal ``N(mean, std^2)`` truncated to ``[low, high]`` (drawn by rejection, then clipped)."""

    mean: float
    std: float
    low: float
    high: float

    def __post_init__(self) -> None:
        for name in ("mean", "std", "low", "high"):
            object.__setattr__(self, name, _number(getattr(self, name), f"normal {name}"))
        if self.std <= 0:
            raise ValueError(f"normal std must be positive, got {self.std:g}")
        if not self.low < self.high:
            raise ValueError(f"normal truncation [{self.low:g}, {self.high:g}] is empty: need low < high")

    def sample(self, rng: np.random.Generator) -> float:
        for _ in range(64):
            draws = rng.normal(self.mean, self.std, size=16)
            inside = draws[(draws >= self.low) & (draws <= self.high)]
            if inside.size:
                return float(inside[0])
        return float(np.clip(rng.normal(self.mean, self.std), self.low, self.high))

    def support(self) -> tuple[Interval, ...]:
        return ((self.low, self.high),)

    def to_spec(self) -> Any:
        return {"normal": {"mean": self.mean, "std": self.std, "low": self.low, "high": self.high}}


@dataclass(frozen=True)
class Categorical:
    """One of finitely many values, uniformly or with the given probabilities."""

    values: tuple[float, ...]
    probs: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        values = tuple(_number(v, "categorical value") for v in self.values)
        if not values:
            raise ValueError("a categorical distribution needs at least one value")
        object.__setattr__(self, "values", values)
        if self.probs is not None:
            probs = tuple(_number(p, "categorical probability") for p in self.probs)
            if len(probs) != len(values) or any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0):
                raise ValueError(
                    f"categorical probs {list(probs)} must be {len(values)} non-negative numbers summing to 1"
                )
            object.__setattr__(self, "probs", probs)

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.values[int(rng.choice(len(self.values), p=self.probs))])

    def support(self) -> tuple[Interval, ...]:
        return tuple((v, v) for v in sorted(set(self.values)))

    def to_spec(self) -> Any:
        if self.probs is None:
            return {"categorical": list(self.values)}
        return {"categorical": list(self.values), "probs": list(self.probs)}


#: The kinds of feature distribution a spec can name.
FEATURE_DISTRIBUTIONS: Registry[type] = Registry("context distribution")
FEATURE_DISTRIBUTIONS.register("fixed", Fixed, help="one value: 9.8")
FEATURE_DISTRIBUTIONS.register("uniform", Uniform, help="uniform over intervals: '4.9:14.7' or '1:2|3:4'")
FEATURE_DISTRIBUTIONS.register(
    "normal", TruncatedNormal, help="normal truncated to bounds: 'normal:MEAN,STD[,LOW,HIGH]'"
)
FEATURE_DISTRIBUTIONS.register("categorical", Categorical, help="finitely many values: '5,9.8,15'")

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _parse_text(text: str, bounds: Interval | None) -> FeatureDistribution:
    t = text.strip().replace(" ", "")
    if re.fullmatch(_FLOAT, t):
        return Fixed(float(t))
    if re.fullmatch(rf"{_FLOAT}:{_FLOAT}(\|{_FLOAT}:{_FLOAT})*", t):
        return Uniform(tuple(tuple(float(x) for x in part.split(":")) for part in t.split("|")))  # type: ignore[arg-type]
    if re.fullmatch(rf"{_FLOAT}(,{_FLOAT})+", t):
        return Categorical(tuple(float(x) for x in t.split(",")))
    m = re.fullmatch(rf"normal:({_FLOAT}(?:,{_FLOAT}){{1,3}})", t)
    if m:
        nums = [float(x) for x in m.group(1).split(",")]
        if len(nums) == 2:
            if bounds is None:
                raise ValueError(f"normal spec {text!r} needs truncation bounds: 'normal:MEAN,STD,LOW,HIGH'")
            nums += list(bounds)
        if len(nums) != 4:
            raise ValueError(f"normal spec {text!r} must be 'normal:MEAN,STD' or 'normal:MEAN,STD,LOW,HIGH'")
        return TruncatedNormal(*nums)
    raise ValueError(
        f"cannot read context distribution {text!r}; write a value '9.8', a range '4.9:14.7', ranges "
        "'4.9:7.35|12.25:14.7', values '5,9.8,15' or a truncated normal 'normal:9.8,2'"
    )


def parse_feature(spec: Any, bounds: Interval | None = None) -> FeatureDistribution:
    """Reads one feature's distribution from a spec.

    Accepted specs: a number (fixed); a string (``"4.9:14.7"``, ``"4.9:7|12:14.7"``, ``"5,9.8,15"``,
    ``"normal:9.8,2"``); a list of numbers (categorical); a dict with one key naming the kind
    (``{"uniform": [lo, hi]}``, ``{"uniform": [[lo, hi], ...]}``, ``{"normal": {"mean": .., "std": ..,
    "low": .., "high": ..}}``, ``{"categorical": [...], "probs": [...]}``, ``{"fixed": v}``); or a
    :class:`FeatureDistribution`. ``bounds`` fills a normal's missing truncation bounds.
    """
    if isinstance(spec, (Fixed, Uniform, TruncatedNormal, Categorical)):
        return spec
    if isinstance(spec, str):
        return _parse_text(spec, bounds)
    if isinstance(spec, (int, float, np.integer, np.floating)) and not isinstance(spec, bool):
        return Fixed(float(spec))
    if isinstance(spec, (list, tuple)):
        return Categorical(tuple(spec))
    if isinstance(spec, Mapping):
        kinds = [k for k in spec if k != "probs"]
        if len(kinds) != 1:
            raise ValueError(
                f"a context distribution dict names one kind, got {sorted(spec)}; "
                f"valid kinds: {', '.join(FEATURE_DISTRIBUTIONS.names())}"
            )
        kind = kinds[0]
        FEATURE_DISTRIBUTIONS.get(kind)  # KeyError with "did you mean"
        arg = spec[kind]
        if kind == "fixed":
            return Fixed(arg)
        if kind == "uniform":
            return Uniform(tuple(arg))
        if kind == "categorical":
            return Categorical(tuple(arg), tuple(spec["probs"]) if spec.get("probs") is not None else None)
        if isinstance(arg, Mapping):
            low, high = arg.get("low"), arg.get("high")
            if (low is None or high is None) and bounds is None:
                raise ValueError("a normal context distribution needs 'low' and 'high' truncation bounds")
            return TruncatedNormal(
                arg["mean"],
                arg["std"],
                bounds[0] if low is None else low,
                bounds[1] if high is None else high,
            )  # type: ignore[index]
        return _parse_text("normal:" + ",".join(str(x) for x in arg), bounds)
    raise TypeError(f"cannot read context distribution {spec!r} ({type(spec).__name__})")


@dataclass(frozen=True)
class ContextDistribution:
    """A seeded source of contexts: a mixture of components of independent per-feature distributions.

    Features a component does not name are left out of its draws (the env fills in its defaults).

    Args:
        components: One or more mappings ``feature -> FeatureDistribution`` (or spec, see
            :func:`parse_feature`).
        weights: Mixture weights (default: equal).

    Example:
        >>> d = ContextDistribution.parse({"gravity": "4.9:14.7", "length": 0.5})
        >>> ctx = d.sample(np.random.default_rng(0))
        >>> 4.9 <= ctx["gravity"] <= 14.7 and ctx["length"] == 0.5
        True
    """

    components: tuple[Mapping[str, FeatureDistribution], ...]
    weights: tuple[float, ...] | None = None
    _features: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        comps = self.components
        if isinstance(comps, Mapping):
            comps = (comps,)
        out = []
        for comp in comps:
            if not isinstance(comp, Mapping):
                raise TypeError(
                    f"a context distribution component maps features to distributions, got {comp!r}"
                )
            out.append({str(k): parse_feature(v) for k, v in comp.items()})
        if not out:
            raise ValueError("a context distribution needs at least one component")
        object.__setattr__(self, "components", tuple(out))
        if self.weights is not None:
            w = tuple(_number(x, "mixture weight") for x in self.weights)
            if len(w) != len(out) or any(x < 0 for x in w) or sum(w) <= 0:
                raise ValueError(
                    f"mixture weights {list(w)} must be {len(out)} non-negative numbers, not all 0"
                )
            object.__setattr__(self, "weights", tuple(x / sum(w) for x in w))
        names: list[str] = []
        for comp in out:
            names += [k for k in comp if k not in names]
        object.__setattr__(self, "_features", tuple(names))

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec: Any, bounds: Mapping[str, Interval] | None = None) -> ContextDistribution:
        """Reads a distribution: ``{feature: spec}`` (one component), a list of them (a mixture with
        equal weights), ``{"mixture": [...], "weights": [...]}``, or a ContextDistribution."""
        if isinstance(spec, ContextDistribution):
            return spec
        bounds = bounds or {}
        if isinstance(spec, Mapping) and "mixture" in spec:
            comps = [cls.parse(c, bounds).components[0] for c in spec["mixture"]]
            return cls(tuple(comps), tuple(spec["weights"]) if spec.get("weights") else None)
        if isinstance(spec, (list, tuple)):
            comps = [cls.parse(c, bounds).components[0] for c in spec]
            return cls(tuple(comps))
        if isinstance(spec, Mapping):
            return cls(({str(k): parse_feature(v, bounds.get(str(k))) for k, v in spec.items()},))
        raise TypeError(f"cannot read context distribution {spec!r}; give a mapping feature -> spec")

    @classmethod
    def of(cls, contexts: Sequence[Mapping[str, float]]) -> ContextDistribution:
        """An explicit list of contexts, each drawn with equal probability."""
        if not contexts:
            raise ValueError("an explicit context list needs at least one context")
        return cls(tuple({k: Fixed(v) for k, v in c.items()} for c in contexts))

    @classmethod
    def fixed(cls, context: Mapping[str, float]) -> ContextDistribution:
        """Always ``context``."""
        return cls.of([context])

    # -- queries ------------------------------------------------------------------------------------
    @property
    def features(self) -> tuple[str, ...]:
        """Every feature some component names, in first-seen order."""
        return self._features

    def sample(self, rng: np.random.Generator) -> Context:
        """One context drawn with ``rng`` (only the features of the chosen component)."""
        i = 0
        if len(self.components) > 1:
            i = int(rng.choice(len(self.components), p=self.weights))
        return {name: dist.sample(rng) for name, dist in self.components[i].items()}

    def finite_contexts(self) -> list[tuple[Context, float]] | None:
        """``[(context, probability), ...]`` when the distribution has finitely many contexts (every
        feature :class:`Fixed` or :class:`Categorical`: an explicit list of contexts or values), else
        None; equal contexts are merged, their probabilities added."""
        import itertools

        weights = self.weights or tuple(1.0 / len(self.components) for _ in self.components)
        merged: dict[tuple[tuple[str, float], ...], float] = {}
        for comp, w in zip(self.components, weights):
            choices = []
            for name, d in comp.items():
                if isinstance(d, Fixed):
                    choices.append([(name, d.value, 1.0)])
                elif isinstance(d, Categorical):
                    probs = d.probs or tuple(1.0 / len(d.values) for _ in d.values)
                    choices.append([(name, v, p) for v, p in zip(d.values, probs)])
                else:
                    return None
            for combo in itertools.product(*choices):
                key = tuple((name, float(v)) for name, v, _ in combo)
                merged[key] = merged.get(key, 0.0) + w * math.prod(p for _, _, p in combo)
        return [(dict(key), p) for key, p in merged.items() if p > 0]

    def support(self, feature: str, default: float | None = None) -> tuple[Interval, ...]:
        """The union, over components, of the intervals ``feature`` can take (``default`` for a
        component that does not name it); merged and sorted."""
        parts: list[Interval] = []
        for comp in self.components:
            if feature in comp:
                parts += comp[feature].support()
            elif default is not None:
                parts.append((default, default))
        return merge_intervals(parts)

    def holds(self, context: Mapping[str, float], defaults: Mapping[str, float] | None = None) -> bool:
        """True if one component can draw ``context``: each of its values lies in that component's
        support for the feature (``defaults[feature]``, else the value itself, where the component
        does not name it)."""
        defaults = defaults or {}
        for comp in self.components:
            if all(
                within([(v, v)], comp[f].support() if f in comp else [(defaults.get(f, v),) * 2])
                for f, v in context.items()
            ):
                return True
        return False

    def hull(self, feature: str, default: float | None = None) -> Interval | None:
        """The smallest interval holding ``feature``'s support (None if it never occurs)."""
        sup = self.support(feature, default)
        return (sup[0][0], sup[-1][1]) if sup else None

    def to_spec(self) -> Any:
        """A YAML/JSON-friendly spec that :meth:`parse` reads back."""
        comps = [{k: d.to_spec() for k, d in comp.items()} for comp in self.components]
        if len(comps) == 1:
            return comps[0]
        if self.weights is not None:
            return {"mixture": comps, "weights": list(self.weights)}
        return comps

    def describe(self) -> str:
        """A short human form: ``gravity U[4.9, 14.7]`` or ``3 components``."""

        def one(comp: Mapping[str, FeatureDistribution]) -> str:
            parts = []
            for k, d in comp.items():
                if isinstance(d, Fixed):
                    parts.append(f"{k}={d.value:g}")
                elif isinstance(d, Uniform):
                    parts.append(k + " U" + "u".join(f"[{lo:g}, {hi:g}]" for lo, hi in d.intervals))
                elif isinstance(d, TruncatedNormal):
                    parts.append(f"{k} N({d.mean:g}, {d.std:g}) in [{d.low:g}, {d.high:g}]")
                else:
                    parts.append(f"{k} in {{{', '.join(f'{v:g}' for v in d.values)}}}")  # type: ignore[attr-defined]
            return ", ".join(parts) or "default"

        if len(self.components) == 1:
            return one(self.components[0])
        if len(self.components) <= 3:
            return " | ".join(one(c) for c in self.components)
        return f"{len(self.components)} components over {', '.join(self.features)}"


def merge_intervals(parts: Sequence[Interval]) -> tuple[Interval, ...]:
    """Sorted union of closed intervals; touching or overlapping intervals merge."""
    out: list[list[float]] = []
    for lo, hi in sorted(parts):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def intervals_overlap(a: Sequence[Interval], b: Sequence[Interval]) -> bool:
    """True if two unions of closed intervals share a value that either side can actually draw.

    Two ranges overlap when their interiors meet: touching at an end (a train range ``[5, 10]`` and a
    test range ``[10, 15]``) is not an overlap, as the shared end has probability zero under
    continuous sampling. A point, which is drawn, overlaps a range that holds it, ends included (closed
    intervals): test gravity ``14.7`` against training ``[4.9, 14.7]`` is a training value, not held out.
    Two points overlap when equal.
    """
    for a_lo, a_hi in a:
        for b_lo, b_hi in b:
            a_pt, b_pt = a_lo == a_hi, b_lo == b_hi
            if a_pt and b_pt:
                if a_lo == b_lo:
                    return True
            elif a_pt:
                if b_lo <= a_lo <= b_hi:
                    return True
            elif b_pt:
                if a_lo <= b_lo <= a_hi:
                    return True
            elif max(a_lo, b_lo) < min(a_hi, b_hi):
                return True
    return False


def within(inner: Sequence[Interval], outer: Sequence[Interval]) -> bool:
    """True if every interval of ``inner`` lies inside one interval of ``outer`` (closed)."""
    return all(any(o_lo <= lo and hi <= o_hi for o_lo, o_hi in outer) for lo, hi in inner)


__all__ = [
    "FEATURE_DISTRIBUTIONS",
    "Categorical",
    "Context",
    "ContextDistribution",
    "FeatureDistribution",
    "Fixed",
    "TruncatedNormal",
    "Uniform",
    "intervals_overlap",
    "merge_intervals",
    "parse_feature",
    "within",
]
