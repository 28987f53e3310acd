"""What experiment a run folder belongs to: the one definition a report groups seeds by.

Two run folders are seeds of one experiment exactly when :func:`experiment_identity` of their
``config.yaml`` and ``summary.json`` is equal. The identity is every field of the resolved
:class:`~heldout.protocol.config.TrainConfig` (missing fields take their defaults, so a partial
``config.yaml`` and a full one of the same run agree) **except** the fields in :data:`RUN_ONLY_FIELDS`,
which say how one run was carried out, not what was run (its seed, device, checkpointing, threads,
output folder, periodic-evaluation schedule, the number of bins of its printed summary). Everything
else is identity: the env and its family kind, the agent and every keyword argument it was given,
the budget (``timesteps``), the training and evaluation envs (``num_envs``, ``reward_norm``, ...),
for level families the distribution mode, ``num_levels``/``start_level`` and the test range, for
contextual families the context mode with the train / test / validation distributions (read and
written back in one canonical form, so ``"4.9:14.7"`` and ``{"uniform": [4.9, 14.7]}`` agree), the
visible context, the wrappers, the env options. A field added to the config later is identity unless
it is added to :data:`RUN_ONLY_FIELDS`: two runs are never averaged unless they ran the same thing.

A preset is a named config, so it is not identity of its own (a preset with ``--timesteps`` changed
is another experiment through ``timesteps``); its name, read from ``command.txt``, only labels rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Config fields that say how one run was carried out, not which experiment it is: left out of the
#: identity, so seeds (and the same run on another machine) group together.
RUN_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "seed",
        "device",
        "out",
        "checkpoint_freq",
        "checkpoint_minutes",
        "checkpoint_keep",
        "saliency_log_freq",
        "torch_threads",
        "imports",
        "eval_num_envs",
        "eval_freq",
        "eval_periodic_episodes",
        "context_bins",
    }
)

#: Fields that only a level family (Procgen, MiniGrid) reads; a contextual run keeps their defaults.
LEVEL_ONLY_FIELDS: tuple[str, ...] = (
    "num_levels",
    "start_level",
    "num_test_levels",
    "test_start",
    "num_validation_levels",
    "distribution_mode",
    "env_options",
    "leakage_check",
)

#: Fields that only a contextual family reads.
CONTEXT_ONLY_FIELDS: tuple[str, ...] = ("contexts", "visible_context")


def family_kind(env: str, summary: Mapping[str, Any] | None = None) -> str:
    """``"contexts"`` for a contextual env, ``"levels"`` for Procgen and MiniGrid (``summary.json``'s
    ``kind`` when it has one; else the env's family; else ``"levels"``)."""
    kind = (summary or {}).get("kind")
    if isinstance(kind, str) and kind:
        return kind
    try:
        from heldout.envs import CONTEXTUAL_ENVS

        if env in CONTEXTUAL_ENVS:
            return "contexts"
    except Exception:  # pragma: no cover - an env module failed to import
        pass
    return "levels"


def canonical_contexts(spec: Any) -> Any:
    """A context split spec in one canonical form (mode explicit, each distribution written back by
    :meth:`heldout.contexts.ContextDistribution.to_spec`); an unreadable spec is kept as it is."""
    if not isinstance(spec, Mapping) or not spec:
        return spec
    from heldout.contexts import ContextDistribution

    out: dict[str, Any] = {"mode": spec.get("mode", "extrapolation")}
    for name in ("train", "test", "validation"):
        if spec.get(name):
            try:
                out[name] = ContextDistribution.parse(spec[name]).to_spec()
            except (TypeError, ValueError, KeyError):
                out[name] = spec[name]
    return out


@dataclass(frozen=True)
class ExperimentIdentity:
    """An experiment: the identity fields of its runs' configs, as canonical JSON text per field.

    Attributes:
        fields: ``(field, canonical JSON of its value)`` pairs, sorted by field name.
        kind: The env family kind (``"levels"`` or ``"contexts"``).
    """

    fields: tuple[tuple[str, str], ...]
    kind: str

    def value(self, name: str) -> Any:
        """The value of identity field ``name`` (None if it is not one)."""
        for k, v in self.fields:
            if k == name:
                return json.loads(v)
        return None

    @property
    def key(self) -> str:
        """A short stable hash of the identity (for file names): 10 hex digits."""
        text = json.dumps([self.kind, list(self.fields)])
        return hashlib.sha1(text.encode()).hexdigest()[:10]


def experiment_identity(
    config: Mapping[str, Any], summary: Mapping[str, Any] | None = None
) -> ExperimentIdentity:
    """The experiment a run belongs to, from its ``config.yaml`` (and ``summary.json``).

    Every :class:`~heldout.protocol.config.TrainConfig` field but :data:`RUN_ONLY_FIELDS`, missing
    ones filled with their defaults, contexts in canonical form (:func:`canonical_contexts`). A field
    the config does not know (a config written by another version) is identity too.

    Example:
        >>> a = experiment_identity({"env": "cartpole", "seed": 0, "contexts": {"train": {"gravity": "4.9:14.7"}, "test": {"gravity": "14.7:29.4"}}})
        >>> b = experiment_identity({"env": "cartpole", "seed": 1, "contexts": {"mode": "extrapolation", "train": {"gravity": {"uniform": [4.9, 14.7]}}, "test": {"gravity": "14.7:29.4"}}})
        >>> a == b
        True
    """
    from heldout.protocol.config import TrainConfig

    values: dict[str, Any] = TrainConfig().to_dict()
    values.update(config)
    env = str(values.get("env"))
    kind = family_kind(env, summary)
    values["contexts"] = canonical_contexts(values.get("contexts"))
    fields = tuple(
        sorted(
            (name, json.dumps(value, sort_keys=True, default=str))
            for name, value in values.items()
            if name not in RUN_ONLY_FIELDS
        )
    )
    return ExperimentIdentity(fields, kind)


def preset_of(run_dir: str | Path) -> str | None:
    """The preset named on the first ``heldout train`` line of ``command.txt`` (None if none)."""
    path = Path(run_dir) / "command.txt"
    try:
        text = path.read_text()
    except OSError:
        return None
    m = re.search(r"--preset[= ](\S+)", text.splitlines()[0] if text else "")
    return m.group(1).strip("'\"") if m else None


# ----------------------------------------------------------------------------------------------------
# Words for an experiment


def _steps(steps: int) -> str:
    if steps >= 1_000_000:
        return f"{steps / 1e6:.3g}M"
    if steps >= 1000:
        return f"{steps / 1e3:.3g}k"
    return str(steps)


def _describe_dist(spec: Any) -> str:
    from heldout.contexts import ContextDistribution

    try:
        return ContextDistribution.parse(spec).describe()
    except (TypeError, ValueError, KeyError):
        return json.dumps(spec, default=str)


def training_set_text(identity: ExperimentIdentity) -> str:
    """What the runs trained on: ``easy, levels [0, 200)`` or ``gravity U[4.9, 14.7]``."""
    if identity.kind == "contexts":
        contexts = identity.value("contexts") or {}
        return _describe_dist(contexts.get("train")) if contexts.get("train") else "-"
    start, n = identity.value("start_level"), identity.value("num_levels")
    return f"{identity.value('distribution_mode')}, levels [{start}, {start + n})"


def test_set_text(identity: ExperimentIdentity) -> str:
    """What the runs were tested on: ``1000 levels from 100000000`` or ``gravity U[14.7, 29.4]``."""
    if identity.kind == "contexts":
        contexts = identity.value("contexts") or {}
        return _describe_dist(contexts.get("test")) if contexts.get("test") else "-"
    return f"{identity.value('num_test_levels')} levels from {identity.value('test_start')}"


def split_text(identity: ExperimentIdentity) -> str:
    """The split in words: ``extrapolation: train gravity U[4.9, 14.7]; test gravity U[14.7, 29.4]``
    for a contextual experiment, ``easy, levels [0, 200); test 1000 levels from ...`` for levels."""
    if identity.kind == "contexts":
        mode = (identity.value("contexts") or {}).get("mode", "extrapolation")
        return f"{mode}: train {training_set_text(identity)}; test {test_set_text(identity)}"
    return f"{training_set_text(identity)}; test {test_set_text(identity)}"


def _field_text(identity: ExperimentIdentity, name: str, others: Sequence[ExperimentIdentity]) -> str:
    value = identity.value(name)
    if name == "timesteps":
        return f"{_steps(int(value))} steps"
    if name == "contexts":
        return split_text(identity)
    if name in ("num_levels", "start_level"):
        start, n = identity.value("start_level"), identity.value("num_levels")
        return f"levels [{start}, {start + n})"
    if name == "distribution_mode":
        return str(value)
    if isinstance(value, dict):  # agent_kwargs, env_options: only the keys that differ
        keys = sorted(
            k
            for o in others
            for k in set(value) | set(o.value(name) or {})
            if value.get(k) != (o.value(name) or {}).get(k)
        )
        return ", ".join(f"{k}={json.dumps(value.get(k), default=str)}" for k in dict.fromkeys(keys)) or name
    return f"{name}={json.dumps(value, default=str)}"


def differing_fields(identities: Sequence[ExperimentIdentity]) -> list[str]:
    """The identity fields (but ``env`` and ``agent``) whose values differ among ``identities``."""
    values: dict[str, set[str]] = {}
    for ident in identities:
        for k, v in ident.fields:
            values.setdefault(k, set()).add(v)
    out = [k for k, vs in values.items() if len(vs) > 1 and k not in ("env", "agent")]
    if "start_level" in out and "num_levels" in out:
        out.remove("start_level")  # said once, as the level range
    return sorted(out)


def experiment_labels(
    runs: Sequence[tuple[Any, str, str, ExperimentIdentity, str | None]],
) -> dict[Any, str]:
    """A row label per run: its agent, with what tells its experiment apart where one agent ran several.

    Args:
        runs: ``(key, agent, env, identity, preset)`` per run (``preset``: the name ``command.txt``
            gives, or None).

    Returns:
        ``{key: label}``: ``"ppo"`` when each env saw one experiment of ``ppo``; otherwise the agent
        with its experiment's preset, where all its runs name one, and the fields that still differ
        among that agent's experiments on one env: ``"ppo (cartpole-gravity-extrapolation)"``,
        ``"ppo (procgen-easy; 25M steps)"``, ``"ppo (interpolation: train gravity ...; test ...)"``.
        The fields shown are the same for all of an agent's rows of one family kind, so its label
        stays the same across envs where its setting does (the aggregates group by label).
    """
    presets: dict[ExperimentIdentity, set[str | None]] = {}
    by_agent_env: dict[tuple[str, str], list[ExperimentIdentity]] = {}
    for _, agent, env, ident, preset in runs:
        presets.setdefault(ident, set()).add(preset)
        group = by_agent_env.setdefault((agent, env), [])
        if ident not in group:
            group.append(ident)
    preset_of_exp = {i: next(iter(p)) if len(p) == 1 else None for i, p in presets.items()}
    several = {agent for (agent, _), idents in by_agent_env.items() if len(idents) > 1}
    shown: dict[tuple[str, str], set[str]] = {}  # per agent and family kind
    use_preset: dict[tuple[str, str], bool] = {}
    for (agent, _), idents in by_agent_env.items():
        for kind in {i.kind for i in idents}:
            same_kind = [i for i in idents if i.kind == kind]
            named = all(preset_of_exp[i] for i in same_kind)
            use_preset[(agent, kind)] = use_preset.get((agent, kind), True) and named
            sub: dict[str | None, list[ExperimentIdentity]] = {}
            for i in same_kind:  # within one preset, what still differs; without presets, all
                sub.setdefault(preset_of_exp[i] if named else None, []).append(i)
            for group in sub.values():
                shown.setdefault((agent, kind), set()).update(differing_fields(group))
    labels = {}
    for key, agent, env, ident, _ in runs:
        if agent not in several:
            labels[key] = agent
            continue
        parts = []
        if use_preset.get((agent, ident.kind)) and preset_of_exp[ident]:
            parts.append(str(preset_of_exp[ident]))
        names = sorted(
            shown.get((agent, ident.kind), ()), key=lambda n: (n != "contexts", n != "timesteps", n)
        )
        others = by_agent_env[(agent, env)]
        parts += [_field_text(ident, n, others) for n in names]
        labels[key] = f"{agent} ({'; '.join(parts)})" if parts else agent
    return labels


__all__ = [
    "CONTEXT_ONLY_FIELDS",
    "LEVEL_ONLY_FIELDS",
    "RUN_ONLY_FIELDS",
    "ExperimentIdentity",
    "canonical_contexts",
    "differing_fields",
    "experiment_identity",
    "experiment_labels",
    "family_kind",
    "preset_of",
    "split_text",
    "test_set_text",
    "training_set_text",
]
