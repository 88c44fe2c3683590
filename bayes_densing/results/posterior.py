"""Posterior summaries and the run directory.

A run directory holds everything later commands need, so that nothing re-samples:
``posterior.nc`` (ArviZ InferenceData with posterior, posterior_predictive, observed_data,
sample_stats and constant_data), ``models.csv``, ``trend.csv``, ``diagnostics.json`` and
``config.toml``, ``summary.txt`` and ``manifest.json``; how it is written, published and
verified is ``rundir``'s contract.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_densing.model import laws
from bayes_densing.results import rundir
from bayes_densing.config import MARGINAL, Config, upgraded
from bayes_densing.data import ScoreData
from bayes_densing.inference.sample import rhat_text
from bayes_densing.model.likelihood import (draw_counts, log_binomial, obs_concentration,
                                             obs_outlier_rate, score_logp)
from bayes_densing.model.curves import score_probability
# the run directory's contract, re-exported for the commands that write and read runs
from bayes_densing.results.rundir import OutputConflict, OutputIOError, RunDirError, atomic_dir, check_out_dir  # noqa: F401

HDI = 0.9
CLAIMS = (3.3, 3.5)


# --- posterior quantities ----------------------------------------------------------------------

def draws(idata: xr.DataTree, name: str) -> np.ndarray:
    """Posterior draws of ``name`` flattened over chains: shape (samples, ...)."""
    values = idata.posterior[name].values
    return values.reshape((-1,) + values.shape[2:])


def hdi(x: np.ndarray, prob: float = HDI) -> tuple[float, float]:
    """Highest-density interval of 1-D draws, by ArviZ; finite draws only."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (math.nan, math.nan)
    lo, hi = az.hdi(x, prob=prob)
    return float(lo), float(hi)


def target_times(idata: xr.DataTree) -> np.ndarray:
    """Release times (months from the date origin) of the target models, from constant_data."""
    cd = idata.constant_data
    return cd["t_months"].values[cd["role"].values == "target"].astype(float)


def slope_draws(idata: xr.DataTree, config: Config, t_targets: np.ndarray | None = None
                ) -> np.ndarray:
    """Per-draw slope A (per month) of the trend the config asks for.

    For ``envelope`` this applies the paper's rule inside every draw: OLS of ln ρ on t over
    the models on the running-max envelope of that draw (``t_targets``: the targets' release
    times; by default read from the run's constant_data); a draw whose envelope has a single
    model or date has no slope and is left out (:func:`slope_per_draw` keeps it, as NaN).
    """
    A = slope_per_draw(idata, config, t_targets)
    return A[np.isfinite(A)]


def slope_per_draw(idata: xr.DataTree, config: Config, t_targets: np.ndarray | None = None
                   ) -> np.ndarray:
    """:func:`slope_draws` for every draw, in order: NaN where an envelope has no slope."""
    if config.model.trend == "envelope":
        t = target_times(idata) if t_targets is None else np.asarray(t_targets, dtype=float)
        A, _ = laws.envelope_trend(t, draws(idata, "log_density"))
        return np.asarray(A, dtype=float)
    return draws(idata, "A")


def trend_line_draws(idata: xr.DataTree, config: Config, t: np.ndarray) -> np.ndarray:
    """ln ρ of the fitted trend at times ``t`` (months from the date origin), per posterior
    draw: shape (samples, len(t)). ``frontier``: the frontier A·t + B (a model on it has u = 0);
    ``mean``: the mean line; ``envelope``: each draw's OLS over its running-max envelope;
    ``changepoint``: the broken line with its two slopes."""
    t = np.asarray(t, dtype=float)[None, :]
    trend = config.model.trend
    if trend == "envelope":
        A, B = laws.envelope_trend(target_times(idata), draws(idata, "log_density"))
        ok = np.isfinite(A)
        return laws.trend_mean(t, A[ok, None], B[ok, None])
    if trend == "changepoint":
        slopes = draws(idata, "A_before")[:, None], draws(idata, "A_after")[:, None]
        when = change_times(idata, config)[:, None]
        if config.model.changepoint == MARGINAL:    # its level is at the targets' mean date
            return laws.changepoint_level(t, *slopes, draws(idata, "B_centre")[:, None], when,
                                          float(target_times(idata).mean()))
        return laws.changepoint_mean(t, *slopes, draws(idata, "B_change")[:, None], when)
    return laws.trend_mean(t, draws(idata, "A")[:, None], draws(idata, "B")[:, None])


