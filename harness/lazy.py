"""Public modules whose names are imported on first use (PEP 562), so a plugin pays only for what it uses."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any


def _on_call(module: str, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        from harness.errors import HarnessError

        package = module.partition(".")[0]
        try:
            function = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as exc:
            if exc.name != package:
                raise
            raise HarnessError(
                f"{name} now lives in {module}, and {package} is not installed: pip install it "
                f"(in this repository: pip install -e plugins/{package})"
            ) from None
        if function is call:  # ``module`` imports the name from here: it predates the name's move into it
            raise HarnessError(f"{module} does not define {name}: {package} is older than this harness; upgrade it")
        return function(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{module}.{name}``, imported on the first call."
    return call


def lazy_names(
    public_module: str,
    names: Mapping[str, str],
    private: Mapping[str, str] | None = None,
    on_call: Collection[str] = (),
    moved: Collection[str] = (),
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``public_module`` from ``{module: "name name ..."}``.

    ``private`` maps a public spelling to the name it has in its module; names in ``on_call`` are
    functions whose module loads on their first call rather than on attribute access. Names in ``moved``
    left the core for the module ``names`` gives them: each access warns (:class:`DeprecationWarning`,
    attributed to the line that reads it) naming where to import them from now.
    """
    where = {name: module for module, spaced in names.items() for name in spaced.split()}
    spelled = dict(private or {})
    namespace = importlib.import_module(public_module).__dict__

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {public_module!r} has no attribute {name!r}")
        real = spelled.get(name, name)
        value = _on_call(module, real) if name in on_call else getattr(importlib.import_module(module), real)
        if name in moved:  # not kept in the namespace: every reader is warned, at the line that reads it
            warnings.warn(f"{public_module}.{name} moved to {module}.{real}", DeprecationWarning, stacklevel=2)
            return value
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(where))

    return sorted(where), getattr_, dir_
