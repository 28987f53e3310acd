"""A finding as plain data: its source, its claim and direction, its settings per scale, its statistic.

A finding is one known result of the field written as a claim a sweep can test: **who** compares
(one arm and its train/test gap, two arms, or one config key stepped over values), **what** decides
it (the statistic, :data:`STATISTICS`) and **in which direction** the source says it goes. Each
scale (:data:`SCALES`) gives the settings: ``cpu`` a budget a 2-core machine runs in minutes,
``paper`` the published protocol. :meth:`Finding.spec` turns a scale into the mapping
``heldout sweep`` reads (:func:`heldout.sweep.spec.parse_spec`), so a finding runs, resumes and
reports exactly as any sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The scales every finding has: a CPU budget and the published protocol.
SCALES: tuple[str, ...] = ("cpu", "paper")

#: What decides a finding, each computed over seeds by :mod:`heldout.experiments.findings.verdict`.
STATISTICS: dict[str, str] = {
    "gap": "IQM over seeds of train - test return, with a stratified bootstrap CI",
    "difference": "IQM of test return of arm A - IQM of arm B, with a stratified bootstrap CI "
    "(and P(A > B) beside it)",
    "slope": "slope of the mean gap (train - test) against log(value), with a stratified bootstrap CI",
}


@dataclass(frozen=True)
class Scale:
    """The settings of a finding at one scale.

    Attributes:
        base: Config fields every run shares (``preset`` among them), as a sweep spec's ``base``.
        values: The values of the finding's ``key`` (two arms, A first; or the steps of a slope);
            empty for a ``gap`` finding.
        seeds: Seeds per arm (0 .. seeds-1).
        protocol: One sentence: what this scale is (the budget, or the paper's protocol).
        published: The published figures to set ours beside (empty if the source gives none).
    """

    base: dict[str, Any]
    values: tuple[Any, ...] = ()
    seeds: int = 5
    protocol: str = ""
    published: str = ""


@dataclass(frozen=True)
class Finding:
    """One known result as a runnable claim.

    Attributes:
        name: Its name on the command line.
        source: The paper and its figure or table.
        claim: The claim in one sentence.
        direction: The claim as a sign: ``+1`` the statistic is > 0, ``-1`` it is < 0.
        statistic: A key of :data:`STATISTICS`.
        key: The config key the arms (``difference``) or the steps (``slope``) differ in (a
            :class:`~heldout.protocol.config.TrainConfig` field or ``FIELD.KEY``); None for ``gap``.
        scales: ``{scale: Scale}`` for every name of :data:`SCALES`.
        shift: An evaluation-only wrapper (``heldout eval --wrapper``'s ``NAME[:key=value,...]``):
            the test return is measured on the held-out levels under it, a shift no run trained on
            (e.g. new colours); None: on the test split as trained.
    """

    name: str
    source: str
    claim: str
    direction: int
    statistic: str
    key: str | None
    scales: dict[str, Scale] = field(default_factory=dict)
    shift: str | None = None

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"finding {self.name!r}: unknown statistic {self.statistic!r}")
        if self.direction not in (1, -1):
            raise ValueError(f"finding {self.name!r}: direction must be +1 or -1")
        if set(self.scales) != set(SCALES):
            raise ValueError(f"finding {self.name!r}: needs exactly the scales {', '.join(SCALES)}")
        for scale, s in self.scales.items():
            wanted = {"gap": 0, "difference": 2}.get(self.statistic)
            if (wanted is not None and len(s.values) != wanted) or (
                self.statistic == "slope" and len(s.values) < 2
            ):
                raise ValueError(f"finding {self.name!r}: scale {scale} has {len(s.values)} values")
            if (self.key is None) != (self.statistic == "gap"):
                raise ValueError(f"finding {self.name!r}: a key is needed exactly when arms or steps differ")

    @property
    def test_split(self) -> str:
        """The split the test return is read from: ``test``, or under :attr:`shift` the split
        ``heldout eval --wrapper SHIFT`` records (``test-wrapper-<slug>``)."""
        if self.shift is None:
            return "test"
        from heldout.protocol.reevaluate import wrapper_suffix
        from heldout.wrappers import WrapperSpec

        return "test" + wrapper_suffix([WrapperSpec.parse(self.shift)])

    def folder(self, scale: str) -> str:
        """The sweep folder of a scale: ``findings/<name>-<scale>``."""
        return f"findings/{self.name}-{scale}"

    def spec(self, scale: str, seeds: int | None = None) -> dict[str, Any]:
        """The sweep spec of a scale, as :func:`heldout.sweep.spec.parse_spec` reads it.

        Args:
            scale: A name of :data:`SCALES`.
            seeds: Seeds per arm or step (0 .. seeds-1) instead of the scale's own, e.g. the number a
                power estimate asks for (the folder and every other setting stay the scale's).
        """
        s = self.scales[scale]
        grid: dict[str, list[Any]] = {"seed": list(range(s.seeds if seeds is None else seeds))}
        if self.key is not None:
            grid[self.key] = list(s.values)
        return {
            "name": f"{self.name}-{scale}",
            "description": f"finding {self.name} ({scale}): {self.claim}",
            "folder": self.folder(scale),
            "base": dict(s.base),
            "grid": grid,
        }

    def arm_of(self, config: dict[str, Any]) -> Any:
        """The value of :attr:`key` in a run's ``config.yaml`` (None for a ``gap`` finding)."""
        if self.key is None:
            return None
        value: Any = config
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value
