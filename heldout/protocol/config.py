"""Typed run configuration, as plain data.

A frozen :class:`TrainConfig` is the source of truth for a run: the CLI builds one from a preset
(:mod:`heldout.protocol.presets`) and its flags, :func:`heldout.protocol.validate.validate_config`
checks it (each part checking the fields it owns), the protocol runs it, and ``config.yaml`` in the
run folder stores it resolved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from heldout.splits import DEFAULT_TEST_START


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a train -> held-out evaluation run.

    Attributes:
        env: Environment name (``heldout list`` shows them), e.g. ``"coinrun"``.
        agent: Agent name, e.g. ``"ppo"``.
        timesteps: Environment steps to train for (all envs together).
        num_envs: Parallel envs for training.
        num_levels: Training levels ``[start_level, start_level + num_levels)``.
        start_level: First training level.
        num_test_levels: Size of the held-out test set.
        test_start: First seed of the test range (far from the training range).
        num_validation_levels: Size of an optional validation set after the test range (0: none).
        distribution_mode: Procgen distribution mode (``"easy"``, ``"hard"``, ...).
        env_options: Procgen visual switches (``use_backgrounds``, ...).
        seed: Run seed (``0 <= seed < 2**31 - 1``); every generator of the run derives from it.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        agent_kwargs: Keyword arguments of the agent class (``n_steps``, ``batch_size``, ...).
        reward_norm: Normalise rewards by the running std of the discounted return (clip 10), as
            baselines' ``VecNormalize(ob=False)``.
        reward_norm_gamma: Discount of that running return (baselines: 0.99; cleanrl: 0.999).
        eval_episodes: Episodes per split in the final evaluation (one fixed level list a split).
        eval_freq: Timesteps between periodic evaluations (0: only the final one).
        eval_periodic_episodes: Episodes per split in each periodic evaluation.
        eval_num_envs: Parallel envs used for evaluation.
        deterministic_eval: Greedy actions in evaluation (the references sample; default False).
        leakage: Which held-out levels count as seen, and are dropped from the evaluation lists
            (docs/levels.md): ``"layout"`` (default) a level with a training level's layout, compared
            with Procgen's visual variety off; ``"look"`` only a level that also looks the same under
            the run's visual options (keeps same-layout-other-skin levels, for studies of visual
            generalization); ``"off"`` none (no fingerprints; lists still never repeat a level).
            Seeded envs (MiniGrid) have one identity: their fingerprint is the layout. A config
            written before this field existed holds ``leakage_check: true / false``, read as
            ``"layout"`` / ``"off"``.
        checkpoint_freq: Timesteps between checkpoints (:mod:`heldout.protocol.checkpoint`), taken at
            the update boundary after them; None (default): every 10% of the run; 0: none but the
            one at the end of training.
        checkpoint_minutes: Also checkpoint when this many minutes passed since the last one.
        checkpoint_keep: Checkpoints kept (the newest ones).
        saliency_log_freq: Timesteps between saliency overlays logged to TensorBoard
            (``saliency/overlay``; 0: none).
        out: Root folder of run folders.
        contexts: Contextual envs only: the context split, ``{"mode": "interpolation" |
            "extrapolation" | "combinatorial", "train": {feature: spec}, "test": {...},
            ["validation": {...}]}`` (specs as in ``heldout.contexts.parse_feature``, e.g.
            ``"4.9:14.7"``); see :class:`heldout.splits.ContextSplit`.
        visible_context: Contextual envs only: ``"hidden"`` (default), ``"concat"`` (the normalised
            context appended to the observation) or ``"dict"`` (a Dict observation).
        visible_context_scale: Contextual envs with a visible context: ``"training"`` (default) maps
            the training distribution's range of each varied feature to [0, 1] (held-out values fall
            outside it), ``"bounds"`` the feature's declared bounds (a preset's training range may
            then be a thin slice: MountainCar force 0.0008-0.0012 is 0.071-0.111). Raw values are in
            ``info["context"]``. A ``config.yaml`` written before this field, with a visible context,
            reads as ``"bounds"``, which is how it was trained.
        context_bins: Equal-width bins per varying feature in the by-context summary, and the
            strata of evaluation contexts drawn from ranges.
        wrappers: Registered wrappers (``heldout.wrappers.WRAPPERS``) applied to the training env, as
            ``"NAME[:key=value,...]"`` strings, innermost first. Observation and context wrappers
            also apply at evaluation (the policy needs them); reward and recording wrappers only
            at training.
        torch_threads: CPU threads torch may use during the run (0: the env family's default:
            1 for contextual envs, whose small MLPs only lose time synchronising threads, above
            all on a busy machine; torch's own default for Procgen's CNN).
        level_sampler: Which training level each env slot plays next: ``"uniform"`` (default: the
            env draws uniformly, as always), ``"plr"`` (Prioritized Level Replay, Jiang et al. 2021)
            or ``"robust-plr"`` (Robust PLR, Jiang, Dennis et al. 2021); level envs and the
            on-policy agents only (``heldout.envs.plr``, docs/plr.md).
        sampler_kwargs: Options of the level sampler (``--sampler-arg key=value``), over its
            defaults (``heldout.envs.plr.PLR_DEFAULTS`` / ``ROBUST_PLR_DEFAULTS``).
        bonus: Exploration bonus added to the training reward (:mod:`heldout.agents.bonuses`,
            docs/exploration.md): ``"none"`` (default), ``"count"``, ``"rnd"``, ``"episodic-count"``,
            ``"e3b"``, ``"product"`` or ``"sum"``; on-policy agents only. Evaluation returns never
            include it.
        bonus_kwargs: The bonus's options (``--bonus-arg key=value``), over its defaults
            (``heldout.agents.bonuses.bonus_options``); checked by :func:`heldout.agents.bonuses.check_bonus`.
        imports: User modules to import before the agent, env and preset names are looked up: ``.py``
            files or dotted module names that register their own agents, envs, ... (``heldout train
            --import FILE.py``; docs/adding-an-agent.md). :meth:`resolved` records a file as its
            absolute path, and ``heldout eval`` / ``heldout saliency`` import them again.
        dataset: Offline agents only (``heldout train --agent bc --dataset PATH``): the dataset they
            learn from (``heldout collect``; :mod:`heldout.protocol.offline`); ``""`` for online agents.
            An offline run's ``timesteps`` counts the transitions the learner consumes.
        dataset_epochs: Offline agents only: the most passes over the dataset ``timesteps`` may take
            (a run asking for more is refused); 0: no bound.
        record_rollouts: Online agents on level envs: also write the agent's own training rollouts
            as a dataset, ``<run folder>/rollouts`` (the "suboptimal" recipe of gen_dgrl; docs/offline.md).
    """

    env: str = "coinrun"
    agent: str = "ppo"
    timesteps: int = 25_000_000
    num_envs: int = 64
    num_levels: int = 200
    start_level: int = 0
    num_test_levels: int = 1000
    test_start: int = DEFAULT_TEST_START
    num_validation_levels: int = 0
    distribution_mode: str = "easy"
    env_options: dict[str, bool] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    reward_norm: bool = True
    reward_norm_gamma: float = 0.99
    eval_episodes: int = 100
    eval_freq: int = 0
    eval_periodic_episodes: int = 32
    eval_num_envs: int = 64
    deterministic_eval: bool = False
    leakage: str = "layout"
    checkpoint_freq: int | None = None
    checkpoint_minutes: float = 30.0
    checkpoint_keep: int = 2
    saliency_log_freq: int = 0
    out: str = "runs"
    contexts: dict[str, Any] = field(default_factory=dict)
    visible_context: str = "hidden"
    visible_context_scale: str = "training"
    context_bins: int = 5
    wrappers: list[str] = field(default_factory=list)
    torch_threads: int = 0
    level_sampler: str = "uniform"
    sampler_kwargs: dict[str, Any] = field(default_factory=dict)
    bonus: str = "none"
    bonus_kwargs: dict[str, Any] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    dataset: str = ""
    dataset_epochs: int = 0
    record_rollouts: bool = False

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied; unknown field names raise TypeError naming them.

        The old boolean ``leakage_check`` (config files written before ``leakage``) is read as
        ``leakage="layout"`` (true) or ``"off"`` (false).
        """
        if "leakage_check" in changes:
            changes = dict(changes)
            changes["leakage"] = leakage_from_check(changes.pop("leakage_check"), changes.get("leakage"))
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            import difflib

            close = difflib.get_close_matches(str(unknown[0]), field_names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(
                f"unknown config field(s) {', '.join(map(str, unknown))}{hint}; valid fields: "
                f"{', '.join(field_names())}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Builds a config from a (possibly partial) dict, e.g. a loaded ``config.yaml``."""
        return cls().replace(**data)

    def resolved(self) -> TrainConfig:
        """This config with shorthands made explicit: ``augmentation="best"`` becomes the game's
        augmentation of the "DrAC (best)" table (``heldout.agents.augment.BEST_AUGMENTATION``), and
        a file in ``imports`` its absolute path (so a run folder can be evaluated from anywhere).

        An env without an entry keeps ``"best"``, which
        :func:`heldout.protocol.validate.validate_config` then refuses.
        """
        from heldout.agents.augment import BEST_AUGMENTATION
        from heldout.protocol.plugins import normalize_import

        config = self
        imports = [normalize_import(spec) for spec in import_list(self.imports)]
        if imports != self.imports:
            config = config.replace(imports=imports)
        if self.agent_kwargs.get("augmentation") != "best" or self.env not in BEST_AUGMENTATION:
            return config
        return config.replace(agent_kwargs={**self.agent_kwargs, "augmentation": BEST_AUGMENTATION[self.env]})

    def validate(self) -> None:
        """Checks the fields this config owns (their types, the counts, frequencies, the seed, the
        reward-normalisation discount, the imports list); raises ValueError / TypeError naming the
        bad value and the valid ones.

        The env-, agent- and wrapper-specific fields are checked by their owners:
        :func:`heldout.protocol.validate.validate_config` runs every check, as ``heldout train`` does.
        """
        from heldout.protocol.checks import (
            MAX_RECORDED,
            check_bool,
            check_int,
            check_number,
            check_seed,
            shown,
        )

        import_list(self.imports)
        for name in (
            "env",
            "agent",
            "distribution_mode",
            "device",
            "out",
            "visible_context",
            "level_sampler",
            "bonus",
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a name (a non-empty string), got {value!r}")
        if not isinstance(self.dataset, str):
            raise TypeError(f"dataset must be the path of a dataset (a string), got {shown(self.dataset)}")
        for name in ("env_options", "agent_kwargs", "contexts", "sampler_kwargs", "bonus_kwargs"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise TypeError(f"{name} must be a mapping of names to values, got {value!r}")
        for name in ("reward_norm", "deterministic_eval", "record_rollouts"):
            check_bool(name, getattr(self, name))
        check_leakage_policy(self.leakage)
        positive = (
            "timesteps",
            "num_envs",
            "num_levels",
            "num_test_levels",
            "eval_episodes",
            "eval_num_envs",
            "checkpoint_keep",
        )
        non_negative = (
            "eval_freq",
            "num_validation_levels",
            "eval_periodic_episodes",
            "saliency_log_freq",
            "torch_threads",
            "dataset_epochs",
        )
        for name in positive:
            check_int(name, getattr(self, name), minimum=1)
        for name in non_negative:
            check_int(name, getattr(self, name), minimum=0)
        check_seed("seed", self.seed)
        if self.checkpoint_freq is not None:
            try:
                check_int("checkpoint_freq", self.checkpoint_freq, minimum=0)
            except ValueError:
                raise ValueError(
                    f"checkpoint_freq must be a non-negative integer or null (every 10% of the run), "
                    f"got {shown(self.checkpoint_freq)}"
                ) from None
        for name in (*positive, *non_negative, "checkpoint_freq"):
            value = getattr(self, name)
            if value is not None and value > MAX_RECORDED:  # a count SB3, numpy and torch can hold
                raise ValueError(f"{name} must be at most {MAX_RECORDED} (2**63 - 1), got {shown(value)}")
        minutes = self.checkpoint_minutes
        try:
            check_number("checkpoint_minutes", minutes, low=0, low_open=True)
        except ValueError:
            raise ValueError(
                f"checkpoint_minutes must be a positive number of minutes, got {shown(minutes)}"
            ) from None
        check_number("reward_norm_gamma", self.reward_norm_gamma, 0.0, 1.0, low_open=True)


#: The leakage policies (``TrainConfig.leakage``): which identity makes a held-out level "seen".
LEAKAGE_POLICIES: tuple[str, ...] = ("layout", "look", "off")


def check_leakage_policy(value: Any, what: str = "leakage") -> str:
    """``value`` checked to be one of :data:`LEAKAGE_POLICIES`; ValueError naming it and the valid ones."""
    if not isinstance(value, str) or value not in LEAKAGE_POLICIES:
        import difflib

        close = difflib.get_close_matches(str(value), LEAKAGE_POLICIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {what} policy {value!r}{hint}; valid: {', '.join(LEAKAGE_POLICIES)}")
    return value


def leakage_from_check(check: Any, leakage: Any = None) -> str:
    """The ``leakage`` policy an old config's ``leakage_check`` stands for: ``"layout"`` if true,
    ``"off"`` if false; given with a ``leakage`` that contradicts it, a ValueError naming both."""
    from heldout.protocol.checks import check_bool

    policy = "layout" if check_bool("leakage_check", check) else "off"
    if leakage is not None and (leakage == "off") != (policy == "off"):
        raise ValueError(
            f"leakage_check={check!r} (the old field) contradicts leakage={leakage!r}; give only leakage"
        )
    return policy if leakage is None else leakage


def import_list(imports: Any) -> list[str]:
    """``imports`` checked to be a list of strings (a YAML file may hold anything)."""
    if not isinstance(imports, (list, tuple)) or not all(isinstance(s, str) for s in imports):
        raise TypeError(f"imports must be a list of files or module names, got {imports!r}")
    return list(imports)


def field_names() -> list[str]:
    """The names of :class:`TrainConfig`'s fields."""
    return [f.name for f in dataclasses.fields(TrainConfig)]
