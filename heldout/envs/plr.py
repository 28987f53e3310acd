"""Prioritized Level Replay (PLR) and Robust PLR: level samplers that learn from the rollouts.

Both plug into the training env as every :mod:`~heldout.envs.level_samplers` sampler does
(``next_level(slot)``, ``episode_done(...)``); in addition the agent feeds them, after each rollout
(after GAE, before the update), the level seed, ``done`` flag, GAE advantage, value, return and
reward of every transition (:meth:`PLRSampler.update_with_rollout`), and asks before each step which
slots play an episode that trains (:meth:`PLRSampler.training_slots`; the PPO of
:mod:`heldout.agents.ppo` does this for every on-policy agent). This module is numpy only (no
torch, no SB3).

* :class:`PLRSampler`: Jiang, Grefenstette and Rocktaeschel 2021, "Prioritized Level Replay",
  ICML (https://arxiv.org/abs/2010.03934; facebookresearch/level-replay ``level_sampler.py``;
  ALGORITHMS.md 5.1). Each level's score is the mean of a per-step learning signal over its last
  episode (``value_l1``: mean ``|GAE advantage|``); the replay distribution mixes a rank
  prioritisation of the scores (temperature ``beta``) with staleness (coefficient ``rho``)::

      h_i = 1 / rank(S_i)          P_S(i) = h_i^(1/beta) / sum_j h_j^(1/beta)
      P_C(i) = C_i / sum_j C_j     (C_i: draws since level i was last drawn)
      P_replay = (1 - rho) P_S + rho P_C        (over seen levels only)

  The decision to replay is made at each episode end; with the ``proportionate`` schedule and
  ``rho_min = 1`` every training level is played once (unseen levels first, uniformly) before any
  replay.
* :class:`RobustPLRSampler`: Jiang, Dennis, Parker-Holder, Foerster, Grefenstette and Rocktaeschel
  2021, "Replay-Guided Adversarial Environment Design", NeurIPS (https://arxiv.org/abs/2110.02439;
  facebookresearch/dcd ``level_replay/level_sampler.py`` and ``envs/runners/adversarial_runner.py``;
  ALGORITHMS.md 5.1b). At every episode end the sampler decides, with dcd's
  ``sample_replay_decision``, whether the next episode replays a level of a fixed-size buffer
  (drawn from ``P_replay``) or plays a new level (a training level outside the buffer, uniformly);
  the transitions of new-level episodes are scored but masked out of the gradient (dcd's
  ``no_exploratory_grad_updates``). A new level enters the buffer on its first finished episode
  when there is room or its score is at least that of the lowest-priority member. docs/plr.md
  compares every rule with dcd's (dcd decides per rollout and resets every env at each rollout;
  here no episode is cut at the rollout boundary).

Episodes cut by the rollout boundary are scored on the steps the rollout holds and merged with the
rest of the episode by a running mean weighted by steps,
``merged = partial + (score - partial) * n / (n_partial + n)`` (level-replay
``_partial_update_seed_score``); for PLR by default the partial score is committed at the end of
each update (level-replay ``after_update``: the policy changed, so the partial score is stale), with
``carry_partial=True`` it is kept and merged with the continuation in the next rollout. Robust PLR
always carries it (dcd scores finished episodes only), and so does the ``max_mc`` score, which
needs the episode's return.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Per-step learning signals a level's score averages (ALGORITHMS.md 5.1, 5.1b).
SCORE_STRATEGIES: tuple[str, ...] = ("value_l1", "gae", "positive_value_loss", "max_mc")
#: Transforms of scores (and of staleness) into unnormalised weights.
SCORE_TRANSFORMS: tuple[str, ...] = ("rank", "power", "softmax")
#: Replay schedules of level-replay's ``sample()`` (and dcd's ``sample_replay_decision``).
SCHEDULES: tuple[str, ...] = ("proportionate", "fixed")
#: How a full Robust PLR buffer picks the member a better new level replaces (dcd).
BUFFER_PRIORITIES: tuple[str, ...] = ("replay_support", "score")


# -- scores and weights -----------------------------------------------------------------------------


def segment_score(
    strategy: str,
    advantages: np.ndarray,
    values: np.ndarray,
    returns: np.ndarray,
    max_return: float = -np.inf,
) -> float:
    """The score of one episode segment (its steps in one rollout).

    Args:
        strategy: ``value_l1`` (mean ``|A_t|``, level-replay ``_average_value_l1``), ``gae`` (mean
            ``A_t``), ``positive_value_loss`` (mean ``max(A_t, 0)``, dcd), ``max_mc`` (mean
            ``max_return - V(s_t)``, dcd's MaxMC ``grounded_signed_value_loss``).
        advantages: GAE advantages of the segment's steps.
        values: ``V(s_t)`` of those steps.
        returns: The lambda-returns ``A_t + V(s_t)`` (unused by the strategies above).
        max_return: For ``max_mc``: the highest return (undiscounted sum of rewards) of the
            level's finished episodes, this one included (dcd's grounded value).
    """
    if strategy == "value_l1":
        return float(np.mean(np.abs(advantages)))
    if strategy == "gae":
        return float(np.mean(advantages))
    if strategy == "positive_value_loss":
        return float(np.mean(np.clip(advantages, 0.0, None)))
    if strategy == "max_mc":
        return float(np.mean(float(max_return) - values))
    raise ValueError(f"unknown score strategy {strategy!r}; valid: {', '.join(SCORE_STRATEGIES)}")


def transform_weights(transform: str, temperature: float, scores: np.ndarray) -> np.ndarray:
    """Unnormalised weights of ``scores`` (level-replay ``_score_transform``).

    ``rank``: ``1 / rank^(1/T)``, rank 1 for the highest score; ties are ranked by position (the
    first of equal scores ranks higher). ``power``: ``S^(1/T)`` (scores clipped at 0).
    ``softmax``: ``exp(S / T)`` (shifted by the maximum, which the normalisation cancels).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if transform == "rank":
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(len(scores), dtype=np.float64)
        ranks[order] = np.arange(1, len(scores) + 1)
        return 1.0 / ranks ** (1.0 / temperature)
    if transform == "power":
        return np.clip(scores, 0.0, None) ** (1.0 / temperature)
    if transform == "softmax":
        return np.exp((scores - scores.max()) / temperature) if len(scores) else scores
    raise ValueError(f"unknown score transform {transform!r}; valid: {', '.join(SCORE_TRANSFORMS)}")


