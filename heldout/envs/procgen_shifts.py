"""Procgen visual shifts: evaluation-time changes of looks that keep every level the same.

Procgen's rendering switches change what an agent sees, not the level it plays (the level is fixed
by its seed): the same trained agent, evaluated on its test levels with backgrounds removed, themes
restricted or assets drawn as monochrome shapes, measures how much it relies on looks (Cobbe et al.
2020, "Leveraging Procedural Generation to Benchmark RL", ICML, appendix on visual options; Kirk et
al. 2023's "visual" generalisation axis). ``heldout eval RUN_DIR --shift NAME`` applies one on top of
the run's own options and records a split named ``<split>-shift-<NAME>``.

``use_generated_assets`` is left out: procgen cannot save the state of a game with generated assets
(it aborts the process), and fixed evaluation level lists need that state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heldout.registry import Registry


@dataclass(frozen=True)
class VisualShift:
    """A named set of procgen visual options applied at evaluation.

    Attributes:
        name: The shift's name (``"backgrounds-off"``).
        options: Procgen options it sets (keys of ``heldout.envs.procgen.VISUAL_OPTIONS``).
        description: What changes on screen.
    """

    name: str
    options: dict[str, bool] = field(default_factory=dict)
    description: str = ""


#: Registered visual shifts.
SHIFTS: Registry[VisualShift] = Registry("shift")


def _register(name: str, options: dict[str, bool], description: str) -> None:
    SHIFTS.register(name, VisualShift(name, options, description), help=description)


_register("backgrounds-off", {"use_backgrounds": False}, "plain black backgrounds instead of images")
_register("restrict-themes", {"restrict_themes": True}, "one theme per game object instead of several")
_register("monochrome-assets", {"use_monochrome_assets": True}, "objects drawn as single-colour shapes")
_register(
    "minimal-visuals",
    {"use_backgrounds": False, "restrict_themes": True, "use_monochrome_assets": True},
    "all three at once: no backgrounds, one theme, monochrome assets",
)
_register("uncentered-camera", {"center_agent": False}, "the camera shows the whole level, not agent-centred")
_register("velocity-info", {"paint_vel_info": True}, "the agent's velocity painted in the frame's corner")
