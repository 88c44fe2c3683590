"""Figure 4, before and after the change date (the paper's Figure 4), for a ``changepoint`` run:
the densities with the broken trend line, and the posteriors of the two slopes with their
ratio."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from bayes_densing import results
from bayes_densing.analyses.claim import claim
from bayes_densing.figures.common import TREND, kde_line, new_figure, save
from bayes_densing.figures.density import density_panel
from bayes_densing.model import laws

if TYPE_CHECKING:
    from bayes_densing.results import Run


def _mark_change_date(ax, run: Run) -> bool:
    """A dashed line at the change date (the posterior mode when the date is marginalised),
    named at its foot; returns whether the date is marginalised."""
    label = run.config.model.changepoint
    marginal = "changepoint_weight" in run.idata.posterior
    dates = results.change_date_posterior(run.idata) if marginal else None
    change = pd.Timestamp(dates.idxmax() if marginal else label)
    ax.axvline(change, color="0.3", ls="--", lw=1)
    where = (f"marginalised, mode {change:%Y-%m-%d} (P {dates.max():.2f})" if marginal
             else label)
    ax.text(change, 0.01, f" change date {where}", fontsize=8, va="bottom",
            transform=blended_transform_factory(ax.transData, ax.transAxes))
    return marginal


def _slopes_panel(ax, run: Run, marginal: bool) -> None:
    """The posteriors of the slopes before and after, in decades per year, with their ratio."""
    label = run.config.model.changepoint
    yearly = 12.0 / math.log(10.0)   # A per month → decades of density per year
    for name, colour in (("A_before", "0.45"), ("A_after", TREND)):
        A = results.draws(run.idata, name)
        T = results.doubling_months(A)
        median = float(np.median(A))
        speed = (f"doubling {laws.doubling_time(median):.2f} months" if median > 0
                 else "no doubling (median slope ≤ 0)")
        when = "before" if name == "A_before" else "after"
        kde_line(ax, A * yearly, colour,
                 f"{when} {'the change' if marginal else label}: {speed}; "
                 f"P(no growth) {np.mean(~np.isfinite(T)):.2f}")
    ratio = claim(run).ratio or {}
    if ratio:
        ax.text(0.02, 0.97, f"slope after ÷ before: {ratio['median']:.2f} "
                            f"(90% HDI {ratio['low']:.2f}–{ratio['high']:.2f})\n"
                            f"P(after ≥ {ratio['threshold']:g}× before) = "
                            f"{ratio['p_at_least']:.2f}",
                transform=ax.transAxes, va="top", fontsize=8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_xlabel("growth of density: decades (×10) per year (A·12 / ln 10)")
    ax.set_ylabel("posterior density")
    ax.set_title("The two slopes", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7.5, frameon=False)


def changepoint_figure(run: Run, path_stem: str | Path | None = None) -> Figure:
    """Figure 4 (the paper's Figure 4): for a ``changepoint`` run, the densities with the
    broken trend line (left) and the posteriors of the two slopes before and after the change
    date (right), with the ratio after/before. Raises ValueError for other trend forms."""
    if run.config.model.trend != "changepoint":
        raise ValueError(f"this run's trend is {run.config.model.trend!r}; the changepoint "
                         "figure needs a run with --trend changepoint (or --model changepoint)")
    fig = new_figure(13.0, 5.2)
    left, right = fig.subplots(1, 2, width_ratios=[1.7, 1])
    # below the panel, as the slopes' legend: in the panel it hid the frontier's first months
    density_panel(left, run, n_labels=8,
                  legend={"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncol": 2,
                          "fontsize": 7.5, "frameon": False})
    marginal = _mark_change_date(left, run)
    left.set_title("Density over release date, two slopes", fontsize=10)
    _slopes_panel(right, run, marginal)
    if path_stem is not None:
        save(fig, path_stem)
    return fig
