"""Saliency of a trained agent over whole episodes: overlays, animations and the focus metric.

``heldout saliency RUN_DIR --split test --episodes K --out DIR`` plays one episode on each of the
first ``K`` levels of the run's fixed evaluation list of a split and, at every step, computes the
agent's saliency map (:mod:`heldout.agents.saliency`; guided backprop by default). It writes:

* ``DIR/episode<i>-level<L>.gif``: the episode, frame beside frame-with-map;
* ``DIR/episode<i>-level<L>.png``: a contact sheet of evenly spaced steps (frame over overlay);
* ``DIR/focus-<split>.json``: the focus metric, also stored as ``eval/focus-<split>.json`` in the
  run folder.

**Focus** is the share of the saliency mass that falls on the foreground: ``sum(a * F) / sum(a)``
per frame, averaged over the frames of an episode, then over episodes. The foreground ``F`` of a
frame is taken from the same level rendered without background (procgen's ``use_backgrounds=False``
option, a second env stepped in lockstep with the same actions; its dynamics are unaffected, which
is checked: rewards and episode ends must agree): the pixels that are not the plain black backdrop.
The share of the frame the foreground covers (``foreground_share``) is what a map spread uniformly
would score, so ``focus / foreground_share`` > 1 means the agent looks at objects more than chance.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heldout.agents.saliency import ATTRIBUTION_METHODS, SALIENCY_TARGETS, check_choice, focus, saliency_maps
from heldout.protocol.checkpoint import load_trained_model, trained_checkpoint
from heldout.protocol.checks import check_int, check_seed, resolve_device

#: Scale of the written frames: 64 px -> 256 px in PNGs, 128 px in GIFs (smaller files).
UPSCALE = 4
GIF_UPSCALE = 2


def foreground_mask(frames_without_background: np.ndarray) -> np.ndarray:
    """Foreground of frames rendered with ``use_backgrounds=False``: the non-black pixels, (B, H, W)."""
    return np.asarray(frames_without_background).max(axis=-1) > 0


def run_saliency_episodes(
    model: Any,
    env: str,
    levels: Sequence[int],
    targets: Sequence[str] = ("value",),
    method: str = "guided_backprop",
    distribution_mode: str = "easy",
    env_options: dict[str, bool] | None = None,
    deterministic: bool = False,
    max_steps: int = 1000,
    keep_frames: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Plays one episode per level with ``model``, with saliency maps and foreground masks per step.

    Args:
        model: An SB3 / heldout agent with an image policy.
        env: A Procgen game.
        levels: One episode per level, played in parallel slots.
        targets: Saliency targets (:data:`~heldout.agents.saliency.SALIENCY_TARGETS`); the first
            is the one whose maps are kept for rendering.
        method: Attribution method.
        distribution_mode, env_options: The run's settings.
        deterministic: Greedy actions (the references sample).
        max_steps: Steps per episode at most.
        keep_frames: Keep the frames and maps of the first target (for rendering).
        seed: Seed of the envs.

    Returns:
        ``{"levels", "lengths", "returns", "focus": {target: [per-episode mean]},
        "foreground_share": [per-episode mean], "frames": [(T, H, W, 3)], "maps": [(T, H, W)]}``.

    Raises:
        RuntimeError: If the background-free copy of the env diverges (rewards or episode ends).
    """
    from heldout.envs import SequentialLevelSampler, make_vec
    from heldout.splits import LevelSet

    for target in targets:
        check_choice("saliency target", target, SALIENCY_TARGETS)
    check_choice("attribution method", method, ATTRIBUTION_METHODS)
    levels = [int(x) for x in levels]
    n = len(levels)
    options = dict(env_options or {})
    common = dict(num_envs=n, levels=LevelSet.of(levels), distribution_mode=distribution_mode, seed=seed)
    main = make_vec(env, level_sampler=SequentialLevelSampler(levels), **common, **options)
    plain = make_vec(
        env, level_sampler=SequentialLevelSampler(levels), **common, **{**options, "use_backgrounds": False}
    )
    focus_sum = {t: np.zeros(n) for t in targets}
    fg_sum = np.zeros(n)
    steps = np.zeros(n, dtype=int)
    returns = np.zeros(n)
    active = np.ones(n, dtype=bool)
    frames: list[list[np.ndarray]] = [[] for _ in range(n)]
    maps: list[list[np.ndarray]] = [[] for _ in range(n)]
    try:
        obs, obs_plain = main.reset(), plain.reset()
        for _ in range(max_steps):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            fg = foreground_mask(obs_plain[idx])
            fg_sum[idx] += fg.mean(axis=(1, 2))
            for k, target in enumerate(targets):
                sal = saliency_maps(model, obs[idx], target=target, method=method)
                shares = focus(sal, fg)
                focus_sum[target][idx] += np.nan_to_num(shares, nan=0.0)
                if k == 0 and keep_frames:
                    for j, i in enumerate(idx):
                        frames[i].append(obs[i].copy())
                        maps[i].append(sal[j])
            steps[idx] += 1
            actions, _ = model.predict(obs, deterministic=deterministic)
            obs, rew, dones, _ = main.step(actions)
            obs_plain, rew_plain, dones_plain, _ = plain.step(actions)
            if not (np.array_equal(dones, dones_plain) and np.allclose(rew, rew_plain)):
                raise RuntimeError(f"{env}: the background-free copy diverged; focus cannot be measured")
            returns[active] += rew[active]
            active &= ~dones
    finally:
        main.close()
        plain.close()
    denom = np.maximum(steps, 1)
    return {
        "levels": levels,
        "lengths": steps.tolist(),
        "returns": returns.tolist(),
        "truncated": active.tolist(),
        "focus": {t: (focus_sum[t] / denom).tolist() for t in targets},
        "foreground_share": (fg_sum / denom).tolist(),
        "frames": [np.asarray(f) for f in frames] if keep_frames else [],
        "maps": [np.asarray(m) for m in maps] if keep_frames else [],
    }


