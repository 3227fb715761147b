"""Moved: kde_vs_test's options model lives in ``harness_paradigms.options`` (plugins/harness_paradigms).

``from harness.analyses.options import KdeVsTestOptions`` still works, with a ``DeprecationWarning``,
while that plugin is installed.
"""

from __future__ import annotations

from harness.lazy import lazy_names

_, __getattr__, _ = lazy_names(__name__, {"harness_paradigms.options": "KdeVsTestOptions"}, moved=["KdeVsTestOptions"])
