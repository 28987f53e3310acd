"""A run's plan: everything ``heldout train`` resolves before it creates the run folder.

:func:`plan_train` is the first half of :func:`heldout.protocol.run.run_train`: it validates the
config (every check a real run makes, in the same order), fixes the split and the evaluation lists
(with the leakage record of each held-out list) and names the run folder it would create, and it
writes nothing. ``heldout train --dry-run`` prints it (:func:`describe_plan`, or JSON with
:meth:`TrainPlan.to_dict`); a real run then carries the same plan out, so a dry run that passes is a
run that starts, and bad input fails a dry run with the same line as a real run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heldout.protocol.checks import resolve_device
from heldout.protocol.config import TrainConfig
from heldout.protocol.families import EnvFamily, family_for
from heldout.protocol.run_folder import check_writable, run_dir_path
from heldout.protocol.validate import timesteps_note, validate_config

#: Evaluation-list entries :func:`describe_plan` shows per split (the JSON holds them all).
SHOWN_ITEMS = 8


@dataclass
class TrainPlan:
    """What a run will do, resolved and checked, before anything is written.

    Attributes:
        config: The resolved config (shorthands made explicit).
        family: The env's family.
        agent_cls: The agent's class.
        split: The split (levels or contexts).
        lists: The fixed evaluation list of each split.
        leakage: The leakage record of each checked held-out list.
        run_dir: The run folder the run would create now (its time stamp is the time of planning).
        device: The torch device the run would train on.
        notes: Lines a real run prints before it starts (e.g. the exact number of steps trained).
    """

    config: TrainConfig
    family: EnvFamily
    agent_cls: type
    split: Any
    lists: dict[str, list]
    leakage: dict[str, Any]
    run_dir: Path
    device: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data: config, split, evaluation lists, leakage, run folder, device."""
        return {
            "config": self.config.to_dict(),
            "kind": self.family.kind,
            "agent_class": f"{self.agent_cls.__module__}.{self.agent_cls.__qualname__}",
            "split": self.split.to_dict(),
            "eval_lists": {name: _jsonable(items) for name, items in self.lists.items()},
            "leakage": self.leakage,
            "run_dir": str(self.run_dir),
            "device": self.device,
            "notes": list(self.notes),
        }


def plan_train(config: TrainConfig) -> TrainPlan:
    """Resolves and checks ``config`` as :func:`~heldout.protocol.run.run_train` does; writes nothing.

    Raises:
        ValueError, KeyError, TypeError: on bad input, with the line a real run would print.
    """
    config = config.resolved()
    validate_config(config)
    check_writable(config.out)

    from heldout.agents import AGENTS
    from heldout.protocol import offline

    family = family_for(config.env)
    if offline.is_offline(config.agent):
        agent_cls = offline.offline_agents().get(config.agent)
        note = offline.timesteps_note(agent_cls, config)
    else:
        agent_cls = AGENTS.get(config.agent)
        note = timesteps_note(agent_cls, config)
    split = family.split(config)
    lists, leakage = family.eval_lists(config, split, config.eval_episodes)
    if offline.is_offline(config.agent):
        offline.check_dataset_held_out(config, offline.open_dataset(config.dataset), split, lists)
    return TrainPlan(
        config=config,
        family=family,
        agent_cls=agent_cls,
        split=split,
        lists=lists,
        leakage=leakage,
        run_dir=run_dir_path(config.out, config.env, config.agent, config.seed),
        device=resolve_device(config.device),
        notes=[note] if note is not None else [],
    )


def _jsonable(items: list) -> list:
    """Evaluation-list entries as JSON data (levels are ints; contexts are (context, seed) pairs)."""
    out = []
    for item in items:
        if isinstance(item, tuple | list):
            out.append([_jsonable_value(v) for v in item])
        else:
            out.append(_jsonable_value(item))
    return out


def _jsonable_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable_value(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _describe_item(item: Any, features: tuple[str, ...] = ()) -> str:
    """A level, or a context episode as ``(gravity=21.13; seed 589834677)`` (the varied features)."""
    if isinstance(item, dict) and "context" in item:
        context = item["context"]
        shown = [k for k in context if k in features] or list(context)
        values = ", ".join(f"{k}={_jsonable_value(context[k]):.4g}" for k in shown)
        return f"({values}; seed {item.get('seed')})"
    return str(_jsonable_value(item))


def describe_leakage(record: dict[str, Any]) -> str:
    """One line for a held-out list's leakage record."""
    if not record.get("checked"):
        return f"not checked ({record.get('reason', 'off')})"
    if "held_out_levels" not in record:  # contexts: checked by construction of the split
        return f"checked by {record.get('method', '?')}" + (
            f" ({record['note']})" if record.get("note") else ""
        )
    dropped = record.get("dropped")
    items = dropped if isinstance(dropped, list) else (record.get("duplicates") or [])
    count = len(items) if isinstance(dropped, list) else (dropped if dropped is not None else len(items))
    distinct = f" ({record['train_distinct']} distinct)" if record.get("train_distinct") is not None else ""
    line = (
        f"checked by {record.get('method', 'fingerprint')}: {record['held_out_levels']} levels "
        f"fingerprinted against {record.get('train_levels', '?')} training levels{distinct}, {count} dropped"
    )
    if items:
        shown = ", ".join(
            f"{d['level']} ({d.get('reason') or '= ' + str(d.get('same_as', '?'))})"
            for d in items[:SHOWN_ITEMS]
        )
        more = f", ... {len(items) - SHOWN_ITEMS} more" if len(items) > SHOWN_ITEMS else ""
        line += f": {shown}{more}"
    return line


def describe_plan(plan: TrainPlan) -> str:
    """The plan as text: the config, the split, each evaluation list with its leakage record, the run
    folder, and that nothing was written."""
    from heldout.protocol.run_folder import yaml_text

    config = plan.config
    lines = [
        f"dry run: heldout train would train {config.agent} on {config.env} for {config.timesteps:,} steps "
        f"(seed {config.seed}, device {plan.device}) and write nothing now",
        *plan.notes,
        "",
        "config:",
        *("  " + line for line in yaml_text(config.to_dict()).rstrip("\n").splitlines()),
        "",
        "split:",
    ]
    for name in plan.lists:
        lines.append(f"  {name}: {plan.family.describe_set(plan.split, name)}")
    lines += ["", "evaluation lists (final evaluation; periodic evaluations use their first entries):"]
    features = tuple(getattr(plan.split, "features", lambda: ())())
    for name, items in plan.lists.items():
        shown = ", ".join(_describe_item(x, features) for x in items[:SHOWN_ITEMS])
        more = f", ... ({len(items) - SHOWN_ITEMS} more)" if len(items) > SHOWN_ITEMS else ""
        distinct = len({json.dumps(_jsonable([x]), sort_keys=True) for x in items})
        lines.append(f"  {name}: {len(items)} episodes, {distinct} distinct: {shown}{more}")
        if name in plan.leakage:
            lines.append(f"    leakage: {describe_leakage(plan.leakage[name])}")
            if isinstance(plan.leakage[name], dict) and plan.leakage[name].get("warning"):
                lines.append(f"    warning: {plan.leakage[name]['warning']}")
    lines += ["", f"run folder: {plan.run_dir} (not created)"]
    return "\n".join(lines)


__all__ = ["TrainPlan", "describe_leakage", "describe_plan", "plan_train"]
