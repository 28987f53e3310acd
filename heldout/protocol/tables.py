"""The plain-text tables a run prints: train/test returns and the gap, returns by context bin.

``heldout train`` and ``heldout eval`` print them from a run's ``summary.json``; ``heldout report``
(:mod:`heldout.analysis.report`) reuses them.
"""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def split_table(summary: dict[str, Any]) -> str:
    """The train/test table: one row per split, then the generalization gap.

    Args:
        summary: The ``summary.json`` dict of a run (``splits``, ``gap``, ``normalized_gap``).
    """
    header = [
        "split",
        "contexts" if summary.get("kind") == "contexts" else "levels",
        "episodes",
        "mean return",
        "std",
        "stderr",
        "completed",
        "normalised",
    ]
    rows = [header]
    for name, s in summary["splits"].items():
        rows.append(
            [
                name,
                s.get("level_set", "-"),
                str(s["episodes"]),
                _fmt(s["mean"]),
                _fmt(s["std"]),
                _fmt(s["stderr"]),
                _fmt(100 * s["completion_rate"], 0) + "%" if s.get("completion_rate") is not None else "-",
                _fmt(s.get("normalized"), 3),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for k, r in enumerate(rows):
        lines.append(
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if summary.get("gap") is not None:
        gap = f"generalization gap (train - test): {_fmt(summary['gap'])}"
        if summary.get("normalized_gap") is not None:
            gap += f" return, {_fmt(summary['normalized_gap'], 3)} normalised"
        lines.append(gap)
    return "\n".join(lines)


def context_table(summary: dict[str, Any]) -> str:
    """Mean return by context bin, per split and varying feature (empty if the run has no contexts).

    One line per split and feature: ``test  gravity  [14.7, 16.66): 312.4 (n=20)  ...``.
    """
    lines = []
    for name, s in summary["splits"].items():
        for feature, bins in (s.get("by_context") or {}).items():
            cells = []
            for b in bins:
                mean = "-" if b["mean"] is None else f"{b['mean']:.1f}"
                cells.append(f"[{b['lo']:.4g}, {b['hi']:.4g}): {mean} (n={b['episodes']})")
            lines.append(f"{name:<6} {feature:<12} " + "  ".join(cells))
    if not lines:
        return ""
    return "mean return by context bin:\n" + "\n".join(lines)
