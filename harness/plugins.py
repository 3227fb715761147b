"""The plugin manager: built-in plugins plus every ``harness.plugins`` entry point.

A plugin that fails to import is recorded with its reason and skipped, so that one broken
package never takes the others down. Registries merge the plugins' registration hooks.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from harness import hookspecs
from harness.errors import HarnessError, unknown_name_message
from harness.names import resolve_name, unknown_message

ENTRY_POINT_GROUP = "harness.plugins"
DISABLE_AUTOLOAD_ENV = "HARNESS_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_PLUGINS_ENV = "HARNESS_DISABLE_PLUGINS"
EXTRA_PLUGINS_ENV = "HARNESS_PLUGINS"
"""Comma-separated import paths of modules to register as plugins (not installed; e.g. in tests)."""

DEFAULT_PLUGINS = (
    "harness.data.layouts",
    "harness.calibration",
    "harness.analyses.kde_vs_test",
    "harness.analyses.partial_anomaly",
    "harness.analyses.missing_type",
    "harness.analyses.multiclass",
    "harness.analyses.benchmark",
    "harness.analyses.per_type",
)
"""Built-in plugins, registered like any other so that they show in ``harness plugins``."""

REGISTRATION_HOOKS = {
    "models": "harness_models",
    "datasets": "harness_datasets",
    "calibrations": "harness_calibrations",
    "protocols": "harness_protocols",
}


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
        self.infos: list[PluginInfo] = []
        self._owners: dict[str, dict[str, str]] = {kind: {} for kind in REGISTRATION_HOOKS}
        self._registries: dict[str, dict[str, Any]] = {kind: {} for kind in REGISTRATION_HOOKS}
        for module_name in DEFAULT_PLUGINS:
            self._register(importlib.import_module(module_name), module_name, "built-in", _harness_version())
        if autoload is None:
            autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
        if disabled is None:
            disabled = {n.strip() for n in os.environ.get(DISABLE_PLUGINS_ENV, "").split(",") if n.strip()}
        self.disabled = set(disabled)
        if autoload:
            self._load_entry_points()
        for module_name in [m.strip() for m in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if m.strip()]:
            self._load_module(module_name)
        self.manager.check_pending()

    def _load_module(self, module_name: str) -> None:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            self.infos.append(PluginInfo(module_name, "?", EXTRA_PLUGINS_ENV, error=f"{type(exc).__name__}: {exc}"))
            return
        self._register(module, module_name, EXTRA_PLUGINS_ENV, str(getattr(module, "__version__", "0")))

    def _load_entry_points(self) -> None:
        found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        for name in sorted(self.disabled - {ep.name for ep in found}):
            raise HarnessError(unknown_name_message("plugin to disable", name, [ep.name for ep in found]))
        for ep in found:
            if ep.name in self.disabled:
                continue
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else "?"
            source = dist.name if dist is not None else ep.value
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin is reported, never fatal
                self.infos.append(PluginInfo(ep.name, version, source, error=f"{type(exc).__name__}: {exc}"))
                continue
            self._register(plugin, ep.name, source, version)

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
            for kind, hook_name in REGISTRATION_HOOKS.items():
                impl = getattr(plugin, hook_name, None)
                if impl is None:
                    continue
                entries: Mapping[str, Any] = impl() or {}
                for entry_name, entry in entries.items():
                    owner = self._owners[kind].get(entry_name)
                    if owner is not None:
                        raise HarnessError(
                            f"{kind[:-1]} '{entry_name}' is registered by both '{owner}' and '{name}'; "
                            "uninstall one of the plugins or rename the entry"
                        )
                    self._owners[kind][entry_name] = name
                    self._registries[kind][entry_name] = entry
                    info.registers.setdefault(kind, []).append(entry_name)
        except Exception as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            info.registers = {}
            info.error = f"{type(exc).__name__}: {exc}"

    def registry(self, kind: str) -> dict[str, Any]:
        """All entries of one kind ("models", "datasets", "calibrations", "protocols")."""
        return dict(self._registries[kind])

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
        failed = [info for info in self.infos if info.error]
        if failed:
            message += "; plugins that failed to load: " + ", ".join(f"{i.name} ({i.error})" for i in failed)
        raise HarnessError(f"{key}: {message}" if key else message)


def _harness_version() -> str:
    from harness import __version__

    return __version__


_settings: dict[str, object] = {}


def configure(autoload: bool | None = None, disabled: set[str] | None = None) -> None:
    """Set plugin loading for this process (the CLI's options); call before the first ``get_plugins()``."""
    _settings.update({"autoload": autoload, "disabled": disabled})
    get_plugins.cache_clear()


@cache
def get_plugins() -> Plugins:
    """The process-wide plugin manager (built once, on first use)."""
    return Plugins(**_settings)  # type: ignore[arg-type]