def focus_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Mean focus per target over episodes, mean foreground share, and their ratio."""
    fg = float(np.mean(result["foreground_share"]))
    out: dict[str, Any] = {"episodes": len(result["levels"]), "foreground_share": fg, "focus": {}, "lift": {}}
    for target, values in result["focus"].items():
        mean = float(np.mean(values))
        out["focus"][target] = mean
        out["lift"][target] = mean / fg if fg > 0 else float("nan")
    return out


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------


def overlay(frame: np.ndarray, saliency: np.ndarray, dim: float = 0.4) -> np.ndarray:
    """The saliency map (inferno colormap) over a dimmed grey copy of the frame, uint8 (H, W, 3).

    The map is scaled by its 99th percentile (clipped at 1), so a few extreme pixels do not hide the
    rest; each pixel's blend weight is its scaled saliency, so unsalient pixels
    show the grey frame (``dim`` times its luma) and Procgen's colourful backgrounds do not drown the
    map.
    """
    from matplotlib import colormaps

    scale = np.percentile(saliency, 99)
    norm = np.clip(saliency / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(saliency, dtype=np.float64)
    heat = colormaps["inferno"](norm)[..., :3] * 255.0
    luma = frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    base = np.repeat((dim * luma)[..., None], 3, axis=-1)
    weight = norm[..., None]
    return ((1.0 - weight) * base + weight * heat).clip(0, 255).astype(np.uint8)


def _upscale(image: np.ndarray, factor: int = UPSCALE) -> np.ndarray:
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def side_by_side(frame: np.ndarray, saliency: np.ndarray, factor: int = UPSCALE) -> np.ndarray:
    """``[frame | overlay]``, upscaled by ``factor``, with a white gutter."""
    left, right = _upscale(frame, factor), _upscale(overlay(frame, saliency), factor)
    gutter = np.full((left.shape[0], factor, 3), 255, dtype=np.uint8)
    return np.concatenate([left, gutter, right], axis=1)


def write_gif(path: Path, frames: np.ndarray, maps: np.ndarray, fps: int = 15) -> Path:
    """An animated GIF of an episode, frame beside overlay."""
    from PIL import Image

    images = [Image.fromarray(side_by_side(f, m, GIF_UPSCALE)) for f, m in zip(frames, maps)]
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    os.replace(tmp, path)
    return path


def write_contact_sheet(path: Path, frames: np.ndarray, maps: np.ndarray, columns: int = 6) -> Path:
    """A PNG of ``columns`` evenly spaced steps: frames on the top row, overlays below."""
    from PIL import Image

    picks = np.unique(np.linspace(0, len(frames) - 1, num=min(columns, len(frames))).round().astype(int))
    gutter = np.full((64 * UPSCALE, 4, 3), 255, dtype=np.uint8)
    top = [np.concatenate([_upscale(frames[t]), gutter], axis=1) for t in picks]
    bottom = [np.concatenate([_upscale(overlay(frames[t], maps[t])), gutter], axis=1) for t in picks]
    row_gap = np.full((4, sum(x.shape[1] for x in top), 3), 255, dtype=np.uint8)
    sheet = np.concatenate([np.concatenate(top, axis=1), row_gap, np.concatenate(bottom, axis=1)], axis=0)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(sheet).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def saliency_log_callback(freq: int, max_images: int = 4, target: str | None = None) -> Any:
    """An SB3 callback that logs ``[frame | overlay]`` images of the training envs' current frames.

    Every ``freq`` timesteps, the saliency maps (guided backprop of the default target) of the first
    ``max_images`` envs' observations are logged to TensorBoard as ``saliency/overlay`` (one image,
    the envs stacked vertically).
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Image

    from heldout.agents.saliency import default_target

    class SaliencyLog(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_log = freq

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_log:
                return True
            self.next_log += freq
            obs = np.asarray(self.model._last_obs)[:max_images]  # type: ignore[attr-defined]
            maps = saliency_maps(self.model, obs, target=target or default_target(self.model))
            frames = obs if obs.shape[-1] in (1, 3) else obs.transpose(0, 2, 3, 1)
            rows = [side_by_side(f, m, 2) for f, m in zip(frames, maps)]
            self.logger.record(
                "saliency/overlay",
                Image(np.concatenate(rows, axis=0), "HWC"),
                exclude=("stdout", "log", "json", "csv"),
            )
            return True

    return SaliencyLog()


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def split_levels(run_dir: Path, config: Any, split: str, episodes: int) -> list[int]:
    """The first ``episodes`` levels of the run's fixed evaluation list of ``split``."""
    from heldout.protocol.evaluate import evaluation_levels
    from heldout.protocol.families import split_of
    from heldout.splits import unknown_split_message

    run_split = split_of(config)
    valid = list(run_split.splits())
    if split not in valid:
        raise ValueError(unknown_split_message(split, valid))
    split_file = run_dir / "split.json"
    if split_file.is_file():
        from heldout.protocol.run_folder import read_eval_lists

        stored = read_eval_lists(split_file)[0].get(split)
        if stored and len(stored) >= episodes:
            return [int(x) for x in stored[:episodes]]
    return evaluation_levels(run_split.get(split), episodes)


def run_saliency(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    episodes: int = 4,
    target: str | None = None,
    method: str = "guided_backprop",
    max_steps: int = 500,
    deterministic: bool | None = None,
    render: bool = True,
    device: str = "auto",
    seed: int = 0,
    imports: list[str] | None = None,
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """``heldout saliency``: overlays, GIFs and the focus metric of a run on a split.

    The user modules the run imported are imported first (``imports`` instead, when given). The model
    comes from the run's final checkpoint, without pickle (``trust_pickle``: an older folder's
    model.zip; see :func:`heldout.protocol.checkpoint.load_trained_model`).

    Returns:
        The focus summary (also written to ``OUT/focus-<split>.json`` and the run's
        ``eval/focus-<split>.json``), with the written ``files``.

    Raises:
        ValueError: Bad run folder, split, target, method or numbers (before any work).
    """
    from heldout.agents.saliency import default_target
    from heldout.envs.procgen import PROCGEN_GAMES
    from heldout.protocol.run_folder import check_writable, load_run, write_json

    config, path = load_run(run_dir, imports)
    check_int("--episodes", episodes, minimum=1)
    check_int("--max-steps", max_steps, minimum=1)
    check_seed("--seed", seed)
    resolve_device(device, what="--device")
    check_choice("attribution method", method, ATTRIBUTION_METHODS)
    if target is not None:
        check_choice("saliency target", target, SALIENCY_TARGETS)
    if config.env not in PROCGEN_GAMES:
        raise ValueError(
            f"heldout saliency needs a Procgen run (images, and the background-free foreground), got env "
            f"{config.env!r}; valid: a run of {', '.join(PROCGEN_GAMES)}"
        )
    from heldout.protocol.offline import is_offline

    if is_offline(config.agent):
        raise ValueError(
            f"heldout saliency maps an online agent's SB3 policy; run {str(run_dir)!r} is of offline agent "
            f"{config.agent!r} (valid: a run of an online agent)"
        )
    levels = split_levels(path, config, split, episodes)
    out_dir = check_writable(out)
    trained_checkpoint(path, trust_pickle=trust_pickle)  # intact, before any work
    model = load_trained_model(config, path, device=device, trust_pickle=trust_pickle)
    target = target or default_target(model)
    result = run_saliency_episodes(
        model,
        config.env,
        levels,
        targets=(target,),
        method=method,
        distribution_mode=config.distribution_mode,
        env_options=config.env_options,
        deterministic=config.deterministic_eval if deterministic is None else deterministic,
        max_steps=max_steps,
        keep_frames=render,
        seed=seed,
    )
    summary = focus_summary(result)
    summary.update(
        run_dir=str(path),
        split=split,
        target=target,
        method=method,
        max_steps=max_steps,
        per_episode=[
            {"level": lv, "length": n, "return": r, "focus": f, "foreground_share": s}
            for lv, n, r, f, s in zip(
                result["levels"],
                result["lengths"],
                result["returns"],
                result["focus"][target],
                result["foreground_share"],
            )
        ],
    )
    files: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    if render:
        for i, (level, frames, maps) in enumerate(zip(result["levels"], result["frames"], result["maps"])):
            stem = f"episode{i}-level{level}"
            files.append(str(write_contact_sheet(out_dir / f"{stem}.png", frames, maps)))
            files.append(str(write_gif(out_dir / f"{stem}.gif", frames, maps)))
    summary["files"] = files
    files.append(str(write_json(Path(out_dir) / f"focus-{split}.json", summary)))
    write_json(path / "eval" / f"focus-{split}.json", summary)
    return summary


def run_focus(
    run_dir: str | os.PathLike[str],
    splits: Sequence[str] = ("train", "test"),
    episodes: int = 8,
    max_steps: int = 200,
    method: str = "guided_backprop",
    device: str = "auto",
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """The focus metric of a run on each split, without images (what ``heldout bench agents`` reports).

    Targets: the model's default one (``q`` for Q-networks, ``value`` for actor-critics) and, for
    stochastic policies, ``log_prob`` too.

    Returns:
        ``{split: focus_summary}`` (also written to the run's ``eval/focus-<split>.json``).
    """
    from heldout.agents.saliency import default_target, policy_network
    from heldout.protocol.run_folder import load_run, write_json

    config, path = load_run(run_dir)
    resolve_device(device)
    trained_checkpoint(path, trust_pickle=trust_pickle)  # intact, before any work
    model = load_trained_model(config, path, device=device, trust_pickle=trust_pickle)
    targets = [default_target(model)]
    if targets[0] == "value" and hasattr(policy_network(model), "get_distribution"):
        targets.append("log_prob")
    out: dict[str, Any] = {}
    for split in splits:
        result = run_saliency_episodes(
            model,
            config.env,
            split_levels(path, config, split, episodes),
            targets=targets,
            method=method,
            distribution_mode=config.distribution_mode,
            env_options=config.env_options,
            deterministic=config.deterministic_eval,
            max_steps=max_steps,
            keep_frames=False,
        )
        summary = focus_summary(result)
        summary.update(split=split, method=method, max_steps=max_steps)
        write_json(path / "eval" / f"focus-{split}.json", summary)
        out[split] = summary
    return out


def format_focus(summary: dict[str, Any]) -> str:
    """One line per target: focus, foreground share, lift."""
    lines = []
    for target, value in summary["focus"].items():
        lines.append(
            f"{summary.get('split', '')}: focus ({target}, {summary.get('method', '')}) {value:.3f}; "
            f"foreground share {summary['foreground_share']:.3f}; lift {summary['lift'][target]:.2f}x "
            f"over {summary['episodes']} episodes"
        )
    return "\n".join(lines)


__all__ = [
    "focus_summary",
    "foreground_mask",
    "format_focus",
    "overlay",
    "run_focus",
    "run_saliency",
    "run_saliency_episodes",
    "write_contact_sheet",
    "write_gif",
]
