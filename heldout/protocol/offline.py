"""Offline runs: ``heldout train --agent bc --dataset PATH``, an ordinary run folder learnt from a dataset.

An offline agent (:data:`heldout.agents.offline.OFFLINE_AGENTS`) learns from minibatches of a dataset
(:mod:`heldout.protocol.dataset`, :mod:`heldout.protocol.loader`) and never steps an env while it
learns; the protocol around it is the online one (:mod:`heldout.protocol.run`): the same split and
evaluation lists, periodic and final evaluation on training and held-out levels (or a contextual
env's contexts), ``summary.json``,
TensorBoard and ``progress.csv``, checkpoints and an exact ``--resume``.

``timesteps`` counts the **transitions the learner consumes**: ``ceil(timesteps / batch_size)``
updates of ``batch_size`` transitions (or windows, for DT) each, so ``--timesteps 1000000`` with
``batch_size`` 256 is 3907 updates, about one pass over a 1M-transition dataset. ``eval_freq``,
``checkpoint_freq`` and ``dataset_epochs`` are counted in the same transitions.

This module checks an offline config and builds its agent and its learner (:class:`OfflineModel`);
:mod:`heldout.protocol.run` drives it, :mod:`heldout.protocol.checkpoint` saves and restores it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from heldout.protocol.config import TrainConfig
from heldout.protocol.dataset import Dataset, open_dataset
from heldout.protocol.loader import MinibatchLoader

#: Minibatch transitions between two rows of ``progress.csv`` (the means of the updates' scalars).
LOG_TRANSITIONS = 10_000


def offline_agents() -> Any:
    """The offline agent registry (imported on demand: torch)."""
    from heldout.agents.offline import OFFLINE_AGENTS

    return OFFLINE_AGENTS


def is_offline(agent: str) -> bool:
    """Whether ``agent`` names an offline agent."""
    return agent in offline_agents()


def check_offline_config(config: TrainConfig, family: Any) -> Dataset:
    """The checks of an offline config that need no evaluation list; returns its dataset, opened.

    Raises:
        ValueError: one line naming the bad value: no dataset, a dataset of another env or with other
            observations, a corrupt one, agent arguments, options that offline runs do not take.
    """
    agent_cls = offline_agents().get(config.agent)
    if not config.dataset:
        raise ValueError(
            f"agent {config.agent!r} learns offline and needs --dataset PATH (a dataset 'heldout collect' wrote)"
        )
    if config.wrappers:
        raise ValueError(
            f"offline agent {config.agent!r} takes no --wrapper ({', '.join(config.wrappers)}): it sees the "
            "dataset's observations"
        )
    if config.level_sampler != "uniform":
        raise ValueError(
            f"level_sampler {config.level_sampler!r} needs an online agent; offline agent {config.agent!r} "
            "plays no training level (valid: uniform)"
        )
    agent_cls.check_kwargs(dict(config.agent_kwargs))
    from heldout.protocol.checks import check_int

    check_int("dataset_epochs", config.dataset_epochs, minimum=0)
    dataset = open_dataset(config.dataset)
    if dataset.env != config.env:
        raise ValueError(
            f"--dataset {config.dataset!r} was collected on env {dataset.env!r}, not {config.env!r}; "
            f"valid: --env {dataset.env}"
        )
    if dataset.heldout.get("distribution_mode", config.distribution_mode) != config.distribution_mode:
        raise ValueError(
            f"--dataset {config.dataset!r} was collected in distribution_mode "
            f"{dataset.heldout.get('distribution_mode')!r}, not {config.distribution_mode!r}"
        )
    space = probe_spaces(config, family)[0]
    stored = dataset.observation_space
    if tuple(stored.shape) != tuple(space.shape) or stored.dtype != space.dtype:
        raise ValueError(
            f"--dataset {config.dataset!r} holds observations {stored.dtype}{list(stored.shape)}, env "
            f"{config.env!r} gives {space.dtype}{list(space.shape)}"
        )
    batch = int({**agent_cls.defaults, **config.agent_kwargs}.get("batch_size", 256))
    if batch > dataset.total_steps:
        raise ValueError(
            f"batch_size {batch} is more than the {dataset.total_steps} transitions of --dataset {config.dataset!r}"
        )
    if config.dataset_epochs and config.timesteps > config.dataset_epochs * dataset.total_steps:
        raise ValueError(
            f"timesteps {config.timesteps} is more than dataset_epochs {config.dataset_epochs} x the "
            f"{dataset.total_steps} transitions of --dataset {config.dataset!r} can serve; valid: at most "
            f"{config.dataset_epochs * dataset.total_steps}"
        )
    return dataset


def check_dataset_held_out(config: TrainConfig, dataset: Dataset, split: Any, lists: dict[str, list]) -> None:
    """Refuses a dataset played on any level (or context) the run holds out: in its test or
    validation set, or in the evaluation list drawn from it.

    Raises:
        ValueError: naming the dataset, the split and the shared levels (or a shared context).
    """
    if dataset.context_features:
        _check_dataset_contexts(config, dataset, split, lists)
        return
    for name, items in lists.items():
        if name == "train":
            continue
        held_out = split.get(name)
        listed = {int(x) for x in items}
        shared = [level for level in dataset.levels if level in listed or level in held_out]
        if shared:
            shown = ", ".join(map(str, shared[:5])) + (
                f", ... ({len(shared)} in all)" if len(shared) > 5 else ""
            )
            raise ValueError(
                f"--dataset {config.dataset!r} was played on {name} level(s) {shown} of this run: its held-out "
                f"levels must be unseen (its levels: {dataset.heldout.get('levels_described', '?')}; choose "
                "--test-start / --num-levels that avoid them)"
            )


def _check_dataset_contexts(
    config: TrainConfig, dataset: Dataset, split: Any, lists: dict[str, list]
) -> None:
    """:func:`check_dataset_held_out` for a contextual env's dataset: no recorded context may be a
    context of a held-out evaluation list, or lie in a held-out distribution's support (every
    feature within one component's intervals; a feature the component leaves unset: the split's
    default for it)."""
    names = dataset.context_features
    keys = [f"context/{n}" for n in names]
    played = {
        tuple(float(v) for v in row)
        for e in dataset.read_episodes(range(len(dataset.lengths)), keys=keys)
        for row in np.unique(np.stack([e[k] for k in keys], axis=1), axis=0)
    }
    for name, items in lists.items():
        if name == "train":
            continue
        listed = {tuple(float(item["context"][n]) for n in names) for item in items}
        for values in sorted(played):
            context = dict(zip(names, values))
            if values in listed or split.get(name).holds(context, split.defaults):
                shown_context = ", ".join(f"{k}={v:g}" for k, v in context.items())
                raise ValueError(
                    f"--dataset {config.dataset!r} was played in context {shown_context}, which the run's {name} "
                    f"contexts ({split.get(name).describe()}) hold: its held-out contexts must be unseen (its "
                    f"contexts: {dataset.heldout.get('contexts_described', '?')}; choose --test-context / "
                    "--validation-context that avoid them)"
                )


def probe_spaces(config: TrainConfig, family: Any) -> tuple[Any, Any]:
    """The observation and action spaces evaluation gives the agent (a one-env probe)."""
    env = family.probe_env(config)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def timesteps_note(agent_cls: type, config: TrainConfig) -> str | None:
    """The exact number of transitions consumed when ``timesteps`` is no whole number of minibatches."""
    batch = int({**agent_cls.defaults, **config.agent_kwargs}.get("batch_size", 256))
    used = -(-config.timesteps // batch) * batch
    if used == config.timesteps:
        return None
    return (
        f"note: timesteps {config.timesteps} is trained as {used}: whole minibatches of batch_size "
        f"{batch} transitions ({used // batch} updates)"
    )


def build_agent(config: TrainConfig, family: Any, device: str = "auto") -> Any:
    """The run's offline agent, on the spaces evaluation gives it, seeded by the run seed."""
    import torch

    from heldout.protocol.checks import resolve_device

    obs_space, act_space = probe_spaces(config, family)
    agent_cls = offline_agents().get(config.agent)
    return agent_cls(
        obs_space,
        act_space,
        device=torch.device(resolve_device(device)),
        seed=config.seed,
        **config.agent_kwargs,
    )


