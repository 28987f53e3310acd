"""The base of every offline agent (BC, BCQ, CQL, IQL, DT): one interface the offline loop drives.

An offline agent learns from minibatches of a fixed dataset (:meth:`OfflineAgent.update`) and acts
with SB3's ``predict`` signature, so heldout's evaluation plays it like any online agent. The batch
keys and the interface are the contract of issue 29 (docs/offline-algorithms.md):

* transitions (``needs_sequences`` False): ``obs``, ``next_obs`` (stored dtype: uint8 images, float32
  vectors), ``action`` (int64), ``reward`` (float32, raw), ``terminated`` and ``truncated`` (float32;
  bootstrap with ``1 - terminated``), each with a leading batch dimension B;
* windows (``needs_sequences`` True, DT): ``obs`` (B, K, ...), ``action`` (B, K) int64, ``rtg``
  (B, K) float32 (undiscounted suffix sum of raw rewards), ``timestep`` (B, K) int64, ``mask``
  (B, K) bool (False on right-padding).

Networks are heldout's online ones (:func:`make_encoder`): the IMPALA-CNN for images, SB3's default
MLP (two tanh layers of 64) for vectors, with observations scaled as SB3 scales them
(``preprocess_obs``: images to [0, 1]; gen_dgrl feeds BC/BCQ/CQL/IQL raw 0-255 pixels, a documented
difference). All randomness (initial weights, minibatch noise, dropout, acting) comes from the
agent's ``seed``, and :meth:`OfflineAgent.state_dict` holds everything an exact resume needs.

This module is in the agents layer: it imports torch, gymnasium and SB3 only, never the protocol.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.preprocessing import (
    is_image_space,
    is_image_space_channels_first,
    preprocess_obs,
)
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

from heldout.agents.networks import ImpalaCNN

#: Width of the features every offline agent's heads read for images (gen_dgrl's ``hidden_size``).
IMAGE_FEATURES = 256
#: SB3's default MLP for vector observations (``MlpPolicy``: two layers of 64, tanh).
MLP_LAYERS = (64, 64)


class Range(NamedTuple):
    """An interval of allowed values for a numeric keyword, printed as ``(0, inf)`` or ``[0, 1]``."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: object) -> bool:
        v = float(value)  # type: ignore[arg-type]
        if math.isnan(v):
            return False
        above = v > self.low if self.low_open else v >= self.low
        below = v < self.high if self.high_open else v <= self.high
        return above and below

    def __str__(self) -> str:
        def fmt(x: float) -> str:
            return "inf" if x == math.inf else f"{x:g}"

        return f"{'(' if self.low_open else '['}{fmt(self.low)}, {fmt(self.high)}{')' if self.high_open else ']'}"


#: Ranges shared by many agents.
POSITIVE = Range(0.0, math.inf, low_open=True, high_open=True)
COUNT = Range(1, math.inf, high_open=True)
UNIT = Range(0.0, 1.0)
NON_NEGATIVE = Range(0.0, math.inf, high_open=True)


