"""Figure helpers shared by protocol kinds: headless pyplot, PNG and PDF output, figures drawn once.

matplotlib is imported when a figure is drawn, not when this module is: a rerun whose figures all
come from the derived cache (:func:`render_once`) never imports it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.lazy import lazy_names

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

if "matplotlib" in sys.modules:
    sys.modules["matplotlib"].use("Agg")
else:
    os.environ.setdefault("MPLBACKEND", "Agg")  # headless, whoever imports pyplot first

RENDERER_VERSION = 1
"""Bumped when a built-in figure's drawing changes: part of the key of every cached figure."""


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: plt.Figure, path: Path) -> None:
    """Write ``fig`` as PNG (for the HTML report) and PDF (for LaTeX), readable (see ``make_readable``), and free it."""
    from harness.report.readable import make_readable

    path.parent.mkdir(parents=True, exist_ok=True)
    make_readable(fig)
    fig.tight_layout()  # one layout pass; bbox_inches="tight" would render every figure twice
    fig.savefig(path, dpi=100)
    fig.savefig(path.with_suffix(".pdf"), metadata={"CreationDate": None})  # same figure, same bytes
    fig.clear()  # its artists freed now: a closed figure's cycles otherwise wait for a full collection
    pyplot().close(fig)


def render_once(path: Path, draw: Callable[[Path], None], store: Any | None, *key: object) -> None:
    """Write a figure (PNG and PDF at ``path``) with ``draw(path)``, or copy an identical one from ``store``.

    ``key`` names everything the figure depicts (its kind, data, thresholds, titles); with the
    renderer's and matplotlib's versions it addresses the figure in ``store`` (a
    :class:`harness.derived_cache.DerivedCache`, or ``None`` to always draw). A figure drawn here is
    stored for the next run and ``harness report``.
    """
    if store is None:
        draw(path)
        return
    from harness.derived_cache import digest
    from harness.metrics import distribution_version

    name = digest("figure", RENDERER_VERSION, distribution_version("matplotlib"), *key)
    if store.get_files(name, path):
        return
    draw(path)
    store.put_files(name, path)


def array_digest(*arrays: Any) -> str:
    """A sha256 of arrays' dtypes, shapes and bytes (what a figure depicts, for :func:`render_once`)."""
    import hashlib

    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


_MOVED = "COLOURS LINE_STYLES score_distributions confusion_bars grouped_metric_bars"
"""kde_vs_test's drawing, moved with it to ``harness_paradigms.kde_figures``: read from here with a warning."""
_, __getattr__, _ = lazy_names(__name__, {"harness_paradigms.kde_figures": _MOVED}, moved=_MOVED.split())
