"""Scoring a tuning trial from its runs' **validation** results, and only those.

Hyper-parameters chosen on the test levels make the test an optimistic estimate of generalization:
the test set must stay held out of every decision (Cobbe et al. 2020, "Leveraging Procedural
Generation to Benchmark Reinforcement Learning", ICML, tune on levels outside the test set; Kirk et
al. 2023, "A Survey of Zero-shot Generalisation in Deep Reinforcement Learning", JAIR, section 4).
So a trial's score is read from one file per run, ``eval/validation.csv`` (one row per validation
episode, written by :func:`heldout.protocol.run.run_train`), and from nothing else of the run folder:
not ``summary.json``, not ``eval/test.csv``. A run without that file makes the scorer raise; it
never falls back to another split.

Metrics over the trial's runs:

* ``mean``: the mean over runs of each run's mean validation return.
* ``iqm``: the interquartile mean (25% trimmed mean) of all the runs' validation episode returns
  pooled (Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical
  Precipice", NeurIPS), robust to a few outlying episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The only split a trial is scored on, and the one file per run the score is read from.
SCORED_SPLIT = "validation"
SCORED_FILE = Path("eval") / f"{SCORED_SPLIT}.csv"


@dataclass(frozen=True)
class TrialScore:
    """A trial's score and what it was made of.

    Attributes:
        score: The metric over the trial's runs.
        per_run: Each run's mean validation return, in the order of the runs.
        episodes: Validation episodes over all runs.
    """

    score: float
    per_run: list[float]
    episodes: int


def validation_returns(run_dir: str | Path) -> list[float]:
    """The validation episode returns of the run folder ``run_dir`` (``eval/validation.csv``).

    Raises:
        ValueError: the run has no validation results (no file, or no episode in it); the message
            says that tuning reads no other split.
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
        result = EvalResult.from_csv(path.read_text(), SCORED_SPLIT)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"run {str(run_dir)!r}: cannot read {SCORED_FILE}: {exc}") from None
    returns = [float(r) for r in result.returns]
    if not returns:
        raise ValueError(f"run {str(run_dir)!r}: {SCORED_FILE} holds no episode")
    return returns


def score_trial(run_dirs: Sequence[str | Path], metric: str = "mean") -> TrialScore:
    """The score of a trial whose runs are ``run_dirs``, from their validation results only.

    Raises:
        ValueError: a run without validation results (:func:`validation_returns`), no run, or an
            unknown metric.
    """
    import numpy as np

    if not run_dirs:
        raise ValueError("a trial with no run has no score")
    returns = [validation_returns(d) for d in run_dirs]
    per_run = [float(np.mean(r)) for r in returns]
    if metric == "mean":
        score = float(np.mean(per_run))
    elif metric == "iqm":
        from heldout.analysis.stats import aggregate_iqm

        pooled = np.asarray([x for r in returns for x in r], dtype=float)
        score = float(aggregate_iqm(pooled.reshape(-1, 1)))
    else:
        raise ValueError(f"unknown tuning metric {metric!r}; valid: mean, iqm")
    return TrialScore(score=score, per_run=per_run, episodes=sum(len(r) for r in returns))


def best_of(scores: Sequence[float | None]) -> int | None:
    """The index of the highest score (the first of equal ones); None scores (failed trials) are out.
    None when no trial has a score."""
    best = None
    for i, s in enumerate(scores):
        if s is not None and (best is None or s > scores[best]):  # type: ignore[operator]
            best = i
    return best


__all__ = ["SCORED_FILE", "SCORED_SPLIT", "TrialScore", "best_of", "score_trial", "validation_returns"]
