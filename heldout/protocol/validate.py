"""The whole check of a run's config, before anything is written: each part checks what it owns.

:meth:`TrainConfig.validate <heldout.protocol.config.TrainConfig.validate>` checks the config's own
counts and numbers; the env's family (:mod:`heldout.protocol.families`) its env-specific fields and
split; the agent registry the agent and its keyword arguments; the wrapper registry the wrappers.
:func:`validate_config` runs them all, in that order, as ``heldout train`` does.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from heldout.protocol.config import TrainConfig, import_list
from heldout.protocol.families import family_for
from heldout.protocol.plugins import import_plugins


def validate_config(config: TrainConfig) -> None:
    """Raises ValueError / KeyError / TypeError, naming the bad value, before any work starts.

    Imports ``config.imports`` first (:func:`heldout.protocol.plugins.import_plugins`), so that the
    agent and env names they register resolve.
    """
    from heldout.agents import AGENTS
    from heldout.agents.augment import BEST_AUGMENTATION

    import_plugins(import_list(config.imports))
    family = family_for(config.env)
    if config.agent not in AGENTS:
        hint = (
            "" if config.imports else " (an agent of your own: --import FILE.py, see docs/adding-an-agent.md)"
        )
        raise KeyError(AGENTS.unknown_message(config.agent) + hint)
    check_agent_kwargs(AGENTS.get(config.agent), config.agent, config.agent_kwargs)
    if config.agent_kwargs.get("augmentation") == "best" and config.env not in BEST_AUGMENTATION:
        raise ValueError(
            f"augmentation 'best' is defined for the Procgen games only, not env {config.env!r}; "
            f"valid envs: {', '.join(sorted(BEST_AUGMENTATION))}"
        )
    config.validate()
    family.validate(config)  # env-specific fields; raises ValueError on an overlapping or invalid split
    check_wrappers(config.wrappers)
    family.agent_kwargs(config)  # raises ValueError on an unreadable schedule ("lin_<x>")


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
