"""Offline datasets (Minari's layout), the streaming loader, and the offline run (issue 29).

The format is checked by reading the file back with h5py directly (the layout Minari reads) and, where
``minari`` is installed (the 3.13 stack), with ``minari`` itself; the loader's minibatches against
a direct read of the same steps; windows' returns-to-go against a plain loop.
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

h5py = pytest.importorskip(
    "h5py", reason="offline datasets need h5py (a dependency: make install installs it)"
)

from heldout.protocol.dataset import (  # noqa: E402
    DATA,
    MAIN,
    METADATA,
    DatasetWriter,
    fletcher32,
    open_dataset,
    write_synthetic,
)
from heldout.protocol.loader import MinibatchLoader  # noqa: E402

FRAME = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)


def _episodes(seed: int = 0, count: int = 5) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = int(rng.integers(3, 40))
        term = np.zeros(n, bool)
        trunc = np.zeros(n, bool)
        (trunc if i % 2 else term)[-1] = True
        out.append(
            {
                "observations": rng.integers(0, 256, (n + 1, 16, 16, 3), dtype=np.uint8),
                "actions": rng.integers(0, 15, n),
                "rewards": rng.normal(size=n).astype(np.float32),
                "terminations": term,
                "truncations": trunc,
                "level_seed": np.full(n + 1, 10 + i),
            }
        )
    return out


def _write(path: Path, episodes: list[dict[str, np.ndarray]], env: str = "coinrun") -> Path:
    writer = DatasetWriter(path, FRAME, gym.spaces.Discrete(15))
    for ep in episodes:
        writer.add_episode(
            ep["observations"],
            ep["actions"],
            ep["rewards"],
            ep["terminations"],
            ep["truncations"],
            ep["level_seed"],
            checkpoint=100,
        )
    return writer.close(
        {"env": env, "recipe": "test", "levels_described": "[10, 15)"}, f"heldout/{env}-test-v0"
    )


def test_round_trip_in_minaris_layout(tmp_path: Path) -> None:
    episodes = _episodes()
    path = _write(tmp_path / "ds", episodes)
    meta = json.loads((path / DATA / METADATA).read_text())
    assert meta["total_episodes"] == 5 and meta["total_steps"] == sum(len(e["actions"]) for e in episodes)
    assert meta["data_format"] == "hdf5" and meta["jpeg_encoding"] is False
    assert json.loads(meta["observation_space"])["shape"] == [16, 16, 3]
    rewards = [float(np.sum(e["rewards"], dtype=np.float64)) for e in episodes]
    assert meta["heldout"]["mean_return"] == pytest.approx(np.mean(rewards))
    # the file itself, read without heldout's reader: Minari's groups, datasets and attributes
    with h5py.File(path / DATA / MAIN, "r") as f:
        assert sorted(f) == [f"episode_{i}" for i in range(5)]
        for i, ep in enumerate(episodes):
            g = f[f"episode_{i}"]
            obs = g["observations"]
            assert obs.dtype == np.uint8 and obs.compression == "gzip" and obs.fletcher32
            assert obs.chunks[0] <= 64
            np.testing.assert_array_equal(obs[()], ep["observations"])
            np.testing.assert_array_equal(g["actions"][()], ep["actions"])
            np.testing.assert_array_equal(g["rewards"][()], ep["rewards"])
            np.testing.assert_array_equal(g["terminations"][()], ep["terminations"])
            np.testing.assert_array_equal(g["truncations"][()], ep["truncations"])
            np.testing.assert_array_equal(g["infos/level_seed"][()], ep["level_seed"])
            assert g.attrs["total_steps"] == len(ep["actions"]) and g.attrs["seed"] == 10 + i
    dataset = open_dataset(path)
    assert dataset.levels == [10, 11, 12, 13, 14]
    for ep, read in zip(episodes, dataset.read_episodes(range(5))):
        for key, value in ep.items():
            np.testing.assert_array_equal(read[key], value)


def test_minari_reads_the_dataset(tmp_path: Path) -> None:
    minari = pytest.importorskip("minari", reason="minari needs NumPy 2: the 3.13 stack only")
    episodes = _episodes()
    path = _write(tmp_path / "ds", episodes)
    data = minari.MinariDataset(path / DATA)
    assert data.total_episodes == 5 and data.total_steps == sum(len(e["actions"]) for e in episodes)
    for ep, read in zip(episodes, data.iterate_episodes()):
        np.testing.assert_array_equal(read.observations, ep["observations"])
        np.testing.assert_array_equal(read.actions, ep["actions"])
        np.testing.assert_array_equal(read.rewards, ep["rewards"])
        np.testing.assert_array_equal(read.terminations, ep["terminations"])


def test_fletcher32_is_the_checksum_hdf5_itself_appends(tmp_path: Path) -> None:
    """The frames' chunks are compressed by heldout and written whole, with heldout's Fletcher-32: it
    must equal what HDF5's own filter appends to the chunks h5py writes (odd lengths, lengths about
    the 512-word blocks it sums by, all zeros and all 0xFF, whose sums are multiples of 65535)."""
    rng = np.random.default_rng(3)
    sizes = (1, 2, 3, 719, 720, 721, 1023, 1024, 1025, 2048, 5000, 100_001, 786_433)
    arrays = [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes] + [
        np.zeros(64, np.uint8),
        np.full(4000, 255, np.uint8),
        np.full(7, 255, np.uint8),
        np.full(800_001, 255, np.uint8),  # the largest weighted sums
    ]
    with h5py.File(tmp_path / "ref.h5", "w") as f:
        for i, a in enumerate(arrays):
            f.create_dataset(str(i), data=a, chunks=(len(a),), fletcher32=True)  # checksum only
            f.create_dataset(f"z{i}", data=a, chunks=(len(a),), compression="gzip", fletcher32=True)
    with h5py.File(tmp_path / "ref.h5", "r") as f:
        for i, a in enumerate(arrays):
            mask, raw = f[str(i)].id.read_direct_chunk((0,))
            assert mask == 0 and raw[:-4] == a.tobytes()
            assert int.from_bytes(raw[-4:], "little") == fletcher32(a.tobytes()), len(a)
            _, packed = f[f"z{i}"].id.read_direct_chunk((0,))
            assert int.from_bytes(packed[-4:], "little") == fletcher32(packed[:-4])
    assert fletcher32(b"\x01\x02") != fletcher32(b"\x02\x01")  # the words' byte order counts


def test_episodes_longer_than_a_chunk_round_trip(tmp_path: Path) -> None:
    """Frames written as finished chunks (a partial last chunk, padded as HDF5 pads it) read back exactly through h5py's own gzip and Fletcher-32 filters."""
    episodes = _episodes(seed=4, count=3)
    rng = np.random.default_rng(5)
    for ep, n in zip(episodes, (64, 150, 129)):
        ep["observations"] = rng.integers(0, 256, (n + 1, 16, 16, 3), dtype=np.uint8)
        ep["actions"], ep["rewards"] = ep["actions"][:1].repeat(n), np.zeros(n, np.float32)
        ep["terminations"], ep["truncations"] = np.zeros(n, bool), np.zeros(n, bool)
        ep["terminations"][-1] = True
        ep["level_seed"] = np.full(n + 1, 7)
    path = _write(tmp_path / "ds", episodes)
    with h5py.File(path / DATA / MAIN, "r") as f:
        for i, ep in enumerate(episodes):
            obs = f[f"episode_{i}/observations"]
            assert obs.compression == "gzip" and obs.fletcher32 and obs.chunks[0] == 64
            assert obs.id.get_num_chunks() == -(-len(ep["observations"]) // 64)
            np.testing.assert_array_equal(obs[()], ep["observations"])
            for k in range(obs.id.get_num_chunks()):  # whole chunks, as HDF5's own filter writes them
                raw = obs.id.read_direct_chunk(obs.id.get_chunk_info(k).chunk_offset)[1]
                assert len(zlib.decompress(raw[:-4])) == 64 * 16 * 16 * 3


def _reference_file(path: Path, episodes: list[dict[str, np.ndarray]], contexts: list[dict | None]) -> None:
    """The file as h5py's high-level API writes it: ``create_group``, ``create_dataset(...,
    compression="gzip", fletcher32=True)`` and ``attrs.update``; the frames' chunks through
    ``write_direct_chunk`` with heldout's packing (h5py's gzip filter compresses with another zlib)."""
    from heldout.protocol.dataset import CHUNK, GZIP_LEVEL, _packed_chunk

    filters = {"compression": "gzip", "compression_opts": GZIP_LEVEL, "fletcher32": True}

    def array(group: Any, name: str, data: np.ndarray) -> Any:
        return group.create_dataset(
            name, data=data, chunks=(min(len(data), CHUNK), *data.shape[1:]), **filters
        )

    with h5py.File(path, "w", track_order=True) as f:
        for i, (ep, ctx) in enumerate(zip(episodes, contexts)):
            group = f.create_group(f"episode_{i}")
            obs = ep["observations"]
            rows = min(len(obs), CHUNK)
            frames = group.create_dataset(
                "observations", shape=obs.shape, dtype=obs.dtype, chunks=(rows, *obs.shape[1:]), **filters
            )
            for start in range(0, len(obs), rows):
                block = obs[start : start + rows]
                pad = np.zeros((rows - len(block), *obs.shape[1:]), obs.dtype)
                frames.id.write_direct_chunk((start, 0, 0, 0), _packed_chunk(np.concatenate([block, pad])))
            array(group, "actions", np.asarray(ep["actions"], np.int64))
            array(group, "rewards", np.asarray(ep["rewards"], np.float32))
            array(group, "terminations", np.asarray(ep["terminations"], bool))
            array(group, "truncations", np.asarray(ep["truncations"], bool))
            infos = group.create_group("infos")
            array(infos, "level_seed", np.asarray(ep["level_seed"], np.int64))
            if ctx is not None:
                context = infos.create_group("context")
                for name, values in ctx.items():
                    array(context, name, np.asarray(values, np.float64))
            group.attrs.update(
                {
                    "id": i,
                    "total_steps": len(ep["actions"]),
                    "seed": int(ep["level_seed"][0]),
                    "checkpoint": 5,
                    "return": float(np.sum(ep["rewards"], dtype=np.float64)),
                }
            )


def test_the_writer_writes_the_file_h5pys_high_level_api_writes(tmp_path: Path) -> None:
    """The writer creates its groups, arrays and attributes through h5py's low-level API with property
    lists made once; the file must be the high-level API's, byte for byte (episodes shorter and
    longer than a chunk, with and without context features). A change of filter, chunk shape,
    dtype, name encoding or creation order fails here."""
    episodes = _episodes(seed=8, count=4)
    rng = np.random.default_rng(9)
    n = 70  # longer than a chunk
    episodes[1].update(
        observations=rng.integers(0, 256, (n + 1, 16, 16, 3), dtype=np.uint8),
        actions=rng.integers(0, 15, n),
        rewards=rng.normal(size=n).astype(np.float32),
        terminations=np.r_[np.zeros(n - 1, bool), True],
        truncations=np.zeros(n, bool),
        level_seed=np.full(n + 1, -1),
    )
    contexts = [None, {"gravity": rng.normal(size=n + 1), "mass": rng.normal(size=n + 1)}, None, None]
    writer = DatasetWriter(tmp_path / "ds", FRAME, gym.spaces.Discrete(15))
    for ep, ctx in zip(episodes, contexts):
        writer.add_episode(
            ep["observations"], ep["actions"], ep["rewards"], ep["terminations"], ep["truncations"],
            ep["level_seed"], 5, contexts=ctx,
        )  # fmt: skip
    writer.file.close()
    _reference_file(tmp_path / "ref.hdf5", episodes, contexts)
    written = (writer.tmp / DATA / MAIN).read_bytes()
    assert written == (tmp_path / "ref.hdf5").read_bytes()
    writer.abort()


def test_a_truncated_or_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "ds", _episodes())
    main = path / DATA / MAIN
    data = main.read_bytes()
    truncated = tmp_path / "truncated"
    shutil.copytree(path, truncated)
    (truncated / DATA / MAIN).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        open_dataset(truncated)
    # a flipped byte inside a chunk of frames: the chunk's Fletcher-32 checksum fails on reading
    corrupt = tmp_path / "corrupt"
    shutil.copytree(path, corrupt)
    with h5py.File(main, "r") as f:
        offset = f["episode_2/observations"].id.get_chunk_info(0).byte_offset
    flipped = bytearray(data)
    flipped[offset + 20] ^= 0xFF
    (corrupt / DATA / MAIN).write_bytes(bytes(flipped))
    dataset = open_dataset(corrupt)  # the headers are intact
    with pytest.raises(ValueError, match="corrupt"):
        list(dataset.read_episodes([2]))
    (corrupt / DATA / METADATA).write_text("{not json")
    with pytest.raises(ValueError, match="no JSON"):
        open_dataset(corrupt)


