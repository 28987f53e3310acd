"""What the protocol asks of an environment: the :class:`EnvFamily` interface and its shared parts.

The protocol (:mod:`heldout.protocol.run`) never asks which kind of env it runs. It asks the run's
family to check the config, build the split, fix each split's evaluation list, make the training
env, evaluate a model on a list, and summarise a split. The families (one file each):

* :class:`~heldout.protocol.families.procgen.ProcgenFamily` and
  :class:`~heldout.protocol.families.seeded.SeededGymFamily` (MiniGrid; any env registered with
  ``heldout.envs.register_seeded_env``): levels are integer seeds, split as a
  :class:`~heldout.splits.LevelSplit`, with leak-free held-out lists; both are
  :class:`~heldout.protocol.families.levels.LevelFamily`.
* :class:`~heldout.protocol.families.contextual.ContextualFamily`: contexts of physics features,
  split as a :class:`~heldout.splits.ContextSplit` (Benjamins et al. 2023, "Contextualize Me", TMLR;
  Kirk et al. 2023, JAIR).

This module holds the interface and what every family shares: agent-argument schedules, the
wrappers at training and evaluation, and reward normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heldout.protocol.evaluate import EvalResult

if TYPE_CHECKING:
    from heldout.protocol.config import TrainConfig


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
                from heldout.protocol.checks import describe_space

                raise ValueError(
                    f"evaluation-only wrapper(s) {', '.join(map(str, wrappers))} change the env's observation "
                    f"space from {describe_space(space)} to {describe_space(shifted.observation_space)}: the "
                    "trained policy cannot take it; name such wrappers for training (heldout train --wrapper)"
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


def wrap_train(config: TrainConfig, env: Any, output_dir: Any, seed: int) -> Any:
    """The training env with the config's wrappers applied (recording ones writing into ``output_dir``)."""
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


def reward_norm(config: TrainConfig, venv: Any) -> Any:
    """``venv`` under SB3's ``VecNormalize(norm_obs=False)`` when the config normalises rewards (the
    references' running std of the discounted return, clipped at 10)."""
    if not config.reward_norm:
        return venv
    from stable_baselines3.common.vec_env import VecNormalize

    return VecNormalize(
        venv, norm_obs=False, norm_reward=True, clip_reward=10.0, gamma=config.reward_norm_gamma
    )


#: Mixed with the run seed into the generator of a learning level sampler ("PLR" in ASCII).
LEVEL_SAMPLER_STREAM = 0x504C52


def train_level_sampler(config: TrainConfig, levels: Sequence[int]) -> Any:
    """The run's learning level sampler over the training ``levels`` (``config.level_sampler``:
    ``plr``, ``robust-plr``; :mod:`heldout.envs.plr`), with its own generator from the run seed;
    None for ``uniform`` (the env draws its levels itself, as before samplers existed)."""
    if config.level_sampler == "uniform":
        return None
    import numpy as np

    from heldout.envs.plr import make_level_sampler

    rng = np.random.default_rng(np.random.SeedSequence([config.seed, LEVEL_SAMPLER_STREAM]))
    return make_level_sampler(config.level_sampler, levels, rng, config.num_envs, config.sampler_kwargs)


def train_vec_env(config: TrainConfig, make_env: Any, output_dir: Any) -> Any:
    """The training env of a family of single gymnasium envs: SB3's ``DummyVecEnv`` of
    ``config.num_envs`` envs from ``make_env`` (seeded from the run seed), the config's wrappers
    run batched on it (one object sees every slot, as on Procgen), then reward normalisation."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = make_vec_env(make_env, n_envs=config.num_envs, seed=config.seed, vec_env_cls=DummyVecEnv)
    return reward_norm(config, wrap_train(config, venv, output_dir, config.seed))
