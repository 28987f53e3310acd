"""``heldout train``: train on the train split, evaluate on every split, write a run folder."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import yaml

from heldout.cli.common import add_import_flag, context_item, key_value, positive_int


def add_parser(sub: Any) -> None:
    """Adds ``heldout train`` to the subcommands ``sub``."""
    t = sub.add_parser(
        "train",
        help="train on the train split, evaluate on train and test, write a run folder",
        description="Train an agent on the training levels, evaluate it periodically and at the end on the "
        "training levels and on held-out test levels, and write a run folder "
        "(<out>/<env>/<agent>/seed<k>-<time>/: config.yaml, command.txt, TensorBoard events, progress.csv, "
        "eval/<split>.csv, model.zip, summary.json; with --eval-freq, learning_curve.png). Flags override the "
        "preset's fields.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("--preset", default="procgen-easy", help="named starting config (see 'heldout list')")
    add_import_flag(
        t,
        "a .py file or module to import first, which registers your own agents, envs or presets "
        "(docs/adding-an-agent.md); recorded in config.yaml, so 'heldout eval' imports it again (repeatable)",
    )
    t.add_argument("--config", metavar="YAML", help="a YAML file of config fields to override the preset")
    t.add_argument("--env", help="environment name, e.g. coinrun (see 'heldout list')")
    t.add_argument("--agent", help="agent name, e.g. ppo, rad, drac, ucb-drac (see 'heldout list')")
    t.add_argument(
        "--augmentation",
        help="augmentation of rad / drac, e.g. crop, random-conv, color-jitter (see 'heldout list'); "
        "'best': the game's augmentation in DrAC's per-game table",
    )
    t.add_argument("--timesteps", type=positive_int, help="environment steps to train for (e.g. 25e6)")
    t.add_argument("--num-envs", type=positive_int, help="parallel training envs")
    t.add_argument("--num-levels", type=int, help="number of training levels [start-level, start-level+N)")
    t.add_argument("--start-level", type=int, help="first training level seed")
    t.add_argument("--num-test-levels", type=int, help="number of held-out test levels")
    t.add_argument("--test-start", type=int, help="first seed of the test level range")
    t.add_argument("--num-validation-levels", type=int, help="number of validation levels (0: none)")
    t.add_argument("--distribution-mode", help="Procgen distribution mode: easy, hard, extreme, ...")
    t.add_argument("--seed", type=int, help="run seed")
    t.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:1, ...")
    t.add_argument("--eval-episodes", type=int, help="episodes per split in the final evaluation")
    t.add_argument("--eval-freq", type=int, help="timesteps between periodic evaluations (0: none)")
    t.add_argument("--eval-periodic-episodes", type=int, help="episodes per split in periodic evaluations")
    t.add_argument("--checkpoint-freq", type=int, help="timesteps between checkpoints (0: none)")
    t.add_argument(
        "--saliency-log-freq",
        type=int,
        help="timesteps between saliency overlays logged to TensorBoard (saliency/overlay; 0: none)",
    )
    t.add_argument(
        "--deterministic-eval", action="store_true", default=None, help="greedy evaluation actions"
    )
    t.add_argument(
        "--no-leakage-check",
        dest="leakage_check",
        action="store_false",
        default=None,
        help="keep test levels whose first frame equals a training level's",
    )
    t.add_argument(
        "--agent-arg",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="agent keyword argument, e.g. --agent-arg n_steps=128 (repeatable)",
    )
    t.add_argument(
        "--env-option",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="Procgen visual option, e.g. --env-option use_backgrounds=false (repeatable)",
    )
    for which in ("train", "test", "validation"):
        t.add_argument(
            f"--{which}-context",
            action="append",
            type=context_item,
            default=[],
            metavar="FEATURE=SPEC",
            help=f"contextual envs: the {which} distribution of a feature, replacing the preset's: a range "
            "'gravity=4.9:14.7', ranges 'gravity=4.9:7|12:14.7', a value 'gravity=9.8', values "
            "'gravity=5,10,15', or 'gravity=normal:9.8,2' (repeatable)",
        )
    t.add_argument(
        "--context-mode",
        choices=["interpolation", "extrapolation", "combinatorial"],
        help="contextual envs: how test contexts relate to training ones (checked)",
    )
    t.add_argument(
        "--visible-context",
        choices=["hidden", "concat", "dict"],
        help="contextual envs: add the normalised context to observations",
    )
    t.add_argument("--context-bins", type=positive_int, help="bins per feature in the by-context summary")
    t.add_argument(
        "--wrapper",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="a registered wrapper on the training env, e.g. --wrapper frame-stack:k=4 (repeatable, innermost "
        "first; see 'heldout list'). Observation and context wrappers also apply at evaluation",
    )
    t.add_argument(
        "--torch-threads",
        type=int,
        help="CPU threads for torch (0: 1 for contextual envs' small MLPs, torch's default for Procgen)",
    )
    t.add_argument("--out", help="root folder of run folders")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> Any:
    """The run's :class:`~heldout.protocol.config.TrainConfig`: the preset, then ``--config``, then the flags."""
    from heldout.protocol.config import field_names
    from heldout.protocol.presets import PRESETS

    config = PRESETS.get(args.preset)
    if args.config:
        try:
            with open(args.config) as f:
                data = yaml.safe_load(f) or {}
        except OSError as exc:
            raise ValueError(f"cannot read --config {args.config!r}: {exc.strerror}") from None
        if not isinstance(data, dict):
            raise ValueError(f"--config {args.config!r} must hold a mapping of config fields")
        config = config.replace(**data)
    changes = {}
    for name in field_names():
        value = getattr(args, name, None)
        if value is not None and name not in ("agent_kwargs", "env_options", "contexts", "imports"):
            changes[name] = value
    contexts = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (config.contexts or {}).items()}
    for which in ("train", "test", "validation"):
        items = getattr(args, f"{which}_context", None)
        if items:
            current = contexts.get(which) or {}
            if not isinstance(current, dict) or "mixture" in current:
                current = {}  # a mixture or list in the preset: the flags replace it
            contexts[which] = {**current, **dict(items)}
    if args.context_mode:
        contexts["mode"] = args.context_mode
    if contexts != (config.contexts or {}):
        changes["contexts"] = contexts
    if args.agent_arg or args.augmentation:
        extra = {"augmentation": args.augmentation} if args.augmentation else {}
        changes["agent_kwargs"] = {**config.agent_kwargs, **dict(args.agent_arg), **extra}
    if args.env_option:
        changes["env_options"] = {**config.env_options, **dict(args.env_option)}
    if args.wrapper:
        changes["wrappers"] = [*config.wrappers, *args.wrapper]
    if args.imports:
        changes["imports"] = [*config.imports, *args.imports]
    return config.replace(**changes)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Trains, evaluates and records one run; prints the table, the learning curve and the run folder.

    A run with periodic evaluation (``--eval-freq``) also gets ``<run folder>/learning_curve.png``:
    train and test mean return over env steps, the final evaluation as the last point.
    """
    from heldout.protocol.run import run_train

    config = config_from_args(args)
    command = "heldout " + " ".join(shlex.quote(a) for a in argv)
    run_dir, _ = run_train(config, command=command, progress=not args.no_progress)
    curve = write_learning_curve(run_dir)
    if curve is not None:
        print(f"learning curve: {curve}")
    print(f"run folder: {run_dir}")
    return 0


def write_learning_curve(run_dir: Path) -> Path | None:
    """Writes ``learning_curve.png`` into a finished run folder; returns its path, or None if the run
    logged no periodic evaluation."""
    from heldout.analysis.plots import run_learning_curve
    from heldout.analysis.report import load_run_record

    return run_learning_curve(load_run_record(run_dir), Path(run_dir) / "learning_curve.png")
