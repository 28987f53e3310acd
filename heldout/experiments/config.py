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
from heldout.splits import DEFAULT_TEST_START, ContextSplit, LevelSplit


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
        contexts: Contextual envs only: the context split, ``{"mode": "interpolation" |
            "extrapolation" | "combinatorial", "train": {feature: spec}, "test": {...},
            ["validation": {...}]}`` (specs as in ``heldout.contexts.parse_feature``, e.g.
            ``"4.9:14.7"``); see :class:`heldout.splits.ContextSplit`.
        visible_context: Contextual envs only: ``"hidden"`` (default), ``"concat"`` (the normalised
            context appended to the observation) or ``"dict"`` (a Dict observation).
        context_bins: Equal-width bins per varying feature in the by-context summary.
        wrappers: Registered wrappers (``heldout.wrappers.WRAPPERS``) applied to the training env, as
            ``"NAME[:key=value,...]"`` strings, innermost first. Observation and context wrappers
            also apply at evaluation (the policy needs them); reward and recording wrappers only
            at training.
        torch_threads: CPU threads torch may use during the run (0: the env family's default:
            1 for contextual envs, whose small MLPs only lose time synchronising threads, above
            all on a busy machine; torch's own default for Procgen's CNN).
        imports: User modules to import before the agent, env and preset names are looked up: ``.py``
            files or dotted module names that register their own agents, envs, ... (``heldout train
            --import FILE.py``; docs/adding-an-agent.md). :meth:`resolved` records a file as its
            absolute path, and ``heldout eval`` / ``heldout saliency`` import them again.
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
    contexts: dict[str, Any] = field(default_factory=dict)
    visible_context: str = "hidden"
    context_bins: int = 5
    wrappers: list[str] = field(default_factory=list)
    torch_threads: int = 0
    imports: list[str] = field(default_factory=list)

    def split(self) -> LevelSplit | ContextSplit:
        """The split this config trains and tests on: levels for Procgen, contexts for contextual envs."""
        from heldout.experiments.families import family_for

        return family_for(self.env).split(self)

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
        augmentation of the "DrAC (best)" table (``heldout.agents.augment.BEST_AUGMENTATION``), and
        a file in ``imports`` its absolute path (so a run folder can be evaluated from anywhere).

        An env without an entry keeps ``"best"``, which :meth:`validate` then refuses.
        """
        from heldout.agents.augment import BEST_AUGMENTATION
        from heldout.experiments.plugins import normalize_import

        config = self
        imports = [normalize_import(spec) for spec in _import_list(self.imports)]
        if imports != self.imports:
            config = config.replace(imports=imports)
        if self.agent_kwargs.get("augmentation") != "best" or self.env not in BEST_AUGMENTATION:
            return config
        return config.replace(agent_kwargs={**self.agent_kwargs, "augmentation": BEST_AUGMENTATION[self.env]})

    def validate(self) -> None:
        """Raises ValueError / KeyError / TypeError, naming the bad value, before any work starts.

        Imports ``imports`` first (:func:`heldout.experiments.plugins.import_plugins`), so that the
        agent and env names they register resolve.
        """
        from heldout.agents import AGENTS
        from heldout.experiments.families import family_for
        from heldout.experiments.plugins import import_plugins

        import_plugins(_import_list(self.imports))
        family = family_for(self.env)
        if self.agent not in AGENTS:
            hint = (
                ""
                if self.imports
                else " (an agent of your own: --import FILE.py, see docs/adding-an-agent.md)"
            )
            raise KeyError(AGENTS.unknown_message(self.agent) + hint)
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
            "torch_threads",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not 0.0 < self.reward_norm_gamma <= 1.0:
            raise ValueError(f"reward_norm_gamma must be in (0, 1], got {self.reward_norm_gamma!r}")
        family.validate(self)  # env-specific fields; raises ValueError on an overlapping or invalid split
        check_wrappers(self.wrappers)
        family.agent_kwargs(self)  # raises ValueError on an unreadable schedule ("lin_<x>")


def _import_list(imports: Any) -> list[str]:
    """``imports`` checked to be a list of strings (a YAML file may hold anything)."""
    if not isinstance(imports, (list, tuple)) or not all(isinstance(s, str) for s in imports):
        raise TypeError(f"imports must be a list of files or module names, got {imports!r}")
    return list(imports)


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
    # the protocol passes env, seed, device and verbose itself; "policy" is the agent's to choose
    # (contextual presets pick "MlpPolicy")
    valid = agent_parameters(agent_cls) - {"env", "seed", "device", "verbose", "_init_setup_model"}
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


def check_wrappers(specs: Any, what: str = "wrappers") -> list[Any]:
    """Parses wrapper specs and builds each once (checking names, parameter names and values);
    raises KeyError / ValueError / TypeError naming the bad one."""
    from heldout.wrappers import parse_specs

    if specs is None:
        return []
    if isinstance(specs, str) or not isinstance(specs, (list, tuple)):
        raise TypeError(f"{what} must be a list of 'NAME[:key=value,...]' strings, got {specs!r}")
    parsed = parse_specs(specs)
    for spec in parsed:
        spec.build()
    return parsed


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


# -- contextual presets ---------------------------------------------------------------------------
# PPO hyper-parameters from rl-baselines3-zoo's tuned ``hyperparams/ppo.yml`` (Raffin 2020), with its
# linear schedules written as the zoo writes them ("lin_1e-3", resolved by the protocol); our loss halves the
# value error (ALGORITHMS.md 1.6), so vf_coef 1.0 matches SB3's 0.5, and the value clip is off as in
# SB3's default. "reward_norm" follows the zoo's "normalize" (rewards only; observations are not
# normalised here).
_MLP = {"policy": "MlpPolicy", "clip_range_vf": None, "vf_coef": 1.0}
_ZOO: dict[str, dict[str, Any]] = {
    "cartpole": {
        "timesteps": 100_000,
        "num_envs": 8,
        "reward_norm": False,
        "agent_kwargs": {
            **_MLP,
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "ent_coef": 0.0,
            "learning_rate": "lin_1e-3",
            "clip_range": "lin_0.2",
        },
    },
    "pendulum": {
        "timesteps": 100_000,
        "num_envs": 4,
        "reward_norm": False,
        "agent_kwargs": {
            **_MLP,
            "n_steps": 1024,
            "batch_size": 64,
            "gae_lambda": 0.95,
            "gamma": 0.9,
            "n_epochs": 10,
            "ent_coef": 0.0,
            "learning_rate": 1e-3,
            "clip_range": 0.2,
            "use_sde": True,
            "sde_sample_freq": 4,
        },
    },
    "mountaincar": {
        "timesteps": 1_000_000,
        "num_envs": 16,
        "reward_norm": True,
        "agent_kwargs": {
            **_MLP,
            "n_steps": 16,
            "batch_size": 64,
            "gae_lambda": 0.98,
            "gamma": 0.99,
            "n_epochs": 4,
            "ent_coef": 0.0,
        },
    },
    "mountaincar-continuous": {
        "timesteps": 20_000,
        "num_envs": 1,
        "reward_norm": True,
        "agent_kwargs": {
            **_MLP,
            "n_steps": 8,
            "batch_size": 256 // 32,
            "gae_lambda": 0.9,
            "gamma": 0.9999,
            "n_epochs": 10,
            "ent_coef": 0.00429,
            "learning_rate": 7.77e-5,
            "clip_range": 0.1,
            "max_grad_norm": 5.0,
            "vf_coef": 0.38,
            "use_sde": True,
            "policy_kwargs": {"log_std_init": -3.29, "ortho_init": False},
        },
    },
    "acrobot": {
        "timesteps": 1_000_000,
        "num_envs": 16,
        "reward_norm": True,
        "agent_kwargs": {
            **_MLP,
            "n_steps": 256,
            "batch_size": 64,
            "gae_lambda": 0.94,
            "gamma": 0.99,
            "n_epochs": 4,
            "ent_coef": 0.0,
        },
    },
    "lunarlander": {
        "timesteps": 1_000_000,
        "num_envs": 16,
        "reward_norm": False,
        "agent_kwargs": {
            **_MLP,
            "n_steps": 1024,
            "batch_size": 64,
            "gae_lambda": 0.98,
            "gamma": 0.999,
            "n_epochs": 4,
            "ent_coef": 0.01,
        },
    },
}


def contextual_preset(env: str, mode: str, train: Any, test: Any, **changes: Any) -> TrainConfig:
    """A config for contextual env ``env`` with rl-zoo hyper-parameters and the given context split."""
    zoo = _ZOO[env]
    return TrainConfig(
        env=env,
        timesteps=zoo["timesteps"],
        num_envs=zoo["num_envs"],
        reward_norm=zoo["reward_norm"],
        agent_kwargs=dict(zoo["agent_kwargs"]),
        contexts={"mode": mode, "train": train, "test": test},
        eval_episodes=100,
        eval_num_envs=25,
        leakage_check=False,
    ).replace(**changes)


#: name -> (env, mode, train, test, help): each family's interpolation and extrapolation presets.
_CONTEXT_PRESETS: dict[str, tuple[str, str, Any, Any, str]] = {
    "cartpole-gravity-extrapolation": (
        "cartpole", "extrapolation", {"gravity": "4.9:14.7"}, {"gravity": "14.7:29.4"},
        "CartPole: train gravity 4.9-14.7 m/s^2 (0.5-1.5x), test 14.7-29.4 (1.5-3x); ~20 s on 2 CPU cores",
    ),
    "cartpole-gravity-interpolation": (
        "cartpole", "interpolation", {"gravity": "4.9:7.35|12.25:14.7"}, {"gravity": "7.35:12.25"},
        "CartPole: train gravity 4.9-7.35 and 12.25-14.7 m/s^2, test the gap 7.35-12.25",
    ),
    "cartpole-length-extrapolation": (
        "cartpole", "extrapolation", {"length": "0.25:0.75"}, {"length": "0.75:2.5"},
        "CartPole: train pole half-length 0.25-0.75 m, test 0.75-2.5",
    ),
    "cartpole-gravity-length-combinatorial": (
        "cartpole", "combinatorial",
        [{"gravity": "4.9:9.8", "length": "0.25:0.75"}, {"gravity": "4.9:14.7", "length": "0.25:0.5"}],
        {"gravity": "9.8:14.7", "length": "0.5:0.75"},
        "CartPole: train on low gravity or short poles, test high gravity with long poles",
    ),
    "pendulum-mass-extrapolation": (
        "pendulum", "extrapolation", {"m": "0.5:1.5"}, {"m": "1.5:3.0"},
        "Pendulum: train mass 0.5-1.5 kg, test 1.5-3 kg",
    ),
    "pendulum-length-interpolation": (
        "pendulum", "interpolation", {"l": "0.5:0.8|1.2:1.5"}, {"l": "0.8:1.2"},
        "Pendulum: train length 0.5-0.8 and 1.2-1.5 m, test 0.8-1.2",
    ),
    "mountaincar-gravity-extrapolation": (
        "mountaincar", "extrapolation", {"gravity": "0.002:0.003"}, {"gravity": "0.003:0.004"},
        "MountainCar: train gravity 0.002-0.003, test 0.003-0.004",
    ),
    "mountaincar-force-interpolation": (
        "mountaincar", "interpolation", {"force": "0.0008:0.0009|0.0011:0.0012"}, {"force": "0.0009:0.0011"},
        "MountainCar: train force 0.0008-0.0009 and 0.0011-0.0012, test 0.0009-0.0011",
    ),
    "mountaincar-continuous-power-extrapolation": (
        "mountaincar-continuous", "extrapolation", {"power": "0.0012:0.0018"}, {"power": "0.0008:0.0012"},
        "MountainCarContinuous: train power 0.0012-0.0018, test weaker 0.0008-0.0012",
    ),
    "mountaincar-continuous-goal-interpolation": (
        "mountaincar-continuous", "interpolation", {"goal_position": "0.3:0.4|0.5:0.6"},
        {"goal_position": "0.4:0.5"},
        "MountainCarContinuous: train goal 0.3-0.4 and 0.5-0.6, test 0.4-0.5",
    ),
    "acrobot-length-extrapolation": (
        "acrobot", "extrapolation", {"link_length_1": "0.8:1.2"}, {"link_length_1": "1.2:2.0"},
        "Acrobot: train first link length 0.8-1.2 m, test 1.2-2",
    ),
    "acrobot-mass-interpolation": (
        "acrobot", "interpolation", {"link_mass_2": "0.5:0.8|1.2:1.5"}, {"link_mass_2": "0.8:1.2"},
        "Acrobot: train second link mass 0.5-0.8 and 1.2-1.5 kg, test 0.8-1.2",
    ),
    "lunarlander-gravity-extrapolation": (
        "lunarlander", "extrapolation", {"gravity": "-12:-8"}, {"gravity": "-16:-12"},
        "LunarLander: train gravity -12 to -8 m/s^2, test stronger -16 to -12",
    ),
    "lunarlander-wind-interpolation": (
        "lunarlander", "interpolation", {"wind_power": "0:5|10:15"}, {"wind_power": "5:10"},
        "LunarLander: train wind 0-5 and 10-15, test 5-10",
    ),
}  # fmt: skip

#: The contextual families that have presets (all registered ones, once registered).
CONTEXT_PRESET_NAMES: list[str] = []


def _register_context_presets() -> None:
    from heldout.envs import CONTEXTUAL_ENVS

    for name, (env, mode, train, test, help_) in _CONTEXT_PRESETS.items():
        if env in CONTEXTUAL_ENVS:
            PRESETS.register(name, contextual_preset(env, mode, train, test), help=help_)
            CONTEXT_PRESET_NAMES.append(name)


_register_context_presets()


# -- seeded level envs (MiniGrid) -----------------------------------------------------------------
#: PPO for MiniGrid's 7x7x3 symbolic view: an MLP (SB3's default 64x64 net) over the flattened view;
#: 8 envs x 256 steps, 4 epochs of 256-sample minibatches, Adam 5e-4, gamma 0.99, lambda 0.95, entropy
#: 0.01; no reward normalisation (MiniGrid's rewards already lie in [0, 1]). Chosen here by a few trial
#: runs on DoorKey (rl-baselines3-zoo's MiniGrid settings, 512 steps x 10 epochs of 64, learn the same
#: grids about 3x slower in wall time on 2 CPU cores).
MINIGRID_PPO: dict[str, Any] = {
    **_MLP,
    "n_steps": 256,
    "batch_size": 256,
    "gae_lambda": 0.95,
    "gamma": 0.99,
    "n_epochs": 4,
    "ent_coef": 0.01,
    "learning_rate": 5e-4,
    "clip_range": 0.2,
}


def _register_seeded_presets() -> None:
    from heldout.envs import SEEDED_ENVS

    if "minigrid-doorkey-6x6" not in SEEDED_ENVS:  # pragma: no cover - minigrid's module failed
        return
    PRESETS.register(
        "minigrid-doorkey",
        TrainConfig(
            env="minigrid-doorkey-6x6",
            timesteps=200_000,
            num_envs=8,
            num_levels=5,
            reward_norm=False,
            agent_kwargs=dict(MINIGRID_PPO),
            eval_episodes=100,
            eval_freq=50_000,
            eval_periodic_episodes=20,
            eval_num_envs=16,
        ),
        help="MiniGrid DoorKey 6x6: train on 5 levels, test on held-out ones (leak-free); ~1 min on 2 CPU "
        "cores, train return ~0.95 vs test ~0.5",
    )


_register_seeded_presets()
