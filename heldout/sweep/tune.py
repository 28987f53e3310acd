"""``heldout sweep --tune``: search the spec's ``tune:`` space on validation levels, then run the best.

Stage 1 groups the grid's points (by all but the seed, or by ``tune.by``: :func:`build_groups`) and
runs each group's trials on the tuning seeds (:func:`tune_seeds`), each trial scored from its runs'
``eval/validation.csv`` only, never the test split (:func:`score_trial`), and records them in
``<folder>/tune/tuning.json``. Stage 2 runs each grid point with its group's best values as an
ordinary sweep. Everything is checked before any compute; the same command resumes (docs/sweeps.md,
"Tuning on validation levels").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from heldout.sweep.plan import Decision, Plan
from heldout.sweep.spec import RunPoint, SweepSpec
from heldout.sweep.tune_spec import DIGITS

#: The tuning stage's folder within the sweep's folder, its record, and Optuna's journal.
TUNE_FOLDER, TUNING_FILE, JOURNAL = "tune", "tuning.json", "optuna.journal"
#: The one file per run a trial is scored from.
SCORED_FILE = Path("eval") / "validation.csv"
#: The default tuning seed (the first above it that no grid run trains, if one does).
DEFAULT_SEED = 1000
INSTALL = "pip install 'heldout[tune]'"


@dataclass
class Trial:
    """One trial of one group: its tuned values and its runs, one per member of the group and
    tuning seed (``members[i]``: the runs of the group's member ``i``). ``failed``: Optuna's record
    says so (its runs are not run again); ``number``: Optuna's trial number."""

    group: str
    name: str
    values: dict[str, Any]
    members: list[list[RunPoint]] = field(default_factory=list)
    failed: bool = False
    number: int = -1

    @property
    def runs(self) -> list[RunPoint]:
        return [run for member in self.members for run in member]


@dataclass
class Group:
    """Grid points tuned together, one best for all: those that differ in their seed alone, or with
    ``tune.by`` those that share their values of its keys (``point``). ``name``: their run name
    without the seed (``cartpole/ppo``), or their values of ``tune.by`` (``agent=ppo``; ``all`` for
    ``by: []``); ``members``: their distinct grid points but the seed."""

    name: str
    point: dict[str, Any]
    members: list[dict[str, Any]] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)


def _key(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, default=str)


def tune_seeds(spec: SweepSpec) -> list[int]:
    """The seeds each trial trains: ``tune.seeds``, else :data:`DEFAULT_SEED` (or the first seed
    above it that no grid run trains).

    Raises:
        ValueError: ``tune.seeds`` that a grid run trains too (its test score would come from a run
            the choice was made on).
    """
    from heldout.sweep.spec import build_run, expand

    used = spec.grid.get("seed") or sorted({build_run(spec, p).config.seed for p in expand(spec)})
    if spec.tune.seeds is None:
        return [next(s for s in range(DEFAULT_SEED, DEFAULT_SEED + len(used) + 1) if s not in used)]
    both = [s for s in spec.tune.seeds if s in used]
    if both:
        raise ValueError(
            f"{spec.where}, tune.seeds: {', '.join(map(str, both))} also seed(s) the grid's runs, whose "
            "test scores would then come from the very run the choice was made on (tuning and evaluation "
            f"seeds are kept apart): give seeds other than {', '.join(map(str, used))}, or leave "
            f"tune.seeds out (default {DEFAULT_SEED})"
        )
    return list(spec.tune.seeds)


def _group_point(spec: SweepSpec, point: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in point.items() if k != "seed"}
    return rest if spec.tune.by is None else {k: rest[k] for k in spec.tune.by}


def make_trial(spec: SweepSpec, group: Group, name: str, values: dict[str, Any], seeds: list[int]) -> Trial:
    """The trial ``name`` of ``group``: a run per member and seed, each config built and checked by itself."""
    from heldout.sweep.spec import build_run

    members = [
        [build_run(spec, {**rest, **values, "seed": seed}, prefix=f"{TUNE_FOLDER}/{name}") for seed in seeds]
        for rest in group.members
    ]
    return Trial(group=group.name, name=name, values=values, members=members)


