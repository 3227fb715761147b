"""The plugin manager: built-in plugins plus every ``harness.plugins`` entry point.

A plugin that fails to import is recorded with its reason and skipped, so that one broken
package never takes the others down. Registries merge the plugins' registration hooks, each
called through pluggy for one plugin at a time so that every entry keeps its owner; a plugin
that claims a name another plugin holds is rejected whole. Entries are normalised here, once:
models into :class:`~harness.contract.ModelSpec`, protocol kinds into
:class:`~harness.analyses.base.AnalysisSpec`. ``HARNESS_TRACE_PLUGINS=1`` traces every hook
call to stderr (pluggy's tracing).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from harness import __version__, hookspecs
from harness.errors import HarnessError, unknown_name_message
from harness.names import resolve_name, unknown_message

if TYPE_CHECKING:  # imported on first use: loading plugins must not import what analyses need
    from pathlib import Path

    from harness.analyses.base import AnalysisSpec
    from harness.contract import MetricSpec, ModelSpec, ReportSection

ENTRY_POINT_GROUP = "harness.plugins"
DISABLE_AUTOLOAD_ENV = "HARNESS_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_PLUGINS_ENV = "HARNESS_DISABLE_PLUGINS"
EXTRA_PLUGINS_ENV = "HARNESS_PLUGINS"
"""Comma-separated import paths of modules to register as plugins (not installed; e.g. in tests)."""
TRACE_ENV = "HARNESS_TRACE_PLUGINS"
"""Set to 1 to write every hook call and its result to stderr (pluggy's tracing)."""
logger = logging.getLogger("harness")

DEFAULT_PLUGINS = (
    "harness.data.layouts",
    "harness.calibration",
    "harness.builtin_metrics",
)
"""Built-in plugins, registered like any other so that they show in ``harness plugins``.

No protocol kind is built in: every kind (kde_vs_test too) comes from a plugin, the shipped ones from
``plugins/harness_paradigms``."""

_KINDS = ("models", "datasets", "calibrations", "protocols", "metrics", "trackers", "executors")
REGISTRATION_HOOKS = {kind: f"harness_{kind}" for kind in _KINDS}
"""The registries, in order, and the hook that fills each (``harness_<kind>``)."""


def _normalise(kind: str, entry: object) -> Any:
    """One registered entry as kept: models as a ModelSpec, protocol kinds as an AnalysisSpec, the rest as given."""
    from harness.analyses.base import analysis_spec
    from harness.contract import MetricSpec, model_spec

    if kind == "metrics" and not isinstance(entry, MetricSpec):
        raise TypeError(f"a metric must be a harness.MetricSpec, got {type(entry).__name__}")
    return {"models": model_spec, "protocols": analysis_spec}.get(kind, lambda same: same)(entry)


@dataclass
class PluginInfo:
    """What ``harness plugins`` shows for one plugin."""

    name: str
    version: str
    source: str  # "built-in" or the distribution that declares the entry point
    registers: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


class Plugins:
    """A loaded plugin manager with name registries for models, datasets, calibrations, protocols."""

    def __init__(self, autoload: bool | None = None, disabled: set[str] | frozenset[str] | None = None) -> None:
        self.manager = pluggy.PluginManager("harness")
        self.manager.add_hookspecs(hookspecs)
        if os.environ.get(TRACE_ENV, "").strip() not in ("", "0"):
            self.manager.trace.root.setwriter(sys.stderr.write)
            self.manager.enable_tracing()
        self.infos: list[PluginInfo] = []
        self._owners: dict[str, dict[str, str]] = {kind: {} for kind in REGISTRATION_HOOKS}
        self._registries: dict[str, dict[str, Any]] = {kind: {} for kind in REGISTRATION_HOOKS}
        for module_name in DEFAULT_PLUGINS:
            self._register(importlib.import_module(module_name), module_name, "built-in", __version__)
        self.autoload, self.disabled = _choice(autoload, disabled)
        for name, source, version, load in _loaders(self.autoload, self.disabled):
            try:
                plugin = load()
            except Exception as exc:  # a broken plugin is reported, never fatal
                self.infos.append(PluginInfo(name, version or "?", source, error=f"{type(exc).__name__}: {exc}"))
                continue
            self._register(plugin, name, source, version or str(getattr(plugin, "__version__", "0")))
        self.manager.check_pending()

    def register(self, plugin: object, name: str, version: str = "0", source: str = "in-process") -> PluginInfo:
        """Register a plugin object or module directly (tests, notebooks); returns its info."""
        self._register(plugin, name, source, version)
        self.manager.check_pending()
        return self.infos[-1]

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name`` and everything it registered."""
        plugin = self.manager.unregister(name=name)
        if plugin is None:
            return
        for kind, owners in self._owners.items():
            for entry in [e for e, owner in owners.items() if owner == name]:
                del owners[entry]
                del self._registries[kind][entry]
        self.infos = [info for info in self.infos if info.name != name]

    def _register(self, plugin: object, name: str, source: str, version: str) -> None:
        info = PluginInfo(name, version, source)
        self.infos.append(info)
        try:
            self.manager.register(plugin, name=name)
            entries = self._collect(plugin)
            self._check_clashes(entries, name)
        except Exception as exc:  # a broken or clashing plugin is rejected whole, never fatal
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            info.error = f"{type(exc).__name__}: {exc}"
            return
        for kind, registered in entries.items():
            self._owners[kind].update(dict.fromkeys(registered, name))
            self._registries[kind].update(registered)
            info.registers[kind] = list(registered)

    def _collect(self, plugin: object) -> dict[str, dict[str, Any]]:
        """What ``plugin`` registers, per kind, normalised; nothing is registered yet."""
        collected: dict[str, dict[str, Any]] = {}
        others = [p for p in self.manager.get_plugins() if p is not plugin]  # pluggy's subset caller: this plugin's
        for kind, hook_name in REGISTRATION_HOOKS.items():
            for result in self.manager.subset_hook_caller(hook_name, remove_plugins=others)():
                if not isinstance(result, Mapping):
                    raise TypeError(f"{hook_name}() must return a mapping of names, got {type(result).__name__}")
                for entry_name, entry in result.items():
                    try:
                        collected.setdefault(kind, {})[str(entry_name)] = _normalise(kind, entry)
                    except (TypeError, ValueError) as exc:
                        raise TypeError(f"{kind[:-1]} '{entry_name}': {exc}") from None
        return collected

    def _check_clashes(self, entries: Mapping[str, Mapping[str, Any]], name: str) -> None:
        clashes = [
            f"{kind[:-1]} '{entry}' is registered by both '{self._owners[kind][entry]}' and '{name}'"
            for kind, registered in entries.items()
            for entry in registered
            if entry in self._owners[kind]
        ]
        if clashes:
            raise HarnessError(
                "; ".join(clashes) + f"; plugin '{name}' was not loaded (none of its entries registered): "
                "uninstall one of the plugins or rename the entry"
            )

    def registry(self, kind: str) -> dict[str, Any]:
        """All entries of one kind ("models", "datasets", "calibrations", "protocols", "metrics")."""
        return dict(self._registries[kind])

    def model(self, name: str, key: str | None = None) -> ModelSpec:
        """The :class:`ModelSpec` registered as ``name`` (unknown names raise as :meth:`get`)."""
        return self.get("models", name, key=key)

    def analysis(self, kind: str, key: str | None = None) -> AnalysisSpec:
        """The :class:`AnalysisSpec` of protocol kind ``kind`` (unknown kinds raise as :meth:`get`)."""
        return self.get("protocols", kind, key=key)

    def metrics(self) -> dict[str, MetricSpec]:
        """Every registered metric by name (built-in and from plugins)."""
        return dict(self._registries["metrics"])

    def call_each(
        self, hook_name: str, check: Callable[[Any], Any] | None = None, copies: tuple[str, ...] = (), **kwargs: Any
    ) -> list[Any]:
        """``pm.hook.<hook_name>(**kwargs)`` one plugin at a time (pluggy's subset caller), in plugin order.

        Each plugin gets its own copy of the arguments named in ``copies``; ``check`` turns each
        result into what is kept, raising for one that breaks the hook's contract. A plugin whose
        implementation or result fails is left out with one warning that names it and the hook: a
        failing plugin loses its own contribution (its columns, figures, section or audit), not the
        run. ``None`` results are dropped; for a ``firstresult`` hook the list holds the first result.
        """
        hook = getattr(self.manager.hook, hook_name)
        first = bool(hook.spec and hook.spec.opts.get("firstresult"))
        results: list[Any] = []
        for impl in reversed(hook.get_hookimpls()) if first else hook.get_hookimpls():
            others = [plugin for plugin in self.manager.get_plugins() if plugin is not impl.plugin]
            arguments = {**kwargs, **{name: kwargs[name].copy() for name in copies}}
            try:
                answer = self.manager.subset_hook_caller(hook_name, remove_plugins=others)(**arguments)
                kept = [check(one) if check else one for one in ([answer] if first else answer) if one is not None]
            except Exception as exc:  # a third party's bug must not end the run
                message = "plugin '%s' failed in %s (%s: %s); its part is left out"
                logger.warning(message, impl.plugin_name, hook_name, type(exc).__name__, exc)
                continue
            results.extend(kept)
            if first and kept:
                break
        return results

    def report_sections(self, results: Any, run: Mapping[str, Any], out: Path | None = None) -> list[ReportSection]:
        """Extra report sections: ``harness_report_sections`` of every plugin (:meth:`call_each`), in plugin order."""
        from harness.contract import ReportSection

        def sections_of(result: Any) -> list[ReportSection]:
            sections = list(result)
            for section in sections:
                if not isinstance(section, ReportSection):
                    raise TypeError(f"it must return harness.ReportSection, got {type(section).__name__}")
            return sections

        found = self.call_each("harness_report_sections", sections_of, results=results, run=run, out=out)
        return [section for sections in found for section in sections]

    def owner(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered ``name``."""
        plugin_name = self._owners[kind][resolve_name(name, self._owners[kind]) or name]
        return next(info for info in self.infos if info.name == plugin_name)

    def get(self, kind: str, name: str, key: str | None = None) -> Any:
        """Look ``name`` up; an unknown name raises with "Did you mean ...? Available: ...".

        ``key`` names the protocol key for the message (e.g. ``models[0].name``).
        """
        registry = self._registries[kind]
        resolved = resolve_name(str(name), registry)  # anomalib's spelling: PatchCore -> patchcore
        if resolved is not None:
            return registry[resolved]
        message = unknown_message(kind[:-1], str(name), registry)
        left_out = ", ".join(sorted(self.disabled)) if self.autoload else "every installed plugin (autoload is off)"
        if kind == "protocols" and not registry:  # e.g. kde_vs_test with the in-house kinds not installed, or left out
            install = "" if left_out else "pip install -e "
            message += f"; protocol kinds come from plugins (the shipped ones: {install}plugins/harness_paradigms)"
        if left_out:  # installed, perhaps, but not loaded: installing them again would not help
            message += f"; not loaded: {left_out}"
        failed = [info for info in self.infos if info.error]
        if failed:
            message += "; plugins that failed to load: " + ", ".join(f"{i.name} ({i.error})" for i in failed)
        raise HarnessError(f"{key}: {message}" if key else message)


def _choice(autoload: bool | None, disabled: set[str] | frozenset[str] | None) -> tuple[bool, set[str]]:
    """Whether to load entry points, and which not to: as given, else from the environment."""
    if autoload is None:
        autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    if disabled is None:
        disabled = {n.strip() for n in os.environ.get(DISABLE_PLUGINS_ENV, "").split(",") if n.strip()}
    return autoload, set(disabled)


def _loaders(autoload: bool, disabled: set[str]) -> list[tuple[str, str, str | None, Callable[[], object]]]:
    """(name, source, version, load) of the entry points when autoloading, then of ``HARNESS_PLUGINS``'s modules.

    A module's version is its ``__version__``, known once it is imported (``None`` until then).
    """
    found = [(ep, getattr(ep, "dist", None)) for ep in _entry_points(disabled)] if autoload else []
    modules = [m.strip() for m in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if m.strip()]
    return [
        *[(ep.name, dist.name if dist else ep.value, dist.version if dist else "?", ep.load) for ep, dist in found],
        *[(m, EXTRA_PLUGINS_ENV, None, partial(importlib.import_module, m)) for m in modules],
    ]


def _entry_points(disabled: set[str]) -> list[Any]:
    """The ``harness.plugins`` entry points by name, less the disabled ones (an unknown name raises)."""
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    for name in sorted(disabled - {ep.name for ep in found}):
        raise HarnessError(unknown_name_message("plugin to disable", name, [ep.name for ep in found]))
    return [ep for ep in found if ep.name not in disabled]


def command_hooks() -> pluggy.PluginManager:
    """The plugin manager whose ``harness_commands`` the CLI calls: the process's, once it is loaded.

    Before that (``harness --help``, ``harness compare``), a manager of the installed and
    ``HARNESS_PLUGINS`` plugins only: built-in plugins add no commands and their imports are what
    running a protocol needs, not listing commands. A plugin that fails to import adds none
    (``harness plugins`` says why).
    """
    if get_plugins.cache_info().currsize:
        return get_plugins().manager
    manager = pluggy.PluginManager("harness")
    manager.add_hookspecs(hookspecs)
    autoload, disabled = _choice(_settings.get("autoload"), _settings.get("disabled"))  # type: ignore[arg-type]
    for name, _, _, load in _loaders(autoload, disabled):
        try:
            manager.register(load(), name=name)
        except Exception:  # reported by `harness plugins`, never fatal here
            continue
    return manager


_settings: dict[str, object] = {}


def configure(autoload: bool | None = None, disabled: set[str] | None = None) -> None:
    """Set plugin loading for this process (the CLI's options); call before the first ``get_plugins()``."""
    _settings.update({"autoload": autoload, "disabled": disabled})
    get_plugins.cache_clear()


@cache
def get_plugins() -> Plugins:
    """The process-wide plugin manager (built once, on first use)."""
    return Plugins(**_settings)  # type: ignore[arg-type]
