"""``heldout sweep SPEC.yaml``: a grid of runs, planned, run resumably on a pool of workers, reported."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from heldout.cli.common import HelpFormatter, positive_int
from heldout.sweep.spec import DEFAULT_MAX_RUNS

#: The backends ``--backend`` takes.
BACKENDS = ("local", "ray")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    """Adds ``heldout sweep`` to the subcommands ``sub``."""
    s = sub.add_parser(
        "sweep",
        help="run a grid of runs from a YAML spec, resumably, and report them",
        description="Expand the spec's grid (envs, agents, seeds, presets, any config field; lists zipped "
        "or crossed) into runs, check every run's config, print the plan (runs, steps to train, what "
        "the sweep folder already holds) and run it: each run an ordinary run folder under the sweep's "
        "folder, named by its grid point. Running it again skips complete runs, resumes interrupted "
        "ones from their checkpoints and retries failed ones. At the end: the report (heldout report) "
        "on the sweep's folder and one line per agent. With --tune, the spec's tune: space is searched first, "
        "each trial scored on the validation split only, and the grid runs with the best values. "
        "docs/sweeps.md has the spec format.",
        formatter_class=HelpFormatter,
    )
    s.add_argument("spec", metavar="SPEC.yaml", help="the sweep's spec (docs/sweeps.md)")
    s.add_argument("--dry-run", action="store_true", help="print the plan and stop; writes nothing")
    s.add_argument(
        "--backend",
        default="local",
        help="where the runs train: local (worker processes here) or ray (Ray tasks: a local Ray instance, "
        "or the cluster of --address; needs pip install 'heldout[ray]')",
    )
    s.add_argument(
        "--address",
        help="--backend ray: the Ray cluster to join: auto (this machine's, from `ray start`), HOST:PORT (the "
        "head's GCS) or ray://HOST:PORT (Ray Client); default: a local Ray instance for the sweep. On a "
        "cluster of several machines the sweep folder must be on shared storage mounted at the same path "
        "on every node (the workers write the run folders there)",
    )
    s.add_argument(
        "--workers",
        type=positive_int,
        help="runs at once (default: the machine's cores / each run's torch threads)",
    )
    s.add_argument(
        "--max-retries",
        type=_non_negative,
        default=2,
        help="times a failed run is started again, from its last checkpoint (a run found failed counts: "
        "0 leaves failed runs as they are; a diverged run is never retried)",
    )
    s.add_argument(
        "--max-runs",
        type=positive_int,
        default=DEFAULT_MAX_RUNS,
        help=f"the most runs the grid may hold (default {DEFAULT_MAX_RUNS}); a bigger grid is refused before "
        "it is expanded, so a typo cannot plan a million runs: raise it to confirm a grid that big",
    )
    s.add_argument("--no-report", action="store_true", help="no report at the end")
    s.add_argument("--no-plots", action="store_true", help="the report's tables only")
    s.add_argument("--reps", type=positive_int, default=2000, help="bootstrap resamples of the report's CIs")
    s.add_argument("--no-progress", action="store_true", help="no progress line (events only)")
    s.add_argument(
        "--tune",
        action="store_true",
        help="first search the spec's tune: space, each trial scored on the validation split only "
        "(trials under FOLDER/tune/, FOLDER/tune/tuning.json), then run each grid point with its "
        "best values and report those runs on train and test (docs/sweeps.md)",
    )


def check_backend(backend: str) -> None:
    """Raises ValueError (one line, with the closest valid name) for a backend not in :data:`BACKENDS`."""
    if backend not in BACKENDS:
        from heldout.sweep.tune_spec import did_you_mean

        hint = did_you_mean(backend, BACKENDS)
        raise ValueError(f"--backend {backend!r} is unknown{hint}; valid backends: {', '.join(BACKENDS)}")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Plans the sweep (bad input: one line, exit 2, nothing written), runs it and reports it.

    Exit codes: 0 every run complete, 1 some run failed (or was left failed), 130 stopped by Ctrl-C.
    """
    from heldout.sweep.spec import check_grid_size, load_spec

    check_backend(args.backend)
    spec = load_spec(args.spec)
    check_grid_size(spec, args.max_runs)  # its size as a product, before anything is expanded
    if args.tune and args.backend == "ray" and spec.tune is not None and spec.tune.method == "optuna":
        raise ValueError(
            "--backend ray runs tune.method grid or random; method optuna runs on the local backend "
            "(a trial asked as each worker frees, told as it ends): leave --backend ray out"
        )
    address = ray_address(args)
    if args.tune:
        return _run_tune(args, argv, spec, address)
    if spec.tune is not None:
        print("note: the spec has a tune section, which only --tune searches; these runs use base's values")
    return run_spec(spec, args, argv, address, where=f"sweep spec {args.spec!r}")