def build_groups(spec: SweepSpec) -> list[Group]:
    """The groups and their trials (for ``method: optuna`` the space's two corner configs,
    :func:`~heldout.sweep.tune_spec.corner_points`, checked but never run).

    Raises:
        ValueError / KeyError / TypeError: no tune section, or a trial's bad value (naming the trial run).
    """
    from heldout.sweep.spec import expand, import_spec_plugins
    from heldout.sweep.tune_spec import corner_points, fragment, trial_points

    if spec.tune is None:
        raise ValueError(
            f"{spec.where} has no tune section: --tune needs one, e.g. tune: {{space: "
            "{agent_kwargs.learning_rate: [1.0e-4, 3.0e-4]}} (docs/sweeps.md, 'Tuning on validation levels')"
        )
    import_spec_plugins(spec)
    listed = (corner_points if spec.tune.method == "optuna" else trial_points)(spec.tune)
    seeds = tune_seeds(spec)
    groups: dict[str, Group] = {}
    for point in expand(spec):
        rest = {k: v for k, v in point.items() if k != "seed"}
        where = _group_point(spec, point)
        group = groups.setdefault(_key(where), Group(name="", point=where))
        if all(_key(m) != _key(rest) for m in group.members):
            group.members.append(rest)
    for group in groups.values():
        group.trials = [make_trial(spec, group, name, values, seeds) for name, values in listed]
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
    envs = {m[0].config.env for m in group.trials[0].members} if group.trials else set()
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


def validation_returns(run_dir: str | Path) -> list[float]:
    """The validation episode returns of the run folder ``run_dir`` (``eval/validation.csv``).

    Raises:
        ValueError: no such file, or no episode in it (tuning reads no other split).
    """
    from heldout.protocol.evaluate import EvalResult

    path = Path(run_dir) / SCORED_FILE
    if not path.is_file():
        raise ValueError(
            f"run {str(run_dir)!r} has no validation results ({SCORED_FILE}): a trial is scored on the "
            "validation split only, never on train or test; give its config validation levels "
            "(num_validation_levels) or contexts (contexts.validation)"
        )
    try:
        returns = [float(r) for r in EvalResult.from_csv(path.read_text(), "validation").returns]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"run {str(run_dir)!r}: cannot read {SCORED_FILE}: {exc}") from None
    if not returns:
        raise ValueError(f"run {str(run_dir)!r}: {SCORED_FILE} holds no episode")
    return returns


def score_trial(run_dirs: Sequence[str | Path], metric: str = "mean") -> tuple[float, list[float], int]:
    """``(score, each run's mean validation return, episodes)`` of a trial whose runs are ``run_dirs``.

    Raises:
        ValueError: a run without validation results (:func:`validation_returns`).
    """
    import numpy as np

    from heldout.analysis.stats import aggregate_iqm

    returns = [validation_returns(d) for d in run_dirs]
    per_run = [float(np.mean(r)) for r in returns]
    pooled = np.asarray([x for r in returns for x in r], dtype=float).reshape(-1, 1)
    score = float(np.mean(per_run)) if metric == "mean" else float(aggregate_iqm(pooled))
    return score, per_run, len(pooled)


def _run_state(path: Path) -> str:
    from heldout.protocol.status import read_status

    if not (path / "config.yaml").is_file():
        return "new"
    try:
        return str(read_status(path)["state"])
    except ValueError:
        return "unknown"


