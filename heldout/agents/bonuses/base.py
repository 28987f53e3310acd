"""What every exploration bonus shares: the interface, the encoders, the options, the normaliser.

A :class:`Bonus` is a ``torch.nn.Module`` that scores the states a rollout reaches (its *raw*
bonus) and keeps whatever state that needs: global visit counts, per-slot episodic memories (counts,
E3B's inverse covariance), networks and their optimisers. Its ``state_dict`` holds all of it
(non-tensor state through ``get_extra_state``), so a checkpoint of the agent holds the bonus too.

The agent never sees a bonus directly: :class:`heldout.agents.bonuses.intrinsic.IntrinsicReward`
turns raw bonuses into the intrinsic reward added to the extrinsic one during rollouts.

Reference: Henaff, Jiang, Raileanu 2023, "A Study of Global and Episodic Bonuses for Exploration in
Contextual MDPs", ICML (https://arxiv.org/abs/2306.03236; code facebookresearch/e3b).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from torch import nn


@dataclass(frozen=True)
class BonusOption:
    """One ``--bonus-arg`` key of a bonus: its type, its default and what it accepts.

    Attributes:
        name: The key.
        kind: ``int``, ``float``, ``bool`` or ``str``.
        default: Its value when not given.
        choices: For ``str``: the valid values.
        low: Smallest valid number (exclusive when ``low_open``).
        high: Largest valid number.
        low_open: Whether ``low`` itself is refused.
        help: One line for the docs.
    """

    name: str
    kind: type
    default: Any
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    help: str = ""

    def check(self, bonus: str, value: Any, prefix: str = "") -> Any:
        """``value`` checked and converted (an int where a float is asked becomes a float).

        Args:
            bonus: The bonus (for the message).
            value: The value given.
            prefix: How the key was written before its name (a combination's ``episodic.``).

        Raises:
            ValueError: one line naming the bonus, the key, the value and what is valid.
        """
        where = f"--bonus-arg {prefix}{self.name}={value!r} (bonus {bonus!r})"
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{where}: give true or false")
            return value
        if self.kind is str:
            if self.choices and value not in self.choices:
                close = difflib.get_close_matches(str(value), list(self.choices), n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{where}: unknown value{hint}; valid: {', '.join(self.choices)}")
            if not isinstance(value, str) or not value:
                raise ValueError(f"{where}: give a name")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{where}: give a number, valid: {self.valid()}")
        if not np.isfinite(float(value)) or (self.kind is int and float(value) != int(value)):
            raise ValueError(f"{where}: out of range; valid: {self.valid()}")
        number = int(value) if self.kind is int else float(value)
        low_bad = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        if low_bad or (self.high is not None and number > self.high):
            raise ValueError(f"{where}: out of range; valid: {self.valid()}")
        return number

    def valid(self) -> str:
        """The valid values in words (``a number > 0``, ``a whole number >= 1 and <= 4096``, ...)."""
        what = "a whole number" if self.kind is int else "a number"
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = "" if self.high is None else f"<= {self.high:g}"
        return " ".join([what, " and ".join(x for x in (lo, hi) if x)]).strip()


def check_options(
    bonus: str, options: dict[str, BonusOption], kwargs: dict[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """The defaults of ``options`` with ``kwargs`` checked and applied (``prefix``: as
    :meth:`BonusOption.check`).

    Raises:
        ValueError: one line naming an unknown key (did you mean) or a bad value, with the valid ones.
    """
    out = {name: option.default for name, option in options.items()}
    for key, value in kwargs.items():
        if key not in options:
            close = difflib.get_close_matches(str(key), list(options), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            valid = ", ".join(prefix + name for name in options) or "none"
            raise ValueError(
                f"unknown --bonus-arg {prefix + str(key)!r} for bonus {bonus!r}{hint}; valid: {valid}"
            )
        out[key] = options[key].check(bonus, value, prefix)
    return out


#: Options every bonus takes: how its raw value becomes the intrinsic reward.
COMMON_OPTIONS: tuple[BonusOption, ...] = (
    BonusOption("coef", float, 0.01, low=0.0, low_open=True, help="beta: r = r_ext + beta * r_int"),
    BonusOption(
        "norm",
        str,
        "std",
        choices=("std", "reference", "none"),
        help="divide the raw bonus by its running std (std), by e3b's running 'std' (reference), or not",
    ),
)


#: Per state-key name, per slot: the bytes a count hashes, or None where unknown.
Keys = dict[str, list[bytes | None]]


class Bonus(nn.Module):
    """An exploration bonus: scores reached states, keeps its memory, learns from rollouts.

    Subclasses set :attr:`scope` and implement :meth:`score`; episodic ones :meth:`new_episodes`,
    learning ones :meth:`learn`.

    Args:
        observation_space: The observations the policy sees (channel-first images).
        action_space: The env's action space.
        n_envs: Env slots (one episodic memory each).
        seed: Seed of the bonus's own generators (network init, minibatch order).
    """

    #: ``"global"`` (memory over all of training) or ``"episodic"`` (memory reset each episode).
    scope: str = "global"
    #: The state keys :meth:`score` reads (count bonuses): ``"obs"`` or names of ``info`` entries.
    key_names: tuple[str, ...] = ()

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, n_envs: int, seed: int):
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.n_envs = n_envs
        self.seed = seed

    def score(self, obs: torch.Tensor, keys: Keys) -> torch.Tensor:
        """The raw bonus of the states just reached by every slot, updating the bonus's memory.

        Args:
            obs: (n_envs, ...) observations on the bonus's device, in the observation space's dtype.
            keys: For each of :attr:`key_names`, per slot, the bytes a count hashes (None where
                unknown).

        Returns:
            (n_envs,) float32 raw bonuses, >= 0.
        """
        raise NotImplementedError

    def new_episodes(self, obs: torch.Tensor, keys: Keys, mask: torch.Tensor) -> None:
        """Slots in ``mask`` (bool (n_envs,)) start an episode whose first observation is ``obs``:
        episodic memories are reset and take that observation; global counts count it. Default:
        nothing."""

    def learn(self, obs: torch.Tensor, actions: torch.Tensor, starts: torch.Tensor) -> dict[str, float]:
        """Trains the bonus's networks on one rollout; returns logs (``bonus/<key>``).

        Args:
            obs: (T + 1, n_envs, ...) observations of the rollout and the one after it.
            actions: (T, n_envs) actions taken.
            starts: (T + 1, n_envs) bool, whether the observation starts an episode (a pair
                ``(obs[t], obs[t + 1])`` with ``starts[t + 1]`` straddles two episodes).

        Returns:
            Floats to log. Default: nothing learned, no logs.
        """
        return {}


class LearnedBonus(Bonus):
    """A bonus with networks that learn from rollouts: their Adam optimiser, their epochs and minibatch
    size, and the generator of their minibatch order (seeded by the run seed), all in its state."""

    def setup_learning(self, parameters: list[nn.Parameter], lr: float, epochs: int, batch_size: int) -> None:
        """Creates the optimiser over ``parameters`` and the minibatch generator."""
        self.optimizer = torch.optim.Adam(parameters, lr=lr)
        self.epochs, self.batch_size = epochs, batch_size
        self.generator = torch.Generator().manual_seed(self.seed + 2)

    def minibatches(self, n: int, device: torch.device) -> list[torch.Tensor]:
        """``epochs`` permutations of ``range(n)`` from the bonus's generator, cut into minibatches."""
        return [
            part
            for _ in range(self.epochs)
            for part in torch.randperm(n, generator=self.generator).to(device).split(self.batch_size)
        ]

    def get_extra_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


# -- state keys ---------------------------------------------------------------------------------


def state_key(row: np.ndarray | bytes) -> int:
    """A stable 63-bit hash of a state key (an observation row or a declared info value):
    BLAKE2b of its bytes (Python's ``hash`` is salted per process, so a resumed run would recount)."""
    data = row if isinstance(row, bytes) else np.ascontiguousarray(row).tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def hashable_observation(space: spaces.Space) -> bool:
    """Whether observations of ``space`` can be counted by hashing: integer-valued boxes (images,
    symbolic grids) and discrete spaces; not continuous (float) boxes nor dicts."""
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        return True
    return isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.integer)


