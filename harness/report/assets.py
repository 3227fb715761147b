"""Where the report templates are: the top-level ``reports/`` folder, shipped as ``harness/reports``.

A wheel installs ``reports/`` inside the package (``harness/reports``, see pyproject's
``package-dir``); a source checkout or an editable install reads it beside the package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """The folder holding ``report.html.j2``, ``report.tex.j2`` and ``table.tex.j2``."""
    for folder in (PACKAGE / "reports", PACKAGE.parent / "reports"):
        if (folder / "report.html.j2").is_file():
            return folder
    raise FileNotFoundError(f"report templates not found in {PACKAGE / 'reports'} or {PACKAGE.parent / 'reports'}")
