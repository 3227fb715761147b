"""Protocol kinds: analyses over cached scores (one module each)."""

from harness.analyses.base import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    FigureRecord,
    JobData,
    analysis_spec,
)

__all__ = [
    "Analysis",
    "AnalysisContext",
    "AnalysisResult",
    "AnalysisSpec",
    "FigureRecord",
    "JobData",
    "analysis_spec",
]
