"""Errors the harness reports to users as one line, and the process exit codes."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from difflib import get_close_matches


class ExitCode(enum.IntEnum):
    """Exit status of the ``harness`` command."""

    OK = 0
    """Everything ran."""
    JOBS_FAILED = 1
    """The run finished but at least one job failed; its rows say why."""
    USAGE_ERROR = 2
    """Bad input (protocol, dataset, option, output folder): nothing was written."""
    INTERRUPTED = 130
    """Stopped by the user; finished jobs stay cached and a rerun resumes."""


class HarnessError(Exception):
    """Base class of errors shown to the user as one ``Error:`` line (exit status 2)."""


class ProtocolError(HarnessError):
    """A protocol file is malformed or names something unknown.

    The message names the file and the dotted key so that the user can find and fix it.
    """

    def __init__(self, message: str, *, path: object | None = None, key: str | None = None) -> None:
        where = ", ".join(part for part in (str(path) if path else "", f"key '{key}'" if key else "") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.path = path
        self.key = key


class DatasetError(HarnessError):
    """A dataset root, category or image cannot be used."""


class ModelError(HarnessError):
    """A model cannot be built with the given options (unknown option, missing weights)."""


class OutputError(HarnessError):
    """The output folder cannot be written or holds no results to render."""


def unknown_name_message(kind: str, name: str, available: Iterable[str]) -> str:
    """Return "Unknown <kind> 'x'. Did you mean 'y'? Available: ..." for a registry miss."""
    names = sorted(available)
    close = get_close_matches(name, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown {kind} '{name}'.{hint} Available: {', '.join(names) or 'none'}"
