"""Figure 3, the doubling-time posterior: T = ln 2 / A with its HDI, the claimed doubling times
with P(T ≤ claim), and the paper's point method on the same data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from bayes_densing import results
from bayes_densing.figures.common import TARGET, TREND, kde_line, new_figure, save
from bayes_densing.model import laws

if TYPE_CHECKING:
    from bayes_densing.results import Run

CLAIM_STYLES = ("--", ":", "-.")


def _point_method(ax, run: Run) -> None:
    """A line at the paper's point estimate on these data, when it could run."""
    point = run.diagnostics.get("classic") or {}
    if point.get("doubling_months") is not None and "error" not in point:
        x = float(point["doubling_months"])
        ax.axvline(x, color="0.25", ls=(0, (1, 2)), lw=1.2,
                   label=f"the paper's point method on these data: {x:.2f}")


def doubling_figure(run: Run, path_stem: str | Path | None = None, claims=None) -> Figure:
    """Figure 3: the posterior of the doubling time T (months) with its 90% HDI shaded, a line at
    each claimed value with P(T ≤ claim) written beside it, and the paper's point method on
    the same data (when it could run)."""
    idata, config = run.idata, run.config
    claims = tuple(claims or results.CLAIMS)
    A = results.slope_draws(idata, config)
    T = results.doubling_months(A)
    finite = T[np.isfinite(T)]
    shown = finite[finite <= np.quantile(finite, 0.995)]   # a long right tail squashes the rest
    summary = results.doubling_summary(A, claims)
    fig = new_figure(8.0, 4.6)
    ax = fig.add_subplot()
    _, pdf = kde_line(ax, shown, TARGET, "posterior density of T",
                      shade=summary["hdi_months"], prob=summary["hdi_prob"])
    med = summary["median_months"]
    ax.axvline(med, color=TARGET, lw=1,
               label=f"median {med:.2f} months ({med * laws.DAYS_PER_MONTH:.0f} days)")
    for m, style in zip(claims, CLAIM_STYLES * 3):
        p = float(np.mean(T <= m))
        ax.axvline(m, color=TREND, ls=style, lw=1.2,
                   label=f"claimed {m:g} months: P(T ≤ {m:g}) = {p:.2f}")
    _point_method(ax, run)
    if summary["p_no_growth"]:
        ax.text(0.99, 0.6, f"P(no growth) = {summary['p_no_growth']:.3f} (T = ∞, not drawn)",
                transform=ax.transAxes, ha="right", fontsize=8)
    lo_x = min(float(shown.min()), *claims)
    hi_x = max(float(shown.max()), *claims)
    pad = 0.05 * (hi_x - lo_x)
    ax.set_xlim(max(0.0, lo_x - pad), hi_x + pad)
    ax.set_ylim(0, float(pdf.max()) * 1.25)
    ax.set_xlabel("doubling time of capability density T = ln 2 / A (months)")
    ax.set_ylabel("posterior density")
    ax.set_title(f"How fast does density double? ({config.model.trend} trend, "
                 f"{T.size} posterior draws)")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if path_stem is not None:
        save(fig, path_stem)
    return fig
