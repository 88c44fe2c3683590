"""The trend as a model component: the prior of every target's log density over release date,

    ln ρ_i = ln N̂_i − ln N_i ~ frontier / mean / changepoint prior around A·t_i + B,

a line (or a broken line whose change date is fixed or summed out over month starts), with
the stochastic frontier's composed error v − u marginalised into a skew-normal (one latent per
target) or a normal noise. The latent is sampled sheared along the common shift of all curves
(``model.reparam = "shear"``) or as it is ("centred"), see :meth:`Trend.latent`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pytensor.gradient import disconnected_grad

from bayes_densing.config import MARGINAL, Config
from bayes_densing.data import ScoreData
from bayes_densing.model import ModelError, laws, priors
from bayes_densing.model.inputs import Inputs, log_of, std_normal_logp

CHANGEPOINT_SIDE = 3    # targets each side of a change date, at least


class Trend:
    """The trend's priors and its latent log densities (inside a PyMC model)."""

    default_priors = priors.TREND

    def __init__(self, data: ScoreData, config: Config, inputs: Inputs):
        self.data, self.config, self.M, self.inputs = data, config, config.model, inputs
        self.t = data.targets.t.to_numpy(dtype=float)
        self.t_mean = float(self.t.mean())
        self.marginal = self.M.trend == "changepoint" and self.M.changepoint == MARGINAL
        self.scored = None if inputs.weights is None else scored_targets(inputs.weights[0], data)

    def build(self, model: pm.Model, P, curves: dict):
        """Add the trend; returns the targets' log effective sizes ln N̂_i."""
        mu, A, slope_lp = self.location(model, P)
        if self.M.release_groups == "on":    # one release's models share a shift off the trend
            mu = mu + release_group_effects(self.data, P)
        prior = self.noise(P, mu)
        log_rho, shifted = self.latent(model, prior, curves)
        if shifted is not None:
            self.prior_term(prior, mu, log_rho, shifted, slope_lp)
        log_n = np.log(self.data.targets.params.to_numpy(dtype=float))
        eta = pm.Deterministic("log_effective_size", log_rho + log_n, dims="target")
        if A is not None:
            pm.Deterministic("doubling_months", laws.doubling_time(A))
        return eta

    def location(self, model: pm.Model, P):
        """The trend line at each target's date: (μ_i, the slope A or None when it depends on
        the summed-out date, the per-date slope log-prior or None)."""
        t, t_mean = self.t, self.t_mean
        if self.M.trend != "changepoint":
            A = pm.Normal("A", 0.0, P.slope_sd)
            B_centre = pm.Normal("B_centre", 0.0, P.intercept_sd)
            pm.Deterministic("B", B_centre - A * t_mean)
            return laws.trend_mean(t - t_mean, A, B_centre), A, None
        if self.marginal:           # the date is a discrete latent, summed out (prior_term)
            t_change, dates = changepoint_candidates(self.data, self.config)
            model.add_coord("changepoint_date", dates)
            self.n_dates = len(dates)
            A_before, A_after, slope_lp = marginal_slopes(P, t, t_change, t_mean)
            # the level at the targets' mean date: at the change date it moved the whole line
            # with the date, and the candidates' modes lay apart (model.md §4)
            B_centre = pm.Normal("B_centre", 0.0, P.intercept_sd)
            return laws.changepoint_level(t, A_before[:, None], A_after[:, None], B_centre,
                                          t_change[:, None], t_mean), None, slope_lp
        t_change = float(self.M.months(self.M.changepoint))
        n_before = int((t < t_change).sum())
        if n_before < CHANGEPOINT_SIDE or len(t) - n_before < CHANGEPOINT_SIDE:
            raise ModelError(f"changepoint trend needs ≥ {CHANGEPOINT_SIDE} target models on each "
                             f"side of {self.M.changepoint}; found {n_before} before and "
                             f"{len(t) - n_before} after (widen --since)")
        A_before = pm.Normal("A_before", 0.0, P.slope_sd)
        A_after = pm.Normal("A_after", 0.0, P.slope_sd)
        B_change = pm.Normal("B_change", 0.0, P.intercept_sd)
        A = pm.Deterministic("A", A_after)
        pm.Deterministic("slope_ratio", A_after / A_before)
        pm.Deterministic("B", laws.changepoint_mean(0.0, A_before, A_after, B_change, t_change))
        return laws.changepoint_mean(t, A_before, A_after, B_change, t_change), A, None

    def noise(self, P, mu):
        """The distribution of ln ρ_i around the line: the frontier's skew-normal or a normal
        (mean and envelope; the envelope rule is applied to the draws afterwards)."""
        if self.M.trend in ("frontier", "changepoint"):
            sigma_v = pm.LogNormal("sigma_v", log_of(P.sigma_v), P.sigma_v_sd)
            sigma_u = pm.HalfNormal("sigma_u", P.sigma_u)
            omega, shape = laws.frontier_skewnormal(sigma_v, sigma_u)
            return pm.SkewNormal.dist(mu=mu, sigma=omega, alpha=shape)
        sigma = pm.HalfNormal("sigma", P.sigma_mean)
        return pm.Normal.dist(mu=mu, sigma=sigma)

    def latent(self, model: pm.Model, prior, curves: dict):
        """The targets' log densities ln ρ: ``(ln ρ, the sampled value)``, or ``(ln ρ, None)``
        when ln ρ is itself a random variable with the trend as its prior."""
        reparam, weights = self.M.reparam, self.inputs.weights
        if reparam in ("shear", "affine"):
            return self.sheared(curves)
        if weights is not None:     # the trend prior as a Potential (prior_term)
            shifted = pm.Flat("log_density", dims="target")
            return shifted, shifted
        if self.marginal:
            raise ModelError("a marginalised changepoint (model.changepoint = 'marginal') "
                             "needs model.reparam = 'shear' or 'affine'")
        return model.register_rv(prior, "log_density", dims="target"), None

    def sheared(self, curves: dict):
        """Sample η̃ = ln ρ − ξ, where ξ is the common shift of all targets that the curve
        levels imply: least squares of Δz_j = s_j·ξ over benchmarks, s_j = z_gain_j /
        ln(N_max/N_min) each curve's mean slope in ln N. Moving every curve up and every target
        down together was the posterior's widest direction (benchmarks/README.md); in (η̃, z)
        it is nearly axis-aligned. ln ρ depends on the others additively: the Jacobian is 1."""
        weights = self.inputs.weights
        log_n_ref = np.log(self.data.references.params.to_numpy(dtype=float))
        w = curves["z_gain"] / float(log_n_ref.max() - log_n_ref.min())
        if weights is not None:
            w = w * weights[1]
        xi = -pt.sum(w * curves["z_centre"]) / pt.sum(w * w)
        shifted = pm.Flat("log_density_shifted", dims="target")
        if self.M.reparam != "affine":
            return pm.Deterministic("log_density", shifted + xi, dims="target"), shifted
        # also stretch about N_c with the curves' typical gain k: steeper curves pull every
        # target's ln N̂ towards N_c; ln ρ = c_i + ξ + η̃/k, log-Jacobian −n·ln k
        z_gain = curves["z_gain"]
        if weights is None:
            k = pt.sqrt(pt.mean(z_gain ** 2))
        else:                       # over the weighted benchmarks only
            k = pt.sqrt(pt.sum(weights[1] * z_gain ** 2) / pt.sum(weights[1]))
        log_n_target = np.log(self.data.targets.params.to_numpy(dtype=float))
        centre = float(np.mean(log_n_ref)) - log_n_target
        log_rho = pm.Deterministic("log_density", centre + xi + shifted / k, dims="target")
        scored = len(self.t) if weights is None else pt.sum(self.scored)
        pm.Potential("affine_jacobian", -scored * pt.log(k))
        return log_rho, shifted

    def prior_term(self, prior, mu, log_rho, shifted, slope_lp) -> None:
        """The trend prior of a sampled latent as a Potential; a marginalised change date is
        summed out here: p(ln ρ, slopes | B) = Σ_k π_k p(slopes_k) Π_i p(ln ρ_i | date k), π
        uniform, and each draw's conditional posterior of the date is the softmax of the terms."""
        if self.inputs.weights is None:
            trend_lp = pm.logp(prior, log_rho)
        else:
            # an unscored target: N(0, 1) on its sampled value. Its trend prior, multiplied by
            # 0, is evaluated a little below the trend's location, where it and its gradient
            # are finite (0 · ∞ is NaN; at the location the skew-normal's gradient is NaN)
            safe = disconnected_grad(mu) - 0.1
            at = pt.switch(pt.gt(self.scored, 0.0), log_rho, safe)
            trend_lp = (self.scored * pm.logp(prior, at)
                        + (1.0 - self.scored) * std_normal_logp(shifted))
        if not self.marginal:
            pm.Potential("trend_prior", trend_lp.sum())
            return
        per_date = trend_lp.sum(axis=-1) + slope_lp
        pm.Potential("trend_prior", pt.logsumexp(per_date) - math.log(self.n_dates))
        pm.Deterministic("changepoint_weight", pt.special.softmax(per_date),
                         dims="changepoint_date")


