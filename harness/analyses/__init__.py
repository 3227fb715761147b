"""Protocol kinds: analyses over cached scores (one module each)."""

from harness.analyses.base import Analysis, AnalysisContext, AnalysisResult, FigureRecord, JobData

__all__ = ["Analysis", "AnalysisContext", "AnalysisResult", "FigureRecord", "JobData"]
