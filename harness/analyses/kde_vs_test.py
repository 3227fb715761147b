"""Moved: kde_vs_test is a protocol kind of the in-house plugin plugins/harness_paradigms.

Its names (``KdeVsTest``, ``calibrate_rows``, ``oracle_gap``, ...) live in
``harness_paradigms.kde_vs_test``; importing them from here still works, with a
``DeprecationWarning``, while that plugin is installed. This module registers nothing, and any
other name is absent (``hasattr`` answers ``False`` with or without the plugin).
"""

from __future__ import annotations

from harness.lazy import lazy_names

_FORMER = "KdeVsTest KdeVsTestOptions SUMMARY_MEANS SUMMARY_SUMS calibrate_rows oracle_gap"
"""The names the module had (its options model imported)."""

_, __getattr__, _ = lazy_names(__name__, {"harness_paradigms.kde_vs_test": _FORMER}, moved=_FORMER.split())
