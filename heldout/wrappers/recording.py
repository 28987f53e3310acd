"""Recording wrappers: watch episodes and write files; they never change what the agent sees.

* ``episode-stats``: one CSV row per finished episode with its slot, return, length, level (Procgen
  and other seeded envs: ``info["level_seed"]``) and context (contextual envs: ``ctx_<feature>``
  columns), like gymnasium's ``RecordEpisodeStatistics`` but for vectorized envs and with what
  generalization needs to know about each episode. It also puts ``info["episode"]`` (``r``, ``l``,
  ``t``) where the env does not.
* ``video``: the first ``envs`` slots of a vectorized env (or the single env), tiled side by side,
  as an animated GIF (Pillow) or an H.264 MP4, encoded by the ffmpeg binary that the
  ``imageio-ffmpeg`` dependency ships (see :func:`ffmpeg_exe`). Without any ffmpeg, an ``.mp4`` path
  falls back to a GIF of the same name, with one warning line on stderr.

Files go to the wrapper's ``output_dir`` (the run folder's ``wrappers/`` when named for training;
``eval/wrappers-<split>/`` for an evaluation) unless ``path`` is absolute.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gymnasium import spaces

from heldout.wrappers.base import BatchWrapper, WrapperContext, register

#: Video formats by file extension.
VIDEO_FORMATS: tuple[str, ...] = ("gif", "mp4")


def _resolve(path: str, ctx: WrapperContext) -> Path:
    p = Path(path)
    if not p.is_absolute():
        p = (ctx.output_dir or Path.cwd()) / p
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


@register("episode-stats", help="a CSV row per episode: slot, return, length, level, context")
class EpisodeStats(BatchWrapper):
    """Records every finished episode (see the module docstring).

    Args:
        path: CSV file, relative to the output folder.
    """

    kind = "recording"

    def __init__(self, path: str = "episodes.csv") -> None:
        if not isinstance(path, str) or not path:
            raise ValueError(f"episode-stats path must be a file name, got {path!r}")
        self.path = path

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        self.ctx = ctx
        self.file = _resolve(self.path, ctx)
        self.returns = np.zeros(ctx.num_envs, dtype=np.float64)
        self.lengths = np.zeros(ctx.num_envs, dtype=np.int64)
        self.features = list(ctx.context_space.names) if ctx.context_space is not None else []
        self.t0 = time.perf_counter()
        self.count = 0
        self._fh = open(self.file, "w", newline="")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(
            ["episode", "slot", "level", "return", "length", "seconds", *(f"ctx_{f}" for f in self.features)]
        )
        return ctx.observation_space

    def on_step(self, obs, reward, done, env_ids, infos):  # type: ignore[no-untyped-def]
        ids = np.asarray(env_ids)
        self.returns[ids] += reward
        self.lengths[ids] += 1
        for j in np.flatnonzero(done):
            slot, info = int(ids[j]), infos[j]
            now = round(time.perf_counter() - self.t0, 6)
            ret, length = float(self.returns[slot]), int(self.lengths[slot])
            info.setdefault("episode", {"r": ret, "l": length, "t": now})
            level = info.get("level_seed", info.get("seed", ""))
            context = info.get("context", {})
            self._writer.writerow(
                [
                    self.count,
                    slot,
                    level,
                    f"{ret:g}",
                    length,
                    now,
                    *(context.get(f, "") for f in self.features),
                ]
            )
            self.count += 1
            self.returns[slot] = 0.0
            self.lengths[slot] = 0
        if len(np.flatnonzero(done)):
            self._fh.flush()

    def on_reset(self, obs, env_ids, infos):  # type: ignore[no-untyped-def]
        self.returns[np.asarray(env_ids)] = 0.0
        self.lengths[np.asarray(env_ids)] = 0

    def close(self) -> None:
        if getattr(self, "_fh", None) is not None and not self._fh.closed:
            self._fh.close()


@register("video", help="GIF/MP4 of the first envs slots side by side, as the agent sees them")
class Video(BatchWrapper):
    """Writes what the first ``envs`` slots show (see the module docstring).

    Args:
        path: Output file; its extension picks the format (``.gif`` or ``.mp4``; without any ffmpeg,
            an ``.mp4`` becomes a ``.gif`` of the same name, with one warning line). With ``every``
            set, clips are numbered (``video-000001.gif``, by the step they start at).
        envs: How many slots are tiled side by side.
        steps: Frames per clip.
        every: Start a clip every this many steps (0: one clip, from the first step).
        fps: Frames per second.
        scale: Integer upscaling of each frame (nearest neighbour), so 64x64 frames are visible.
    """

    kind = "recording"

    def __init__(
        self,
        path: str = "video.gif",
        envs: int = 4,
        steps: int = 300,
        every: int = 0,
        fps: int = 15,
        scale: int = 2,
    ) -> None:
        ext = Path(str(path)).suffix.lstrip(".").lower()
        if ext not in VIDEO_FORMATS:
            raise ValueError(f"video path {path!r}: the extension must be one of {', '.join(VIDEO_FORMATS)}")
        for n, v, lo in (
            ("envs", envs, 1),
            ("steps", steps, 1),
            ("every", every, 0),
            ("fps", fps, 1),
            ("scale", scale, 1),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"video {n} must be an integer >= {lo}, got {v!r}")
        if every and every < steps:
            raise ValueError(f"video every ({every}) must be 0 or at least steps ({steps})")
        if ext == "mp4" and ffmpeg_exe() is None:
            gif = str(Path(str(path)).with_suffix(".gif"))
            _warn_once(
                f"heldout: warning: video: no ffmpeg for MP4 (pip install imageio-ffmpeg); writing {gif} instead"
            )
            path, ext = gif, "gif"
        self.path, self.format = str(path), ext
        self.envs, self.steps, self.every, self.fps, self.scale = envs, steps, every, fps, scale

    def setup(self, ctx: WrapperContext) -> spaces.Space:
        space = ctx.observation_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8):
            raise TypeError(f"video needs uint8 image frames (a Box of shape (H, W, C)), got {space}")
        self.ctx = ctx
        self.channels = 3 if space.shape[-1] % 3 == 0 else 1  # a frame stack shows its newest frame
        self.shown = min(self.envs, ctx.num_envs)
        self.step_count = 0
        self.frames: list[np.ndarray] = []
        self.clip_start: int | None = 0
        self.written: list[Path] = []
        return space

    def _frame(self, obs: np.ndarray, env_ids: np.ndarray) -> np.ndarray | None:
        ids = np.asarray(env_ids)
        rows = [np.flatnonzero(ids == s) for s in range(self.shown)]
        if any(len(r) == 0 for r in rows):
            return None
        tiles = [obs[r[0]][..., -self.channels :] for r in rows]
        tiles = [np.repeat(t, 3, axis=-1) if t.shape[-1] == 1 else t for t in tiles]
        gap = np.full((tiles[0].shape[0], 2, 3), 255, dtype=np.uint8)
        row = np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)
        return row.repeat(self.scale, axis=0).repeat(self.scale, axis=1)

    def on_reset(self, obs, env_ids, infos):  # type: ignore[no-untyped-def]
        if self.step_count == 0 and not self.frames and len(np.asarray(env_ids)) >= self.shown:
            frame = self._frame(obs, env_ids)
            if frame is not None:
                self.frames.append(frame)

    def on_step(self, obs, reward, done, env_ids, infos):  # type: ignore[no-untyped-def]
        if self.every and self.clip_start is None and self.step_count % self.every == 0:
            self.clip_start = self.step_count
        self.step_count += 1
        if self.clip_start is None:
            return
        frame = self._frame(obs, env_ids)
        if frame is not None:
            self.frames.append(frame)
        if len(self.frames) >= self.steps:
            self._write()

    def _write(self) -> None:
        if not self.frames:
            return
        path = Path(self.path)
        if self.every:
            path = path.with_name(f"{path.stem}-{self.clip_start:06d}{path.suffix}")
        out = _resolve(str(path), self.ctx)
        write_video(out, self.frames, self.fps)
        self.written.append(out)
        self.frames = []
        self.clip_start = None

    def close(self) -> None:
        if getattr(self, "frames", None):
            self._write()


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Prints ``message`` as one line on stderr, once per process."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(message, file=sys.stderr, flush=True)


def ffmpeg_exe() -> str | None:
    """The ffmpeg binary that MP4s are encoded with, or None when there is none.

    In order: ``$IMAGEIO_FFMPEG_EXE``; the binary the ``imageio-ffmpeg`` package ships (found in the
    package's ``binaries/`` folder without importing it, since imageio-ffmpeg 0.3, the release that
    procgen's gym3 pins, imports ``pkg_resources``, which setuptools 82 and later no longer ship); then
    an ``ffmpeg`` on the ``PATH``.
    """
    exe = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if exe and (os.path.isfile(exe) or shutil.which(exe)):
        return shutil.which(exe) or exe
    try:
        spec = importlib.util.find_spec("imageio_ffmpeg")
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a __spec__
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            for binary in sorted(Path(folder, "binaries").glob("ffmpeg*")):
                if binary.is_file() and os.access(binary, os.X_OK):
                    return str(binary)
        try:  # a layout without binaries/ (a conda build that uses the system's ffmpeg, say)
            import imageio_ffmpeg

            return str(imageio_ffmpeg.get_ffmpeg_exe())
        except Exception:  # noqa: BLE001 - any failure to find one: try the PATH
            pass
    return shutil.which("ffmpeg")


def _write_mp4(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Encodes ``frames`` as H.264 (yuv420p, even size: what every player reads) with ffmpeg."""
    exe = ffmpeg_exe()
    if exe is None:
        raise RuntimeError("writing an MP4 needs ffmpeg: pip install imageio-ffmpeg")
    height, width = frames[0].shape[:2]
    command = [
        exe, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-f", "mp4", str(path),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early: its exit code and message say why
        finally:
            proc.stdin.close()
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"ffmpeg failed to write {path} (exit {code}): {' '.join(message[-3:])}")


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Writes ``frames`` (uint8 RGB, all the same shape) as a GIF or an MP4, atomically."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        if path.suffix.lower() == ".gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(
                tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
            )
        else:
            _write_mp4(tmp, frames, fps)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