def trial_row(group: Group, trial: Trial, folder: Path, metric: str, final: set[str] | None = None) -> dict:
    """A trial as ``tuning.json`` records it, scored from its run folders (validation only).

    Its state: ``complete`` (every run complete: scored), ``failed`` (Optuna's record says so, or a
    run failed and is not tried again: ``final`` names such runs, without it every failed run is
    final) or ``pending``.
    """
    from heldout.protocol.scores import normalized_score

    row: dict[str, Any] = {"name": trial.name, "values": trial.values, "runs": [r.name for r in trial.runs]}
    row.update(state="pending", score=None, validation=None, episodes=0)
    states = [_run_state(folder / run.name) for run in trial.runs]
    if trial.failed or any(
        s == "failed" and (final is None or run.name in final)
        for s, run in zip(states, trial.runs, strict=True)
    ):
        row["state"] = "failed"
    elif states and all(s == "complete" for s in states):
        scored = [score_trial([folder / r.name for r in runs], metric) for runs in trial.members]
        row.update(state="complete", validation=[x for s in scored for x in s[1]])
        row.update(episodes=sum(s[2] for s in scored), score=scored[0][0])
        if len(trial.members) > 1:  # the mean over the members, normalised where they span envs
            pooled = bool(_pooled_envs(group))
            members = []
            for runs, (score, _, _) in zip(trial.members, scored, strict=True):
                config = runs[0].config
                value = normalized_score(config.env, config.distribution_mode, score) if pooled else score
                members.append({"member": runs[0].name.rpartition("/")[0], "score": score, "scored": value})
            row.update(
                members=members, normalized=pooled, score=sum(m["scored"] for m in members) / len(members)
            )
    return row


def score_groups(groups: list[Group], folder: Path, metric: str, final: set[str] | None = None) -> list[dict]:
    """Each group's trials scored from their run folders (:func:`trial_row`), and its best."""
    out = []
    for group in groups:
        rows = [trial_row(group, trial, folder, metric, final) for trial in group.trials]
        scored = [i for i, r in enumerate(rows) if r["score"] is not None]
        best = max(scored, key=lambda i: rows[i]["score"], default=None)  # the first of equal ones
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
    if spec.tune.method == "optuna":
        data["journal"] = JOURNAL
    return write_json(folder / TUNE_FOLDER / TUNING_FILE, data)


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tuning_table(results: list[dict], metric: str) -> str:
    """The trials of each group as printed: values, each run's validation mean, score, the best marked."""
    lines = []
    for result in results:
        lines.append(f"tuning for {result['group']} (validation {metric}; test returns are not read):")
        rows = []
        for row in result["trials"]:
            values = "  ".join(f"{k.rpartition('.')[2]}={_show(v)}" for k, v in row["values"].items())
            if values.replace("  ", ",") == row["name"]:  # a grid trial is named by its values
                values = ""
            if row["state"] == "complete" and row.get("normalized"):
                per_member = ", ".join(f"{m['member']} {m['score']:.2f}" for m in row["members"])
                score = f"{row['score']:.3f} normalised ({per_member})"
            elif row["state"] == "complete":
                score = f"{row['score']:.2f} ({', '.join(f'{x:.2f}' for x in row['validation'])})"
            else:
                score = row["state"]
            best = result["best"] is not None and result["best"]["name"] == row["name"]
            rows.append((row["name"], values, score, "  <- best" if best else ""))
        widths = [max((len(r[i]) for r in rows), default=0) for i in range(2)]
        for name, values, score, mark in rows:
            values = f"{values:<{widths[1]}}  " if widths[1] else ""
            lines.append(f"  {name:<{widths[0]}}  {values}{score}{mark}")
    return "\n".join(lines)


def best_runs(spec: SweepSpec, results: list[dict]) -> list[RunPoint]:
    """Stage 2's runs: each grid point with its group's best values (each group has one), named as
    the grid's runs."""
    from heldout.sweep.spec import build_run, expand

    best = {_key(result["point"]): result["best"]["values"] for result in results}
    return [build_run(spec, {**point, **best[_key(_group_point(spec, point))]}) for point in expand(spec)]


