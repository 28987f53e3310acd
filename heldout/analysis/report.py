"""``heldout report``: tables, confidence intervals and plots from run folders.

:func:`write_report` writes what ``heldout report RUN_DIR... --out DIR`` does: run folders grouped by
env and agent (:mod:`heldout.analysis.runs`), per-game train/test returns with CIs over seeds and the
generalization gap, aggregate normalised scores (mean, median, IQM, optimality gap) with
stratified-bootstrap CIs, probability of improvement between agents, the published Procgen figures
beside ours (:mod:`heldout.analysis.published`), PNG plots (:mod:`heldout.analysis.plots`), CSV tables
and the per-run scores in the published JSON layout, which ``heldout stats`` reads
(:mod:`heldout.analysis.scores_file`).

Statistics follow Agarwal et al. (2021), "Deep RL at the Edge of the Statistical Precipice" (see
:mod:`heldout.analysis.stats`). The names of the modules this one was split into are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heldout.analysis import stats as S
from heldout.analysis.contexts import ContextResults, _range_text, context_results, per_context_rows
from heldout.analysis.experiment import split_text
from heldout.analysis.published import (  # noqa: F401
    PUBLISHED_AGENTS,
    closest_budget,
    published_comparison,
    published_returns,
)
from heldout.analysis.runs import (  # noqa: F401
    PUBLISHED_PROTOCOL,
    REPORT_SPLITS,
    RunRecord,
    _by_game,
    agent_labels,
    find_run_folders,
    group_runs,
    is_run_folder,
    load_run_record,
    one_run_per_seed,
    per_run_scores,
    scan_run_folders,
    steps_label,
)
from heldout.analysis.scores_file import (  # noqa: F401
    check_reference,
    format_scores_file_stats,
    reference_normalized_means,
    scores_file_stats,
)
from heldout.analysis.text import ci_cols, csv_text, est_text, md_table
from heldout.protocol.tables import _fmt, context_table, split_table  # noqa: F401

#: Fewer runs than this on a game and the report warns that its CIs are unreliable (Agarwal et al.,
#: 2021, recommend at least 5 runs per task; percentile-bootstrap CIs from fewer are too narrow).
FEW_RUNS = 5


def small_sample_warnings(groups: Mapping[str, Mapping[str, Sequence[RunRecord]]]) -> list[str]:
    """The report's cautions about run counts, each independent of the other, as markdown lines.

    - a game with fewer than :data:`heldout.analysis.stats.MIN_RUNS_FOR_CI` runs gets no CI;
    - a game with fewer than :data:`FEW_RUNS` runs gets CIs too narrow to trust (this one holds
      whenever the first does: a single run is fewer than 5 too).
    """
    counts = {(label, env): len(rs) for label, envs in groups.items() for env, rs in envs.items()}
    if not counts:
        return []
    out = []
    n_min = min(counts.values())
    if n_min < S.MIN_RUNS_FOR_CI:
        out.append(
            f"**Too few seeds for a confidence interval** where a game has fewer than {S.MIN_RUNS_FOR_CI} "
            'runs: those cells give the point estimate only ("n=1, no CI").'
        )
    cells = sum(1 for n in counts.values() if n < FEW_RUNS)
    if cells:
        out.append(
            f"**Fewer than {FEW_RUNS} runs** on {cells} of {len(counts)} (agent, game) cell(s) (as few as "
            f"{n_min}): percentile-bootstrap CIs from so few runs tend to be too narrow; read them as a "
            f"lower bound on the uncertainty and train at least {FEW_RUNS} seeds per game before comparing "
            "agents."
        )
    return out


@dataclass
class Report:
    """Everything :func:`write_report` computed: tables (header, rows), the files it wrote, warnings.

    ``warnings`` holds the report's cautions (too few runs for a CI, or for a reliable one), one line
    each, as ``report.md`` states them; ``heldout report`` prints them too.
    """

    markdown: str
    tables: dict[str, tuple[list[str], list[list[Any]]]]
    files: list[Path]
    warnings: list[str] = field(default_factory=list)


def _per_game(
    groups: Mapping[str, Mapping[str, Sequence[RunRecord]]], reps: int, seed: int, confidence: float
) -> tuple[list[str], list[list[Any]], list[list[str]]]:
    header = [
        "game", "agent", "seeds", "steps", "distribution_mode", "num_levels",
        "train_mean", "train_ci_low", "train_ci_high", "test_mean", "test_ci_low", "test_ci_high",
        "gap_mean", "gap_ci_low", "gap_ci_high", "train_normalized", "test_normalized",
        "kind", "experiment", "split",
    ]  # fmt: skip
    rows, md = [], []
    for env, label, runs in _by_game(groups):
        n = len(runs)
        train = [r.mean("train") for r in runs]
        test = [r.mean("test") for r in runs]
        tr = S.mean_ci_over_seeds(train, reps, seed, confidence) if None not in train else None
        te = S.mean_ci_over_seeds(test, reps, seed, confidence)
        gap = (
            S.mean_ci_over_seeds([a - b for a, b in zip(train, test)], reps, seed, confidence) if tr else None
        )
        mode = runs[0].distribution_mode
        ntr = S.normalized_score(env, mode, tr.value) if tr else None
        nte = S.normalized_score(env, mode, te.value)
        steps = sorted({r.timesteps for r in runs})
        steps_text = ", ".join(steps_label(s) for s in steps)
        levels = runs[0].kind == "levels"  # a contextual run has no distribution mode or levels
        ident = runs[0].experiment
        rows.append(
            [env, label, n, max(steps), mode if levels else None, runs[0].num_levels if levels else None,
             *ci_cols(tr), *ci_cols(te), *ci_cols(gap), ntr, nte, runs[0].kind, ident.key, split_text(ident)]
        )  # fmt: skip
        md.append(
            [env, label, str(n), steps_text, est_text(tr, n=n), est_text(te, n=n), est_text(gap, n=n),
             _fmt(ntr, 3), _fmt(nte, 3)]
        )  # fmt: skip
    return header, rows, md


def _normalised_matrices(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    groups: Mapping[str, Mapping[str, Sequence[RunRecord]]],
) -> tuple[dict[str, np.ndarray], dict[str, list[str]], dict[str, list[str]]]:
    """Min-max normalised runs x games matrices per agent over the games with published constants."""
    matrices, games_used, games_left = {}, {}, {}
    for label, per_game in scores.items():
        mode = next(iter(groups[label].values()))[0].distribution_mode
        ok = sorted(g for g in per_game if S.score_range(g, mode) is not None)
        games_left[label] = sorted(set(per_game) - set(ok))
        if ok:
            norm = S.min_max_normalize({g: per_game[g] for g in ok}, mode)
            matrices[label] = S.score_matrix(norm, ok)
            games_used[label] = ok
    return matrices, games_used, games_left


def write_report(
    run_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    reference: str | None = None,
    plots: bool = True,
    include_incomplete: bool = False,
) -> Report:
    """Writes ``report.md``, CSV tables, ``scores_{train,test}.json`` and PNG plots into ``out``.

    Args:
        run_dirs: Run folders, or folders holding run folders.
        out: Output folder (created).
        reps: Bootstrap replications for every CI.
        seed: Seed of the bootstrap generators.
        confidence: CI coverage.
        reference: An agent label to normalise by ("% of <reference>"); None: none.
        plots: Write the PNG plots (needs matplotlib).
        include_incomplete: Report the complete runs even where some given folders are not complete
            (running, interrupted, failed); they are listed as left out. Without it such folders are
            refused: an average over whichever seeds happened to finish is no result.

    A seed run twice for one experiment counts once (the run that finished last; the other is listed
    as left out).

    Raises:
        ValueError: A path is not a run folder, ``reference`` is not among the agents, bad ``reps``.
    """
    from heldout.protocol.checks import check_int, check_seed
    from heldout.protocol.run_folder import check_writable, write_atomic, write_json

    check_int("--reps", reps, minimum=1)
    check_seed("--seed", seed)
    found = scan_run_folders(run_dirs)
    paths = find_run_folders(run_dirs, include_incomplete)  # the same scan; raises on what it refuses
    runs, repeated = one_run_per_seed([load_run_record(p) for p in paths])
    groups = group_runs(runs)
    if reference is not None and reference not in groups:
        import difflib

        close = difflib.get_close_matches(reference, list(groups), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"--reference {reference!r} is not an agent of these runs{hint}; agents: {', '.join(groups)}"
        )
    out_dir = check_writable(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    md: list[str] = []
    pct = f"{100 * confidence:g}%"

    n_envs = len({r.env for r in runs})
    kinds = {r.kind for r in runs}
    row_labels = agent_labels(runs)
    n_experiments = len({r.experiment for r in runs})
    held_out = " or ".join(
        k
        for k, present in (
            ("held-out test levels", "levels" in kinds),
            ("held-out test contexts", "contexts" in kinds),
        )
        if present
    )
    md.append("# Generalization report\n")
    md.append(
        f"{len(runs)} run folder(s): {n_experiments} experiment(s) ({len(groups)} row label(s)) on "
        f"{n_envs} env(s). An experiment is everything a run's config fixes but its seed (env, split, "
        "ranges, options, budget, agent and hyper-parameters; docs/reports.md); its seeds make one row. "
        f"Every run trained on its training set and was evaluated zero-shot on {held_out} (one "
        "episode per item of a fixed list). A run's score on a split is the mean return of its "
        f"final-evaluation episodes; intervals are {pct} percentile-bootstrap CIs over runs (seeds), {reps} "
        f"resamples, seed {seed}; aggregates use the stratified bootstrap of Agarwal et al. (2021), "
        '"Deep RL at the Edge of the Statistical Precipice" (NeurIPS).\n'
    )
    experiments: dict[Any, list[RunRecord]] = {}
    for r in sorted(runs, key=lambda r: (r.env, row_labels[r.path], r.seed)):
        experiments.setdefault(r.experiment, []).append(r)
    exp_rows = []
    for ident, rs in experiments.items():
        presets = {r.preset for r in rs}
        exp_rows.append(
            [
                rs[0].env,
                row_labels[rs[0].path],
                "contexts" if ident.kind == "contexts" else "levels",
                split_text(ident),
                next(iter(presets)) or "-" if len(presets) == 1 else "several",
                f"{int(ident.value('timesteps')):,}",
                ", ".join(str(r.seed) for r in rs),
            ]
        )
    md.append("### Experiments\n")
    md.append(
        md_table(
            ["env", "row label", "kind", "split (train; test)", "preset", "steps (budget)", "seeds"], exp_rows
        )
        + "\n"
    )
    warnings = small_sample_warnings(groups)
    left_out = [f"`{path}`: {what}" for path, what in found.incomplete]
    left_out += [
        f"`{old.path}`: seed {old.seed} of {old.agent} on {old.env} again (`{new.path}` counts)"
        for old, new in repeated
    ]
    if left_out:
        warnings.append(
            f"**{len(left_out)} run folder(s) left out** (not complete, or a seed already counted): "
            "see 'Left out' below."
        )
    md.extend(f"{w}\n" for w in warnings)
    if left_out:
        md.append("### Left out\n")
        md.append("\n".join(f"- {line}" for line in left_out) + "\n")

    # per game
    header, rows, md_rows = _per_game(groups, reps, seed, confidence)
    tables["per_game"] = (header, rows)
    md.append("## Per env: train and test return\n")
    md.append(
        "One row per experiment. Mean over runs with its CI; gap = train − test return (positive: the agent "
        "does worse on unseen levels or contexts); normalised: min-max with the published Procgen constants "
        "(Cobbe et al., 2020; '-' for envs without them).\n"
    )
    md.append(
        md_table(
            [
                "env",
                "agent (experiment)",
                "runs",
                "steps",
                "train return",
                "test return",
                "gap",
                "norm. train",
                "norm. test",
            ],
            md_rows,
        )
        + "\n"
    )

    # per context (contextual experiments)
    context_results_: dict[str, list[ContextResults]] = {}
    experiments_key: dict[tuple[str, str], str] = {}
    ctx_header: list[str] = []
    ctx_rows: list[list[Any]] = []
    ctx_md: list[str] = []
    for env, label, rs in _by_game(groups):
        if rs[0].kind != "contexts":
            continue
        experiments_key[(env, label)] = rs[0].experiment.key
        res = context_results(env, label, rs, reps, seed, confidence)
        if res is None:
            continue
        context_results_.setdefault(env, []).append(res)
        ctx_header, rows_, md_rows_ = per_context_rows(res)
        ctx_rows += rows_
        ctx_md.append(f"### {env} / {label}\n")
        ctx_md.append(
            f"{res.mode} split; training range: "
            + "; ".join(f"{f} {_range_text(res.train_support[f])}" for f in res.features)
            + "; test range: "
            + "; ".join(f"{f} {_range_text(res.test_support[f])}" for f in res.features)
            + f"; {res.runs} run(s).\n"
        )
        ctx_md.append(
            md_table(
                ["split", "feature", "bin", "episodes/run", "mean return", "gap (train − bin)"], md_rows_
            )
            + "\n"
        )
    if ctx_md:
        tables["per_context"] = (ctx_header, ctx_rows)
        md.append("## Per context: return by context feature\n")
        md.append(
            "For each contextual experiment and each context feature its evaluation varies: each split's "
            "equal-width bins over its range (`context_bins`), the mean over runs of each run's mean return "
            f"in the bin with its {pct} CI over runs, and for held-out bins the gap: a run's mean return on "
            "its whole training evaluation minus its return in the bin (positive: worse than on the "
            "training distribution). The plots below show the same bins, the training range shaded.\n"
        )
        md.extend(ctx_md)

    # aggregates
    scores_test = per_run_scores(groups, "test")
    scores_train = per_run_scores(groups, "train")
    agg_header = ["agent", "split", "games", "runs_per_game", "metric", "value", "ci_low", "ci_high"]
    agg_rows: list[list[Any]] = []
    agg_est: dict[str, dict[str, dict[str, S.Estimate]]] = {}
    agg_matrices: dict[str, np.ndarray] = {}
    agg_games: dict[str, list[str]] = {}
    md.append("## Aggregate normalised scores\n")
    md_agg: list[list[str]] = []
    games_note: list[str] = []
    for split, scores in (("test", scores_test), ("train", scores_train)):
        matrices, used, left = _normalised_matrices(scores, groups)
        est = S.aggregate_estimates(matrices, S.METRICS, reps, seed, confidence) if matrices else {}
        agg_est[split] = est
        if split == "test":
            agg_matrices, agg_games = matrices, used
        for label, e in est.items():
            counts_ = S.runs_per_task(matrices[label])
            runs_text = (
                str(int(counts_.min()))
                if counts_.min() == counts_.max()
                else f"{counts_.min()}-{counts_.max()}"
            )
            for m in S.METRICS:
                agg_rows.append([label, split, len(used[label]), runs_text, m, *ci_cols(e[m])])
            n_min = int(counts_.min())
            md_agg.append(
                [label, split, str(len(used[label])), runs_text]
                + [est_text(e[m], 3, n=n_min if n_min < S.MIN_RUNS_FOR_CI else None) for m in S.METRICS]
            )
        if split == "test":
            for label, gl in left.items():
                if gl:
                    games_note.append(f"{label}: {', '.join(gl)} (no published normalisation constants)")
    tables["aggregate"] = (agg_header, agg_rows)
    if md_agg:
        md.append(
            "Over the games each agent ran, min-max normalised per game (1.0 = the published maximum); "
            "mean and median of per-game means, IQM (25% trimmed mean of all runs of all games) and "
            f"optimality gap (mean shortfall below 1.0; lower is better), each with its {pct} stratified-"
            "bootstrap CI. Compare agents on the same games only.\n"
        )
        md.append(
            md_table(
                ["agent", "split", "games", "runs/game", "mean", "median", "IQM", "optimality gap"], md_agg
            )
            + "\n"
        )
    else:
        md.append("No game of these runs has published normalisation constants: no aggregate.\n")
    if games_note:
        md.append("Left out of the aggregates: " + "; ".join(games_note) + ".\n")

    if reference is not None:
        md.append(f"### Scores as a fraction of {reference}\n")
        ref_rows = []
        for label, per_game in scores_test.items():
            common = sorted(set(per_game) & set(scores_test[reference]))
            if not common:
                continue
            rel = S.reference_normalize({g: per_game[g] for g in common}, scores_test[reference])
            e = S.bootstrap_ci(S.score_matrix(rel, common), S.aggregate_mean, reps, seed, confidence)
            ref_rows.append(
                [
                    label,
                    str(len(common)),
                    est_text(S.Estimate(100 * e.value, e.ci and (100 * e.ci[0], 100 * e.ci[1])), 0) + " %",
                ]
            )
            tables.setdefault("reference_normalized", (["agent", "games", "mean_fraction", "ci_low", "ci_high"], []))[1].append(
                [label, len(common), *ci_cols(e)]
            )  # fmt: skip
        md.append(
            f"Test return divided by {reference}'s mean test return on the same game, averaged over games.\n"
        )
        md.append(md_table(["agent", "games", f"% of {reference}"], ref_rows) + "\n")

    # probability of improvement
    labels = list(scores_test)
    poi_rows: list[list[Any]] = []
    md_poi: list[list[str]] = []
    for i, x in enumerate(labels):
        for y in labels[i + 1 :]:
            common = sorted(set(scores_test[x]) & set(scores_test[y]))
            if not common:
                continue
            mx, my = S.score_matrix(scores_test[x], common), S.score_matrix(scores_test[y], common)
            e = S.probability_of_improvement_ci(mx, my, reps, seed, confidence)
            n_min = int(min(S.runs_per_task(mx).min(), S.runs_per_task(my).min()))
            poi_rows.append([x, y, len(common), *ci_cols(e)])
            md_poi.append([x, y, str(len(common)), est_text(e, 2, n=n_min if e.ci is None else None)])
    tables["probability_of_improvement"] = (["x", "y", "games", "p_x_better", "ci_low", "ci_high"], poi_rows)
    if len(labels) < 2:
        md.append("## Probability of improvement\n")
        md.append("One agent only: no probability of improvement between agents.\n")
    elif not md_poi:
        md.append("## Probability of improvement\n")
        md.append("No two agents ran a game in common: no probability of improvement.\n")
    if md_poi:
        md.append("## Probability of improvement (test return)\n")
        md.append(
            "P(X > Y): the probability that a run of X beats a run of Y on the same game (ties count 1/2), "
            "averaged over the games both ran; 0.5 means no difference. CIs from independent stratified "
            "bootstraps of X and Y.\n"
        )
        md.append(md_table(["X", "Y", "games", "P(X > Y)"], md_poi) + "\n")

    # published comparison
    pub_rows, pub_md, pub_notes = published_comparison(groups)
    tables["published_comparison"] = pub_rows
    if pub_md:
        md.append("## Beside the published Procgen runs (easy, 200 levels)\n")
        md.append("\n".join(pub_notes) + "\n")
        md.append(pub_md + "\n")

    # exports
    written = []
    for split, scores in (("test", scores_test), ("train", scores_train)):
        if scores:  # no run evaluated on the split: no file (an empty one would hold no scores)
            files.append(write_json(out_dir / f"scores_{split}.json", scores))
            written.append(f"`scores_{split}.json`")
    modes = sorted({r.distribution_mode for r in runs})
    mode_flag = f" --mode {modes[0]}" if len(modes) == 1 and modes[0] != "easy" else ""
    md.append("## Files\n")
    md.append(
        f"- {', '.join(written)}: per-run mean returns in the published layout "
        f"`{{agent: {{game: [one score per run]}}}}`; `heldout stats scores_test.json{mode_flag}` gives the "
        "aggregate table for them (and works on the published runs alike).\n"
        "- CSV tables: " + ", ".join(f"`{n}.csv`" for n in tables) + ".\n"
    )

    # plots
    if plots:
        from heldout.analysis import plots as P

        figs: list[tuple[str, Path]] = []
        for env in sorted({r.env for r in runs}):
            by_agent = {label: envs[env] for label, envs in groups.items() if env in envs}
            if any(r.curve for rs in by_agent.values() for r in rs):
                figs.append(
                    (
                        f"Learning curves, {env}: train (solid) vs test (dashed) return, mean over runs (band: min to max)",
                        P.learning_curves(
                            env,
                            by_agent,
                            out_dir / f"curves_{env}.png",
                            title=None
                            if any(rs and rs[0].kind == "levels" for rs in by_agent.values())
                            else f"{env}: return on train (solid, filled) vs test (dashed, open) contexts",
                        ),
                    )
                )
            by_agent_levels = {a: rs for a, rs in by_agent.items() if rs and rs[0].kind == "levels"}
            if by_agent_levels:
                figs.append(
                    (
                        f"Per-level returns, {env}: train vs test levels",
                        P.level_histograms(env, by_agent_levels, out_dir / f"levels_{env}.png"),
                    )
                )
            for res in context_results_.get(env, []):
                slug = experiments_key[(env, res.label)]
                figs.append(
                    (
                        f"Return by context, {env} / {res.label}: train vs test, training range shaded",
                        P.context_plot(res, out_dir / f"contexts_{env}_{slug}.png", confidence),
                    )
                )
                if res.grid is not None:
                    fx, fy = res.grid["features"]
                    figs.append(
                        (
                            f"Return over {fx} x {fy}, {env} / {res.label}: training boxes solid, test dashed",
                            P.context_grid_plot(res, out_dir / f"contexts_grid_{env}_{slug}.png"),
                        )
                    )
        if agg_est.get("test"):
            figs.append(
                (
                    f"Aggregate normalised test scores with {pct} CIs",
                    P.interval_plot(agg_est["test"], out_dir / "aggregate_test.png"),
                )
            )
        if agg_matrices:
            # from below the lowest score (barely trained runs score under the published minimum, < 0)
            # to above the highest, so every profile falls from 1 to 0 inside the plot
            low = min(0.0, min(float(np.nanmin(m)) for m in agg_matrices.values()))
            high = max(1.0, max(float(np.nanmax(m)) for m in agg_matrices.values()))
            taus = np.linspace(low - 0.02 * (high - low) if low < 0 else 0.0, high, 101)
            profiles = {
                a: S.performance_profile(m, taus, reps, seed, confidence) for a, m in agg_matrices.items()
            }
            n_games = len({g for gs in agg_games.values() for g in gs})
            title = f"Performance profile: normalised test scores, {n_games} game(s) (band: {pct} CI)"
            figs.append(("Performance profiles of normalised test scores", P.performance_profiles(profiles, taus, out_dir / "profile_test.png", title)))  # fmt: skip
        if pub_rows[1]:
            figs.append(
                (
                    "Test return beside the published runs",
                    P.published_bars(pub_rows, out_dir / "published_comparison.png"),
                )
            )
        md.append("## Plots\n")
        for title, path in figs:
            files.append(path)
            md.append(f"### {title}\n\n![{title}]({path.name})\n")  # fmt: skip

    md.append("## Run folders\n")
    md.append("\n".join(f"- `{r.path}` ({r.env}, {row_labels[r.path]}, seed {r.seed})" for r in runs) + "\n")

    for name, (header_, rows_) in tables.items():
        files.append(write_atomic(out_dir / f"{name}.csv", csv_text(header_, rows_)))
    text = "\n".join(md)
    files.insert(0, write_atomic(out_dir / "report.md", text))
    return Report(text, tables, files, warnings)
