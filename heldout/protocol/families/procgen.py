"""The 16 Procgen games (Cobbe et al. 2020, "Leveraging Procedural Generation to Benchmark
Reinforcement Learning", ICML) as an env family.

Levels are integer seeds split as a :class:`~heldout.splits.LevelSplit`; held-out lists are leak-free
by the run's level identity, its layout by default (:func:`heldout.envs.procgen.level_identities`,
:class:`~heldout.protocol.families.levels.LevelFamily`, docs/levels.md); the training env
is the native vectorized Procgen env (:func:`heldout.envs.make_vec`), channel-first under SB3's
``VecTransposeImage``; evaluation plays one episode per listed level
(:func:`heldout.protocol.evaluate.evaluate`), and Procgen's visual switches give evaluation shifts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from heldout.protocol.evaluate import EvalResult, Progress, evaluate
from heldout.protocol.families.base import eval_wrappers, reward_norm, train_level_sampler, wrap_train
from heldout.protocol.families.levels import LEAKAGE_CHECK_MAX_TRAIN_LEVELS, LevelFamily
from heldout.splits import LevelSet, LevelSplit

if TYPE_CHECKING:
    from heldout.protocol.config import TrainConfig


def check_leakage(
    env: str,
    train: LevelSet,
    candidates: list[int],
    distribution_mode: str,
    env_options: dict[str, bool],
    identity: str = "layout",
) -> dict[str, Any]:
    """One pass: the candidate held-out levels whose ``identity`` (layout or look) is a training level's.

    Replaces nothing (the protocol's lists come from
    :func:`~heldout.protocol.families.levels.leak_free_levels`, which replaces and checks again).
    Returns a record with the number of levels checked and the duplicates found
    (``{"level": held_out_seed, "same_as": train_seed}``).
    """
    from heldout.envs.procgen import PROCGEN_GAMES, identity_method, level_identities

    record: dict[str, Any] = {"method": f"{identity} fingerprint", "checked": False}
    if env not in PROCGEN_GAMES:
        record["reason"] = f"no fingerprint for env {env!r}"
        return record
    record["method"] = identity_method(env, identity, **env_options)
    if len(train) > LEAKAGE_CHECK_MAX_TRAIN_LEVELS:
        record["reason"] = f"training set larger than {LEAKAGE_CHECK_MAX_TRAIN_LEVELS} levels"
        return record
    train_levels = train.to_list()
    train_fp: dict[str, int] = {}
    for level, fp in zip(
        train_levels, level_identities(env, train_levels, distribution_mode, identity, **env_options)
    ):
        train_fp.setdefault(fp, level)
    cand_fp = level_identities(env, candidates, distribution_mode, identity, **env_options)
    dups = [{"level": lv, "same_as": train_fp[fp]} for lv, fp in zip(candidates, cand_fp) if fp in train_fp]
    record.update(
        checked=True, train_levels=len(train_levels), held_out_levels=len(candidates), duplicates=dups
    )
    return record


class ProcgenFamily(LevelFamily):
    """The 16 Procgen games: level splits, leak-free lists, native vectorized env, visual shifts."""

    fingerprint_method = "layout fingerprint (heldout.envs.procgen.level_identities)"

    def validate(self, config: TrainConfig) -> None:
        from heldout.envs.procgen import check_distribution_mode, check_options

        check_distribution_mode(config.distribution_mode, config.env)  # the modes this game has
        check_options(config.env_options, what="env option")  # known switches, each true or false
        super().validate(config)

    def fingerprints(self, config: TrainConfig, levels: list[int]) -> list[str]:
        """The levels' layouts, or (``config.leakage == "look"``) their looks under the run's visual
        options (:func:`heldout.envs.procgen.level_identities`)."""
        from heldout.envs.procgen import level_identities

        identity = "look" if config.leakage == "look" else "layout"
        return level_identities(config.env, levels, config.distribution_mode, identity, **config.env_options)

    def identity_method(self, config: TrainConfig) -> str:
        from heldout.envs.procgen import identity_method

        identity = "look" if config.leakage == "look" else "layout"
        return identity_method(config.env, identity, **config.env_options)

    def make_train_env(self, config: TrainConfig, split: LevelSplit, output_dir: Any = None) -> Any:
        import heldout.agents  # noqa: F401  (registers ProcgenVecEnv as an SB3 VecEnv)
        from heldout.envs import make_vec

        sampler = train_level_sampler(config, split.train.to_list())
        extra: dict[str, Any] = {} if sampler is None else {"level_sampler": sampler}
        venv = make_vec(
            config.env,
            num_envs=config.num_envs,
            levels=split.train,
            seed=config.seed,
            distribution_mode=config.distribution_mode,
            **config.env_options,
            **extra,
        )
        # wrappers run on the whole native batch (heldout.wrappers.VecEnvAdapter), channel-last
        venv = wrap_train(config, venv, output_dir, config.seed)
        # Transpose the channel-last frames here, under VecNormalize, rather than let SB3 wrap the whole
        # stack: off-policy agents (sgqn) store VecNormalize's original observations in their replay
        # buffer, which must then be channel-first already (what agents see is the same either way).
        from stable_baselines3.common.vec_env import VecTransposeImage

        return reward_norm(config, VecTransposeImage(venv))

    def evaluate(
        self,
        model: Any,
        config: TrainConfig,
        items: Sequence[Any],
        split_name: str,
        num_envs: int | None = None,
        deterministic: bool | None = None,
        seed: int = 0,
        progress: Progress = False,
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