class OfflineModel:
    """An offline agent and its minibatches, with what the protocol asks of a model.

    ``num_timesteps`` (transitions consumed), ``logger`` (SB3's), ``device``, ``predict`` and
    ``observe`` (the agent's, for evaluation) and :meth:`learn`.

    Args:
        config: The run.
        family: The env's family.
        dataset: The opened dataset (:func:`check_offline_config`).
    """

    def __init__(self, config: TrainConfig, family: Any, dataset: Dataset) -> None:
        self.agent = build_agent(config, family, config.device)
        self.device = self.agent.device
        self.dataset = dataset
        self.loader = MinibatchLoader(
            dataset,
            self.agent.batch_size,
            seed=config.seed,
            sequence_length=self.agent.sequence_length,
            device=self.device,
            windows=bool(self.agent.needs_sequences),
        )
        self.num_timesteps = 0
        self.n_updates = 0
        self.logger: Any = None
        self.log_every = max(1, LOG_TRANSITIONS // self.agent.batch_size)
        self._sums: dict[str, float] = {}
        self._count = 0
        #: The scalars of the last update that were not finite (NaN or Inf loss): the run stops.
        self.diverged: list[str] = []

    def set_logger(self, logger: Any) -> None:
        """SB3's logger (CSV and TensorBoard in the run folder)."""
        self.logger = logger

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """The agent's :meth:`~heldout.agents.offline.base.OfflineAgent.predict`."""
        return self.agent.predict(*args, **kwargs)

    def observe(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """The agent's ``observe`` (DT lowers its return-to-go)."""
        self.agent.observe(rewards, dones)

    def record(self) -> bool:
        """Records the means of the updates' scalars since the last row (``train/<name>``), the epoch
        and ``time/total_timesteps``; False when no update happened since."""
        if not self._count:
            return False
        for key, total in self._sums.items():
            self.logger.record(f"train/{key}", total / self._count)
        self.logger.record("train/n_updates", self.n_updates)
        self.logger.record("train/epoch", self.num_timesteps / max(self.dataset.total_steps, 1))
        self.logger.record("time/total_timesteps", self.num_timesteps)
        self._sums, self._count = {}, 0
        return True

    def learn(self, total_timesteps: int, boundary: Callable[[OfflineModel, bool], None]) -> None:
        """Updates until ``total_timesteps`` transitions are consumed; after each update
        ``boundary(model, logged)`` (``logged``: a row was recorded) evaluates, dumps, checkpoints,
        and stops a run whose update was not finite (:attr:`diverged`)."""
        batches = self.loader.batches(start=self.n_updates)
        while self.num_timesteps < total_timesteps:
            scalars = self.agent.update(next(batches))
            self.diverged = [k for k, v in scalars.items() if not math.isfinite(v)]
            for key, value in scalars.items():
                self._sums[key] = self._sums.get(key, 0.0) + float(value)
            self._count += 1
            self.n_updates += 1
            self.num_timesteps += self.agent.batch_size
            logged = False
            if self.n_updates % self.log_every == 0 or self.num_timesteps >= total_timesteps:
                logged = self.record()
            boundary(self, logged)


__all__ = [
    "LOG_TRANSITIONS",
    "OfflineModel",
    "build_agent",
    "check_dataset_held_out",
    "check_offline_config",
    "is_offline",
    "offline_agents",
    "timesteps_note",
]
