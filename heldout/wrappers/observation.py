"""Observation wrappers.

:class:`VisibleContext` makes a contextual env's context part of what the agent sees: the context,
normalised to its declared bounds (``(value - lower) / (upper - lower)``, in [0, 1]), either
concatenated to a Box observation or given next to it in a Dict observation. Hidden is the default
everywhere in heldout; a visible context is the "context-aware" setting of Benjamins et al. 2023
("Contextualize Me - The Case for Context in Reinforcement Learning", TMLR, section 6).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

#: How the context is shown.
VISIBLE_MODES: tuple[str, ...] = ("concat", "dict")


class VisibleContext(gymnasium.ObservationWrapper, gymnasium.utils.RecordConstructorArgs):
    """Adds the env's current context, normalised to its bounds, to every observation.

    Args:
        env: A contextual env (its ``unwrapped`` has ``context_space`` and ``context``).
        mode: ``"concat"``: a float32 Box, the flattened observation then the context;
            ``"dict"``: ``{"obs": observation, "context": normalised context}``.

    Example:
        >>> import gymnasium, heldout
        >>> env = VisibleContext(gymnasium.make("heldout/ContextualCartPole-v0"), mode="concat")
        >>> env.observation_space.shape
        (10,)
    """

    def __init__(self, env: gymnasium.Env, mode: str = "concat") -> None:
        gymnasium.utils.RecordConstructorArgs.__init__(self, mode=mode)
        gymnasium.ObservationWrapper.__init__(self, env)
        if mode not in VISIBLE_MODES:
            raise ValueError(
                f"unknown visible-context mode {mode!r}; valid modes: {', '.join(VISIBLE_MODES)}"
            )
        space = getattr(env.unwrapped, "context_space", None)
        if space is None:
            raise TypeError(f"{env.unwrapped!r} has no context_space: VisibleContext needs a contextual env")
        self.mode = mode
        self.context_space_ = space
        n = len(space)
        ctx_box = spaces.Box(0.0, 1.0, (n,), np.float32)
        inner = env.observation_space
        if mode == "dict":
            self.observation_space = spaces.Dict({"obs": inner, "context": ctx_box})
        else:
            if not isinstance(inner, spaces.Box):
                raise TypeError(f"concat needs a Box observation space, got {inner}; use mode='dict'")
            low = np.concatenate([inner.low.reshape(-1).astype(np.float32), ctx_box.low])
            high = np.concatenate([inner.high.reshape(-1).astype(np.float32), ctx_box.high])
            self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: Any) -> Any:
        ctx = self.context_space_.normalise(self.env.unwrapped.context)
        if self.mode == "dict":
            return {"obs": observation, "context": ctx}
        return np.concatenate([np.asarray(observation, dtype=np.float32).reshape(-1), ctx])
