"""UCB-DrAC: DrAC whose augmentation is chosen before each update by a sliding-window UCB bandit.

Raileanu et al. 2021, "Automatic Data Augmentation for Generalization in Reinforcement Learning",
NeurIPS. https://arxiv.org/abs/2006.12862 (code: rraileanu/auto-drac, ``ucb_rl2_meta/algo/ucb_drac.py``
and ``train.py``; ALGORITHMS.md 2.4). The bandit is UCB1 (Auer et al. 2002) with its value of an arm
taken over the last ``window`` rewards, since the reward (the mean return of a rollout) drifts as
the policy improves.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from heldout.agents.augment import UCB_ARMS, Augmentation, check_channels, make_augmentation
from heldout.agents.drac import DrAC
from heldout.agents.level_replay import scoring_sampler


class UCBBandit:
    """Sliding-window UCB over a fixed list of arms, with auto-drac's initialisation.

    State as the reference: total count ``N = 1``, per-arm counts ``n_f = 1``, values ``Q_f = 0``
    and a window of the last ``window`` rewards per arm. :meth:`select` returns
    ``argmax_f Q_f + c * sqrt(ln N / n_f)`` (ties to the lowest index, so the first pick is arm 0);
    :meth:`update` adds one reward for an arm: ``N += 1``, ``n_f += 1``, ``Q_f = mean(window_f)``.

    With the faithful rule an arm never played scores only ``c * sqrt(ln N)`` and may never be tried
    once an incumbent's value exceeds that (ALGORITHMS.md 2.4, pitfall i). ``explore_first=True``
    plays every arm once, in order, before the UCB rule applies.

    Args:
        arms: Arm names (only their number and order matter to the bandit).
        c: Exploration coefficient (auto-drac's CLI default 0.1).
        window: Rewards kept per arm (auto-drac: 10).
        explore_first: Play each arm once before using the UCB scores.
    """

    def __init__(
        self, arms: Sequence[str], c: float = 0.1, window: int = 10, explore_first: bool = False
    ) -> None:
        if len(arms) == 0:
            raise ValueError("a bandit needs at least one arm")
        if c < 0:
            raise ValueError(f"exploration coefficient c must be >= 0, got {c}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.arms = list(arms)
        self.c = float(c)
        self.window = int(window)
        self.explore_first = explore_first
        self.total = 1
        self.counts = np.ones(len(self.arms), dtype=np.int64)
        self.plays = np.zeros(len(self.arms), dtype=np.int64)
        self.values = np.zeros(len(self.arms), dtype=np.float64)
        self.rewards: list[deque[float]] = [deque(maxlen=self.window) for _ in self.arms]

    def state_dict(self) -> dict[str, Any]:
        """The bandit's counts, values and reward windows (plain lists), for checkpoints."""
        return {
            "total": self.total,
            "counts": self.counts.tolist(),
            "plays": self.plays.tolist(),
            "values": self.values.tolist(),
            "rewards": [list(r) for r in self.rewards],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`."""
        self.total = int(state["total"])
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.plays = np.asarray(state["plays"], dtype=np.int64)
        self.values = np.asarray(state["values"], dtype=np.float64)
        self.rewards = [deque(r, maxlen=self.window) for r in state["rewards"]]

    def scores(self) -> np.ndarray:
        """``Q_f + c * sqrt(ln N / n_f)`` for every arm."""
        return self.values + self.c * np.sqrt(math.log(self.total) / self.counts)

    def select(self) -> int:
        """The index of the arm to play next."""
        if self.explore_first:
            unplayed = np.flatnonzero(self.plays == 0)
            if unplayed.size:
                return int(unplayed[0])
        return int(np.argmax(self.scores()))

    def update(self, arm: int, reward: float) -> None:
        """Credits ``arm`` with ``reward``."""
        if not 0 <= arm < len(self.arms):
            raise IndexError(f"arm index {arm} out of range for {len(self.arms)} arms")
        self.total += 1
        self.counts[arm] += 1
        self.plays[arm] += 1
        self.rewards[arm].append(float(reward))
        self.values[arm] = float(np.mean(self.rewards[arm]))


class UCBDrAC(DrAC):
    """DrAC with the augmentation picked per update by :class:`UCBBandit` (UCB-DrAC).

    Before each update (:meth:`before_update`), the arm played in the previous update is credited
    with the mean GAE return of the rollout just collected (normalised-reward scale, as the
    reference), then the next arm is selected and used for every minibatch of this update. auto-drac
    averages its ``(T + 1) x N`` returns tensor whose last row is never written (zeros); here the
    mean is over the ``T x N`` written returns, i.e. the reference's reward times ``(T + 1) / T``.

    Args:
        arms: Augmentation names, in bandit order (default the reference's eight).
        ucb_exploration_coef: c (auto-drac's CLI default 0.1).
        ucb_window_length: K, rewards kept per arm (10).
        explore_first: Play each arm once before UCB (not in the reference).
        **kwargs: Everything :class:`heldout.agents.drac.DrAC` takes (``aug_coef``,
            ``policy_regularizer``, ...); ``augmentation`` is ignored (the bandit chooses).

    Logged each update: ``ucb/arm`` (index played), ``ucb/count/<arm>`` (n_f) and
    ``ucb/value/<arm>`` (Q_f), in TensorBoard and progress.csv.
    """

    #: Plain attributes a checkpoint keeps (``heldout.protocol.checkpoint``): the arm to credit next.
    checkpoint_attributes: tuple[str, ...] = ("current_arm",)

    def __init__(
        self,
        policy: Any = "CnnPolicy",
        env: Any = None,
        arms: Sequence[str] = UCB_ARMS,
        ucb_exploration_coef: float = 0.1,
        ucb_window_length: int = 10,
        explore_first: bool = False,
        **kwargs: Any,
    ) -> None:
        self.arms = list(arms)
        for name in self.arms:
            make_augmentation(name)  # fail early on a bad name
        self.ucb_exploration_coef = ucb_exploration_coef
        self.ucb_window_length = ucb_window_length
        self.explore_first = explore_first
        self.bandit = UCBBandit(self.arms, ucb_exploration_coef, ucb_window_length, explore_first)
        self.current_arm: int | None = None
        kwargs.setdefault("augmentation", self.arms[0])
        super().__init__(policy, env, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "arm_augmentations"]

    def _setup_model(self) -> None:
        super()._setup_model()
        self.arm_augmentations = [make_augmentation(name) for name in self.arms]
        for aug in self.arm_augmentations:
            check_channels(aug, self.observation_space)

    def current_augmentation(self) -> Augmentation:
        return self.arm_augmentations[0 if self.current_arm is None else self.current_arm]

    def before_update(self) -> None:
        if self.current_arm is not None:
            returns = np.asarray(self.rollout_buffer.returns)
            mask = getattr(scoring_sampler(self.env), "train_mask", None)
            if mask is not None and not mask.all():  # Robust PLR: those of the trained transitions
                returns = returns.reshape(mask.shape)[mask]
            self.bandit.update(self.current_arm, float(returns.mean()))
        self.current_arm = self.bandit.select()
        self.logger.record("ucb/arm", self.current_arm)
        for index, name in enumerate(self.arms):
            self.logger.record(f"ucb/count/{name}", int(self.bandit.counts[index]))
            self.logger.record(f"ucb/value/{name}", float(self.bandit.values[index]))


__all__ = ["UCBBandit", "UCBDrAC"]
