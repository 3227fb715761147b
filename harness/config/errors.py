"""Pydantic validation errors as one line: file and line (or the ``--set`` that set it), key path, fix."""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.config.yamlio import Locator
from harness.errors import ProtocolError, unknown_name_message

Path_ = tuple[str | int, ...]


def _inner_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Annotated, unions, tuples and lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _inner_models(arg)]


def model_at(model: type[BaseModel] | None, path: Path_, data: Any) -> type[BaseModel] | None:
    """The options model that validates the mapping at ``path`` of ``data`` (None when untyped there)."""
    for part in path:
        if model is None:
            return None
        data = data[part] if isinstance(data, Mapping) and part in data else data
        if isinstance(part, int):
            data = data[part] if isinstance(data, Sequence) and not isinstance(data, str) else data
            continue
        field = model.model_fields.get(str(part))
        candidates = _inner_models(field.annotation) if field else []
        if len(candidates) > 1 and isinstance(data, Mapping):  # a discriminated union: pick by its name
            name = data.get("name", "local")
            candidates = [c for c in candidates if name in typing.get_args(c.model_fields["name"].annotation)]
        model = candidates[0] if candidates else None
    return model


def clean_location(loc: Sequence[str | int], data: Any, keep_last: bool) -> Path_:
    """``loc`` without pydantic's union and validator tags: only keys present in ``data`` are kept."""
    path: list[str | int] = []
    for index, part in enumerate(loc):
        if (isinstance(data, Mapping) and part in data) or (
            isinstance(data, (list, tuple)) and isinstance(part, int) and 0 <= part < len(data)
        ):
            data = data[part]
        elif keep_last and index == len(loc) - 1 and isinstance(data, Mapping) and isinstance(part, str):
            pass
        else:
            continue
        path.append(part)
    return tuple(path)


def _describe(error: dict[str, Any], path: Path_, model: type[BaseModel] | None, data: Any) -> str:
    kind, last = error["type"], str(path[-1]) if path else ""
    named = list(path)
    while named and isinstance(named[-1], int):  # an item of a list: the list's own doc
        named.pop()
    parent = model_at(model, tuple(named[:-1]), data)
    field = parent.model_fields.get(str(named[-1])) if parent is not None and named else None
    last = last if field is None or kind == "extra_forbidden" else str(named[-1])
    hint = f" ({last}: {field.description})" if field is not None and field.description else ""
    if kind == "extra_forbidden":
        allowed = parent.model_fields if parent is not None else ()
        return unknown_name_message("key", last, allowed)
    if kind == "missing":
        return f"missing key '{last}'{hint}"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        return unknown_name_message(last or "name", str(ctx.get("tag")), tags)
    message = "expected a folder path" if kind == "path_type" else str(error["msg"]).removeprefix("Value error, ")
    got = "" if kind == "value_error" and "label" in message else f", got {_shown(error.get('input'))}"
    return f"{message[0].lower()}{message[1:]}{got}{hint}"


def _shown(value: Any) -> str:
    """A value as YAML writes it (true, null), others as Python's repr."""
    return json.dumps(value) if value is None or isinstance(value, bool) else repr(value)


def matching_override(path: Path_, overrides: Mapping[Path_, str] | None) -> str | None:
    """The ``--set`` text that set ``path`` or a key inside or above it, if any."""
    for keys, text in (overrides or {}).items():
        shorter = min(len(keys), len(path))
        if shorter and keys[:shorter] == path[:shorter]:
            return text
    return None


def described(exc: ValidationError, data: Any, model: type[BaseModel] | None) -> tuple[Path_, str]:
    """(key path, one-line message) of the first error of ``exc``.

    ``data`` is what was validated; ``model`` the class that validated it (for the allowed keys
    and the field docs). :func:`error_at` turns the pair into an error naming the file line or ``--set``.
    """
    error = exc.errors()[0]
    path = clean_location(error["loc"], data, keep_last=error["type"] == "missing")
    return path, _describe(error, path, model, data)


def error_at(
    path: Sequence[str | int], message: str, *, source: object, locator: Locator, overrides: Mapping[Path_, str] | None
) -> ProtocolError:
    """A :class:`ProtocolError` at key ``path``: the ``--set`` that set it, else the file and the key's line."""
    full = tuple(path)
    setting = matching_override(full, overrides)
    line = locator.line(full)
    where = f"--set {setting}" if setting is not None else f"{source}:{line}" if line else source
    return ProtocolError(message, path=where, key=".".join(map(str, full)) or None)  # ("a", 0) -> "a.0"
