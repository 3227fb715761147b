"""harness plugin: label-review sheets and anomaly-map panels, registered through hooks only.

``harness_analysis_extras``: for a protocol kind that asks (kde_vs_test does), per job of the first
seed a label-review sheet (test images labelled good that score above the reference calibration's
threshold, and defect images that score lowest; papers 000 and 001) and anomaly-map panels (image,
ground truth and map overlay of the best- and worst-scored defect image, paper 001 style), and
``figures/label_review.csv`` with every sheet's images (:mod:`harness_review.review`). The kind's
options ``review`` (images per list, 0 = off) and ``map_panels`` switch them. Figures are drawn once
per content, then copied from the derived cache; ``harness_analysis_prepare`` draws them into it
early, while the kind's PL is computed beside them.

Imports only the public API (``harness``, ``harness.analysis``, ``harness.datasets``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import harness

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"


# trylast: called after the other plugins, so that ``analysis_extras`` (which collects in registration
# order, reversing pluggy's calls) puts these figures first, right after the kind's own, as when
# kde_vs_test drew them itself.
@harness.hookimpl(trylast=True)
def harness_analysis_extras(context: harness.AnalysisContext, rows: pd.DataFrame) -> harness.AnalysisResult | None:
    """The review sheets and map panels of the kind's first seed, and ``label_review.csv``."""
    if rows.empty or not {"cache_key", "calibration", "threshold"} <= set(rows.columns):
        return None
    from harness_review.review import review_extras

    figures, reviews = review_extras(context, rows)
    if reviews is not None:
        reviews.to_csv(context.figure_dir / "label_review.csv", index=False)
    import pandas as pd

    return harness.AnalysisResult(pd.DataFrame(), figures)  # no columns: figures only


@harness.hookimpl
def harness_analysis_prepare(context: harness.AnalysisContext, rows: pd.DataFrame) -> None:
    """The review sheets and map panels drawn into the derived cache early (while PL is computed beside them)."""
    kept = all(job.derived is not None and job.view_digest is not None for job in context.jobs)
    if kept and not rows.empty and {"cache_key", "calibration", "threshold"} <= set(rows.columns):
        from harness_review.review import review_extras

        review_extras(context, rows)
