"""MiniGrid: procedurally generated grid worlds whose level is their reset seed.

MiniGrid (Chevalier-Boisvert et al. 2023, "Minigrid & Miniworld: Modular & Customizable Reinforcement
Learning Environments for Goal-Oriented Tasks", NeurIPS Datasets and Benchmarks;
https://arxiv.org/abs/2306.13831) generates each grid (walls, doors, keys, goal, the agent's start)
from the seed of ``reset(seed=...)``. heldout registers a few envs whose generator really varies with
the seed, as seeded level envs (:mod:`heldout.envs.seeded`): ``--env minigrid-doorkey-5x5`` and the
gymnasium ids ``heldout/MiniGrid-DoorKey-5x5-v0``, ... with the upstream env's dynamics, rewards
(``1 - 0.9 * steps / max_steps`` on success, else 0) and time limits.

Observations are MiniGrid's partial, agent-centred 7x7 view (``ImgObsWrapper``): ``uint8`` of shape
``(7, 7, 3)`` holding (object, colour, state) indices, declared with their true bounds ``[0, 10]``
(not ``[0, 255]``), so SB3 does not mistake them for pixels; a flattening ``MlpPolicy`` trains on them.
Actions: MiniGrid's 7 discrete actions.

Seeds are not levels: small grids repeat themselves. Out of 10,000 seeds DoorKey-5x5 makes 48
distinct levels and SimpleCrossingS9N1 42, so a split of seeds alone leaks almost every test level
into training. The fingerprint of a level is its full grid encoding, the agent's position and
direction, and the mission; the protocol drops held-out levels whose fingerprint is a training level's.

``minigrid`` is imported when an env is built, not when heldout is imported.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from heldout.envs.seeded import SeededEnvSpec, register_seeded_env, upstream_factory

#: The largest index in MiniGrid's (object, colour, state) encoding ("agent" is object 10).
MAX_INDEX = 10

#: heldout name -> (upstream MiniGrid id, one-line help).
MINIGRID_ENVS: dict[str, tuple[str, str]] = {
    "minigrid-doorkey-5x5": (
        "MiniGrid-DoorKey-5x5-v0",
        "MiniGrid DoorKey 5x5: pick up the key, open the door, reach the goal (48 distinct levels)",
    ),
    "minigrid-doorkey-6x6": (
        "MiniGrid-DoorKey-6x6-v0",
        "MiniGrid DoorKey 6x6 (816 distinct levels in seeds 0-9999)",
    ),
    "minigrid-doorkey-8x8": ("MiniGrid-DoorKey-8x8-v0", "MiniGrid DoorKey 8x8"),
    "minigrid-multiroom-n2-s4": (
        "MiniGrid-MultiRoom-N2-S4-v0",
        "MiniGrid MultiRoom: two random rooms of size <= 4 joined by a door; reach the goal",
    ),
    "minigrid-keycorridor-s3r1": (
        "MiniGrid-KeyCorridorS3R1-v0",
        "MiniGrid KeyCorridor S3R1: find the key, unlock the room, pick up the ball (648 distinct levels in 10k seeds)",
    ),
    "minigrid-simplecrossing-s9n1": (
        "MiniGrid-SimpleCrossingS9N1-v0",
        "MiniGrid SimpleCrossing S9N1: cross a wall through its gap (42 distinct levels)",
    ),
}

REFERENCE = (
    "Chevalier-Boisvert et al. 2023, 'Minigrid & Miniworld: Modular & Customizable Reinforcement "
    "Learning Environments for Goal-Oriented Tasks', NeurIPS Datasets and Benchmarks"
)


def _same(obs: np.ndarray) -> np.ndarray:
    return obs


def make_minigrid(upstream_id: str, render_mode: str | None = None) -> gymnasium.Env:
    """The upstream MiniGrid env with the 7x7x3 symbolic view as its observation (bounds [0, 10])."""
    import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
    from minigrid.wrappers import ImgObsWrapper

    env = ImgObsWrapper(gymnasium.make(upstream_id, render_mode=render_mode))
    space = env.observation_space
    bounded = gymnasium.spaces.Box(0, MAX_INDEX, space.shape, np.uint8)
    return gymnasium.wrappers.TransformObservation(env, _same, bounded)


#: Pixels a grid cell is drawn with in the pixel envs: the 7x7 view is 56x56, padded to 64x64.
TILE = 8
#: Side of a pixel env's frame (the IMPALA-CNN's and the augmentations' 64x64).
FRAME = 64

#: heldout name -> (upstream MiniGrid id, one-line help) of the envs seen as RGB pixels.
MINIGRID_PIXEL_ENVS: dict[str, tuple[str, str]] = {
    "minigrid-doorkey-5x5-rgb": (
        "MiniGrid-DoorKey-5x5-v0",
        "MiniGrid DoorKey 5x5 seen as 64x64 RGB pixels (the 7x7 view drawn 8 pixels a cell)",
    ),
}


def _pad_frame(obs: np.ndarray) -> np.ndarray:
    """The 56x56 RGB view centred in a black 64x64 frame."""
    h, w = obs.shape[:2]
    top, left = (FRAME - h) // 2, (FRAME - w) // 2
    return np.pad(obs, ((top, FRAME - h - top), (left, FRAME - w - left), (0, 0)))


def make_minigrid_pixels(upstream_id: str, render_mode: str | None = None) -> gymnasium.Env:
    """The upstream MiniGrid env seen as pixels: its partial 7x7 view drawn by MiniGrid's
    ``RGBImgPartialObsWrapper`` (8 pixels a cell), centred in a 64x64 ``uint8`` RGB frame, the size
    heldout's IMPALA-CNN and augmentations (crop's 64x64 window) expect."""
    import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
    from minigrid.wrappers import ImgObsWrapper, RGBImgPartialObsWrapper

    env = ImgObsWrapper(RGBImgPartialObsWrapper(gymnasium.make(upstream_id, render_mode=render_mode), TILE))
    space = gymnasium.spaces.Box(0, 255, (FRAME, FRAME, 3), np.uint8)
    return gymnasium.wrappers.TransformObservation(env, _pad_frame, space)


def grid_fingerprint(env: gymnasium.Env, obs: Any) -> bytes:
    """The whole level just reset: grid encoding, agent position and direction, mission."""
    grid_env = env.unwrapped
    pos = np.asarray(grid_env.agent_pos, dtype=np.int64)
    head = np.array([grid_env.width, grid_env.height, int(grid_env.agent_dir)], dtype=np.int64)
    return b"|".join(
        [
            grid_env.grid.encode().tobytes(),
            head.tobytes(),
            pos.tobytes(),
            str(grid_env.mission).encode(),
        ]
    )


#: What every MiniGrid env needs from an agent unless the config says otherwise: an MLP over the
#: flattened 7x7x3 view (an image CNN would see a 7x7 "picture" of indices).
AGENT_KWARGS: dict[str, Any] = {"policy": "MlpPolicy"}


# the symbolic envs (an MLP over the view) under their upstream ids, the pixel ones (the image agents'
# own defaults) under ``heldout/<Upstream>-RGB-v0``
for _envs, _make, _suffix, _agent_kwargs in (
    (MINIGRID_ENVS, make_minigrid, "-v0", AGENT_KWARGS),
    (MINIGRID_PIXEL_ENVS, make_minigrid_pixels, "-RGB-v0", {}),
):
    for _name, (_upstream, _help) in _envs.items():
        register_seeded_env(
            SeededEnvSpec(
                name=_name,
                env_id=f"heldout/{_upstream.removesuffix('-v0')}{_suffix}",
                make=upstream_factory(_make, _upstream),
                fingerprint=grid_fingerprint,
                help=_help,
                agent_kwargs=_agent_kwargs,
                reference=REFERENCE,
            )
        )

__all__ = [
    "MAX_INDEX",
    "MINIGRID_ENVS",
    "MINIGRID_PIXEL_ENVS",
    "grid_fingerprint",
    "make_minigrid",
    "make_minigrid_pixels",
]
