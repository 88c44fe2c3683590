"""Figures. Each function builds one matplotlib Figure and, given a path stem, saves it with
:func:`save` (PNG at 150 dpi and SVG). Figures are made with ``matplotlib.figure.Figure``
directly — no pyplot, no global state, no display needed (the Agg canvas renders them) — so
they are safe in scripts, tests and notebooks alike.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from bayes_densing.results import rundir

if TYPE_CHECKING:
    from bayes_densing.results import Run

DPI = 150
BAR = "#4c72b0"
BASE_SHADE = "#bbbbbb"


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


# --- tornado -------------------------------------------------------------------------------------

def _blank(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x) == ""


def _tornado_rows(table: pd.DataFrame, base_median: float) -> list[dict]:
    """Per varied key: its points (median, HDI, label), failures and the span of medians."""
    base = table[table.variant == "base"]
    base_hdi = ((float(base.hdi_low.iloc[0]), float(base.hdi_high.iloc[0]))
                if len(base) else (math.nan, math.nan))
    rows = []
    others = table[table.variant != "base"]
    for key in dict.fromkeys(others.key):
        g = others[others.key == key]
        failed = g[~g.error.map(_blank)]
        ok = g[g.error.map(_blank)]
        base_value = str(g.base_value.iloc[0])
        points = []
        has_base = False
        for _, r in ok.iterrows():
            is_base = str(r.run_dir) == "base" or str(r.value) == base_value
            has_base |= is_base
            points.append({"median": float(r.median_months), "low": float(r.hdi_low),
                           "high": float(r.hdi_high),
                           "label": f"{r.value} (base)" if is_base else str(r.value)})
        if points and not has_base:
            points.append({"median": base_median, "low": base_hdi[0], "high": base_hdi[1],
                           "label": f"{base_value} (base)"})
        points.sort(key=lambda p: p["median"])
        meds = [p["median"] for p in points]
        span = (max(meds) - min(meds)) if meds else -1.0
        rows.append({"key": str(key), "points": points, "failed": [str(v) for v in failed.value],
                     "span": span if np.isfinite(span) else math.inf})
    rows.sort(key=lambda r: r["span"])   # widest on top: the last row gets the highest y
    return rows


def tornado(table: pd.DataFrame, base_median: float, path_stem: str | Path | None = None,
            *, hdi: bool = True, title: str | None = None):
    """Tornado plot of a sensitivity table (``analyses.sensitivity``): one horizontal bar per
    varied key spanning the doubling-time medians over its values (the base's included), the
    values named at the bar ends, each value's 90% HDI as a thin whisker under its bar (``hdi``),
    a dashed line at the base median over the base's 90% HDI; keys sorted by span, widest on top.

    Returns ``(figure, paths)``: ``paths`` is ``(png, svg)`` when ``path_stem`` is given, else ().
    """
    rows = _tornado_rows(table, base_median)
    base = table[table.variant == "base"]
    base_lo, base_hi = ((float(base.hdi_low.iloc[0]), float(base.hdi_high.iloc[0]))
                        if len(base) else (math.nan, math.nan))
    finite = [p[k] for r in rows for p in r["points"] for k in ("median",)
              if np.isfinite(p[k])] + [base_median]
    finite = [x for x in finite if np.isfinite(x)] or [1.0]
    cap = 2.5 * max(finite)              # HDIs and infinite medians are drawn up to here
    # each value's HDI whisker gets its own line under the bar, ~9 pt apart: rows grow with them
    most = max([len(r["points"]) for r in rows] + [1])
    row_in = max(0.8, 0.55 + 0.13 * most) if hdi else 0.7
    step = 0.12 / row_in
    fig = new_figure(8.0, 1.6 + row_in * max(len(rows), 1))
    ax = fig.add_subplot()
    if np.isfinite(base_lo) and np.isfinite(base_hi):
        ax.axvspan(base_lo, min(base_hi, cap), color=BASE_SHADE, alpha=0.25, lw=0, zorder=0)
    if np.isfinite(base_median):
        ax.axvline(base_median, color="k", ls="--", lw=1, zorder=1)
        ax.text(base_median, 1.0, f" base {base_median:.2f} ", fontsize=8, ha="center",
                va="bottom", transform=blended_transform_factory(ax.transData, ax.transAxes))
    texts = []
    ticklabels = []
    for y, row in enumerate(rows):
        pts = row["points"]
        label = row["key"]
        if row["failed"]:
            label += f"\n({', '.join(row['failed'])}: failed)"
        ticklabels.append(label)
        if not pts:
            texts.append(ax.annotate("every value failed", (base_median, y), ha="center",
                                     va="center", fontsize=8, color="0.3",
                                     bbox={"boxstyle": "square,pad=0.2", "fc": "white",
                                           "ec": "none"}))
            continue
        xs = [min(p["median"], cap) for p in pts]
        lo, hi = min(xs), max(xs)
        ax.barh(y, max(hi - lo, 1e-9), left=lo, height=0.36, color=BAR, alpha=0.75, zorder=2)
        ax.plot(xs, [y] * len(xs), "|", color="k", ms=12, mew=1.2, zorder=3)
        names = lambda at: ", ".join(p["label"] + (" (∞)" if not np.isfinite(p["median"]) else "")
                                     for p, x in zip(pts, xs) if x == at)
        if hi > lo:
            texts.append(ax.annotate(names(lo), (lo, y), xytext=(-5, 0), textcoords="offset points",
                                     ha="right", va="center", fontsize=8))
        texts.append(ax.annotate(names(hi), (hi, y), xytext=(5, 0), textcoords="offset points",
                                 ha="left", va="center", fontsize=8))
        for x in sorted(set(xs) - {lo, hi}):   # values inside the bar: named above it
            texts.append(ax.annotate(names(x), (x, y + 0.2), xytext=(0, 1),
                                     textcoords="offset points", ha="center", va="bottom",
                                     fontsize=7, color="0.2",
                                     bbox={"boxstyle": "square,pad=0.1", "fc": "white",
                                           "ec": "none", "alpha": 0.8}))
        if hdi:
            for j, p in enumerate(pts):
                dy = -0.27 - j * step
                if not (np.isfinite(p["low"]) and np.isfinite(p["high"])):
                    continue
                a, b = max(p["low"], 0.0), min(p["high"], cap)
                ax.plot([a, b], [y + dy] * 2, color="0.35", lw=1, zorder=2)
                ax.plot([min(p["median"], cap)], [y + dy], "o", color="0.35", ms=2.5, zorder=3)
                if p["high"] > cap:
                    ax.plot([cap], [y + dy], ">", color="0.35", ms=4, zorder=3)
                texts.append(ax.annotate(p["label"], (b, y + dy), xytext=(4, 0),
                                         textcoords="offset points", ha="left", va="center",
                                         fontsize=6.5, color="0.35"))
    ax.set_yticks(range(len(rows)), ticklabels, fontsize=9)
    ax.set_ylim(-0.45 - (most - 1) * step if hdi else -0.6, len(rows) - 0.4)
    ax.set_xlabel("doubling time of density (months)")
    ax.set_title(title or "How far each choice moves the doubling time (posterior median)",
                 pad=16, fontsize=11)
    ax.grid(axis="x", color="0.9", lw=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    lo_all = min([x for r in rows for p in r["points"] for x in (p["low"], p["median"])
                  if np.isfinite(x)] + finite)
    hi_all = max([min(x, cap) for r in rows for p in r["points"] for x in (p["high"], p["median"])
                  if np.isfinite(x)] + finite)
    pad = 0.05 * (hi_all - lo_all or 1.0)
    ax.set_xlim(max(lo_all - pad, 0.0), hi_all + pad)
    _make_room(fig, ax, texts)
    handles = [Patch(color=BAR, alpha=0.75, label="range of the medians over the key's values"),
               Line2D([], [], color="k", ls="--", lw=1, label="base median"),
               Patch(color=BASE_SHADE, alpha=0.25, label="base 90% HDI")]
    if hdi:
        handles.insert(1, Line2D([], [], color="0.35", lw=1, marker="o", ms=2.5,
                                 label="each value's median and 90% HDI"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    paths = save(fig, path_stem) if path_stem is not None else ()
    return fig, paths


def _make_room(fig: Figure, ax, texts, rounds: int = 3) -> None:
    """Widen the x range until every end label lies inside the axes."""
    if not texts:
        return
    for _ in range(rounds):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        inv = ax.transData.inverted()
        x0, x1 = ax.get_xlim()
        lefts, rights = [], []
        for t in texts:
            box = t.get_window_extent(renderer)
            lefts.append(inv.transform((box.x0, box.y0))[0])
            rights.append(inv.transform((box.x1, box.y0))[0])
        need_lo, need_hi = min(lefts), max(rights)
        if need_lo >= x0 and need_hi <= x1:
            return
        span = x1 - x0
        ax.set_xlim(min(x0, need_lo - 0.02 * span), max(x1, need_hi + 0.02 * span))


# --- forest ----------------------------------------------------------------------------------------

def forest(table: pd.DataFrame, path_stem: str | Path | None = None,
           claims=(3.3, 3.5)) -> Figure:
    """Doubling time per benchmark subset: median and 90% HDI, one row each, sorted by median.

    ``table`` has columns subset, doubling_median, hdi_low, hdi_high, n_benchmarks and
    diagnostics (analyses/subsets.py). The fit on every benchmark is drawn in black, subsets
    whose diagnostics failed are hollow, and the claimed doubling times are dashed lines.
    """
    t = table.sort_values("doubling_median", ascending=False).reset_index(drop=True)
    n_all = int(table.n_benchmarks.max())
    fig = new_figure(7.5, 1.2 + 0.26 * len(t))
    ax = fig.add_subplot()
    y = np.arange(len(t))
    for i, r in t.iterrows():
        full = r.n_benchmarks == n_all
        colour = "black" if full else BAR
        ok = r.diagnostics == "OK"
        ax.plot([r.hdi_low, r.hdi_high], [i, i], color=colour, lw=2.2 if full else 1.4)
        ax.plot(r.doubling_median, i, "o", color=colour, mfc=colour if ok else "white", ms=5)
    for m, style in zip(claims, ("--", ":")):
        ax.axvline(m, color="#c44e52", ls=style, lw=1, label=f"claimed {m:g} months")
    ax.set_yticks(y, [s.replace("+", " + ") for s in t.subset], fontsize=7)
    ax.set_ylim(-0.7, len(t) - 0.3)
    ax.set_xlabel("doubling time of density (months): median and 90% HDI")
    cut = table.attrs.get("estimand") == "cut"
    ax.set_title(f"Doubling time by benchmark subset ({len(t)} "
                 + ("cut fits: curves from each subset's reference scores)" if cut else "fits)"))
    handles = [Line2D([], [], color="black", marker="o", lw=2, label=f"all {n_all} benchmarks"),
               Line2D([], [], color=BAR, marker="o", lw=1.4, label="subset"),
               Line2D([], [], color=BAR, marker="o", mfc="white", lw=0,
                      label="diagnostics failed")]
    handles += ax.get_legend_handles_labels()[0]
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncol=3)  # off the bars
    ax.grid(axis="x", alpha=0.3)
    if path_stem is not None:
        save(fig, path_stem)
    return fig


# --- figures of one run (``run``: a results.Run) -----------------------------------------------

TARGET = "#4c72b0"
EXTRAPOLATED = "#dd8452"   # rings round targets whose N̂ reads the reference curves past their models
TREND = "#c44e52"
REFERENCE = "#222222"
CLAIM_STYLES = ("--", ":", "-.")
MAX_LABELS = 14


def _short(name: str, width: int = 26) -> str:
    """A model's name without its organisation, cut to ``width`` characters."""
    name = str(name).split("/")[-1]
    return name if len(name) <= width else name[: width - 1] + "…"


def _to_dates(config, t: np.ndarray) -> pd.DatetimeIndex:
    """Dates of model times t (months from the date origin)."""
    from bayes_densing.model.laws import DAYS_PER_MONTH

    days = np.asarray(t, dtype=float) * DAYS_PER_MONTH
    return pd.Timestamp(config.model.date_origin) + pd.to_timedelta(days, unit="D")


def _band(draws2d: np.ndarray, prob: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise median and equal-tailed ``prob`` band over the draws (axis 0)."""
    tail = (1.0 - prob) / 2.0
    lo, med, hi = np.nanquantile(draws2d, [tail, 0.5, 1.0 - tail], axis=0)
    return lo, med, hi


def _boxes_overlap(a, b, pad: float = 2.0) -> bool:
    return not (a.x1 + pad < b.x0 or b.x1 + pad < a.x0 or a.y1 + pad < b.y0 or b.y1 + pad < a.y0)


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
    offsets = [(5, 4), (5, -11), (-5, 4), (-5, -11), (8, 14), (8, -20), (-8, 14), (-8, -20),
               (14, 26), (14, -32), (-14, 26), (-14, -32), (0, 40), (0, -44)]
    placed, boxes = [], [o.get_window_extent(renderer) for o in obstacles]
    for (x, y), name in zip(points, names):
        for dx, dy in offsets:
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


def _label_choice(targets: pd.DataFrame, n: int = MAX_LABELS) -> pd.DataFrame:
    """Which targets to name: the likeliest frontier models, then the densest."""
    by_frontier = targets[targets.p_on_frontier >= 0.25].sort_values("p_on_frontier",
                                                                      ascending=False)
    densest = targets.sort_values("density", ascending=False)
    chosen = pd.concat([by_frontier.head(n), densest.head(n)]).drop_duplicates("model")
    return chosen.head(n)


TREND_NAMES = {"frontier": "frontier", "mean": "mean trend", "envelope": "envelope OLS",
               "changepoint": "changepoint frontier"}


def density_panel(ax, run: Run, n_labels: int = MAX_LABELS, legend: dict | None = None) -> None:
    """Draw the density-over-date picture on ``ax``; ``legend``: ``ax.legend``'s placement and
    style instead of a framed box inside the axes, clear of the points."""
    from bayes_densing import results

    idata, config, models = run.idata, run.config, run.models
    tg = models[models.role == "target"].reset_index(drop=True)
    refs = models[models.role == "reference"]
    when = pd.to_datetime(tg.release_date)
    y = tg.density.to_numpy(float)
    yerr = np.vstack([y - tg.density_low.to_numpy(float), tg.density_high.to_numpy(float) - y])
    ax.errorbar(when, y, yerr=yerr, fmt="o", ms=3.2, color=TARGET, ecolor="#9fb4d6",
                elinewidth=0.8, alpha=0.9, zorder=3,
                label=f"target models ({len(tg)}): median density, 90% HDI")
    t = config.model.months(tg.release_date)
    grid = np.linspace(t.min(), t.max(), 200)
    lo, med, hi = _band(results.trend_line_draws(idata, config, grid))
    doubling = results.doubling_summary(results.slope_draws(idata, config))
    d_lo, d_hi = doubling["hdi_months"]
    dates = _to_dates(config, grid)
    ax.fill_between(dates, np.exp(lo), np.exp(hi), color=TREND, alpha=0.18, lw=0, zorder=1)
    speed = (f"doubling {doubling['median_months']:.2f} months (90% HDI {d_lo:.2f}–{d_hi:.2f})"
             if math.isfinite(doubling["median_months"])
             else f"no growth at the median slope (P(no growth) {doubling['p_no_growth']:.2f})")
    ax.plot(dates, np.exp(med), color=TREND, lw=1.8, zorder=2,
            label=f"{TREND_NAMES.get(config.model.trend, config.model.trend)} (median, 90% band):"
                  f" {speed}")
    kind = (tg.extrapolation.astype(str) if "extrapolation" in tg
            else pd.Series("no", index=tg.index))     # a run written before the column
    for which, style, text in ((["below", "above"], "-", "median effective size outside the "
                                "reference sizes"),
                               (["interval"], "--", "90% interval of the effective size past "
                                "the reference sizes")):
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
    place_labels(ax, pts, [_short(m) for m in chosen.model], obstacles=[legend], markers=every)


def mdates_num(when) -> float:
    """A date as matplotlib's date number (for annotate and transforms)."""
    from matplotlib import dates as mdates

    return float(mdates.date2num(pd.Timestamp(when).to_pydatetime()))


def density_figure(run: Run, path_stem=None) -> Figure:
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


def _grid_of_panels(fig: Figure, n: int, ncols: int = 3):
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


def _curves_on_grid(run: Run, sizes: np.ndarray, tokens: float | None = None,
                    max_draws: int = 400):
    """Score p and loss L of every benchmark's curves at the sizes ``sizes`` (billions) and
    ``tokens`` (trillions; default D0), per posterior draw (thinned to at most ``max_draws``):
    two arrays (draws, sizes, bench)."""
    from bayes_densing.model import laws
    from bayes_densing import results
    from bayes_densing.model.build import GLOBAL_LOSS_COEFS, curve_parameters

    idata, config = run.idata, run.config
    cd = idata.constant_data
    n_samples = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
    params = results.curve_draws(idata, thin=max(1, n_samples // max_draws))
    ref_params = cd["params"].values[cd["role"].values == "reference"]
    chance = cd["chance"].values
    coefs, l, gamma, c = curve_parameters(params, ref_params, chance, config.model.d0, xp=np)
    lift = lambda v: v[:, None, :] if np.ndim(v) == 2 else v   # (draws, bench) → (draws, 1, bench)
    coefs = {k: (v[:, None] if k in GLOBAL_LOSS_COEFS and np.ndim(v) == 2 else lift(v))
             for k, v in coefs.items()}
    d = config.model.d0 if tokens is None else tokens
    L = laws.loss_law(np.asarray(sizes, dtype=float)[None, :, None], d, **coefs)
    p = laws.performance(L, lift(c), lift(gamma), lift(l), chance)
    return p, L


# which scores the curves were fitted to (model.curves), for the scaling figure's title
CURVES_FROM = {"cut": ", from the reference models' scores alone (cut)",
               "joint": ", fitted to every model's scores (joint)"}


def _reference_fit_note(ax, fit: dict | None) -> None:
    """The reference scores' mean LOO-PIT on their benchmark's panel (``reference_fit``),
    in the extrapolation colour (orange) when the references sit off their own curve
    (|z| > 2)."""
    if not fit:
        return
    off = fit["verdict"] != "ok"
    ax.text(0.97, 0.04, f"references{' ' + fit['verdict'] + ' the curve' if off else ''}: "
            f"mean LOO-PIT {fit['mean_pit']:.2f} (z {fit['z']:+.1f})", transform=ax.transAxes,
            ha="right", va="bottom", fontsize=7, color=EXTRAPOLATED if off else "0.3",
            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))


def scaling_figure(run: Run, path_stem=None) -> Figure:
    """Figure 2 (the paper's Figure 2, with uncertainty): per benchmark, the reference models'
    scores against their size with the posterior median and 90% band of the performance map
    at D0; the targets' scores at their median effective size show how each is placed. When
    losses were given, a second row shows the loss law the same way."""
    idata, config, models = run.idata, run.config, run.models
    cd = idata.constant_data
    benches = [str(b) for b in cd["benchmark"].values]
    role = cd["role"].values[cd["obs_model"].values]
    bench_of = cd["obs_benchmark"].values
    score = cd["score"].values
    size_of_model = cd["params"].values.astype(float).copy()
    eff = models.set_index("model").effective_params
    names = cd["model_name"].values
    is_target = cd["role"].values == "target"
    size_of_model[is_target] = eff.reindex(names[is_target]).to_numpy(float)
    x_obs = size_of_model[cd["obs_model"].values]
    ref_sizes = cd["params"].values[cd["role"].values == "reference"]
    finite = x_obs[np.isfinite(x_obs) & (x_obs > 0)]
    lo_n = min(ref_sizes.min(), np.quantile(finite, 0.01)) / 1.5
    hi_n = max(ref_sizes.max(), np.quantile(finite, 0.99)) * 1.5
    sizes = np.geomspace(lo_n, hi_n, 80)
    p, L = _curves_on_grid(run, sizes)
    ref_tokens = cd["tokens"].values[cd["role"].values == "reference"].astype(float)
    d_ref = (float(np.exp(np.mean(np.log(ref_tokens)))) if "b" in idata.posterior
             and np.isfinite(ref_tokens).all() else None)   # the data term is modelled
    p_ref = _curves_on_grid(run, sizes, d_ref)[0] if d_ref is not None else None
    loss_obs = cd["loss"].values if "loss" in cd else np.full(score.shape, np.nan)
    has_loss = bool(np.isfinite(loss_obs).any())
    n = len(benches)
    ncols = min(3, n)
    rows = math.ceil(n / ncols)
    fig = new_figure(3.6 * ncols, 3.0 * rows * (2 if has_loss else 1) + 0.6)
    axes = _grid_of_panels(fig, n * (2 if has_loss else 1), ncols)
    chance = cd["chance"].values
    post = idata.posterior
    # a target of size N scores on benchmark j as a reference model of size N·e^δ_j would
    offset = (np.median(post["target_offset"].values.reshape(-1, n), axis=0)
              if "target_offset" in post else None)
    for j, b in enumerate(benches):
        ax = axes[j]
        lo, med, hi = _band(p[:, :, j])
        ax.fill_between(sizes, lo, hi, color=TREND, alpha=0.2, lw=0)
        ax.plot(sizes, med, color=TREND, lw=1.5)
        if offset is not None:
            ax.plot(sizes * np.exp(-offset[j]), med, color=TARGET, ls="--", lw=1.1)
        if p_ref is not None:
            ax.plot(sizes, np.median(p_ref[:, :, j], axis=0), color="0.3", ls="--", lw=1)
        tgt = (bench_of == j) & (role == "target")
        ref = (bench_of == j) & (role == "reference")
        ax.scatter(x_obs[tgt], score[tgt], s=8, color=TARGET, alpha=0.45, lw=0, zorder=2)
        ax.scatter(x_obs[ref], score[ref], s=28, marker="s", facecolor="white",
                   edgecolor=REFERENCE, lw=1.1, zorder=3)
        ax.axhline(chance[j], color="0.5", ls=":", lw=1)
        _reference_fit_note(ax, run.diagnostics.get("reference_fit", {}).get(b))
        ax.set_xscale("log")
        ax.set_xlim(min(lo_n, finite.min() / 1.2), max(hi_n, finite.max() * 1.2))
        ax.set_title(b if offset is None else f"{b} (targets' offset δ = {offset[j]:+.2f})",
                     fontsize=10)
        ax.set_xlabel("parameters (billions)", fontsize=8)
        ax.set_ylabel("score", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(color="0.93", lw=0.7)
        if has_loss:
            lax = axes[n + j]
            llo, lmed, lhi = _band(L[:, :, j])
            lax.fill_between(sizes, llo, lhi, color=TREND, alpha=0.2, lw=0)
            lax.plot(sizes, lmed, color=TREND, lw=1.5)
            known = np.isfinite(loss_obs)
            lax.scatter(x_obs[tgt & known], loss_obs[tgt & known], s=8, color=TARGET,
                        alpha=0.45, lw=0, zorder=2)
            lax.scatter(x_obs[ref & known], loss_obs[ref & known], s=28, marker="s",
                        facecolor="white", edgecolor=REFERENCE, lw=1.1, zorder=3)
            lax.set_xscale("log")
            lax.set_title(f"{b}: loss", fontsize=10)
            lax.set_xlabel("parameters (billions)", fontsize=8)
            lax.set_ylabel("loss", fontsize=8)
    d0 = config.model.d0
    handles = [Line2D([], [], color=TREND, lw=1.5, label=f"performance map at D0 = {d0:g}T tokens "
                                                          "(median)"),
               Patch(color=TREND, alpha=0.2, label="90% band"),
               Line2D([], [], marker="s", mfc="white", mec=REFERENCE, lw=0,
                      label="reference models (actual size)"),
               Line2D([], [], marker="o", color=TARGET, alpha=0.45, lw=0, ms=4,
                      label="target models (median effective size)"),
               Line2D([], [], color="0.5", ls=":", label="chance")]
    if offset is not None:
        handles.insert(2, Line2D([], [], color=TARGET, ls="--", lw=1.1,
                                 label="the targets' curve: shifted by their offset δ (median)"))
    if p_ref is not None:
        handles.insert(2, Line2D([], [], color="0.3", ls="--", lw=1,
                                 label=f"the same at the references' data size ({d_ref:.2g}T)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Score against size: each benchmark's fitted curve"
                 + CURVES_FROM.get(run.diagnostics.get("estimand", "joint"), ""), fontsize=11)
    if path_stem is not None:
        save(fig, path_stem)
    return fig


def _kde_line(ax, x: np.ndarray, color, label=None, shade=None, prob: float = 0.9):
    """ArviZ's KDE of the draws ``x`` as a line; ``shade=(lo, hi)`` fills that interval (an HDI
    computed by the caller over all draws, not only the drawn ones)."""
    import arviz as az

    grid, pdf, _ = az.kde(np.asarray(x, dtype=float))
    ax.plot(grid, pdf, color=color, lw=1.6, label=label)
    if shade is not None:
        lo, hi = shade
        inside = (grid >= lo) & (grid <= hi)
        ax.fill_between(grid[inside], pdf[inside], color=color, alpha=0.25, lw=0,
                        label=f"{prob:.0%} HDI {lo:.2f}–{hi:.2f}")
    return grid, pdf


def doubling_figure(run: Run, path_stem=None, claims=None) -> Figure:
    """Figure 3: the posterior of the doubling time T (months) with its 90% HDI shaded, a line at
    each claimed value with P(T ≤ claim) written beside it, and the paper's point method on
    the same data (when it could run)."""
    from bayes_densing.model import laws
    from bayes_densing import results

    idata, config = run.idata, run.config
    claims = tuple(claims or results.CLAIMS)
    A = results.slope_draws(idata, config)
    T = results.doubling_months(A)
    finite = T[np.isfinite(T)]
    shown = finite[finite <= np.quantile(finite, 0.995)]   # a long right tail squashes the rest
    summary = results.doubling_summary(A, claims)
    fig = new_figure(8.0, 4.6)
    ax = fig.add_subplot()
    grid, pdf = _kde_line(ax, shown, TARGET, "posterior density of T",
                          shade=summary["hdi_months"], prob=summary["hdi_prob"])
    med = summary["median_months"]
    ax.axvline(med, color=TARGET, lw=1, label=f"median {med:.2f} months ({med * laws.DAYS_PER_MONTH:.0f} days)")
    top = float(pdf.max())
    for m, style in zip(claims, CLAIM_STYLES * 3):
        p = float(np.mean(T <= m))
        ax.axvline(m, color=TREND, ls=style, lw=1.2,
                   label=f"claimed {m:g} months: P(T ≤ {m:g}) = {p:.2f}")
    point = run.diagnostics.get("classic") or {}
    if point.get("doubling_months") is not None and "error" not in point:
        x = float(point["doubling_months"])
        ax.axvline(x, color="0.25", ls=(0, (1, 2)), lw=1.2,
                   label=f"the paper's point method on these data: {x:.2f}")
    if summary["p_no_growth"]:
        ax.text(0.99, 0.6, f"P(no growth) = {summary['p_no_growth']:.3f} (T = ∞, not drawn)",
                transform=ax.transAxes, ha="right", fontsize=8)
    lo_x = min(float(shown.min()), *claims)
    hi_x = max(float(shown.max()), *claims)
    pad = 0.05 * (hi_x - lo_x)
    ax.set_xlim(max(0.0, lo_x - pad), hi_x + pad)
    ax.set_ylim(0, top * 1.25)
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


def density_axes(ax) -> None:
    """The axes of a density-over-date panel: log density, labels, a light grid."""
    ax.set_yscale("log")
    ax.set_xlabel("release date")
    ax.set_ylabel("capability density ρ = effective ÷ actual size")
    ax.grid(which="major", color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def changepoint_figure(run: Run, path_stem=None) -> Figure:
    """Figure 4 (the paper's Figure 4): for a ``changepoint`` run, the densities with the
    broken trend line (left) and the posteriors of the two slopes before and after the change
    date (right), with the ratio after/before. Raises ValueError for other trend forms."""
    from bayes_densing.model import laws
    from bayes_densing import results
    from bayes_densing.analyses.claim import claim

    idata, config = run.idata, run.config
    if config.model.trend != "changepoint":
        raise ValueError(f"this run's trend is {config.model.trend!r}; the changepoint figure "
                         "needs a run with --trend changepoint (or --model changepoint)")
    fig = new_figure(13.0, 5.2)
    left, right = fig.subplots(1, 2, width_ratios=[1.7, 1])
    # below the panel, as the slopes' legend: in the panel it hid the frontier's first months
    density_panel(left, run, n_labels=8,
                  legend={"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncol": 2,
                          "fontsize": 7.5, "frameon": False})
    label = config.model.changepoint
    marginal = "changepoint_weight" in idata.posterior
    dates = results.change_date_posterior(idata) if marginal else None
    change = pd.Timestamp(dates.idxmax() if marginal else label)
    left.axvline(change, color="0.3", ls="--", lw=1)
    where = (f"marginalised, mode {change:%Y-%m-%d} (P {dates.max():.2f})" if marginal
             else label)
    left.text(change, 0.01, f" change date {where}", fontsize=8,
              va="bottom",
              transform=blended_transform_factory(left.transData, left.transAxes))
    left.set_title("Density over release date, two slopes", fontsize=10)
    yearly = 12.0 / math.log(10.0)   # A per month → decades of density per year
    for name, colour in (("A_before", "0.45"), ("A_after", TREND)):
        A = results.draws(idata, name)
        T = results.doubling_months(A)
        median = float(np.median(A))
        speed = (f"doubling {laws.doubling_time(median):.2f} months" if median > 0
                 else "no doubling (median slope ≤ 0)")
        when = "before" if name == "A_before" else "after"
        _kde_line(right, A * yearly, colour,
                  f"{when} {'the change' if marginal else label}: {speed}; "
                  f"P(no growth) {np.mean(~np.isfinite(T)):.2f}")
    ratio = claim(run).ratio or {}
    if ratio:
        right.text(0.02, 0.97, f"slope after ÷ before: {ratio['median']:.2f} "
                               f"(90% HDI {ratio['low']:.2f}–{ratio['high']:.2f})\n"
                               f"P(after ≥ {ratio['threshold']:g}× before) = "
                               f"{ratio['p_at_least']:.2f}",
                   transform=right.transAxes, va="top", fontsize=8)
    right.axvline(0, color="0.7", lw=0.8)
    right.set_xlabel("growth of density: decades (×10) per year (A·12 / ln 10)")
    right.set_ylabel("posterior density")
    right.set_title("The two slopes", fontsize=10)
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7.5, frameon=False)
    if path_stem is not None:
        save(fig, path_stem)
    return fig


def _rank_vlines(ax, x: np.ndarray, colours, bins: int = 20) -> None:
    """A rank plot as ArviZ's ``rank_vlines`` draws it: the draws of all chains ``x`` (chain,
    draw) ranked together, and per chain (one row each) every rank bin's count as a line from
    the count a uniform spread would give; mixed chains give short lines around their row."""
    from scipy.stats import rankdata

    chains, n = x.shape
    ranks = rankdata(x.reshape(-1)).reshape(chains, n)
    edges = np.linspace(0.5, chains * n + 0.5, bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    expected = n / bins
    for c, colour in enumerate(colours):
        counts, _ = np.histogram(ranks[c], edges)
        top = c + 0.45 * (counts - expected) / expected    # ±45% of a row: rows never overlap
        ax.axhline(c, color=colour, lw=0.8, ls="--")
        ax.vlines(centres, c, top, color=colour, lw=1.2)
        ax.plot(centres, top, "o", color=colour, ms=2.5)
    ax.set_yticks(range(chains), [f"chain {i}" for i in range(chains)], fontsize=7)
    ax.set_ylim(-0.7, chains - 0.3)


TRACE_VARS = ("A", "B", "A_before", "A_after", "sigma_v", "sigma_u", "sigma",
              "outlier_rate_reference", "outlier_rate_target", "outlier_rate")


def trace_figure(run: Run, path_stem=None) -> Figure:
    """Figure 5a: ArviZ rank plots of the trend parameters (one colour per chain; flat, mixed
    bars mean the chains agree), each titled with its R-hat and bulk/tail ESS, beside each
    chain's posterior density."""
    import arviz as az

    idata, config = run.idata, run.config
    post = idata.posterior
    names = [v for v in TRACE_VARS if v in post
             and not (v == "A" and config.model.trend == "changepoint")]   # A is A_after there
    # a failed chain's non-finite draws would give ArviZ NaN axis limits: show the others
    finite = np.all([np.isfinite(post[v].values).reshape(post.sizes["chain"], -1).all(axis=1)
                     for v in names], axis=0)
    failed = [int(c) for c in np.flatnonzero(~finite)]
    d = run.diagnostics
    verdict = "diagnostics OK" if not d.get("problems") else "DIAGNOSTICS FAILED: " + "; ".join(
        d["problems"])
    if not finite.any():
        fig = new_figure(10.0, 2.0)
        fig.text(0.5, 0.5, "No chain has finite draws of the trend parameters: nothing to plot."
                 f"\n{verdict}", ha="center", va="center", fontsize=10, wrap=True)
        if path_stem is not None:
            save(fig, path_stem)
        return fig
    kept = post.to_dataset()[names].isel(chain=np.flatnonzero(finite))
    fig = new_figure(10.0, 1.9 * len(names) + 0.8)
    axes = fig.subplots(len(names), 2, squeeze=False)
    colours = [f"C{c % 10}" for c in np.flatnonzero(finite)]
    for row, name in zip(axes, names):
        x = kept[name].transpose("chain", "draw").values.astype(float)
        for chain, colour in zip(x, colours):
            grid, pdf, _ = az.kde(chain)
            row[0].plot(grid, pdf, color=colour, lw=1.0)
        _rank_vlines(row[1], x, colours)
    rhat, bulk, tail = (az.rhat(kept), az.ess(kept, method="bulk"), az.ess(kept, method="tail"))
    for row, name in zip(axes, names):
        row[0].set_title(name, fontsize=9)
        row[1].set_title(f"{name}: R-hat {float(rhat[name]):.3f}, ESS bulk "
                         f"{float(bulk[name]):.0f} / tail {float(tail[name]):.0f}", fontsize=9)
        for ax in row:
            ax.tick_params(labelsize=7)
        row[1].set_xlabel("rank of the draw among all chains", fontsize=8)
    left_out = (f" (chain{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} left "
                "out: non-finite draws)") if failed else ""
    title = (f"Chains of the trend parameters: posterior per chain (left), rank plot "
             f"(right){left_out} — {verdict}")
    fig.suptitle(textwrap.fill(title, 150), fontsize=10)   # a failed run's problems run long
    if path_stem is not None:
        save(fig, path_stem)
    return fig


def ppc_figure(run: Run, path_stem=None, n_replicates: int = 60) -> Figure:
    """Figure 5b: posterior predictive check per benchmark, as ArviZ's ``plot_ppc_dist``
    draws it: the observed scores' distribution (KDE) against ``n_replicates`` replicated
    datasets and their mean, each panel titled with the share of observed scores
    inside their own 90% predictive interval."""
    import arviz as az

    idata = run.idata
    cd = idata.constant_data
    benches = [str(b) for b in cd["benchmark"].values]
    bench_of = cd["obs_benchmark"].values
    n_items = cd["n_items"].values.astype(float)
    rep = idata.posterior_predictive["correct"].values / n_items[bench_of]
    rep = rep.reshape(1, -1, rep.shape[-1])
    rep = rep[:, np.isfinite(rep).all(axis=(0, 2))]     # a failed draw's replicates are NaN
    observed = cd["score"].values
    n_replicates = min(n_replicates, rep.shape[1])     # a short run has fewer draws
    fig = new_figure(3.6 * min(3, len(benches)), 3.0 * math.ceil(len(benches) / 3) + 0.7)
    axes = _grid_of_panels(fig, len(benches))
    shown = np.random.default_rng(0).choice(rep.shape[1], n_replicates, replace=False)
    for j, (ax, b) in enumerate(zip(axes, benches)):
        idx = np.flatnonzero(bench_of == j)
        if n_replicates == 0:
            ax.text(0.5, 0.5, "no finite replicates", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_title(b, fontsize=9)
            continue
        curves = [az.kde(rep[0, r, idx])[:2] for r in shown]   # ArviZ's KDE of each replicate
        for i, (grid, pdf) in enumerate(curves):
            ax.plot(grid, pdf, color=BAR, alpha=0.2, lw=0.7,
                    label="Replicated datasets" if i == 0 else None)
        # their mean on one grid (a KDE of all replicates pooled would use a narrower bandwidth)
        common = np.linspace(min(g[0] for g, _ in curves), max(g[-1] for g, _ in curves), 256)
        on = np.array([np.interp(common, g, p, left=np.nan, right=np.nan) for g, p in curves])
        n = np.isfinite(on).sum(axis=0)      # shown where most replicates reach
        mean = np.where(n >= len(curves) / 2, np.nansum(on, axis=0) / np.maximum(n, 1), np.nan)
        ax.plot(common, mean, color="C1", ls="--", lw=1.3, label="Replicated, mean")
        grid, pdf, _ = az.kde(observed[idx])
        ax.plot(grid, pdf, color="black", lw=1.6, label="Observed scores")
        if j == 0:
            ax.legend(fontsize=7, frameon=False)
        flat = rep[..., idx].reshape(-1, idx.size)
        lo, hi = np.quantile(flat, [0.05, 0.95], axis=0)
        cover = float(np.mean((observed[idx] >= lo) & (observed[idx] <= hi)))
        ax.set_title(f"{b}: {cover:.0%} of {idx.size} scores inside\ntheir 90% predictive interval",
                     fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("Posterior predictive check: observed scores against replicated data",
                 fontsize=11)
    if path_stem is not None:
        save(fig, path_stem)
    return fig


# --- every figure of a run ----------------------------------------------------------------------

# (name, title, maker): in the order the report shows them
RUN_FIGURES = (
    ("density", "Density over release date", density_figure),
    ("doubling", "Doubling-time posterior", doubling_figure),
    ("scaling", "Scaling curves per benchmark", scaling_figure),
    ("changepoint", "Before and after the change date", changepoint_figure),
    ("trace", "Chains of the trend parameters", trace_figure),
    ("ppc", "Posterior predictive check", ppc_figure),
)


def _captions(run: Run) -> dict[str, str]:
    """Every run figure's caption, by name."""
    from bayes_densing import results

    config, models = run.config, run.models
    n_target = int((models.role == "target").sum())
    refs = ", ".join(dict.fromkeys(models.family[models.role == "reference"].astype(str)))
    d = results.doubling_summary(results.slope_draws(run.idata, config))
    lo, hi = d["hdi_months"]
    return {
        "density": f"Each of the {n_target} target models at its posterior median density with "
                   f"its 90% HDI; the {config.model.trend} trend's median and 90% band; the "
                   f"reference models ({refs}) sit at ρ = 1 by definition. Doubling time "
                   f"{d['median_months']:.2f} months (90% HDI {lo:.2f}–{hi:.2f}).",
        "doubling": "Posterior of T = ln 2 / A with its 90% HDI shaded; dashed lines at the "
                    "claimed doubling times with the posterior probability of T at or below "
                    "each; the dotted line is the paper's point method on the same data.",
        "scaling": f"Per benchmark, the reference models' scores at their size and the fitted "
                   f"performance map at D0 = {config.model.d0:g}T tokens (median, 90% band); "
                   "each target model's score is drawn at its median effective size, so a target "
                   "far from the curve is one the curves cannot place well.",
        "changepoint": f"Densities with the broken trend line (change at "
                       f"{config.model.changepoint}) and the posteriors of the two slopes.",
        "trace": "Rank plots: with well-mixed chains every chain's ranks are spread evenly "
                 "(bars near the dashed line); R-hat and ESS per parameter in each title.",
        "ppc": "Observed scores (black) against 60 replicated datasets from the posterior "
               "(blue); each title gives the share of observed scores inside their own 90% "
               "predictive interval (about 90% is what a calibrated model gives).",
    }


def run_figures(run: Run, directory: str | Path, progress=None) -> list[dict]:
    """Write every figure of a run into ``directory`` (PNG + SVG) with a manifest
    ``index.json``: a list, in display order, of ``{name, title, caption, png, svg}`` (paths
    relative to the run directory: ``figures/NAME.png``, wherever ``directory`` is while it is
    being written) or ``{name, title, skipped}`` for a figure that does not
    apply to this run (the changepoint figure of a run without a changepoint). ``progress``,
    if given, is called with each figure's name before it is drawn."""
    import json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    index, captions = [], _captions(run)
    for name, title, maker in RUN_FIGURES:
        if progress is not None:
            progress(name)
        if name == "changepoint" and run.config.model.trend != "changepoint":
            index.append({"name": name, "title": title,
                          "skipped": "this run has no changepoint; run `bayes-densing sample "
                                     "--model changepoint` for the before/after slopes"})
            continue
        maker(run, directory / name)
        index.append({"name": name, "title": title, "caption": captions[name],
                      "png": f"figures/{name}.png", "svg": f"figures/{name}.svg"})
    (directory / "index.json").write_text(json.dumps(index, indent=2))
    return index


def figure_files(run_dir: str | Path) -> list[str]:
    """The files of a run's ``figures/``, relative to the run directory."""
    root = Path(run_dir)
    return sorted(p.relative_to(root).as_posix() for p in (root / "figures").glob("*") if p.is_file())


def record_figures(run_dir: str | Path) -> None:
    """List the run's figures in its ``derived.json`` (``rundir.record_derived``)."""
    rundir.record_derived(Path(run_dir), figure_files(run_dir))


def figures_ok(run_dir: str | Path) -> bool:
    """Whether the run's figures are all there, as ``derived.json`` recorded them."""
    files = [f for f in rundir.derived_files(run_dir) if f.startswith("figures/")]
    return "figures/index.json" in files and rundir.derived_ok(Path(run_dir), files)


def plot_directory(directory: str | Path, progress=None) -> list[Path]:
    """Redraw the figures of anything bayes-densing wrote: a run directory (every run figure,
    into ``figures/``, replaced atomically), a ``subsets`` directory (forest.png) or a
    ``sensitivity`` directory (tornado.png). Returns the PNG paths written. Raises
    ``results.RunDirError`` for a directory that is none of these."""
    from bayes_densing import results

    directory = Path(directory)
    if (directory / "posterior.nc").exists() or rundir.kind(directory) == "run":
        run = results.load_run(directory)
        with results.atomic_dir(directory / "figures", force=True) as tmp:
            index = run_figures(run, tmp, progress)
        record_figures(directory)
        return [directory / e["png"] for e in index if "png" in e]
    if (directory / "subsets.csv").exists():
        rundir.verify(directory, "subsets")
        forest(pd.read_csv(directory / "subsets.csv"), directory / "forest")
        rundir.record_derived(directory, ["forest.png", "forest.svg"])
        return [directory / "forest.png"]
    if (directory / "sensitivity.csv").exists():
        rundir.verify(directory, "sensitivity")
        table = pd.read_csv(directory / "sensitivity.csv")
        base = table[table.variant == "base"]
        base_median = float(base.median_months.iloc[0]) if len(base) else math.nan
        tornado(table, base_median, directory / "tornado")
        rundir.record_derived(directory, ["tornado.png", "tornado.svg"])
        return [directory / "tornado.png"]
    if not directory.is_dir():
        raise results.RunDirError(f"{directory}: no such directory")
    raise results.RunDirError(f"{directory}: not a run, subsets or sensitivity directory "
                              "(no posterior.nc, subsets.csv or sensitivity.csv)")


# --- the forecast (analyses/forecast.py) ---------------------------------------------------------

PREDICTIVE = "#55a868"


def forecast_figure(run: Run, fc, path_stem=None, seed: int = 0) -> Figure:
    """The forecast (``analyses.forecast.forecast``'s result ``fc``): every target's posterior
    median density over its release date, the trend line's median and 90% HDI band over the
    data and on to the latest forecast date, a new model's 90% predictive band, the last
    target's release, and each forecast date marked with its two intervals."""
    from bayes_densing import results
    from bayes_densing.analyses import forecast as fcast

    idata, config = run.idata, run.config
    cd = idata.constant_data
    target = cd["role"].values == "target"
    t = cd["t_months"].values[target].astype(float)
    y = np.exp(np.median(results.draws(idata, "log_density"), axis=0))
    t_last = float(t.max())
    ends = [a.t_months for a in fc.at] + [
        r.t_months["median"] for r in fc.reach
        if math.isfinite(r.t_months["median"]) and r.t_months["median"] <= t_last + 3 * fc.window_months]
    grid = np.linspace(float(t.min()), max([t_last] + ends), 160)
    mu = fcast.frontier_draws(idata, config, grid)
    new = fcast.predictive_at(idata, config, grid, seed)     # as fc's dates: one band
    bands = [np.array([[fcast.interval(x[:, k])[q] for k in range(grid.size)]
                       for q in ("low", "median", "high")]) for x in (mu, new)]
    dates = _to_dates(config, grid)
    fig = new_figure(10.0, 6.0)
    ax = fig.add_subplot()
    lo, _, hi = bands[1]
    ax.fill_between(dates, np.exp(lo), np.exp(hi), color=PREDICTIVE, alpha=0.14, lw=0, zorder=1,
                    label="a new model's density: 90% predictive HDI"
                          + (" (with a new release group's shift)" if fc.release_group else ""))
    lo, med, hi = bands[0]
    name = TREND_NAMES.get(config.model.trend, config.model.trend)
    ax.fill_between(dates, np.exp(lo), np.exp(hi), color=TREND, alpha=0.22, lw=0, zorder=2,
                    label=f"{name} μ(t): 90% HDI")
    ax.plot(dates, np.exp(med), color=TREND, lw=1.8, zorder=3, label=f"{name} μ(t): median")
    ax.scatter(_to_dates(config, t), y, s=12, color=TARGET, alpha=0.8, lw=0, zorder=4,
               label=f"target models ({int(target.sum())}): posterior median density")
    ax.axvline(_to_dates(config, [t_last])[0], color="0.45", ls=":", lw=1, zorder=0,
               label=f"last target's release ({fc.data_end})")
    for k, a in enumerate(fc.at):
        when = _to_dates(config, [a.t_months])[0]
        ax.axvline(when, color=REFERENCE, ls="--", lw=0.9, zorder=0,
                   label="forecast date" if k == 0 else None)
        for d, colour, dx in ((a.frontier_density, TREND, -2), (a.new_model_density, PREDICTIVE, 2)):
            at = when + pd.Timedelta(days=dx * 4)
            ax.errorbar([at], [d["median"]], yerr=[[d["median"] - d["low"]], [d["high"] - d["median"]]],
                        fmt="o", ms=4, color=colour, capsize=3, lw=1.2, zorder=5)
        f = a.frontier_density
        ax.annotate(f"{a.date}\nμ: ρ {f['median']:.3g} [{f['low']:.3g}, {f['high']:.3g}]"
                    + (" (extrapolated)" if a.extrapolated else ""),
                    (mdates_num(when), f["high"]), xytext=(-4, 6), textcoords="offset points",
                    ha="right", va="bottom", fontsize=7, color="0.15", zorder=6)
    for r in fc.reach:
        m = r.t_months["median"]
        if math.isfinite(m) and m <= grid[-1]:
            ax.axvline(_to_dates(config, [m])[0], color="#8172b3", ls="-.", lw=1, zorder=0,
                       label=f"{r.params:g}B model reaches {_short(r.what, 30)}: median "
                             f"{r.date['median']} (P(reachable) {r.p_reachable:.2f})")
    density_axes(ax)
    ax.legend(loc="best", fontsize=8, frameon=True, framealpha=0.9)   # clear of the points
    ax.set_title("Forecast of capability density: the trend carried past the data")
    if path_stem is not None:
        save(fig, path_stem)
    return fig
