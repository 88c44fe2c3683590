"""The SBC figure: rank histograms of every quantity's truth among its posterior draws, one
panel each, against the band a uniform histogram stays in (``analyses/sbc.py`` ranks them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from bayes_densing.results import rundir


def rank_figure(result):
    """Rank histograms of an ``analyses.sbc.SBCResult``, one panel per quantity, with the 99%
    band of a uniform histogram."""
    from matplotlib.figure import Figure

    labels = list(result.ranks)
    cols = 3
    rows = -(-len(labels) // cols)
    fig = Figure(figsize=(3.6 * cols, 2.6 * rows), layout="constrained")
    n = len(next(iter(result.ranks.values())))
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / result.bins)
    edges = np.linspace(0, result.n_ranks, result.bins + 1)
    for k, label in enumerate(labels):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.axhspan(lo, hi, color="0.88", zorder=0, label="99% band if uniform")
        for y in (lo, hi):
            ax.axhline(y, color="0.45", lw=0.8, ls="--", zorder=3)
        ax.axhline(n / result.bins, color="0.3", lw=0.8, zorder=3)
        ax.hist(result.ranks[label], bins=edges, color="C0", alpha=0.8, edgecolor="white", zorder=2)
        ax.set_title(f"{label}\nχ² p = {result.p_values[label]:.2f}", fontsize=9)
        ax.set_xlim(0, result.n_ranks)
        ax.set_ylim(0, max(hi * 1.25, max(np.bincount(np.asarray(result.ranks[label]) * result.bins
                                                       // result.n_ranks)) + 1))
        ax.set_xlabel(f"rank of the truth (0–{result.n_ranks - 1})", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7, loc="upper right")
    s = result.settings
    off = s.get("offsets")
    fig.suptitle(f"Simulation-based calibration: {n} datasets from the prior "
                 f"({s.get('n_targets')} targets, {len(s.get('benchmarks', []))} benchmarks), "
                 f"{s.get('chains')}×{s.get('draws')} draws each"
                 + ("\nthe cut (curves from the references alone)"
                    if s.get("model", {}).get("curves") == "cut" else "\nthe joint model")
                 + (", with target offsets"
                    if s.get("model", {}).get("target_offsets") == "on" else "")
                 + (f"\ntargets off the reference curves: ln-size offsets per benchmark "
                    f"~ N({off[0]:g}, {off[1]:g}); their truths the reference-relative sizes"
                    if off else ""), fontsize=10)
    return fig


def write_ranks(result, out) -> Path:
    """sbc.png into ``out``, after ``analyses.sbc.write``; recorded as derived in a sweep
    directory."""
    out = Path(out)
    rank_figure(result).savefig(out / "sbc.png", dpi=130)
    if (out / "sweep.json").is_file():
        rundir.record_derived(out, ["sbc.png"])
    return out / "sbc.png"
