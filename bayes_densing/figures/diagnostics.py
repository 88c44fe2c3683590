"""Figures 5a and 5b, the sampler's and the model's checks: rank plots of the trend parameters
per chain (:func:`trace_figure`) and the posterior predictive check per benchmark
(:func:`ppc_figure`)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import arviz as az
import numpy as np
from matplotlib.figure import Figure
from scipy.stats import rankdata

from bayes_densing.figures.common import BAR, grid_of_panels, new_figure, save

if TYPE_CHECKING:
    from bayes_densing.results import Run

TRACE_VARS = ("A", "B", "A_before", "A_after", "sigma_v", "sigma_u", "sigma",
              "outlier_rate_reference", "outlier_rate_target", "outlier_rate")


def _rank_vlines(ax, x: np.ndarray, colours, bins: int = 20) -> None:
    """A rank plot as ArviZ's ``rank_vlines`` draws it: the draws of all chains ``x`` (chain,
    draw) ranked together, and per chain (one row each) every rank bin's count as a line from
    the count a uniform spread would give; mixed chains give short lines around their row."""
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


def _chain_rows(axes, kept, colours) -> None:
    """Per parameter of ``kept`` (the finite chains), one row: each chain's KDE (left) and the
    rank plot titled with R-hat and bulk/tail ESS (right)."""
    names = list(kept.data_vars)
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


def trace_figure(run: Run, path_stem: str | Path | None = None) -> Figure:
    """Figure 5a: ArviZ rank plots of the trend parameters (one colour per chain; flat, mixed
    bars mean the chains agree), each titled with its R-hat and bulk/tail ESS, beside each
    chain's posterior density."""
    post = run.idata.posterior
    names = [v for v in TRACE_VARS if v in post
             and not (v == "A" and run.config.model.trend == "changepoint")]   # A is A_after there
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
    else:
        fig = new_figure(10.0, 1.9 * len(names) + 0.8)
        _chain_rows(fig.subplots(len(names), 2, squeeze=False),
                    post.to_dataset()[names].isel(chain=np.flatnonzero(finite)),
                    [f"C{c % 10}" for c in np.flatnonzero(finite)])
        left_out = (f" (chain{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} "
                    "left out: non-finite draws)") if failed else ""
        title = (f"Chains of the trend parameters: posterior per chain (left), rank plot "
                 f"(right){left_out} — {verdict}")
        fig.suptitle(textwrap.fill(title, 150), fontsize=10)   # a failed run's problems run long
    if path_stem is not None:
        save(fig, path_stem)
    return fig


def _mean_curve(curves) -> tuple[np.ndarray, np.ndarray]:
    """The mean of KDE curves ``(grid, pdf)`` on one common grid, shown where at least half of
    them reach (a KDE of all replicates pooled would use a narrower bandwidth)."""
    common = np.linspace(min(g[0] for g, _ in curves), max(g[-1] for g, _ in curves), 256)
    on = np.array([np.interp(common, g, p, left=np.nan, right=np.nan) for g, p in curves])
    n = np.isfinite(on).sum(axis=0)
    return common, np.where(n >= len(curves) / 2, np.nansum(on, axis=0) / np.maximum(n, 1), np.nan)


def ppc_figure(run: Run, path_stem: str | Path | None = None, n_replicates: int = 60) -> Figure:
    """Figure 5b: posterior predictive check per benchmark, as ArviZ's ``plot_ppc_dist``
    draws it: the observed scores' distribution (KDE) against ``n_replicates`` replicated
    datasets and their mean, each panel titled with the share of observed scores
    inside their own 90% predictive interval."""
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
    axes = grid_of_panels(fig, len(benches))
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
        ax.plot(*_mean_curve(curves), color="C1", ls="--", lw=1.3, label="Replicated, mean")
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
