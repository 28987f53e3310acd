"""The ``heldout`` command (also ``python -m heldout``).

    heldout train --env coinrun --agent ppo --timesteps 1000000 --num-levels 200 --seed 0 --out runs
    heldout train --preset quickstart
    heldout train --import my_agent.py --agent my-agent --env coinrun
    heldout eval RUN_DIR --split test --episodes 100 [--distribution-mode hard]
    heldout saliency RUN_DIR --split test --episodes 4 --out DIR [--target value|log_prob|q]
    heldout train --preset cartpole-gravity-extrapolation [--test-context gravity=19.6:29.4]
    heldout eval RUN_DIR --shift backgrounds-off
    heldout report RUN_DIR... --out DIR
    heldout stats FILE.json [--mode easy|hard] [--reps N] [--seed S] [--json]
    heldout list
    heldout bench throughput

Bad input (an unknown env or agent, an overlapping split, a non-positive number, an unwritable
``--out``) prints one line on stderr and exits with code 2, before anything is created.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

import yaml

EXAMPLES = """examples:
  heldout train --preset quickstart                      # the whole protocol in minutes on a CPU
  heldout train --env coinrun --timesteps 25000000 --num-levels 200 --seed 1
  heldout eval runs/coinrun/ppo/seed0-20260101-120000 --split test --episodes 500
  heldout train --import docs/examples/l2_ppo.py --agent l2-ppo --env coinrun   # your agent, one file
  heldout eval RUN_DIR --distribution-mode hard          # zero-shot under settings never trained on
  heldout saliency RUN_DIR --split test --episodes 4 --out saliency   # overlays, GIFs, focus metric
  heldout eval RUN_DIR --shift monochrome-assets         # a Procgen visual shift of the test levels
  heldout eval RUN_DIR --wrapper distracting-background:mode=waves   # any env: an evaluation-only wrapper
  heldout train --env starpilot --wrapper frame-stack:k=2 --wrapper episode-stats   # training wrappers
  heldout train --preset cartpole-gravity-extrapolation  # contexts: train gravity 4.9-14.7, test 14.7-29.4
  heldout train --preset minigrid-doorkey                # MiniGrid DoorKey 6x6: 5 training levels, ~1 min
  heldout train --preset cartpole-gravity-extrapolation --test-context gravity=19.6:29.4
  heldout eval RUN_DIR --context gravity=24.5:29.4       # a contextual run on contexts of your choice
  heldout report runs/coinrun runs/starpilot --out report   # tables, CIs, plots, published figures
  heldout stats report/scores_test.json                   # IQM & co. for {agent: {game: [scores]}}
  heldout list