# -- the options and their defaults ---------------------------------------------------------------


@dataclass(frozen=True)
class SamplerOption:
    """One ``--sampler-arg`` key: its type, what it accepts, and where its default comes from."""

    name: str
    kind: type
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    help: str = ""

    def check(self, sampler: str, value: Any) -> Any:
        """``value`` checked (and an int turned float where a float is asked); ValueError otherwise."""
        where = f"--sampler-arg {self.name}={value!r} ({sampler})"
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{where}: give true or false")
            return value
        if self.kind is str:
            if value not in self.choices:
                close = difflib.get_close_matches(str(value), list(self.choices), n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{where}: unknown value{hint}; valid: {', '.join(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{where}: give a number{self._range()}")
        if self.kind is int and float(value) != int(value):
            raise ValueError(f"{where}: give a whole number{self._range()}")
        number = int(value) if self.kind is int else float(value)
        bad = not np.isfinite(number)
        if self.low is not None:
            bad |= number <= self.low if self.low_open else number < self.low
        if self.high is not None:
            bad |= number > self.high
        if bad:
            raise ValueError(f"{where}: out of range; valid{self._range()}")
        return number

    def _range(self) -> str:
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = "" if self.high is None else f"<= {self.high:g}"
        both = " and ".join(x for x in (lo, hi) if x)
        return f" {both}" if both else ""


_COMMON = [
    SamplerOption("strategy", str, SCORE_STRATEGIES, help="the per-step signal a level's score averages"),
    SamplerOption("score_transform", str, SCORE_TRANSFORMS, help="scores -> replay weights"),
    SamplerOption("temperature", float, low=0.0, low_open=True, help="beta of the score transform"),
    SamplerOption("staleness_coef", float, low=0.0, high=1.0, help="rho: weight of staleness in P_replay"),
    SamplerOption("staleness_transform", str, SCORE_TRANSFORMS, help="staleness -> weights"),
    SamplerOption("staleness_temperature", float, low=0.0, low_open=True, help="temperature of staleness"),
    SamplerOption("schedule", str, SCHEDULES, help="when to replay rather than play a new level"),
    SamplerOption("rho", float, low=0.0, high=1.0, help="rho_min: fraction seen before any replay"),
    SamplerOption(
        "alpha", float, low=0.0, low_open=True, high=1.0, help="score update S <- (1-a)S + a*score"
    ),
]

#: The options of each learning sampler, with their defaults and the source of each default.
SAMPLER_OPTIONS: dict[str, dict[str, SamplerOption]] = {
    "plr": {
        o.name: o
        for o in [
            *_COMMON,
            SamplerOption("nu", float, low=0.0, high=1.0, help="fixed schedule: probability of a new level"),
            SamplerOption(
                "carry_partial", bool, help="keep a cut episode's partial score for its continuation"
            ),
        ]
    },
    "robust-plr": {
        o.name: o
        for o in [
            *_COMMON,
            SamplerOption("replay_prob", float, low=0.0, high=1.0, help="probability of a replay episode"),
            SamplerOption("buffer_size", int, low=1, help="levels the buffer holds"),
            SamplerOption(
                "buffer_priority", str, BUFFER_PRIORITIES, help="which member a better level evicts"
            ),
            SamplerOption(
                "exploratory_grad_updates", bool, help="also train on new-level episodes (False: PLR-perp)"
            ),
        ]
    },
}

#: PLR's defaults: level-replay's README Procgen command (``--level_replay_strategy value_l1
#: --level_replay_score_transform rank --level_replay_temperature 0.1 --staleness_coef 0.1``); the
#: rest are level-replay's ``arguments.py`` defaults (proportionate schedule, ``rho`` 1.0, ``nu``
#: 0.5, ``alpha`` 1.0, staleness transform power at temperature 1.0). ALGORITHMS.md 5.1.
PLR_DEFAULTS: dict[str, Any] = {
    "strategy": "value_l1",
    "score_transform": "rank",
    "temperature": 0.1,
    "staleness_coef": 0.1,
    "staleness_transform": "power",
    "staleness_temperature": 1.0,
    "schedule": "proportionate",
    "rho": 1.0,
    "nu": 0.5,
    "alpha": 1.0,
    "carry_partial": False,
}

#: Robust PLR's defaults: dcd's MiniGrid script ``train_scripts/grid_configs/minigrid/
#: 60_blocks_uniform/mg_60b_uni_robust_plr.json`` (strategy positive_value_loss, rank, temperature 0.3,
#: replay probability 0.5, rho 0.5, buffer 4000, no exploratory gradient updates); the rest are dcd's
#: ``arguments.py`` defaults (staleness 0.3, power at temperature 1.0, proportionate schedule, alpha
#: 1.0, buffer priority replay_support). ALGORITHMS.md 5.1b.
ROBUST_PLR_DEFAULTS: dict[str, Any] = {
    "strategy": "positive_value_loss",
    "score_transform": "rank",
    "temperature": 0.3,
    "staleness_coef": 0.3,
    "staleness_transform": "power",
    "staleness_temperature": 1.0,
    "schedule": "proportionate",
    "rho": 0.5,
    "alpha": 1.0,
    "replay_prob": 0.5,
    "buffer_size": 4000,
    "buffer_priority": "replay_support",
    "exploratory_grad_updates": False,
}

SAMPLER_DEFAULTS: dict[str, dict[str, Any]] = {"plr": PLR_DEFAULTS, "robust-plr": ROBUST_PLR_DEFAULTS}
#: The level samplers a training run can name (``--level-sampler``); ``uniform`` is the env's own draw.
LEVEL_SAMPLER_NAMES: tuple[str, ...] = ("uniform", "plr", "robust-plr")


def check_sampler_kwargs(sampler: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The sampler's options: its defaults with ``kwargs`` checked and applied.

    Raises:
        ValueError: one line naming an unknown sampler, an unknown option (did you mean) or a bad value.
    """
    if sampler not in LEVEL_SAMPLER_NAMES:
        close = difflib.get_close_matches(str(sampler), list(LEVEL_SAMPLER_NAMES), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown level sampler {sampler!r}{hint}; valid: {', '.join(LEVEL_SAMPLER_NAMES)}")
    if sampler == "uniform":
        if kwargs:
            raise ValueError(
                f"level sampler 'uniform' takes no --sampler-arg (got {', '.join(sorted(kwargs))}); "
                "valid: none, or --level-sampler plr / robust-plr"
            )
        return {}
    options = SAMPLER_OPTIONS[sampler]
    out = dict(SAMPLER_DEFAULTS[sampler])
    for key, value in kwargs.items():
        if key not in options:
            close = difflib.get_close_matches(str(key), list(options), n=1, cutoff=0.5)
            other = [name for name, opts in SAMPLER_OPTIONS.items() if name != sampler and key in opts]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            hint = f" (an option of {other[0]!r})" if other and not close else hint
            raise ValueError(
                f"unknown --sampler-arg {key!r} for level sampler {sampler!r}{hint}; valid: {', '.join(options)}"
            )
        out[key] = options[key].check(sampler, value)
    return out


def make_level_sampler(
    name: str, levels: Sequence[int], rng: np.random.Generator, num_slots: int, kwargs: dict[str, Any]
) -> PLRSampler:
    """The sampler ``name`` (``plr`` or ``robust-plr``) over ``levels`` with checked ``kwargs``."""
    options = check_sampler_kwargs(name, kwargs)
    if name == "plr":
        return PLRSampler(levels, rng, **options)
    if name == "robust-plr":
        return RobustPLRSampler(levels, rng, num_slots=num_slots, **options)
    raise ValueError(f"level sampler {name!r} is not a learning sampler; valid: plr, robust-plr")


# -- PLR --------------------------------------------------------------------------------------------


class PLRSampler:
    """Prioritized Level Replay over a finite list of training levels (see the module docstring).

    Args:
        levels: The training levels (seeds).
        rng: The generator of every draw (derive it from the run seed).
        strategy, score_transform, temperature, staleness_coef, staleness_transform,
        staleness_temperature, schedule, rho, nu, alpha: As in level-replay (:data:`PLR_DEFAULTS`
            gives the defaults and their sources).
        carry_partial: Keep the partial score of an episode cut by the rollout boundary until the
            episode ends in a later rollout (False: commit it after each update, as level-replay).

    Differences from level-replay, on purpose: every draw (unseen or replay) uses ``rng``, never
    numpy's global generator; a committed partial score of exactly 0 still marks its level seen
    (level-replay skips those); ranks break ties by level position.
    """

    #: Whether the agent must feed :meth:`update_with_rollout` after each rollout.
    scoring = True

    def __init__(
        self,
        levels: Sequence[int],
        rng: np.random.Generator,
        strategy: str = PLR_DEFAULTS["strategy"],
        score_transform: str = PLR_DEFAULTS["score_transform"],
        temperature: float = PLR_DEFAULTS["temperature"],
        staleness_coef: float = PLR_DEFAULTS["staleness_coef"],
        staleness_transform: str = PLR_DEFAULTS["staleness_transform"],
        staleness_temperature: float = PLR_DEFAULTS["staleness_temperature"],
        schedule: str = PLR_DEFAULTS["schedule"],
        rho: float = PLR_DEFAULTS["rho"],
        nu: float = PLR_DEFAULTS["nu"],
        alpha: float = PLR_DEFAULTS["alpha"],
        carry_partial: bool = PLR_DEFAULTS["carry_partial"],
    ) -> None:
        if len(levels) == 0:
            raise ValueError(f"{type(self).__name__} needs at least one level")
        self.levels = np.asarray([int(x) for x in levels], dtype=np.int64)
        if len(set(self.levels.tolist())) != len(self.levels):
            raise ValueError(f"{type(self).__name__}: the training levels repeat a seed")
        self.index = {int(lv): i for i, lv in enumerate(self.levels)}
        self.rng = rng
        self.strategy = strategy
        self.score_transform = score_transform
        self.temperature = float(temperature)
        self.staleness_coef = float(staleness_coef)
        self.staleness_transform = staleness_transform
        self.staleness_temperature = float(staleness_temperature)
        self.schedule = schedule
        self.rho = float(rho)
        self.nu = float(nu)
        self.alpha = float(alpha)
        self.carry_partial = bool(carry_partial)
        n = len(self.levels)
        self.scores = np.zeros(n)
        self.staleness = np.zeros(n)
        self.seen = np.zeros(n, dtype=bool)
        self.episodes = np.zeros(n, dtype=np.int64)  # episodes begun on each level (scored)
        self.handed_out = np.zeros(n, dtype=np.int64)  # times next_level returned each level
        self.max_returns = np.full(n, -np.inf)
        #: slot -> [level index, partial score, partial steps, partial reward sum] of the episode
        #: the rollout cut (for ``max_mc`` the partial "score" is the mean of ``V(s_t)``).
        self.partial: dict[int, list[float]] = {}
        #: slot -> the level it was handed last (what it plays now).
        self.slot_levels: dict[int, int] = {}
        self.rollouts = 0
        self.student_updates = 0
        #: Which transitions of the last rollout train the agent, (steps, slots); set by the agent.
        self.train_mask: np.ndarray | None = None

    # -- LevelSampler ------------------------------------------------------------------------------
    def next_level(self, slot: int) -> int:
        idx = self._sample()
        self.handed_out[idx] += 1
        level = int(self.levels[idx])
        self.slot_levels[int(slot)] = level
        return level

    def episode_done(self, slot: int, level: int, episode_return: float, length: int) -> None:
        """Nothing: scores come from the rollout (:meth:`update_with_rollout`)."""

    # -- sampling ----------------------------------------------------------------------------------
    @property
    def proportion_seen(self) -> float:
        return float(self.seen.mean())

    def _replay_decision(self) -> bool:
        """level-replay ``sample()``: proportionate replays with probability ``P_seen`` once
        ``P_seen >= rho``; fixed replays with probability ``1 - nu`` (always once all are seen)."""
        p_seen = self.proportion_seen
        if p_seen < self.rho or not self.seen.any():
            return False
        if self.schedule == "fixed":
            return bool(p_seen >= 1.0 or self.rng.random() > self.nu)
        return bool(self.rng.random() < p_seen)

    def _sample(self) -> int:
        if self._replay_decision() or self.seen.all():
            return self._sample_replay()
        return self._sample_unseen()

    def _update_staleness(self, idx: int) -> None:
        if self.staleness_coef > 0:
            self.staleness += 1
            self.staleness[idx] = 0

    def _sample_unseen(self) -> int:
        candidates = np.flatnonzero(~self.seen)
        idx = int(candidates[self.rng.integers(len(candidates))])
        self._update_staleness(idx)
        return idx

    def _sample_replay(self) -> int:
        weights = self.sample_weights()
        if not np.isclose(weights.sum(), 0.0):
            weights = weights / weights.sum()
            idx = int(self.rng.choice(len(weights), p=weights))
        else:
            pool = np.flatnonzero(self.seen) if self.seen.any() else np.arange(len(self.levels))
            idx = int(pool[self.rng.integers(len(pool))])
        self._update_staleness(idx)
        return idx

    def sample_weights(self) -> np.ndarray:
        """``P_replay`` over all levels (0 for unseen ones): ``(1 - rho) P_S + rho P_C``.

        As level-replay's ``sample_weights``: the score transform runs over *all* levels (unseen
        ones score 0, so they take ranks too), then unseen levels are zeroed and the rest
        normalised; staleness likewise, over seen levels only.
        """
        seen = self.seen.astype(np.float64)
        weights = transform_weights(self.score_transform, self.temperature, self.scores) * seen
        z = weights.sum()
        if z > 0:
            weights = weights / z
        if self.staleness_coef > 0:
            stale = transform_weights(self.staleness_transform, self.staleness_temperature, self.staleness)
            stale = stale * seen
            zs = stale.sum()
            if zs > 0:
                stale = stale / zs
            weights = (1 - self.staleness_coef) * weights + self.staleness_coef * stale
        return weights

    # -- scoring -----------------------------------------------------------------------------------
    def update_with_rollout(
        self,
        levels: np.ndarray,
        dones: np.ndarray,
        advantages: np.ndarray,
        values: np.ndarray,
        returns: np.ndarray,
        starts: np.ndarray | None = None,
        rewards: np.ndarray | None = None,
    ) -> None:
        """Scores every episode segment of a rollout (arrays of shape ``(steps, slots)``).

        Args:
            levels: The level of each transition (``info["level_seed"]`` of its step).
            dones: Whether the episode ended with the transition.
            advantages, values, returns: GAE advantages, ``V(s_t)`` and lambda-returns.
            starts: Whether the transition's observation began an episode (SB3's
                ``episode_starts``); only used to count episodes (None: a slot's first segment
                counts as begun).
            rewards: The reward of each transition (needed by ``max_mc``: an episode's return is
                the sum of its rewards).

        A segment that ends with ``done`` is a finished episode: its score (merged with the partial
        score of the same episode, if carried over) updates the level's score. The last segment of a
        slot, cut by the rollout boundary, becomes a partial score (:meth:`after_update`). For
        ``max_mc`` a cut episode always waits for its end (its score needs its return, as dcd's
        grounded scores): the segments' mean ``V(s_t)`` and reward sum are carried, and the finished
        episode scores ``G - mean V(s_t)`` over all its steps, ``G`` the highest return of the
        level's finished episodes, this one included.
        """
        levels = np.asarray(levels)
        dones = np.asarray(dones, dtype=bool)
        steps, slots = levels.shape
        max_mc = self.strategy == "max_mc"
        if max_mc and rewards is None:
            raise ValueError("the max_mc score needs the rewards of the rollout")
        rewards = np.zeros(levels.shape) if rewards is None else np.asarray(rewards, dtype=np.float64)
        for slot in range(slots):
            start = 0
            for t in range(steps):
                if not (dones[t, slot] or t == steps - 1):
                    continue
                seg = slice(start, t + 1)
                level = int(levels[start, slot])
                if np.any(levels[seg, slot] != level):
                    raise ValueError(
                        f"slot {slot} changed level mid-episode (steps {start}..{t}): the env and the "
                        "sampler disagree on the level being played"
                    )
                idx = self.index[level]
                begun = start > 0 or starts is None or bool(np.asarray(starts)[0, slot])
                if begun:
                    self.episodes[idx] += 1
                seg_values = np.asarray(values)[seg, slot]
                if max_mc:
                    signal = float(np.mean(seg_values))
                else:
                    signal = segment_score(
                        self.strategy,
                        np.asarray(advantages)[seg, slot],
                        seg_values,
                        np.asarray(returns)[seg, slot],
                    )
                fresh = start == 0 and starts is not None and bool(np.asarray(starts)[0, slot])
                merged, total, reward_sum = self._merge(
                    slot, idx, signal, t + 1 - start, float(rewards[seg, slot].sum()), fresh
                )
                if dones[t, slot]:
                    if max_mc:  # G: the best finished-episode return of the level, this one included
                        self.max_returns[idx] = max(self.max_returns[idx], reward_sum)
                        merged = float(self.max_returns[idx]) - merged
                    self._set_score(idx, merged)
                else:
                    self.partial[slot] = [idx, merged, total, reward_sum]
                start = t + 1
        self.rollouts += 1

    def _merge(
        self, slot: int, idx: int, score: float, steps: int, reward_sum: float, fresh: bool = False
    ) -> tuple[float, int, float]:
        """Running mean of a pending partial score of the same slot and level with ``score``, the
        steps of both and the sum of their rewards; ``fresh``: the segment begins a new episode, so
        a pending one was abandoned (the env was reset)."""
        pending = self.partial.pop(slot, None)
        if pending is None or fresh or int(pending[0]) != idx:
            # another level was pending (the env was reset): commit it as it is, unless its score
            # needs the episode's end
            if pending is not None and self.strategy != "max_mc":
                self._set_score(int(pending[0]), float(pending[1]))
            return score, steps, reward_sum
        partial, partial_steps = float(pending[1]), int(pending[2])
        total = partial_steps + steps
        return partial + (score - partial) * steps / total, total, float(pending[3]) + reward_sum

    def _set_score(self, idx: int, score: float) -> None:
        self.scores[idx] = (1 - self.alpha) * self.scores[idx] + self.alpha * score
        self.seen[idx] = True

    def after_update(self) -> None:
        """Commits the partial scores of cut episodes (level-replay ``after_update``), unless
        ``carry_partial`` or the ``max_mc`` score (which needs the episode's end)."""
        if self.carry_partial or self.strategy == "max_mc":
            return
        for idx, score, _, _ in self.partial.values():
            self._set_score(int(idx), float(score))
        self.partial.clear()

    def training_slots(self, num_slots: int) -> np.ndarray:
        """Per slot: whether the episode it plays now trains the agent (PLR: every one)."""
        return np.ones(num_slots, dtype=bool)

    # -- reporting ---------------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        """Scalars for TensorBoard: entropy of ``P_replay`` (nats), fraction seen, mean score of seen
        levels, rollouts scored, student updates."""
        p = self.sample_weights()
        z = p.sum()
        p = p / z if z > 0 else p
        nz = p[p > 0]
        return {
            "replay_entropy": float(-(nz * np.log(nz)).sum()) if nz.size else 0.0,
            "fraction_seen": self.proportion_seen,
            "mean_score": float(self.scores[self.seen].mean()) if self.seen.any() else 0.0,
            "rollouts": float(self.rollouts),
            "student_updates": float(self.student_updates),
        }

    def level_table(self) -> list[dict[str, Any]]:
        """One row per level: level, score, staleness, weight (``P_replay``), seen, times played
        (episodes begun on it), times handed out."""
        weights = self.sample_weights()
        return [
            {
                "level": int(lv),
                "score": float(self.scores[i]),
                "staleness": float(self.staleness[i]),
                "weight": float(weights[i]),
                "seen": bool(self.seen[i]),
                "times_played": int(self.episodes[i]),
                "times_handed_out": int(self.handed_out[i]),
            }
            for i, lv in enumerate(self.levels)
        ]

    # -- checkpoints: plain JSON -------------------------------------------------------------------
    _ARRAYS = ("scores", "staleness", "seen", "episodes", "handed_out", "max_returns")

    def get_state(self) -> dict[str, Any]:
        """Everything that decides later draws and scores, as JSON (lists, numbers, the generator)."""
        state: dict[str, Any] = {k: getattr(self, k).tolist() for k in self._ARRAYS}
        state["max_returns"] = [None if not np.isfinite(x) else x for x in self.max_returns.tolist()]
        state.update(
            rng=self.rng.bit_generator.state,
            partial={str(k): v for k, v in self.partial.items()},
            slot_levels={str(k): v for k, v in self.slot_levels.items()},
            rollouts=self.rollouts,
            student_updates=self.student_updates,
            levels=self.levels.tolist(),
        )
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        if list(state["levels"]) != self.levels.tolist():
            raise ValueError("the checkpoint's level sampler holds other training levels than this run's")
        for key in self._ARRAYS:
            current = getattr(self, key)
            values = state[key]
            if key == "max_returns":
                values = [-np.inf if x is None else x for x in values]
            setattr(self, key, np.asarray(values, dtype=current.dtype))
        self.rng.bit_generator.state = state["rng"]
        self.partial = {  # checkpoints from before the reward sum hold three entries
            int(k): [int(v[0]), float(v[1]), int(v[2]), float(v[3]) if len(v) > 3 else 0.0]
            for k, v in state["partial"].items()
        }
        self.slot_levels = {int(k): int(v) for k, v in state["slot_levels"].items()}
        self.rollouts = int(state["rollouts"])
        self.student_updates = int(state["student_updates"])


# -- Robust PLR -------------------------------------------------------------------------------------


class RobustPLRSampler(PLRSampler):
    """Robust PLR (PLR-perp): replay or a new level decided at every episode end, a fixed-size
    buffer, no gradient on new levels (see the module docstring and docs/plr.md, which compares each
    rule with dcd's; defaults in :data:`ROBUST_PLR_DEFAULTS`).

    At each episode end of a slot (:meth:`next_level`) the sampler decides, as dcd's
    ``sample_replay_decision`` (its finite-buffer branch), whether the next episode replays a buffer
    level drawn from ``P_replay`` or plays a new level (a training level outside the buffer, drawn
    uniformly). :meth:`training_slots` tells the agent which slots play a replay episode: the
    transitions of the others are scored but masked out of the gradient (dcd's
    ``no_exploratory_grad_updates``). ``seen`` is buffer membership. Episodes are never cut: an
    episode the rollout boundary splits is scored once it ends, over all its steps.

    Args:
        levels: The training levels (the "level generator" of a finite training set).
        rng: The generator of every draw.
        num_slots: Env slots of the training env.
        replay_prob: Probability of a replay episode once the buffer is filled to ``rho``; with the
            ``proportionate`` schedule ``min(filled, replay_prob)`` (dcd ``sample_replay_decision``).
            When no training level lies outside the buffer, every episode replays.
        buffer_size: Levels the buffer holds (its capacity is ``min(buffer_size, len(levels))``).
        buffer_priority: ``replay_support`` (a new level replaces the member with the lowest
            ``P_replay``, if its score is at least that member's) or ``score`` (the lowest score).
        exploratory_grad_updates: Train on new-level episodes too (False: Robust PLR).
        **kwargs: The PLR options (strategy, transform, temperature, staleness, schedule, rho, alpha).
    """

    def __init__(
        self,
        levels: Sequence[int],
        rng: np.random.Generator,
        num_slots: int = 1,
        strategy: str = ROBUST_PLR_DEFAULTS["strategy"],
        score_transform: str = ROBUST_PLR_DEFAULTS["score_transform"],
        temperature: float = ROBUST_PLR_DEFAULTS["temperature"],
        staleness_coef: float = ROBUST_PLR_DEFAULTS["staleness_coef"],
        staleness_transform: str = ROBUST_PLR_DEFAULTS["staleness_transform"],
        staleness_temperature: float = ROBUST_PLR_DEFAULTS["staleness_temperature"],
        schedule: str = ROBUST_PLR_DEFAULTS["schedule"],
        rho: float = ROBUST_PLR_DEFAULTS["rho"],
        alpha: float = ROBUST_PLR_DEFAULTS["alpha"],
        replay_prob: float = ROBUST_PLR_DEFAULTS["replay_prob"],
        buffer_size: int = ROBUST_PLR_DEFAULTS["buffer_size"],
        buffer_priority: str = ROBUST_PLR_DEFAULTS["buffer_priority"],
        exploratory_grad_updates: bool = ROBUST_PLR_DEFAULTS["exploratory_grad_updates"],
    ) -> None:
        super().__init__(
            levels,
            rng,
            strategy=strategy,
            score_transform=score_transform,
            temperature=temperature,
            staleness_coef=staleness_coef,
            staleness_transform=staleness_transform,
            staleness_temperature=staleness_temperature,
            schedule=schedule,
            rho=rho,
            alpha=alpha,
            carry_partial=True,  # dcd scores finished episodes only: a cut one waits for its end
        )
        self.num_slots = int(num_slots)
        self.replay_prob = float(replay_prob)
        self.capacity = min(int(buffer_size), len(self.levels))
        self.buffer_priority = buffer_priority
        self.exploratory_grad_updates = bool(exploratory_grad_updates)
        #: slot -> whether the episode it plays now is a replay episode.
        self.slot_replay: dict[int, bool] = {}
        #: New levels drawn so far (dcd ``running_sample_count``, which only new levels advance).
        self.new_draws = 0
        #: Level index -> ``new_draws`` when it was drawn as a new level, until its first finished
        #: episode decides whether it enters the buffer (dcd ``seed2timestamp_buffer``).
        self.drawn_at: dict[int, int] = {}
        self.replay_episodes = 0
        self.new_episodes = 0

    @property
    def proportion_filled(self) -> float:
        return float(self.seen.sum()) / self.capacity

    def _replay_decision(self) -> bool:
        """dcd ``sample_replay_decision`` (``sample_full_distribution``): once the buffer is filled
        to ``rho``, replay with probability ``replay_prob`` (``fixed``) or ``min(filled,
        replay_prob)`` (``proportionate``); always once no training level lies outside the buffer."""
        filled = self.proportion_filled
        if not self.seen.any() or filled < self.rho:
            return False
        if self.seen.all():  # no training level lies outside the buffer
            return True
        p = self.replay_prob if self.schedule == "fixed" else min(filled, self.replay_prob)
        return bool(self.rng.random() < p)

    def _sample_new(self) -> int:
        """A training level outside the buffer, uniformly (dcd draws a fresh level from its
        generator); it waits for its first finished episode to enter the buffer or not."""
        outside = np.flatnonzero(~self.seen)
        idx = int(outside[self.rng.integers(len(outside))])
        self.new_draws += 1
        self.drawn_at.setdefault(idx, self.new_draws)  # dcd: a level already waiting keeps its stamp
        return idx

    def next_level(self, slot: int) -> int:
        """The level of ``slot``'s next episode: a replay from ``P_replay`` (staleness updated) or a
        new level, decided anew at every episode end."""
        replay = self._replay_decision()
        idx = self._sample_replay() if replay else self._sample_new()
        self.slot_replay[int(slot)] = replay
        self.replay_episodes += int(replay)
        self.new_episodes += int(not replay)
        self.handed_out[idx] += 1
        level = int(self.levels[idx])
        self.slot_levels[int(slot)] = level
        return level

    def training_slots(self, num_slots: int) -> np.ndarray:
        """Per slot: whether the episode it plays now trains the agent (a replay episode, or any
        episode with ``exploratory_grad_updates``)."""
        if self.exploratory_grad_updates:
            return np.ones(num_slots, dtype=bool)
        return np.array([self.slot_replay.get(slot, True) for slot in range(num_slots)], dtype=bool)

    def _set_score(self, idx: int, score: float) -> None:
        """A buffer member's score is updated (``alpha``); a new level's first finished episode
        decides its entry (dcd ``_partial_update_seed_score_buffer``): it takes a free place, or
        replaces the lowest member (by ``P_replay`` or score) when its score is at least that
        member's; on entry its score is set and its staleness is the number of new levels drawn
        since it was drawn. Scores of levels neither in the buffer nor waiting are dropped."""
        if self.seen[idx]:
            super()._set_score(idx, score)
            return
        if idx not in self.drawn_at:  # evicted while played, or already turned away
            return
        stamp = self.drawn_at.pop(idx)
        members = np.flatnonzero(self.seen)
        if len(members) >= self.capacity:
            if self.buffer_priority == "score":
                worst = int(members[np.argmin(self.scores[members])])
            else:
                worst = int(members[np.argmin(self.sample_weights()[members])])
            if self.scores[worst] > score:  # turned away: it starts afresh if drawn again
                self.max_returns[idx] = -np.inf
                return
            self.seen[worst] = False
            self.scores[worst] = 0.0
            self.max_returns[worst] = -np.inf
        self.scores[idx] = score
        self.seen[idx] = True
        self.staleness[idx] = float(self.new_draws - stamp)

    def stats(self) -> dict[str, float]:
        out = super().stats()
        out.update(
            replay_episodes=float(self.replay_episodes),
            new_episodes=float(self.new_episodes),
            buffer_filled=self.proportion_filled,
        )
        return out

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state.update(
            slot_replay={str(k): v for k, v in self.slot_replay.items()},
            new_draws=self.new_draws,
            drawn_at={str(k): v for k, v in self.drawn_at.items()},
            replay_episodes=self.replay_episodes,
            new_episodes=self.new_episodes,
        )
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        if "slot_replay" not in state:
            raise ValueError(
                "the checkpoint holds the earlier Robust PLR (replay decided per rollout batch), "
                "which this version does not resume; start the run afresh"
            )
        super().set_state(state)
        self.slot_replay = {int(k): bool(v) for k, v in state["slot_replay"].items()}
        self.new_draws = int(state["new_draws"])
        self.drawn_at = {int(k): int(v) for k, v in state["drawn_at"].items()}
        self.replay_episodes = int(state["replay_episodes"])
        self.new_episodes = int(state["new_episodes"])


__all__ = [
    "LEVEL_SAMPLER_NAMES",
    "PLRSampler",
    "PLR_DEFAULTS",
    "ROBUST_PLR_DEFAULTS",
    "RobustPLRSampler",
    "SAMPLER_OPTIONS",
    "check_sampler_kwargs",
    "make_level_sampler",
    "segment_score",
    "transform_weights",
]
