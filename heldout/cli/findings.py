"""``heldout findings list | run NAME | report NAME``: the field's known results as runnable claims.

``run`` expands a finding (:mod:`heldout.experiments.findings`) into a sweep spec and runs it with
``heldout sweep``'s machinery into ``findings/<name>-<scale>/`` (resumable; local pool or Ray), then
prints its verdict; ``report`` computes the verdict of the runs there and writes ``verdict.json`` and
``verdict.png`` beside them. docs/findings.md lists the findings and their verdicts so far.
"""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path
from typing import Any

from heldout.cli.common import HelpFormatter, Parser, UsageError, positive_int


def add_parser(sub: Any) -> None:
    """Adds ``heldout findings`` and its ``list``, ``run`` and ``report`` to the subcommands ``sub``."""
    f = sub.add_parser(
        "findings",
        help="known results as runnable claims: list them, run one, report its verdict",
        description="The field's known results (the gap on few levels, the gap vs the number of training "
        "levels, PLR vs uniform, CARL's visible context, augmentation) as claims with a direction, each "
        "at a CPU budget and at the paper's scale. 'run' runs one as a sweep (resumable), 'report' "
        "decides it: reproduced, opposite, or inconclusive at this budget (docs/findings.md).",
        formatter_class=HelpFormatter,
    )
    actions = f.add_subparsers(dest="findings_command", metavar="ACTION", parser_class=Parser)
    actions.add_parser("list", help="the findings, their claims and sources")
    for name, text in (
        ("run", "run a finding's sweep at a scale, resumably, then print its verdict"),
        ("report", "the verdict of a finding's runs: prints it, writes verdict.json and verdict.png"),
    ):
        p = actions.add_parser(name, help=text, description=text, formatter_class=HelpFormatter)
        p.add_argument("name", metavar="NAME", help="the finding (heldout findings list)")
        p.add_argument(
            "--scale",
            default="cpu",
            help="cpu (a CPU budget, the default) or paper (the "
            "published protocol; for a GPU machine or a Ray cluster)",
        )
        p.add_argument("--reps", type=positive_int, default=2000, help="bootstrap resamples of the CI")
        if name == "report":
            p.add_argument(
                "--include-incomplete",
                action="store_true",
                help="decide on the complete runs alone while others are still running or were stopped "
                "(the verdict then says how many seeds it has)",
            )
        if name == "run":
            p.add_argument(
                "--dry-run",
                action="store_true",
                help="print the protocol, the compute and the plan, and stop; writes nothing",
            )
            p.add_argument(
                "--seeds",
                type=positive_int,
                help="seeds per arm or step instead of the scale's own (e.g. the number an inconclusive "
                "verdict's power estimate asks for); runs already in the folder are kept",
            )
            p.add_argument("--workers", type=positive_int, help="runs at once (local backend)")
            p.add_argument("--backend", default="local", help="local (worker processes here) or ray")
            p.add_argument("--address", help="--backend ray: the Ray cluster to join (as heldout sweep)")
            p.add_argument("--max-retries", type=int, default=2, help="times a failed run is started again")
            p.add_argument("--no-progress", action="store_true", help="no progress line")


