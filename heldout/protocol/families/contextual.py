"""Contextual gymnasium envs (CARL-style physics contexts) as an env family.

Contexts are dicts of physics features (Benjamins et al. 2023, "Contextualize Me", TMLR; Kirk et al.
2023, JAIR); splits are :class:`~heldout.splits.ContextSplit` (interpolation / extrapolation /
combinatorial); evaluation lists are fixed ``(context, reset seed)`` pairs; the training env is SB3's
``DummyVecEnv`` of the gymnasium env drawing a fresh training context per reset; summaries break
returns down by context bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from heldout.protocol.checks import shown
from heldout.protocol.evaluate import EVAL_LIST_SEED, EvalResult, Progress, evaluate_contexts
from heldout.protocol.families.base import (
    EnvFamily,
    eval_wrappers,
    resolve_schedules,
    slot_env_factory,
    train_vec_env,
)
from heldout.splits import ContextSplit

if TYPE_CHECKING:
    from heldout.protocol.config import TrainConfig

#: Visible-context modes: hidden (default), a concatenated vector, or a Dict observation.
VISIBLE_CONTEXT_MODES: tuple[str, ...] = ("hidden", "concat", "dict")

#: What a visible context is scaled by: the run's training distribution, or the declared bounds.
VISIBLE_CONTEXT_SCALES: tuple[str, ...] = ("training", "bounds")


def make_contextual_env(
    name: str,
    visible_context: str = "hidden",
    contexts: Any = None,
    context: dict[str, float] | None = None,
    scale: dict[str, tuple[float, float]] | None = None,
    **kwargs: Any,
) -> Any:
    """``gymnasium.make`` of the contextual family ``name`` (its time limit included), with the
    context added to observations if ``visible_context`` is ``"concat"`` or ``"dict"`` (normalised
    over ``scale``'s ranges where given, else the declared bounds; see
    :class:`heldout.wrappers.observation.VisibleContext`)."""
    import gymnasium

    from heldout.envs import CONTEXTUAL_ENVS

    cls = CONTEXTUAL_ENVS.get(name)
    if visible_context not in VISIBLE_CONTEXT_MODES:
        raise ValueError(
            f"unknown visible_context {visible_context!r}; valid: {', '.join(VISIBLE_CONTEXT_MODES)}"
        )
    env = gymnasium.make(cls.env_id, contexts=contexts, context=context, **kwargs)
    if visible_context != "hidden":
        from heldout.wrappers.observation import VisibleContext

        env = VisibleContext(env, mode=visible_context, scale=scale)
    return env


def evaluation_contexts(
    dist: Any, space: Any, episodes: int, seed: int = EVAL_LIST_SEED, bins: int = 5
) -> list[dict[str, Any]]:
    """The fixed evaluation list of a context distribution: ``episodes`` items ``{"context": full
    context, "seed": reset seed}``, drawn with a fixed generator (the same for every run and agent).

    An explicit list of contexts (:meth:`~heldout.contexts.ContextDistribution.finite_contexts`) is
    not sampled but shared out: each context gets its weight's share of the episodes (equal weights:
    the same number, give or take one when ``episodes`` is not a multiple; largest remainders), spread
    evenly through the list, so every prefix (the periodic evaluations take one) is balanced too.

    Ranges are stratified (:func:`stratified_contexts`): each of the ``bins`` equal-width bins of a
    uniform feature over the distribution's range (the bins of ``summary.json``'s ``by_context``) gets
    its share of the episodes, ``episodes / bins`` give or take one for a single range.
    """
    rng = np.random.default_rng(seed)
    finite = dist.finite_contexts() if hasattr(dist, "finite_contexts") else None
    if finite is not None:
        contexts = [space.validate(c) for c, _ in finite]
        counts = _shares(episodes, [w for _, w in finite])
        # the k-th of n_i episodes of context i sits at (k + 0.5) / n_i: an even interleaving
        slots = sorted((((k + 0.5) / n, i) for i, n in enumerate(counts) for k in range(n)))
        return [{"context": dict(contexts[i]), "seed": int(rng.integers(0, 2**31 - 1))} for _, i in slots]
    drawn = stratified_contexts(dist, episodes, bins, rng)
    return [{"context": space.validate(c), "seed": int(rng.integers(0, 2**31 - 1))} for c in drawn]


def _interleave(groups: Sequence[Sequence[Any]]) -> list[Any]:
    """The items of ``groups`` in one list where the k-th of group i's n_i items sits at
    ``(k + 0.5) / n_i``: every prefix holds each group in proportion."""
    slots = sorted(((k + 0.5) / len(g), i, k) for i, g in enumerate(groups) for k in range(len(g)))
    return [groups[i][k] for _, i, k in slots]


def stratified_contexts(
    dist: Any, episodes: int, bins: int, rng: np.random.Generator
) -> list[dict[str, float]]:
    """``episodes`` contexts of ``dist`` drawn stratified, so every bin of every range gets its share.

    * The mixture's components get their weights' shares of the episodes (largest remainders), not
      a random number each.
    * Within a component, each :class:`~heldout.contexts.Uniform` feature is cut by the ``bins``
      equal-width bins over the whole distribution's range of that feature (its hull, the bins of
      ``summary.json``'s ``by_context``); each piece of the component's support in a bin gets episodes
      in proportion to its length (largest remainders: a single range gives each bin
      ``episodes / bins``, give or take one; a range with a hole gives the hole's bins none), and the
      values inside a piece are uniform draws from ``rng``. Features are stratified independently and
      paired at random (a Latin hypercube over the bins). Fixed values stay fixed; normal and
      categorical features are drawn from ``rng`` as they are in training.
    * The list is interleaved (components, and the bins of the first stratified feature), so every
      prefix, which periodic evaluations take, is balanced too.
    """
    from heldout.contexts import Uniform

    weights = dist.weights or tuple(1.0 / len(dist.components) for _ in dist.components)
    counts = _shares(episodes, list(weights))
    hulls = {f: dist.hull(f) for f in dist.features}
    per_component: list[list[dict[str, float]]] = []
    for comp, n in zip(dist.components, counts):
        if n == 0:
            continue
        columns: dict[str, list[float]] = {}
        first: str | None = None
        for f, d in comp.items():
            if isinstance(d, Uniform) and hulls[f] is not None and bins > 1:
                lo, hi = hulls[f]
                edges = np.linspace(lo, hi, bins + 1)
                pieces = [
                    (max(a, float(edges[b])), min(c, float(edges[b + 1])))
                    for b in range(bins)
                    for a, c in d.intervals
                    if min(c, float(edges[b + 1])) > max(a, float(edges[b]))
                ]
                shares = _shares(n, [c - a for a, c in pieces])
                strata = [[float(rng.uniform(a, c)) for _ in range(k)] for (a, c), k in zip(pieces, shares)]
                if first is None:
                    first = f
                    columns[f] = _interleave([s for s in strata if s])
                else:
                    flat = [v for s in strata for v in s]
                    columns[f] = [flat[i] for i in rng.permutation(len(flat))]
            else:
                columns[f] = [float(d.sample(rng)) for _ in range(n)]
        per_component.append([{f: columns[f][k] for f in comp} for k in range(n)])
    return _interleave(per_component)


def _shares(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` by largest remainders (ties: the earlier one)."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


#: The most bins per feature a by-context summary has (more are no summary).
MAX_CONTEXT_BINS = 1000


def context_bins(
    contexts: Sequence[dict[str, float]],
    returns: Sequence[float],
    feature: str,
    lo: float,
    hi: float,
    bins: int,
) -> list[dict[str, Any]]:
    """Equal-width bins of ``feature`` over ``[lo, hi]``: for each, its edges, episode count and mean
    return (None when empty). Values outside ``[lo, hi]`` go to the nearest end bin."""
    edges = np.linspace(lo, hi, bins + 1)
    values = np.array([c[feature] for c in contexts], dtype=np.float64)
    rets = np.asarray(returns, dtype=np.float64)
    idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        out.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "episodes": int(mask.sum()),
                "mean": float(rets[mask].mean()) if mask.any() else None,
            }
        )
    return out


#: The level-split fields (Procgen, MiniGrid) and their ``heldout train`` flags: a contextual run has
#: no levels, so a value other than the default would change nothing, silently.
LEVEL_FIELDS: dict[str, str] = {
    "num_levels": "--num-levels",
    "start_level": "--start-level",
    "num_test_levels": "--num-test-levels",
    "test_start": "--test-start",
    "num_validation_levels": "--num-validation-levels",
    "distribution_mode": "--distribution-mode",
}


def check_no_level_fields(config: TrainConfig) -> None:
    """Raises ValueError naming a level-split field (:data:`LEVEL_FIELDS`) set on a contextual run."""
    from heldout.protocol.config import TrainConfig

    default = TrainConfig()
    for name, flag in LEVEL_FIELDS.items():
        value = getattr(config, name)
        if value != getattr(default, name):
            raise ValueError(
                f"{name}={value!r} ({flag}) applies to level envs (Procgen, MiniGrid); {config.env!r} is a "
                "contextual env with no levels: drop it and set its contexts instead "
                "(--train-context / --test-context / --validation-context)"
            )


class ContextualFamily(EnvFamily):
    """A contextual gymnasium env: context splits, fixed context lists, SB3 DummyVecEnv, context bins."""

    kind = "contexts"
    default_torch_threads = 1

    def __init__(self, name: str) -> None:
        from heldout.envs import CONTEXTUAL_ENVS

        self.name = name
        self.env_cls = CONTEXTUAL_ENVS.get(name)
        self.space = self.env_cls.context_space

    def validate(self, config: TrainConfig) -> None:
        if config.env_options:
            raise ValueError(
                f"env_options {sorted(config.env_options)} are Procgen visual switches; {config.env!r} is a "
                "contextual env: set its contexts instead (--train-context / --test-context)"
            )
        check_no_level_fields(config)
        if config.visible_context not in VISIBLE_CONTEXT_MODES:
            raise ValueError(
                f"unknown visible_context {config.visible_context!r}; valid: {', '.join(VISIBLE_CONTEXT_MODES)}"
            )
        if config.visible_context_scale not in VISIBLE_CONTEXT_SCALES:
            raise ValueError(
                f"unknown visible_context_scale {config.visible_context_scale!r}; valid: "
                f"{', '.join(VISIBLE_CONTEXT_SCALES)}"
            )
        if (
            isinstance(config.context_bins, bool)
            or not isinstance(config.context_bins, int)
            or not 0 < config.context_bins <= MAX_CONTEXT_BINS
        ):
            raise ValueError(
                f"context_bins must be a positive integer up to {MAX_CONTEXT_BINS}, got {shown(config.context_bins)}"
            )
        self.split(config)

    def split(self, config: TrainConfig) -> ContextSplit:
        spec = dict(config.contexts or {})
        unknown = sorted(set(spec) - {"mode", "train", "test", "validation"})
        if unknown:
            raise ValueError(
                f"unknown contexts key(s) {', '.join(unknown)}; valid keys: mode, train, test, validation"
            )
        for name in ("train", "test"):
            if not spec.get(name):
                raise ValueError(
                    f"contextual env {config.env!r} needs {name} contexts (e.g. --{name}-context gravity=4.9:14.7); "
                    f"features: {', '.join(self.space.names)}"
                )
        from heldout.contexts import ContextDistribution

        dists = {}
        for name in ("train", "test", "validation"):
            if spec.get(name):
                dist = ContextDistribution.parse(spec[name], self.space.bounds())
                dists[name] = self.space.check_distribution(dist, what=f"{name} context")
        return ContextSplit(
            train=dists["train"],
            test=dists["test"],
            validation=dists.get("validation"),
            mode=spec.get("mode", "extrapolation"),
            defaults=self.space.defaults(),
        )

    def eval_lists(
        self, config: TrainConfig, split: ContextSplit, episodes: int
    ) -> tuple[dict[str, list], dict]:
        lists = {
            name: evaluation_contexts(
                dist, self.space, episodes, seed=EVAL_LIST_SEED + i, bins=config.context_bins
            )
            for i, (name, dist) in enumerate(split.splits().items())
        }
        record = {
            "method": "disjoint context supports",
            "checked": True,
            "mode": split.mode,
            "note": "ContextSplit refuses overlapping train/test supports at construction",
        }
        return lists, {name: record for name in lists if name != "train"}

    def agent_kwargs(self, config: TrainConfig) -> dict[str, Any]:
        """A Dict observation (``visible_context="dict"``) needs SB3's MultiInputPolicy."""
        kwargs = resolve_schedules(config.agent_kwargs)
        if config.visible_context == "dict" and kwargs.get("policy") == "MlpPolicy":
            kwargs["policy"] = "MultiInputPolicy"
        return kwargs

    def visible_scale(self, config: TrainConfig) -> dict[str, tuple[float, float]] | None:
        """The ranges a visible context is normalised over: with ``visible_context_scale="training"``,
        the training distribution's range of each feature it varies; else None (declared bounds)."""
        if config.visible_context == "hidden" or config.visible_context_scale != "training":
            return None
        train = self.split(config).train
        out = {}
        for f in train.features:
            hull = train.hull(f)
            if hull is not None and hull[1] > hull[0]:
                out[f] = (float(hull[0]), float(hull[1]))
        return out or None

    def make_train_env(self, config: TrainConfig, split: ContextSplit, output_dir: Any = None) -> Any:
        scale = self.visible_scale(config)

        def make() -> Any:
            return make_contextual_env(self.name, config.visible_context, contexts=split.train, scale=scale)

        return train_vec_env(config, make, output_dir)

    def probe_env(self, config: TrainConfig) -> Any:
        return make_contextual_env(self.name, config.visible_context, scale=self.visible_scale(config))

    def evaluate(
        self,
        model: Any,
        config: TrainConfig,
        items: Sequence[Any],
        split_name: str,
        num_envs: int | None = None,
        deterministic: bool | None = None,
        progress: Progress = False,
        seed: int = 0,
        wrappers: Sequence[Any] = (),
        output_dir: Any = None,
        **_: Any,
    ) -> EvalResult:
        specs = eval_wrappers(config, wrappers)
        scale = self.visible_scale(config)
        make = slot_env_factory(
            lambda: make_contextual_env(self.name, config.visible_context, scale=scale),
            specs,
            seed,
            output_dir,
        )
        return evaluate_contexts(
            model,
            make,
            items,
            split=split_name,
            num_envs=num_envs or config.eval_num_envs,
            deterministic=config.deterministic_eval if deterministic is None else deterministic,
            success_on=self.env_cls.success_on,
            features=self.space.names,
            progress=progress,
            settings={
                "env": config.env,
                "visible_context": config.visible_context,
                "wrappers": [str(w) for w in specs],
            },
        )

    def summarize_split(
        self, config: TrainConfig, split: Any, name: str, result: EvalResult
    ) -> dict[str, Any]:
        if not result.contexts:
            return {}
        try:
            dist = split.get(name)
        except (KeyError, AttributeError):
            dist = None
        by_context: dict[str, Any] = {}
        for f in self.space.names:
            values = [c[f] for c in result.contexts]
            if dist is not None and f in dist.features:
                lo, hi = dist.hull(f)  # type: ignore[misc]
            else:
                lo, hi = min(values), max(values)
            if hi > lo:
                by_context[f] = context_bins(result.contexts, result.returns, f, lo, hi, config.context_bins)
        return {"by_context": by_context} if by_context else {}
