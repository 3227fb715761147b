"""harness plugin: the paper 000 hybrid (Dinomaly + reconstruction head) and plain Dinomaly beside it.

Models: ``dinomaly_recon`` and ``dinomaly_plain`` (the same training without the head). Their
options (:class:`harness_dinomaly_recon.options.DinomalyOptions`) are checked when the protocol
is loaded; anomalib's own ``dinomaly`` (through harness-anomalib) stays available as a third,
untouched reference.
"""

from __future__ import annotations

import warnings
from typing import Any

import harness
from harness_dinomaly_recon.options import DinomalyOptions

__version__ = "0.1.0"


def _detector(reconstruction: bool, options: dict[str, Any]) -> Any:
    with warnings.catch_warnings():  # anomalib's deprecation notices on import are not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        from harness_dinomaly_recon.detector import DinomalyDetector

    return DinomalyDetector(reconstruction=reconstruction, **options)


def dinomaly_recon(**options: Any) -> Any:
    """Dinomaly with the reconstruction head (paper 000)."""
    return _detector(True, options)


def dinomaly_plain(**options: Any) -> Any:
    """Dinomaly trained the same way, without the reconstruction head."""
    return _detector(False, options)


def why_unavailable() -> str | None:
    """Why the default options cannot run here (the DINOv2 download), or None."""
    from harness_anomalib.catalogue import hub_reachable

    if hub_reachable():
        return None
    return "the default pretrained DINOv2 needs the Hugging Face hub; give options.weights or pretrained: false"


dinomaly_recon.why_unavailable = why_unavailable  # type: ignore[attr-defined]
dinomaly_plain.why_unavailable = why_unavailable  # type: ignore[attr-defined]
dinomaly_recon.options_model = DinomalyOptions  # type: ignore[attr-defined]
dinomaly_plain.options_model = DinomalyOptions  # type: ignore[attr-defined]


@harness.hookimpl
def harness_models() -> dict[str, Any]:
    """The hybrid and its baseline."""
    return {"dinomaly_recon": dinomaly_recon, "dinomaly_plain": dinomaly_plain}
