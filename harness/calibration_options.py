"""The options of the built-in calibrators, as typed models (checked when a protocol is loaded).

A calibrator class declares ``options_model``; the harness validates a protocol's
``calibrations[i].options`` against it before anything is fitted, and the README lists them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from harness.config.types import Float, OptionsModel


class NoOptions(OptionsModel):
    """A calibrator without options (the test-label oracles)."""


class KDEOptions(OptionsModel):
    """``kde`` (paper 000): a percentile of a Gaussian KDE of held-out normal scores."""

    percentile: Annotated[Float, Field(gt=0, lt=100)] = Field(97.5, description="percentile of the KDE, in (0, 100)")
    bandwidth: Literal["scott", "silverman"] | Annotated[Float, Field(gt=0)] = Field(
        "scott", description="scipy's bw_method: scott, silverman or a positive factor"
    )


class QuantileOptions(OptionsModel):
    """``quantile``: a percentile of the held-out normal scores themselves."""

    percentile: Annotated[Float, Field(gt=0, le=100)] = Field(97.5, description="percentile, in (0, 100]")


class ConformalOptions(OptionsModel):
    """``conformal``: split-conformal threshold with a target false-positive rate."""

    alpha: Annotated[Float, Field(gt=0, lt=1)] = Field(0.05, description="target false-positive rate, in (0, 1)")
