"""Protocol kinds: analyses over cached scores (one module each).

The names of :mod:`harness.analyses.base` also resolve here (``from harness.analyses import
JobData``, an earlier spelling; today's is ``harness`` or ``harness.analysis``).
"""

from typing import Any

from harness.analyses import base


def __getattr__(name: str) -> Any:
    return getattr(base, name)  # deprecated names warn there (``Analysis``)
