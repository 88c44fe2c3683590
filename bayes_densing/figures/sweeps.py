"""The figures of sweeps over many fits: the tornado of a sensitivity sweep
(``analyses.sensitivity``: how far each setting moves the doubling time) and the forest of a
subsets sweep (``analyses.subsets``: the doubling time per benchmark subset)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from bayes_densing.figures.common import BAR, BASE_SHADE, new_figure, save


# --- tornado -------------------------------------------------------------------------------------

def _blank(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x) == ""


def _base_hdi(table: pd.DataFrame) -> tuple[float, float]:
    """The base fit's 90% HDI of the doubling time (NaN when the table has no base row)."""
    base = table[table.variant == "base"]
    return ((float(base.hdi_low.iloc[0]), float(base.hdi_high.iloc[0]))
            if len(base) else (math.nan, math.nan))


def _tornado_rows(table: pd.DataFrame, base_median: float) -> list[dict]:
    """Per varied key: its points (median, HDI, label), failures and the span of medians."""
    base_hdi = _base_hdi(table)
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


@dataclass
class _TornadoScale:
    """Where a tornado's medians lie and how much room each row's whiskers take."""
    finite: list[float]   # the finite medians, the base's included ([1.0] when none is)
    cap: float            # HDIs and infinite medians are drawn up to here
    most: int             # the most values one row has
    row_in: float         # a row's height (inches)
    step: float           # between two whiskers under a bar (in rows)

    @classmethod
    def of(cls, rows: list[dict], base_median: float, hdi: bool) -> _TornadoScale:
        medians = [p["median"] for r in rows for p in r["points"] if np.isfinite(p["median"])]
        finite = [x for x in medians + [base_median] if np.isfinite(x)] or [1.0]
        most = max([len(r["points"]) for r in rows] + [1])
        # each value's HDI whisker gets its own line under the bar, ~9 pt apart: rows grow with them
        row_in = max(0.8, 0.55 + 0.13 * most) if hdi else 0.7
        return cls(finite, 2.5 * max(finite), most, row_in, 0.12 / row_in)


def _base_line(ax, base_median: float, base_hdi: tuple[float, float], cap: float) -> None:
    """The base fit: its HDI shaded, its median a dashed line named above the axes."""
    base_lo, base_hi = base_hdi
    if np.isfinite(base_lo) and np.isfinite(base_hi):
        ax.axvspan(base_lo, min(base_hi, cap), color=BASE_SHADE, alpha=0.25, lw=0, zorder=0)
    if np.isfinite(base_median):
        ax.axvline(base_median, color="k", ls="--", lw=1, zorder=1)
        ax.text(base_median, 1.0, f" base {base_median:.2f} ", fontsize=8, ha="center",
                va="bottom", transform=blended_transform_factory(ax.transData, ax.transAxes))


def _row_label(row: dict) -> str:
    label = row["key"]
    if row["failed"]:
        label += f"\n({', '.join(row['failed'])}: failed)"
    return label


def _bar(ax, y: float, pts: list[dict], cap: float) -> list:
    """One key's bar over its values' medians, the values named at its ends (and above it
    inside); returns the labels."""
    xs = [min(p["median"], cap) for p in pts]
    lo, hi = min(xs), max(xs)
    ax.barh(y, max(hi - lo, 1e-9), left=lo, height=0.36, color=BAR, alpha=0.75, zorder=2)
    ax.plot(xs, [y] * len(xs), "|", color="k", ms=12, mew=1.2, zorder=3)
    names = lambda at: ", ".join(p["label"] + (" (∞)" if not np.isfinite(p["median"]) else "")
                                 for p, x in zip(pts, xs) if x == at)
    texts = []
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
    return texts


