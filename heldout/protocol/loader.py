"""Minibatches streamed from an offline dataset (:mod:`heldout.protocol.dataset`) without loading it.

An *epoch* is one shuffled pass over the dataset's items: transitions ``(episode, t)``, or for
sequence agents (DT) windows of ``K`` steps starting at every step of every episode. Memory is bounded
by a *block*: each epoch orders the episodes at random and cuts that order into blocks of at most
``buffer_bytes`` of observations (at least one episode each); a block is read whole, its items are
shuffled, and minibatches of ``batch_size`` are handed out in that order (a block's last partial
minibatch is dropped). Resident memory is one block plus one minibatch, whatever the dataset's size.

Everything is a function of ``(seed, epoch, block)`` (numpy generators seeded by those), so the
``n``-th minibatch is the same in every process: :meth:`MinibatchLoader.batches` starts at any
``n``, which is how an offline run resumes exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from heldout.protocol.dataset import Dataset

#: Observation bytes one block may hold (1 GiB: 87k Procgen frames; the 4 GB bound of issue 29 with room).
BUFFER_BYTES = 1 << 30


@dataclass
class Block:
    """One block of episodes read into memory.

    Attributes:
        episodes: Their indices in the dataset.
        data: Their arrays (:meth:`Dataset.read_episodes`), in the order of ``episodes``.
        items: ``(k, t)`` per item: position in ``episodes`` and first step, shuffled.
    """

    episodes: np.ndarray
    data: list[dict[str, np.ndarray]]
    items: np.ndarray


class MinibatchLoader:
    """Minibatches of a dataset as the offline agents take them (the contract's batch keys).

    Args:
        dataset: The opened dataset.
        batch_size: Items per minibatch.
        seed: The run seed: every order is drawn from it.
        sequence_length: 1 for transitions; K > 1 for windows of K steps (DT).
        buffer_bytes: Observation bytes one block holds at most.
        device: Where the tensors go (None: numpy arrays are returned).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        sequence_length: int = 1,
        buffer_bytes: int = BUFFER_BYTES,
        device: Any = None,
        windows: bool = False,
    ) -> None:
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.k = int(sequence_length)
        self.windows = bool(windows)
        self.device = device
        frame = (
            int(np.prod(dataset.observation_space.shape)) * np.dtype(dataset.observation_space.dtype).itemsize
        )
        self.block_steps = max(1, int(buffer_bytes) // max(frame, 1))
        self._epoch_cache: dict[int, list[np.ndarray]] = {}

    # -- the order ---------------------------------------------------------------------------------

    def blocks(self, epoch: int) -> list[np.ndarray]:
        """The episodes of each block of ``epoch``, in order."""
        if epoch not in self._epoch_cache:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset.lengths))
            sizes = self.dataset.lengths[order] + 1
            out: list[np.ndarray] = []
            start, total = 0, 0
            for i, size in enumerate(sizes):
                if total and total + size > self.block_steps:
                    out.append(order[start:i])
                    start, total = i, 0
                total += int(size)
            out.append(order[start:])
            self._epoch_cache = {epoch: out}
        return self._epoch_cache[epoch]

    def _items(self, episodes: np.ndarray, epoch: int, block: int) -> np.ndarray:
        lengths = self.dataset.lengths[episodes]
        k = np.repeat(np.arange(len(episodes)), lengths)
        t = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, np.int64)
        items = np.stack([k, t], axis=1)
        return items[np.random.default_rng([self.seed, epoch, block, 1]).permutation(len(items))]

    def batches_in(self, epoch: int) -> list[int]:
        """Minibatches of each block of ``epoch``."""
        return [int(self.dataset.lengths[e].sum()) // self.batch_size for e in self.blocks(epoch)]

    def batches_per_epoch(self, epoch: int = 0) -> int:
        """Minibatches in ``epoch`` (blocks drop their partial last one, so this varies a little)."""
        return sum(self.batches_in(epoch))

    # -- the minibatches ---------------------------------------------------------------------------

    def index_batches(self, start: int = 0) -> Iterator[tuple[int, Block, np.ndarray]]:
        """``(epoch, block, items)`` per minibatch from the ``start``-th on, ``items`` the ``(k, t)``
        rows of the block's data; endless (epoch after epoch)."""
        if self.dataset.total_steps < self.batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is more than the dataset's {self.dataset.total_steps} transitions"
            )
        epoch, skip = 0, int(start)
        while True:
            counts = self.batches_in(epoch)
            if not sum(counts):  # every block smaller than a minibatch: nothing would ever come
                raise ValueError(
                    f"no block of the dataset holds a minibatch of {self.batch_size}: raise buffer_bytes"
                )
            if skip >= sum(counts):
                skip -= sum(counts)
                epoch += 1
                continue
            for b, (episodes, count) in enumerate(zip(self.blocks(epoch), counts)):
                if skip >= count:
                    skip -= count
                    continue
                block = Block(
                    episodes, list(self.dataset.read_episodes(episodes)), self._items(episodes, epoch, b)
                )
                for j in range(skip, count):
                    yield epoch, block, block.items[j * self.batch_size : (j + 1) * self.batch_size]
                skip = 0
            epoch += 1

    def batches(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """The minibatches from the ``start``-th on (endless): transitions or windows."""
        for _, block, items in self.index_batches(start):
            yield self.to_device(
                self.windows_of(block, items) if self.windows else self.transitions_of(block, items)
            )

    def transitions_of(self, block: Block, items: np.ndarray) -> dict[str, np.ndarray]:
        """``obs``, ``next_obs``, ``action``, ``reward``, ``terminated``, ``truncated`` of ``items``."""
        cols: dict[str, list[Any]] = {
            k: [] for k in ("obs", "next_obs", "action", "reward", "terminated", "truncated")
        }
        for k, t in items:
            ep = block.data[k]
            cols["obs"].append(ep["observations"][t])
            cols["next_obs"].append(ep["observations"][t + 1])
            cols["action"].append(ep["actions"][t])
            cols["reward"].append(ep["rewards"][t])
            cols["terminated"].append(ep["terminations"][t])
            cols["truncated"].append(ep["truncations"][t])
        return {
            "obs": np.stack(cols["obs"]),
            "next_obs": np.stack(cols["next_obs"]),
            "action": np.asarray(cols["action"], dtype=np.int64),
            "reward": np.asarray(cols["reward"], dtype=np.float32),
            "terminated": np.asarray(cols["terminated"], dtype=np.float32),
            "truncated": np.asarray(cols["truncated"], dtype=np.float32),
        }

    def windows_of(self, block: Block, items: np.ndarray) -> dict[str, np.ndarray]:
        """``obs``, ``action``, ``rtg``, ``timestep``, ``mask`` of windows of K steps from each item's
        step to ``min(t + K, T)``, right-padded (zero frames, action 0, rtg 0, mask False)."""
        K, B = self.k, len(items)
        shape = self.dataset.observation_space.shape
        obs = np.zeros((B, K, *shape), dtype=self.dataset.observation_space.dtype)
        action = np.zeros((B, K), dtype=np.int64)
        rtg = np.zeros((B, K), dtype=np.float32)
        timestep = np.zeros((B, K), dtype=np.int64)
        mask = np.zeros((B, K), dtype=bool)
        for i, (k, t) in enumerate(items):
            ep = block.data[k]
            n = min(K, len(ep["actions"]) - t)
            suffix = np.cumsum(ep["rewards"][::-1].astype(np.float64))[::-1]
            obs[i, :n] = ep["observations"][t : t + n]
            action[i, :n] = ep["actions"][t : t + n]
            rtg[i, :n] = suffix[t : t + n]
            timestep[i, :n] = np.arange(t, t + n)
            mask[i, :n] = True
        return {"obs": obs, "action": action, "rtg": rtg, "timestep": timestep, "mask": mask}

    def to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """``batch`` as torch tensors on the loader's device (numpy arrays without one)."""
        if self.device is None:
            return batch
        import torch

        return {k: torch.as_tensor(v).to(self.device) for k, v in batch.items()}


__all__ = ["BUFFER_BYTES", "MinibatchLoader"]
