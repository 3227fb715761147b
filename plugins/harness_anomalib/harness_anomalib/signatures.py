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


def _init_parameters(node: ast.ClassDef) -> set[str] | None:
    """The parameter names of the class's own ``__init__``; None when it has none or takes ``**kwargs``."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            arguments = item.args
            if arguments.kwarg is not None:
                return None
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            return {a.arg for a in every if a.arg not in SET_BY_ADAPTER}
    return None


@cache
def source_options(name: str) -> frozenset[str] | None:
    """Keyword arguments of anomalib's ``name`` model class (as ``detector.constructor_options``), or None."""
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
                parameters = _init_parameters(node)
                return frozenset(parameters) if parameters is not None else None
    return None
