"""Figures. Each function builds one matplotlib Figure and, given a path stem, saves it with
:func:`save` (PNG at 150 dpi and SVG). Figures are made with ``matplotlib.figure.Figure``
directly — no pyplot, no global state, no display needed (the Agg canvas renders them) — so
they are safe in scripts, tests and notebooks alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

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
    fig.savefig(png, dpi=DPI, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
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
    ax.set_title(f"Doubling time by benchmark subset ({len(t)} fits)")
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