class ObservationEncoder(nn.Module):
    """Raw stored observations -> features: SB3's ``preprocess_obs``, then the trunk.

    Channel-last images (H, W, C) are made channel-first for the IMPALA-CNN.

    Args:
        observation_space: The env's observation space (a ``Box``).
        trunk: The network on the preprocessed (and, for images, channel-first) observations.
        features_dim: Width of ``trunk``'s output.
    """

    def __init__(self, observation_space: gym.spaces.Box, trunk: nn.Module, features_dim: int) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.image = is_image_space(observation_space, check_channels=False)
        self.channels_last = self.image and not is_image_space_channels_first(observation_space)
        self.trunk = trunk
        self.features_dim = int(features_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = preprocess_obs(obs, self.observation_space, normalize_images=True)
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.trunk(x)


def make_encoder(observation_space: gym.spaces.Space) -> ObservationEncoder:
    """The online agents' trunk for ``observation_space``.

    Images (SB3's ``is_image_space``: uint8 in [0, 255], 3 dimensions) get the IMPALA-CNN with a
    256-wide output, as heldout's PPO; anything else is flattened into SB3's default ``MlpPolicy``
    MLP (64, 64, tanh), as the MiniGrid and contextual presets train.

    Raises:
        ValueError: If the space is not a ``Box`` (one line naming it).
    """
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(
            f"offline agents need a Box observation space, got {type(observation_space).__name__}; "
            "valid: Box images (uint8, 3 dims) or Box vectors"
        )
    if is_image_space(observation_space, check_channels=False):
        shape = observation_space.shape
        if not is_image_space_channels_first(observation_space):
            shape = (shape[2], shape[0], shape[1])
        chw = gym.spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        return ObservationEncoder(
            observation_space, ImpalaCNN(chw, features_dim=IMAGE_FEATURES), IMAGE_FEATURES
        )
    flat = int(np.prod(observation_space.shape))
    mlp = nn.Sequential(nn.Flatten(), *create_mlp(flat, -1, list(MLP_LAYERS), nn.Tanh))
    return ObservationEncoder(observation_space, mlp, MLP_LAYERS[-1])


def hard_update(target: nn.Module, source: nn.Module) -> None:
    """Copies ``source``'s weights into ``target`` (gen_dgrl's hard target copy; its ``tau`` is dead)."""
    target.load_state_dict(source.state_dict())


class OfflineAgent:
    """The interface of an offline agent (see the module docstring for the batch keys).

    Subclasses set ``name``, ``defaults`` (every ``--agent-arg`` with its default), ``ranges`` (the
    allowed interval of each numeric keyword), build their networks in ``__init__`` after calling
    ``super().__init__``, register them in ``self.networks`` / ``self.optimizers`` (and
    ``self.schedulers``), and implement :meth:`update` and :meth:`act` (or :meth:`predict`).

    Args:
        observation_space: The env's observation space.
        action_space: A ``Discrete`` action space.
        device: Where the networks live.
        seed: The run seed: initial weights, minibatch noise, dropout and acting all come from it.
        **kwargs: Agent arguments (``--agent-arg``), checked by :meth:`check_kwargs`.
    """

    name: ClassVar[str] = ""
    needs_sequences: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    ranges: ClassVar[dict[str, Range]] = {}

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Discrete,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        self.check_kwargs(kwargs)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(
                f"offline agent {self.name!r} needs a Discrete action space, got {type(action_space).__name__}; "
                "valid: Discrete"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.n_actions = int(action_space.n)
        self.device = torch.device(device)
        self.seed = int(seed)
        self.kwargs: dict[str, Any] = {**self.defaults, **kwargs}
        self.batch_size = int(self.kwargs.get("batch_size", 256))
        self.sequence_length = 1
        self.step = 0
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}

    # -- arguments --------------------------------------------------------------------------------

    @classmethod
    def check_kwargs(cls, kwargs: dict[str, Any]) -> None:
        """Checks agent arguments against ``defaults`` (names, types) and ``ranges``.

        Raises:
            ValueError: One line naming the bad key or value and the valid ones.
        """
        for key, value in kwargs.items():
            if key not in cls.defaults:
                raise ValueError(
                    f"unknown agent argument {key!r} for offline agent {cls.name!r}; "
                    f"valid: {', '.join(sorted(cls.defaults))}"
                )
            default = cls.defaults[key]
            where = f"agent argument {key}={value!r} of {cls.name!r}"
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{where} is not a boolean; valid: true, false")
                continue
            if isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise ValueError(
                        f"{where} is not a whole number; valid: a whole number in {cls.ranges.get(key, COUNT)}"
                    )
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                    raise ValueError(
                        f"{where} is not a number; valid: a number in {cls.ranges.get(key, POSITIVE)}"
                    )
            if key in cls.ranges and value not in cls.ranges[key]:
                raise ValueError(f"{where} is out of range; valid: {cls.ranges[key]}")

    # -- randomness -------------------------------------------------------------------------------

    def seeded_torch(self) -> contextlib.AbstractContextManager[None]:
        """The context for what cannot take a generator (dropout): torch's global RNG seeded by a draw
        from the agent's generator, then restored, so it follows the seed, resumes exactly and leaves
        the caller's global RNG as it was."""
        draw = torch.randint(0, 2**62, (1,), generator=self.generator, device=self.device)
        return _seeded(int(draw.item()), self.device)

    def init_seeded(self) -> contextlib.AbstractContextManager[None]:
        """The context to build networks in: torch's global RNG seeded by ``seed``, then restored."""
        return _seeded(self.seed, self.device)

    # -- learning ---------------------------------------------------------------------------------

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on ``batch``; returns scalars to log (loss terms, Q means, ...)."""
        raise NotImplementedError

    # -- acting -----------------------------------------------------------------------------------

    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions (B,) int64 for a batch of raw observations (no grad, eval mode)."""
        raise NotImplementedError

    def obs_tensor(self, observation: Any) -> torch.Tensor:
        """A batch of observations as a tensor on the agent's device (stored dtype kept)."""
        return torch.as_tensor(np.asarray(observation), device=self.device)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """SB3's ``predict``, batched over env slots: ``(actions (n,), state)``.

        A single unbatched observation gives a single action (shape ``()``).
        """
        obs = self.obs_tensor(observation)
        single = tuple(obs.shape) == tuple(self.observation_space.shape)
        if single:
            obs = obs.unsqueeze(0)
        self.set_training(False)
        with torch.no_grad():
            actions = self.act(obs, deterministic).cpu().numpy()
        return (actions[0] if single else actions), state

    def observe(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Called by evaluation after each env step with its rewards and dones (default: nothing)."""

    def epsilon_greedy(self, greedy: torch.Tensor, epsilon: float) -> torch.Tensor:
        """``greedy`` with each entry replaced by a uniform action with probability ``epsilon``."""
        if epsilon <= 0:
            return greedy
        n = greedy.shape[0]
        coin = torch.rand(n, generator=self.generator, device=self.device) < epsilon
        uniform = torch.randint(0, self.n_actions, (n,), generator=self.generator, device=self.device)
        return torch.where(coin, uniform, greedy)

    def set_training(self, mode: bool) -> None:
        """Train (dropout on) or eval mode for every network."""
        for net in self.networks.values():
            net.train(mode)

    # -- checkpoints ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Networks (targets included), optimisers, schedulers, step count, generator state, arguments."""
        return {
            "name": self.name,
            "kwargs": dict(self.kwargs),
            "step": self.step,
            "generator": self.generator.get_state(),
            "networks": {k: v.state_dict() for k, v in self.networks.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`'s output exactly (the next update is the one that would have come).

        Raises:
            ValueError: If ``state`` is another agent's, or its networks/optimisers differ.
        """
        if state.get("name") != self.name:
            raise ValueError(f"checkpoint is of offline agent {state.get('name')!r}; valid: {self.name!r}")
        for part in ("networks", "optimizers", "schedulers"):
            mine = getattr(self, part)
            if set(state[part]) != set(mine):
                raise ValueError(
                    f"checkpoint {part} {sorted(state[part])} do not match {self.name!r}'s; valid: {sorted(mine)}"
                )
            for key, value in state[part].items():
                mine[key].load_state_dict(value)
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