def _whiskers(ax, y: float, pts: list[dict], scale: _TornadoScale) -> list:
    """Each value's median and 90% HDI as a thin whisker on its own line under the bar;
    returns their labels."""
    texts = []
    for j, p in enumerate(pts):
        dy = -0.27 - j * scale.step
        if not (np.isfinite(p["low"]) and np.isfinite(p["high"])):
            continue
        a, b = max(p["low"], 0.0), min(p["high"], scale.cap)
        ax.plot([a, b], [y + dy] * 2, color="0.35", lw=1, zorder=2)
        ax.plot([min(p["median"], scale.cap)], [y + dy], "o", color="0.35", ms=2.5, zorder=3)
        if p["high"] > scale.cap:
            ax.plot([scale.cap], [y + dy], ">", color="0.35", ms=4, zorder=3)
        texts.append(ax.annotate(p["label"], (b, y + dy), xytext=(4, 0),
                                 textcoords="offset points", ha="left", va="center",
                                 fontsize=6.5, color="0.35"))
    return texts


def _tornado_xlim(ax, rows: list[dict], scale: _TornadoScale) -> None:
    """The x range over every median and HDI end (capped), with a margin, from 0 at least."""
    lo_all = min([x for r in rows for p in r["points"] for x in (p["low"], p["median"])
                  if np.isfinite(x)] + scale.finite)
    hi_all = max([min(x, scale.cap) for r in rows for p in r["points"]
                  for x in (p["high"], p["median"]) if np.isfinite(x)] + scale.finite)
    pad = 0.05 * (hi_all - lo_all or 1.0)
    ax.set_xlim(max(lo_all - pad, 0.0), hi_all + pad)


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


def _tornado_legend(fig: Figure, hdi: bool) -> None:
    handles = [Patch(color=BAR, alpha=0.75, label="range of the medians over the key's values"),
               Line2D([], [], color="k", ls="--", lw=1, label="base median"),
               Patch(color=BASE_SHADE, alpha=0.25, label="base 90% HDI")]
    if hdi:
        handles.insert(1, Line2D([], [], color="0.35", lw=1, marker="o", ms=2.5,
                                 label="each value's median and 90% HDI"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)


def tornado(table: pd.DataFrame, base_median: float, path_stem: str | Path | None = None,
            *, hdi: bool = True, title: str | None = None):
    """Tornado plot of a sensitivity table (``analyses.sensitivity``): one horizontal bar per
    varied key spanning the doubling-time medians over its values (the base's included), the
    values named at the bar ends, each value's 90% HDI as a thin whisker under its bar (``hdi``),
    a dashed line at the base median over the base's 90% HDI; keys sorted by span, widest on top.

    Returns ``(figure, paths)``: ``paths`` is ``(png, svg)`` when ``path_stem`` is given, else ().
    """
    rows = _tornado_rows(table, base_median)
    scale = _TornadoScale.of(rows, base_median, hdi)
    fig = new_figure(8.0, 1.6 + scale.row_in * max(len(rows), 1))
    ax = fig.add_subplot()
    _base_line(ax, base_median, _base_hdi(table), scale.cap)
    texts = []
    for y, row in enumerate(rows):
        if not row["points"]:
            texts.append(ax.annotate("every value failed", (base_median, y), ha="center",
                                     va="center", fontsize=8, color="0.3",
                                     bbox={"boxstyle": "square,pad=0.2", "fc": "white",
                                           "ec": "none"}))
            continue
        texts += _bar(ax, y, row["points"], scale.cap)
        if hdi:
            texts += _whiskers(ax, y, row["points"], scale)
    ax.set_yticks(range(len(rows)), [_row_label(r) for r in rows], fontsize=9)
    ax.set_ylim(-0.45 - (scale.most - 1) * scale.step if hdi else -0.6, len(rows) - 0.4)
    ax.set_xlabel("doubling time of density (months)")
    ax.set_title(title or "How far each choice moves the doubling time (posterior median)",
                 pad=16, fontsize=11)
    ax.grid(axis="x", color="0.9", lw=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _tornado_xlim(ax, rows, scale)
    _make_room(fig, ax, texts)
    _tornado_legend(fig, hdi)
    paths = save(fig, path_stem) if path_stem is not None else ()
    return fig, paths


# --- forest ------------------------------------------------------------------------------------

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
