"""Readable figures and table cells: minimum font sizes, SI units, tick labels that do not collide.

:func:`make_readable` is applied to every figure when it is saved (``harness.figures.save``), so
that analyses written by third parties get the same treatment. :func:`quantity` formats a table
cell whose column carries a unit (``co2_kg`` as grams with an SI prefix, ``energy_kwh`` as Wh, ...).
"""

from __future__ import annotations

import itertools
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib is imported when a figure is made readable, not by the report
    import matplotlib.pyplot as plt

MIN_FONT_PT = 10.0
"""Smallest font in a saved figure. At 100 dpi that is 14 px, so >= 10 px on screen down to a 900 px window."""

UNIT_COLUMNS = {
    "co2_kg": ("g", 1000.0),
    "energy_kwh": ("Wh", 1000.0),
    "latency_ms": ("s", 1e-3),
    "fit_seconds": ("s", 1.0),
    "size_mb": ("B", 1e6),
}
"""Column -> (SI unit, factor from the stored value to the unit)."""

_KG_LABEL = re.compile(r"\((kg)([,)])")


def si(value: float, unit: str) -> str:
    """``value`` in ``unit`` with an SI prefix, e.g. ``si(0.0123, "g") == "12.3 mg"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    from matplotlib.ticker import EngFormatter

    return EngFormatter(unit=unit, places=None, sep=" ")(float(value)) if value else f"0 {unit}"


def quantity(column: str, value: Any) -> str | None:
    """A table cell in readable units when ``column`` carries one, else None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if column.endswith("_gap") and not math.isnan(value):  # percentage points
        return f"{value:+.1f}" if value else "0.0"
    if column not in UNIT_COLUMNS:
        return None
    unit, factor = UNIT_COLUMNS[column]
    return si(value * factor, unit)  # NaN as a dash


def make_readable(fig: plt.Figure, min_pt: float = MIN_FONT_PT) -> None:
    """Raise every text to ``min_pt``, show CO2 axes in grams with SI prefixes, turn colliding tick labels."""
    from matplotlib.text import Text
    from matplotlib.ticker import FuncFormatter

    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < min_pt:
            text.set_fontsize(min_pt)
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            sizes = [t.get_fontsize() for t in axis.get_ticklabels(which="both")]
            if sizes and min(sizes) < min_pt:  # tick labels are redrawn from the axis' tick parameters
                ax.tick_params(axis=name, which="both", labelsize=min_pt)
        for axis, label in ((ax.xaxis, ax.get_xlabel()), (ax.yaxis, ax.get_ylabel())):
            if "CO2" in label and _KG_LABEL.search(label):
                axis.set_major_formatter(FuncFormatter(_grams))
                axis.set_label_text(_KG_LABEL.sub(r"(g\2", label))
    _untangle_ticks(fig)


def _grams(value: float, _position: Any = None) -> str:
    return si(value * 1000.0, "g")


def _untangle_ticks(fig: plt.Figure) -> None:
    """Rotate x tick labels that overlap their neighbours (after a draw, when their extents are known).

    A figure whose axes are all hidden (image panels) shows no tick label: it is not drawn for them.
    """
    if not any(ax.axison for ax in fig.axes):
        return
    try:
        renderer = fig.canvas.get_renderer()
    except AttributeError:  # a canvas without a renderer: nothing to measure
        return
    fig.canvas.draw()
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
        boxes = [t.get_window_extent(renderer) for t in labels]
        if any(a.overlaps(b) for a, b in itertools.pairwise(boxes)):
            ax.tick_params(axis="x", labelrotation=30)
            for text in labels:
                text.set_horizontalalignment("right")
