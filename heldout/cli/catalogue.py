"""``heldout list``: what is registered (envs, agents, offline agents, augmentations, bonuses, presets, shifts, wrappers, findings)."""

from __future__ import annotations

import argparse
from typing import Any

from heldout.cli.common import add_import_flag


def add_parser(sub: Any) -> None:
    """Adds ``heldout list`` to the subcommands ``sub``."""
    li = sub.add_parser(
        "list", help="list environments, agents and presets", description="List what is registered."
    )
    add_import_flag(li, "a .py file or module to import first, to list what it registers (repeatable)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Prints every registry: envs, agents, augmentations, bonuses, presets, shifts, wrappers, findings."""
    from heldout.agents import AGENTS
    from heldout.agents.augment import AUGMENTATIONS
    from heldout.agents.bonuses import BONUSES
    from heldout.agents.offline import OFFLINE_AGENTS
    from heldout.envs import CONTEXTUAL_ENVS, ENVS, SEEDED_ENVS
    from heldout.envs.procgen_shifts import SHIFTS
    from heldout.protocol.presets import PRESETS
    from heldout.wrappers import WRAPPERS

    for title, reg in (
        ("environments", ENVS),
        ("contextual environments", CONTEXTUAL_ENVS),
        ("seeded level environments (the level is the reset seed)", SEEDED_ENVS),
        ("agents", AGENTS),
        ("offline agents (heldout train --agent NAME --dataset PATH; docs/offline.md)", OFFLINE_AGENTS),
        ("augmentations", AUGMENTATIONS),
        ("exploration bonuses (heldout train --bonus; docs/exploration.md)", BONUSES),
        ("presets", PRESETS),
        ("visual shifts (heldout eval --shift)", SHIFTS),
        ("wrappers (heldout train/eval --wrapper)", WRAPPERS),
    ):
        print(f"{title}:")
        width = max(map(len, reg.names()), default=0) + 2
        for name in reg.names():
            print(f"  {name:<{width}} {reg.describe(name)}")
    from heldout.experiments.findings import FINDINGS

    print("findings (heldout findings run NAME; docs/findings.md):")
    width = max(map(len, FINDINGS), default=0) + 2
    for name, finding in FINDINGS.items():
        print(f"  {name:<{width}} {finding.claim}")
    return 0
