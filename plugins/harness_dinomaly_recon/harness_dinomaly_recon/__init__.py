"""harness plugin: the paper 000 hybrid (Dinomaly + reconstruction head) and plain Dinomaly beside it.

Models: ``dinomaly_recon`` and ``dinomaly_plain`` (the same training without the head). Options
are listed in :mod:`harness_dinomaly_recon.detector`; anomalib's own ``dinomaly`` (through
harness-anomalib) stays available as a third, untouched reference.
"""

from __future__ import annotations

from typing import Any

import harness

__version__ = "0.1.0"


def dinomaly_recon(**options: Any) -> Any:
    """Dinomaly with the reconstruction head (paper 000)."""
    from harness_dinomaly_recon.detector import DinomalyDetector

    return DinomalyDetector(reconstruction=True, **options)


def dinomaly_plain(**options: Any) -> Any:
    """Dinomaly trained the same way, without the reconstruction head."""
    from harness_dinomaly_recon.detector import DinomalyDetector

    return DinomalyDetector(reconstruction=False, **options)


@harness.hookimpl
def harness_models() -> dict[str, Any]:
    """The hybrid and its baseline."""
    return {"dinomaly_recon": dinomaly_recon, "dinomaly_plain": dinomaly_plain}