def change_times(idata: xr.DataTree, config: Config) -> np.ndarray:
    """Each draw's change time (months from the date origin) of a ``changepoint`` trend: the
    configured date, or, with the date marginalised (``model.changepoint = "marginal"``), one
    draw of the candidate dates from their conditional posterior given the draw's other
    parameters (``changepoint_weight``; ``trend.resolve_change_date`` drew it), so that each
    draw is one of the joint posterior."""
    if config.model.changepoint != MARGINAL:
        return np.full(draws(idata, "A_after").shape[0],
                       float(config.model.months(config.model.changepoint)))
    months = config.model.months(pd.to_datetime(idata.posterior["changepoint_date"].values))
    return np.asarray(months, dtype=float)[draws(idata, "changepoint_index").astype(int)]


def change_date_posterior(idata: xr.DataTree) -> pd.Series:
    """A marginalised changepoint's posterior over its candidate dates (the draws' mean
    conditional probabilities), indexed by date."""
    w = idata.posterior["changepoint_weight"].mean(("chain", "draw"))
    return pd.Series(w.values, index=[str(d) for d in w["changepoint_date"].values])


def change_label(idata: xr.DataTree, config: Config) -> str:
    """The change date as text: the configured one, or the marginalised one's posterior mode."""
    if config.model.changepoint != MARGINAL:
        return config.model.changepoint
    post = change_date_posterior(idata)
    return f"the change (marginalised; mode {post.idxmax()}, P {post.max():.2f})"


def trend_prior_logpdf(idata: xr.DataTree, config: Config, t: np.ndarray,
                       log_rho: np.ndarray) -> np.ndarray:
    """log p(ln ρ | trend) under each posterior draw's trend: the prior ``build_model`` puts
    on the targets' log densities (the frontier's skew-normal for ``frontier`` and
    ``changepoint``, a normal for ``mean`` and ``envelope``), in numpy. ``t``: the targets'
    times (n,); ``log_rho``: values (samples, ..., n), each row under its draw's trend
    (tests/test_cut_influence.py pins the sum to the model's ``trend_prior``)."""
    from scipy import stats

    t = np.asarray(t, dtype=float)
    trend = config.model.trend
    if trend == "changepoint":
        mu = trend_line_draws(idata, config, t)
    else:           # the mean line, also under "envelope", whose prior is the mean trend's
        mu = laws.trend_mean(t[None, :], draws(idata, "A")[:, None], draws(idata, "B")[:, None])
    log_rho = np.asarray(log_rho, dtype=float)
    lift = (slice(None),) + (None,) * (log_rho.ndim - 2)
    mu = mu[lift]
    if trend in ("frontier", "changepoint"):
        omega, shape = laws.frontier_skewnormal(draws(idata, "sigma_v"), draws(idata, "sigma_u"))
        return stats.skewnorm.logpdf(log_rho, shape[lift][..., None], loc=mu,
                                     scale=omega[lift][..., None])
    return stats.norm.logpdf(log_rho, mu, draws(idata, "sigma")[lift][..., None])


def doubling_months(A: np.ndarray) -> np.ndarray:
    """Doubling time ln 2 / A per draw, in months; ∞ for draws with no growth (A ≤ 0)."""
    A = np.asarray(A, dtype=float)
    return np.where(A > 0, laws.doubling_time(np.where(A > 0, A, 1.0)), np.inf)


def weighted_quantile(x: np.ndarray, weights: np.ndarray, q: float = 0.5) -> float:
    """Quantile ``q`` of finite draws ``x`` under ``weights``, interpolated between the
    draws' mid-cumulative weights (equal weights give ``np.quantile``'s "hazen" estimate, and
    exactly ``np.median`` for q = 0.5)."""
    x, w = np.asarray(x, dtype=float), np.asarray(weights, dtype=float)
    order = np.argsort(x)
    x, w = x[order], w[order] / w.sum()
    mid = np.cumsum(w) - 0.5 * w
    return float(np.interp(q, mid, x))


def doubling_median(A: np.ndarray, weights: np.ndarray) -> float:
    """The doubling time at the weighted median of the slope A (months); draws without a
    slope (NaN: an envelope of one model) are left out."""
    ok = np.isfinite(A) & (weights > 0)
    if not ok.any():
        return math.nan
    med = weighted_quantile(A[ok], weights[ok], 0.5)
    return laws.doubling_time(med) if med > 0 else math.inf


