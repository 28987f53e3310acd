"""``heldout sweep --tune``: search the spec's ``tune:`` space on validation levels, then run the best.

Two stages, both planned and run like any sweep (:mod:`heldout.sweep.plan`, the local backend):

1. **Trials.** The grid's points are grouped by everything but their seed (one group per agent,
   env and other grid value: each is tuned on its own), or by the keys of ``tune.by`` (a group's
   score is then the mean over its members, min-max normalised where they span several games,
   :func:`check_pooling`). Each group tries every trial of the space
   (:func:`heldout.sweep.tune_spec.trial_points`) on ``tune.seeds``; a trial's runs are ordinary
   run folders, ``<folder>/tune/<trial>/<env>/<agent>/seed<k>``. A trial is scored from its runs'
   validation results only (:mod:`heldout.sweep.tune_score`); ``<folder>/tune/tuning.json`` records
   every trial (values, runs, validation score) and each group's best, the highest score (the first
   trial of equal ones). A trial that failed (after its retries) has no score and is not chosen.
2. **The best config on the grid.** Each grid point runs with its group's best values, as an
   ordinary sweep run (``<folder>/<env>/<agent>/seed<k>``), and the sweep's report covers these
   runs: train and test, as the grid asked.

Everything is checked before any compute: the tune section, each trial's whole config (as the
grid's runs are), and that each trial has a validation split to be scored on. Running the same
command again skips complete trials and runs, resumes the rest, and derives the best from the run
folders again (``tuning.json`` is written from them, never read back).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from heldout.sweep.plan import Decision, Plan
from heldout.sweep.spec import RunPoint, SweepSpec

#: The tuning stage's folder within the sweep's folder, and its record.
TUNE_FOLDER = "tune"
TUNING_FILE = "tuning.json"


@dataclass
class Trial:
    """One trial of one group: its tuned values and its runs, one per member of the group and
    tuning seed (``members[i]``: the runs of the group's member ``i``)."""

    group: str
    name: str
    values: dict[str, Any]
    members: list[list[RunPoint]] = field(default_factory=list)

    @property
    def runs(self) -> list[RunPoint]:
        return [run for member in self.members for run in member]


@dataclass
class Group:
    """Grid points tuned together: one best for all of them.

    By default these are the points that differ in their seed alone; with ``tune.by``, the points
    that share their values of those keys (``by: [agent]``: every env of one agent).

    Attributes:
        name: Their run name without the seed (``cartpole/ppo``), or with ``tune.by`` their
            values of it (``agent=ppo``; ``all`` for ``by: []``).
        point: The grid values that define the group (all but the seed, or those of ``tune.by``).
        members: The distinct grid points (but the seed) of the group.
        trials: The trials tried for them.
    """

    name: str
    point: dict[str, Any]
    members: list[dict[str, Any]] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)


def _where(spec: SweepSpec) -> str:
    return f"sweep spec {spec.source!r}" if spec.source else "sweep spec"


def tune_seeds(spec: SweepSpec) -> list[int] | None:
    """The seeds each trial trains: ``tune.seeds``, else the grid's first seed, else None (the
    config's own seed, from ``base`` or the preset)."""
    if spec.tune.seeds is not None:
        return list(spec.tune.seeds)
    if "seed" in spec.grid:
        return [spec.grid["seed"][0]]
    return None


def _group_point(spec: SweepSpec, point: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in point.items() if k != "seed"}
    if spec.tune.by is None:
        return rest
    return {k: rest[k] for k in spec.tune.by}


def _key(point: dict[str, Any]) -> str:
    import json

    return json.dumps(point, sort_keys=True, default=str)


