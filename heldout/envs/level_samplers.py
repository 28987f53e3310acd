"""Level samplers: which level an env slot plays next.

A sampler plugs into the training (or evaluation) env, not into agents (DESIGN.md). The vectorized
Procgen env asks ``next_level(slot)`` whenever an episode in ``slot`` ends and sets that level into the
slot through procgen's per-env state API; ``None`` lets the native core pick from its own range.
Samplers that learn from episodes (e.g. PLR, Jiang et al. 2021) also get ``episode_done``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class LevelSampler(Protocol):
    """The interface the vectorized env calls."""

    def next_level(self, slot: int) -> int | None:
        """The level ``slot`` plays next, or None to let the env's native range decide."""

    def episode_done(self, slot: int, level: int, episode_return: float, length: int) -> None:
        """Called once per finished episode, before ``next_level`` for the same slot."""


class UniformLevelSampler:
    """Draws each next level uniformly from an explicit list.

    Args:
        levels: The seeds to draw from.
        rng: The generator (derive it from the run seed).
    """

    def __init__(self, levels: Sequence[int], rng: np.random.Generator) -> None:
        if len(levels) == 0:
            raise ValueError("UniformLevelSampler needs at least one level")
        self.levels = np.asarray(list(levels), dtype=np.int64)
        self.rng = rng

    def next_level(self, slot: int) -> int | None:
        return int(self.levels[self.rng.integers(len(self.levels))])

    def episode_done(self, slot: int, level: int, episode_return: float, length: int) -> None:
        pass

    def get_state(self) -> dict:
        """The generator's state (JSON), for checkpoints."""
        return {"rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class SequentialLevelSampler:
    """Hands out a fixed list of levels in order, one episode each, across all slots.

    Used for evaluation on a fixed test list: episode ``i`` (in order of hand-out) plays
    ``levels[i]``. Once the list is exhausted the sampler returns ``None`` and :attr:`exhausted`
    is True; the evaluator ignores episodes started after that.
    """

    def __init__(self, levels: Sequence[int]) -> None:
        self._queue: deque[int] = deque(int(x) for x in levels)
        self.handed_out = 0
        #: slot -> index (in hand-out order) of the episode the slot is playing, None once exhausted.
        self.assignment: dict[int, int | None] = {}

    @property
    def exhausted(self) -> bool:
        return not self._queue

    def next_level(self, slot: int) -> int | None:
        if not self._queue:
            self.assignment[slot] = None
            return None
        self.assignment[slot] = self.handed_out
        self.handed_out += 1
        return self._queue.popleft()

    def episode_done(self, slot: int, level: int, episode_return: float, length: int) -> None:
        pass
