"""The keyword arguments of an anomalib model class, read from its source without importing anomalib.

Importing ``anomalib.models`` costs 5-25 s (torch, Lightning, timm); checking a protocol's option
names must not. The model package's ``__init__.py`` names its class (``from .lightning_model import
Padim``); that module's ``class Padim(AnomalibModule)`` has an ``__init__`` whose parameters are the
options. When the source does not say (no ``__init__`` of its own, ``**kwargs``, an unusual
layout) the answer is ``None`` and the caller imports the class instead.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any, Union

from pydantic import StrictBool, StrictInt, StrictStr

from harness.analysis import Float
from harness_anomalib import catalogue

SET_BY_ADAPTER = ("self", "pre_processor", "post_processor", "evaluator", "visualizer")
"""Constructor arguments the adapter sets itself (never a protocol option)."""


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _relative_imports(init: ast.Module) -> dict[str, str]:
    """``{class name: module name}`` for every ``from .module import Name`` of the package."""
    found: dict[str, str] = {}
    for node in init.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                found[alias.asname or alias.name] = node.module
    return found


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def _init_of(node: ast.ClassDef) -> ast.FunctionDef | None:
    """The class's own ``__init__``; None when it has none or takes ``**kwargs``."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return item if item.args.kwarg is None else None
    return None


@cache
def _constructor(name: str) -> ast.FunctionDef | None:
    """The ``__init__`` of anomalib's ``name`` model class, read from its source; None when the source does not say."""
    root = catalogue.anomalib_root()
    if root is None:
        return None
    folder = root / "models" / "image" / name
    init = _parse(folder / "__init__.py")
    if init is None:
        return None
    for class_name, module in _relative_imports(init).items():
        tree = _parse(folder / f"{module.replace('.', '/')}.py")
        for node in tree.body if tree is not None else ():
            if isinstance(node, ast.ClassDef) and node.name == class_name and "AnomalibModule" in _base_names(node):
                return _init_of(node)
    return None


def _arguments(constructor: ast.FunctionDef) -> list[ast.arg]:
    every = [*constructor.args.posonlyargs, *constructor.args.args, *constructor.args.kwonlyargs]
    return [a for a in every if a.arg not in SET_BY_ADAPTER]


def source_options(name: str) -> frozenset[str] | None:
    """Keyword arguments of anomalib's ``name`` model class (as ``detector.constructor_options``), or None."""
    constructor = _constructor(name)
    return None if constructor is None else frozenset(a.arg for a in _arguments(constructor))


_SCALARS = {"int": StrictInt, "float": Float, "bool": StrictBool, "str": StrictStr, "Path": StrictStr, "None": None}
_SEQUENCES = {"list", "tuple", "Sequence"}


def _type_of(node: ast.expr | None) -> Any:
    """The type an annotation written with builtins names (``int | None``, ``Sequence[str]``); KeyError otherwise."""
    if isinstance(node, ast.Name):
        return tuple if node.id == "tuple" else _SCALARS[node.id]
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return Union[_type_of(node.left), _type_of(node.right)]  # noqa: UP007  (built from parts at run time)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in _SEQUENCES:
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        items = tuple(_type_of(part) for part in parts)
        return tuple[items] if node.value.id == "tuple" else list[items[0]]
    raise KeyError(ast.unparse(node) if node is not None else "unannotated")


@cache
def source_option_types(name: str) -> dict[str, tuple[Any, str]]:
    """``{option: (type, annotation text)}`` for the options whose annotation names only builtins.

    An option annotated with anything else (an anomalib enum, a torch type) is left out: unchecked.
    """
    constructor = _constructor(name)
    found = {}
    for argument in _arguments(constructor) if constructor is not None else ():
        try:
            found[argument.arg] = (_type_of(argument.annotation), ast.unparse(argument.annotation))
        except KeyError:
            continue
    return found
