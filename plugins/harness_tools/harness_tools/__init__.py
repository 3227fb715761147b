"""harness plugin: the ``compare``, ``export`` and ``new-plugin`` commands (the ``harness_commands`` hook).

Commands over finished runs and a scaffold for new plugins, outside the core: each uses only
``harness`` and :mod:`harness.runs` (the command-author API), as a third party's command would.
Nothing but ``harness`` is imported until the command list is needed (click, in
:mod:`harness_tools.commands`) or a command runs (its module).
"""

from __future__ import annotations

from typing import Any

import harness

__version__ = "0.1.0"


@harness.hookimpl
def harness_commands(cli: Any) -> None:
    """``harness compare``, ``harness export`` and ``harness new-plugin``."""
    from harness_tools.commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)