# -- encoders -----------------------------------------------------------------------------------


class ObservationScale(nn.Module):
    """Observations to float inputs: images / 255, finite boxes to [0, 1] by their bounds, others as they are."""

    def __init__(self, space: spaces.Box) -> None:
        super().__init__()
        low = np.asarray(space.low, dtype=np.float64)
        high = np.asarray(space.high, dtype=np.float64)
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        span = np.where(finite, high - low, 1.0)
        offset = np.where(finite, low, 0.0)
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float32), persistent=False)
        self.register_buffer("span", torch.as_tensor(span, dtype=torch.float32), persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs.float() - self.offset) / self.span


def encoder(space: spaces.Space, out_dim: int, final_relu: bool) -> nn.Module:
    """A small network from observations to ``out_dim`` features.

    Images (SB3's channel-first ``uint8`` check): three 3x3 stride-2 convolutions (32 filters, ELU, as
    e3b's MiniHack/MiniGrid encoders use ELU) and a linear layer; other boxes: flattened, two linear
    layers of 256 with ReLU. ``final_relu``: E3B's embedding ends in a ReLU (features >= 0), RND's
    target and predictor end linear.

    Raises:
        ValueError: for observations that are not a Box.
    """
    if not isinstance(space, spaces.Box):
        raise ValueError(f"bonus networks take Box observations, got {type(space).__name__}")
    layers: list[nn.Module] = [ObservationScale(space)]
    if is_image_space(space, check_channels=False) and min(space.shape[1:]) >= 8:
        channels = space.shape[0]
        for _ in range(3):
            layers += [nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ELU()]
            channels = 32
        layers.append(nn.Flatten())
        with torch.no_grad():
            flat = nn.Sequential(*layers)(torch.zeros((1, *space.shape))).shape[1]
        layers.append(nn.Linear(flat, out_dim))
    else:
        layers += [
            nn.Flatten(),
            nn.Linear(int(np.prod(space.shape)), 256),
            nn.ReLU(),
            nn.Linear(256, out_dim),
        ]
    if final_relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def seeded_init(seed: int, build: Any) -> Any:
    """``build()`` with torch's global generator seeded from ``seed`` and restored afterwards, so a bonus's
    networks depend on the run seed only and leave the policy's initialisation as it would be without it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


__all__ = [
    "COMMON_OPTIONS",
    "Bonus",
    "BonusOption",
    "Keys",
    "LearnedBonus",
    "ObservationScale",
    "check_options",
    "encoder",
    "hashable_observation",
    "seeded_init",
    "state_key",
]