def test_loader_batches_are_the_steps_they_index(tmp_path: Path) -> None:
    episodes = _episodes(count=12)
    dataset = open_dataset(_write(tmp_path / "ds", episodes))
    frame_bytes = 16 * 16 * 3
    loader = MinibatchLoader(dataset, batch_size=7, seed=3, buffer_bytes=60 * frame_bytes)
    assert len(loader.blocks(0)) > 2  # several blocks: memory bounded by the buffer, not the dataset
    seen: list[tuple[int, int]] = []
    per_epoch = loader.batches_per_epoch(0)
    count = 0
    for epoch, block, items in loader.index_batches():
        if epoch > 0:
            break
        count += 1
        batch = loader.transitions_of(block, items)
        for row, (k, t) in enumerate(items):
            ep = episodes[int(block.episodes[k])]  # a direct read of the same step
            np.testing.assert_array_equal(batch["obs"][row], ep["observations"][t])
            np.testing.assert_array_equal(batch["next_obs"][row], ep["observations"][t + 1])
            assert batch["action"][row] == ep["actions"][t] and batch["reward"][row] == ep["rewards"][t]
            assert batch["terminated"][row] == float(ep["terminations"][t])
            assert batch["truncated"][row] == float(ep["truncations"][t])
            seen.append((int(block.episodes[k]), int(t)))
    assert count == per_epoch
    assert len(seen) == len(set(seen))  # an epoch hands out each transition at most once
    assert len(seen) > 0.6 * dataset.total_steps
    # the same seed gives the same minibatches, and starting at the n-th gives the n-th (resume)
    again = MinibatchLoader(dataset, batch_size=7, seed=3, buffer_bytes=60 * frame_bytes)
    all_batches = [b for _, b in zip(range(per_epoch + 5), again.batches())]
    resumed = MinibatchLoader(dataset, batch_size=7, seed=3, buffer_bytes=60 * frame_bytes).batches(
        start=per_epoch + 2
    )
    for key, value in next(resumed).items():
        np.testing.assert_array_equal(value, all_batches[per_epoch + 2][key])
    other = next(MinibatchLoader(dataset, batch_size=7, seed=4, buffer_bytes=60 * frame_bytes).batches())
    assert not np.array_equal(other["obs"], all_batches[0]["obs"])