def doubling_summary(A: np.ndarray, claims=CLAIMS, prob: float = HDI) -> dict:
    """Doubling time T = ln 2 / A in months: median, HDI, P(T ≤ m) for each claim m.

    Draws with A ≤ 0 (no growth) count as T = ∞: they lower P(T ≤ m) and are reported as
    ``p_no_growth``; the median is ln 2 / median(A), exact under this monotone map.
    """
    A = np.asarray(A, dtype=float)
    T = doubling_months(A)
    med_A = float(np.median(A))
    lo, hi = hdi(T[np.isfinite(T)], prob)
    return {
        "median_months": laws.doubling_time(med_A) if med_A > 0 else math.inf,
        "hdi_months": [lo, hi], "hdi_prob": prob,
        "p_no_growth": float(np.mean(A <= 0)),
        "p_leq": {f"{m:g}": float(np.mean(T <= m)) for m in claims},
    }


NO_GROWTH_NOTED = 0.05   # from this share of draws with A ≤ 0 on, an HDI of T covers only the rest


def doubling_text(doubling: dict) -> str:
    """The doubling time's median and 90% HDI as one line; where many draws have no growth
    (T = ∞), says so and that the HDI is over the draws with growth, which the median (over
    all draws) may lie outside of."""
    median, (lo, hi) = doubling["median_months"], doubling["hdi_months"]
    p = doubling["p_no_growth"]
    if not math.isfinite(median):
        return (f"none at the median: no growth in {p:.0%} of draws (slope ≤ 0); "
                f"where it grows, 90% HDI {lo:.2f}–{hi:.2f} months")
    days = f"{median * laws.DAYS_PER_MONTH:.0f} days"
    if p >= NO_GROWTH_NOTED:
        return (f"{median:.2f} months ({days}); no growth in {p:.0%} of draws, and over the "
                f"{1 - p:.0%} with growth the 90% HDI is {lo:.2f}–{hi:.2f} months")
    return f"{median:.2f} months (90% HDI {lo:.2f}–{hi:.2f}; {days})"


def trend_table(idata: xr.DataTree, data: ScoreData, config: Config) -> pd.DataFrame:
    """Trend parameters with median and 90% HDI: A per month and day, doubling time, B, σ's."""
    A = slope_draws(idata, config, data.targets.t.to_numpy(dtype=float))
    T = doubling_months(A)
    rows = {"A_per_month": A, "A_per_day": A / laws.DAYS_PER_MONTH,
            "doubling_months": T, "doubling_days": T * laws.DAYS_PER_MONTH,
            "growth_per_year": laws.growth_per_year(A)}
    post = idata.posterior
    if config.model.trend == "envelope":  # the model's own (mean) trend, for comparison
        rows["A_mean_trend_per_month"] = draws(idata, "A")
    for name in ("B", "sigma_v", "sigma_u", "sigma", "A_before", "A_after", "slope_ratio"):
        if name in post:
            rows[name] = draws(idata, name)
    out = []
    for name, x in rows.items():
        finite = x[np.isfinite(x)]
        if name == "growth_per_year":
            # the slope's interval carried over: the growth factor's own HDI, on a scale
            # skewed to the right, reached ×0.0 while A's stayed above 0
            lo, hi = laws.growth_per_year(np.asarray(hdi(A[np.isfinite(A)])))
        else:
            lo, hi = hdi(finite)
        out.append({"parameter": name, "median": float(np.median(x)), "hdi_low": lo,
                    "hdi_high": hi, "mean": float(finite.mean()) if finite.size else math.nan,
                    "sd": float(finite.std()) if finite.size else math.nan})
    return pd.DataFrame(out)


