"""Contextual CartPole: gymnasium's ``CartPole-v1`` with gravity, masses, pole length, force and
time step set by a context (Benjamins et al. 2023, "Contextualize Me", TMLR; CARL's CartPole).

The default context is gymnasium's (gravity 9.8, cart 1.0 kg, pole 0.1 kg, half-length 0.5 m,
force 10 N, time step 0.02 s) and reproduces ``CartPole-v1`` exactly. Bounds span 0.1x to 3-10x the
defaults, like CARL's, but finite so that a visible context can be normalised.
"""

from __future__ import annotations

from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from heldout.contexts import Context
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.space import ContextFeature, ContextSpace


class ContextualCartPole(ContextualEnv, CartPoleEnv):
    """CartPole whose physics come from a context (``heldout/ContextualCartPole-v0``).

    Features: ``gravity`` (m/s^2), ``masscart`` (kg), ``masspole`` (kg), ``length`` (half the pole's
    length, m, as gymnasium's ``length``), ``force_mag`` (N) and ``tau`` (s between updates). The
    derived ``total_mass`` and ``polemass_length`` are recomputed from them.
    """

    context_space = ContextSpace(
        [
            ContextFeature("gravity", 9.8, 0.98, 29.4, "m/s^2", "gravitational acceleration"),
            ContextFeature("masscart", 1.0, 0.1, 10.0, "kg", "mass of the cart"),
            ContextFeature("masspole", 0.1, 0.01, 1.0, "kg", "mass of the pole"),
            ContextFeature("length", 0.5, 0.05, 5.0, "m", "half the pole's length"),
            ContextFeature("force_mag", 10.0, 1.0, 100.0, "N", "force of a push"),
            ContextFeature("tau", 0.02, 0.005, 0.05, "s", "time between state updates"),
        ],
        kind="CartPole context feature",
    )
    env_id = "heldout/ContextualCartPole-v0"
    gymnasium_id = "CartPole-v1"
    max_episode_steps = 500
    success_on = "truncated"  # balanced until the time limit

    def _apply_context(self, context: Context) -> None:
        self.gravity = context["gravity"]
        self.masscart = context["masscart"]
        self.masspole = context["masspole"]
        self.length = context["length"]
        self.force_mag = context["force_mag"]
        self.tau = context["tau"]
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length
