"""Leave-one-model-out and prior power-scaling for a cut run, reweighted within each curve
draw.

Under the cut (``cut.py``) the posterior is p(θ | y_ref) · p(ψ | θ, y_tgt). Leaving target i
out changes only the second factor, so the draws given each θ are reweighted among
themselves and the curve draws keep their weights::

    p(y_i | y_-i) = E_θ[ 1 / E_ψ|θ[ 1 / p(y_i | ψ, θ) ] ]

(arithmetic over θ, harmonic within). Plain PSIS-LOO over the pooled draws takes the harmonic
mean over θ as well, and is biased. So this module draws several ψ given each of a few curve
draws (``CutSampler.strata``), with PSIS within each. p(y_i | ψ, θ) integrates the target's
own latent ln ρ_i over its trend prior (a grid, :func:`integrated_loglik`): that latent is
what leaving the target out removes, and with it integrated the weights vary smoothly with
the shared parameters (trend, φ_target) and Pareto k stays small. Leaving a *reference* out
changes p(θ | y_ref) only, and a weight that depends on θ alone is plain PSIS over the run's
own pooled draws, which are exact for it.

Power-scaling a prior term of the target module likewise normalises within each curve draw;
a curve-module term over all draws (:func:`prior_sensitivity`).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from bayes_densing.inference import cut
from bayes_densing import results
from bayes_densing.config import Config, ConfigError
from bayes_densing.data import ScoreData
from bayes_densing.model.likelihood import log_binomial, score_logp
from bayes_densing.model.curves import score_probability

# the strata: curve draws per chain, the draws kept given each, the steps dropped after each
# switch of θ, and the transitions between kept draws; 80 kept because a stratum's weights
# are normalised over its own draws, which hides a tail few draws miss (benchmarks/README.md,
# "Influence under the cut")
PER_CHAIN, KEPT, BURN, INNER = 15, 80, 10, 2
# the target's latent ln ρ_i on GRID points c_i + s_i·B·sinh(v), v evenly spaced up to
# REACH pooled sd's s_i from the pooled mean c_i: fine near the centre, wide in the tails,
# where a target scoring near chance has a flat likelihood and only the trend prior decays
GRID, B, REACH = 81, 2.0, 60.0
EDGE = -20.0     # the integrand at the grid's ends, relative to its peak: at most this


class Strata:
    """Draws of the target module given each of a few curve draws of a cut fit: ``idata``
    (chain = stratum, draw = a draw given its θ), with the data, the config and the
    compiled :class:`cut.CutSampler`, its curve fit and warm-up (reused by the refits)."""

    def __init__(self, data: ScoreData, config: Config, *, per_chain: int = PER_CHAIN,
                 kept: int = KEPT, progress=None):
        if config.model.curves != "cut":
            raise ConfigError("strata are draws of a cut fit (model.curves = 'cut')")
        if data.has_loss:
            raise ConfigError("leave-one-out and power-scaling within curve draws do not yet "
                              "handle observed losses; use model.curves = 'joint'")
        say = progress or (lambda text: None)
        start = time.perf_counter()
        s = config.sampler
        self.data, self.config = data, config
        self.sampler = cut.CutSampler(data, config)
        say("cut: the curves and the targets' warm-up again (the run's seed: its own curve "
            "draws)")
        self.curve = self.sampler.curves(s.seed)
        self.warm = self.sampler.warm_up(self.curve, s.seed)
        say(f"cut: {kept} draws of the targets given each of {per_chain} curve draws per chain")
        self.idata = self.sampler.strata(self.curve, self.warm, per_chain, kept, BURN, INNER,
                                         seed=s.seed + 5)
        self.seconds = time.perf_counter() - start

    @property
    def shape(self) -> tuple[int, int]:
        post = self.idata.posterior
        return post.sizes["chain"], post.sizes["draw"]


def integrated_loglik(idata: xr.DataTree, data: ScoreData, config: Config, per: int = 1,
                      grid_at: tuple | None = None) -> np.ndarray:
    """log p(y_i | ψ, θ) of every target i for every draw: its scores' likelihood (the
    beta-binomial, or the robust mixture) times the trend prior of its ln ρ_i, integrated over
    ln ρ_i on a grid (the model's formulas: ``curves.score_probability``, ``likelihood.score_logp``,
    ``results.trend_prior_logpdf``). ``per``: how many consecutive draws share their θ (a
    stratum's draws; 1 for a run's own; target offsets δ vary within a stratum, so with them
    each draw is its own). ``grid_at``: each target's grid centre and scale
    (default: its draws' mean and sd of ln ρ; a fit that leaves a target out has draws of it
    that say nothing). Shape (samples, target)."""
    if "target_offset" in idata.posterior:
        per = 1
    obs = data.obs
    is_target = obs.model_idx.to_numpy() >= data.n_ref
    ti = obs.model_idx.to_numpy()[is_target] - data.n_ref
    bj = obs.bench_idx.to_numpy()[is_target]
    k, n = obs.k.to_numpy()[is_target], obs.n.to_numpy()[is_target]
    binomln = log_binomial(n, k)
    onehot = np.zeros((len(ti), data.n_target))
    onehot[np.arange(len(ti)), ti] = 1.0

    rho = idata.posterior["log_density"].values.reshape(-1, data.n_target)
    centre, scale = grid_at or (rho.mean(axis=0), np.maximum(rho.std(axis=0), 1e-3))
    stretch = B * np.sinh(np.linspace(-1.0, 1.0, GRID) * np.arcsinh(REACH / B))
    grid = centre + scale * stretch[:, None]                 # (grid, target)
    log_n = np.log(data.targets.params.to_numpy(dtype=float))
    t = data.targets.t.to_numpy(dtype=float)

    curves = results.curve_draws(idata)
    phi = results.draws(idata, "phi_target")                 # (samples, benchmark)
    robust = config.model.likelihood == "robust"
    outlier = results.outlier_draws(idata, data)[:, is_target] if robust else None
    n_all = rho.shape[0]
    prior = results.trend_prior_logpdf(idata, config, t, np.broadcast_to(
        grid, (n_all,) + grid.shape))                        # (samples, grid, target)
    out = np.empty((n_all, data.n_target))
    worst_edge = -np.inf
    for first in range(0, n_all, per):                      # θ is the same for these draws
        params = {name: v[first][None] for name, v in curves.items()
                  if name != "log_effective_size"}
        params["log_effective_size"] = grid + log_n
        p, _ = score_probability(params, data, config, xp=np)     # (grid, obs)
        p = p[:, is_target]
        rows = slice(first, first + per)
        outliers = (outlier[rows][:, None, :], config.priors.outlier_phi) if robust else None
        ll = score_logp(k, n, p[None], phi[rows][:, None, bj], binomln, outliers)  # (K, G, obs)
        integrand = ll @ onehot + prior[rows]                # (K, grid, target)
        peak = integrand.max(axis=1)
        edge = np.maximum(integrand[:, 0], integrand[:, -1]) - peak
        worst_edge = max(worst_edge, float(np.max(edge)))
        out[rows] = log_integral(grid, integrand)
    if worst_edge > EDGE:
        warnings.warn(f"the grid of ln ρ cuts off a target's integrand at {worst_edge:.1f} "
                      "below its peak: its leave-one-out density is underestimated")
    return out


def log_integral(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """log ∫ exp(f) dx over a grid ``x`` (grid, ...), with f (..., grid, ...) linear between
    the grid's points: exact for the exponential tails a sparse grid has, and the trapezoid
    rule where f is flat. Integrates over f's axis -2."""
    dx = np.diff(x, axis=0)                                   # (grid − 1, ...)
    top = np.maximum(f[..., :-1, :], f[..., 1:, :])
    d = np.abs(np.diff(f, axis=-2))
    # a segment's integral: dx·(e^f1 − e^f0)/(f1 − f0) = dx·e^top·(1 − e^−|d|)/|d|
    # (→ dx·e^top as d → 0)
    small = d < 1e-8
    with np.errstate(divide="ignore"):
        shape = np.where(small, 0.0, np.log(-np.expm1(-np.where(small, 1.0, d)))
                         - np.log(np.where(small, 1.0, d)))
    return logsumexp(top + np.log(dx) + shape, axis=-2)


