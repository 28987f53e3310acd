"""``heldout saliency``: overlays, GIFs and the focus metric of a saved run; TensorBoard maps."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heldout.cli import main
from heldout.protocol.saliency import focus_summary, foreground_mask, overlay

TINY = [
    "--env", "starpilot",
    "--timesteps", "256",
    "--num-envs", "4",
    "--num-levels", "50",
    "--num-test-levels", "40",
    "--agent-arg", "n_steps=32",
    "--agent-arg", "batch_size=64",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "4",
    "--eval-freq", "0",
    "--saliency-log-freq", "128",
    "--seed", "1",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    with redirect_stdout(io.StringIO()):
        assert main(["train", *TINY, "--out", str(out)]) == 0
    (run,) = (out / "starpilot" / "ppo").iterdir()
    return run


def test_training_logs_saliency_overlays_to_tensorboard(run_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = run_dir.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    images = acc.Images("saliency/overlay")
    assert [e.step for e in images] == [128, 256]
    assert (images[0].width, images[0].height) == (2 * 128 + 2, 4 * 128)  # [frame | overlay] x 4 envs


def test_saliency_command_writes_images_and_the_focus_metric(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "maps"
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["saliency", str(run_dir), "--split", "test", "--episodes", "2", "--max-steps", "12"])
    assert code == 2  # --out is required
    with redirect_stdout(buf):
        code = main(["saliency", str(run_dir), "--episodes", "2", "--max-steps", "12", "--out", str(out)])
    assert code == 0 and "focus (value, guided_backprop)" in buf.getvalue()
    summary = json.loads((out / "focus-test.json").read_text())
    levels = json.loads((run_dir / "split.json").read_text())["eval_levels"]["test"][:2]
    assert [e["level"] for e in summary["per_episode"]] == levels
    assert 0 < summary["foreground_share"] < 1 and 0 <= summary["focus"]["value"] <= 1
    assert (run_dir / "eval" / "focus-test.json").is_file()
    for episode in summary["per_episode"]:
        stem = out / f"episode{summary['per_episode'].index(episode)}-level{episode['level']}"
        sheet = Image.open(f"{stem}.png")
        assert sheet.size[1] == 2 * 256 + 4  # frames over overlays, 4x upscaled
        gif = Image.open(f"{stem}.gif")
        assert gif.n_frames == episode["length"] and gif.size == (2 * 128 + 2, 128)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--split", "tset"], "unknown split 'tset' (did you mean 'test'?); valid splits: train, test"),
        (["--target", "vale"], "did you mean 'value'?"),
        (["--method", "gbp"], "valid: gradient, guided_backprop"),
    ],
)
def test_saliency_command_errors_are_one_line(run_dir: Path, tmp_path: Path, capsys, args, message) -> None:
    assert main(["saliency", str(run_dir), "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_foreground_is_the_non_black_pixels_and_focus_summary_lifts_over_chance() -> None:
    frames = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    frames[0, 0, 1, 2] = 9
    np.testing.assert_array_equal(foreground_mask(frames), [[[False, True], [False, False]]])
    summary = focus_summary(
        {"levels": [1, 2], "focus": {"value": [0.5, 0.3]}, "foreground_share": [0.1, 0.1]}
    )
    assert summary["focus"]["value"] == pytest.approx(0.4) and summary["lift"]["value"] == pytest.approx(4.0)


def test_overlay_shows_a_dimmed_grey_frame_where_nothing_is_salient() -> None:
    frame = np.full((4, 4, 3), 100, dtype=np.uint8)
    sal = np.zeros((4, 4))
    np.testing.assert_array_equal(overlay(frame, sal), np.full((4, 4, 3), 40, dtype=np.uint8))  # 0.4 * luma
    sal[1, 2] = 1.0
    out = overlay(frame, sal)
    assert (out[1, 2] != 40).any() and (out[0, 0] == 40).all()
