"""The whole check of a run's config, before anything is written: each part checks what it owns.

:meth:`TrainConfig.validate <heldout.protocol.config.TrainConfig.validate>` checks the config's own
fields (types, counts, numbers, the seed); :func:`heldout.protocol.checks.resolve_device` the device;
the env's family (:mod:`heldout.protocol.families`) its env-specific fields and split; the wrapper
registry the wrappers; the agent registry the agent, and :func:`check_agent_fits_env` whether it can
run on the env: its action space, image observations where it needs them, its keyword arguments and
their ranges (:data:`HYPERPARAMETER_CHECKS`), its policy, and one build on a one-env probe.
:func:`validate_config` runs them all, in that order, as ``heldout train`` does, so bad input is one
line and no run folder.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from heldout.protocol.checks import check_bool, check_int, check_number, describe_space, resolve_device
from heldout.protocol.config import TrainConfig, import_list
from heldout.protocol.families import EnvFamily, family_for
from heldout.protocol.plugins import import_plugins


def validate_config(config: TrainConfig) -> None:
    """Raises ValueError / KeyError / TypeError, naming the bad value, before any work starts.

    Imports ``config.imports`` first (:func:`heldout.protocol.plugins.import_plugins`), so that the
    agent and env names they register resolve. Then, in order: the config's own fields
    (:meth:`TrainConfig.validate`), the env and agent names, the device (:func:`resolve_device`), the
    env's family (its fields and split), the wrappers, and whether the agent can run on the env at all
    (:func:`check_agent_fits_env`: its action space and observations, the agent's keyword arguments
    and their ranges, the policy, and one build of the agent on a one-env probe), so that nothing a
    run folder would record fails once the folder exists.
    """
    from heldout.agents import AGENTS
    from heldout.agents.augment import BEST_AUGMENTATION

    import_plugins(import_list(config.imports))
    config.validate()
    family = family_for(config.env)
    from heldout.agents.bonuses import NO_BONUS
    from heldout.protocol.offline import check_offline_config, is_offline, offline_agents

    if is_offline(config.agent):  # learns from a dataset: its own checks (heldout.protocol.offline)
        if config.record_rollouts:
            raise ValueError(
                f"--record-rollouts records an online agent's training; offline agent {config.agent!r} plays none"
            )
        if config.bonus != NO_BONUS:
            raise ValueError(
                f"--bonus {config.bonus!r} adds to the rewards of online rollouts; offline agent "
                f"{config.agent!r} learns from its dataset's rewards (valid: no --bonus)"
            )
        resolve_device(config.device)
        family.validate(config)
        check_offline_config(config, family)
        return
    if config.agent not in AGENTS:  # neither online nor offline: the names of both registries
        offline = offline_agents().names()
        close = difflib.get_close_matches(config.agent, [*AGENTS.names(), *offline], n=1, cutoff=0.5)
        hint = (
            "" if config.imports else " (an agent of your own: --import FILE.py, see docs/adding-an-agent.md)"
        )
        raise KeyError(
            f"unknown agent {config.agent!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; valid agents: {', '.join(AGENTS.names())}; offline agents (with --dataset): "
            + ", ".join(offline)
            + hint
        )
    if config.dataset:
        raise ValueError(
            f"--dataset {config.dataset!r} goes with an offline agent (valid: {', '.join(offline_agents().names())}); "
            f"agent {config.agent!r} learns online"
        )
    if config.record_rollouts and family.kind != "levels":
        raise ValueError(
            f"--record-rollouts records level envs (Procgen, MiniGrid), not env {config.env!r}, which trains on "
            "contexts"
        )
    agent_cls = AGENTS.get(config.agent)
    resolve_device(config.device)
    family.validate(config)  # env-specific fields; raises ValueError on an overlapping or invalid split
    check_wrappers(config.wrappers)
    if config.agent_kwargs.get("augmentation") == "best" and config.env not in BEST_AUGMENTATION:
        raise ValueError(
            f"augmentation 'best' is defined for the Procgen games only, not env {config.env!r}; "
            f"valid envs: {', '.join(sorted(BEST_AUGMENTATION))}"
        )
    check_level_sampler(config, agent_cls, family)
    check_bonus_config(config, agent_cls)
    check_agent_fits_env(agent_cls, config, family)


def check_bonus_config(config: TrainConfig, agent_cls: type) -> None:
    """The exploration bonus's name and options (:func:`heldout.agents.bonuses.check_bonus`), and
    whether the agent can take it: a bonus rides on heldout's PPO rollouts (on-policy agents only).
    Whether it can score the env's observations is checked on the probe (:func:`check_agent_fits_env`).

    Raises:
        KeyError: an unknown bonus (did you mean). ValueError: one line naming the bad value.
    """
    from heldout.agents import AGENTS
    from heldout.agents.bonuses import NO_BONUS, check_bonus
    from heldout.agents.ppo import PPO

    check_bonus(config.bonus, config.bonus_kwargs)
    if config.bonus != NO_BONUS and not (isinstance(agent_cls, type) and issubclass(agent_cls, PPO)):
        able = [
            n for n in AGENTS.names() if isinstance(AGENTS.get(n), type) and issubclass(AGENTS.get(n), PPO)
        ]
        raise ValueError(
            f"bonus {config.bonus!r} adds to the rewards of on-policy rollouts; agent {config.agent!r} has "
            f"none; valid agents: {', '.join(able)}"
        )


def check_bonus_on_probe(config: TrainConfig, env: Any) -> None:
    """Whether ``config``'s bonus can score the probe ``env`` (the spaces, and a declared ``key`` in
    its ``info``: one reset and one step with a fixed action).

    Raises:
        ValueError: one line naming the bonus, the env and what fits.
    """
    from heldout.agents.bonuses import COMBINATIONS, NO_BONUS, check_bonus, check_bonus_fits

    if config.bonus == NO_BONUS:
        return
    options = check_bonus(config.bonus, config.bonus_kwargs)
    check_bonus_fits(config.bonus, options, env.observation_space, env.action_space, env=config.env)
    parts = (
        [options["global_options"], options["episodic_options"]]
        if config.bonus in COMBINATIONS
        else [options]
    )
    keys = sorted({p["key"] for p in parts if p.get("key", "obs") != "obs"})
    if not keys:
        return
    _, info = env.reset(seed=0)
    seen = set(info)
    space = env.action_space
    action = space.sample() if not hasattr(space, "n") else 0
    seen |= set(env.step(action)[4])
    for key in keys:
        if key not in seen:
            raise ValueError(
                f"--bonus-arg key={key!r}: env {config.env!r} reports no info entry {key!r} to count; valid: obs"
                + (f", {', '.join(sorted(map(str, seen)))}" if seen else "")
            )


def check_level_sampler(config: TrainConfig, agent_cls: type, family: EnvFamily) -> None:
    """The level sampler's name and options (:func:`heldout.envs.plr.check_sampler_kwargs`), and
    whether the run can use it: a learning sampler (PLR, Robust PLR) needs level envs (Procgen,
    MiniGrid: not contexts) and an on-policy agent built on heldout's PPO (it scores levels from the
    rollout's GAE advantages; off-policy agents such as sgqn have none).

    Raises:
        ValueError: one line naming the bad value and the valid ones.
    """
    from heldout.agents import AGENTS
    from heldout.agents.ppo import PPO
    from heldout.envs.plr import check_sampler_kwargs

    check_sampler_kwargs(config.level_sampler, config.sampler_kwargs)
    if config.level_sampler == "uniform":
        return
    if getattr(family, "kind", "") != "levels":
        raise ValueError(
            f"level sampler {config.level_sampler!r} picks training levels; env {config.env!r} has contexts, "
            "not levels; valid for it: --level-sampler uniform (the default)"
        )
    if not issubclass(agent_cls, PPO):
        able = [
            n for n in AGENTS.names() if isinstance(AGENTS.get(n), type) and issubclass(AGENTS.get(n), PPO)
        ]
        raise ValueError(
            f"level sampler {config.level_sampler!r} scores levels from an on-policy rollout (GAE advantages); "
            f"agent {config.agent!r} has none; valid agents: {', '.join(able)}"
        )


def check_agent_fits_env(agent_cls: type, config: TrainConfig, family: EnvFamily) -> None:
    """Whether ``config``'s agent can train on its env, checked on a one-env probe of the env (with the
    training wrappers that change what the agent sees) before any run folder exists.

    In order: the env's action space against the agent's (:func:`supported_action_spaces`), image
    observations for agents that need them (``image_only``), the keyword arguments
    (:func:`check_agent_kwargs`: names and ranges), the policy against the observations
    (:func:`check_policy`), ``saliency_log_freq`` (maps over pixels: images only), and finally one
    build of the agent on the probe (CPU, no seed), which surfaces whatever else its constructor
    refuses as one ValueError naming the agent and the env.

    Raises:
        ValueError, TypeError, KeyError: naming the agent, the env and what fits.
    """
    from heldout.protocol.families import eval_wrappers
    from heldout.wrappers import apply_wrappers

    probe = family.probe_env(config)
    try:
        env = apply_wrappers(probe, eval_wrappers(config), stage="eval")
        obs_space, action_space = env.observation_space, env.action_space
        check_action_space(agent_cls, config.agent, config.env, action_space)
        image = is_image(obs_space)
        if getattr(agent_cls, "image_only", False) and not image:
            raise ValueError(
                f"agent {config.agent!r} needs image observations (its augmentations and saliency act on "
                f"pixels); env {config.env!r} observes {describe_space(obs_space)}; valid agents for it: "
                f"{', '.join(_agents_for(obs_space, action_space))}"
            )
        check_agent_kwargs(agent_cls, config.agent, config.agent_kwargs, num_envs=config.num_envs)
        check_bonus_on_probe(config, env)
        kwargs = family.agent_kwargs(config)  # raises ValueError on an unreadable schedule ("lin_<x>")
        check_policy(
            agent_cls,
            config.agent,
            kwargs.get("policy", agent_defaults(agent_cls).get("policy")),
            config.env,
            obs_space,
        )
        if config.saliency_log_freq and not image:
            raise ValueError(
                f"saliency_log_freq={config.saliency_log_freq} (--saliency-log-freq) needs image observations "
                f"(saliency maps are over pixels); env {config.env!r} observes {describe_space(obs_space)}; "
                "valid for it: 0 (none)"
            )
        _build_once(agent_cls, config, env, kwargs)
    finally:
        probe.close()


def is_image(space: Any) -> bool:
    """Whether observations of ``space`` are images: a 3-dimensional Box (channels first or last)."""
    from gymnasium import spaces

    return isinstance(space, spaces.Box) and len(space.shape) == 3


def supported_action_spaces(agent_cls: type) -> tuple[type, ...] | None:
    """The action space classes an agent can act in: its own ``supported_action_spaces`` class
    attribute, else its stable-baselines3 algorithm's (PPO / A2C: all, DQN: Discrete, SAC / TD3 /
    DDPG: Box); None when unknown."""
    from gymnasium import spaces
    from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3

    declared = getattr(agent_cls, "supported_action_spaces", None)
    if declared:
        return tuple(declared)
    if issubclass(agent_cls, DQN):
        return (spaces.Discrete,)
    if issubclass(agent_cls, (SAC, TD3, DDPG)):
        return (spaces.Box,)
    if issubclass(agent_cls, (PPO, A2C)):
        return (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
    return None


def check_action_space(agent_cls: type, agent: str, env: str, action_space: Any) -> None:
    """Raises ValueError when ``agent`` cannot act in ``env``'s action space, naming the agents that can."""
    supported = supported_action_spaces(agent_cls)
    if supported is None or isinstance(action_space, supported):
        return
    from heldout.agents import AGENTS

    able = [
        name
        for name in AGENTS.names()
        if (s := supported_action_spaces(AGENTS.get(name))) is None or isinstance(action_space, s)
    ]
    raise ValueError(
        f"agent {agent!r} cannot act in env {env!r}: its actions are {describe_space(action_space)} "
        f"({type(action_space).__name__}), and {agent!r} acts in {', '.join(c.__name__ for c in supported)} "
        f"action spaces only; agents that can: {', '.join(able) or 'none registered'}"
    )


