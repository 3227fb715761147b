"""Seeding a library the moment it is imported, so a job that never imports it never pays for its import.

``harness.scoring.seed_everything`` seeds torch when it is already imported; otherwise it asks
:func:`seed_on_import` to seed it right after its first import. ``torch.manual_seed`` sets the
whole generator state, so seeding at import time gives the same numbers as seeding before it:
a plugin that imports torch lazily (inside its factory) is still seeded before it draws any
random number, and a detector that never uses torch (a zero-cost detector, a numpy model) no
longer loads torch (seconds, hundreds of MB) just to seed it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

_PENDING: dict[str, Callable[[ModuleType], None]] = {}


def seed_on_import(name: str, seed: Callable[[ModuleType], None]) -> None:
    """Call ``seed(module)`` once, right after top-level module ``name`` is next imported in this process.

    A later call for the same name replaces the earlier callback (the latest job's seed wins).
    """
    _PENDING[name] = seed
    if not any(isinstance(finder, _SeedingFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SeedingFinder())


class _SeedingFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of a pending module so the seed runs after it executes."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _PENDING:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _SeedingLoader(spec.loader, _PENDING.pop(fullname))
                return spec
            if spec is not None:
                return spec
        return None


class _SeedingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, seed: Callable[[ModuleType], None]) -> None:
        self.loader, self.seed = loader, seed

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.seed(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self.loader, name)


__all__ = ["seed_on_import"]
