"""The ``video`` wrapper's MP4s, through the ffmpeg binary that imageio-ffmpeg ships, and its GIF
fallback when no ffmpeg is found."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import heldout  # noqa: F401
from heldout.envs import ProcgenVecEnv
from heldout.wrappers import VecEnvAdapter, recording
from heldout.wrappers.recording import ffmpeg_exe, write_video


def _record(spec: str, steps: int = 10) -> None:
    venv = VecEnvAdapter(ProcgenVecEnv("coinrun", num_envs=3, levels=[0], seed=0), spec)
    venv.reset()
    for _ in range(steps):
        venv.step(np.zeros(3, int))
    venv.close()


def _decoded_frames(path: Path, width: int, height: int) -> int:
    """Frames in ``path`` as ffmpeg decodes them (raw RGB), checking that they divide evenly."""
    exe = ffmpeg_exe()
    assert exe is not None
    raw = subprocess.run(
        [exe, "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert len(raw) % (width * height * 3) == 0, len(raw)
    return len(raw) // (width * height * 3)


def test_ffmpeg_is_the_binary_imageio_ffmpeg_ships(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in the package without importing it: imageio-ffmpeg 0.3 (gym3's pin) imports
    pkg_resources, which recent setuptools no longer ship."""
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    spec = importlib.util.find_spec("imageio_ffmpeg")
    assert spec is not None and spec.submodule_search_locations, "imageio-ffmpeg is a dependency"
    exe = ffmpeg_exe()
    assert exe is not None and Path(exe).parent.parent == Path(spec.submodule_search_locations[0])


def test_video_writes_an_mp4(tmp_path: Path) -> None:
    _record(f"video:path={tmp_path / 'v.mp4'},envs=2,steps=6,scale=1")
    data = (tmp_path / "v.mp4").read_bytes()
    assert data[4:8] == b"ftyp", data[:16]  # an ISO base media file: what players and browsers read
    assert b"moov" in data and b"avc1" in data  # H.264
    # two 64x64 tiles and a 2-pixel gap: 130x64, an even size (yuv420p needs one) as it is
    assert _decoded_frames(tmp_path / "v.mp4", 130, 64) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"], "no temporary left"


def test_write_video_pads_an_odd_size_to_even(tmp_path: Path) -> None:
    frames = [np.full((63, 101, 3), i * 20, dtype=np.uint8) for i in range(5)]
    write_video(tmp_path / "odd.mp4", frames, fps=10)
    assert _decoded_frames(tmp_path / "odd.mp4", 102, 64) == 5


def test_a_failing_ffmpeg_raises_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "false")  # exits 1 at once
    frames = [np.zeros((64, 64, 3), dtype=np.uint8)] * 50
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        write_video(tmp_path / "v.mp4", frames, fps=10)
    assert list(tmp_path.iterdir()) == []


def test_mp4_falls_back_to_gif_with_one_warning_without_ffmpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if imageio-ffmpeg were not installed
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # and no ffmpeg on the PATH
    monkeypatch.setattr(recording, "_WARNED", set())
    assert ffmpeg_exe() is None
    for _ in range(2):  # warned once per process, not once per wrapper
        _record(f"video:path={tmp_path / 'v.mp4'},envs=2,steps=6,scale=1")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and "v.gif" in err[0] and "imageio-ffmpeg" in err[0], err
    assert not (tmp_path / "v.mp4").exists()
    img = Image.open(tmp_path / "v.gif")
    assert img.n_frames == 6 and img.size == (130, 64)