def _agents_for(obs_space: Any, action_space: Any) -> list[str]:
    from heldout.agents import AGENTS

    image = is_image(obs_space)
    out = []
    for name in AGENTS.names():
        cls = AGENTS.get(name)
        supported = supported_action_spaces(cls)
        if (supported is None or isinstance(action_space, supported)) and (
            image or not getattr(cls, "image_only", False)
        ):
            out.append(name)
    return out


def fitting_policies(obs_space: Any) -> list[str]:
    """The SB3 policy aliases that take observations of ``obs_space``."""
    from gymnasium import spaces

    if isinstance(obs_space, spaces.Dict):
        return ["MultiInputPolicy"]
    if is_image(obs_space):
        return ["CnnPolicy", "MlpPolicy"]
    return ["MlpPolicy"]


def check_policy(agent_cls: type, agent: str, policy: Any, env: str, obs_space: Any) -> None:
    """Raises ValueError when the policy ``policy`` (an SB3 alias) is unknown to the agent or cannot take
    ``env``'s observations (``CnnPolicy`` needs images, ``MultiInputPolicy`` a Dict, ``MlpPolicy`` no
    Dict); a policy class is left to the agent's build."""
    if not isinstance(policy, str):
        return
    aliases = list(getattr(agent_cls, "policy_aliases", {}) or {})
    if aliases and policy not in aliases:
        close = difflib.get_close_matches(policy, aliases, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"agent {agent!r} has no policy {policy!r}{hint}; valid policies: {', '.join(aliases)}"
        )
    fitting = [p for p in fitting_policies(obs_space) if not aliases or p in aliases]
    if policy not in fitting:
        raise ValueError(
            f"policy {policy!r} of agent {agent!r} cannot take the observations of env {env!r} "
            f"({describe_space(obs_space)}); valid policies for it: {', '.join(fitting)} "
            "(--agent-arg policy=NAME)"
        )


