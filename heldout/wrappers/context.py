"""Context wrappers: what an agent is told about the context it acts in.

``visible-context`` is the registered, batched form of
:class:`~heldout.wrappers.observation.VisibleContext`: the context, normalised to its declared
bounds, concatenated to a vector observation ("context-aware" agents of Benjamins et al. 2023,
"Contextualize Me - The Case for Context in Reinforcement Learning", TMLR). It reads each row's
context from ``info["context"]``, which every heldout contextual env reports at reset and at every
step, so it runs on a single env and on a ``DummyVecEnv`` of them alike.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from heldout.wrappers.base import BatchWrapper, WrapperContext, register


@register("visible-context", help="the context, normalised to its bounds, appended to vector observations")
class VisibleContextWrapper(BatchWrapper):
    """Appends the normalised context to each (flattened) observation; see the module docstring."""

    kind = "context"

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        if ctx.context_space is None:
            raise TypeError(
                "visible-context needs a contextual env (one with a context_space, e.g. 'cartpole'); "
                f"this env has observation space {ctx.observation_space} and no contexts"
            )
        inner = ctx.observation_space
        if not isinstance(inner, spaces.Box):
            raise TypeError(f"visible-context needs a Box observation space, got {inner}")
        self.ctx = ctx
        self.space_ = ctx.context_space
        n = len(self.space_)
        low = np.concatenate([inner.low.reshape(-1).astype(np.float32), np.zeros(n, np.float32)])
        high = np.concatenate([inner.high.reshape(-1).astype(np.float32), np.ones(n, np.float32)])
        return spaces.Box(low, high, dtype=np.float32)

    def observation(self, obs, env_ids, new_episode, infos):  # type: ignore[no-untyped-def]
        rows = []
        for info in infos:
            if "context" not in info:
                raise KeyError("visible-context: the env's info has no 'context' entry")
            rows.append(self.space_.normalise(info["context"]))
        flat = np.asarray(obs, dtype=np.float32).reshape(len(infos), -1)
        return np.concatenate([flat, np.stack(rows)], axis=1)
