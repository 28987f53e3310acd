"""Env families: what the protocol asks of an environment, for Procgen levels and for contexts alike.

The protocol (``heldout.experiments.protocol``) never asks which kind of env it runs. It asks the
run's :class:`EnvFamily` to check the config, build the split, fix each split's evaluation list,
make the training env, evaluate a model on a list, and summarise a split:

* :class:`ProcgenFamily`: levels are integer seeds, splits are :class:`~heldout.splits.LevelSplit`,
  evaluation lists are level lists (checked for leaked duplicate levels), the training env is the
  native vectorized Procgen env, and Procgen's visual switches give evaluation *shifts*.
* :class:`ContextualFamily`: contexts are dicts of physics features, splits are
  :class:`~heldout.splits.ContextSplit` (interpolation / extrapolation / combinatorial), evaluation
  lists are fixed ``(context, reset seed)`` pairs, the training env is SB3's ``DummyVecEnv`` of the
  gymnasium env drawing a fresh training context per reset, and summaries break returns down by
  context bins (Benjamins et al. 2023, "Contextualize Me", TMLR; Kirk et al. 2023, JAIR).
* :class:`~heldout.experiments.seeded_family.SeededGymFamily`: gymnasium envs whose level is their
  reset seed (MiniGrid; any env registered with ``heldout.envs.register_seeded_env``): level splits
  and the leakage check as for Procgen, with SB3's ``DummyVecEnv`` of level envs for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from heldout.experiments.evaluate import (
    EVAL_LIST_SEED,
    EvalResult,
    evaluate,
    evaluate_contexts,
    evaluation_levels,
)
from heldout.splits import ContextSplit, LevelSet, LevelSplit

if TYPE_CHECKING:
    from heldout.experiments.config import TrainConfig

#: Visible-context modes: hidden (default), a concatenated vector, or a Dict observation.
VISIBLE_CONTEXT_MODES: tuple[str, ...] = ("hidden", "concat", "dict")


#: The largest training set whose first frames the leakage check fingerprints.
LEAKAGE_CHECK_MAX_TRAIN_LEVELS = 20_000


def check_leakage(
    env: str, train: LevelSet, candidates: list[int], distribution_mode: str, env_options: dict[str, bool]
) -> dict[str, Any]:
    """Finds candidate held-out levels whose first frame equals a training level's first frame.

    Returns a record with the number of levels checked and the duplicates found
    (``{"level": held_out_seed, "same_as": train_seed}``).
    """
    from heldout.envs.procgen import PROCGEN_GAMES, level_fingerprints

    record: dict[str, Any] = {"method": "first-frame fingerprint", "checked": False}
    if env not in PROCGEN_GAMES:
        record["reason"] = f"no fingerprint for env {env!r}"
        return record
    if len(train) > LEAKAGE_CHECK_MAX_TRAIN_LEVELS:
        record["reason"] = f"training set larger than {LEAKAGE_CHECK_MAX_TRAIN_LEVELS} levels"
        return record
    train_levels = train.to_list()
    train_fp = dict(
        zip(level_fingerprints(env, train_levels, distribution_mode, **env_options), train_levels)
    )
    cand_fp = level_fingerprints(env, candidates, distribution_mode, **env_options)
    dups = [{"level": lv, "same_as": train_fp[fp]} for lv, fp in zip(candidates, cand_fp) if fp in train_fp]
    record.update(
        checked=True, train_levels=len(train_levels), held_out_levels=len(candidates), duplicates=dups
    )
    return record


class EnvFamily:
    """The questions the protocol asks of an env family (see the module docstring)."""

    kind: str = ""
    #: CPU threads for torch when the config leaves ``torch_threads`` at 0 (0: torch's default).
    default_torch_threads: int = 0

    def validate(self, config: TrainConfig) -> None:
        """Raises ValueError / KeyError / TypeError naming a bad family-specific field."""
        raise NotImplementedError

    def split(self, config: TrainConfig) -> Any:
        """The run's split (a LevelSplit or a ContextSplit)."""
        raise NotImplementedError

    def eval_lists(self, config: TrainConfig, split: Any, episodes: int) -> tuple[dict[str, list], dict]:
        """The fixed evaluation list of each split, and a leakage-check record."""
        raise NotImplementedError

    def make_train_env(self, config: TrainConfig, split: Any, output_dir: Any = None) -> Any:
        """The SB3 ``VecEnv`` the agent trains on: the config's wrappers applied (recording ones
        writing into ``output_dir``), then reward normalisation if configured."""
        raise NotImplementedError

    def evaluate(
        self, model: Any, config: TrainConfig, items: Sequence[Any], split_name: str, **kwargs: Any
    ) -> EvalResult:
        """Plays one episode per item of an evaluation list, with :func:`eval_wrappers` applied
        (``kwargs["wrappers"]``: evaluation-only wrappers; ``kwargs["output_dir"]``: where recording
        ones write)."""
        raise NotImplementedError

    def probe_env(self, config: TrainConfig) -> Any:
        """A small env of this family as the protocol builds it, before any wrapper (for space checks)."""
        raise NotImplementedError

    def check_eval_wrappers(self, config: TrainConfig, wrappers: Sequence[Any]) -> None:
        """Raises ValueError if evaluation-only ``wrappers`` change the env's observation space (the
        trained policy could not take their observations) or cannot apply to this env."""
        from heldout.wrappers import apply_wrappers

        if not wrappers:
            return
        env = self.probe_env(config)
        try:
            space = env.observation_space
            shifted = apply_wrappers(env, wrappers, stage="eval")
            if shifted.observation_space != space:
                raise ValueError(
                    f"evaluation-only wrapper(s) {', '.join(map(str, wrappers))} change the env's observation "
                    f"space from {space} to {shifted.observation_space}: the trained policy cannot take it; "
                    "name such wrappers for training (heldout train --wrapper)"
                )
            apply_wrappers(shifted, eval_wrappers(config), stage="eval")
        finally:
            env.close()

    def agent_kwargs(self, config: TrainConfig) -> dict[str, Any]:
        """The agent's keyword arguments for this env (the config's, with ``lin_<x>`` schedules resolved)."""
        return resolve_schedules(config.agent_kwargs)

    def describe_set(self, split: Any, name: str) -> str:
        """A short form of one split's set, for tables."""
        try:
            return split.get(name).describe()
        except KeyError:
            return "custom"

    def summarize_split(
        self, config: TrainConfig, split: Any, name: str, result: EvalResult
    ) -> dict[str, Any]:
        """Extra per-split summary entries (e.g. returns by context bin)."""
        return {}