def _build_once(agent_cls: type, config: TrainConfig, env: Any, kwargs: dict[str, Any]) -> None:
    """Builds the agent once on the probe ``env`` (CPU, no seed: the global generators are left to the
    run), so that whatever its constructor refuses is refused before the run folder exists."""
    import warnings

    params = agent_parameters(agent_cls)
    kwargs = dict(kwargs)
    if "buffer_size" in params:  # off-policy: no replay memory for a build
        kwargs["buffer_size"] = 1
    if "n_steps" in params:  # the probe has one env; n_steps * num_envs > 1 was checked already
        n_steps = kwargs.get("n_steps", agent_defaults(agent_cls).get("n_steps"))
        if isinstance(n_steps, int) and n_steps < 2:
            kwargs["n_steps"] = 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # minibatch vs one-env rollout size: irrelevant here
            model = agent_cls(env=env, seed=None, device="cpu", verbose=0, **kwargs)
    except Exception as exc:  # one line for whatever the agent refuses (it is bad input here)
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(
            f"agent {config.agent!r} cannot be built for env {config.env!r} with agent_kwargs "
            f"{config.agent_kwargs!r}: {type(exc).__name__}: {message}"
        ) from None
    del model


def agent_defaults(agent_cls: type) -> dict[str, Any]:
    """The default keyword arguments of an agent class, following ``**kwargs`` up its base classes
    (the most derived class's default wins)."""
    defaults: dict[str, Any] = {}
    for cls in agent_cls.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        for name, p in params.items():
            if p.default is not p.empty and name not in defaults:
                defaults[name] = p.default
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return defaults