class Search:
    """``method: optuna``: Optuna's seeded TPE (Akiba et al. 2019), one study per group, kept in the
    journal ``<folder>/tune/optuna.journal``. A trial is asked whenever a worker frees (:meth:`more`),
    at most ``tune.batch`` of a group in flight, and told its validation score (or ``FAIL``) as soon
    as its last run ends; trial ``n``'s sampler is seeded with ``tune.seed + n``. Resuming keeps the
    told trials and resumes those asked but not told. ``create``: create the journal and studies
    (else read those there are: plan time)."""

    def __init__(
        self,
        spec: SweepSpec,
        groups: list[Group],
        folder: Path,
        create: bool = False,
        out: TextIO = sys.stdout,
    ) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        from heldout.sweep.tune_spec import Range

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec, self.tune, self.groups, self.folder = spec, spec.tune, groups, folder
        self.create, self.out = create, out
        self.seeds, self.studies, self.decisions = tune_seeds(spec), {}, []
        self.pending: dict[str, tuple[Group, Trial, set[str]]] = {}  # by run: its trial's runs not ended
        self.flying: dict[str, set[str]] = {g.name: set() for g in groups}  # trials asked, not told
        self.untold: list[tuple[Group, Trial]] = []
        self.distributions = {}
        for key, space in self.tune.space.items():
            if isinstance(space, Range):
                kind = IntDistribution if space.int else FloatDistribution
                self.distributions[key] = kind(space.low, space.high, log=space.log)
            else:  # values Optuna cannot store are proposed by their index
                self.distributions[key] = CategoricalDistribution(
                    space if _plain(space) else list(range(len(space)))
                )
        path = folder / TUNE_FOLDER / JOURNAL
        for group in groups:
            group.trials = []
        if not (create or path.is_file()):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(path)))
        space = json.loads(json.dumps(self.tune.to_dict()["space"]))
        names = set(optuna.get_all_study_names(storage))
        for group in [g for g in groups if create or g.name in names]:
            if group.name in names:  # (create_study would append a line even for a study there is)
                study = optuna.load_study(study_name=group.name, storage=storage)
            else:
                study = optuna.create_study(storage=storage, study_name=group.name, direction="maximize")
            if "space" not in study.user_attrs:
                study.set_user_attr("space", space)
            elif study.user_attrs["space"] != space:
                raise ValueError(
                    f"{spec.where}, tune.space: the Optuna journal {str(path)!r} searched another space for "
                    f"{group.name} ({json.dumps(study.user_attrs['space'])}): give the sweep a new folder"
                )
            self.studies[group.name] = study
            for frozen in study.get_trials(deepcopy=False):
                self._load(group, frozen)

    def _load(self, group: Group, frozen: Any) -> Trial | None:
        """The journal's trial ``frozen`` as a :class:`Trial` of ``group``; one not told is checked
        (a value its config refuses: told failed) and kept for :meth:`start`."""
        from optuna.trial import TrialState

        from heldout.sweep.spec import validate_runs

        running = frozen.state == TrialState.RUNNING
        if set(frozen.params) != set(self.tune.space):  # stopped between its ask and its values
            if running and self.create:
                self.studies[group.name].tell(frozen.number, state=TrialState.FAIL)
            return None
        values = {}
        for key, space in self.tune.space.items():
            value = frozen.params[key]
            if isinstance(space, list):
                values[key] = value if _plain(space) else space[value]
            else:
                values[key] = int(value) if space.int else float(f"{float(value):.{DIGITS}g}")
        trial = Trial(group.name, f"trial-{frozen.number:03d}", values, number=frozen.number)
        trial.failed = frozen.state == TrialState.FAIL
        try:
            trial.members = make_trial(self.spec, group, trial.name, values, self.seeds).members
            if running and self.create:
                validate_runs(trial.runs, self.spec.where)
        except (ValueError, KeyError, TypeError) as exc:
            trial.failed, trial.members = True, []
            if running and self.create:
                self.studies[group.name].tell(frozen.number, state=TrialState.FAIL)
                print(f"optuna: {trial.name} of {group.name} refused, told failed: {exc}", file=self.out)
        group.trials.append(trial)
        if running and not trial.failed:
            self.untold.append((group, trial))
        return trial

    def start(self, max_retries: int) -> list[Decision]:
        """The runs to start or resume of the trials asked but not told (told at once if they ended)."""
        from heldout.sweep.plan import RUNS, decide

        out = []
        for group, trial in self.untold:
            decisions = [decide(run, self.folder, max_retries) for run in trial.runs]
            self.decisions += decisions
            if any(d.action == "wait" for d in decisions):
                continue  # running elsewhere: told by the sweep that runs it
            todo = {d.run.name for d in decisions if d.action in RUNS}
            self.pending.update({name: (group, trial, todo) for name in todo})
            self.flying[group.name].add(trial.name)
            if not todo or any(d.action == "keep" for d in decisions):
                self._tell(group, trial, {d.run.name for d in decisions if d.action == "keep"})
            else:
                out += [d for d in decisions if d.action in RUNS]
        self.untold = []
        return out

    def _tell(self, group: Group, trial: Trial, failed: set[str]) -> None:
        from optuna.trial import TrialState

        for name in [r.name for r in trial.runs]:
            self.pending.pop(name, None)
        self.flying[group.name].discard(trial.name)
        row = trial_row(group, trial, self.folder, self.tune.metric, failed)
        if row["state"] == "complete":
            self.studies[group.name].tell(trial.number, row["score"])
        else:
            self.studies[group.name].tell(trial.number, state=TrialState.FAIL)
            trial.failed = True

    def settle(self, outcome: Any) -> None:
        """Tells each trial whose runs all ended in ``outcome`` (a failed one as soon as a run failed)."""
        failed = set(outcome.failed)
        for name in [n for n in [*outcome.complete, *failed] if n in self.pending]:
            group, trial, todo = self.pending[name]
            todo.discard(name)
            if name in failed or not todo:
                self._tell(group, trial, failed)

    def more(self, outcome: Any, free: int, max_retries: int) -> list[Decision]:
        """Tells the trials that ended, then asks trials until ``free`` runs are to start, each of the
        group with the fewest trials of those under ``samples`` and under ``batch`` in flight."""
        import warnings

        import optuna

        self.settle(outcome)
        new: list[Decision] = []
        while len(new) < free:
            groups = [
                g
                for g in self.groups
                if len(g.trials) < int(self.tune.samples)
                and len(self.flying[g.name]) < (self.tune.batch or float("inf"))
            ]
            if not groups:
                break
            group = min(groups, key=lambda g: len(g.trials))
            study = self.studies[group.name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                seed = self.tune.seed + len(study.get_trials(deepcopy=False))
                study.sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
                asked = study.ask(self.distributions)
            trial = self._load(group, study.get_trials(deepcopy=False)[asked.number])
            if trial is not None and not trial.failed:
                print(f"optuna: {trial.name} of {group.name}: {trial.values}", file=self.out)
            new += self.start(max_retries)
        return new


def _plain(values: list[Any]) -> bool:
    return all(v is None or isinstance(v, (bool, int, float, str)) for v in values)


def _kept(plan: Plan) -> set[str]:
    """The runs a plan leaves failed (not tried again)."""
    return {d.run.name for d in plan.decisions if d.action == "keep"}


def _record(plan1: Plan, plan2: Plan | None, command: str) -> None:
    from heldout.sweep.plan import record_sweep

    record_sweep(
        Plan(plan1.spec, plan1.folder, plan1.decisions + (plan2.decisions if plan2 else [])), command
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
        runner: ``runner(plan, workers=, max_retries=, stream=, progress=, command=[, more=]) ->
            Outcome`` (default: the local backend, :func:`heldout.sweep.local.run_local`; ``more``
            for ``method: optuna`` only).
        rerun: The command to print for resuming after Ctrl-C.
    """
    import importlib.util

    from heldout.sweep.outcome import log_path
    from heldout.sweep.plan import make_plan
    from heldout.sweep.spec import build_runs, validate_runs
    from heldout.sweep.summary import ended_line, report_lines

    out, err = out or sys.stdout, err or sys.stderr
    where = spec.where
    optuna = spec.tune is not None and spec.tune.method == "optuna"
    if optuna and importlib.util.find_spec("optuna") is None:
        raise ValueError(
            f"tune.method optuna needs optuna, not installed: {INSTALL} (or method: grid / random)"
        )
    groups = build_groups(spec)  # for optuna: the space's corner configs, checked, never run
    trials, n_trials = trial_runs(groups), spec.tune.samples if optuna else len(groups[0].trials)
    plan1 = make_plan(spec, [] if optuna else trials, max_retries)  # the folder's identity first
    check_validation_split(groups, where)
    check_pooling(groups, where)
    validate_runs(trials, where)
    grid = build_runs(spec)
    if optuna:  # the journal's trials (its space checked), if there is one
        Search(spec, groups, plan1.folder)
    seeds = tune_seeds(spec)
    print(
        f"stage 1, tuning on the validation split: {n_trials} trial(s) "
        f"({spec.tune.method}) x {len(seeds)} seed(s) ({', '.join(map(str, seeds))}) x {len(groups)} group(s), "
        f"scored by the {spec.tune.metric} validation return",
        file=out,
    )
    if optuna:
        print(
            f"  proposed by Optuna's TPE (seed {spec.tune.seed}), each as a worker frees"
            + (f", at most {spec.tune.batch} in flight" if spec.tune.batch else "")
            + f"; journal {plan1.folder / TUNE_FOLDER / JOURNAL} ({sum(len(g.trials) for g in groups)} "
            f"trial(s) in it); the space's corner configs are checked: {', '.join(g.name for g in groups)}",
            file=out,
        )
    else:
        print(plan1.text(), file=out)
    print(
        f"stage 2, the best config on the grid: {len(grid)} run(s), about "
        f"{sum(r.config.timesteps for r in grid):,} environment steps, each grid point with its group's "
        "best trial's values, once every trial is complete:",
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
    _record(plan1, None, command)
    kwargs = {"workers": workers, "max_retries": max_retries, "stream": err, "progress": progress}
    if optuna:
        search = Search(spec, groups, plan1.folder, create=True, out=out)
        plan1 = Plan(spec, plan1.folder, search.decisions)  # grows as trials are asked
        first = Plan(spec, plan1.folder, search.start(max_retries))

        def more(outcome: Any, free: int) -> list[Decision]:
            new = search.more(outcome, free, max_retries)
            if new:
                _record(plan1, None, command)
            return new

        outcome = runner(first, command=command, more=more, **kwargs)
        search.settle(outcome)
    else:
        outcome = runner(plan1, command=command, **kwargs)
    print(ended_line("stage 1 (trials)", outcome, plan1.decisions), file=out)
    if outcome.stopped:
        print(f"stopped: run the same command again to resume ({rerun})", file=out)
        return 130
    failed = sorted(_kept(plan1) | set(outcome.failed))
    results = score_groups(groups, plan1.folder, spec.tune.metric, final=set(failed))
    print(tuning_table(results, spec.tune.metric), file=out)
    print(f"tuning: {write_tuning(spec, plan1.folder, results)}", file=out)
    pending = sum(r["pending"] for r in results)
    lost = [r["group"] for r in results if r["best"] is None]
    if pending:
        print(
            f"stage 2 waits: {pending} trial(s) not complete (running elsewhere?); run again later", file=out
        )
    elif lost:
        print(f"tuning for {', '.join(lost)}: no trial completed, so there is no best to run", file=out)
    else:
        for result in results:
            values = ", ".join(f"{k}={_show(v)}" for k, v in result["best"]["values"].items())
            print(
                f"best for {result['group']}: {result['best']['name']} ({values}), validation "
                f"{result['best']['score']:.2f}",
                file=out,
            )
        runs2 = best_runs(spec, results)
        plan2 = make_plan(spec, runs2, max_retries)
        validate_runs(runs2, where)
        print("stage 2, the best config on the grid:", file=out)
        print(plan2.text(), file=out)
        _record(plan1, plan2, command)
        outcome = runner(plan2, command=command, **kwargs)
        print(ended_line(f"sweep {spec.name!r}", outcome, plan2.decisions), file=out)
        failed += outcome.failed + sorted(_kept(plan2))
    for name in failed:
        print(f"  failed: {name} (log: {log_path(plan1.folder, name)})", file=out)
    if pending or lost or outcome.stopped:
        if outcome.stopped:
            print(f"stopped: run the same command again to resume ({rerun})", file=out)
        return 130 if outcome.stopped else 1
    if report:
        print("\n".join(report_lines(plan2, reps=reps, plots=plots)), file=out)
    return 1 if failed else 0


__all__ = ["JOURNAL", "TUNE_FOLDER", "TUNING_FILE", "Group", "Search", "Trial", "build_groups", "run_tune"]