def models_table(idata: xr.DataTree, data: ScoreData, config: Config) -> pd.DataFrame:
    """Per model: size, date, role, N̂ and ρ (median, 90% HDI), P(on the running-max envelope)
    and whether N̂ needs the reference curves beyond the reference models' sizes
    (``extrapolation``, :func:`extrapolation_of`)."""
    eta = draws(idata, "log_effective_size")
    log_rho = draws(idata, "log_density")
    ref_sizes = (float(data.references.params.min()), float(data.references.params.max()))
    t = data.targets.t.to_numpy(dtype=float)
    on_envelope = laws.envelope_mask(t, log_rho).mean(axis=0)
    tg = data.targets
    rows = []
    for i, (_, m) in enumerate(tg.iterrows()):
        size = math.exp(np.median(eta[:, i]))
        size_lo, size_hi = (math.exp(v) for v in hdi(eta[:, i]))
        r_lo, r_hi = hdi(log_rho[:, i])
        rows.append({"model": m.model, "family": m.family, "role": "target",
                     "release_date": m.release_date.strftime("%Y-%m-%d"), "params": m.params,
                     "effective_params": size,
                     "effective_params_low": size_lo, "effective_params_high": size_hi,
                     "density": math.exp(np.median(log_rho[:, i])), "density_low": math.exp(r_lo),
                     "density_high": math.exp(r_hi), "p_on_frontier": float(on_envelope[i]),
                     "extrapolation": extrapolation_of(size, size_lo, size_hi, ref_sizes)})
    for _, m in data.references.iterrows():
        rows.append({"model": m.model, "family": m.family, "role": "reference",
                     "release_date": m.release_date.strftime("%Y-%m-%d"), "params": m.params,
                     "effective_params": m.params, "effective_params_low": m.params,
                     "effective_params_high": m.params, "density": 1.0, "density_low": 1.0,
                     "density_high": 1.0, "p_on_frontier": math.nan, "extrapolation": "no"})
    return pd.DataFrame(rows)


def extrapolation_of(median: float, low: float, high: float, sizes: tuple[float, float]) -> str:
    """Where an effective size N̂ lies against the reference models' sizes ``(smallest,
    largest)``: "below" or "above" when its median is outside them (N̂ then reads the reference
    curves where no reference model is), "interval" when the median is inside and its 90%
    interval reaches past an edge, else "no"."""
    lo, hi = sizes
    if median < lo:
        return "below"
    if median > hi:
        return "above"
    return "interval" if low < lo or high > hi else "no"


def extrapolation_summary(models: pd.DataFrame) -> dict:
    """Counts of :func:`extrapolation_of` over the targets, and the reference sizes (billions);
    empty for a models table written before the column existed."""
    if "extrapolation" not in models:
        return {}
    refs, tg = models[models.role == "reference"], models[models.role == "target"]
    kinds = tg.extrapolation.astype(str)
    return {"reference_sizes_b": [float(refs.params.min()), float(refs.params.max())],
            "targets": int(len(tg)), "below": int((kinds == "below").sum()),
            "above": int((kinds == "above").sum()), "interval": int((kinds == "interval").sum()),
            "outside": tg.model[kinds.isin(["below", "above"])].astype(str).tolist()}


CURVE_PARAMS = ("log_effective_size", "alpha", "z_centre", "z_gain", "ceiling_frac", "b", "beta",
                "a", "E", "target_offset")


def curve_draws(idata: xr.DataTree, thin: int = 1) -> dict[str, np.ndarray]:
    """The posterior draws the curves and the likelihood's mean are built from (every
    ``thin``-th draw), keyed as ``curves.score_probability`` / ``curve_parameters`` expect."""
    return {n: draws(idata, n)[::thin] for n in CURVE_PARAMS if n in idata.posterior}


