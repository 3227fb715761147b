"""Reading protocol YAML safely: UTF-8 only, no duplicate keys, bounded alias expansion, lines kept.

PyYAML's ``safe_load`` lets the last of two equal keys win silently and expands aliases
without limit (a 673-byte "billion laughs" file grows to gigabytes once constructed). Here a
document is composed first (aliases stay shared nodes, so composing is cheap), its expanded
size is counted, and only then is it constructed, by a ``SafeLoader`` that rejects duplicate
keys. The composed node tree is kept to find the line of a dotted key for error messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ProtocolError

MAX_EXPANDED_NODES = 100_000
"""Largest number of YAML nodes a document may expand to once its aliases are resolved."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice (PyYAML would keep the last silently)."""


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a mapping holding the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Construct as SafeLoader does, after checking the mapping's own keys are distinct."""
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            token = (key_node.tag, key_node.value)
            if token in seen:
                first = seen[token].start_mark.line + 1
                raise DuplicateKeyError(
                    None,
                    None,
                    f"duplicate key '{key_node.value}' (first at line {first}); keep one of them",
                    key_node.start_mark,
                )
            seen[token] = key_node
        return super().construct_mapping(node, deep=deep)


def expanded_size(root: yaml.Node | None, limit: int = MAX_EXPANDED_NODES) -> int:
    """Number of nodes ``root`` stands for once every alias is copied out (counting stops past ``limit``)."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in memo:
            return memo[id(node)]
        memo[id(node)] = limit + 1  # a node reached again while being counted is a cycle: too big
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(key) + size(value) for key, value in node.value)
        else:
            total = 1
        memo[id(node)] = min(total, limit + 1)
        return memo[id(node)]

    return 0 if root is None else size(root)


def decode(raw: bytes, source: object) -> str:
    """UTF-8 text of a protocol file, or a one-line error naming the line of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProtocolError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", path=f"{source}:{line}"
        ) from None


def compose_and_load(text: str, source: object) -> tuple[Any, yaml.Node | None]:
    """(data, node tree) of one YAML document; a one-line :class:`ProtocolError` for anything unsafe."""
    loader = StrictSafeLoader(text)
    try:
        root = loader.get_single_node()
        if expanded_size(root) > MAX_EXPANDED_NODES:
            raise ProtocolError(
                f"aliases expand to more than {MAX_EXPANDED_NODES:,} YAML nodes; "
                "write the values out or use fewer nested aliases",
                path=source,
            )
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else str(source)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, DuplicateKeyError):
            raise ProtocolError(f"{where}: {problem}") from None
        raise ProtocolError(f"{where}: malformed YAML ({problem}); fix the syntax at that line") from None
    except RecursionError:
        raise ProtocolError(f"{source}: YAML nested too deeply; flatten the document") from None
    finally:
        loader.dispose()
    return data, root


class Locator:
    """Finds the line of a key path (``("models", 0, "options")``) in a composed YAML document."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, path: Sequence[str | int]) -> int | None:
        """1-based line of the deepest node along ``path`` (the key itself when present)."""
        node, found = self.root, None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
            else:
                node = None
            if node is None:
                break
            found = node
        return found.start_mark.line + 1 if found is not None else None


def load_yaml_file(path: Path) -> tuple[Any, yaml.Node | None]:
    """(data, node tree) of a protocol file (or one it includes): UTF-8, with :func:`compose_and_load`'s checks."""
    return compose_and_load(decode(path.read_bytes(), path), path)