def run_spec(spec: Any, args: argparse.Namespace, argv: list[str], address: Any, where: str) -> int:
    """Plans a parsed spec's runs (bad input: one line, exit 2, nothing written), runs them on
    ``args.backend`` and reports them; ``heldout findings run`` runs a finding's spec through it.

    ``args`` carries sweep's options (dry_run, backend, workers, max_retries, no_progress, no_report,
    no_plots, reps). Exit codes: 0 every run complete, 1 some run failed, 130 stopped.
    """
    from heldout.sweep.plan import make_plan, record_sweep
    from heldout.sweep.spec import build_runs, validate_runs

    runs = build_runs(spec)
    plan = make_plan(spec, runs, args.max_retries)  # the folder's identity before any compute
    validate_runs(runs, where)
    print(plan.text())
    if args.dry_run:
        print("dry run: nothing written")
        return 0

    from heldout.sweep.outcome import log_path
    from heldout.sweep.summary import ended_line, report_lines

    command = "heldout " + " ".join(shlex.quote(a) for a in argv)

    def prepare() -> None:
        plan.folder.mkdir(parents=True, exist_ok=True)
        record_sweep(plan, command)

    if args.backend == "ray":
        from heldout.sweep.ray_backend import run_ray

        outcome = run_ray(
            plan,
            address=address,
            max_retries=args.max_retries,
            stream=sys.stderr,
            progress=not args.no_progress,
            command=command,
            prepare=prepare,
        )
    else:
        from heldout.sweep.local import run_local

        prepare()
        outcome = run_local(
            plan,
            workers=args.workers,
            max_retries=args.max_retries,
            stream=sys.stderr,
            progress=not args.no_progress,
            command=command,
        )
    kept = [d.run.name for d in plan.decisions if d.action == "keep"]
    print(ended_line(f"sweep {spec.name!r}", outcome, plan.decisions))
    for name in outcome.failed + kept:
        error = f": {outcome.errors[name]}" if name in outcome.errors else ""
        print(f"  failed: {name} (log: {log_path(plan.folder, name)}){error}")
    if outcome.stopped:
        print(
            f"stopped: run the same command again to resume ({' '.join(map(shlex.quote, ['heldout', *argv]))})"
        )
        return 130
    if not args.no_report:
        print("\n".join(report_lines(plan, reps=args.reps, plots=not args.no_plots)))
    return 1 if outcome.failed or kept else 0


def _run_tune(args: argparse.Namespace, argv: list[str], spec: Any, address: Any) -> int:
    """``--tune``: both stages of :func:`heldout.sweep.tune.run_tune`, each on the chosen backend
    (on Ray: the trials, then the best config's runs, as Ray tasks)."""
    from heldout.sweep.tune import run_tune

    runner = None
    if args.backend == "ray":
        from heldout.sweep.ray_backend import run_ray

        def runner(
            plan: Any, *, workers: Any, max_retries: int, stream: Any, progress: bool, command: str
        ) -> Any:
            return run_ray(
                plan,
                address=address,
                max_retries=max_retries,
                stream=stream,
                progress=progress,
                command=command,
            )

    return run_tune(
        spec,
        dry_run=args.dry_run,
        workers=args.workers,
        max_retries=args.max_retries,
        report=not args.no_report,
        plots=not args.no_plots,
        reps=args.reps,
        progress=not args.no_progress,
        command="heldout " + " ".join(shlex.quote(a) for a in argv),
        rerun=" ".join(map(shlex.quote, ["heldout", *argv])),
        out=sys.stdout,
        err=sys.stderr,
        runner=runner,
    )


def ray_address(args: argparse.Namespace) -> Any:
    """The checked ``--address`` (None: a local Ray instance), and Ray checked to be installed, for
    ``--backend ray``; bad input before anything is written or Ray is imported."""
    if args.backend != "ray":
        if args.address is not None:
            raise ValueError(
                f"--address {args.address!r} is for --backend ray only (the local backend runs here): "
                "add --backend ray, or leave --address out"
            )
        return None
    if args.workers is not None:
        raise ValueError(
            f"--workers {args.workers} is for the local backend only: on --backend ray each run asks for "
            "its torch threads' CPUs (and a GPU on CUDA) and Ray places as many as the nodes hold"
        )
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ValueError(
            "--backend ray needs Ray, which is not installed: pip install 'heldout[ray]' "
            "(or use --backend local; docs/sweeps.md)"
        )
    from heldout.sweep.ray_address import check_address

    return None if args.address is None else check_address(args.address)
