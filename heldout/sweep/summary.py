"""The end of a sweep: the aggregate report on its folder and one line per agent.

The report is ``heldout report``'s (:func:`heldout.analysis.report.write_report`) over the sweep's
complete runs, in ``<folder>/report/``; where the grid varies keys besides env, agent and seed, each
combination gets its own, ``<folder>/report/<combination>/`` (docs/sweeps.md, "The report at the end").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heldout.sweep.plan import Plan


def experiment_of(name: str) -> str:
    """The combination part of a run's name (``ent_coef=0.01`` of ``ent_coef=0.01/cartpole/ppo/seed0``),
    '' when only env, agent and seed vary."""
    return "/".join(name.split("/")[:-3])


def agent_lines(run_dirs: list[Path]) -> list[str]:
    """One line per agent over ``run_dirs`` (complete runs): runs, games, and the mean over runs of
    the train and test returns and of the gap (and the normalised test score where every run has one)."""
    from heldout.protocol.run_folder import read_summary

    by_agent: dict[str, list[dict[str, Any]]] = {}
    for path in run_dirs:
        summary = read_summary(path / "summary.json")
        by_agent.setdefault(str(summary.get("agent")), []).append(summary)
    lines = []
    for agent, summaries in sorted(by_agent.items()):
        games = sorted({str(s.get("env")) for s in summaries})
        means = {
            name: [s["splits"][name]["mean"] for s in summaries if name in s.get("splits", {})]
            for name in ("train", "test")
        }
        means["gap"] = [s["gap"] for s in summaries if s.get("gap") is not None]
        normalized = [s["splits"].get("test", {}).get("normalized") for s in summaries]
        text = f"{agent}: {len(summaries)} run(s) on {len(games)} game(s) ({', '.join(games[:4])}"
        text += ", ...)" if len(games) > 4 else ")"
        for name, values in means.items():  # train, test, gap
            if values:
                text += f", {name} {sum(values) / len(values):.2f}"
        if normalized and all(isinstance(n, (int, float)) for n in normalized):
            text += f", normalised test {sum(normalized) / len(normalized):.3f}"  # type: ignore[arg-type]
        lines.append(text + " (means over runs)")
    return lines


def write_sweep_report(
    plan: Plan, reps: int = 2000, plots: bool = True, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Writes the report(s) of ``plan``'s complete runs; returns the lines to print and the warnings.

    Nothing is written when no run is complete.
    """
    from heldout.analysis.report import write_report
    from heldout.protocol.status import read_status

    groups: dict[str, list[Path]] = {}
    left_out = 0
    for d in plan.decisions:
        if (
            d.path.is_dir()
            and (d.path / "config.yaml").is_file()
            and read_status(d.path)["state"] == "complete"
        ):
            groups.setdefault(experiment_of(d.run.name), []).append(d.path)
        else:
            left_out += 1
    lines: list[str] = []
    warnings: list[str] = []
    if not groups:
        return ["report: no complete run yet, so no report"], warnings
    for experiment, paths in groups.items():
        out = plan.folder / "report" / experiment if experiment else plan.folder / "report"
        report = write_report(paths, out, reps=reps, seed=seed, plots=plots)
        title = f" [{experiment}]" if experiment else ""
        lines.append(f"report{title}: {report.files[0]} ({len(report.files)} files)")
        lines.extend("  " + line for line in agent_lines(paths))
        warnings.extend(w.replace("**", "") for w in report.warnings)
    if left_out:
        lines.append(f"({left_out} run(s) not complete, left out of the report)")
    return lines, warnings


def ended_line(label: str, outcome: Any, decisions: list[Any]) -> str:
    """The line a sweep (or stage) ends with, counting the runs its plan's ``decisions`` leave failed."""
    kept, skipped = sum(d.action == "keep" for d in decisions), sum(d.action == "skip" for d in decisions)
    return (
        f"{label}: {len(outcome.complete)} run(s) trained, {skipped} skipped (complete), "
        f"{len(outcome.failed) + kept} failed, {len(outcome.interrupted)} interrupted"
        + (f", {len(outcome.not_started)} not started" if outcome.not_started else "")
        + f" ({outcome.seconds:.1f} s)"
    )


def report_lines(plan: Plan, reps: int = 2000, plots: bool = True) -> list[str]:
    """:func:`write_sweep_report`'s lines to print, its warnings last (``warning: ...``)."""
    lines, warnings = write_sweep_report(plan, reps=reps, plots=plots)
    return lines + ["warning: " + w for w in warnings]


__all__ = ["agent_lines", "ended_line", "experiment_of", "report_lines", "write_sweep_report"]