def likelihood_draws(idata: xr.DataTree, data: ScoreData, config: Config
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per posterior draw, the beta-binomial mean p and concentration φ of every observation:
    two arrays of shape (samples, obs), by the model's own formulas (numpy)."""
    p, _ = score_probability(curve_draws(idata), data, config, xp=np)
    phi = obs_concentration(draws(idata, "phi_reference"), draws(idata, "phi_target"), data, xp=np)
    return p, phi


def outlier_draws(idata: xr.DataTree, data: ScoreData) -> np.ndarray | None:
    """Each observation's outlier rate per draw, (samples, obs), under the robust likelihood:
    the references' or the targets' (a run written before 2026-12-04 has one rate for both,
    ``outlier_rate``); None for another likelihood."""
    post = idata.posterior
    if "outlier_rate_reference" in post:
        return obs_outlier_rate(draws(idata, "outlier_rate_reference"),
                                draws(idata, "outlier_rate_target"), data, xp=np)
    if "outlier_rate" in post:
        pi = draws(idata, "outlier_rate")
        return obs_outlier_rate(pi, pi, data, xp=np)
    return None


def score_loglik(idata: xr.DataTree, data: ScoreData, config: Config,
                 p_phi: tuple | None = None) -> np.ndarray:
    """log p(k_o | θ_s) of every score o for every posterior draw s, by the model's formulas
    (beta-binomial, or its mixture with the wide outlier component): (chain, draw, obs).
    ``p_phi``: :func:`likelihood_draws`' result, where the caller has it already."""
    p, phi = likelihood_draws(idata, data, config) if p_phi is None else p_phi
    k, n = data.obs.k.to_numpy(), data.obs.n.to_numpy()
    binomln = log_binomial(n, k)
    outliers = ((outlier_draws(idata, data), config.priors.outlier_phi)
                if config.model.likelihood == "robust" else None)
    ll = score_logp(k, n, p, phi, binomln, outliers)
    post = idata.posterior
    return ll.reshape(post.sizes["chain"], post.sizes["draw"], ll.shape[-1])


def log_likelihood(idata: xr.DataTree, data: ScoreData, config: Config,
                   p_phi: tuple | None = None) -> xr.Dataset:
    """The ``log_likelihood`` group ArviZ's ``loo``/``waic`` read: ``correct`` per score, with
    each score's model and benchmark as coordinates of ``obs`` (observed losses, in loss
    mode, are not in it: LOO is over scores)."""
    post, o = idata.posterior, data.obs
    return xr.Dataset(
        {"correct": (("chain", "draw", "obs"), score_loglik(idata, data, config, p_phi))},
        coords={"chain": post.chain, "draw": post.draw, "obs": np.arange(len(o)),
                "model": ("obs", data.models.model.astype(str).to_numpy()[o.model_idx.to_numpy()]),
                "benchmark": ("obs", np.asarray(data.benchmarks)[o.bench_idx.to_numpy()])})


def posterior_predictive(idata: xr.DataTree, data: ScoreData, config: Config,
                         seed: int, p_phi: tuple | None = None) -> xr.Dataset:
    """Replicated correct counts from every posterior draw (numpy; same formulas as the model);
    NaN (and the counts floats) where a draw's p or φ is not finite (a failed chain)."""
    post = idata.posterior
    p, phi = likelihood_draws(idata, data, config) if p_phi is None else p_phi
    rng = np.random.default_rng(seed)
    n = data.obs.n.to_numpy()
    pi = outlier_draws(idata, data)
    if pi is not None:  # robust likelihood: draw each score's mixture component
        outlier = rng.random(p.shape) < pi
        phi = np.where(outlier, config.priors.outlier_phi, phi)
    ok = np.isfinite(p) & np.isfinite(phi) & (phi > 0)
    p, phi = np.where(ok, p, 0.5), np.where(ok, phi, 1.0)    # any valid draw: its count is NaN
    k = draw_counts(rng, n, p, phi)
    if not ok.all():    # no count without a p: NaN, which (unlike -1) no mean takes for a count
        k = np.where(ok, k, np.nan)
    shape = (post.sizes["chain"], post.sizes["draw"], len(n))
    return xr.Dataset({"correct": (("chain", "draw", "obs"), k.reshape(shape))},
                      coords={"chain": post.chain, "draw": post.draw, "obs": np.arange(len(n))})


def constant_data(data: ScoreData) -> xr.Dataset:
    """The inputs a later command needs to interpret the posterior without the CSV."""
    m, o = data.models, data.obs
    return xr.Dataset({
        "model_name": ("model", m.model.astype(str).to_numpy()),
        "family": ("model", m.family.astype(str).to_numpy()),
        "role": ("model", m.role.astype(str).to_numpy()),
        "params": ("model", m.params.to_numpy(dtype=float)),
        "tokens": ("model", m.tokens.to_numpy(dtype=float)),
        "release_date": ("model", m.release_date.dt.strftime("%Y-%m-%d").to_numpy().astype(str)),
        "t_months": ("model", m.t.to_numpy(dtype=float)),
        "chance": ("benchmark", data.chance), "n_items": ("benchmark", data.n_items),
        "obs_model": ("obs", o.model_idx.to_numpy()), "obs_benchmark": ("obs", o.bench_idx.to_numpy()),
        "score": ("obs", o.score.to_numpy(dtype=float)),
        "loss": ("obs", o.loss.to_numpy(dtype=float)),   # NaN where no loss was given
    }, coords={"benchmark": data.benchmarks, "obs": np.arange(len(o))})


# --- the reference fit, out of sample ----------------------------------------------------------

def reference_fit(idata: xr.DataTree, seed: int = 0) -> pd.DataFrame:
    """LOO-PIT of every reference model's score (ArviZ's ``loo_pit``, from the run's
    log_likelihood, posterior_predictive and observed_data; ``seed`` for its randomisation of
    discrete counts): where each score falls in its predictive distribution with that score
    left out. Uniform when the reference curves describe the reference models; near 1 when the
    references score above their own curve. One row per reference score; NaN where PSIS
    cannot weigh the draws (a run of a few draws, a failed chain)."""
    import arviz as az

    cd = idata["constant_data"]
    model_of = cd["obs_model"].values.astype(int)
    ref = np.flatnonzero(cd["role"].values[model_of] == "reference")
    if ref.size == 0:
        return pd.DataFrame(columns=["model", "benchmark", "score", "pit"])
    try:
        pit = az.loo_pit(idata.isel(obs=ref), var_names=["correct"], random_state=seed)["correct"]
    except ValueError:      # PSIS needs more draws than a very short run has: no PIT
        pit = np.full(ref.size, np.nan)
    return pd.DataFrame({
        "model": cd["model_name"].values[model_of[ref]].astype(str),
        "benchmark": np.asarray(cd["benchmark"].values).astype(str)[
            cd["obs_benchmark"].values.astype(int)[ref]],
        "score": cd["score"].values[ref].astype(float), "pit": np.asarray(pit, dtype=float)})


def reference_fit_summary(table: pd.DataFrame) -> dict:
    """Per benchmark with finite PITs: the reference scores' mean LOO-PIT and its z against a
    uniform ((mean − ½)/√(1/12n)); "above" or "below" the curve when |z| > 2; how many scores fall
    outside their central 90% predictive interval; the worst-placed score."""
    out = {}
    for bench, g in table[np.isfinite(table.pit)].groupby("benchmark", sort=False):
        n, mean = len(g), float(g.pit.mean())
        z = (mean - 0.5) / math.sqrt(1.0 / (12.0 * n))
        worst = g.loc[(g.pit - 0.5).abs().idxmax()]
        out[str(bench)] = {"n": n, "mean_pit": mean, "z": z,
                           "verdict": "above" if z > 2 else "below" if z < -2 else "ok",
                           "outside_90": int(((g.pit < 0.05) | (g.pit > 0.95)).sum()),
                           "worst": {"model": str(worst.model), "score": float(worst.score),
                                     "pit": float(worst.pit)}}
    return out


def reference_fit_lines(fit: dict) -> list[str]:
    """The summary's lines on the reference fit (:func:`reference_fit_summary`)."""
    if not fit:
        return []
    n = sum(b["n"] for b in fit.values())
    off = [f"{side} their own curve on " + ", ".join(
               f"{name} (mean PIT {b['mean_pit']:.2f})" for name, b in fit.items()
               if b["verdict"] == side) for side in ("above", "below")
           if any(b["verdict"] == side for b in fit.values())]
    outside = sum(b["outside_90"] for b in fit.values())
    name, worst = max(fit.items(), key=lambda kv: abs(kv[1]["worst"]["pit"] - 0.5))
    w = worst["worst"]
    return [f"Reference fit (LOO-PIT of the {n} reference scores: 0.5 on average when the "
            "curves pass through the reference models): "
            + (("the references score " + "; ".join(off)) if off
               else "no benchmark off its curve (|z| ≤ 2)")
            + f"; {outside} of {n} scores outside their 90% predictive interval (≈ {0.1 * n:.0f}"
              f" expected); worst: {w['model']} on {name} ({w['score']:.2f}, PIT {w['pit']:.2f})"]


# --- summary -----------------------------------------------------------------------------------

EXTRAPOLATION_MARK = {"below": "  (N̂ below the reference sizes)",
                      "above": "  (N̂ above the reference sizes)",
                      "interval": "  (N̂'s interval past the reference sizes)"}


def extrapolation_lines(x: dict) -> list[str]:
    """The summary's lines on effective sizes read off the reference curves beyond the
    reference models (:func:`extrapolation_summary`); none when nothing is extrapolated."""
    if not x or not (x["below"] + x["above"] + x["interval"]):
        return []
    lo, hi = x["reference_sizes_b"]
    outside = x["below"] + x["above"]
    return [f"  extrapolated: {outside} of {x['targets']} targets have a median effective size "
            f"outside the reference sizes ({lo:g}B–{hi:g}B; {x['below']} below, {x['above']} "
            f"above) and {x['interval']} more a 90% interval past an edge: those sizes rest on "
            "the reference curves where no reference model is (models.csv, extrapolation)"]


# what a run's effective sizes are relative to, by model.curves (every summary says which ran)
ESTIMAND = {
    "cut": ("cut (model.curves) — the curves from the reference models' scores alone; every "
            "effective size is the size a reference-family model would need"),
    "joint": ("joint (model.curves) — the curves fitted to every model's scores; effective "
              "sizes are relative to that consensus curve, not the reference family's alone"),
}


def summary_text(trend: pd.DataFrame, models: pd.DataFrame, diagnostics: dict,
                 doubling: dict, data_desc: str, notices: list[str], warnings: list[str],
                 classic: dict | None = None, top: int = 5) -> str:
    """The terminal summary of a run."""
    t = trend.set_index("parameter")
    lines = [f"Data: {data_desc}"]
    lines += [f"  note: {n}" for n in notices] + [f"  warning: {w}" for w in warnings]
    lines.append(f"Estimand: {ESTIMAND[diagnostics.get('estimand', 'joint')]}")
    lines.append("")
    lines.append(f"Doubling time of density: {doubling_text(doubling)}")
    lines.append("  " + ", ".join(f"P(T ≤ {m} months) = {p:.2f}" for m, p in doubling["p_leq"].items())
                 + (f", P(no growth) = {doubling['p_no_growth']:.3f}" if doubling["p_no_growth"] else ""))
    a = t.loc["A_per_day"]
    lines.append(f"  A = {a['median']:.4f} per day (90% HDI {a.hdi_low:.4f}–{a.hdi_high:.4f}); "
                 "the paper's point estimate: 0.0073")
    if classic and "error" not in classic and None not in classic.values():
        lines.append(f"  the paper's point method on these data (bayes-densing classic): A = "
                     f"{classic['A_per_day']:.4f} per day, doubling {classic['doubling_months']:.2f} "
                     f"months, R² {classic['r2']:.2f} over {classic['n_envelope']} envelope models")
    elif classic:
        lines.append("  the paper's point method could not run on these data: "
                     f"{classic.get('error', 'no envelope slope')}")
    g = t.loc["growth_per_year"]
    lines.append(f"  density grows ×{g['median']:.1f} per year (90% HDI ×{g.hdi_low:.1f}–×{g.hdi_high:.1f})")
    if "slope_ratio" in t.index:
        b, a = t.loc["A_before"], t.loc["A_after"]
        lines.append(f"  slope per month before the change date {b['median']:.3f} (90% HDI "
                     f"{b.hdi_low:.3f}–{b.hdi_high:.3f}), after {a['median']:.3f} "
                     f"({a.hdi_low:.3f}–{a.hdi_high:.3f})")
        r = t.loc["slope_ratio"]
        if b.hdi_low > 0:   # a ratio means something only when the earlier slope is positive
            lines.append(f"  slope after / before the change date: {r['median']:.2f} "
                         f"(90% HDI {r.hdi_low:.2f}–{r.hdi_high:.2f})")
        else:
            lines.append("  slope after / before the change date: not reported, the slope "
                         "before may be ≤ 0 (see bayes-densing claim RUN_DIR)")
    tg = models[models.role == "target"].sort_values("density", ascending=False)
    lines.append("")
    lines.append(f"Densest models (density = effective / actual size, median and 90% HDI):")
    for _, m in tg.head(top).iterrows():
        lines.append(f"  {m.model[:48]:<48} {m.params:>7.3g}B  ρ = {m.density:6.2f} "
                     f"[{m.density_low:.2f}, {m.density_high:.2f}]  {m.release_date}"
                     + EXTRAPOLATION_MARK.get(str(m.get("extrapolation", "no")), ""))
    lines += extrapolation_lines(extrapolation_summary(models))
    fit = reference_fit_lines(diagnostics.get("reference_fit", {}))
    lines += [""] + fit if fit else []
    d = diagnostics
    lines.append("")
    verdict = "OK" if not d["problems"] else "PROBLEMS: " + "; ".join(d["problems"])
    lines.append(f"Diagnostics: {verdict}")
    lines.append(f"  divergences {d['divergences']}, max R-hat {rhat_text(d)}, "
                 f"min ESS bulk {d['min_ess_bulk']:.0f} / tail {d['min_ess_tail']:.0f}, "
                 f"min E-BFMI {d['min_bfmi']:.2f}; {d['chains']}×{d['draws']} draws, "
                 f"{d.get('sampler', '')} on {d.get('device', '')}, wall {d.get('wall_s', 0):.1f} s")
    lines += [f"  note: {n}" for n in d.get("notes", [])]
    return "\n".join(lines)


# --- the run directory (its contract: rundir.py) -----------------------------------------------

def posterior_bytes(idata: xr.DataTree) -> bytes:
    """``posterior.nc`` in memory (netCDF4/HDF5 groups, as ``az.from_netcdf`` reads it): the file
    then reaches the disk by a plain write, whose failure (disk full) is an ordinary OSError,
    never an error inside HDF5 with the file half-closed."""
    buffer = io.BytesIO()
    idata.to_netcdf(buffer, engine="h5netcdf")
    return buffer.getvalue()


def file_attrs(config: Config) -> dict:
    """The root attributes of ``posterior.nc``: what wrote it, in which format, with which
    settings, so that the file alone says how to read it again."""
    from bayes_densing import __version__

    return {"creator": "bayes-densing", "bayes_densing_version": __version__,
            "format_version": rundir.FORMAT_VERSION, "config": config.to_toml()}


def write_run(directory: Path, *, idata: xr.DataTree, models: pd.DataFrame,
              trend: pd.DataFrame, diagnostics: dict, config: Config, summary: str) -> None:
    """The core files of a run and their manifest (``rundir.RUN_CORE``)."""
    idata.attrs.update(file_attrs(config))
    rundir.write_bytes(directory / "posterior.nc", posterior_bytes(idata))
    texts = {"models.csv": models.to_csv(index=False), "trend.csv": trend.to_csv(index=False),
             "diagnostics.json": json.dumps(diagnostics, indent=2, default=_json),
             "config.toml": config.to_toml(), "summary.txt": summary + "\n"}
    for name, text in texts.items():
        rundir.write_bytes(directory / name, text.encode("utf-8"))
    rundir.write_manifest(directory, "run", rundir.RUN_CORE, diagnostics.get("command", ""))


def json_safe(x):
    """A result for JSON: numpy scalars to Python, NaN/∞ to None, recursively."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def _json(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return str(x)


def read_posterior(source: str | Path | bytes) -> xr.DataTree:
    """``posterior.nc`` (a path, or the file's bytes) read whole into memory, no file left open
    (a run directory may be replaced by ``--force`` while a reader holds it)."""
    where = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with xr.open_datatree(where, engine="h5netcdf") as tree:
        return tree.load()


@dataclass(frozen=True)
class Run:
    """One run directory, verified against its manifest and read once: what ``claim``,
    ``plot``, ``report``, ``influence`` and the analyses take.

    >>> run = Run.load("runs/demo")                     # doctest: +SKIP
    >>> run.idata["posterior"]["A"].median()            # an ArviZ DataTree
    """
    idata: xr.DataTree       # posterior, sample_stats, posterior_predictive, log_likelihood, ...
    models: pd.DataFrame     # models.csv: per model N̂ and ρ with their HDIs
    trend: pd.DataFrame      # trend.csv: A, T, B, σ's with their HDIs
    diagnostics: dict        # diagnostics.json: convergence, provenance, the doubling summary
    config: Config           # config.toml: what ran, dataset defaults written in
    directory: Path | None = None   # None for a fit still in memory

    @classmethod
    def load(cls, directory: str | Path) -> "Run":
        """Read a run directory back, verified (``rundir.read_verified``: refuses a missing,
        damaged or unknown-format directory with a :class:`RunDirError`)."""
        import tomllib

        directory = Path(directory)
        files = rundir.read_verified(directory)   # each file read once, parsed as verified
        text = {name: files[name].decode("utf-8") for name in ("diagnostics.json", "config.toml")}
        raw = upgraded(tomllib.loads(text["config.toml"]))
        return cls(idata=read_posterior(files["posterior.nc"]),
                   models=pd.read_csv(io.BytesIO(files["models.csv"])),
                   trend=pd.read_csv(io.BytesIO(files["trend.csv"])),
                   diagnostics=json.loads(text["diagnostics.json"]),
                   config=Config.from_dict(raw),
                   directory=directory)


def load_run(directory: str | Path) -> Run:
    """:meth:`Run.load`."""
    return Run.load(directory)
