"""The contextual env base: a gymnasium env whose dynamics are set by a context at each reset.

A family subclasses both :class:`ContextualEnv` and gymnasium's own env (``class
ContextualCartPole(ContextualEnv, CartPoleEnv)``), declares its :class:`ContextSpace` and writes
:meth:`ContextualEnv._apply_context`, which sets the physics attributes explicitly. At every reset the
env takes its context from, in order: ``reset(options={"context": {...}})``; the context
distribution given at construction (a fresh draw per reset, from a generator seeded by
``reset(seed=...)`` and independent of the env's own ``np_random``); or the fixed ``context`` given at
construction (default: gymnasium's values, which reproduce gymnasium's env exactly).

Every ``reset`` and ``step`` reports the episode's full context in ``info["context"]``.

Reference:
    Benjamins et al. 2023, "Contextualize Me - The Case for Context in Reinforcement Learning", TMLR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium
import numpy as np

from heldout.contexts import Context, ContextDistribution
from heldout.envs.contextual.space import ContextSpace

#: Mixed into the reset seed so that context draws and the env's own ``np_random`` are independent.
CONTEXT_STREAM = 0x_C0_47_E7


class ContextualEnv(gymnasium.Env):
    """Mixin for a gymnasium env with a context space (put it first among the bases).

    Args:
        context: A fixed context (features left out keep their defaults).
        contexts: A :class:`~heldout.contexts.ContextDistribution` (or its spec, e.g.
            ``{"gravity": "4.9:14.7"}``) to draw a fresh context from at every reset. Overrides
            ``context`` for the features it names.
        **kwargs: Passed on to gymnasium's env (``render_mode``, ...).

    Class attributes a family sets:
        context_space: The declared features.
        env_id: Its gymnasium id, ``heldout/<Name>-v0``.
        gymnasium_id: The id of gymnasium's own env, which the default context reproduces exactly.
        max_episode_steps: The time limit of gymnasium's own id.
        success_on: ``"terminated"`` (reaching a goal), ``"truncated"`` (surviving to the time limit)
            or None (no notion of success, e.g. Pendulum: every episode runs to its time limit):
            what counts as completing an episode in evaluation records (None: recorded as unknown,
            shown as "-").
    """

    context_space: ClassVar[ContextSpace]
    env_id: ClassVar[str]
    gymnasium_id: ClassVar[str]
    max_episode_steps: ClassVar[int]
    success_on: ClassVar[str | None] = "terminated"

    def __init__(
        self,
        context: Mapping[str, float] | None = None,
        contexts: ContextDistribution | Mapping[str, Any] | list | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        space = type(self).context_space
        self.base_context: Context = space.validate(context)
        self.distribution: ContextDistribution | None = None
        if contexts is not None:
            dist = ContextDistribution.parse(contexts, space.bounds())
            self.distribution = space.check_distribution(dist)
        self._context_rng: np.random.Generator | None = None
        self.context: Context = dict(self.base_context)
        self._apply_context(self.context)

    def _apply_context(self, context: Context) -> None:
        """Sets the env's physics from ``context`` (a full, checked context). Families override this."""
        raise NotImplementedError

    def completed_episode(self, terminated: bool, truncated: bool) -> bool | None:
        """Whether an episode that just ended completed its task (see ``success_on``; None: the env
        has no notion of success)."""
        if type(self).success_on is None:
            return None
        if type(self).success_on == "truncated":
            return bool(truncated and not terminated)
        return bool(terminated)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        options = dict(options or {})
        requested = options.pop("context", None)
        if seed is not None:
            self._context_rng = np.random.default_rng(np.random.SeedSequence([int(seed), CONTEXT_STREAM]))
        elif self._context_rng is None:
            self._context_rng = np.random.default_rng()
        space = type(self).context_space
        if requested is not None:
            context = space.validate({**self.base_context, **requested})
        elif self.distribution is not None:
            context = space.validate({**self.base_context, **self.distribution.sample(self._context_rng)})
        else:
            context = dict(self.base_context)
        self.context = context
        self._apply_context(context)
        obs, info = super().reset(seed=seed, options=options or None)  # type: ignore[misc]
        info["context"] = dict(context)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)  # type: ignore[misc]
        info["context"] = dict(self.context)
        return obs, reward, terminated, truncated, info
