"""Names and plugin options of a protocol, checked against the installed plugins before anything is fitted.

Each registered thing may declare its options:

- a protocol kind: ``options_model`` (a pydantic model of its ``analysis:`` keys); the older
  ``options = ("key", ...)`` tuple still works, with a :class:`DeprecationWarning`; an optional
  ``check_options(options)`` runs after either;
- a calibrator: ``options_model``; either way, constructing it with the options must work;
- a model factory: ``options_model`` and/or ``check_options(options, key=...)``.
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError, ProtocolError, unknown_name_message
from harness.names import resolve_name
from harness.plugins import Plugins, get_plugins
from harness.protocol import ProtocolConfig


def check_protocol(config: ProtocolConfig, plugins: Plugins | None = None, *, models: bool = True) -> Any:
    """Check every name and plugin option of ``config``; return the protocol kind (its analysis).

    ``models=False`` skips the model factories' own option checks (they may import the model's
    library); the runner checks those only for the models it will fit.
    """
    plugins = plugins or get_plugins()
    analysis = lookup(config, plugins, "protocols", config.kind, ("protocol",))
    check_analysis_options(config, analysis)
    layout = lookup(config, plugins, "datasets", config.dataset.effective_layout, ("dataset", "layout"))
    options_key = "synthetic" if config.dataset.effective_layout == "synthetic" else "options"
    _validate(config, layout, config.dataset.effective_options, ("dataset", options_key))  # dataset.options
    for index, entry in enumerate(config.models):
        factory = lookup(config, plugins, "models", entry.name, ("models", index, "name"))
        if getattr(factory, "supervised", False) and not config.supervision:
            raise config.error(
                ("models", index, "name"),
                f"model '{entry.name}' is supervised: declare how many labelled anomalies it may train on, "
                "e.g. supervision: {anomaly_train_fraction: 0.5}",
            )
        if models:
            check_model_options(config, factory, index)
    for index, entry in enumerate(config.calibrations):
        factory = lookup(config, plugins, "calibrations", entry.name, ("calibrations", index, "name"))
        check_calibration_options(config, factory, index)
    return analysis


def lookup(config: ProtocolConfig, plugins: Plugins, kind: str, name: str, path: tuple[str | int, ...]) -> Any:
    """The registered ``name`` of ``kind`` as the run finds it (:meth:`Plugins.get`), or an error at ``path``.

    Only model names may be written another way (anomalib's ``PatchCore``): kind, layout and
    calibration names are compared as written further on, so a near spelling is an error here.
    """
    try:
        found = plugins.get(kind, str(name))
    except HarnessError as exc:
        raise config.error(path, str(exc)) from None
    if kind != "models" and name not in plugins.registry(kind):
        exact = resolve_name(str(name), plugins.registry(kind))
        raise config.error(path, f"unknown {kind[:-1]} '{name}': write '{exact}' (only model names ignore case)")
    return found


def _validate(config: ProtocolConfig, thing: Any, options: dict[str, Any], path: tuple[str | int, ...]) -> bool:
    """``options`` (at ``path``) against the pydantic model ``thing`` declares; False if none.

    The model is ``options_model``, or ``options`` when that is one (a :class:`~harness.contract.ModelSpec`).
    """
    declared = [getattr(thing, name, None) for name in ("options_model", "options")]
    model = next((m for m in declared if isinstance(m, type) and issubclass(m, BaseModel)), None)
    if model is None:
        return False
    context = {"calibrations": [c.label for c in config.calibrations], "config": config}
    try:
        model.model_validate(options, context=context)
    except ValidationError as exc:
        raise config.located(exc, options, model, path) from None
    return True


def check_analysis_options(config: ProtocolConfig, analysis: Any) -> None:
    """The ``analysis:`` keys against the kind's ``options_model`` (or its legacy ``options`` tuple)."""
    options = dict(config.analysis)
    if not _validate(config, analysis, options, ("analysis",)):
        accepted = set(getattr(analysis, "options", ()))
        warnings.warn(
            f"protocol kind '{config.kind}' declares its analysis options as a tuple of names; "
            "declare options_model (a pydantic model) so values are typed and checked",
            DeprecationWarning,
            stacklevel=2,
        )
        for name in options:
            if name not in accepted:
                message = unknown_name_message(f"analysis option of {config.kind}", str(name), accepted)
                raise config.error(("analysis", name), message)
    check = getattr(analysis, "check_options", None)
    if check is not None:
        try:
            check(options)
        except ProtocolError:
            raise
        except HarnessError as exc:
            raise config.error(("analysis",), str(exc)) from None


def check_calibration_options(config: ProtocolConfig, factory: Any, index: int) -> Any:
    """A calibration's options against its ``options_model``, then by building it (cheap, no data); the calibrator."""
    entry = config.calibrations[index]
    path = ("calibrations", index, "options")
    _validate(config, factory, dict(entry.options), path)
    try:
        return factory(**dict(entry.options))
    except TypeError as exc:
        raise config.error(path, f"invalid options for calibration '{entry.name}': {exc}") from None
    except HarnessError as exc:
        raise config.error(path, str(exc)) from None


def check_model_options(config: ProtocolConfig, factory: Any, index: int) -> None:
    """A model's options against the factory's ``options_model`` and its ``check_options``."""
    entry = config.models[index]
    path = ("models", index, "options")
    declared = _validate(config, factory, dict(entry.options), path)
    check = getattr(factory, "check_options", None)
    if not declared and check is None:
        _check_names_by_signature(config, getattr(factory, "factory", factory), index)
    if check is not None:
        try:
            check(dict(entry.options), key=".".join(map(str, path)))
        except ProtocolError as exc:
            key = exc.key or ".".join(map(str, path))
            raise config.error(tuple(int(p) if p.isdigit() else p for p in key.split(".")), exc.message) from None


def _check_names_by_signature(config: ProtocolConfig, factory: Any, index: int) -> None:
    """A factory that declares no options: its keyword parameters are the names (none checked with ``**kwargs``)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable without a signature: nothing to read
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    entry = config.models[index]
    for option in entry.options:
        if option not in accepted:
            message = unknown_name_message(f"option of {entry.name}", option, accepted)
            raise config.error(("models", index, "options", option), message)
