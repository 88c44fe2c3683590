"""Figure 1, density over release date (the paper's Figure 1, with uncertainty): every target
model's posterior density, the trend's band, the reference models at ρ = 1 and the doubling
time. :func:`density_panel` draws it on any axes (the changepoint figure reuses it)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayes_densing import results
from bayes_densing.figures.common import (EXTRAPOLATED, REFERENCE, TARGET, TREND, TREND_NAMES,
                                          density_axes, mdates_num, median_band, new_figure,
                                          place_labels, save, short_name, to_dates)

if TYPE_CHECKING:
    from bayes_densing.results import Run

MAX_LABELS = 14

# the rings round targets whose effective size lies past the reference models' sizes:
# (extrapolation values, line style, legend text)
RINGS = ((["below", "above"], "-", "median effective size outside the reference sizes"),
         (["interval"], "--", "90% interval of the effective size past the reference sizes"))


def _label_choice(targets: pd.DataFrame, n: int = MAX_LABELS) -> pd.DataFrame:
    """Which targets to name: the likeliest frontier models, then the densest."""
    by_frontier = targets[targets.p_on_frontier >= 0.25].sort_values("p_on_frontier",
                                                                      ascending=False)
    densest = targets.sort_values("density", ascending=False)
    chosen = pd.concat([by_frontier.head(n), densest.head(n)]).drop_duplicates("model")
    return chosen.head(n)


def _trend_band(ax, run: Run, t: np.ndarray) -> None:
    """The trend line's median and 90% band over the targets' dates, the doubling time with
    its HDI (or the chance of no growth) in its legend entry."""
    idata, config = run.idata, run.config
    grid = np.linspace(t.min(), t.max(), 200)
    lo, med, hi = median_band(results.trend_line_draws(idata, config, grid))
    doubling = results.doubling_summary(results.slope_draws(idata, config))
    d_lo, d_hi = doubling["hdi_months"]
    dates = to_dates(config, grid)
    ax.fill_between(dates, np.exp(lo), np.exp(hi), color=TREND, alpha=0.18, lw=0, zorder=1)
    speed = (f"doubling {doubling['median_months']:.2f} months (90% HDI {d_lo:.2f}–{d_hi:.2f})"
             if math.isfinite(doubling["median_months"])
             else f"no growth at the median slope (P(no growth) {doubling['p_no_growth']:.2f})")
    ax.plot(dates, np.exp(med), color=TREND, lw=1.8, zorder=2,
            label=f"{TREND_NAMES.get(config.model.trend, config.model.trend)} (median, 90% band):"
                  f" {speed}")


def density_panel(ax, run: Run, n_labels: int = MAX_LABELS, legend: dict | None = None) -> None:
    """Draw the density-over-date picture on ``ax``; ``legend``: ``ax.legend``'s placement and
    style instead of a framed box inside the axes, clear of the points."""
    config, models = run.config, run.models
    tg = models[models.role == "target"].reset_index(drop=True)
    refs = models[models.role == "reference"]
    when = pd.to_datetime(tg.release_date)
    y = tg.density.to_numpy(float)
    yerr = np.vstack([y - tg.density_low.to_numpy(float), tg.density_high.to_numpy(float) - y])
    ax.errorbar(when, y, yerr=yerr, fmt="o", ms=3.2, color=TARGET, ecolor="#9fb4d6",
                elinewidth=0.8, alpha=0.9, zorder=3,
                label=f"target models ({len(tg)}): median density, 90% HDI")
    _trend_band(ax, run, config.model.months(tg.release_date))
    kind = (tg.extrapolation.astype(str) if "extrapolation" in tg
            else pd.Series("no", index=tg.index))     # a run written before the column
    for which, style, text in RINGS:
        ring = kind.isin(which).to_numpy()
        if ring.any():
            ax.scatter(when[ring], y[ring], s=70, facecolor="none", edgecolor=EXTRAPOLATED,
                       lw=1.0, linestyle=style, zorder=5, label=f"{text} ({int(ring.sum())})")
    if len(refs):
        family = ", ".join(dict.fromkeys(refs.family.astype(str)))
        ax.scatter(pd.to_datetime(refs.release_date), np.ones(len(refs)), marker="s", s=26,
                   facecolor="white", edgecolor=REFERENCE, lw=1.1, zorder=4,
                   label=f"reference models ({family}, {len(refs)}): ρ = 1 by definition")
    density_axes(ax)
    legend = ax.legend(**(legend or {"loc": "best", "fontsize": 8, "frameon": True,
                                     "framealpha": 0.9}))
    chosen = _label_choice(tg, n_labels)
    pts = [(mdates_num(d), v) for d, v in zip(pd.to_datetime(chosen.release_date), chosen.density)]
    every = [(mdates_num(d), v) for d, v in zip(when, y)]
    place_labels(ax, pts, [short_name(m) for m in chosen.model], obstacles=[legend], markers=every)


def density_figure(run: Run, path_stem: str | Path | None = None) -> Figure:
    """Figure 1 (the paper's Figure 1, with uncertainty): density of every target model over
    its release date with 90% HDI bars, the trend's median and 90% band, the reference models
    at ρ = 1, and the doubling time with its interval in the legend."""
    fig = new_figure(10.0, 6.2)
    ax = fig.add_subplot()
    ax.set_title("Capability density of open LLMs over release date")
    density_panel(ax, run)
    if path_stem is not None:
        save(fig, path_stem)
    return fig
