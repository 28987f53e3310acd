"""gymnasium and vector wrappers, grouped by what they change. Never imports torch or SB3."""

from __future__ import annotations

from heldout.wrappers.observation import VisibleContext

__all__ = ["VisibleContext"]
