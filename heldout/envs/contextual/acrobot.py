"""Contextual Acrobot: gymnasium's ``Acrobot-v1`` with link lengths, masses, centres of mass and
moment of inertia set by a context (Benjamins et al. 2023, "Contextualize Me", TMLR; CARL's Acrobot).

gymnasium keeps these as class attributes; the context sets them on the instance, so other envs are
untouched. The default context reproduces ``Acrobot-v1`` exactly.

The second link's length is not a feature: gymnasium's equations of motion use only its centre of
mass (``link_com_pos_2``) and the moment of inertia; ``LINK_LENGTH_2`` changes the drawing alone
(the test that every feature changes the dynamics found this).
"""

from __future__ import annotations

from gymnasium.envs.classic_control.acrobot import AcrobotEnv

from heldout.contexts import Context
from heldout.envs.contextual.base import ContextualEnv
from heldout.envs.contextual.space import ContextFeature, ContextSpace


class ContextualAcrobot(ContextualEnv, AcrobotEnv):
    """Acrobot whose links come from a context (``heldout/ContextualAcrobot-v0``)."""

    context_space = ContextSpace(
        [
            ContextFeature("link_length_1", 1.0, 0.2, 5.0, "m", "length of the first link"),
            ContextFeature("link_mass_1", 1.0, 0.1, 10.0, "kg", "mass of the first link"),
            ContextFeature("link_mass_2", 1.0, 0.1, 10.0, "kg", "mass of the second link"),
            ContextFeature("link_com_pos_1", 0.5, 0.05, 1.0, "m", "centre of mass of the first link"),
            ContextFeature("link_com_pos_2", 0.5, 0.05, 1.0, "m", "centre of mass of the second link"),
            ContextFeature("link_moi", 1.0, 0.1, 10.0, "kg m^2", "moment of inertia of both links"),
        ],
        kind="Acrobot context feature",
    )
    env_id = "heldout/ContextualAcrobot-v0"
    gymnasium_id = "Acrobot-v1"
    max_episode_steps = 500
    success_on = "terminated"  # swung the tip above the line

    def _apply_context(self, context: Context) -> None:
        self.LINK_LENGTH_1 = context["link_length_1"]
        self.LINK_MASS_1 = context["link_mass_1"]
        self.LINK_MASS_2 = context["link_mass_2"]
        self.LINK_COM_POS_1 = context["link_com_pos_1"]
        self.LINK_COM_POS_2 = context["link_com_pos_2"]
        self.LINK_MOI = context["link_moi"]
