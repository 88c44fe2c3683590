"""What every figure shares: a Figure on its own canvas, saving it, the colours, and helpers for
dates, bands, KDE lines, panel grids and labels that do not overlap.

Figures are made with ``matplotlib.figure.Figure`` directly — no pyplot, no global state, no
display needed (the Agg canvas renders them) — so they are safe in scripts, tests and notebooks.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayes_densing.model.laws import DAYS_PER_MONTH
from bayes_densing.results import rundir

DPI = 150
BAR = "#4c72b0"
BASE_SHADE = "#bbbbbb"
TARGET = "#4c72b0"
EXTRAPOLATED = "#dd8452"   # targets whose N̂ reads the reference curves past their models
TREND = "#c44e52"
REFERENCE = "#222222"

TREND_NAMES = {"frontier": "frontier", "mean": "mean trend", "envelope": "envelope OLS",
               "changepoint": "changepoint frontier"}


def new_figure(width: float, height: float) -> Figure:
    """A Figure on an Agg canvas, with constrained layout (labels and legends are not cut off)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path_stem: str | Path) -> tuple[Path, Path]:
    """Write ``path_stem.png`` (150 dpi) and ``path_stem.svg``; return both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = Path(f"{stem}.png"), Path(f"{stem}.svg")  # not with_suffix: stems may hold dots
    for path, kwargs in ((png, {"dpi": DPI}), (svg, {})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix[1:], bbox_inches="tight", **kwargs)
        rundir.write_atomic(path, buffer.getvalue())   # a redraw never leaves half a figure
    return png, svg


def short_name(name: str, width: int = 26) -> str:
    """A model's name without its organisation, cut to ``width`` characters."""
    name = str(name).split("/")[-1]
    return name if len(name) <= width else name[: width - 1] + "…"


def to_dates(config, t: np.ndarray) -> pd.DatetimeIndex:
    """Dates of model times t (months from the date origin)."""
    days = np.asarray(t, dtype=float) * DAYS_PER_MONTH
    return pd.Timestamp(config.model.date_origin) + pd.to_timedelta(days, unit="D")


def mdates_num(when) -> float:
    """A date as matplotlib's date number (for annotate and transforms)."""
    return float(mdates.date2num(pd.Timestamp(when).to_pydatetime()))


def median_band(draws2d: np.ndarray,
                prob: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise lower end, median and upper end of the equal-tailed ``prob`` band over the
    draws (axis 0)."""
    tail = (1.0 - prob) / 2.0
    lo, med, hi = np.nanquantile(draws2d, [tail, 0.5, 1.0 - tail], axis=0)
    return lo, med, hi


def kde_line(ax, x: np.ndarray, color, label=None, shade=None, prob: float = 0.9):
    """ArviZ's KDE of the draws ``x`` as a line; ``shade=(lo, hi)`` fills that interval (an HDI
    computed by the caller over all draws, not only the drawn ones)."""
    grid, pdf, _ = az.kde(np.asarray(x, dtype=float))
    ax.plot(grid, pdf, color=color, lw=1.6, label=label)
    if shade is not None:
        lo, hi = shade
        inside = (grid >= lo) & (grid <= hi)
        ax.fill_between(grid[inside], pdf[inside], color=color, alpha=0.25, lw=0,
                        label=f"{prob:.0%} HDI {lo:.2f}–{hi:.2f}")
    return grid, pdf


def grid_of_panels(fig: Figure, n: int, ncols: int = 3):
    """``n`` axes in rows of ``ncols``; the unused places of the last row are hidden."""
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


def density_axes(ax) -> None:
    """The axes of a density-over-date panel: log density, labels, a light grid."""
    ax.set_yscale("log")
    ax.set_xlabel("release date")
    ax.set_ylabel("capability density ρ = effective ÷ actual size")
    ax.grid(which="major", color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _boxes_overlap(a, b, pad: float = 2.0) -> bool:
    return not (a.x1 + pad < b.x0 or b.x1 + pad < a.x0 or a.y1 + pad < b.y0 or b.y1 + pad < a.y0)


# where a label may sit, in points from its point: nearest first, farther ones get a leader line
LABEL_OFFSETS = [(5, 4), (5, -11), (-5, 4), (-5, -11), (8, 14), (8, -20), (-8, 14), (-8, -20),
                 (14, 26), (14, -32), (-14, 26), (-14, -32), (0, 40), (0, -44)]


def place_labels(ax, points, names, obstacles=(), markers=None) -> list:
    """Label points without overlaps: each name (in priority order) takes the first of a ring
    of offsets where its box stays inside the axes and clear of the labels placed so far, of
    the markers (``markers``, data coordinates; default the labelled points) and of
    ``obstacles`` (artists such as the legend); a name with no free place is left out.
    Returns the placed annotations."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    markers = points if markers is None else markers
    disp = ax.transData.transform(np.asarray(markers, dtype=float)) if len(markers) else []
    markers = [(x - 3, y - 3, x + 3, y + 3) for x, y in disp]
    placed, boxes = [], [o.get_window_extent(renderer) for o in obstacles]
    for (x, y), name in zip(points, names):
        for dx, dy in LABEL_OFFSETS:
            far = abs(dy) > 12
            text = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points",
                               ha="left" if dx >= 0 else "right", va="bottom", fontsize=7,
                               color="0.15", zorder=6,
                               arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.5,
                                           "shrinkA": 0, "shrinkB": 3} if far else None)
            box = text.get_window_extent(renderer)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                      and box.y1 <= frame.y1)
            clear = not any(_boxes_overlap(box, b) for b in boxes)
            hits = any(not (box.x1 < m[0] or m[2] < box.x0 or box.y1 < m[1] or m[3] < box.y0)
                       for m in markers)
            if inside and clear and not hits:
                placed.append(text)
                boxes.append(box)
                break
            text.remove()
    return placed
