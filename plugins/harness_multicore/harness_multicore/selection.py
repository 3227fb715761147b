"""Paper 002 §4.2: the greedy choice of predictors, made once on a declared reference category.

The paper selects its predictors once, on the training images of one class (MVTec's bottle,
IDW's Bird-Strike) with synthetic anomalies, and uses that ordered list for every class: MC-k is
the first k. Here ``reference`` names that class's defect-free training images (a folder, or
``embedded:<category>`` for the harness's embedded dataset); the selection runs once per process
for a given reference and setting, and MC2, MC4 and MC8 share it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from harness_multicore.patchcore_plus import Hyperparameters

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Selection:
    """The ordered predictors the greedy search kept, the coverage after each, and where it ran."""

    predictors: tuple[Hyperparameters, ...]
    coverage: tuple[float, ...]
    reference: str

    def describe(self, k: int) -> str:
        """One line for the result row: which predictors MC-k uses and where they were chosen."""
        chosen = ", ".join(h.name for h in self.predictors[:k])
        ranked = ", ".join(f"{h.name} ({c:.3f})" for h, c in zip(self.predictors, self.coverage, strict=True))
        short = f"; the search stopped at {len(self.predictors)}" if len(self.predictors) < k else ""
        return (
            f"MultiCore predictors: {chosen} (the first {min(k, len(self.predictors))} of the greedy selection on "
            f"{self.reference}: {ranked}, coverage = pixel AUROC on synthetic anomalies{short})"
        )


def greedy_selection(
    predictions: dict[Hyperparameters, np.ndarray], masks: np.ndarray, first: Hyperparameters, limit: int
) -> tuple[list[Hyperparameters], list[float]]:
    """Add, one at a time, the predictor that most raises the pixel AUROC of the mean map; stop when it does not."""
    truth = masks.reshape(-1)

    def coverage(group: list[Hyperparameters]) -> float:
        mean = np.mean([predictions[h] for h in group], axis=0)
        return float(roc_auc_score(truth, mean.reshape(-1)))

    selected, history = [first], [coverage([first])]
    while len(selected) < limit:
        scores = {h: coverage([*selected, h]) for h in predictions if h not in selected}
        if not scores:
            break
        best = max(scores, key=scores.get)
        if scores[best] <= history[-1]:
            break  # coverage stopped rising
        selected.append(best)
        history.append(scores[best])
    return selected, history


def reference_images(reference: str, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """The reference category's defect-free training images at ``size`` (H, W), and a label for it."""
    if reference.startswith("embedded:"):
        from harness import ensure_generated

        category = reference.split(":", 1)[1]
        folder = ensure_generated() / category / "train" / "good"
    else:
        folder = Path(reference).expanduser()
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise ValueError(
            f"options.reference: no images in {folder}; give the folder of the reference category's "
            "defect-free training images (e.g. /data/mvtec_ad/bottle/train/good) or embedded:<category>"
        )
    images = [np.asarray(Image.open(p).convert("RGB").resize(size[::-1], Image.BILINEAR)) for p in files]
    return np.stack(images), f"reference '{reference}' ({len(files)} training images)"


_SELECTIONS: dict[tuple, Selection] = {}


def selection_once(key: tuple, run: Callable[[], Selection]) -> Selection:
    """The selection for ``key``, computed by ``run`` the first time it is asked for in this process."""
    if key not in _SELECTIONS:
        _SELECTIONS[key] = run()
    return _SELECTIONS[key]


def paper_grid(sizes: Sequence[int], strides: Sequence[int], metrics: Sequence[str]) -> list[Hyperparameters]:
    """The Cartesian product of the hyperparameters, in the paper's order (PatchCore's own first)."""
    return [Hyperparameters(p, s, d) for p, s, d in itertools.product(sizes, strides, metrics)]
