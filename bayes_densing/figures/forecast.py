"""The forecast figure (``analyses.forecast``): the trend carried past the data, a new model's
predictive band, and each forecast date with its intervals; :func:`write_figure` draws it into a
run directory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayes_densing import results
from bayes_densing.analyses import forecast as fcast
from bayes_densing.figures.common import (REFERENCE, TARGET, TREND, TREND_NAMES, density_axes,
                                          mdates_num, new_figure, save, short_name, to_dates)
from bayes_densing.results import rundir

PREDICTIVE = "#55a868"


def _time_grid(t: np.ndarray, fc) -> np.ndarray:
    """Model times from the first target's release on to the latest forecast date (and to
    each reach date up to three data spans past the last release)."""
    t_last = float(t.max())
    reach = [r.t_months["median"] for r in fc.reach]
    ends = [a.t_months for a in fc.at] + [
        m for m in reach if math.isfinite(m) and m <= t_last + 3 * fc.window_months]
    return np.linspace(float(t.min()), max([t_last] + ends), 160)


def _bands(run, grid: np.ndarray, seed: int) -> list[np.ndarray]:
    """The 90% HDI and median (low, median, high rows) over ``grid`` of the trend line μ(t)
    and of a new model's log density, as the forecast's dates get them."""
    mu = fcast.frontier_draws(run.idata, run.config, grid)
    new = fcast.predictive_at(run.idata, run.config, grid, seed)     # as fc's dates: one band
    return [np.array([[fcast.interval(x[:, k])[q] for k in range(grid.size)]
                      for q in ("low", "median", "high")]) for x in (mu, new)]


def _forecast_dates(ax, config, fc) -> None:
    """Each forecast date: a dashed line, μ(t)'s and a new model's interval beside it, and the
    frontier's numbers written above."""
    for k, a in enumerate(fc.at):
        when = to_dates(config, [a.t_months])[0]
        ax.axvline(when, color=REFERENCE, ls="--", lw=0.9, zorder=0,
                   label="forecast date" if k == 0 else None)
        for d, colour, dx in ((a.frontier_density, TREND, -2),
                              (a.new_model_density, PREDICTIVE, 2)):
            at = when + pd.Timedelta(days=dx * 4)
            ax.errorbar([at], [d["median"]],
                        yerr=[[d["median"] - d["low"]], [d["high"] - d["median"]]],
                        fmt="o", ms=4, color=colour, capsize=3, lw=1.2, zorder=5)
        f = a.frontier_density
        ax.annotate(f"{a.date}\nμ: ρ {f['median']:.3g} [{f['low']:.3g}, {f['high']:.3g}]"
                    + (" (extrapolated)" if a.extrapolated else ""),
                    (mdates_num(when), f["high"]), xytext=(-4, 6), textcoords="offset points",
                    ha="right", va="bottom", fontsize=7, color="0.15", zorder=6)


def _reach_dates(ax, config, fc, t_end: float) -> None:
    """A dash-dotted line at each reach forecast's median date inside the drawn range."""
    for r in fc.reach:
        m = r.t_months["median"]
        if math.isfinite(m) and m <= t_end:
            ax.axvline(to_dates(config, [m])[0], color="#8172b3", ls="-.", lw=1, zorder=0,
                       label=f"{r.params:g}B model reaches {short_name(r.what, 30)}: median "
                             f"{r.date['median']} (P(reachable) {r.p_reachable:.2f})")


def forecast_figure(run: results.Run, fc, path_stem: str | Path | None = None,
                    seed: int = 0) -> Figure:
    """The forecast (``analyses.forecast.forecast``'s result ``fc``): every target's posterior
    median density over its release date, the trend line's median and 90% HDI band over the
    data and on to the latest forecast date, a new model's 90% predictive band, the last
    target's release, and each forecast date marked with its two intervals."""
    config, cd = run.config, run.idata.constant_data
    target = cd["role"].values == "target"
    t = cd["t_months"].values[target].astype(float)
    y = np.exp(np.median(results.draws(run.idata, "log_density"), axis=0))
    grid = _time_grid(t, fc)
    trend, new = _bands(run, grid, seed)
    dates = to_dates(config, grid)
    fig = new_figure(10.0, 6.0)
    ax = fig.add_subplot()
    lo, _, hi = new
    ax.fill_between(dates, np.exp(lo), np.exp(hi), color=PREDICTIVE, alpha=0.14, lw=0, zorder=1,
                    label="a new model's density: 90% predictive HDI"
                          + (" (with a new release group's shift)" if fc.release_group else ""))
    lo, med, hi = trend
    name = TREND_NAMES.get(config.model.trend, config.model.trend)
    ax.fill_between(dates, np.exp(lo), np.exp(hi), color=TREND, alpha=0.22, lw=0, zorder=2,
                    label=f"{name} μ(t): 90% HDI")
    ax.plot(dates, np.exp(med), color=TREND, lw=1.8, zorder=3, label=f"{name} μ(t): median")
    ax.scatter(to_dates(config, t), y, s=12, color=TARGET, alpha=0.8, lw=0, zorder=4,
               label=f"target models ({int(target.sum())}): posterior median density")
    ax.axvline(to_dates(config, [float(t.max())])[0], color="0.45", ls=":", lw=1, zorder=0,
               label=f"last target's release ({fc.data_end})")
    _forecast_dates(ax, config, fc)
    _reach_dates(ax, config, fc, grid[-1])
    density_axes(ax)
    ax.legend(loc="best", fontsize=8, frameon=True, framealpha=0.9)   # clear of the points
    ax.set_title("Forecast of capability density: the trend carried past the data")
    if path_stem is not None:
        save(fig, path_stem)
    return fig


def write_figure(run, fc, directory: str | Path | None = None) -> Path:
    """Draw :func:`forecast_figure` to ``RUN_DIR/figures/forecast.png`` (and .svg) and list it
    in the run's ``derived.json``; ``directory``: elsewhere instead. ``run``: a
    ``results.Run`` or its directory."""
    if not isinstance(run, results.Run):
        run = results.load_run(run)
    in_run = directory is None
    root = Path(run.directory) / "figures" if in_run else Path(directory)
    png, svg = save(forecast_figure(run, fc), root / "forecast")
    if in_run:
        rundir.record_derived(Path(run.directory), [p.relative_to(run.directory).as_posix()
                                                    for p in (png, svg)])
    return png
