"""A dataset writer in a child process: compression and HDF5 on a core the policy leaves free.

``heldout collect`` plays a policy and writes every finished episode (:class:`~heldout.protocol.
dataset.DatasetWriter`: compression, Fletcher-32, HDF5). Written inline, that work stops the play for
~40 µs a frame. Where a core is spare (the policy acts on a GPU, or torch's threads leave a CPU core
free: :func:`spare_core`) the episodes go over a queue to a :class:`BackgroundWriter`, whose child
process runs the same ``DatasetWriter``: the same calls in the same order, so the same file, byte for
byte (tests/protocol/test_background_writer.py). Where no core is spare (two cores that torch's two
threads fill) a second process only takes turns with the play, so collection writes inline.

The child is started with ``spawn`` (a fresh interpreter: nothing of the parent's torch or OpenMP
state); a failure in it (a full disk) is raised in the parent at its next call, with the child's
message, and the child's temporary folder is removed. A child whose parent was killed removes its
folder and ends.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from heldout.protocol.dataset import DatasetWriter, check_episode

#: Episodes in flight to the child at most: beyond it ``add_episode`` waits (memory stays bounded).
BACKLOG = 32
#: Seconds between checks that the child is alive while waiting on it.
_POLL = 0.5


def spare_core(device: Any = "cpu", cores: int | None = None, torch_threads: int | None = None) -> bool:
    """Whether a writer process would have a core of its own: the policy acts on an accelerator and
    the machine has two cores or more, or torch's threads and the main thread leave a CPU core free.

    Args:
        device: The policy's device (``torch.device`` or its name).
        cores: The CPU cores this process may use (default: its affinity mask).
        torch_threads: torch's intra-op threads (default: ``torch.get_num_threads()``).
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if getattr(device, "type", str(device)).split(":")[0] != "cpu":
        return cores >= 2
    if torch_threads is None:
        import torch

        torch_threads = torch.get_num_threads()
    return cores > torch_threads


class BackgroundWriter:
    """:class:`~heldout.protocol.dataset.DatasetWriter`'s interface (``add_episode``, ``close``,
    ``abort``, ``episodes``, ``steps``), the writing done by a child process.

    Args:
        out: The dataset folder (missing or empty: :func:`~heldout.protocol.dataset.check_out`).
        observation_space: The env's observation space (a Box).
        action_space: The env's action space (Discrete).
    """

    def __init__(
        self, out: str | os.PathLike[str], observation_space: gym.Space, action_space: gym.Space
    ) -> None:
        context = mp.get_context("spawn")
        self.out = Path(out)
        self.observation_space, self.action_space = observation_space, action_space
        self.episodes = 0
        self.steps = 0
        self._inbox: Any = context.Queue(maxsize=BACKLOG)
        self._outbox: Any = context.Queue()
        self._child = context.Process(
            target=_serve,
            args=(str(self.out), observation_space, action_space, self._inbox, self._outbox),
            name="heldout-dataset-writer",
            daemon=True,
        )
        self._child.start()
        self._failure: str | None = None

    def add_episode(self, *episode: Any, contexts: dict[str, np.ndarray] | None = None) -> None:
        """``DatasetWriter.add_episode``'s arguments (observations, actions, rewards, terminations,
        truncations, levels, checkpoint), checked as it checks them and handed to the child."""
        check_episode(episode[0], episode[1], episode[5], contexts)
        self._send(("episode", episode, contexts))
        self.episodes += 1
        self.steps += len(episode[1])

    def close(self, heldout: dict[str, Any], dataset_id: str) -> Path:
        """Has the child write ``metadata.json`` and rename the folder to ``out``; returns it."""
        self._send(("close", heldout, dataset_id))
        while (reply := self._reply(_POLL)) is None:
            pass
        kind, value = reply
        if kind == "error":
            self.abort()
            raise RuntimeError(f"writing the dataset failed: {value}")
        self._child.join()
        return Path(value)

    def abort(self) -> None:
        """Stops the child and deletes its temporary folder: nothing is left behind."""
        if self._child.is_alive():
            self._child.terminate()
        self._child.join()
        # episodes the child will never read: the queue's feeder thread would wait on them forever
        # at exit (multiprocessing joins it), so it is not joined
        self._inbox.cancel_join_thread()
        self._remove_temporary()

    def _send(self, message: tuple) -> None:
        """Puts ``message`` in the child's queue, raising the child's failure if it has failed."""
        while True:
            self._raise_failure()
            try:
                self._inbox.put(message, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _raise_failure(self) -> None:
        if self._failure is None and (reply := self._reply(None)) is not None and reply[0] == "error":
            self._failure = reply[1]
        if self._failure is not None:
            self.abort()
            raise RuntimeError(f"writing the dataset failed: {self._failure}")

    def _reply(self, timeout: float | None) -> tuple[str, str] | None:
        """The child's report (``("done", path)`` or ``("error", message)``) if one comes within
        ``timeout`` seconds (None: at once), an error if the child ended without one, else None."""
        try:
            return self._outbox.get(timeout=timeout) if timeout else self._outbox.get_nowait()
        except queue.Empty:
            if self._child.is_alive():
                return None
            return "error", f"the writer process ended with exit code {self._child.exitcode}"

    def _remove_temporary(self) -> None:
        if self._child.pid is not None:
            shutil.rmtree(DatasetWriter.temporary(self.out, self._child.pid), ignore_errors=True)


def _serve(out: str, observation_space: gym.Space, action_space: gym.Space, inbox: Any, outbox: Any) -> None:
    """The child: a DatasetWriter fed from ``inbox``; reports the dataset's path or its failure."""
    writer = None
    try:
        writer = DatasetWriter(out, observation_space, action_space)
        parent = mp.parent_process()
        while True:
            try:
                message = inbox.get(timeout=_POLL)
            except queue.Empty:
                if parent is not None and not parent.is_alive():  # killed: nobody will close
                    writer.abort()
                    return
                continue
            if message[0] == "episode":
                writer.add_episode(*message[1], contexts=message[2])
            else:
                outbox.put(("done", str(writer.close(message[1], message[2]))))
                return
    except BaseException as error:  # reported to the parent, which raises it
        if writer is not None:
            writer.abort()
        outbox.put(("error", f"{type(error).__name__}: {error}"))


__all__ = ["BACKLOG", "BackgroundWriter", "spare_core"]
