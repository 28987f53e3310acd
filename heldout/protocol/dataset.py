"""Offline datasets in Minari's layout: episodes of a trained agent, in HDF5, that ``minari`` opens.

A dataset is a folder ``DIR`` holding ``DIR/data/metadata.json`` and ``DIR/data/main_data.hdf5``,
the layout of Minari's HDF5 storage (Farama's standard for offline RL; ``minari.MinariDataset(
"DIR/data")`` reads it, ``tests/protocol/test_dataset.py`` checks so where ``minari`` is installed).
heldout writes it itself with ``h5py``: ``minari`` needs NumPy 2, which the 3.11/3.12 stack cannot
have, and the format is plain HDF5 either way. Nothing is pickled.

``main_data.hdf5`` holds one group ``episode_<i>`` per completed episode of ``T`` steps:

* ``observations`` (T+1, *obs_shape) in the env's dtype (uint8 frames): the first frame after the
  reset, then each step's next observation; the last is the true last frame, or for Procgen (which
  resets itself and keeps no last frame) the next episode's first frame, as gen_dgrl stores it;
* ``actions`` (T,) int64, ``rewards`` (T,) float32 (raw), ``terminations`` and ``truncations`` (T,)
  bool (a time-out is a truncation where the env tells one apart; Procgen's count as terminal);
* ``infos/level_seed`` (T+1,) int64: the level of the reset and of every step (-1 for a
  contextual env, which has none);
* ``infos/context/<feature>`` (T+1,) float64, a contextual env's only: the value of each context
  feature at the reset and at every step (``metadata.json``'s ``heldout.context_features`` names them);
* attributes ``id``, ``total_steps``, ``seed`` (the level: the reset seed of a seeded env),
  ``checkpoint`` (the step of the weights that played it) and ``return``.

Each array is stored in chunks of at most :data:`CHUNK` steps, gzip-compressed and with Fletcher-32
checksums, so a flipped byte is an error, never silent data. The frames are compressed by ISA-L's
deflate (``isal``: the same zlib stream as the standard library's ``zlib``, about 4x faster; ``zlib``
where isal is missing) and written as finished chunks (``write_direct_chunk``, with the checksum
HDF5's filter computes: :func:`fletcher32`); every reader, h5py's and Minari's, decompresses and
checks them as any other gzip + Fletcher-32 chunk. ``metadata.json`` holds Minari's keys
(``dataset_id``, ``total_episodes``, ``total_steps``, ``data_format``, ``observation_space``,
``action_space``, ``minari_version``, ...) and ``heldout``: how the dataset was made (the run, its
env and env id, its checkpoints, training levels, steps, episodes, mean return, the policy's
choice of actions) and the file's exact size, so a truncated file is refused at once.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

try:  # ISA-L's deflate: the same zlib stream as zlib's, about 4x faster at level 1 (a dependency)
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - a platform without its wheels: the standard library's
    _deflate = zlib

#: The folder inside a dataset that Minari reads, and its two files.
DATA, MAIN, METADATA = "data", "main_data.hdf5", "metadata.json"
#: Version of heldout's layout (``metadata.json``: ``heldout.format_version``).
FORMAT_VERSION = 1
#: The Minari dataset version whose layout this is (Minari 0.4.0 to 0.5.3 read it).
MINARI_VERSION = "0.5.0"
#: Steps per HDF5 chunk of each array.
CHUNK = 64
#: gzip level (1: fastest; Procgen frames compress ~4x at level 1 already).
GZIP_LEVEL = 1


def fletcher32(data: bytes) -> int:
    """HDF5's Fletcher-32 checksum of ``data`` (``H5_checksum_fletcher32``): sums of its big-endian
    16-bit words (an odd last byte is the high byte of one more word) with end-around carry, so each
    sum is its value modulo 65535, represented in ``1..65535`` unless every byte is zero.

    ``sum1`` is the sum of the ``n`` words and ``sum2`` the sum of the running sums, so word ``i``
    counts ``n - i`` times in it. Computed a block of :data:`_F32_BLOCK` words at a time, the blocks'
    weighted sums in float64 (exact: every partial sum stays below 2**53) with ``einsum``, not BLAS:
    OpenBLAS's threads spin beside torch's while collection plays, which slowed it by a fifth.

    Returns:
        ``sum2 << 16 | sum1``, which the Fletcher-32 filter appends to a chunk, little-endian.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    n = (len(raw) + 1) // 2
    padded = np.zeros(-(-n // _F32_BLOCK) * _F32_BLOCK * 2, np.uint8)  # zero words add nothing
    padded[: len(raw)] = raw
    blocks = padded.view(">u2").astype(np.float64).reshape(-1, _F32_BLOCK)
    block_sums = blocks.sum(axis=1).astype(np.int64)
    # word j of block b counts n - (b * B + j) times: (n - (b + 1) * B) times its block sum, plus B - j
    inside = np.einsum("ij,j->i", blocks, _F32_WEIGHTS).astype(np.int64)
    after = n - _F32_BLOCK * np.arange(1, len(block_sums) + 1, dtype=np.int64)
    sum1, sum2 = int(block_sums.sum()), int(inside.sum() + (after * block_sums).sum())

    def fold(total: int) -> int:
        return 0 if total == 0 else (total - 1) % 65535 + 1

    return fold(sum2) << 16 | fold(sum1)


#: Words per block of :func:`fletcher32` (a block's weighted sum is below 65535 * B**2 < 2**53).
_F32_BLOCK = 512
_F32_WEIGHTS = np.arange(_F32_BLOCK, 0, -1, dtype=np.float64)


def _packed_chunk(rows: np.ndarray) -> bytes:
    """One chunk as HDF5's gzip + Fletcher-32 pipeline stores it: a zlib stream, then the checksum."""
    compressed = _deflate.compress(np.ascontiguousarray(rows), GZIP_LEVEL)  # the buffer itself, not a copy
    return compressed + fletcher32(compressed).to_bytes(4, "little")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - a dependency of heldout
        raise ValueError("offline datasets need h5py (pip install h5py; make install installs it)") from None
    return h5py


# -- spaces as Minari serialises them -------------------------------------------------------------


def serialize_space(space: gym.Space) -> str:
    """``space`` as Minari's JSON (``minari.serialization.serialize_space``): Box and Discrete.

    Raises:
        ValueError: another kind of space (one line naming it).
    """
    if isinstance(space, gym.spaces.Box):
        data: dict[str, Any] = {
            "type": "Box",
            "dtype": str(space.dtype),
            "shape": list(space.shape),
            "low": space.low.tolist(),
            "high": space.high.tolist(),
        }
    elif isinstance(space, gym.spaces.Discrete):
        data = {"type": "Discrete", "dtype": "int64", "start": int(space.start), "n": int(space.n)}
    else:
        raise ValueError(
            f"offline datasets hold Box observations and Discrete actions, not {type(space).__name__}; "
            "valid: Box, Discrete"
        )
    return json.dumps(data)


def deserialize_space(text: str) -> gym.Space:
    """The space :func:`serialize_space` wrote.

    Raises:
        ValueError: text that is no such space.
    """
    try:
        data = json.loads(text)
        if data["type"] == "Box":
            return gym.spaces.Box(
                low=np.asarray(data["low"], dtype=data["dtype"]),
                high=np.asarray(data["high"], dtype=data["dtype"]),
                shape=tuple(data["shape"]),
                dtype=data["dtype"],
            )
        if data["type"] == "Discrete":
            return gym.spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"no Box or Discrete space ({type(exc).__name__}: {exc})") from None
    raise ValueError(f"space type {data.get('type')!r} is not Box or Discrete")


# -- writing --------------------------------------------------------------------------------------


def check_out(out: str | os.PathLike[str]) -> Path:
    """``out`` as the folder of a new dataset: missing (or an empty folder) with a writable parent.

    Raises:
        ValueError: it holds something, or is a file, or cannot be written.
    """
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(
            f"--out {str(out)!r} exists and is not an empty folder: a dataset needs a new folder"
        )
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out {str(out)!r}: {str(parent)!r} is not writable")
    return path


def check_episode(
    observations: np.ndarray,
    actions: np.ndarray,
    levels: np.ndarray,
    contexts: dict[str, np.ndarray] | None = None,
) -> None:
    """Raises ValueError unless an episode of ``T = len(actions) >= 1`` steps has T+1 observations,
    levels and values of each context feature."""
    n = len(actions)
    if n < 1 or len(observations) != n + 1 or len(levels) != n + 1:
        raise ValueError(f"an episode of {n} actions needs {n + 1} observations and levels")
    if contexts is not None and any(len(v) != n + 1 for v in contexts.values()):
        raise ValueError(f"an episode of {n} actions needs {n + 1} values of each context feature")


class DatasetWriter:
    """Writes a dataset episode by episode into a temporary folder, renamed to ``out`` by :meth:`close`.

    Args:
        out: The dataset folder (missing or empty: :func:`check_out`).
        observation_space: The env's observation space (a Box).
        action_space: The env's action space (Discrete).
    """

    def __init__(
        self, out: str | os.PathLike[str], observation_space: gym.Space, action_space: gym.Space
    ) -> None:
        h5py = _h5py()
        self.out = Path(out)
        self.observation_space, self.action_space = observation_space, action_space
        self._spaces = (serialize_space(observation_space), serialize_space(action_space))
        self.tmp = self.temporary(self.out, os.getpid())
        shutil.rmtree(self.tmp, ignore_errors=True)
        (self.tmp / DATA).mkdir(parents=True)
        self.file = h5py.File(self.tmp / DATA / MAIN, "w", track_order=True)
        self.episodes = 0
        self.steps = 0
        self.returns: list[float] = []
        self.levels: set[int] = set()
        # low-level property lists, made once (h5py's high-level calls make them per object)
        self._h5 = h5py
        self._dcpls: dict[tuple[int, ...], Any] = {}
        self._types: dict[np.dtype, Any] = {}
        self._lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
        self._lcpl.set_create_intermediate_group(True)
        self._lcpl.set_char_encoding(h5py.h5t.CSET_ASCII)
        self._gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        self._gcpl.set_obj_track_times(False)
        self._scalar = h5py.h5s.create(h5py.h5s.SCALAR)

    @staticmethod
    def temporary(out: Path, pid: int) -> Path:
        """The folder process ``pid`` writes the dataset ``out`` in, renamed to ``out`` when closed."""
        return out.parent / f".{out.name}.tmp-{pid}"

    def _array(self, parent: Any, name: str, data: np.ndarray, direct: bool = False) -> None:
        """One array under ``parent`` (a low-level group id), chunked, gzip-compressed and checksummed;
        ``direct``: compressed here (:func:`_packed_chunk`) and written as finished chunks, not through
        HDF5's gzip filter. Through h5py's low-level API with the property lists made once: the file
        is the one ``create_dataset(..., compression="gzip", fletcher32=True)`` writes, a third of
        the cost (tests/protocol/test_offline_data.py compares the bytes)."""
        h5d, h5p, h5s = self._h5.h5d, self._h5.h5p, self._h5.h5s
        rows = min(len(data), CHUNK)
        chunks = (rows, *data.shape[1:])
        if chunks not in self._dcpls:
            dcpl = h5p.create(h5p.DATASET_CREATE)
            dcpl.set_chunk(chunks)
            dcpl.set_deflate(GZIP_LEVEL)
            dcpl.set_fletcher32()
            dcpl.set_obj_track_times(False)
            dcpl.set_attr_creation_order(0)
            self._dcpls[chunks] = dcpl
        space = h5s.create_simple(data.shape)
        dataset = h5d.create(
            parent, name.encode(), self._type(data.dtype), space, dcpl=self._dcpls[chunks], lcpl=self._lcpl
        )
        if not direct:
            dataset.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(data))
            return
        for start in range(0, len(data), rows):
            block = data[start : start + rows]
            if len(block) < rows:  # HDF5 stores an edge chunk whole: the rows past the end are fill
                block = np.concatenate([block, np.zeros((rows - len(block), *data.shape[1:]), data.dtype)])
            offset = (start,) + (0,) * (data.ndim - 1)
            dataset.write_direct_chunk(offset, _packed_chunk(block), filter_mask=0)

    def _type(self, dtype: np.dtype) -> Any:
        """HDF5's type for ``dtype``, made once."""
        if dtype not in self._types:
            self._types[dtype] = self._h5.h5t.py_create(dtype, logical=1)
        return self._types[dtype]

    def _group(self, parent: Any, name: str) -> Any:
        """A new group under ``parent`` (a low-level id), as ``create_group`` makes it."""
        return self._h5.h5g.create(parent, name.encode(), lcpl=self._lcpl, gcpl=self._gcpl)

    def _attributes(self, group: Any, values: dict[str, int | float]) -> None:
        """Scalar attributes of ``group`` (a low-level id), as ``attrs.update`` writes them."""
        for name, value in values.items():
            data = np.asarray(value)
            attribute = self._h5.h5a.create(group, name.encode(), self._type(data.dtype), self._scalar)
            attribute.write(data)
            attribute.close()

    def add_episode(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminations: np.ndarray,
        truncations: np.ndarray,
        levels: np.ndarray,
        checkpoint: int,
        contexts: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Appends one completed episode of ``T = len(actions)`` steps (``observations``, ``levels``
        and each of ``contexts``, a contextual env's feature values, have T+1 entries: the reset's
        and each step's)."""
        check_episode(observations, actions, levels, contexts)
        n = len(actions)
        group = self._group(self.file.id, f"episode_{self.episodes}")
        obs = np.asarray(observations, dtype=self.observation_space.dtype)
        self._array(group, "observations", obs, direct=True)
        self._array(group, "actions", np.asarray(actions, dtype=np.int64))
        self._array(group, "rewards", np.asarray(rewards, dtype=np.float32))
        self._array(group, "terminations", np.asarray(terminations, dtype=bool))
        self._array(group, "truncations", np.asarray(truncations, dtype=bool))
        infos = self._group(group, "infos")
        self._array(infos, "level_seed", np.asarray(levels, dtype=np.int64))
        if contexts is not None:
            context = self._group(infos, "context")
            for name, values in contexts.items():
                self._array(context, name, np.asarray(values, dtype=np.float64))
        ret = float(np.sum(rewards, dtype=np.float64))
        self._attributes(
            group,
            {
                "id": self.episodes,
                "total_steps": n,
                "seed": int(levels[0]),
                "checkpoint": int(checkpoint),
                "return": ret,
            },
        )
        self.episodes += 1
        self.steps += n
        self.returns.append(ret)
        self.levels.update(int(x) for x in np.unique(levels) if x >= 0)  # -1: no level (contexts)

    def close(self, heldout: dict[str, Any], dataset_id: str) -> Path:
        """Writes ``metadata.json`` (Minari's keys, ``heldout``: how the dataset was made, with the
        totals and the file size added) and renames the folder to ``out``; returns it."""
        self.file.close()
        main = self.tmp / DATA / MAIN
        returns = np.asarray(self.returns, dtype=np.float64)
        info = {
            **heldout,
            "format_version": FORMAT_VERSION,
            "steps": self.steps,
            "episodes": self.episodes,
            "mean_return": float(returns.mean()) if len(returns) else None,
            "return_std": float(returns.std()) if len(returns) else None,
            "levels_played": sorted(self.levels),
            "file_bytes": main.stat().st_size,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        metadata = {
            "dataset_id": dataset_id,
            "total_episodes": self.episodes,
            "total_steps": self.steps,
            "data_format": "hdf5",
            "jpeg_encoding": False,
            "observation_space": self._spaces[0],
            "action_space": self._spaces[1],
            "minari_version": MINARI_VERSION,
            "dataset_size": round(main.stat().st_size / 1e6, 1),
            "author": ["heldout"],
            "algorithm_name": f"heldout collect ({info.get('recipe', '?')})",
            "heldout": info,
        }
        # the folder is renamed into place whole (below): a plain write is atomic enough
        (self.tmp / DATA / METADATA).write_text(json.dumps(metadata, indent=1) + "\n")
        if self.out.is_dir():  # an empty folder (check_out)
            self.out.rmdir()
        os.replace(self.tmp, self.out)
        return self.out

    def abort(self) -> None:
        """Closes and deletes the temporary folder: nothing is left behind."""
        try:
            self.file.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- reading --------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A dataset opened and checked (:func:`open_dataset`); episodes are read on demand.

    Attributes:
        path: The dataset folder (the one holding ``data/``).
        metadata: ``metadata.json``.
        observation_space: The observations' space.
        action_space: The actions' space.
        lengths: Steps of each episode (E,).
        levels: The distinct levels the episodes were played on, sorted.
    """

    path: Path
    metadata: dict[str, Any]
    observation_space: gym.spaces.Box
    action_space: gym.spaces.Discrete
    lengths: np.ndarray
    levels: list[int] = field(default_factory=list)

    @property
    def heldout(self) -> dict[str, Any]:
        """How the dataset was made (``metadata.json``'s ``heldout``)."""
        return self.metadata["heldout"]

    @property
    def env(self) -> str:
        """The heldout env name the dataset was collected on."""
        return str(self.heldout["env"])

    @property
    def total_steps(self) -> int:
        """Transitions in the dataset."""
        return int(self.lengths.sum())

    @property
    def file(self) -> Path:
        """``main_data.hdf5``."""
        return self.path / DATA / MAIN

    @property
    def context_features(self) -> list[str]:
        """The context features recorded at every step (a contextual env's dataset), else empty."""
        return list(self.heldout.get("context_features") or [])

    def read_episodes(
        self, indices: Iterable[int], keys: Iterable[str] | None = None
    ) -> Iterable[dict[str, np.ndarray]]:
        """Each episode of ``indices`` as arrays (``observations``, ``actions``, ``rewards``,
        ``terminations``, ``truncations``, ``level_seed``, and ``context/<feature>`` for each of
        :attr:`context_features`; ``keys``: only those), in order."""
        h5py = _h5py()
        wanted = (
            tuple(keys)
            if keys is not None
            else (
                "observations",
                "actions",
                "rewards",
                "terminations",
                "truncations",
                "level_seed",
                *(f"context/{name}" for name in self.context_features),
            )
        )
        where = {
            "level_seed": "infos/level_seed",
            **{f"context/{n}": f"infos/context/{n}" for n in self.context_features},
        }
        try:
            with h5py.File(self.file, "r") as f:
                for i in indices:
                    group = f[f"episode_{int(i)}"]
                    yield {k: group[where.get(k, k)][()] for k in wanted}
        except OSError as exc:  # a checksum or a chunk that fails to decode
            raise ValueError(f"dataset {str(self.path)!r} is corrupt: {str(exc).splitlines()[0]}") from None


def _fail(path: Any, what: str) -> ValueError:
    return ValueError(f"--dataset {str(path)!r} {what}")


def open_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Opens the dataset at ``path`` (its folder, or its ``data/`` folder) and checks it whole but the
    frames: ``metadata.json``, the file's size, every episode's arrays and their lengths.

    Raises:
        ValueError: one line naming the dataset and what is wrong (missing, corrupt, truncated).
    """
    h5py = _h5py()
    root = Path(path)
    if root.name == DATA and (root / METADATA).is_file():
        root = root.parent
    meta_file = root / DATA / METADATA
    if not meta_file.is_file():
        raise _fail(path, f"is no dataset: {str(meta_file)!r} is missing (heldout collect writes one)")
    try:
        metadata = json.loads(meta_file.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise _fail(path, f"is corrupt: {METADATA} is no JSON ({type(exc).__name__})") from None
    info = metadata.get("heldout") if isinstance(metadata, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("env"), str):
        raise _fail(path, f"is no heldout dataset: {METADATA} has no heldout section naming its env")
    if metadata.get("data_format") != "hdf5" or info.get("format_version") != FORMAT_VERSION:
        raise _fail(
            path,
            f"has data_format {metadata.get('data_format')!r}, format_version {info.get('format_version')!r}; "
            f"valid: 'hdf5', {FORMAT_VERSION}",
        )
    try:
        obs_space = deserialize_space(metadata["observation_space"])
        act_space = deserialize_space(metadata["action_space"])
        episodes = int(metadata["total_episodes"])
        file_bytes = int(info["file_bytes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"is corrupt: {METADATA} ({type(exc).__name__}: {exc})") from None
    main = root / DATA / MAIN
    if not main.is_file():
        raise _fail(path, f"is incomplete: {str(main)!r} is missing")
    size = main.stat().st_size
    if size != file_bytes:
        raise _fail(path, f"is truncated or changed: {MAIN} has {size} bytes, its metadata says {file_bytes}")
    lengths = np.zeros(episodes, dtype=np.int64)
    levels: set[int] = set()
    try:
        with h5py.File(main, "r") as f:
            if len(f) != episodes:
                raise _fail(path, f"is corrupt: {len(f)} episodes in {MAIN}, {episodes} in its metadata")
            for i in range(episodes):
                g = f[f"episode_{i}"]
                n = int(g["actions"].shape[0])
                shapes = {
                    "observations": (n + 1, *obs_space.shape),
                    "rewards": (n,),
                    "terminations": (n,),
                    "truncations": (n,),
                    "infos/level_seed": (n + 1,),
                    **{f"infos/context/{name}": (n + 1,) for name in info.get("context_features") or []},
                }
                for key, shape in shapes.items():
                    if g[key].shape != shape:
                        raise _fail(
                            path, f"is corrupt: episode_{i}/{key} has shape {g[key].shape}, expected {shape}"
                        )
                lengths[i] = n
                levels.add(int(g.attrs["seed"]))
    except (OSError, KeyError) as exc:
        raise _fail(path, f"is corrupt: {MAIN} ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if int(metadata.get("total_steps", -1)) != int(lengths.sum()):
        raise _fail(
            path, f"is corrupt: {int(lengths.sum())} steps, its metadata says {metadata.get('total_steps')}"
        )
    return Dataset(root, metadata, obs_space, act_space, lengths, sorted(levels))


def write_synthetic(
    out: str | os.PathLike[str],
    env: str,
    observation_space: gym.spaces.Box,
    n_actions: int,
    levels: Iterable[int],
    steps: int,
    episode_steps: tuple[int, int] = (20, 200),
    seed: int = 0,
) -> Path:
    """A dataset of random episodes (tests, benchmarks): at least ``steps`` transitions over
    ``levels`` (one at random per episode), episode lengths uniform in ``episode_steps``. Image frames
    are 8x8 blocks of random colours (zlib compressed them about as it does game frames; ISA-L's fast
    level less well); other observations are uniform in their box. Returns the dataset folder."""
    rng = np.random.default_rng(seed)
    level_list = list(levels)
    writer = DatasetWriter(out, observation_space, gym.spaces.Discrete(n_actions))
    shape = observation_space.shape
    image = (
        observation_space.dtype == np.uint8 and len(shape) == 3 and shape[0] % 8 == 0 and shape[1] % 8 == 0
    )
    try:
        while writer.steps < steps:
            n = int(rng.integers(episode_steps[0], episode_steps[1] + 1))
            if image:
                blocks = rng.integers(0, 256, (n + 1, shape[0] // 8, shape[1] // 8, shape[2]), dtype=np.uint8)
                obs = blocks.repeat(8, axis=1).repeat(8, axis=2)
            else:
                low, high = observation_space.low, observation_space.high
                obs = rng.integers(low, high + 1, (n + 1, *shape)).astype(observation_space.dtype)
            rewards = np.zeros(n, np.float32)
            rewards[-1] = float(rng.random() < 0.5) * 10.0
            terminated = np.zeros(n, bool)
            terminated[-1] = True
            level = int(rng.choice(level_list))
            writer.add_episode(
                obs,
                rng.integers(0, n_actions, n),
                rewards,
                terminated,
                np.zeros(n, bool),
                np.full(n + 1, level),
                0,
            )
        return writer.close(
            {
                "env": env,
                "env_id": f"synthetic/{env}",
                "kind": "levels",
                "recipe": "synthetic",
                "levels_described": f"{len(set(level_list))} levels",
                "checkpoints": [],
            },
            f"heldout/{env}-synthetic-v0",
        )
    except BaseException:
        writer.abort()
        raise


__all__ = [
    "DATA",
    "FORMAT_VERSION",
    "MAIN",
    "METADATA",
    "MINARI_VERSION",
    "Dataset",
    "DatasetWriter",
    "check_episode",
    "check_out",
    "deserialize_space",
    "open_dataset",
    "serialize_space",
    "write_synthetic",
]