#: Agent arguments that may be a schedule of the remaining training progress (1 -> 0).
SCHEDULED_ARGS: tuple[str, ...] = ("learning_rate", "clip_range", "clip_range_vf")


class LinearSchedule:
    """``progress_remaining * initial``: rl-baselines3-zoo's ``lin_<initial>`` (a picklable SB3 schedule)."""

    def __init__(self, initial: float) -> None:
        self.initial = float(initial)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial

    def __repr__(self) -> str:
        return f"lin_{self.initial:g}"


def resolve_schedules(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turns ``"lin_<x>"`` strings of :data:`SCHEDULED_ARGS` into :class:`LinearSchedule` (as the zoo
    writes them in YAML), so presets and ``--agent-arg learning_rate=lin_1e-3`` stay plain text."""
    out = dict(kwargs)
    for key in SCHEDULED_ARGS:
        value = out.get(key)
        if isinstance(value, str):
            if not value.startswith("lin_"):
                raise ValueError(
                    f"{key}={value!r}: give a number or a linear schedule 'lin_<initial>' (e.g. lin_1e-3)"
                )
            try:
                out[key] = LinearSchedule(float(value[4:]))
            except ValueError:
                raise ValueError(
                    f"{key}={value!r}: 'lin_' must be followed by a number, e.g. lin_1e-3"
                ) from None
    return out


def eval_wrappers(config: TrainConfig, extra: Sequence[Any] = ()) -> list[Any]:
    """The wrappers an evaluation applies, innermost first: the evaluation-only ``extra`` ones (a
    shift of the env itself, all kinds), then the run's training wrappers that change what the
    policy sees (observation, context), so that e.g. a frame stack stacks shifted frames."""
    from heldout.wrappers import applies_at, parse_specs

    train = [s for s in parse_specs(config.wrappers) if applies_at(s.kind, "eval", eval_only=False)]
    return [*parse_specs(extra), *train]


def _wrap_train(config: TrainConfig, env: Any, output_dir: Any, seed: int) -> Any:
    from heldout.wrappers import apply_wrappers

    if not config.wrappers:
        return env
    return apply_wrappers(env, config.wrappers, seed=seed, stage="train", output_dir=output_dir)


def slot_env_factory(make_env: Any, specs: Sequence[Any], seed: int, output_dir: Any) -> Any:
    """Wraps ``make_env`` for evaluations that play single envs side by side: each env it builds
    gets ``specs`` applied with its own generator (and its own ``slot<i>`` folder, if they write)."""
    from heldout.wrappers import apply_wrappers

    made = [0]

    def make() -> Any:
        slot = made[0]
        made[0] += 1
        out = None if output_dir is None else Path(output_dir) / f"slot{slot}"
        return apply_wrappers(make_env(), specs, seed=seed * 1000 + slot + 1, stage="eval", output_dir=out)

    return make


def _reward_norm(config: TrainConfig, venv: Any) -> Any:
    if not config.reward_norm:
        return venv
    from stable_baselines3.common.vec_env import VecNormalize

    return VecNormalize(
        venv, norm_obs=False, norm_reward=True, clip_reward=10.0, gamma=config.reward_norm_gamma
    )


def level_split(config: TrainConfig) -> LevelSplit:
    """The level split of a config: train ``[start_level, start_level + num_levels)``, test and
    validation ranges from ``test_start`` (:meth:`LevelSplit.default`)."""
    return LevelSplit.default(
        num_levels=config.num_levels,
        start_level=config.start_level,
        num_test_levels=config.num_test_levels,
        test_start=config.test_start,
        num_validation_levels=config.num_validation_levels,
    )


class ProcgenFamily(EnvFamily):
    """The 16 Procgen games: level splits, leakage check, native vectorized env, visual shifts."""

    kind = "levels"

    def validate(self, config: TrainConfig) -> None:
        from heldout.envs import DISTRIBUTION_MODES, VISUAL_OPTIONS

        if config.distribution_mode not in DISTRIBUTION_MODES:
            raise ValueError(
                f"unknown distribution_mode {config.distribution_mode!r}; valid modes: {', '.join(DISTRIBUTION_MODES)}"
            )
        unknown = sorted(set(config.env_options) - set(VISUAL_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown env option(s) {', '.join(unknown)}; valid options: {', '.join(VISUAL_OPTIONS)}"
            )
        if config.contexts or config.visible_context != "hidden":
            raise ValueError(
                f"env {config.env!r} is a Procgen game: it has levels, not contexts; drop contexts / "
                "visible_context (contextual envs: see 'heldout list')"
            )
        self.split(config)

    def split(self, config: TrainConfig) -> LevelSplit:
        return level_split(config)

    def eval_lists(
        self, config: TrainConfig, split: LevelSplit, episodes: int
    ) -> tuple[dict[str, list], dict]:
        lists: dict[str, list] = {}
        leakage: dict[str, Any] = {}
        for name, levels in split.splits().items():
            chosen = evaluation_levels(levels, episodes)
            if name != "train" and config.leakage_check:
                rec = check_leakage(
                    config.env, split.train, chosen, config.distribution_mode, config.env_options
                )
                leakage[name] = rec
                if rec.get("duplicates"):
                    chosen = evaluation_levels(
                        levels, episodes, exclude=[d["level"] for d in rec["duplicates"]]
                    )
                    rec["dropped"] = len(rec["duplicates"])
            lists[name] = chosen
        return lists, leakage

    def make_train_env(self, config: TrainConfig, split: LevelSplit, output_dir: Any = None) -> Any:
        import heldout.agents  # noqa: F401  (registers ProcgenVecEnv as an SB3 VecEnv)
        from heldout.envs import make_vec

        venv = make_vec(
            config.env,
            num_envs=config.num_envs,
            levels=split.train,
            seed=config.seed,
            distribution_mode=config.distribution_mode,
            **config.env_options,
        )
        # wrappers run on the whole native batch (heldout.wrappers.VecEnvAdapter), channel-last
        venv = _wrap_train(config, venv, output_dir, config.seed)
        # Transpose the channel-last frames here, under VecNormalize, rather than let SB3 wrap the whole
        # stack: off-policy agents (sgqn) store VecNormalize's original observations in their replay
        # buffer, which must then be channel-first already (what agents see is the same either way).
        from stable_baselines3.common.vec_env import VecTransposeImage

        return _reward_norm(config, VecTransposeImage(venv))

    def evaluate(
        self,
        model: Any,
        config: TrainConfig,
        items: Sequence[Any],
        split_name: str,
        num_envs: int | None = None,
        deterministic: bool | None = None,
        seed: int = 0,
        progress: bool = False,
        distribution_mode: str | None = None,
        env_options: dict[str, bool] | None = None,
        wrappers: Sequence[Any] = (),
        output_dir: Any = None,
        **_: Any,
    ) -> EvalResult:
        return evaluate(
            model,
            config.env,
            [int(x) for x in items],
            split=split_name,
            num_envs=num_envs or config.eval_num_envs,
            deterministic=config.deterministic_eval if deterministic is None else deterministic,
            distribution_mode=distribution_mode or config.distribution_mode,
            env_options=config.env_options if env_options is None else env_options,
            seed=seed,
            progress=progress,
            wrappers=eval_wrappers(config, wrappers),
            output_dir=output_dir,
        )

    def probe_env(self, config: TrainConfig) -> Any:
        from heldout.envs import make_vec

        return make_vec(
            config.env,
            num_envs=1,
            levels=[config.start_level],
            seed=0,
            distribution_mode=config.distribution_mode,
            **config.env_options,
        )


def make_contextual_env(
    name: str,
    visible_context: str = "hidden",
    contexts: Any = None,
    context: dict[str, float] | None = None,
    **kwargs: Any,
) -> Any:
    """``gymnasium.make`` of the contextual family ``name`` (its time limit included), with the
    context added to observations if ``visible_context`` is ``"concat"`` or ``"dict"``."""
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

        env = VisibleContext(env, mode=visible_context)
    return env


def evaluation_contexts(
    dist: Any, space: Any, episodes: int, seed: int = EVAL_LIST_SEED
) -> list[dict[str, Any]]:
    """The fixed evaluation list of a context distribution: ``episodes`` items ``{"context": full
    context, "seed": reset seed}``, drawn with a fixed generator (the same for every run and agent)."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(episodes):
        context = space.validate(dist.sample(rng))
        items.append({"context": context, "seed": int(rng.integers(0, 2**31 - 1))})
    return items


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
        if config.visible_context not in VISIBLE_CONTEXT_MODES:
            raise ValueError(
                f"unknown visible_context {config.visible_context!r}; valid: {', '.join(VISIBLE_CONTEXT_MODES)}"
            )
        if (
            isinstance(config.context_bins, bool)
            or not isinstance(config.context_bins, int)
            or config.context_bins <= 0
        ):
            raise ValueError(f"context_bins must be a positive integer, got {config.context_bins!r}")
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
            name: evaluation_contexts(dist, self.space, episodes, seed=EVAL_LIST_SEED + i)
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

    def make_train_env(self, config: TrainConfig, split: ContextSplit, output_dir: Any = None) -> Any:
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv

        def make() -> Any:
            return make_contextual_env(self.name, config.visible_context, contexts=split.train)

        venv = make_vec_env(make, n_envs=config.num_envs, seed=config.seed, vec_env_cls=DummyVecEnv)
        # wrappers run batched on the DummyVecEnv (one object sees every slot, as on Procgen)
        return _reward_norm(config, _wrap_train(config, venv, output_dir, config.seed))

    def probe_env(self, config: TrainConfig) -> Any:
        return make_contextual_env(self.name, config.visible_context)

    def evaluate(
        self,
        model: Any,
        config: TrainConfig,
        items: Sequence[Any],
        split_name: str,
        num_envs: int | None = None,
        deterministic: bool | None = None,
        progress: bool = False,
        seed: int = 0,
        wrappers: Sequence[Any] = (),
        output_dir: Any = None,
        **_: Any,
    ) -> EvalResult:
        specs = eval_wrappers(config, wrappers)
        make = slot_env_factory(
            lambda: make_contextual_env(self.name, config.visible_context), specs, seed, output_dir
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


def family_for(env: str) -> EnvFamily:
    """The family of env ``env``; an unknown name raises KeyError with a suggestion."""
    from heldout.envs import CONTEXTUAL_ENVS, ENVS, SEEDED_ENVS, check_env_name

    check_env_name(env)
    if env in CONTEXTUAL_ENVS:
        return ContextualFamily(env)
    if env in SEEDED_ENVS:
        from heldout.experiments.seeded_family import SeededGymFamily

        return SeededGymFamily(env)
    ENVS.get(env)
    return ProcgenFamily()