def within_loo(ll: np.ndarray) -> dict:
    """PSIS-LOO within each stratum, averaged over strata, from ``ll`` (stratum, draw,
    model): each model's elpd_i, lppd_i, Pareto k, and the normalised log weights (stratum,
    model, draw) that leave it out.

    The raw ratios 1/p are normalised within each stratum, and their tail is smoothed over
    all strata at once (one Pareto fit to every stratum's normalised weights; then normalised
    within each stratum again): a stratum's few draws alone give a Pareto fit too short a
    tail to trust."""
    n_s, n_k, n_m = ll.shape
    within = -ll - logsumexp(-ll, axis=1, keepdims=True)      # log weights, within strata
    da = xr.DataArray(-within.reshape(n_s * n_k, n_m), dims=("sample", "model"))
    # ArviZ's PSIS takes a log-likelihood and weights by its negation (LOO's ratios)
    lw, k = da.azstats.psislw(dim="sample")
    lw = lw.transpose("sample", "model").values.reshape(n_s, n_k, n_m)
    lw = np.moveaxis(lw - logsumexp(lw, axis=1, keepdims=True), 1, 2)   # (stratum, model, draw)
    per_stratum = logsumexp(lw + np.moveaxis(ll, 1, 2), axis=2)         # (stratum, model)
    return {"elpd_i": logsumexp(per_stratum, axis=0) - math.log(n_s),
            "lppd_i": logsumexp(ll.reshape(-1, n_m), axis=0) - math.log(n_s * n_k),
            "pareto_k": np.asarray(k.values, dtype=float), "log_weights": lw}


