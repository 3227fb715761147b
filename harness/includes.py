"""``include:`` in protocol files (lm-evaluation-harness style): start from another file, override a few keys.

    include: kde_vs_test            # a shipped protocol by name, or a path relative to this file
    models: [{name: patchcore}]     # replaces the included list
    dataset: {root: /data/mvtec}    # merged key by key into the included mapping

Mappings merge recursively (the including file wins); lists and scalars are replaced. ``include``
may name one file or a list (later ones win); included files may include others; a cycle is an error.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config.yamlio import load_yaml_file
from harness.errors import ProtocolError

INCLUDE_KEY = "include"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in: mappings recursively, everything else replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _include_path(name: str, including: Path) -> Path:
    from harness.protocol_files import shipped_protocols

    candidate = Path(name) if Path(name).is_absolute() else including.parent / name
    if candidate.is_file():
        return candidate
    shipped = shipped_protocols()
    stem = Path(name).stem if Path(name).suffix in (".yaml", ".yml") else name
    if stem in shipped:
        return shipped[stem]
    raise ProtocolError(
        f"included file '{name}' not found (relative to {including.parent}, nor a shipped protocol); "
        "fix the path or see `harness list protocols`",
        path=including,
        key=INCLUDE_KEY,
    )


def _read(path: Path) -> dict[str, Any]:
    """An included file, read as safely as the including one (UTF-8, no duplicate keys, bounded aliases)."""
    data, _ = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ProtocolError("an included protocol file must be a YAML mapping", path=path)
    return data


def expand_includes(data: Mapping[str, Any], path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """``data`` (read from ``path``) with its ``include:`` files merged underneath it, recursively."""
    if INCLUDE_KEY not in data:
        return dict(data)
    chain = (*chain, path.resolve())
    names = data[INCLUDE_KEY]
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ProtocolError("'include' takes a file name or a list of file names", path=path, key=INCLUDE_KEY)
    base: dict[str, Any] = {}
    for name in names:
        included = _include_path(name, path)
        if included.resolve() in chain:
            cycle = " -> ".join(str(p) for p in (*chain, included.resolve()))
            raise ProtocolError(f"include cycle: {cycle}; remove one of the includes", path=path, key=INCLUDE_KEY)
        base = deep_merge(base, expand_includes(_read(included), included, chain))
    own = {k: v for k, v in data.items() if k != INCLUDE_KEY}
    return deep_merge(base, own)
