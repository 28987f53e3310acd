# docs/examples/my_env_family.py
"""A procedurally generated env family in one file: ``goal-room``, a 5x5 room whose reset seed places
the agent and the goal. Importing this file registers it with heldout (``--env goal-room``) and with
gymnasium (``heldout/GoalRoom-v0``). See docs/adding-an-env.md.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from heldout.envs import SeededEnvSpec, register_seeded_env

SIZE = 5
MAX_STEPS = 20
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right


class GoalRoom(gymnasium.Env):
    """Walk to the goal of a 5x5 room. The level (where the agent and the goal start) is generated
    from the reset seed alone, so ``reset(seed=level)`` always builds the same room.

    Observation: the flat grid, 0 empty, 1 agent, 2 goal. Reward: ``1 - 0.5 * steps / 20`` on
    reaching the goal, else 0; episodes are truncated after 20 steps.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 2, (SIZE * SIZE,), np.uint8)
        self.action_space = spaces.Discrete(len(MOVES))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)  # the seed is the level: everything below comes from np_random
        agent, goal = self.np_random.choice(SIZE * SIZE, size=2, replace=False)
        self.agent, self.goal = divmod(int(agent), SIZE), divmod(int(goal), SIZE)
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int):
        dr, dc = MOVES[int(action)]
        self.agent = (min(max(self.agent[0] + dr, 0), SIZE - 1), min(max(self.agent[1] + dc, 0), SIZE - 1))
        self.steps += 1
        terminated = self.agent == self.goal
        reward = 1.0 - 0.5 * self.steps / MAX_STEPS if terminated else 0.0
        truncated = not terminated and self.steps >= MAX_STEPS
        return self._obs(), reward, terminated, truncated, {}

    def _obs(self) -> np.ndarray:
        grid = np.zeros((SIZE, SIZE), dtype=np.uint8)
        grid[self.goal] = 2
        grid[self.agent] = 1
        return grid.ravel()


def room_fingerprint(env: gymnasium.Env, first_obs: np.ndarray) -> bytes:
    """What identifies a level: here the first observation shows the whole room (the default)."""
    return first_obs.tobytes()


register_seeded_env(
    SeededEnvSpec(
        name="goal-room",
        env_id="heldout/GoalRoom-v0",  # bump to -v1 if the generator ever changes
        make=GoalRoom,
        fingerprint=room_fingerprint,
        help="toy: walk to the goal of a 5x5 room; the seed places the agent and the goal (600 levels)",
        agent_kwargs={"policy": "MlpPolicy"},  # a flat vector, not an image
    )
)