def target_rows(strata: Strata) -> pd.DataFrame:
    """Per target: elpd_loo_i, p_loo_i, Pareto k (:func:`within_loo`) and the move of
    the doubling time's median when it is left out (``loo_shift``, the strata's own median
    being the base)."""
    n_s, n_k = strata.shape
    ll = integrated_loglik(strata.idata, strata.data, strata.config, per=n_k)
    loo = within_loo(ll.reshape(n_s, n_k, -1))
    t = strata.data.targets.t.to_numpy(dtype=float)
    A = results.slope_per_draw(strata.idata, strata.config, t)     # (stratum·draw,)
    base = results.doubling_median(A, np.full(A.size, 1.0 / A.size))
    w = np.exp(loo["log_weights"]) / n_s                   # (stratum, target, draw)
    shifts = [results.doubling_median(A, w[:, i].reshape(-1)) - base for i in range(ll.shape[1])]
    return pd.DataFrame({"model": strata.data.targets.model.to_numpy(),
                         "elpd_loo_i": loo["elpd_i"], "p_loo_i": loo["lppd_i"] - loo["elpd_i"],
                         "pareto_k": loo["pareto_k"], "loo_shift": shifts})


def pooled_shifts(ll_models: np.ndarray, A: np.ndarray) -> np.ndarray:
    """The move of the doubling time's median when each model is left out, by PSIS over
    pooled draws: ``ll_models`` (samples, model), ``A`` (samples,). Exact under the joint
    model; under the cut, for the references only (their weights depend on θ alone)."""
    da = xr.DataArray(ll_models, dims=("sample", "model"))
    lw, _ = da.azstats.psislw(dim="sample")
    w = np.exp(lw.transpose("model", "sample").values)
    base = results.doubling_median(A, np.full(A.size, 1.0 / A.size))
    return np.array([results.doubling_median(A, wi) - base for wi in w])


def refit_without_target(strata: Strata, name: str) -> dict:
    """The cut fit without one target's scores, θ reused: the run's curve draws and warm-up,
    the target's scores weighted 0 (no compiling: the weights are inputs). Returns the
    doubling summary, the fit's divergences and its DataTree."""
    data, s = strata.data, strata.config.sampler
    i = data.models.model.tolist().index(name)
    obs_w = (data.obs.model_idx.to_numpy() != i).astype(float)
    keep = cut.kept(s)
    idata = strata.sampler.conditional(strata.curve, strata.warm, keep, s.inner_steps,
                                       s.seed, weights=(obs_w, np.ones(len(data.benchmarks))))
    t = data.targets.t.to_numpy(dtype=float)
    return {"doubling": results.doubling_summary(results.slope_draws(idata, strata.config, t)),
            "divergences": int(idata.sample_stats["diverging"].values.sum()), "idata": idata}


def centred_densities(strata: Strata) -> tuple[xr.Dataset, xr.Dataset, list[str]]:
    """The strata's log prior terms and pointwise log-likelihood, (stratum, draw), with every
    term of the target module centred within each stratum: power-scaling then weights it
    within each curve draw to first order (exactly at α = 1, where ``arviz.psense`` takes its
    derivative). Also returns the names of those prior terms."""
    data = strata.data
    log_prior = strata.idata["log_prior"].to_dataset()
    given = [v for v in log_prior.data_vars if v in cut.TARGET_MODULE or v == "trend_prior"]
    log_prior = log_prior.assign({v: log_prior[v] - log_prior[v].mean("draw") for v in given})
    ll = results.score_loglik(strata.idata, data, strata.config)
    is_target = data.obs.model_idx.to_numpy() >= data.n_ref
    ll[..., is_target] -= ll[..., is_target].mean(axis=1, keepdims=True)
    post = strata.idata.posterior
    log_lik = xr.Dataset({"correct": (("chain", "draw", "obs"), ll)},
                         coords={"chain": post.chain, "draw": post.draw})
    return log_prior, log_lik, given
