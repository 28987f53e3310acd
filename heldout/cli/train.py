"""``heldout train``: train on the train split, evaluate on every split, write a run folder."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from heldout.cli.common import HelpFormatter, add_import_flag, context_item, key_value, positive_int

#: The preset ``heldout train`` starts from without ``--preset``.
DEFAULT_PRESET = "procgen-easy"
#: The preset whose values the contextual flags' help quotes.
CONTEXT_EXAMPLE_PRESET = "cartpole-gravity-extrapolation"


def _show(value: Any, labels: tuple[str, str]) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return labels[0] if value else labels[1]
    return str(value).replace("%", "%%")  # argparse %-formats help


def preset_default(field: str, preset: str = DEFAULT_PRESET, labels: tuple[str, str] = ("on", "off")) -> str:
    """``(default: the preset's; <value> in <preset>)``: the help suffix of a flag that overrides a field.

    Such a flag's argparse default is None (keep the preset's value), which says nothing; this quotes
    the value the field has in ``preset``, read from the registered preset, so the help stays true.
    ``augmentation`` and ``context_mode`` are read from the preset's ``agent_kwargs`` and ``contexts``;
    a boolean shows as ``labels`` (true, false).
    """
    from heldout.protocol.presets import PRESETS

    config = PRESETS.get(preset)
    if field == "augmentation":
        value = config.agent_kwargs.get("augmentation")
    elif field == "context_mode":
        value = (config.contexts or {}).get("mode")
    else:
        value = getattr(config, field)
    return f" (default: the preset's; {_show(value, labels)} in {preset})"


def add_parser(sub: Any) -> None:
    """Adds ``heldout train`` to the subcommands ``sub``."""
    d, c = preset_default, (lambda field: preset_default(field, CONTEXT_EXAMPLE_PRESET))
    t = sub.add_parser(
        "train",
        help="train on the train split, evaluate on train and test, write a run folder",
        description="Train an agent on the training levels, evaluate it periodically and at the end on the "
        "training levels and on held-out test levels, and write a run folder "
        "(<out>/<env>/<agent>/seed<k>-<time>/: config.yaml, command.txt, TensorBoard events, progress.csv, "
        "eval/<split>.csv, model.zip, summary.json, status.json, checkpoints/; with --eval-freq, "
        "learning_curve.png). Flags override the preset's fields.",
        formatter_class=HelpFormatter,
    )
    t.add_argument("--preset", default=DEFAULT_PRESET, help="named starting config (see 'heldout list')")
    add_import_flag(
        t,
        "a .py file or module to import first, which registers your own agents, envs or presets "
        "(docs/adding-an-agent.md); recorded in config.yaml, so 'heldout eval' imports it again (repeatable)",
    )
    t.add_argument("--config", metavar="YAML", help="a YAML file of config fields to override the preset")
    t.add_argument("--env", help="environment name, e.g. coinrun (see 'heldout list')" + d("env"))
    t.add_argument(
        "--agent", help="agent name, e.g. ppo, rad, drac, ucb-drac (see 'heldout list')" + d("agent")
    )
    t.add_argument(
        "--augmentation",
        help="augmentation of rad / drac, e.g. crop, random-conv, color-jitter (see 'heldout list'); "
        "'best': the game's augmentation in DrAC's per-game table" + d("augmentation"),
    )
    t.add_argument(
        "--timesteps", type=positive_int, help="environment steps to train for (e.g. 25e6)" + d("timesteps")
    )
    t.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        help="on-policy agents: fp32, or the trunk (features extractor) in bf16 autocast when acting and "
        "in the update (CPUs with bf16 units, GPUs; heads, values, losses, optimizers stay fp32; on a CPU "
        "without bf16 units a warning before training: emulated, ~11x slower); sets the agent argument "
        "precision (default: fp32)",
    )
    t.add_argument(
        "--engine",
        choices=["auto", "heldout", "sb3"],
        help="on-policy agents: the rollout engine; sb3: SB3's collection, numpy buffer and GAE; heldout: the "
        "same algorithm with storage, GAE and minibatches on the training device (proven equal: "
        "tests/agents/test_engine.py); auto: heldout on CUDA, sb3 on CPU; sets the agent argument engine "
        "(default: auto)",
    )
    t.add_argument("--num-envs", type=positive_int, help="parallel training envs" + d("num_envs"))
    t.add_argument(
        "--num-levels",
        type=int,
        help="number of training levels [start-level, start-level+N)" + d("num_levels"),
    )
    t.add_argument("--start-level", type=int, help="first training level seed" + d("start_level"))
    t.add_argument(
        "--num-test-levels", type=int, help="number of held-out test levels" + d("num_test_levels")
    )
    t.add_argument("--test-start", type=int, help="first seed of the test level range" + d("test_start"))
    t.add_argument(
        "--num-validation-levels",
        type=int,
        help="number of validation levels (0: none)" + d("num_validation_levels"),
    )
    t.add_argument(
        "--distribution-mode",
        help="Procgen distribution mode: easy, hard, extreme, ..." + d("distribution_mode"),
    )
    t.add_argument("--seed", type=int, help="run seed" + d("seed"))
    t.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:1, ..." + d("device"))
    t.add_argument(
        "--eval-episodes", type=int, help="episodes per split in the final evaluation" + d("eval_episodes")
    )
    t.add_argument(
        "--eval-freq", type=int, help="timesteps between periodic evaluations (0: none)" + d("eval_freq")
    )
    t.add_argument(
        "--eval-periodic-episodes",
        type=int,
        help="episodes per split in periodic evaluations" + d("eval_periodic_episodes"),
    )
    t.add_argument(
        "--checkpoint-freq",
        type=int,
        help="timesteps between checkpoints, each taken at the update boundary after them (default: the "
        "preset's; none in the presets, which means every 10%% of the run; 0: only the one at the end of "
        "training)",
    )
    t.add_argument(
        "--checkpoint-minutes",
        type=float,
        help="also checkpoint after this many minutes" + d("checkpoint_minutes"),
    )
    t.add_argument(
        "--checkpoint-keep",
        type=positive_int,
        help="how many of the newest checkpoints to keep" + d("checkpoint_keep"),
    )
    t.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted or failed run from its last intact checkpoint, exactly as it would "
        "have gone on (a complete run: nothing to do); takes no other config flag",
    )
    t.add_argument(
        "--trust-pickle",
        action="store_true",
        help="with --resume: load a checkpoint's pickled env state even if another user wrote it "
        "(a pickle runs the code it carries)",
    )
    t.add_argument(
        "--saliency-log-freq",
        type=int,
        help="timesteps between saliency overlays logged to TensorBoard (saliency/overlay; 0: none)"
        + d("saliency_log_freq"),
    )
    t.add_argument(
        "--deterministic-eval",
        action="store_true",
        default=None,
        help="greedy evaluation actions" + d("deterministic_eval", labels=("greedy", "sampled")),
    )
    leak = t.add_mutually_exclusive_group()
    leak.add_argument(
        "--leakage",
        choices=["layout", "look", "off"],
        help="which held-out levels count as seen and are dropped from the evaluation lists: layout (a "
        "training level's layout, visual variety off), look (only if it also looks the same: keeps "
        "same-layout-other-skin levels, for visual generalization) or off (docs/levels.md)" + d("leakage"),
    )
    leak.add_argument(
        "--no-leakage-check",
        dest="leakage",
        action="store_const",
        const="off",
        help="the same as --leakage off: keep held-out levels equal to training levels (lists still never "
        "repeat a level)",
    )
    t.add_argument(
        "--dataset",
        metavar="PATH",
        help="offline agents (bc, ...; see 'heldout list'): the dataset they learn from ('heldout collect'); "
        "--timesteps then counts the transitions the learner consumes (docs/offline.md)",
    )
    t.add_argument(
        "--record-rollouts",
        action="store_true",
        default=None,
        help="online agents on level envs: also write the agent's own training rollouts as a dataset, "
        "RUN_DIR/rollouts (the 'suboptimal' recipe; a resumed run records the episodes begun after it)",
    )
    t.add_argument(
        "--dataset-epochs",
        type=int,
        help="offline agents: the most passes over the dataset --timesteps may take (0: no bound; default 0)",
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
        "--level-sampler",
        metavar="NAME",
        help="which training level each env slot plays next: uniform, plr (Prioritized Level Replay) or "
        "robust-plr (docs/plr.md)" + d("level_sampler"),
    )
    t.add_argument(
        "--sampler-arg",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="level sampler option, e.g. --sampler-arg temperature=0.3 (repeatable; docs/plr.md lists them)",
    )
    t.add_argument(
        "--bonus",
        metavar="NAME",
        help="exploration bonus added to the training reward (never to evaluation returns): count, rnd, "
        "episodic-count, e3b, product, sum (docs/exploration.md)" + d("bonus"),
    )
    t.add_argument(
        "--bonus-arg",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="bonus option, e.g. --bonus-arg coef=0.01, --bonus-arg episodic=episodic-count (repeatable; "
        "docs/exploration.md lists them)",
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
        help="contextual envs: how test contexts relate to training ones (checked)" + c("context_mode"),
    )
    t.add_argument(
        "--visible-context",
        choices=["hidden", "concat", "dict"],
        help="contextual envs: add the normalised context to observations" + c("visible_context"),
    )
    t.add_argument(
        "--visible-context-scale",
        choices=["training", "bounds"],
        help="contextual envs: normalise a visible context over the training distribution's range of "
        "each feature, or over its declared bounds" + c("visible_context_scale"),
    )
    t.add_argument(
        "--context-bins",
        type=positive_int,
        help="bins per feature in the by-context summary" + c("context_bins"),
    )
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
        help="CPU threads for torch (0: 1 for contextual envs' small MLPs, torch's default for Procgen)"
        + d("torch_threads"),
    )
    t.add_argument("--out", help="root folder of run folders" + d("out"))
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve and check everything (config, split, evaluation lists with their leakage check, the "
        "run folder) and print the plan; write nothing and train nothing",
    )
    t.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")


def config_from_args(args: argparse.Namespace) -> Any:
    """The run's :class:`~heldout.protocol.config.TrainConfig`: the preset, then ``--config``, then the flags."""
    from heldout.protocol.config import field_names
    from heldout.protocol.presets import PRESETS
    from heldout.protocol.run_folder import read_yaml

    config = PRESETS.get(args.preset)
    if args.config:
        try:
            data = read_yaml(args.config, mapping=True)
        except ValueError as exc:
            raise ValueError(f"--config: {exc}") from None
        try:
            config = config.replace(**data)
        except TypeError as exc:
            raise TypeError(f"--config {args.config!r}: {exc}") from None
    changes = {}
    for name in field_names():
        value = getattr(args, name, None)
        if value is not None and name not in (
            "agent_kwargs",
            "env_options",
            "contexts",
            "imports",
            "sampler_kwargs",
            "bonus_kwargs",
        ):
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
    if args.agent_arg or args.augmentation or args.precision or args.engine:
        extra = {"augmentation": args.augmentation} if args.augmentation else {}
        if args.precision:
            extra["precision"] = args.precision
        if args.engine:
            extra["engine"] = args.engine
        changes["agent_kwargs"] = {**config.agent_kwargs, **dict(args.agent_arg), **extra}
    agent = changes.get("agent", config.agent)
    if agent != config.agent and isinstance(agent, str):
        from heldout.protocol.offline import is_offline

        if is_offline(agent):  # the preset's agent arguments are its online agent's: only --agent-arg
            changes["agent_kwargs"] = dict(args.agent_arg)
    if args.sampler_arg:
        changes["sampler_kwargs"] = {**config.sampler_kwargs, **dict(args.sampler_arg)}
    if args.bonus_arg:
        changes["bonus_kwargs"] = {**config.bonus_kwargs, **dict(args.bonus_arg)}
    if args.env_option:
        changes["env_options"] = {**config.env_options, **dict(args.env_option)}
    if args.wrapper:
        changes["wrappers"] = [*config.wrappers, *args.wrapper]
    if args.imports:
        changes["imports"] = [*config.imports, *args.imports]
    return config.replace(**changes)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Trains (or resumes), evaluates and records one run; prints the table, the learning curve and
    the run folder.

    A run with periodic evaluation (``--eval-freq``) also gets ``<run folder>/learning_curve.png``:
    train and test mean return over env steps, the final evaluation as the last point.
    """
    from heldout.protocol.run import resume_train, run_train

    command = "heldout " + " ".join(shlex.quote(a) for a in argv)
    if args.resume:
        if args.dry_run or args.json:
            raise ValueError(
                "--dry-run plans a new run; --resume continues one as it was planned (see its split.json)"
            )
        given = [f"--{name.replace('_', '-')}" for name in _config_flags(args)]
        if given:
            raise ValueError(
                f"--resume continues the run as it was configured; drop {', '.join(given)} "
                "(to change a run, start a new one with --config RUN_DIR/config.yaml)"
            )
        from heldout.protocol.status import read_status

        was_complete = read_status(args.resume)["state"] == "complete"
        run_dir, _ = resume_train(
            args.resume, progress=not args.no_progress, trust_pickle=args.trust_pickle, command=command
        )
        curve = None if was_complete else write_learning_curve(run_dir)
        if curve is not None:
            print(f"learning curve: {curve}")
        print(f"run folder: {run_dir}")
        return 0
    if args.trust_pickle:
        raise ValueError("--trust-pickle goes with --resume RUN_DIR")
    if args.json and not args.dry_run:
        raise ValueError("--json goes with --dry-run (a run writes its plan to the run folder: split.json)")
    config = config_from_args(args)
    if args.dry_run:
        from heldout.protocol.plan import describe_plan, plan_train

        plan = plan_train(config)
        if args.json:
            import json

            print(json.dumps(plan.to_dict(), indent=2))
        else:
            print(describe_plan(plan))
        return 0
    run_dir, _ = run_train(config, command=command, progress=not args.no_progress)
    curve = write_learning_curve(run_dir)
    if curve is not None:
        print(f"learning curve: {curve}")
    print(f"run folder: {run_dir}")
    return 0


def _config_flags(args: argparse.Namespace) -> list[str]:
    """The config-changing flags given on the command line (``--preset``'s default aside)."""
    from heldout.protocol.config import field_names

    given = [n for n in field_names() if getattr(args, n, None) not in (None, [], {})]
    extra = (
        "config",
        "agent_arg",
        "sampler_arg",
        "bonus_arg",
        "env_option",
        "augmentation",
        "precision",
        "engine",
        "wrapper",
        "context_mode",
    )
    given += [n for n in extra if getattr(args, n, None)]
    given += [f"{w}_context" for w in ("train", "test", "validation") if getattr(args, f"{w}_context", None)]
    if args.preset != "procgen-easy":
        given.append("preset")
    return sorted(set(given))


def write_learning_curve(run_dir: Path) -> Path | None:
    """Writes ``learning_curve.png`` into a finished run folder; returns its path, or None if the run
    logged no periodic evaluation."""
    from heldout.analysis.plots import run_learning_curve
    from heldout.analysis.runs import load_run_record

    return run_learning_curve(load_run_record(run_dir), Path(run_dir) / "learning_curve.png")
