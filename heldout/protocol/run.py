"""The evaluation protocol: train on the train split, evaluate zero-shot on every split, record.

The protocol is the same for Procgen levels and for contextual envs: it asks the env's family
(``heldout.protocol.families``) for the split, the fixed evaluation lists, the training env and
the evaluation, and writes the same run folder.

``run_train(config)`` is what ``heldout train`` runs:

1. validate the config (names, numbers, a disjoint split) before anything is created;
2. fix one evaluation list per split (levels, or (context, seed) pairs) (the same for every run and agent):
   held-out lists hold distinct levels, none with a training level's layout (``leakage``; Procgen
   generates identical levels from different seeds; docs/levels.md), shorter with a warning when
   the set runs out;
3. train on the training levels with rewards normalised as the references do
   (``VecNormalize(norm_obs=False)``), evaluating periodically on train and test subsets;
4. evaluate at the end on every split (``eval_episodes`` each, stochastic policy by default);
5. write the run folder (``heldout.protocol.run_folder``) and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heldout.protocol.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    read_checkpoint,
    restore_checkpoint,
    restore_logger,
    save_checkpoint,
)
from heldout.protocol.config import TrainConfig
from heldout.protocol.evaluate import EvalResult, run_threads, torch_threads
from heldout.protocol.families import EnvFamily, family_for
from heldout.protocol.lease import hold, is_lease_file, refuse_if_held
from heldout.protocol.plan import plan_train
from heldout.protocol.progress import RunProgress
from heldout.protocol.run_folder import (
    check_run_config,
    check_writable,
    git_revision,
    new_run_dir,
    read_config,
    read_eval_lists,
    read_summary,
    write_atomic,
    write_json,
    write_yaml,
)
from heldout.protocol.scores import generalization_gap, normalized_score
from heldout.protocol.status import (
    TrainingDiverged,
    describe_status,
    read_status,
    status_callback,
    write_status,
)
from heldout.protocol.tables import context_table, split_table
from heldout.splits import ContextSplit, LevelSplit


def summarize(
    config: TrainConfig, results: dict[str, EvalResult], split: LevelSplit | ContextSplit
) -> dict[str, Any]:
    """The ``summary.json`` content: per split mean/std/episodes/normalised score (and, for contextual
    envs, returns by context bin); the gap."""
    family = family_for(config.env)
    splits: dict[str, Any] = {}
    for name, res in results.items():
        s = res.summary()
        s["level_set"] = family.describe_set(split, name)
        s["normalized"] = normalized_score(
            config.env, res.settings.get("distribution_mode", config.distribution_mode), s["mean"]
        )
        s.update(family.summarize_split(config, split, name, res))
        splits[name] = s
    out: dict[str, Any] = {
        "env": config.env,
        "agent": config.agent,
        "seed": config.seed,
        "kind": family.kind,
        "splits": splits,
    }
    if isinstance(split, ContextSplit):
        out["context_mode"] = split.mode
    if "train" in splits and "test" in splits:
        out["gap"] = generalization_gap(splits["train"]["mean"], splits["test"]["mean"])
        a, b = splits["train"]["normalized"], splits["test"]["normalized"]
        out["normalized_gap"] = None if a is None or b is None else a - b
    return out


def periodic_evaluation(
    model: Any, config: TrainConfig, lists: dict[str, list], family: EnvFamily, progress: RunProgress | None
) -> None:
    """Evaluates ``model`` on the first ``eval_periodic_episodes`` of the train and test lists and
    records eval/<split>/mean_return (and completion_rate) and eval/gap in ``model.logger``."""
    means = {}
    for name in ("train", "test"):
        res = family.evaluate(
            model,
            config,
            lists[name][: config.eval_periodic_episodes],
            name,
            seed=config.seed + 1,
            progress=progress.episodes(f"eval {name}") if progress else False,
        )
        means[name] = res.mean
        model.logger.record(f"eval/{name}/mean_return", res.mean)
        if res.completion_rate is not None:
            model.logger.record(f"eval/{name}/completion_rate", res.completion_rate)
    model.logger.record("eval/gap", means["train"] - means["test"])


def _periodic_eval_callback(
    config: TrainConfig, lists: dict[str, list], family: EnvFamily, progress: RunProgress | None = None
) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class PeriodicEval(BaseCallback):
        """Evaluates on train and test subsets every ``eval_freq`` timesteps; logs eval/<split>/..."""

        def _on_training_start(self) -> None:  # a resumed run continues the schedule
            self.next_eval = next_multiple(self.num_timesteps, config.eval_freq)

        def _on_step(self) -> bool:
            if config.eval_freq and self.num_timesteps >= self.next_eval:
                self.next_eval += config.eval_freq
                periodic_evaluation(self.model, config, lists, family, progress)
                if progress is not None:
                    progress.set_phase("rollout", refresh=True)
            return True

    return PeriodicEval()


def _offline_boundary(
    config: TrainConfig,
    lists: dict[str, list],
    family: EnvFamily,
    progress: RunProgress | None,
    run_dir: Path,
    stop: _StopRequest,
    start: int,
) -> Any:
    """What an offline run does after each update (:meth:`heldout.protocol.offline.OfflineModel.learn`),
    as the online callbacks do after each step or rollout: status.json, the progress bar, the periodic
    evaluation, a row of progress.csv and TensorBoard, a checkpoint when due or asked for (Ctrl-C)."""
    from heldout.protocol.checkpoint import save_offline_checkpoint

    every = checkpoint_every(config)
    every_seconds = 60.0 * config.checkpoint_minutes
    due = {"eval": next_multiple(start, config.eval_freq), "save": next_multiple(start, every)}
    clock = {"status": -float("inf"), "save": time.monotonic()}

    def boundary(model: Any, logged: bool) -> None:
        n = model.num_timesteps
        if model.diverged:
            raise TrainingDiverged(
                f"the update before step {n} gave non-finite {', '.join(model.diverged)} (NaN or Inf); "
                "try a lower learning_rate"
            )
        now = time.monotonic()
        if progress is not None:
            progress.steps(n)
        if now - clock["status"] >= 5.0:
            clock["status"] = now
            write_status(run_dir, "running", n, config.timesteps)
        evaluated = bool(config.eval_freq) and n >= due["eval"]
        if evaluated:
            due["eval"] = next_multiple(n, config.eval_freq)
            periodic_evaluation(model, config, lists, family, progress)
            if progress is not None:
                progress.set_phase("update", refresh=True)
        save = (
            bool(every)
            and n < config.timesteps
            and (n >= due["save"] or now - clock["save"] >= every_seconds)
        ) or (stop.requested)
        if save and not logged:
            logged = model.record()
        if logged or evaluated:
            model.logger.record("time/total_timesteps", n)
            model.logger.dump(n)
        if save:
            save_offline_checkpoint(model, run_dir, keep=config.checkpoint_keep)
            if every:
                due["save"] = next_multiple(n, every)
            clock["save"] = now
        if stop.requested:
            raise KeyboardInterrupt

    return boundary


def next_multiple(steps: int, freq: int) -> int:
    """The first multiple of ``freq`` after ``steps`` (``freq`` 0: never)."""
    return (steps // freq + 1) * freq if freq else 0


def checkpoint_every(config: TrainConfig) -> int:
    """Timesteps between checkpoints: ``checkpoint_freq``, or 10% of the run when it is None (0: none)."""
    if config.checkpoint_freq is None:
        return max(1, config.timesteps // 10)
    return config.checkpoint_freq


class _StopRequest:
    """The first Ctrl-C (SIGINT) or SIGTERM (a scheduler's preemption, Slurm's ``scancel``) asks the
    run to stop at the end of the current update, with a checkpoint; a second Ctrl-C stops at once
    (SIGINT's default). A second SIGTERM changes nothing: the scheduler's SIGKILL follows anyway."""

    def __init__(self, stream: Any) -> None:
        self.requested = False
        self.stream = stream
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self.requested:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            f"\n{signal.Signals(signum).name}: stopping at the end of this update, with a checkpoint "
            "(Ctrl-C again to stop now)",
            file=sys.stderr,
        )

    def __exit__(self, *exc: Any) -> None:
        import signal

        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def training_context_features(split: Any) -> list[str]:
    """The features a contextual run's training distribution varies (an empty list for levels)."""
    if not isinstance(split, ContextSplit):
        return []
    out = []
    for f in split.train.features:
        hull = split.train.hull(f)
        if hull is not None and hull[1] > hull[0]:
            out.append(f)
    return out


def training_context_callback(features: Sequence[str]) -> Any:
    """Logs the contexts of the training episodes that ended in each rollout.

    Per varied training feature ``f``: ``train_context/<f>_mean``, ``_min`` and ``_max`` (progress.csv
    and TensorBoard scalars) and ``train_context/<f>`` (a TensorBoard histogram of the episodes'
    values), with ``train_context/episodes``, the number of episodes they are over; a rollout in which
    no episode ended logs none. Each value is the ``info["context"]`` of an episode's last step, the
    context the episode ran in.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class TrainingContexts(BaseCallback):
        def _on_training_start(self) -> None:
            self.values: dict[str, list[float]] = {f: [] for f in features}

        def _on_step(self) -> bool:
            for done, info in zip(self.locals.get("dones", ()), self.locals.get("infos", ())):
                context = info.get("context") if done else None
                if context:
                    for f in features:
                        if f in context:
                            self.values[f].append(float(context[f]))
            return True

        def _on_rollout_end(self) -> None:
            n = max((len(v) for v in self.values.values()), default=0)
            if not n:
                return
            self.logger.record("train_context/episodes", n)
            for f, v in self.values.items():
                if v:
                    a = np.asarray(v)
                    self.logger.record(f"train_context/{f}_mean", float(a.mean()))
                    self.logger.record(f"train_context/{f}_min", float(a.min()))
                    self.logger.record(f"train_context/{f}_max", float(a.max()))
                    self.logger.record(f"train_context/{f}", a, exclude=("stdout", "log", "json", "csv"))
                v.clear()

    return TrainingContexts()


def _checkpoint_callback(config: TrainConfig, run_dir: Path, stop: _StopRequest) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    every = checkpoint_every(config)
    every_seconds = 60.0 * config.checkpoint_minutes

    class Checkpoint(BaseCallback):
        """Saves a checkpoint (:mod:`heldout.protocol.checkpoint`) at the update boundary after every
        ``every`` timesteps or ``checkpoint_minutes``, whichever comes first, and when a stop is asked."""

        def _on_training_start(self) -> None:
            self.start = self.num_timesteps
            self.next_save = next_multiple(self.num_timesteps, every)
            self.last_time = time.monotonic()

        def _on_rollout_start(self) -> None:
            due = bool(every) and (
                self.num_timesteps >= self.next_save or time.monotonic() - self.last_time >= every_seconds
            )
            if (due and self.num_timesteps > self.start) or stop.requested:
                save_checkpoint(self.model, run_dir, keep=config.checkpoint_keep)
                if every:
                    self.next_save = next_multiple(self.num_timesteps, every)
                self.last_time = time.monotonic()
            if stop.requested:
                raise KeyboardInterrupt

        def _on_step(self) -> bool:
            return True

    return Checkpoint()


def write_level_weights(venv: Any, run_dir: Path) -> Path | None:
    """Writes ``level_weights.csv`` (one row per training level: level, score, staleness, weight
    (``P_replay``), seen, times_played, times_handed_out) when the run trained with a learning level
    sampler (PLR, Robust PLR); returns its path, or None."""
    import csv

    from heldout.agents.level_replay import scoring_sampler

    sampler = scoring_sampler(venv)
    if sampler is None:
        return None
    rows = sampler.level_table()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    path = run_dir / "level_weights.csv"
    write_atomic(path, buf.getvalue())
    return path


def save_model(model: Any, path: Path) -> None:
    """Saves an SB3 model atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def run_train(
    config: TrainConfig,
    command: str = "",
    progress: bool = True,
    stream: Any = None,
    run_dir: str | os.PathLike[str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Runs the whole protocol for ``config``; returns the run folder and the summary.

    Args:
        config: The run.
        command: The command line recorded in ``command.txt``.
        progress: Show the run's progress bar.
        stream: Where the tables go (stdout).
        run_dir: The folder to write the run into (created; it must be missing or empty), instead of
            a new ``<out>/<env>/<agent>/seed<k>-<time>`` (``heldout sweep`` names its runs by grid point).

    Raises:
        ValueError, KeyError, TypeError: on bad input, before any folder is created.
        KeyboardInterrupt: on Ctrl-C, after a checkpoint at the end of the current update; the
            folder is marked interrupted and ``heldout train --resume`` continues it.
        TrainingDiverged: when an update leaves non-finite weights; the folder is marked failed.
    """
    stream = stream or sys.stdout
    plan = plan_train(config)  # every check, the split and the lists; nothing written yet
    config, family, agent_cls, split = plan.config, plan.family, plan.agent_cls, plan.split
    lists, leakage = plan.lists, plan.leakage
    for note in plan.notes:  # the exact figure trained, before the run starts
        print(note, file=stream)
    for record in leakage.values():  # a held-out list its set could not fill: said, never repeated
        if isinstance(record, dict) and record.get("warning"):
            print(f"warning: {record['warning']}", file=sys.stderr)

    if run_dir is None:
        run_dir = new_run_dir(config.out, config.env, config.agent, config.seed)
    else:
        run_dir = _empty_run_dir(run_dir)
    write_status(run_dir, "running", 0, config.timesteps)
    write_yaml(run_dir / "config.yaml", config.to_dict())
    write_atomic(run_dir / "command.txt", (command or "heldout train (in-process)") + "\n")
    write_atomic(run_dir / "git.txt", git_revision() + "\n")
    write_json(run_dir / "split.json", {"split": split.to_dict(), "eval_levels": lists, "leakage": leakage})

    with torch_threads(run_threads(config, family)), hold(run_dir):
        return _train_and_evaluate(
            config, family, split, lists, leakage, agent_cls, run_dir, progress, stream
        )


def _empty_run_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` created (with its parents) as the folder of a new run; refused if it holds anything
    (but the lease of the sweep worker that starts it)."""
    run_dir = Path(path)
    check_writable(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if any(not is_lease_file(p) for p in run_dir.iterdir()):
        raise ValueError(f"run folder {str(run_dir)!r} is not empty: a new run needs an empty folder")
    return run_dir


def resume_train(
    run_dir: str | os.PathLike[str],
    progress: bool = True,
    stream: Any = None,
    trust_pickle: bool = False,
    command: str = "",
) -> tuple[Path, dict[str, Any] | None]:
    """Continues an interrupted or failed run from its last intact checkpoint (``heldout train --resume``).

    On CPU the resumed run is the run that was not interrupted: the same weights, logger rows and
    final evaluation (``tests/protocol/test_resume.py``). A complete run is left as it is (the
    summary is returned; nothing is written).

    Raises:
        ValueError: naming the folder, when it is no run folder, has no checkpoint yet, or its
            checkpoints' env state was signed by someone else (see ``trust_pickle``).
    """
    from heldout.agents import AGENTS
    from heldout.protocol.offline import is_offline, offline_agents
    from heldout.protocol.plugins import import_plugins

    stream = stream or sys.stdout
    path = Path(run_dir)
    # every check first (the config, the status, the checkpoint read whole, split.json, progress.csv),
    # then the first change: a resume refused leaves every file of the folder as it was
    if not (path / "config.yaml").is_file():
        raise ValueError(f"{str(run_dir)!r} is not a heldout run folder (no config.yaml)")
    refuse_if_held(path)  # a run a live process trains is never resumed into
    config = read_config(path / "config.yaml")
    status = read_status(path)
    if status["state"] == "complete":
        summary_file = path / "summary.json"
        summary = read_summary(summary_file) if summary_file.is_file() else None
        print(f"run {str(path)!r} is complete ({describe_status(status)}): nothing to resume", file=stream)
        return path, summary
    import_plugins(config.imports)
    check_run_config(config, path / "config.yaml")
    found, warnings = latest_checkpoint(path)
    if found is None:
        raise ValueError(
            f"run {str(path)!r} ({describe_status(status)}) has no intact checkpoint to resume from: "
            "it stopped before its first one; start it again with --config "
            f"{str(path / 'config.yaml')!r}"
        )
    checkpoint = read_checkpoint(found, trust_pickle=trust_pickle)
    family = family_for(config.env)
    split = family.split(config)
    lists, leakage = read_eval_lists(path / "split.json")
    rows = _progress_rows(path / "progress.csv", checkpoint.step)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"resuming {str(path)!r} from {found.name} ({describe_status(status)})", file=stream)
    with torch_threads(run_threads(config, family)), hold(path):
        return _train_and_evaluate(
            config,
            family,
            split,
            lists,
            leakage,
            (offline_agents() if is_offline(config.agent) else AGENTS).get(config.agent),
            path,
            progress,
            stream,
            resume=(checkpoint, rows, command),
        )


def _progress_rows(csv_path: Path, step: int) -> list[list[str]] | None:
    """``progress.csv``'s header and the rows up to ``step`` (later ones are dropped, as the resumed
    run writes them again); None without the file.

    Raises:
        ValueError: naming the file and line whose step is no number.
    """
    import csv
    import math

    if not csv_path.is_file():
        return None
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(csv_path)!r} is not a CSV file ({exc})") from None
    if not rows:
        return []
    keys = rows[0]
    col = keys.index("time/total_timesteps") if "time/total_timesteps" in keys else None
    kept = [keys]
    for line, row in enumerate(rows[1:], 2):
        if col is not None:
            if col >= len(row):
                raise ValueError(
                    f"{str(csv_path)!r}, line {line}: has {len(row)} columns, the header {len(keys)}"
                )
            try:
                value = float(row[col]) if row[col] else None
            except ValueError:
                value = math.nan
            if value is not None and not math.isfinite(value):
                raise ValueError(
                    f"{str(csv_path)!r}, line {line}: time/total_timesteps must be a number, got {row[col][:40]!r}"
                )
            if value is None or value > step:
                continue
        kept.append(row)
    return kept


def _logger(run_dir: Path, resume_rows: list[list[str]] | None, resume_step: int | None) -> Any:
    """SB3's CSV + TensorBoard logger for the run folder; on resume, progress.csv keeps
    ``resume_rows`` (:func:`_progress_rows`: its rows up to the checkpoint's step) and TensorBoard
    purges the events after it."""
    from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat, configure

    if resume_step is None:
        return configure(str(run_dir), ["csv", "tensorboard"])
    csv_path = run_dir / "progress.csv"
    keys: list[str] = []
    if resume_rows:
        import csv

        keys = resume_rows[0]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(resume_rows)
        write_atomic(csv_path, buf.getvalue())
    csv_format = CSVOutputFormat.__new__(CSVOutputFormat)
    csv_format.file = open(csv_path, "a+" if not csv_path.is_file() else "r+")
    csv_format.file.seek(0, os.SEEK_END)
    csv_format.keys, csv_format.separator, csv_format.quotechar = list(keys), ",", '"'
    from torch.utils.tensorboard import SummaryWriter

    tb_format = TensorBoardOutputFormat.__new__(TensorBoardOutputFormat)
    tb_format.writer = SummaryWriter(log_dir=str(run_dir), purge_step=resume_step + 1)
    tb_format._is_closed = False
    return Logger(str(run_dir), [csv_format, tb_format])


def _train_and_evaluate(
    config: TrainConfig,
    family: Any,
    split: Any,
    lists: dict[str, list],
    leakage: Any,
    agent_cls: type,
    run_dir: Path,
    progress: bool,
    stream: Any,
    resume: tuple[Checkpoint, list[list[str]] | None, str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    from heldout.protocol.offline import OfflineModel, is_offline

    offline = is_offline(config.agent)
    venv: Any = None
    model: Any
    if offline:  # learns from its dataset: no env until evaluation
        from heldout.protocol.checkpoint import restore_offline_checkpoint
        from heldout.protocol.dataset import open_dataset

        model = OfflineModel(config, family, open_dataset(config.dataset))
    else:
        venv = family.make_train_env(config, split, output_dir=run_dir / "wrappers")
        model = agent_cls(
            env=venv, seed=config.seed, device=config.device, verbose=0, **family.agent_kwargs(config)
        )
        from heldout.agents.bonuses import attach_bonus

        attach_bonus(model, config.bonus, config.bonus_kwargs, config.seed)  # before a checkpoint restores it
    extra: dict[str, Any] = {}
    if resume is not None:
        checkpoint, rows, command = resume
        try:  # the model first: a checkpoint that does not fit it is refused before any file changes
            if offline:
                extra = restore_offline_checkpoint(model, checkpoint)
            else:
                extra = restore_checkpoint(model, checkpoint, logger=False)
        except BaseException:
            if venv is not None:
                venv.close()
            raise
        if command:
            previous = (run_dir / "command.txt").read_text() if (run_dir / "command.txt").is_file() else ""
            write_atomic(run_dir / "command.txt", previous + command + "\n")
        model.set_logger(_logger(run_dir, rows, checkpoint.step))
        restore_logger(model.logger, checkpoint)
        if extra.get("not_exact"):
            print(
                "warning: the checkpoint could not hold "
                + ", ".join(extra["not_exact"])
                + "; the resumed run goes on from there, but not exactly as the uninterrupted run would",
                file=sys.stderr,
            )
    else:
        model.set_logger(_logger(run_dir, None, None))
    from heldout.agents.precision import bf16_cpu_warning

    slow_bf16 = bf16_cpu_warning(getattr(model, "precision", "fp32"), model.device)
    if slow_bf16 and not extra.get("training_done"):  # said before training, never refused
        print(slow_bf16, file=sys.stderr)
    # one bar for the whole run, naming its phase (rollout / update / eval ...); none without progress
    bar = RunProgress(config.timesteps) if progress else None
    recorder: Any = None  # --record-rollouts: the dataset of the training rollouts, until it is in place
    try:
        with _StopRequest(stream) as stop, bar or contextlib.nullcontext():
            if bar is not None:
                bar.steps(model.num_timesteps)
            if not extra.get("training_done") and offline:
                t0 = time.perf_counter()
                if bar is not None:
                    bar.set_phase("update")
                model.learn(
                    config.timesteps,
                    _offline_boundary(config, lists, family, bar, run_dir, stop, model.num_timesteps),
                )
                train_seconds = extra.get("train_seconds", 0.0) + time.perf_counter() - t0
                from heldout.protocol.checkpoint import save_offline_checkpoint

                save_offline_checkpoint(
                    model,
                    run_dir,
                    extra={"training_done": True, "train_seconds": train_seconds},
                    keep=config.checkpoint_keep,
                )
            elif not extra.get("training_done"):
                callbacks = [
                    status_callback(run_dir, config.timesteps),
                    _periodic_eval_callback(config, lists, family, bar),
                    _checkpoint_callback(config, run_dir, stop),
                ]
                if bar is not None:
                    callbacks.insert(0, bar.callback())
                context_features = training_context_features(split)
                if context_features:
                    callbacks.append(training_context_callback(context_features))
                if config.saliency_log_freq:
                    from heldout.protocol.saliency import saliency_log_callback

                    callbacks.append(saliency_log_callback(config.saliency_log_freq))
                if config.record_rollouts:
                    from heldout.protocol.collect import rollout_recorder

                    recorder = rollout_recorder(config, family, split, venv, run_dir, model.num_timesteps)
                    callbacks.append(recorder)
                t0 = time.perf_counter()
                model.learn(
                    total_timesteps=config.timesteps - model.num_timesteps,
                    callback=callbacks,
                    reset_num_timesteps=resume is None,
                )
                train_seconds = extra.get("train_seconds", 0.0) + time.perf_counter() - t0
                if recorder is not None:
                    recorder.finish()
                    recorder = None
                if bar is not None:
                    bar.set_phase("saving", refresh=True)
                # the last update is done: what follows (the final evaluation) resumes from here
                save_checkpoint(
                    model,
                    run_dir,
                    extra={"training_done": True, "train_seconds": train_seconds},
                    keep=config.checkpoint_keep,
                )
            else:
                train_seconds = float(extra.get("train_seconds") or 0.0)
            if not offline:  # an offline run's trained agent is its final checkpoint
                save_model(model, run_dir / "model.zip")
                write_level_weights(venv, run_dir)
            if venv is not None and hasattr(venv, "save"):
                tmp = run_dir / ".vecnormalize.tmp.pkl"
                venv.save(str(tmp))
                os.replace(tmp, run_dir / "vecnormalize.pkl")
            write_status(run_dir, "running", model.num_timesteps, config.timesteps)

            t1 = time.perf_counter()
            results: dict[str, EvalResult] = {}
            for name, items in lists.items():
                report = bar.episodes(f"final eval {name}") if bar is not None else False
                res = family.evaluate(model, config, items, name, seed=config.seed + 2, progress=report)
                results[name] = res
                write_atomic(run_dir / "eval" / f"{name}.csv", res.to_csv())
                model.logger.record(f"eval/{name}/mean_return", res.mean)
            if "train" in results and "test" in results:
                model.logger.record("eval/gap", results["train"].mean - results["test"].mean)
            model.logger.dump(model.num_timesteps)
    except KeyboardInterrupt:
        if recorder is not None:
            recorder.abort()
        write_status(run_dir, "interrupted", model.num_timesteps, config.timesteps)
        print(
            f"interrupted at step {model.num_timesteps}: resume with 'heldout train --resume {run_dir}'",
            file=sys.stderr,
        )
        raise
    except BaseException as exc:
        if recorder is not None:
            recorder.abort()
        write_status(
            run_dir, "failed", model.num_timesteps, config.timesteps, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    finally:
        model.logger.close()
        if venv is not None:
            venv.close()

    summary = summarize(config, results, split)
    summary.update(
        timesteps=int(model.num_timesteps),
        train_seconds=round(train_seconds, 2),
        train_steps_per_second=round(model.num_timesteps / max(train_seconds, 1e-9), 1),
        eval_seconds=round(time.perf_counter() - t1, 2),
        device=str(model.device),
        leakage=leakage,
        run_dir=str(run_dir),
    )
    if config.wrappers:
        summary["wrappers"] = {"train": list(config.wrappers), "eval": []}
    write_json(run_dir / "summary.json", summary)
    write_status(run_dir, "complete", model.num_timesteps, config.timesteps)
    print(split_table(summary), file=stream)
    bins = context_table(summary)
    if bins:
        print(bins, file=stream)
    return run_dir, summary


__all__ = ["resume_train", "run_train", "save_model", "summarize"]