def test_windows_hold_returns_to_go_and_padding(tmp_path: Path) -> None:
    episodes = _episodes(count=6)
    dataset = open_dataset(_write(tmp_path / "ds", episodes))
    K = 8
    loader = MinibatchLoader(dataset, batch_size=16, seed=0, sequence_length=K, windows=True)
    _, block, items = next(loader.index_batches())
    batch = loader.windows_of(block, items)
    assert batch["obs"].shape == (16, K, 16, 16, 3)
    for row, (k, t) in enumerate(items):
        ep = episodes[int(block.episodes[k])]
        T = len(ep["actions"])
        for i in range(K):
            if t + i < T:
                rtg = sum(float(r) for r in ep["rewards"][t + i :])  # the plain suffix sum
                assert batch["rtg"][row, i] == pytest.approx(rtg, abs=1e-4)
                assert batch["timestep"][row, i] == t + i and batch["mask"][row, i]
                assert batch["action"][row, i] == ep["actions"][t + i]
            else:
                assert (
                    not batch["mask"][row, i] and batch["rtg"][row, i] == 0 and not batch["obs"][row, i].any()
                )


def test_synthetic_dataset_opens_with_its_levels(tmp_path: Path) -> None:
    path = write_synthetic(
        tmp_path / "syn", "coinrun", gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), 15, [3, 4], 300
    )
    dataset = open_dataset(path)
    assert dataset.total_steps >= 300 and set(dataset.levels) <= {3, 4} and dataset.env == "coinrun"