"""


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def _context_item(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"expected FEATURE=SPEC (e.g. gravity=4.9:14.7, gravity=9.8, gravity=5,10,15), got {text!r}"
        )
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _positive_int(text: str) -> int:
    try:
        value = int(float(text)) if ("e" in text.lower() or "." in text) else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _add_import_flag(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=None,
        metavar="FILE_OR_MODULE",
        help=help,
    )


def build_parser() -> argparse.ArgumentParser:
    from heldout import __version__

    parser = _Parser(
        prog="heldout",
        description="Train RL agents on some levels and measure them zero-shot on held-out levels.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"heldout {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser(
        "train",
        help="train on the train split, evaluate on train and test, write a run folder",
        description="Train an agent on the training levels, evaluate it periodically and at the end on the "
        "training levels and on held-out test levels, and write a run folder "
        "(<out>/<env>/<agent>/seed<k>-<time>/: config.yaml, command.txt, TensorBoard events, progress.csv, "
        "eval/<split>.csv, model.zip, summary.json). Flags override the preset's fields.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("--preset", default="procgen-easy", help="named starting config (see 'heldout list')")
    _add_import_flag(
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
    t.add_argument("--timesteps", type=_positive_int, help="environment steps to train for (e.g. 25e6)")
    t.add_argument("--num-envs", type=_positive_int, help="parallel training envs")
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
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="agent keyword argument, e.g. --agent-arg n_steps=128 (repeatable)",
    )
    t.add_argument(
        "--env-option",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="Procgen visual option, e.g. --env-option use_backgrounds=false (repeatable)",
    )
    for which in ("train", "test", "validation"):
        t.add_argument(
            f"--{which}-context",
            action="append",
            type=_context_item,
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
    t.add_argument("--context-bins", type=_positive_int, help="bins per feature in the by-context summary")
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

    e = sub.add_parser(
        "eval",
        help="re-evaluate a saved run on any split or setting",
        description="Evaluate a saved run's final model zero-shot on a split (or an explicit level set), "
        "possibly under settings it never saw (distribution mode, visual options). Writes "
        "eval/<split>[-<settings>].csv and .json into the run folder (eval/<split>-reeval.* for the split as "
        "trained: the final evaluation that summary.json and reports use is never overwritten).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by 'heldout train'")
    _add_import_flag(
        e,
        "import this .py file or module instead of those the run recorded (e.g. a file that moved; repeatable)",
    )
    e.add_argument("--split", default="test", help="train, test or validation")
    e.add_argument(
        "--episodes", type=_positive_int, default=100, help="episodes (one per level of a fixed list)"
    )
    e.add_argument("--levels", help="explicit levels instead of the split's: 'START:STOP' or 'S1,S2,...'")
    e.add_argument("--distribution-mode", help="override the run's distribution mode (e.g. hard)")
    e.add_argument(
        "--env-option",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="override a Procgen visual option (repeatable)",
    )
    e.add_argument(
        "--shift",
        help="Procgen: evaluate under a registered visual shift (see 'heldout list'), e.g. backgrounds-off; "
        "recorded as split <split>-shift-<NAME>",
    )
    e.add_argument(
        "--context",
        action="append",
        type=_context_item,
        default=[],
        metavar="FEATURE=SPEC",
        help="contextual runs: replace the split's distribution of a feature, e.g. gravity=24.5:29.4",
    )
    e.add_argument(
        "--wrapper",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="an evaluation-only wrapper (a shift the agent never trained on), e.g. --wrapper "
        "distracting-background:mode=waves (repeatable; must keep the observation space); recorded as "
        "split <split>-wrapper-<SPEC>",
    )
    e.add_argument("--deterministic", action="store_true", default=None, help="greedy actions")
    e.add_argument("--num-envs", type=_positive_int, help="parallel evaluation envs")
    e.add_argument("--seed", type=int, default=0, help="evaluation seed")
    e.add_argument("--device", default="auto", help="torch device")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")

    sa = sub.add_parser(
        "saliency",
        help="saliency maps of a saved run: PNG overlays, animated GIFs and the focus metric",
        description="Play one episode on each of the first K levels of a split's fixed evaluation list with "
        "the run's final model and compute its saliency map at every step (guided backprop or the plain "
        "gradient of V(s), log pi(a|s) or Q(s,a) w.r.t. the pixels). Writes, into --out, a contact-sheet PNG and "
        "an animated GIF per episode (frame beside frame-with-map) and focus-<split>.json: the share of the "
        "saliency mass on the foreground (the same level rendered without background), per episode and "
        "on average, beside the share of the frame the foreground covers (what a uniform map would score).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sa.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by 'heldout train'")
    _add_import_flag(
        sa,
        "import this .py file or module instead of those the run recorded (e.g. a file that moved; repeatable)",
    )
    sa.add_argument("--split", default="test", help="train, test or validation")
    sa.add_argument("--episodes", type=_positive_int, default=4, help="episodes (one per level)")
    sa.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the images and focus-<split>.json"
    )
    sa.add_argument(
        "--target", help="what is attributed: value, log_prob or q (default: q for Q-networks, else value)"
    )
    sa.add_argument("--method", default="guided_backprop", help="guided_backprop or gradient")
    sa.add_argument("--max-steps", type=_positive_int, default=500, help="steps per episode at most")
    sa.add_argument("--deterministic", action="store_true", default=None, help="greedy actions")
    sa.add_argument("--no-images", action="store_true", help="only the focus metric")
    sa.add_argument("--seed", type=int, default=0, help="env seed")
    sa.add_argument("--device", default="auto", help="torch device")

    r = sub.add_parser(
        "report",
        help="tables, confidence intervals and plots from run folders",
        description="Group run folders by env and agent and write report.md, CSV tables, the per-run "
        "scores in the published JSON layout and PNG plots into --out: per-game train and test return "
        "with CIs over seeds and the gap, aggregate normalised mean/median/IQM/optimality gap with "
        "stratified-bootstrap CIs, probability of improvement between agents, learning curves, per-level "
        "return histograms and, for runs on the easy-200 protocol, the published Procgen figures beside ours.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    r.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, or folders holding run folders"
    )
    r.add_argument("--out", required=True, metavar="DIR", help="folder to write the report into")
    r.add_argument("--reps", type=_positive_int, default=2000, help="bootstrap resamples for every CI")
    r.add_argument("--seed", type=int, default=0, help="seed of the bootstrap generators")
    r.add_argument("--reference", metavar="AGENT", help="also report scores as a fraction of this agent's")
    r.add_argument("--no-plots", action="store_true", help="tables only")

    st = sub.add_parser(
        "stats",
        help="aggregate table (IQM, CIs, P(improvement)) for a {agent: {game: [scores]}} JSON file",
        description="Print, per agent, the min-max normalised mean, median, IQM and optimality gap over the "
        "games every agent ran, each with its 95%% stratified-bootstrap CI, and the probability of "
        "improvement between agents (Agarwal et al., 2021). FILE.json holds raw returns in the published "
        "layout {agent: {game: [one score per run]}}, as 'heldout report' exports them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    st.add_argument(
        "file", metavar="FILE.json", help="scores in the layout {agent: {game: [one score per run]}}"
    )
    st.add_argument("--mode", default="easy", help="normalisation constants: easy or hard")
    st.add_argument("--reps", type=_positive_int, default=2000, help="bootstrap resamples")
    st.add_argument("--seed", type=int, default=0, help="seed of the bootstrap generators")
    st.add_argument(
        "--reference", metavar="AGENT", help="add each agent's mean return as a %% of this agent's (e.g. PPO)"
    )
    st.add_argument(
        "--json",
        action="store_true",
        help='print {agent: {"mean"|"median"|"iqm"|"optimality_gap": {"value": v, "ci": [low, high]}}}',
    )

    li = sub.add_parser(
        "list", help="list environments, agents and presets", description="List what is registered."
    )
    _add_import_flag(li, "a .py file or module to import first, to list what it registers (repeatable)")

    b = sub.add_parser(
        "bench",
        help="benchmarks: throughput (env and PPO speed), agents (test return, gap and speed of agents)",
        description="Run a benchmark: 'heldout bench throughput --help', 'heldout bench agents --help'.",
        add_help=True,
    )
    b.add_argument("benchmark", choices=["throughput", "agents", "wrappers"], help="which benchmark")
    b.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options (see --help after it)")
    return parser


def _train_config(args: argparse.Namespace) -> Any:
    from heldout.experiments.config import PRESETS, field_names

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


def _cmd_list() -> int:
    from heldout.agents import AGENTS
    from heldout.agents.augment import AUGMENTATIONS
    from heldout.envs import CONTEXTUAL_ENVS, ENVS, SEEDED_ENVS
    from heldout.envs.procgen_shifts import SHIFTS
    from heldout.experiments.config import PRESETS
    from heldout.wrappers import WRAPPERS

    for title, reg in (
        ("environments", ENVS),
        ("contextual environments", CONTEXTUAL_ENVS),
        ("seeded level environments (the level is the reset seed)", SEEDED_ENVS),
        ("agents", AGENTS),
        ("augmentations", AUGMENTATIONS),
        ("presets", PRESETS),
        ("visual shifts (heldout eval --shift)", SHIFTS),
        ("wrappers (heldout train/eval --wrapper)", WRAPPERS),
    ):
        print(f"{title}:")
        width = max(map(len, reg.names()), default=0) + 2
        for name in reg.names():
            print(f"  {name:<{width}} {reg.describe(name)}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    import json

    from heldout.envs import SCORE_RANGES
    from heldout.experiments.report import (
        format_scores_file_stats,
        reference_normalized_means,
        scores_file_stats,
    )
    from heldout.experiments.stats import load_scores

    if args.mode not in SCORE_RANGES:
        raise ValueError(f"unknown --mode {args.mode!r}; valid modes: {', '.join(SCORE_RANGES)}")
    scores = load_scores(args.file)
    relative = None
    if args.reference is not None:
        relative = reference_normalized_means(scores, args.reference, args.reps, args.seed)
    agg, poi, games = scores_file_stats(scores, args.mode, args.reps, args.seed)
    if args.json:
        data = {a: {m: e.to_dict() for m, e in per.items()} for a, per in agg.items()}
        print(json.dumps(data, indent=2))
    else:
        text = format_scores_file_stats(
            agg, poi, games, args.mode, args.reps, args.seed, relative=relative, reference=args.reference
        )
        print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``heldout`` console script; returns the exit code."""
    import heldout  # noqa: F401  (silences gym's banner before anything imports it)

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command in ("list", "train"):
            from heldout.experiments.plugins import import_plugins

            import_plugins(args.imports or [])  # before the preset, agent and env names are looked up
        if args.command == "list":
            return _cmd_list()
        if args.command == "bench":
            if args.benchmark == "wrappers":
                from heldout.experiments import bench_wrappers

                return bench_wrappers.main(args.args)
            if args.benchmark == "agents":
                from heldout.experiments import bench_agents

                return bench_agents.main(args.args)
            from heldout.experiments import bench

            return bench.main(args.args)
        if args.command == "report":
            from heldout.experiments.report import write_report

            report = write_report(
                args.run_dirs,
                args.out,
                reps=args.reps,
                seed=args.seed,
                reference=args.reference,
                plots=not args.no_plots,
            )
            print(f"report: {report.files[0]} ({len(report.files)} files)")
            return 0
        if args.command == "stats":
            return _cmd_stats(args)
        if args.command == "saliency":
            from heldout.experiments.saliency_run import format_focus, run_saliency

            summary = run_saliency(
                args.run_dir,
                args.out,
                split=args.split,
                episodes=args.episodes,
                target=args.target,
                method=args.method,
                max_steps=args.max_steps,
                deterministic=args.deterministic,
                render=not args.no_images,
                device=args.device,
                seed=args.seed,
                imports=args.imports,
            )
            print(format_focus(summary))
            print(f"images: {args.out} ({len(summary['files'])} files)")
            return 0
        if args.command == "train":
            from heldout.experiments.protocol import run_train

            config = _train_config(args)
            command = "heldout " + " ".join(shlex.quote(a) for a in argv)
            run_dir, _ = run_train(config, command=command, progress=not args.no_progress)
            print(f"run folder: {run_dir}")
            return 0
        if args.command == "eval":
            from heldout.experiments.protocol import run_eval

            csv_path, _ = run_eval(
                args.run_dir,
                split=args.split,
                episodes=args.episodes,
                distribution_mode=args.distribution_mode,
                levels=args.levels,
                env_options=dict(args.env_option),
                deterministic=args.deterministic,
                num_envs=args.num_envs,
                seed=args.seed,
                device=args.device,
                progress=not args.no_progress,
                shift=args.shift,
                contexts=dict(args.context) or None,
                wrappers=args.wrapper,
                imports=args.imports,
            )
            print(f"episodes: {csv_path}")
            return 0
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"heldout {getattr(args, 'command', '')}: error: {message}".replace("  ", " "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("heldout: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
