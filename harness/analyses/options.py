"""The ``analysis:`` options of each built-in protocol kind, as typed models.

A protocol kind declares its options with ``options_model = SomeOptions`` (a pydantic model,
best derived from :class:`harness.config.types.OptionsModel`); the harness validates the
protocol's ``analysis:`` mapping against it before anything is fitted, and ``harness schema``
and the README list its keys. The validation context carries ``calibrations`` (the protocol's
calibration labels) for checks that need them.
"""

from __future__ import annotations

from pydantic import Field

from harness.config.types import Bool, NonNegativeInt, OptionsModel


class KdeVsTestOptions(OptionsModel):
    """Options of ``kde_vs_test`` (paper 000)."""

    bootstrap: NonNegativeInt = Field(1000, description="bootstrap resamples for recall/F1 intervals; 0 = off")
    review: NonNegativeInt = Field(
        6, description="images per label-review list; 0 = off (drawn by `plugins/harness_review`)"
    )
    map_panels: Bool = Field(True, description="draw anomaly-map panels per category (`plugins/harness_review`)")
