"""Figure 2, scaling curves (the paper's Figure 2, with uncertainty): per benchmark, score against
size with the fitted performance map's band, the reference models at their size and the
targets at their median effective size; a row of loss panels when losses were observed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bayes_densing import results
from bayes_densing.figures.common import (EXTRAPOLATED, REFERENCE, TARGET, TREND,
                                          grid_of_panels, median_band, new_figure, save)
from bayes_densing.model import laws
from bayes_densing.model.curves import GLOBAL_LOSS_COEFS, curve_parameters

if TYPE_CHECKING:
    from bayes_densing.results import Run

# which scores the curves were fitted to (model.curves), for the figure's title
CURVES_FROM = {"cut": ", from the reference models' scores alone (cut)",
               "joint": ", fitted to every model's scores (joint)"}


def _curves_on_grid(run: Run, sizes: np.ndarray, tokens: float | None = None,
                    max_draws: int = 400):
    """Score p and loss L of every benchmark's curves at the sizes ``sizes`` (billions) and
    ``tokens`` (trillions; default D0), per posterior draw (thinned to at most ``max_draws``):
    two arrays (draws, sizes, bench)."""
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


def _observed_sizes(run: Run) -> np.ndarray:
    """Each observation's model size on the x axis: a reference model's actual size, a target's
    posterior median effective size."""
    cd = run.idata.constant_data
    size_of_model = cd["params"].values.astype(float).copy()
    eff = run.models.set_index("model").effective_params
    names = cd["model_name"].values
    is_target = cd["role"].values == "target"
    size_of_model[is_target] = eff.reindex(names[is_target]).to_numpy(float)
    return size_of_model[cd["obs_model"].values]


@dataclass
class _Scaling:
    """What every benchmark's panels draw: the observations and the curves on a size grid."""
    benches: list[str]
    role: np.ndarray          # per observation: its model's role
    bench_of: np.ndarray      # per observation: its benchmark's index
    x: np.ndarray             # per observation: its model's size (_observed_sizes)
    score: np.ndarray
    loss: np.ndarray          # NaN where no loss was observed
    chance: np.ndarray        # per benchmark
    sizes: np.ndarray         # the grid the curves are drawn on
    xlim: tuple[float, float]
    p: np.ndarray             # scores on the grid (draws, sizes, bench), at D0
    L: np.ndarray             # losses on the grid, the same way
    d_ref: float | None       # the reference models' data size, when the data term is modelled
    p_ref: np.ndarray | None  # scores on the grid at d_ref
    offset: np.ndarray | None  # the targets' median offset δ per benchmark, when fitted

    @property
    def has_loss(self) -> bool:
        return bool(np.isfinite(self.loss).any())

    def masks(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """The target and the reference observations of benchmark ``j``."""
        here = self.bench_of == j
        return here & (self.role == "target"), here & (self.role == "reference")


def _scaling_data(run: Run) -> _Scaling:
    idata = run.idata
    cd = idata.constant_data
    x = _observed_sizes(run)
    ref = cd["role"].values == "reference"
    ref_sizes = cd["params"].values[ref]
    finite = x[np.isfinite(x) & (x > 0)]
    lo_n = min(ref_sizes.min(), np.quantile(finite, 0.01)) / 1.5
    hi_n = max(ref_sizes.max(), np.quantile(finite, 0.99)) * 1.5
    sizes = np.geomspace(lo_n, hi_n, 80)
    p, L = _curves_on_grid(run, sizes)
    ref_tokens = cd["tokens"].values[ref].astype(float)
    d_ref = (float(np.exp(np.mean(np.log(ref_tokens)))) if "b" in idata.posterior
             and np.isfinite(ref_tokens).all() else None)   # the data term is modelled
    p_ref = _curves_on_grid(run, sizes, d_ref)[0] if d_ref is not None else None
    score = cd["score"].values
    benches = [str(b) for b in cd["benchmark"].values]
    post = idata.posterior
    # a target of size N scores on benchmark j as a reference model of size N·e^δ_j would
    offset = (np.median(post["target_offset"].values.reshape(-1, len(benches)), axis=0)
              if "target_offset" in post else None)
    return _Scaling(
        benches=benches, role=cd["role"].values[cd["obs_model"].values],
        bench_of=cd["obs_benchmark"].values, x=x, score=score,
        loss=cd["loss"].values if "loss" in cd else np.full(score.shape, np.nan),
        chance=cd["chance"].values, sizes=sizes,
        xlim=(min(lo_n, finite.min() / 1.2), max(hi_n, finite.max() * 1.2)),
        p=p, L=L, d_ref=d_ref, p_ref=p_ref, offset=offset)


def _curve_band(ax, sizes: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """A curve's 90% band and median over the size grid; returns the median."""
    lo, med, hi = median_band(draws)
    ax.fill_between(sizes, lo, hi, color=TREND, alpha=0.2, lw=0)
    ax.plot(sizes, med, color=TREND, lw=1.5)
    return med


def _models(ax, x: np.ndarray, y: np.ndarray, target: np.ndarray, reference: np.ndarray) -> None:
    """The targets as faint dots, the reference models as open squares."""
    ax.scatter(x[target], y[target], s=8, color=TARGET, alpha=0.45, lw=0, zorder=2)
    ax.scatter(x[reference], y[reference], s=28, marker="s", facecolor="white",
               edgecolor=REFERENCE, lw=1.1, zorder=3)


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


def _score_panel(ax, s: _Scaling, j: int, fit: dict | None) -> None:
    """Benchmark ``j``'s scores against size with its curve (and the targets' shifted curve)."""
    b = s.benches[j]
    med = _curve_band(ax, s.sizes, s.p[:, :, j])
    if s.offset is not None:
        ax.plot(s.sizes * np.exp(-s.offset[j]), med, color=TARGET, ls="--", lw=1.1)
    if s.p_ref is not None:
        ax.plot(s.sizes, np.median(s.p_ref[:, :, j], axis=0), color="0.3", ls="--", lw=1)
    _models(ax, s.x, s.score, *s.masks(j))
    ax.axhline(s.chance[j], color="0.5", ls=":", lw=1)
    _reference_fit_note(ax, fit)
    ax.set_xscale("log")
    ax.set_xlim(*s.xlim)
    ax.set_title(b if s.offset is None else f"{b} (targets' offset δ = {s.offset[j]:+.2f})",
                 fontsize=10)
    ax.set_xlabel("parameters (billions)", fontsize=8)
    ax.set_ylabel("score", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(color="0.93", lw=0.7)


def _loss_panel(ax, s: _Scaling, j: int) -> None:
    """Benchmark ``j``'s observed losses against size with the loss law."""
    _curve_band(ax, s.sizes, s.L[:, :, j])
    known = np.isfinite(s.loss)
    target, reference = s.masks(j)
    _models(ax, s.x, s.loss, target & known, reference & known)
    ax.set_xscale("log")
    ax.set_title(f"{s.benches[j]}: loss", fontsize=10)
    ax.set_xlabel("parameters (billions)", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)


def _legend(fig: Figure, s: _Scaling, d0: float) -> None:
    handles = [Line2D([], [], color=TREND, lw=1.5, label=f"performance map at D0 = {d0:g}T tokens "
                                                          "(median)"),
               Patch(color=TREND, alpha=0.2, label="90% band"),
               Line2D([], [], marker="s", mfc="white", mec=REFERENCE, lw=0,
                      label="reference models (actual size)"),
               Line2D([], [], marker="o", color=TARGET, alpha=0.45, lw=0, ms=4,
                      label="target models (median effective size)"),
               Line2D([], [], color="0.5", ls=":", label="chance")]
    if s.offset is not None:
        handles.insert(2, Line2D([], [], color=TARGET, ls="--", lw=1.1,
                                 label="the targets' curve: shifted by their offset δ (median)"))
    if s.p_ref is not None:
        handles.insert(2, Line2D([], [], color="0.3", ls="--", lw=1,
                                 label=f"the same at the references' data size ({s.d_ref:.2g}T)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False)


def scaling_figure(run: Run, path_stem: str | Path | None = None) -> Figure:
    """Figure 2 (the paper's Figure 2, with uncertainty): per benchmark, the reference models'
    scores against their size with the posterior median and 90% band of the performance map
    at D0; the targets' scores at their median effective size show how each is placed. When
    losses were given, a second row shows the loss law the same way."""
    s = _scaling_data(run)
    n = len(s.benches)
    ncols = min(3, n)
    rows = math.ceil(n / ncols) * (2 if s.has_loss else 1)
    fig = new_figure(3.6 * ncols, 3.0 * rows + 0.6)
    axes = grid_of_panels(fig, n * (2 if s.has_loss else 1), ncols)
    fits = run.diagnostics.get("reference_fit", {})
    for j, b in enumerate(s.benches):
        _score_panel(axes[j], s, j, fits.get(b))
        if s.has_loss:
            _loss_panel(axes[n + j], s, j)
    _legend(fig, s, run.config.model.d0)
    fig.suptitle("Score against size: each benchmark's fitted curve"
                 + CURVES_FROM.get(run.diagnostics.get("estimand", "joint"), ""), fontsize=11)
    if path_stem is not None:
        save(fig, path_stem)
    return fig
