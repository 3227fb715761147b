"""Moved: kde_vs_test is a protocol kind of the in-house plugin plugins/harness_paradigms.

Its names (``KdeVsTest``, ``calibrate_rows``, ``oracle_gap``, ...) live in
``harness_paradigms.kde_vs_test``; importing them from here still works, with a
``DeprecationWarning``, while that plugin is installed. This module registers nothing.
"""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    import harness_paradigms.kde_vs_test as moved

    value = getattr(moved, name)
    warnings.warn(
        f"harness.analyses.kde_vs_test.{name} moved to harness_paradigms.kde_vs_test.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