def scored_targets(obs_w, data: ScoreData):
    """1 for each target with at least one weighted score, else 0 (symbolic, from the
    observations' weights)."""
    obs = data.obs
    is_target = np.flatnonzero(obs.model_idx.to_numpy() >= data.n_ref)
    target_idx = obs.model_idx.to_numpy()[is_target] - data.n_ref
    count = pt.inc_subtensor(pt.zeros(data.n_target)[target_idx], obs_w[is_target])
    return pt.switch(pt.gt(count, 0.0), 1.0, 0.0)


def slope_scales(t: np.ndarray, t_change: np.ndarray, t_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate date, how loosely the targets pin each slope, relative to the best-pinned
    date: (Σ_i d_i²)^(-1/2) rescaled to 1 at its minimum, d_i = ∂μ(t_i)/∂slope of the broken
    line through its level at ``t_mean`` (the change's lever arm on target i)."""
    def spread(side):
        arm = side(t[None, :] - t_change[:, None], 0.0) - side(t_mean - t_change[:, None], 0.0)
        width = 1.0 / np.sqrt(np.maximum((arm ** 2).sum(axis=1), 1e-12))
        return width / width.min()
    return spread(np.minimum), spread(np.maximum)


def marginal_slopes(P, t: np.ndarray, t_change: np.ndarray, t_mean: float):
    """The two slopes of a marginalised changepoint, one pair per candidate date, as a fixed
    per-date rescaling of one sampled pair: slopes_k = c_k · x (:func:`slope_scales`), with
    each date's slope prior and its Jacobian ln c_k in that date's term of the sum.

    The sum's value for each date, and so the dates' posterior and each date's slopes, are
    those of the model with the slopes themselves sampled (∫ p(c_k x) c_k dx = ∫ p(A) dA);
    but in x every date's slopes have about the same posterior width. Sampled as A directly,
    a date near an end of the data, whose slope on the short side is loose, made a wide
    component beside narrow ones, a funnel the sampler crossed with divergent transitions
    (benchmarks/README.md, "The marginalised change date")."""
    c_before, c_after = slope_scales(t, t_change, t_mean)
    x = pm.Flat("slope_scaled", shape=2)        # (before, after), in the best-pinned date's units
    A_before = pm.Deterministic("A_before_by_date", c_before * x[0], dims="changepoint_date")
    A_after = pm.Deterministic("A_after_by_date", c_after * x[1], dims="changepoint_date")
    prior = pm.Normal.dist(0.0, P.slope_sd)
    slope_lp = (pm.logp(prior, A_before) + pm.logp(prior, A_after)
                + np.log(c_before) + np.log(c_after))
    return A_before, A_after, slope_lp


def resolve_change_date(posterior: xr.Dataset, seed: int = 0xC4A) -> xr.Dataset:
    """A marginalised changepoint's posterior with one date per draw, drawn from its
    conditional weights (``changepoint_weight``; the same dates every time, by ``seed``), and
    that date's slopes as ``A_before``, ``A_after``, ``A`` (the slope after), ``slope_ratio``
    and ``doubling_months``, the names every other changepoint run has. Other posteriors are
    returned as they are."""
    if "A_before_by_date" not in posterior:
        return posterior
    w = posterior["changepoint_weight"].values
    u = np.random.default_rng(seed).uniform(size=w.shape[:-1] + (1,))
    pick = np.minimum((w.cumsum(axis=-1) < u).sum(axis=-1), w.shape[-1] - 1)
    chosen = xr.DataArray(pick, dims=("chain", "draw"))
    before = posterior["A_before_by_date"].isel(changepoint_date=chosen).drop_vars("changepoint_date")
    after = posterior["A_after_by_date"].isel(changepoint_date=chosen).drop_vars("changepoint_date")
    return posterior.assign(changepoint_index=chosen, A_before=before, A_after=after, A=after,
                            slope_ratio=after / before,
                            doubling_months=laws.doubling_time(after))


def changepoint_candidates(data: ScoreData, config: Config) -> tuple[np.ndarray, list[str]]:
    """The change dates a marginalised changepoint sums over, with equal prior weight: the
    first day of every month with at least :data:`CHANGEPOINT_SIDE` targets released before it
    and as many from it on. Returns their times (months from the date origin) and dates."""
    released = data.targets.release_date.sort_values()
    first = (released.iloc[CHANGEPOINT_SIDE - 1].to_period("M") + 1).to_timestamp()
    last = released.iloc[-CHANGEPOINT_SIDE].to_period("M").to_timestamp()
    dates = pd.date_range(first, last, freq="MS")
    if len(dates) == 0:
        raise ModelError(f"a marginalised changepoint needs a month with ≥ {CHANGEPOINT_SIDE} "
                         "target models released on each side of its first day; these targets "
                         "have none (widen --since)")
    return (np.asarray(config.model.months(dates), dtype=float),
            [d.strftime("%Y-%m-%d") for d in dates])


def release_groups(data: ScoreData) -> tuple[np.ndarray, list[str]]:
    """The targets' release groups: the targets of one family released on one day (six
    sizes of one release share its recipe). Returns each target's group (index) and the
    groups' labels, "FAMILY YYYY-MM-DD", in order of their first target; a target without a
    family is a group of its own (its label is its model name and date)."""
    targets = data.targets
    family = targets.family.where(targets.family.notna() & (targets.family.astype(str) != ""),
                                  targets.model) if "family" in targets else targets.model
    days = pd.to_datetime(targets.release_date).dt.strftime("%Y-%m-%d")
    keys = [f"{f} {d}" for f, d in zip(family.astype(str), days)]
    labels = list(dict.fromkeys(keys))
    at = {label: g for g, label in enumerate(labels)}
    return np.array([at[k] for k in keys], dtype=int), labels


def release_group_effects(data: ScoreData, P):
    """Each target's release-group shift of its trend location, u_g(i) = σ_group·z_g with z_g ~
    N(0, 1) (non-centred) and σ_group ~ HalfNormal(``priors.group_sd``): the models of one
    release move off the trend together, so they count as one draw of the frontier's
    between-release spread, not as independent ones. ``release_group_effect`` records u_g."""
    index, _ = release_groups(data)
    raw = pm.Normal("release_group_raw", 0.0, 1.0, dims="release_group")
    sigma = pm.HalfNormal("sigma_group", P.group_sd)
    effect = pm.Deterministic("release_group_effect", sigma * raw, dims="release_group")
    return effect[index]