def rollout_steps(agent_cls: type, config: TrainConfig) -> int:
    """Timesteps per collection: training runs whole collections of this many env steps, so it ends at
    the first multiple of it at or past ``config.timesteps`` (on-policy: ``num_envs * n_steps``;
    off-policy: ``num_envs * train_freq``)."""
    kwargs = {**agent_defaults(agent_cls), **family_for(config.env).agent_kwargs(config)}
    per_env = kwargs.get("n_steps", kwargs.get("train_freq", 1))
    if isinstance(per_env, bool) or not isinstance(per_env, int) or per_env < 1:
        per_env = 1  # a (frequency, unit) pair: episodes are not steps
    return config.num_envs * per_env


def timesteps_note(agent_cls: type, config: TrainConfig) -> str | None:
    """A note giving the exact number of steps trained when ``config.timesteps`` is not a whole number
    of collections (:func:`rollout_steps`); None when it is."""
    size = rollout_steps(agent_cls, config)
    used = -(-config.timesteps // size) * size
    if used == config.timesteps:
        return None
    what = "n_steps" if "n_steps" in agent_parameters(agent_cls) else "train_freq"
    return (
        f"note: timesteps {config.timesteps} is trained as {used}: whole collections of num_envs "
        f"{config.num_envs} x {what} {size // config.num_envs} = {size} steps each"
    )


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


def _schedule_or_positive(name: str, value: Any) -> None:
    """A positive finite number, or a linear schedule ``lin_<initial>`` whose initial value is one
    (another string is refused by :func:`heldout.protocol.families.resolve_schedules`, naming the form)."""
    if isinstance(value, str):
        if value.startswith("lin_"):
            try:
                initial = float(value[4:])
            except ValueError:
                return  # resolve_schedules names the form
            check_number(
                f"agent argument {name} (the initial value of {value!r})", initial, low=0, low_open=True
            )
        return
    if callable(value):  # an SB3 schedule given in Python
        return
    check_number(f"agent argument {name}", value, low=0, low_open=True)


def _optional(check: Any) -> Any:
    def inner(name: str, value: Any) -> None:
        if value is not None:
            check(name, value)

    return inner


def _int(minimum: int) -> Any:
    return lambda name, value: check_int(f"agent argument {name}", value, minimum=minimum)


def _number(low: float | None = None, high: float | None = None, **open_ends: bool) -> Any:
    return lambda name, value: check_number(f"agent argument {name}", value, low, high, **open_ends)


#: The ranges of the common SB3 hyper-parameters, checked for every agent that takes them (SB3 checks
#: few of them, some only when training has started, and some not at all: gamma 1.5 trains).
HYPERPARAMETER_CHECKS: dict[str, Any] = {
    "learning_rate": _schedule_or_positive,
    "clip_range": _schedule_or_positive,
    "clip_range_vf": _optional(_schedule_or_positive),
    "gamma": _number(0.0, 1.0, low_open=True),
    "gae_lambda": _number(0.0, 1.0),
    "ent_coef": _number(0.0),
    "vf_coef": _number(0.0),
    "max_grad_norm": _number(0.0, low_open=True),
    "target_kl": _optional(_number(0.0, low_open=True)),
    "n_steps": _int(1),
    "batch_size": _int(1),
    "n_epochs": _int(1),
    "normalize_advantage": lambda name, value: check_bool(f"agent argument {name}", value),
    "buffer_size": _int(1),
    "learning_starts": _int(0),
    "tau": _number(0.0, 1.0, low_open=True),
    "train_freq": _int(1),
    "gradient_steps": _int(-1),
    "target_update_interval": _int(1),
    "exploration_fraction": _number(0.0, 1.0),
    "exploration_initial_eps": _number(0.0, 1.0),
    "exploration_final_eps": _number(0.0, 1.0),
    "aug_coef": _number(0.0),
    "aux_learning_rate": _number(0.0, low_open=True),
    "precision": lambda name, value: _choice(name, value, ("fp32", "bf16")),
    "engine": lambda name, value: _choice(name, value, ("auto", "heldout", "sb3")),
    "representation": lambda name, value: _geometry(representation=value),
    "curvature": lambda name, value: _geometry(curvature=value),
    "s_rym": lambda name, value: check_bool(f"agent argument {name}", value),
    "feature_reg": lambda name, value: check_bool(f"agent argument {name}", value),
    "hl_gauss": lambda name, value: check_bool(f"agent argument {name}", value),
}

#: The agent arguments of the head's geometry (:mod:`heldout.agents.hyperbolic`), which only the
#: PPO-family agents take.
GEOMETRY_ARGUMENTS: tuple[str, ...] = ("representation", "curvature", "s_rym", "feature_reg", "hl_gauss")


def _geometry(representation: Any = "euclidean", curvature: Any = 1.0) -> None:
    from heldout.agents.hyperbolic import check_geometry  # torch: imported when needed

    check_geometry(representation, curvature)


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"agent argument {name}={value!r} is not one of {', '.join(valid)}")