def build_groups(
    spec: SweepSpec, proposals: dict[str, list[tuple[str, dict[str, Any]]]] | None = None
) -> list[Group]:
    """The groups and their trials, every trial run's config built and checked by itself.

    Args:
        proposals: Each group's trials by its point's key (``_key(group.point)``), for a search
            that proposes them (``method: optuna``); without, the space's trials
            (:func:`heldout.sweep.tune_spec.trial_points`), or for ``optuna`` its two corner
            configs (:func:`~heldout.sweep.tune_spec.corner_points`), checked but never run.

    Raises:
        ValueError / KeyError / TypeError: no tune section, or a trial's bad value (naming the trial run).
    """
    from heldout.sweep.keys import fragment
    from heldout.sweep.spec import build_run, expand, import_spec_plugins
    from heldout.sweep.tune_spec import corner_points, trial_points

    if spec.tune is None:
        raise ValueError(
            f"{_where(spec)} has no tune section: --tune needs one, e.g. tune: {{space: "
            "{agent_kwargs.learning_rate: [1.0e-4, 3.0e-4]}} (docs/sweeps.md, 'Tuning on validation levels')"
        )
    import_spec_plugins(spec)
    optuna = spec.tune is not None and spec.tune.method == "optuna"
    trials = (corner_points if optuna else trial_points)(spec.tune) if proposals is None else []
    seeds = tune_seeds(spec)
    groups: dict[str, Group] = {}
    for point in expand(spec):
        rest = {k: v for k, v in point.items() if k != "seed"}
        where = _group_point(spec, point)
        group = groups.setdefault(_key(where), Group(name="", point=where))
        if all(_key(m) != _key(rest) for m in group.members):
            group.members.append(rest)
    for group in groups.values():
        listed = trials if proposals is None else proposals.get(_key(group.point), [])
        if not listed:
            raise ValueError(f"tuning: no trial proposed for group {group.point}")
        for trial_name, values in listed:
            trial = Trial(group="", name=trial_name, values=values)
            for rest in group.members:
                runs = []
                for seed in seeds if seeds is not None else [None]:
                    run_point = {**rest, **values} if seed is None else {**rest, **values, "seed": seed}
                    runs.append(build_run(spec, run_point, prefix=f"{TUNE_FOLDER}/{trial_name}"))
                trial.members.append(runs)
            group.trials.append(trial)
        if spec.tune.by is None:  # its runs' names without the trial prefix and the seed
            first = group.trials[0].runs[0].name
            group.name = first[len(f"{TUNE_FOLDER}/{listed[0][0]}/") :].rpartition("/")[0]
        else:
            parts = [f"{k.rpartition('.')[2]}={fragment(v)}" for k, v in group.point.items()]
            group.name = ",".join(parts) or "all"
        for trial in group.trials:
            trial.group = group.name
    return list(groups.values())


def _pooled_envs(group: Group) -> list[str]:
    """The envs a group's members span, where they span more than one (else [])."""
    envs = {m[0].config.env for m in group.trials[0].members}
    return sorted(envs) if len(envs) > 1 else []


def check_pooling(groups: list[Group], where: str = "sweep spec") -> None:
    """Raises ValueError (one line) where a group (``tune.by``) pools envs whose returns have no
    common scale: a trial's score over several games is the mean of their min-max normalised
    validation scores (:func:`heldout.protocol.scores.normalized_score`), which each game needs."""
    from heldout.protocol.scores import normalized_score

    for group in groups:
        if not _pooled_envs(group):
            continue
        for member in group.trials[0].members:
            config = member[0].config
            if normalized_score(config.env, config.distribution_mode, 0.0) is None:
                raise ValueError(
                    f"{where}, tune.by: group {group.name} pools the envs {', '.join(_pooled_envs(group))}, "
                    f"but {config.env!r} ({config.distribution_mode}) has no normalised score to put their "
                    "returns on one scale: add env to tune.by, so that each env is tuned apart"
                )


def trial_runs(groups: list[Group]) -> list[RunPoint]:
    """Every trial run, group by group, trial by trial."""
    return [run for g in groups for t in g.trials for run in t.runs]