def _finding(name: str) -> Any:
    from heldout.experiments.findings import FINDINGS

    if name not in FINDINGS:
        close = difflib.get_close_matches(name, list(FINDINGS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(
            f"heldout findings: error: unknown finding {name!r}{hint}; valid findings: {', '.join(FINDINGS)}"
        )
    return FINDINGS[name]


def _scale(scale: str) -> str:
    from heldout.experiments.findings import SCALES

    if scale not in SCALES:
        close = difflib.get_close_matches(scale, SCALES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(
            f"heldout findings: error: --scale {scale!r} is unknown{hint}; valid scales: {', '.join(SCALES)}"
        )
    return scale


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Dispatches ``list``, ``run`` and ``report``; bad input: one line, exit 2, nothing written."""
    if args.findings_command is None:
        raise UsageError("heldout findings: error: name an action: list, run NAME or report NAME")
    if args.findings_command == "list":
        return _list()
    finding, scale = _finding(args.name), _scale(args.scale)
    if args.findings_command == "report":
        return _report(finding, scale, args.reps, args.include_incomplete)
    return _run(finding, scale, args, argv)


def _list() -> int:
    from heldout.experiments.findings import FINDINGS

    for f in FINDINGS.values():
        print(f"{f.name}")
        print(f"  claim:  {f.claim}")
        print(f"  source: {f.source}")
        if f.shift:
            print(f"  test:   the held-out levels under {f.shift} (evaluated after training)")
        for scale, s in f.scales.items():
            runs = s.seeds * max(len(s.values), 1)
            print(f"  {scale}: {s.protocol} ({runs} runs)")
    return 0


def _compute_lines(finding: Any, scale: str, runs: list[Any]) -> list[str]:
    """The published protocol and the compute a scale asks for: runs x steps."""
    s = finding.scales[scale]
    steps = sum(r.config.timesteps for r in runs)
    lines = [
        f"finding {finding.name} ({scale}): {finding.claim}",
        f"  source: {finding.source}",
        f"  protocol: {s.protocol}",
        f"  compute: {len(runs)} runs x {runs[0].config.timesteps:,} env steps = {steps:,} env steps",
    ]
    if finding.shift:
        lines.append(
            f"  shift: each run's test levels evaluated again under {finding.shift} (eval/{finding.test_split}.csv)"
        )
    if s.published:
        lines.append(f"  published: {s.published}")
    return lines


def _run(finding: Any, scale: str, args: argparse.Namespace, argv: list[str]) -> int:
    from heldout.cli.sweep import check_backend, ray_address, run_spec
    from heldout.sweep.spec import build_runs, parse_spec

    check_backend(args.backend)
    if args.max_retries < 0:
        raise UsageError(f"heldout findings: error: --max-retries must be >= 0, got {args.max_retries}")
    address = ray_address(args)
    spec = parse_spec(finding.spec(scale, args.seeds), source=f"finding {finding.name!r}")
    for line in _compute_lines(finding, scale, build_runs(spec)):
        print(line)
    sweep_args = argparse.Namespace(**vars(args), no_report=True, no_plots=True)
    code = run_spec(spec, sweep_args, argv, address, where=f"finding {finding.name!r} ({scale})")
    if code != 0 or args.dry_run:
        return code
    if finding.shift:
        _evaluate_under_shift(finding, Path(finding.folder(scale)))
    return _report(finding, scale, args.reps)


def _evaluate_under_shift(finding: Any, folder: Path) -> None:
    """Evaluates every complete run in ``folder`` that lacks it on its test levels under the finding's
    shift (as ``heldout eval RUN --wrapper SHIFT``: the run's own episodes and list, evaluation seed 0,
    so every run meets the same shifted episodes)."""
    import io

    from heldout.analysis.runs import find_run_folders
    from heldout.protocol.reevaluate import run_eval
    from heldout.protocol.run_folder import read_config

    todo = [p for p in find_run_folders([folder]) if not (p / "eval" / f"{finding.test_split}.csv").is_file()]
    if todo:
        print(f"evaluating {len(todo)} run(s) on their test levels under {finding.shift}")
    for i, path in enumerate(todo, 1):
        config = read_config(path / "config.yaml")
        _, summary = run_eval(
            path,
            episodes=config.eval_episodes,
            wrappers=[finding.shift],
            progress=False,
            stream=io.StringIO(),
        )
        mean = summary["splits"][finding.test_split]["mean"]
        print(f"  [{i}/{len(todo)}] {os.path.relpath(path, folder)}: test return under the shift {mean:.3f}")


def _report(finding: Any, scale: str, reps: int, include_incomplete: bool = False) -> int:
    from heldout.analysis.runs import find_run_folders, load_run_record
    from heldout.experiments.findings.verdict import compute, lines, plot, run_command
    from heldout.protocol.run_folder import write_json

    folder = Path(finding.folder(scale))
    command = run_command(finding.name, scale)
    if not folder.is_dir():
        raise UsageError(
            f"heldout findings: error: {finding.name!r} has no runs at scale {scale} ({folder}/ does not "
            f"exist); run it first: {command}"
        )
    try:
        paths = find_run_folders([folder], include_incomplete)
    except ValueError as exc:
        raise UsageError(f"heldout findings: error: {exc}; finish it first: {command}") from None
    records = [load_run_record(p, (finding.test_split,)) for p in paths]
    verdict = compute(finding, scale, records, reps=reps)
    for line in lines(finding, verdict):
        print(line)
    # the command that made these runs: --seeds where the folder holds all of another number of seeds
    seeds = None if include_incomplete or verdict.seeds == finding.scales[scale].seeds else verdict.seeds
    write_json(
        folder / "verdict.json", {**verdict.to_dict(), "command": run_command(finding.name, scale, seeds)}
    )
    plot(finding, verdict, folder / "verdict.png")
    print(f"  wrote {folder / 'verdict.json'} and {folder / 'verdict.png'}")
    return 0