def check_agent_kwargs(
    agent_cls: type, agent: str, agent_kwargs: dict[str, Any], num_envs: int | None = None
) -> None:
    """Raises TypeError / KeyError / ValueError naming an agent keyword or augmentation the agent does
    not take, or a hyper-parameter out of its range (:data:`HYPERPARAMETER_CHECKS`); with
    ``num_envs``, also the rollout SB3 needs (``n_steps * num_envs > 1``; a minibatch of more than one
    sample when advantages are normalised)."""
    from heldout.agents import AUGMENTED_AGENTS
    from heldout.agents.augment import AUGMENTATIONS

    if not isinstance(agent_kwargs, dict):
        raise TypeError(f"agent_kwargs must be a mapping of argument names to values, got {agent_kwargs!r}")

    if "augmentation" in agent_kwargs and agent not in AUGMENTED_AGENTS:
        hint = " (it picks among its arms: --agent-arg arms=[crop,flip])" if agent == "ucb-drac" else ""
        raise TypeError(
            f"agent {agent!r} takes no augmentation (got {agent_kwargs['augmentation']!r}){hint}; agents that "
            f"do: {', '.join(AUGMENTED_AGENTS)}"
        )
    # the protocol passes env, seed, device and verbose itself; "policy" is the agent's to choose
    # (contextual presets pick "MlpPolicy")
    valid = agent_parameters(agent_cls) - {"env", "seed", "device", "verbose", "_init_setup_model"}
    unknown = sorted(set(agent_kwargs) - valid)
    geometry = [name for name in GEOMETRY_ARGUMENTS if name in unknown]
    if geometry:
        from heldout.agents import AGENTS

        takers = [name for name in AGENTS.names() if "representation" in agent_parameters(AGENTS.get(name))]
        raise TypeError(
            f"agent {agent!r} has no policy and value heads to make hyperbolic (got {geometry[0]}="
            f"{agent_kwargs[geometry[0]]!r}); agents that take {geometry[0]}: {', '.join(takers)}"
        )
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
    for key, value in agent_kwargs.items():
        if key in HYPERPARAMETER_CHECKS:
            HYPERPARAMETER_CHECKS[key](key, value)
    if agent_kwargs.get("feature_reg") and agent_kwargs.get("representation", "euclidean") == "euclidean":
        from heldout.agents.hyperbolic import check_geometry  # torch: imported when needed

        check_geometry("euclidean", 1.0, feature_reg=True)  # raises, naming the representations it needs
    if num_envs is None:
        return
    effective = {**agent_defaults(agent_cls), **agent_kwargs}
    n_steps = effective.get("n_steps")
    if "n_steps" in valid and isinstance(n_steps, int) and n_steps * num_envs <= 1:
        raise ValueError(
            f"a rollout of n_steps {n_steps} x num_envs {num_envs} = {n_steps * num_envs} step is too short "
            "(SB3 needs more than 1): raise --agent-arg n_steps or --num-envs"
        )
    batch_size = effective.get("batch_size")
    if "n_steps" in valid and effective.get("normalize_advantage", False) and batch_size == 1:
        raise ValueError(
            "agent argument batch_size must be at least 2 when advantages are normalised "
            "(normalize_advantage=true), got 1"
        )


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
