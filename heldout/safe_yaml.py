"""The one YAML loader of heldout: PyYAML's safe loader, strict where a typo or a hostile file would
otherwise pass silently.

Every YAML that heldout reads goes through :func:`load_yaml` (sweep specs, ``--config`` files, a run
folder's ``config.yaml``, ``KEY=VALUE`` flags, wrapper parameters). On top of ``yaml.SafeLoader``
(no Python objects, ever), :class:`StrictYamlLoader`

* reads only ``true`` / ``false`` as booleans: YAML 1.1 also reads ``yes``, ``no``, ``on`` and
  ``off`` as booleans, so ``reward_norm: on`` would pass as a switch; here it stays text, which the
  owner of the field refuses by name (what ``yaml.safe_dump`` writes reads back the same: it quotes
  such text);
* refuses a key given twice in one mapping (PyYAML keeps the last one silently, so half of a sweep's
  grid could disappear), naming the key and both lines;
* refuses aliases that expand beyond :data:`MAX_ALIAS_NODES` nodes (a "billion laughs" document of
  a few hundred bytes that expands to 10^9 values when a grid or a config walks it) and an alias
  that refers to its own anchor (a cycle);
* refuses a document nested thousands of levels deep (Python's recursion limit) and an integer of
  more digits than Python converts (``sys.get_int_max_str_digits``) with the
  line, rather than a bare RecursionError or ValueError.

Each refusal is a ``yaml.YAMLError`` with the line, which :func:`heldout.protocol.run_folder.read_yaml`
reports as one line naming the file.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: Nodes that aliases may add to a document when expanded (plain documents are not limited: their
#: size is their file's); far above any real spec or config, far below what exhausts memory.
MAX_ALIAS_NODES = 100_000

_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with strict booleans, no duplicate keys and bounded aliases (see the module)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> its size with every alias expanded
        self._alias_nodes = 0

    # -- composing: count what aliases expand to -------------------------------------------------
    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        """Composes a node as PyYAML does, adding up the size its aliases expand to."""
        alias = self.check_event(AliasEvent)
        mark = self.peek_event().start_mark
        node = super().compose_node(parent, index)
        if alias:
            size = self._sizes.get(id(node))
            if size is None:  # its anchor is still being composed: the alias is inside it
                raise ComposerError(
                    None, None, "found an alias inside its own anchor (a cycle that never ends)", mark
                )
            self._alias_nodes += size
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise ComposerError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_NODES:,} values (an alias bomb?); "
                    "write the values out or use fewer aliases",
                    mark,
                )
            return node
        self._sizes[id(node)] = self._size(node)
        return node

    def _size(self, node: Node) -> int:
        if isinstance(node, ScalarNode):
            return 1
        if isinstance(node, SequenceNode):
            return 1 + sum(self._sizes.get(id(child), 1) for child in node.value)
        if isinstance(node, MappingNode):
            return 1 + sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
        return 1

    # -- constructing: one value per key; integers Python can hold -------------------------------
    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        """A mapping, refused when it gives a key twice (merge keys ``<<`` may override)."""
        if isinstance(node, MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    line = first.get(key)
                except TypeError:  # an unhashable key: PyYAML refuses it itself
                    continue
                if line is not None:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"the key {key!r} appears again (first at line {line}; each key once)",
                        key_node.start_mark,
                    )
                first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Node) -> int:
        """An integer, or a YAML error naming the line when it has more digits than Python converts."""
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:
            raise ConstructorError(
                None,
                None,
                f"an integer too long to read ({len(str(node.value))} characters)",
                node.start_mark,
            ) from exc


StrictYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StrictYamlLoader.add_constructor("tag:yaml.org,2002:int", StrictYamlLoader.construct_yaml_int)


def load_yaml(text: Any) -> Any:
    """``text`` (a string or a file) read as YAML by :class:`StrictYamlLoader`.

    Raises:
        yaml.YAMLError: not YAML, or refused (a duplicate key, an alias bomb), with the line.
    """
    try:
        return yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506  (a SafeLoader)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply (thousands of levels of lists or mappings)") from None


__all__ = ["MAX_ALIAS_NODES", "StrictYamlLoader", "load_yaml"]
