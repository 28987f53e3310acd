"""``heldout stats FILE.json``: aggregates and probabilities of improvement of a scores file in the
published layout ``{agent: {game: [one score per run]}}`` (ours, as ``heldout report`` writes it, or
the published runs'), following Agarwal et al. (2021)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from heldout.analysis import stats as S


def _with_constants(
    scores: Mapping[str, Mapping[str, Sequence[float]]], mode: str
) -> tuple[dict[str, dict[str, Sequence[float]]], list[str]]:
    """The games of ``scores`` that have ``mode`` normalisation constants, and notes on what was left out.

    Raises:
        ValueError: Unknown ``mode``, or no game of the file has constants (names the games and the
            games with constants).
    """
    from heldout.envs import SCORE_RANGES

    if mode not in SCORE_RANGES:
        raise ValueError(f"unknown --mode {mode!r}; valid modes: {', '.join(SCORE_RANGES)}")
    ranges = SCORE_RANGES[mode]
    unknown = sorted({g for per in scores.values() for g in per if g not in ranges})
    usable = {a: {g: v for g, v in per.items() if g in ranges} for a, per in scores.items()}
    usable = {a: per for a, per in usable.items() if per}
    if not usable:
        raise ValueError(
            f"no game of this file has {mode} normalisation constants ({', '.join(unknown)}); "
            f"games with constants: {', '.join(sorted(ranges))}"
        )
    notes = []
    if unknown:
        notes.append(f"left out, no {mode} normalisation constants: {', '.join(unknown)}")
    dropped = [a for a in scores if a not in usable]
    if dropped:
        notes.append(f"left out, no game with {mode} constants: agent(s) {', '.join(dropped)}")
    return usable, notes


def scores_file_stats(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    mode: str = "easy",
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[dict[str, dict[str, S.Estimate]], dict[tuple[str, str], S.Estimate], list[str], list[str]]:
    """Aggregates and pairwise probabilities of improvement for a file in the published layout.

    Uses the games every agent ran, min-max normalised with the ``mode`` constants, as the published
    comparisons do. What ``heldout report`` exports is accepted as it is: games without constants
    (non-Procgen envs) are left out, and agents with no game in common are each aggregated over their
    own games (as the report does) without a probability of improvement; ``notes`` says so.

    Returns:
        ``(aggregates {agent: {metric: Estimate}}, {(x, y): P(X > Y)}, common games, notes)``.

    Raises:
        ValueError: Unknown ``mode``, or no game of the file has normalisation constants.
    """
    from heldout.protocol.checks import check_int, check_seed

    check_int("--reps", reps, minimum=1)
    check_seed("--seed", seed)
    usable, notes = _with_constants(scores, mode)
    games = S.common_tasks(usable)
    if games:
        left = sorted({g for per in usable.values() for g in per} - set(games))
        if left:
            notes.append(f"left out, not run by every agent: {', '.join(left)}")
        games_of = {a: games for a in usable}
    else:
        notes.append(
            "the agents have no game in common: each agent's aggregate is over its own games (not "
            "comparable between agents), and there is no probability of improvement"
        )
        games_of = {a: sorted(per) for a, per in usable.items()}
    matrices = {
        a: S.score_matrix(S.min_max_normalize({g: usable[a][g] for g in gs}, mode), gs)
        for a, gs in games_of.items()
    }
    agg = S.aggregate_estimates(matrices, S.METRICS, reps, seed, confidence)
    agents = list(usable) if games else []
    poi = {
        (x, y): S.probability_of_improvement_ci(matrices[x], matrices[y], reps, seed, confidence)
        for i, x in enumerate(agents)
        for y in agents[i + 1 :]
    }
    return agg, poi, games, notes


def check_reference(scores: Mapping[str, Any], reference: str) -> str:
    """``reference`` checked to be an agent of a scores file; ValueError naming the file's agents."""
    if reference not in scores:
        import difflib

        close = difflib.get_close_matches(reference, list(scores), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"--reference {reference!r} is not an agent of the file{hint}; agents: {', '.join(scores)}"
        )
    return reference


def reference_normalized_means(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    reference: str,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    games: Sequence[str] | None = None,
) -> dict[str, S.Estimate]:
    """Each agent's mean over common games of return / the reference's mean return ("% of PPO").

    Args:
        games: The games to average over (e.g. those of the aggregates); default: the games every
            agent ran. Where there are none, each agent is compared on the games it shares with the
            reference; an agent sharing none has no entry.
    """
    check_reference(scores, reference)
    common = list(games) if games else S.common_tasks(scores)
    out = {}
    for agent, per in scores.items():
        used = common or sorted(set(per) & set(scores[reference]))
        if not used:
            continue
        rel = S.reference_normalize({g: per[g] for g in used}, scores[reference])
        out[agent] = S.bootstrap_ci(S.score_matrix(rel, used), S.aggregate_mean, reps, seed, confidence)
    return out


def format_scores_file_stats(
    agg: Mapping[str, Mapping[str, S.Estimate]],
    poi: Mapping[tuple[str, str], S.Estimate],
    games: Sequence[str],
    mode: str,
    reps: int,
    seed: int,
    relative: Mapping[str, S.Estimate] | None = None,
    reference: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The text table ``heldout stats`` prints (with ``relative``: a "% of <reference>" column).

    ``notes`` (from :func:`scores_file_stats`) are printed after the table, one ``note:`` line each.
    """
    runs = "95% stratified-bootstrap CIs"
    games_text = f" x {len(games)} games" if games else ", no game in common"
    lines = [
        f"{len(agg)} agents{games_text}, min-max normalised ({mode}); {runs}, {reps} resamples, seed {seed}",
        "",
    ]
    header = ["agent", "mean", "median", "IQM", "optimality gap"]
    rows = [[a] + [e[m].format(3) for m in S.METRICS] for a, e in agg.items()]
    if relative is not None:
        header.append(f"% of {reference} (mean)")
        for row in rows:
            e = relative.get(row[0])
            if e is None:  # no game in common with the reference
                row.append("-")
                continue
            pct_ci = None if e.ci is None else (100 * e.ci[0], 100 * e.ci[1])
            row.append(S.Estimate(100 * e.value, pct_ci).format(0))
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if poi:
        lines += ["", "probability of improvement P(X > Y), averaged over games:"]
        width = max(len(f"P({x} > {y})") for x, y in poi)
        for (x, y), e in poi.items():
            lines.append(f"  {f'P({x} > {y})'.ljust(width)}  {e.format(3)}")
    if notes:
        lines += ["", *(f"note: {n}" for n in notes)]
    return "\n".join(lines)
