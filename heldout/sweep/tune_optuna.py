"""``tune: {method: optuna}``: trials proposed by Optuna's TPE through Ray Tune's ``OptunaSearch``.

Ray Tune's searchers are ask/tell objects (``suggest(trial_id)``, ``on_trial_complete(trial_id,
result)``); heldout uses them as such and keeps running the trials itself, as ordinary sweep runs on
either backend, so trials get the sweep's run folders, checkpoints, retries and resume. Each group
(:class:`heldout.sweep.tune.Group`) has its own searcher, seeded with ``tune.seed``. Round by round,
each searcher proposes ``batch`` trials (``trial-000``, ...), their runs are planned, checked and
run, and each trial's validation score (:mod:`heldout.sweep.tune_score`; a failed trial as an
error) is told to its searcher before the next round is proposed.

Resume: the searchers are rebuilt from the seed and told the scores the run folders hold, round by
round, so the same command proposes the same trials again (complete ones are skipped) and goes on
where it stopped. Sources: Akiba et al. 2019, "Optuna: A Next-generation Hyperparameter
Optimization Framework" (KDD); Bergstra et al. 2011, "Algorithms for Hyper-Parameter Optimization"
(NeurIPS, TPE); Liaw et al. 2018, "Tune" (Ray Tune).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from heldout.sweep.tune_spec import DIGITS, Range, TuneSpec

INSTALL = "pip install 'heldout[ray]'"


def check_available() -> None:
    """Raises ValueError (one line) unless Ray Tune and Optuna are importable (checked without
    importing them)."""
    missing = [name for name in ("ray", "optuna") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(
            f"tune.method optuna needs {' and '.join(missing)}, not installed: {INSTALL} "
            "(or method: grid / random, which need nothing more)"
        )


def ray_space(tune: TuneSpec) -> dict[str, Any]:
    """The space in Ray Tune's terms: a list is ``tune.choice``; a range ``tune.uniform`` /
    ``loguniform``, or with ``int`` ``randint`` / ``lograndint`` over ``[low, high]``."""
    from ray import tune as ray_tune

    space: dict[str, Any] = {}
    for key, values in tune.space.items():
        if not isinstance(values, Range):
            space[key] = ray_tune.choice(list(values))
        elif values.int:
            make = ray_tune.lograndint if values.log else ray_tune.randint
            space[key] = make(int(values.low), int(values.high) + 1)
        else:
            space[key] = (ray_tune.loguniform if values.log else ray_tune.uniform)(values.low, values.high)
    return space


class Proposer:
    """One seeded Ray Tune ``OptunaSearch`` per group, used as ask/tell."""

    def __init__(self, tune: TuneSpec, groups: list[str]) -> None:
        check_available()
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
        self.tune = tune
        self._searchers = {
            key: OptunaSearch(space=ray_space(tune), metric="score", mode="max", seed=tune.seed)
            for key in groups
        }

    def ask(self, group: str, name: str) -> dict[str, Any]:
        """The next trial's values for ``group`` (rounded as random draws are)."""
        values = self._searchers[group].suggest(name)
        if values is None:
            raise RuntimeError(f"Optuna proposed no trial for {name}")
        out: dict[str, Any] = {}
        for key in self.tune.space:
            value = values[key]
            space = self.tune.space[key]
            if isinstance(space, Range) and not space.int:
                value = float(f"{float(value):.{DIGITS}g}")
            elif isinstance(space, Range):
                value = int(value)
            out[key] = value.item() if hasattr(value, "item") else value
        return out

    def tell(self, group: str, name: str, score: float | None) -> None:
        """The trial's validation score (None: it failed)."""
        searcher = self._searchers[group]
        if score is None:
            searcher.on_trial_complete(name, None, error=True)
        else:
            searcher.on_trial_complete(name, {"score": float(score)})


__all__ = ["INSTALL", "Proposer", "check_available", "ray_space"]
