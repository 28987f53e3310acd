"""The dataset writer in a child process (heldout/protocol/background_writer.py): the same file as the
inline writer, byte for byte; a failure in the child raised in the parent, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("h5py", reason="offline datasets need h5py (a dependency: make install installs it)")

from heldout.protocol.background_writer import BackgroundWriter, spare_core  # noqa: E402
from heldout.protocol.dataset import DATA, MAIN, METADATA, DatasetWriter, open_dataset  # noqa: E402

FRAME = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
ACTIONS = gym.spaces.Discrete(15)


def _episodes(count: int) -> list[tuple]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(count):
        n = int(rng.integers(2, 90))  # some longer than a chunk of 64
        contexts = {"gravity": rng.normal(size=n + 1)} if i % 3 == 0 else None
        term = np.zeros(n, bool)
        term[-1] = True
        out.append(
            (
                rng.integers(0, 4, (n + 1, 16, 16, 3), dtype=np.uint8) * 60,
                rng.integers(0, 15, n),
                rng.normal(size=n).astype(np.float32),
                term,
                np.zeros(n, bool),
                np.full(n + 1, i % 7),
                i // 4,
                contexts,
            )
        )
    return out


def _write(writer: DatasetWriter | BackgroundWriter, episodes: list[tuple]) -> Path:
    for *arrays, checkpoint, contexts in episodes:
        writer.add_episode(*arrays, checkpoint, contexts=contexts)
    return writer.close({"env": "coinrun", "recipe": "test"}, "heldout/coinrun-test-v0")


def test_the_child_writes_the_inline_writers_file_byte_for_byte(tmp_path: Path) -> None:
    episodes = _episodes(23)
    inline = _write(DatasetWriter(tmp_path / "inline", FRAME, ACTIONS), episodes)
    background = BackgroundWriter(tmp_path / "child", FRAME, ACTIONS)
    child = _write(background, episodes)
    assert child == tmp_path / "child" and (background.episodes, background.steps) == (
        23,
        sum(len(e[1]) for e in episodes),
    )
    assert (child / DATA / MAIN).read_bytes() == (inline / DATA / MAIN).read_bytes()
    meta = [json.loads((p / DATA / METADATA).read_text()) for p in (inline, child)]
    for m in meta:
        m["heldout"].pop("created")
    assert meta[0] == meta[1]
    assert {p.name for p in tmp_path.iterdir()} == {"inline", "child"}  # no temporary folder left
    dataset = open_dataset(child)
    np.testing.assert_array_equal(next(iter(dataset.read_episodes([5])))["observations"], episodes[5][0])


def test_a_bad_episode_is_refused_in_the_parent_before_it_is_sent(tmp_path: Path) -> None:
    writer = BackgroundWriter(tmp_path / "ds", FRAME, ACTIONS)
    obs, actions, rewards, term, trunc, levels, checkpoint, _ = _episodes(1)[0]
    with pytest.raises(ValueError, match="observations and levels"):
        writer.add_episode(obs[:-1], actions, rewards, term, trunc, levels, checkpoint)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_failure_in_the_child_is_raised_in_the_parent_and_nothing_is_left(tmp_path: Path) -> None:
    """The child cannot make its folder (``out``'s parent is a file): the parent's next call raises
    with the child's message."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    writer = BackgroundWriter(blocker / "ds", FRAME, ACTIONS)
    with pytest.raises(RuntimeError, match="writing the dataset failed: .*Error"):
        for episode in _episodes(200):  # the failure arrives while episodes are being handed over
            writer.add_episode(*episode[:-1], contexts=episode[-1])
        writer.close({}, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_abort_stops_the_child_and_removes_its_folder(tmp_path: Path) -> None:
    writer = BackgroundWriter(tmp_path / "ds", FRAME, ACTIONS)
    for episode in _episodes(5):
        writer.add_episode(*episode[:-1], contexts=episode[-1])
    writer.abort()
    assert not writer._child.is_alive()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("device", "cores", "threads", "spare"),
    [
        ("cpu", 2, 2, False),  # this machine: torch's two threads fill both cores
        ("cpu", 2, 1, True),
        ("cpu", 16, 16, False),
        ("cpu", 16, 8, True),
        ("cuda", 16, 16, True),  # the policy acts on the GPU: the CPU threads are free
        ("cuda:0", 1, 1, False),  # one core: nowhere to put a second process
    ],
)
def test_a_writer_process_is_used_only_where_a_core_is_spare(
    device: str, cores: int, threads: int, spare: bool
) -> None:
    assert spare_core(device, cores=cores, torch_threads=threads) is spare


def test_the_parent_exits_after_its_child_failed(tmp_path: Path) -> None:
    """Episodes queued for a child that died are not waited on when the parent exits (multiprocessing
    joins a queue's feeder thread at exit: without ``cancel_join_thread`` this run hangs)."""
    import subprocess
    import sys

    script = f"""
import numpy as np, gymnasium as gym
from pathlib import Path
from heldout.protocol.background_writer import BackgroundWriter
if __name__ == "__main__":
    Path({str(tmp_path)!r}, "a-file").write_text("x")
    writer = BackgroundWriter(Path({str(tmp_path)!r}, "a-file", "ds"), gym.spaces.Box(0, 255, (16, 16, 3), np.uint8), gym.spaces.Discrete(15))
    frames = np.random.default_rng(0).integers(0, 256, (65, 16, 16, 3), dtype=np.uint8)
    try:
        for _ in range(200):
            writer.add_episode(frames, np.zeros(64, int), np.zeros(64), np.zeros(64, bool), np.zeros(64, bool), np.zeros(65, int), 0)
    except RuntimeError as error:
        print("raised:", error)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "raised: writing the dataset failed: NotADirectoryError" in done.stdout


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see whether the child runs")
def test_a_child_whose_parent_was_killed_removes_its_folder_and_ends(tmp_path: Path) -> None:
    """kill -9 of ``heldout collect``: its writer process must not live on, holding a temporary folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = f"""
import os, signal, numpy as np, gymnasium as gym
from pathlib import Path
from heldout.protocol.background_writer import BackgroundWriter
if __name__ == "__main__":
    writer = BackgroundWriter(Path({str(tmp_path)!r}, "ds"), gym.spaces.Box(0, 255, (16, 16, 3), np.uint8), gym.spaces.Discrete(15))
    frames = np.zeros((11, 16, 16, 3), np.uint8)
    writer.add_episode(frames, np.zeros(10, int), np.zeros(10), np.zeros(10, bool), np.zeros(10, bool), np.zeros(11, int), 0)
    while not any(Path({str(tmp_path)!r}).iterdir()):
        pass
    print(writer._child.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    root = Path(__file__).resolve().parents[2]
    log = tmp_path.parent / f"{tmp_path.name}.log"  # a file, not a pipe: the child inherits it
    with open(log, "w") as out:
        code = subprocess.run(
            [sys.executable, "-c", script], cwd=root, stdout=out, stderr=subprocess.STDOUT, timeout=60,
            env={**os.environ, "PYTHONPATH": str(root)},
        ).returncode  # fmt: skip
    assert code == -signal.SIGKILL, log.read_text()[-2000:]
    child = int(log.read_text().split()[0])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (_alive(child) or any(tmp_path.iterdir())):
            time.sleep(0.1)
        assert not _alive(child) and list(tmp_path.iterdir()) == []
    finally:
        if _alive(child):  # the test failed: leave no orphan behind
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped by init, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
