"""Typed run configuration and named presets.

A frozen :class:`TrainConfig` is the source of truth for a run: the CLI builds one from a preset and
its flags, the protocol runs it, and ``config.yaml`` in the run folder stores it resolved.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any

from heldout.registry import Registry
from heldout.splits import DEFAULT_TEST_START, LevelSplit


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
        seed: Run seed; every generator of the run derives from it.
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
        leakage_check: Drop test levels whose first frame equals a training level's first frame.
        checkpoint_freq: Timesteps between model checkpoints (0: none).
        saliency_log_freq: Timesteps between saliency overlays logged to TensorBoard
            (``saliency/overlay``; 0: none).
        out: Root folder of run folders.
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
    leakage_check: bool = True
    checkpoint_freq: int = 0
    saliency_log_freq: int = 0
    out: str = "runs"

    def split(self) -> LevelSplit:
        """The level split this config trains and tests on."""
        return LevelSplit.default(
            num_levels=self.num_levels,
            start_level=self.start_level,
            num_test_levels=self.num_test_levels,
            test_start=self.test_start,
            num_validation_levels=self.num_validation_levels,
        )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied; unknown field names raise TypeError naming them."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(
                f"unknown config field(s) {', '.join(unknown)}; valid fields: {', '.join(field_names())}"
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
        augmentation of the "DrAC (best)" table (``heldout.agents.augment.BEST_AUGMENTATION``).

        An env without an entry keeps ``"best"``, which :meth:`validate` then refuses.
        """
        from heldout.agents.augment import BEST_AUGMENTATION

        if self.agent_kwargs.get("augmentation") != "best" or self.env not in BEST_AUGMENTATION:
            return self
        return self.replace(agent_kwargs={**self.agent_kwargs, "augmentation": BEST_AUGMENTATION[self.env]})

    def validate(self) -> None:
        """Raises ValueError / KeyError / TypeError, naming the bad value, before any work starts."""
        from heldout.agents import AGENTS
        from heldout.envs import DISTRIBUTION_MODES, ENVS, VISUAL_OPTIONS

        ENVS.get(self.env)
        check_agent_kwargs(AGENTS.get(self.agent), self.agent, self.agent_kwargs)
        from heldout.agents.augment import BEST_AUGMENTATION

        if self.agent_kwargs.get("augmentation") == "best" and self.env not in BEST_AUGMENTATION:
            raise ValueError(
                f"augmentation 'best' is defined for the Procgen games only, not env {self.env!r}; "
                f"valid envs: {', '.join(sorted(BEST_AUGMENTATION))}"
            )
        for name in (
            "timesteps",
            "num_envs",
            "num_levels",
            "num_test_levels",
            "eval_episodes",
            "eval_num_envs",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in (
            "eval_freq",
            "checkpoint_freq",
            "num_validation_levels",
            "eval_periodic_episodes",
            "saliency_log_freq",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.distribution_mode not in DISTRIBUTION_MODES:
            raise ValueError(
                f"unknown distribution_mode {self.distribution_mode!r}; valid modes: {', '.join(DISTRIBUTION_MODES)}"
            )
        unknown = sorted(set(self.env_options) - set(VISUAL_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown env option(s) {', '.join(unknown)}; valid options: {', '.join(VISUAL_OPTIONS)}"
            )
        if not 0.0 < self.reward_norm_gamma <= 1.0:
            raise ValueError(f"reward_norm_gamma must be in (0, 1], got {self.reward_norm_gamma!r}")
        self.split()  # raises ValueError on overlapping or invalid level sets


def agent_parameters(agent_cls: type) -> set[str]:
    """The keyword arguments an agent class takes, following ``**kwargs`` up its base classes."""
    names: set[str] = set()
    for cls in agent_cls.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names |= {
            name
            for name, p in params.items()
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return names


def check_agent_kwargs(agent_cls: type, agent: str, agent_kwargs: dict[str, Any]) -> None:
    """Raises TypeError / KeyError naming an agent keyword or augmentation the agent does not take."""
    from heldout.agents import AUGMENTED_AGENTS
    from heldout.agents.augment import AUGMENTATIONS

    if "augmentation" in agent_kwargs and agent not in AUGMENTED_AGENTS:
        hint = " (it picks among its arms: --agent-arg arms=[crop,flip])" if agent == "ucb-drac" else ""
        raise TypeError(
            f"agent {agent!r} takes no augmentation{hint}; agents that do: {', '.join(AUGMENTED_AGENTS)}"
        )
    valid = agent_parameters(agent_cls) - {"policy", "env", "seed", "device", "verbose", "_init_setup_model"}
    unknown = sorted(set(agent_kwargs) - valid)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(valid), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(
            f"agent {agent!r} has no argument {unknown[0]!r}{hint}; valid arguments: {', '.join(sorted(valid))}"
        )
    name = agent_kwargs.get("augmentation")
    if name is not None and name != "best":
        AUGMENTATIONS.get(name)
    for arm in agent_kwargs.get("arms") or ():
        AUGMENTATIONS.get(arm)


def field_names() -> list[str]:
    """The names of :class:`TrainConfig`'s fields."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


PRESETS: Registry[TrainConfig] = Registry("preset")

PRESETS.register(
    "procgen-easy",
    TrainConfig(),
    help="the Procgen reference protocol: easy, 200 training levels, 25M steps, 64x256 rollouts, PPO as in "
    "Cobbe et al. 2020 (ALGORITHMS.md 1.3)",
)
PRESETS.register(
    "procgen-hard",
    TrainConfig(distribution_mode="hard", num_levels=500, timesteps=200_000_000),
    help="Procgen hard: 500 training levels, 200M steps (Cobbe et al. 2020)",
)
PRESETS.register(
    "quickstart",
    TrainConfig(
        env="coinrun",
        timesteps=24_576,
        num_envs=32,
        agent_kwargs={"n_steps": 128, "batch_size": 1024, "n_epochs": 3},
        eval_episodes=100,
        eval_freq=12_288,
        eval_periodic_episodes=16,
        eval_num_envs=50,
    ),
    help="the whole protocol on coinrun in a few minutes on 2 CPU cores (too short to learn much)",
)

#: The augmented agents at the reference protocol (Raileanu et al. 2021, auto-drac ``arguments.py``;
#: Laskin et al. 2020, rad_procgen ``train.py``): PPO's hyper-parameters plus their own defaults.
PRESETS.register(
    "rad-procgen-easy",
    TrainConfig(agent="rad", agent_kwargs={"augmentation": "crop"}),
    help="RAD (crop, collection-time) at the Procgen reference protocol (Laskin et al. 2020)",
)
PRESETS.register(
    "drac-procgen-easy",
    TrainConfig(agent="drac", agent_kwargs={"augmentation": "best", "aug_coef": 0.1}),
    help="DrAC with the game's best augmentation, alpha_r 0.1, Procgen reference (Raileanu et al. 2021)",
)
PRESETS.register(
    "ucb-drac-procgen-easy",
    TrainConfig(
        agent="ucb-drac",
        agent_kwargs={"ucb_exploration_coef": 0.1, "ucb_window_length": 10, "aug_coef": 0.1},
    ),
    help="UCB-DrAC, c 0.1, window 10, alpha_r 0.1, Procgen reference (Raileanu et al. 2021)",
)
PRESETS.register(
    "sgqn-quickstart",
    TrainConfig(
        env="starpilot",
        agent="sgqn",
        timesteps=24_576,
        num_envs=32,
        agent_kwargs={
            "buffer_size": 20_000,
            "learning_starts": 2_048,
            "batch_size": 128,
            "train_freq": 1,
            "target_update_interval": 1_000,
        },
        eval_episodes=100,
        eval_num_envs=50,
    ),
    help="SGQN (DQN) on starpilot in minutes on a CPU: replay 20k, batch 128, one update per 32 env steps",
)
