"""The text of report tables: Markdown, CSV, and estimates with their confidence intervals."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from heldout.analysis import stats as S


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (a ``|`` inside a cell is escaped, so it does not split the cell)."""

    def cell(c: Any) -> str:
        return str(c).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text; floats with 6 significant digits, None as an empty cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    return buf.getvalue()


def est_text(est: S.Estimate | None, digits: int = 2, n: int | None = None) -> str:
    """``"1.23 [0.98, 1.40]"``, or ``"1.23 (n=1, no CI)"``, or ``"-"``."""
    if est is None:
        return "-"
    if est.ci is None:
        note = f"n={n}, no CI" if n is not None else "no CI"
        return f"{est.value:.{digits}f} ({note})"
    return f"{est.value:.{digits}f} [{est.ci[0]:.{digits}f}, {est.ci[1]:.{digits}f}]"


def ci_cols(est: S.Estimate | None) -> list[float | None]:
    """``[value, ci_low, ci_high]`` of an estimate (Nones where missing)."""
    if est is None:
        return [None, None, None]
    return [est.value, *(est.ci if est.ci is not None else (None, None))]
