"""Context spaces: the named, bounded features that set a contextual env's dynamics.

Each contextual env declares a :class:`ContextSpace`: for every feature its name, default (the
value of gymnasium's own env), bounds and unit. Contexts and context distributions are checked
against it before any episode runs: an unknown feature or a value out of bounds raises ValueError
naming the feature, the value and the valid bounds.

Reference:
    Benjamins et al. 2023, "Contextualize Me - The Case for Context in Reinforcement Learning",
    TMLR (the CARL benchmark's context features and bounds).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from heldout.contexts import Context, ContextDistribution
from heldout.registry import Registry


@dataclass(frozen=True)
class ContextFeature:
    """One context feature.

    Attributes:
        name: The feature's name (``"gravity"``).
        default: Its value in gymnasium's own env.
        lower: Smallest allowed value.
        upper: Largest allowed value.
        unit: Physical unit (``"m/s^2"``; ``""`` for none).
        description: What it changes.
    """

    name: str
    default: float
    lower: float
    upper: float
    unit: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper) and self.lower < self.upper):
            raise ValueError(
                f"feature {self.name!r}: bounds [{self.lower}, {self.upper}] must be finite, low < high"
            )
        if not self.lower <= self.default <= self.upper:
            raise ValueError(
                f"feature {self.name!r}: default {self.default} outside [{self.lower}, {self.upper}]"
            )

    def describe_bounds(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"[{self.lower:g}, {self.upper:g}]{unit}"

    def check(self, value: object) -> float:
        """Returns ``value`` as a float if it lies within the bounds, else raises ValueError/TypeError."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"context feature {self.name!r} must be a number, got {value!r}")
        v = float(value)
        if not (math.isfinite(v) and self.lower <= v <= self.upper):
            raise ValueError(
                f"context feature {self.name!r} = {value!r} is out of bounds; valid: {self.describe_bounds()}"
            )
        return v


class ContextSpace:
    """The declared features of one contextual env, with lookup, checks and normalisation.

    Args:
        features: The features, in the order they are concatenated into visible contexts.

    Example:
        >>> space = ContextSpace([ContextFeature("gravity", 9.8, 0.98, 29.4, "m/s^2")])
        >>> space.validate({"gravity": 12.0})
        {'gravity': 12.0}
        >>> space.validate({"gravity": 100.0})
        Traceback (most recent call last):
        ...
        ValueError: context feature 'gravity' = 100.0 is out of bounds; valid: [0.98, 29.4] m/s^2
    """

    def __init__(self, features: Sequence[ContextFeature], kind: str = "context feature") -> None:
        self._features: Registry[ContextFeature] = Registry(kind)
        self._order: list[str] = []
        for f in features:
            self._features.register(f.name, f, help=f.description)
            self._order.append(f.name)

    # -- lookup -------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Feature names in declaration order."""
        return list(self._order)

    def __iter__(self) -> Iterator[ContextFeature]:
        return (self._features.get(n) for n in self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._features

    def feature(self, name: str) -> ContextFeature:
        """The feature called ``name``; an unknown name raises ValueError with the valid names."""
        if name not in self._features:
            raise ValueError(self._features.unknown_message(name))
        return self._features.get(name)

    def defaults(self) -> Context:
        """The default context (gymnasium's own env)."""
        return {f.name: float(f.default) for f in self}

    def bounds(self) -> dict[str, tuple[float, float]]:
        """``feature -> (lower, upper)``."""
        return {f.name: (float(f.lower), float(f.upper)) for f in self}

    # -- checks -------------------------------------------------------------------------------------
    def validate(self, context: Mapping[str, object] | None) -> Context:
        """The full context: ``context``'s values checked against the bounds, defaults for the rest.

        Raises:
            ValueError: for an unknown feature (naming the valid ones) or an out-of-bounds value
                (naming the value and the bounds).
        """
        if context is not None and not isinstance(context, Mapping):
            raise TypeError(f"a context maps feature names to numbers, got {context!r}")
        out = self.defaults()
        for name, value in (context or {}).items():
            if name not in self._features:
                raise ValueError(f"{self._features.unknown_message(name)} (given {name}={value!r})")
            out[name] = self.feature(str(name)).check(value)
        return out

    def check_distribution(self, dist: ContextDistribution, what: str = "context") -> ContextDistribution:
        """Raises ValueError if ``dist`` names an unknown feature or can draw a value out of bounds."""
        for comp in dist.components:
            for name, fd in comp.items():
                feat = self.feature(name)
                for lo, hi in fd.support():
                    if lo < feat.lower or hi > feat.upper:
                        bad = lo if lo < feat.lower else hi
                        raise ValueError(
                            f"{what} distribution of {name!r} reaches {bad:g}, out of bounds; "
                            f"valid: {feat.describe_bounds()}"
                        )
        return dist

    def _ranges(self, scale: Mapping[str, tuple[float, float]] | None) -> list[tuple[float, float]]:
        scale = scale or {}
        out = []
        for f in self:
            lo, hi = scale.get(f.name, (f.lower, f.upper))
            out.append((float(lo), float(hi)) if hi > lo else (f.lower, f.upper))
        return out

    def normalise(
        self, context: Mapping[str, float], scale: Mapping[str, tuple[float, float]] | None = None
    ) -> np.ndarray:
        """The context as a float32 vector: ``(value - lo) / (hi - lo)`` per feature.

        ``[lo, hi]`` is the feature's declared bounds (values in [0, 1]), or the range ``scale`` gives
        for it (e.g. the training distribution's: its range maps to [0, 1], held-out values beyond).
        """
        return np.array(
            [(float(context[f.name]) - lo) / (hi - lo) for f, (lo, hi) in zip(self, self._ranges(scale))],
            dtype=np.float32,
        )

    def normalised_bounds(
        self, scale: Mapping[str, tuple[float, float]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The float32 ``(low, high)`` of :meth:`normalise` over the declared bounds: ``(0, 1)`` each
        without ``scale``; with it, every in-bounds context still normalises inside them."""
        ranges = self._ranges(scale)
        low = [(f.lower - lo) / (hi - lo) for f, (lo, hi) in zip(self, ranges)]
        high = [(f.upper - lo) / (hi - lo) for f, (lo, hi) in zip(self, ranges)]
        return np.array(low, dtype=np.float32), np.array(high, dtype=np.float32)

    def describe(self) -> str:
        """One line per feature: name, default, bounds, unit, description."""
        return "\n".join(
            f"{f.name:<20} default {f.default:<8g} {f.describe_bounds():<24} {f.description}" for f in self
        )

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {
            f.name: {"default": f.default, "lower": f.lower, "upper": f.upper, "unit": f.unit} for f in self
        }
