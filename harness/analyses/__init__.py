"""Protocol kinds: analyses over cached scores (one module each)."""

from typing import Any

from harness.analyses import base
from harness.analyses.base import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    FigureRecord,
    JobData,
    analysis_spec,
)

__all__ = [
    "AnalysisContext",
    "AnalysisResult",
    "AnalysisSpec",
    "FigureRecord",
    "JobData",
    "analysis_spec",
]


def __getattr__(name: str) -> Any:
    return getattr(base, name)  # deprecated names warn there (``Analysis``)