def check_validation_split(groups: list[Group], where: str = "sweep spec") -> None:
    """Raises ValueError (one line) unless every trial run's split has a validation set to score on."""
    from heldout.protocol.families import family_for

    for run in trial_runs(groups):
        config = run.config
        family = family_for(config.env)
        if "validation" not in family.split(config).splits():
            how = (
                "base.contexts.validation (e.g. {gravity: '2.45:4.9'}), disjoint from train and test"
                if family.kind == "contexts"
                else "base.num_validation_levels > 0 (levels after the test range)"
            )
            raise ValueError(
                f"{where}, tune: run {run.name} has no validation split to score trials on (tuning never "
                f"reads the test split): set {how}"
            )


def _run_state(path: Path) -> str:
    from heldout.protocol.status import read_status

    if not (path / "config.yaml").is_file():
        return "new"
    try:
        return str(read_status(path)["state"])
    except ValueError:
        return "unknown"


def score_groups(groups: list[Group], folder: Path, metric: str, final: set[str] | None = None) -> list[dict]:
    """Each group's trials scored from their run folders (validation only), and its best.

    A trial is ``complete`` (every run complete: scored), ``failed`` (a run failed and is not tried
    again: ``final`` names such runs; without it every failed run counts as final) or ``pending``.
    """
    from heldout.sweep.tune_score import best_of, score_trial

    out = []
    for group in groups:
        rows = []
        for trial in group.trials:
            paths = [folder / run.name for run in trial.runs]
            states = [_run_state(p) for p in paths]
            row: dict[str, Any] = {
                "name": trial.name,
                "values": trial.values,
                "runs": [run.name for run in trial.runs],
                "state": "pending",
                "score": None,
                "validation": None,
                "episodes": 0,
            }
            if all(s == "complete" for s in states):
                scored = [score_trial([folder / r.name for r in runs], metric) for runs in trial.members]
                row.update(
                    state="complete",
                    validation=[x for sc in scored for x in sc.per_run],
                    episodes=sum(sc.episodes for sc in scored),
                )
                if len(trial.members) == 1:
                    row["score"] = scored[0].score
                else:  # the mean over the group's members, normalised where they span envs
                    row.update(_pool(group, trial, scored))
            elif any(
                s == "failed" and (final is None or run.name in final)
                for s, run in zip(states, trial.runs, strict=True)
            ):
                row["state"] = "failed"
            rows.append(row)
        best = best_of([r["score"] for r in rows])
        out.append(
            {
                "group": group.name,
                "point": group.point,
                "trials": rows,
                "best": None if best is None else {k: rows[best][k] for k in ("name", "values", "score")},
                "pending": sum(r["state"] == "pending" for r in rows),
            }
        )
    return out


def _pool(group: Group, trial: Trial, scored: list[Any]) -> dict[str, Any]:
    """A trial's score over its group's members: the mean of each member's score, each min-max
    normalised when the members span several envs (Agarwal et al. 2021 aggregate normalised scores)."""
    from heldout.protocol.scores import normalized_score

    pooled = bool(_pooled_envs(group))
    members = []
    for runs, sc in zip(trial.members, scored, strict=True):
        config = runs[0].config
        value = normalized_score(config.env, config.distribution_mode, sc.score) if pooled else sc.score
        members.append({"member": runs[0].name.rpartition("/")[0], "score": sc.score, "scored": value})
    return {
        "members": members,
        "normalized": pooled,
        "score": sum(m["scored"] for m in members) / len(members),
    }


