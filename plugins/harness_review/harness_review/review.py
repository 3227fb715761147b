"""Review figures from cached scores and maps: suspected label errors and anomaly-map panels.

:func:`review_extras` answers ``harness_analysis_extras`` for a protocol kind (kde_vs_test): for each
job of the first seed, a label-review sheet (:func:`review_candidates`, :func:`review_figure`) at the
reference calibration's threshold, and anomaly-map panels (:func:`map_panel_figure`); the candidates
of every job go to ``figures/label_review.csv``. Each figure is drawn once per content and then
copied from the derived cache.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.analysis import (
    AnalysisContext,
    FigureRecord,
    JobData,
    pyplot,
    reference_calibration,
    render_once,
    save,
    slug,
)

if TYPE_CHECKING:
    import pandas as pd

THUMBNAIL = (112, 112)


@functools.cache
def code_digest() -> str:
    """A hash of this plugin's modules (read, not imported): it keys every figure drawn here, so new code draws anew."""
    code = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        code.update(path.name.encode() + path.read_bytes())
    return code.hexdigest()


def review_extras(context: AnalysisContext, rows: pd.DataFrame) -> tuple[list[FigureRecord], pd.DataFrame | None]:
    """The review sheets and map panels of the first seed's jobs, in job order, and every job's candidates.

    Options (the kind's, ``context.options``): ``review`` (images per review list, default 6, 0 = off;
    needs a reference calibration), ``map_panels`` (default true). The review threshold is the
    reference calibration's row of each job in ``rows`` (joined on ``cache_key``).
    """
    import pandas as pd

    figures: list[FigureRecord] = []
    reviews = []
    first_seed = min((job.seed for job in context.jobs), default=0)
    reference = reference_calibration(context)
    review_count = int(context.options.get("review", 6))
    for job in context.jobs:
        if job.seed != first_seed:
            continue
        if reference is not None and review_count:
            threshold = _threshold(rows, job.key, reference.label)
            candidates = review_candidates(job, threshold, review_count)
            reviews.append(candidates)
            figure = review_figure(job, candidates, context.figure_dir, reference.label)
            figures.extend([figure] if figure else [])
        if context.options.get("map_panels", True):
            figure = map_panel_figure(job, context.figure_dir)
            figures.extend([figure] if figure else [])
    return figures, pd.concat(reviews) if reviews else None


def _threshold(rows: pd.DataFrame, key: str, calibration: str) -> float:
    """The threshold of the job ``key``'s row for ``calibration``."""
    mine = rows[(rows["cache_key"] == key) & (rows["calibration"] == calibration)]
    return float(mine["threshold"].iloc[0])


def review_candidates(job: JobData, threshold: float, count: int = 6) -> pd.DataFrame:
    """Test "good" images scoring highest above ``threshold`` and defect images scoring lowest.

    Papers 000 and 001 found mislabelled images this way: a "good" image far above a threshold
    set on normals, or a "defect" far below it, is worth a second look.
    """
    import pandas as pd

    test = job.test
    suspicious_good = test[(test["label"] == 0) & (test["score"] >= threshold)].nlargest(count, "score")
    quiet_defects = test[test["label"] == 1].nsmallest(count, "score")
    rows = pd.concat(
        [suspicious_good.assign(kind="good above threshold"), quiet_defects.assign(kind="defect scoring lowest")]
    )
    return rows.assign(model=job.model, threshold=threshold)[
        ["model", "category", "kind", "path", "defect_type", "score", "threshold"]
    ]


def review_figure(job: JobData, candidates: pd.DataFrame, figure_dir: Path, calibration: str) -> FigureRecord | None:
    """Thumbnails of the review candidates with their scores (drawn once per content, then from the derived cache)."""
    if candidates.empty:
        return None
    name = f"review_{slug(job.model)}_{slug(job.category)}_seed{job.seed}.png"
    shown = [
        [Path(str(r["path"])).name, str(r["defect_type"]), float(r["score"]), str(r["kind"])]
        for _, r in candidates.iterrows()
    ]
    # the images themselves are part of the job's key (the dataset by content)
    store = job.derived if job.view_digest is not None else None
    key = ("review", code_digest(), job.key, job.model, job.category, job.seed, shown)
    render_once(figure_dir / name, lambda path: _draw_review(candidates, path), store, *key)
    threshold = candidates["threshold"].iloc[0]
    caption = (
        f"Label review, {job.model} on {job.category}: test images labelled good that score above the "
        f"{calibration} threshold ({threshold:.4g}), highest first, and defect images that score lowest. "
        "Check them for annotation errors."
    )
    return FigureRecord(name, caption, category=job.category, model=job.model)


def _draw_review(candidates: pd.DataFrame, path: Path) -> None:
    from harness.datasets import load_image

    groups = [candidates[candidates["kind"] == kind] for kind in ("good above threshold", "defect scoring lowest")]
    columns = max(len(g) for g in groups)
    fig, axes = pyplot().subplots(2, columns, figsize=(1.7 * columns, 4.0), squeeze=False)
    for row, group in enumerate(groups):
        for col in range(columns):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(group):
                item = group.iloc[col]
                ax.imshow(load_image(Path(item["path"]), THUMBNAIL))
                ax.set_title(f"{Path(item['path']).name}\n{item['defect_type']} · {item['score']:.3g}", fontsize=6.5)
        if group.empty:
            axes[row][0].text(
                0.5,
                0.5,
                "none",
                transform=axes[row][0].transAxes,
                ha="center",
                va="center",
                fontsize=8,
                color="#5b6475",
            )
        axes[row][0].text(
            -0.15,
            0.5,
            ["good, above\nthreshold", "defects,\nlowest"][row],
            transform=axes[row][0].transAxes,
            ha="right",
            va="center",
            fontsize=8,
        )
    save(fig, path)


def map_panel_figure(job: JobData, figure_dir: Path) -> FigureRecord | None:
    """Image, ground truth and map overlay for the best- and worst-scored defect image (paper 001 style).

    Drawn once per job view: a rerun copies it from the derived cache without loading maps or masks.
    """
    defects = job.test[job.test["label"] == 1]
    files = (job.meta.get("integrity") or {}).get("files")
    if defects.empty or (files is not None and "maps.npz" not in files):  # the entry records no maps
        return None
    name = f"maps_{slug(job.model)}_{slug(job.category)}_seed{job.seed}.png"
    view = job.view_digest
    drawn: list[bool] = []

    def draw(path: Path) -> None:
        drawn.append(_draw_map_panels(job, path))

    render_once(figure_dir / name, draw, job.derived if view else None, "map_panels", code_digest(), view)
    if drawn and not drawn[0]:  # no maps: nothing was drawn
        return None
    caption = (
        f"Anomaly maps, {job.model} on {job.category}: the best and the worst case among defect images "
        "(image, ground truth, map overlay; colour scale shared across the job's maps)."
    )
    return FigureRecord(name, caption, category=job.category, model=job.model)


def _draw_map_panels(job: JobData, path: Path) -> bool:
    """Draw the panels to ``path``; False (nothing written) when the job has no maps."""
    from harness.datasets import load_image

    maps, masks = job.load_maps(), job.load_masks()
    test = job.test
    defects = test[test["label"] == 1]
    if maps is None:
        return False
    cases = [("highest-scored defect", defects["score"].idxmax()), ("lowest-scored defect", defects["score"].idxmin())]
    image_size = maps.shape[1:]
    low, high = np.percentile(maps, [1, 99.9])
    fig, axes = pyplot().subplots(len(cases), 3, figsize=(7.2, 2.5 * len(cases)), squeeze=False)
    for row, (title, index) in enumerate(cases):
        record = test.loc[index]
        image = load_image(Path(record["path"]), image_size)
        mask = masks[index] if masks is not None else np.zeros(image_size, bool)
        amap = np.clip((maps[index] - low) / (high - low + 1e-12), 0, 1)
        axes[row][0].imshow(image)
        axes[row][0].set_title(f"{title}\n{Path(record['path']).name} ({record['defect_type']})", fontsize=7)
        axes[row][1].imshow(mask, cmap="gray")
        axes[row][1].set_title("ground truth", fontsize=7)
        axes[row][2].imshow(image)
        axes[row][2].imshow(amap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[row][2].set_title(f"anomaly map (score {record['score']:.3g})", fontsize=7)
        for ax in axes[row]:
            ax.axis("off")
    save(fig, path)
    return True