def write_tuning(spec: SweepSpec, folder: Path, results: list[dict]) -> Path:
    """Writes ``<folder>/tune/tuning.json``: the search, every trial and each group's best."""
    import time

    from heldout.protocol.run_folder import write_json

    data = {
        "sweep": spec.name,
        "split": "validation",
        "tune": spec.tune.to_dict(),
        "seeds": tune_seeds(spec),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "groups": results,
    }
    return write_json(folder / TUNE_FOLDER / TUNING_FILE, data)


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tuning_table(results: list[dict], metric: str) -> str:
    """The trials of each group as printed: values, each run's validation mean, score, the best marked."""
    lines = []
    for result in results:
        title = f" for {result['group']}" if result["group"] else ""
        lines.append(f"tuning{title} (validation {metric}; test returns are not read):")
        rows = []
        for row in result["trials"]:
            values = "  ".join(f"{k.rpartition('.')[2]}={_value(v)}" for k, v in row["values"].items())
            if values.replace("  ", ",") == row["name"]:  # a grid trial is named by its values
                values = ""
            if row["state"] == "complete" and row.get("normalized"):
                per_member = ", ".join(f"{m['member']} {m['score']:.2f}" for m in row["members"])
                score = f"{row['score']:.3f} normalised ({per_member})"
            elif row["state"] == "complete":
                per_run = ", ".join(f"{x:.2f}" for x in row["validation"])
                score = f"{row['score']:.2f} ({per_run})"
            else:
                score = row["state"]
            best = result["best"] is not None and result["best"]["name"] == row["name"]
            rows.append((row["name"], values, score, "  <- best" if best else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        for name, values, score, mark in rows:
            values = f"{values:<{widths[1]}}  " if widths[1] else ""
            lines.append(f"  {name:<{widths[0]}}  {values}{score}{mark}")
    return "\n".join(lines)


def best_runs(spec: SweepSpec, results: list[dict]) -> list[RunPoint]:
    """Stage 2's runs: each grid point with its group's best values, named as the grid's runs.

    Raises:
        ValueError: a group with no best trial (every trial failed).
    """
    from heldout.sweep.spec import build_run, expand

    best = {}
    for result in results:
        if result["best"] is None:
            raise ValueError(
                f"tuning for {result['group'] or 'the grid'}: no trial completed, so none is best"
            )
        best[_key(result["point"])] = result["best"]["values"]
    return [build_run(spec, {**point, **best[_key(_group_point(spec, point))]}) for point in expand(spec)]


def _ended(label: str, outcome: Any, plan: Plan) -> str:
    kept = sum(d.action == "keep" for d in plan.decisions)
    skipped = sum(d.action == "skip" for d in plan.decisions)
    return (
        f"{label}: {len(outcome.complete)} run(s) trained, {skipped} skipped (complete), "
        f"{len(outcome.failed) + kept} failed, {len(outcome.interrupted)} interrupted"
        + (f", {len(outcome.not_started)} not started" if outcome.not_started else "")
        + f" ({outcome.seconds:.1f} s)"
    )


def run_tune(
    spec: SweepSpec,
    *,
    dry_run: bool = False,
    workers: int | None = None,
    max_retries: int = 2,
    report: bool = True,
    plots: bool = True,
    reps: int = 2000,
    progress: bool = True,
    command: str = "",
    rerun: str = "",
    out: TextIO | None = None,
    err: TextIO | None = None,
    runner: Any = None,
) -> int:
    """Plans and runs both stages (see the module); returns the exit code.

    Exit codes: 0 every trial and run complete, 1 a run failed or a trial is not complete yet (a
    trial running elsewhere), 130 stopped by Ctrl-C. Bad input raises before anything is written.

    Args:
        runner: ``runner(plan, workers=, max_retries=, stream=, progress=, command=) -> Outcome``
            (default: the local backend, :func:`heldout.sweep.local.run_local`).
        rerun: The command to print for resuming after Ctrl-C.
    """
    from heldout.sweep.plan import make_plan, record_sweep
    from heldout.sweep.spec import build_runs, validate_runs

    out, err = out or sys.stdout, err or sys.stderr
    where = _where(spec)
    optuna = spec.tune is not None and spec.tune.method == "optuna"
    if optuna:
        from heldout.sweep.tune_optuna import check_available

        check_available()
    groups = build_groups(spec)  # for optuna: the space's corner configs, checked, never run
    trials = trial_runs(groups)
    plan1 = make_plan(spec, [] if optuna else trials, max_retries)  # the folder's identity first
    check_validation_split(groups, where)
    check_pooling(groups, where)
    validate_runs(trials, where)
    results = score_groups(groups, plan1.folder, spec.tune.metric, final=_kept(plan1))
    plan2 = None
    if not optuna and all(r["pending"] == 0 for r in results):
        runs2 = best_runs(spec, results)
        plan2 = make_plan(spec, runs2, max_retries)
        validate_runs(runs2, where)
    n_trials = spec.tune.samples if optuna else len(groups[0].trials)
    seeds = tune_seeds(spec)
    print(
        f"stage 1, tuning on the validation split: {n_trials} trial(s) ({spec.tune.method}) x "
        f"{len(seeds) if seeds else 1} seed(s) x {len(groups)} group(s), scored by the {spec.tune.metric} "
        "validation return",
        file=out,
    )
    if optuna:
        print(
            f"  proposed by Optuna's TPE (Ray Tune OptunaSearch, seed {spec.tune.seed}) in rounds of "
            f"{spec.tune.batch}, each round from the validation scores before it; the space's corner "
            f"configs are checked: {', '.join(g.name or 'the grid' for g in groups)}",
            file=out,
        )
    else:
        print(plan1.text(), file=out)
    if plan2 is not None:
        if dry_run:
            print(tuning_table(results, spec.tune.metric), file=out)
        print("stage 2, the best config on the grid (every trial is complete):", file=out)
        print(plan2.text(), file=out)
    else:
        grid = build_runs(spec)
        steps = sum(r.config.timesteps for r in grid)
        print(
            f"stage 2, the best config on the grid: {len(grid)} run(s), about {steps:,} environment steps, "
            "each grid point with its group's best trial's values, once every trial is complete:",
            file=out,
        )
        for run in grid[:200]:
            print(f"  {run.name}", file=out)
    if dry_run:
        print("dry run: nothing written", file=out)
        return 0

    if runner is None:
        from heldout.sweep.local import run_local as runner
    plan1.folder.mkdir(parents=True, exist_ok=True)
    _record(plan1, plan2, command, record_sweep)
    kwargs = {"workers": workers, "max_retries": max_retries, "stream": err, "progress": progress}
    if optuna:
        keys = [_key(g.point) for g in groups]  # the corner groups: one searcher each
        groups, plan1, outcome = _optuna_rounds(spec, keys, runner, kwargs, command, max_retries, out)
    else:
        outcome = runner(plan1, command=command, **kwargs)
    print(_ended("stage 1 (trials)", outcome, plan1), file=out)
    if outcome.stopped:
        print(f"stopped: run the same command again to resume ({rerun})", file=out)
        return 130
    final = _kept(plan1) | set(outcome.failed)
    results = score_groups(groups, plan1.folder, spec.tune.metric, final=final)
    path = write_tuning(spec, plan1.folder, results)
    print(tuning_table(results, spec.tune.metric), file=out)
    print(f"tuning: {path}", file=out)
    pending = sum(r["pending"] for r in results)
    if pending:
        print(
            f"stage 2 waits: {pending} trial(s) not complete (running elsewhere?); run again later", file=out
        )
        return 1
    lost = [r["group"] or "the grid" for r in results if r["best"] is None]
    if lost:
        for name in sorted(_kept(plan1) | set(outcome.failed)):
            print(f"  failed: {name} (log: {_log(plan1, name)})", file=out)
        print(f"tuning for {', '.join(lost)}: no trial completed, so there is no best to run", file=out)
        return 1
    for result in results:
        best = result["best"]
        if best is not None:
            title = f" for {result['group']}" if result["group"] else ""
            values = ", ".join(f"{k}={_value(v)}" for k, v in best["values"].items())
            print(f"best{title}: {best['name']} ({values}), validation {best['score']:.2f}", file=out)
    if plan2 is None:
        runs2 = best_runs(spec, results)
        plan2 = make_plan(spec, runs2, max_retries)
        validate_runs(runs2, where)
        print("stage 2, the best config on the grid:", file=out)
        print(plan2.text(), file=out)
    _record(plan1, plan2, command, record_sweep)
    outcome2 = runner(plan2, command=command, **kwargs)
    print(_ended(f"sweep {spec.name!r}", outcome2, plan2), file=out)
    failed = sorted(_kept(plan1) | set(outcome.failed)) + outcome2.failed + sorted(_kept(plan2))
    for name in failed:
        print(f"  failed: {name} (log: {_log(plan1, name)})", file=out)
    if outcome2.stopped:
        print(f"stopped: run the same command again to resume ({rerun})", file=out)
        return 130
    if report:
        from heldout.sweep.summary import write_sweep_report

        lines, warnings = write_sweep_report(plan2, reps=reps, plots=plots)
        for line in lines:
            print(line, file=out)
        for warning in warnings:
            print("warning: " + warning, file=out)
    return 1 if failed else 0


def _optuna_rounds(
    spec: SweepSpec,
    keys: list[str],
    runner: Any,
    kwargs: dict[str, Any],
    command: str,
    max_retries: int,
    out: TextIO,
) -> tuple[list[Group], Plan, Any]:
    """Stage 1 of ``method: optuna``: round by round, each group's searcher proposes ``batch``
    trials, they are checked, planned and run, and their scores told (:mod:`heldout.sweep.tune_optuna`).

    Returns:
        The groups with every trial proposed, the rounds' plans as one (each run as its round
        decided it) and the rounds' outcomes merged (stopped if a round was).
    """
    from heldout.sweep.outcome import Outcome
    from heldout.sweep.plan import make_plan, record_sweep
    from heldout.sweep.spec import validate_runs
    from heldout.sweep.tune_optuna import Proposer

    proposer = Proposer(spec.tune, keys)
    proposals: dict[str, list[tuple[str, dict[str, Any]]]] = {key: [] for key in keys}
    merged = Outcome()
    samples, batch = int(spec.tune.samples or 0), spec.tune.batch
    done = 0
    decisions: list[Decision] = []
    while done < samples:
        names = [f"trial-{i:03d}" for i in range(done, min(done + batch, samples))]
        for key in keys:
            proposals[key] += [(name, proposer.ask(key, name)) for name in names]
        groups = build_groups(spec, proposals)
        new = [run for g in groups for t in g.trials if t.name in names for run in t.runs]
        validate_runs(new, _where(spec))
        plan = make_plan(spec, new, max_retries)
        _record(Plan(spec, plan.folder, decisions + plan.decisions), None, command, record_sweep)
        print(f"optuna round {done // batch + 1}: {', '.join(names)}", file=out)
        outcome = runner(plan, command=command, **kwargs)
        decisions += plan.decisions
        for kind in ("complete", "failed", "interrupted", "not_started"):
            getattr(merged, kind).extend(getattr(outcome, kind))
        merged.attempts.update(outcome.attempts)
        merged.seconds += outcome.seconds
        if outcome.stopped:
            merged.stopped = True
            return groups, Plan(spec, plan.folder, decisions), merged
        final = _kept(plan) | set(outcome.failed)
        results = score_groups(groups, plan.folder, spec.tune.metric, final=final)
        for key, result in zip(keys, results, strict=True):
            for row in result["trials"]:
                if row["name"] in names:
                    proposer.tell(key, row["name"], row["score"] if row["state"] == "complete" else None)
        done += len(names)
    return groups, Plan(spec, plan.folder, decisions), merged


def _log(plan: Plan, name: str) -> Path:
    return plan.folder / "logs" / (name.replace("/", "__") + ".log")


def _kept(plan: Plan) -> set[str]:
    """The runs a plan leaves failed (not tried again)."""
    return {d.run.name for d in plan.decisions if d.action == "keep"}


def _record(plan1: Plan, plan2: Plan | None, command: str, record: Any) -> None:
    decisions: list[Decision] = list(plan1.decisions) + (list(plan2.decisions) if plan2 else [])
    record(Plan(plan1.spec, plan1.folder, decisions), command)


__all__ = [
    "TUNE_FOLDER",
    "TUNING_FILE",
    "Group",
    "Trial",
    "best_runs",
    "build_groups",
    "check_validation_split",
    "run_tune",
    "score_groups",
    "trial_runs",
    "tuning_table",
    "write_tuning",
]
