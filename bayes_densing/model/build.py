"""The joint hierarchical densing model (see docs/model.md for the equations).

    loss law      L_ij = E_j + a_j·N_i^(-α_j) + b·D_i^(-β)       (reference: actual N, D;
                                                                   target: N = N̂_i, D = D0)
    perf. map     p_ij = d_j + c_j·σ(γ_j·(l_j − L_ij))
    likelihood    k_ij ~ BetaBinomial(n_j, p_ij·φ_j, (1 − p_ij)·φ_j)
    trend         ln ρ_i = ln N̂_i − ln N_i ~ frontier / mean / changepoint prior over t_i

Geometry choices (each removes a source of divergences measured on the real data):

* (l_j, γ_j) are sampled as the score's logit z at the references' geometric-mean size and its
  gain from the smallest to the largest reference size at D0 (``laws.sigmoid_through``): z is
  linear in them, level and gain are nearly uncorrelated (a centred regressor), and a
  benchmark that barely moves with size stays well-posed.
* In score-only mode the loss scale is fixed (a_j = 1, E_j = 0): it is not identified, and no
  reported quantity depends on it.
* The stochastic frontier's composed error v − u is marginalised into a skew-normal, so each
  target has one latent (its log density). By default it is sampled sheared along the common
  shift of all curves (``model.reparam = "shear"``, see build_model); "centred" is the plain
  alternative.
* Per-benchmark exponents α_j are pooled non-centred around a shared α.
"""

from __future__ import annotations

import math
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pytensor.gradient import disconnected_grad
from scipy.special import gammaln

from bayes_densing.model import laws
from bayes_densing.config import MARGINAL, Config
from bayes_densing.data import ScoreData

P_EPS = 1e-9


class ModelError(ValueError):
    """The model cannot be built for this data and configuration; the message says why."""


OUTLIER_PHI = 2.0   # robust likelihood: concentration of the outlier component


def data_term_on(data: ScoreData, config: Config) -> bool:
    """Whether the b·D^-β term is modelled: needs known tokens for every reference model."""
    mode = config.model.data_term
    tokens_known = bool(data.references.tokens.notna().all())
    if mode == "on" and not tokens_known:
        missing = data.references.model[data.references.tokens.isna()]
        raise ModelError(f"model.data_term = 'on' needs tokens for every reference model; "
                         f"missing for {', '.join(missing)}")
    return mode == "on" or (mode == "auto" and tokens_known)


def curve_parameters(params, ref_params, chance, d0: float, xp=pt):
    """Every benchmark's curves from the model's parameters: the loss-law coefficients and
    the performance map's (l_j, γ_j, c_j). ``ref_params``: the reference models' sizes
    (billions); ``chance``: each benchmark's floor; ``d0``: the target data size (trillions).

    ``params`` maps names to tensors (inside the PyMC model) or to numpy arrays with a leading
    draw axis (posterior, figures); the same code builds both, so the curves are written once.
    Returns ``(loss_coefs, l, gamma, c)``: ``loss_coefs`` holds a, α, E (shape (..., benchmark))
    and b, β (global: scalars in the model, (draws, 1) in numpy, so both broadcast alike).
    """
    log_n_ref = np.log(np.asarray(ref_params, dtype=float))
    lift = (lambda v: v[..., None] if xp is np and np.ndim(v) >= 1 else v)
    loss_coefs = {"a": params.get("a", 1.0), "alpha": params["alpha"], "E": params.get("E", 0.0),
                  "b": lift(params.get("b", 0.0)), "beta": lift(params.get("beta", 1.0))}
    # anchors, all at D0: the smallest and the largest reference model, and the references'
    # geometric-mean size N_c, in one broadcast evaluation of shape (..., 3, benchmark). z_centre
    # is the score's logit at N_c: a fixed size, so the level does not slide along the curve
    # when α changes (anchoring at the references' mean *loss* did, and tied z_centre to α:
    # MMLU's z_centre ESS 154 → 1021 on the paper preset, benchmarks/README.md)
    n_ref = np.exp(log_n_ref)
    n_anchor = np.array([n_ref.min(), n_ref.max(), math.exp(float(np.mean(log_n_ref)))])[:, None]
    d_anchor = d0 * np.ones((3, 1))       # d0 a number, or an input (setting_inputs)
    at_anchor = {k: (v[..., None, :] if np.ndim(v) >= 1 or getattr(v, "ndim", 0) >= 1 else v)
                 for k, v in loss_coefs.items()}
    L_anchor = laws.loss_law(n_anchor, d_anchor, **at_anchor)
    L_low, L_high = L_anchor[..., 0, :], L_anchor[..., 1, :]
    L_centre = L_anchor[..., 2, :]
    l, gamma = laws.sigmoid_through(params["z_centre"], L_centre, params["z_gain"], L_low, L_high)
    c = (1.0 - np.asarray(chance, dtype=float)) * params.get("ceiling_frac", 1.0)
    return loss_coefs, l, gamma, c


GLOBAL_LOSS_COEFS = {"b", "beta"}


def score_probability(params, data: ScoreData, config: Config, xp=pt):
    """Expected score p_ij of every observation, from the model's parameters (``params`` as in
    :func:`curve_parameters`); also returns the latent loss L_ij."""
    obs = data.obs
    mi, bj = obs.model_idx.to_numpy(), obs.bench_idx.to_numpy()
    refs = data.references
    log_n_ref = np.log(refs.params.to_numpy(dtype=float))
    eta = params["log_effective_size"]
    lead = eta.shape[:-1] if xp is np else ()
    x_all = xp.concatenate([np.broadcast_to(log_n_ref, tuple(lead) + log_n_ref.shape), eta], axis=-1)
    d0 = params.get("d0", config.model.d0)    # a number, or an input (setting_inputs)
    tokens = refs.tokens.to_numpy(dtype=float)
    known = np.isfinite(tokens)
    xd = xp if "d0" in params else np         # a number stays a constant array
    d_all = xd.concatenate([xd.where(known, np.where(known, tokens, 1.0), d0),
                            d0 * np.ones(data.n_target)])
    loss_coefs, l, gamma, c = curve_parameters(params, np.exp(log_n_ref), data.chance, d0, xp)

    def per_obs(v):
        return v[..., bj] if getattr(v, "ndim", 0) >= 1 else v

    at_obs = {k: (v if k in GLOBAL_LOSS_COEFS else per_obs(v)) for k, v in loss_coefs.items()}
    x = x_all[..., mi]
    if "target_offset" in params:       # a target scores on benchmark j as one of size η + δ_j
        x = x + (mi >= data.n_ref) * per_obs(params["target_offset"])
    L = laws.loss_law(xp.exp(x), d_all[mi], **at_obs)
    p = laws.performance(L, per_obs(c), per_obs(gamma), per_obs(l), data.chance[bj])
    return xp.clip(p, P_EPS, 1.0 - P_EPS), L


def concentration_index(data: ScoreData) -> np.ndarray:
    """Which φ each observation has, as an index into [φ_reference, φ_target] (2 × benchmarks)."""
    nb = len(data.benchmarks)
    return data.obs.bench_idx.to_numpy() + nb * (data.obs.model_idx.to_numpy() >= data.n_ref)


def obs_concentration(phi_reference, phi_target, data: ScoreData, xp=pt):
    """Beta-binomial concentration φ of every observation: the reference or the target φ_j."""
    return xp.concatenate([phi_reference, phi_target], axis=-1)[..., concentration_index(data)]


def concentration_term(phi_reference, phi_target, data: ScoreData, n: np.ndarray, xp=pt):
    """ln Γ(φ) − ln Γ(n + φ) of every observation (the beta-binomial's two log-gammas that
    depend on its φ and items n only), evaluated once per distinct (φ, n) — one per benchmark
    and family when every score of a benchmark has its n items — and gathered: a third of the
    log-gammas of every score's log density (benchmarks/README.md)."""
    pairs, at = np.unique(np.stack([concentration_index(data), np.asarray(n, dtype=float)]),
                          axis=1, return_inverse=True)
    phi = xp.concatenate([phi_reference, phi_target], axis=-1)[..., pairs[0].astype(int)]
    return gammaln_difference(phi, pairs[1] + phi)[..., np.ravel(at)]


def outlier_rates(P):
    """The robust likelihood's outlier rates, the reference family's and the targets' (so each
    module of the cut has its own, cut.py), each π ~ Beta(2, 2(1 − π̄)/π̄), π̄ =
    ``priors.outlier_rate``."""
    return outlier_rate(P, "outlier_rate_reference"), outlier_rate(P, "outlier_rate_target")


def outlier_rate(P, name: str):
    """One outlier rate π ~ Beta(2, 2(1 − π̄)/π̄) (:func:`outlier_rates`)."""
    a = 2.0
    return pm.Beta(name, a, a * (1.0 - P.outlier_rate) / P.outlier_rate)


def obs_outlier_rate(pi_reference, pi_target, data: ScoreData, xp=pt):
    """Each observation's outlier rate: the reference or the target π (numpy: draws first)."""
    target = (data.obs.model_idx.to_numpy() >= data.n_ref).astype(int)
    return xp.stack([pi_reference, pi_target], axis=-1)[..., target]


def robust_logp(k, n, p, phi, binomln, pi, phi_term=None):
    """The robust likelihood: (1 − π)·BetaBinomial(k | n, p, φ) + π·BetaBinomial(k | n, p,
    OUTLIER_PHI), a wide component that a contaminated score can fall in, as a log density
    (PyTensor in the model, numpy for the draws)."""
    xp = laws._namespace(p, pi)
    good = xp.log(1.0 - pi) + betabinomial_logp(k, n, p, phi, binomln, phi_term)
    wide = xp.log(pi) + betabinomial_logp(k, n, p, OUTLIER_PHI, binomln)
    top = xp.maximum(good, wide)
    return top + xp.log(xp.exp(good - top) + xp.exp(wide - top))


def log_binomial(n, k):
    """ln C(n, k), the beta-binomial's constant (numpy)."""
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def betabinomial_logp(k, n, p, phi, binomln, phi_term=None):
    """log BetaBinomial(k | n, pφ, (1 − p)φ) with the binomial coefficient as a data constant.

    PyMC's BetaBinomial also evaluates the three log-gammas of the binomial coefficient, which
    are constant here; this keeps the six that depend on parameters. ``phi_term``: ln Γ(φ) −
    ln Γ(n + φ) if already known (:func:`concentration_term`). Same density (tests/test_laws.py
    checks it against scipy).
    """
    a, b = p * phi, (1.0 - p) * phi
    if phi_term is None:
        phi_term = gammaln_difference(phi, n + phi)
    return binomln + gammaln_difference(k + a, a) + gammaln_difference(n - k + b, b) + phi_term


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gammaln_difference(x, y):
    """ln Γ(x) − ln Γ(y) for x, y > 0 from elementary operations, which XLA fuses and
    vectorises (ln Γ(x) alone: ``gammaln_difference(x, 1.0)``).

    Each argument is shifted up by six (Γ(x) = Γ(x + 6) / (x(x+1)…(x+5))) for the Stirling
    series (:func:`_stirling`), and the two shifts share one logarithm, of the ratio of their
    products: three logarithms instead of four. The beta-binomial's log-gammas come in such
    pairs, and their logarithms are most of a score's transcendental functions
    (benchmarks/README.md). Absolute error below 1e-9 for 1e-6 ≤ x, y ≤ 1e5
    (tests/test_laws.py); z⁹ ≤ 1e46 there, far from overflow."""
    log = laws._namespace(x).log         # pytensor in the model, jax.numpy in benchmarks/floor.py
    return _stirling(x + 6.0) - _stirling(y + 6.0) + log(_rising6(y) / _rising6(x))


def _rising6(x):
    """x (x + 1) … (x + 5): Γ(x + 6) / Γ(x)."""
    return x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0)


def _stirling(z):
    """ln Γ(z) for z ≥ 6 by the Stirling series to 1/z⁹, written as one polynomial in z² over
    z⁹ so that there is a single division: PyTensor's canonicaliser turns the nested form
    zi·(1/12 − zi²·(…)) into one division per level, and the gradient of the beta-binomial's
    six log-gammas then cost 4× the hand-written JAX (benchmarks/README.md, "Where the
    gradient's time goes")."""
    log = laws._namespace(z).log
    w = z * z
    numerator = (((w / 12.0 - 1.0 / 360) * w + 1.0 / 1260) * w - 1.0 / 1680) * w + 1.0 / 1188
    w2 = w * w
    return (z - 0.5) * log(z) - z + _HALF_LOG_2PI + numerator / (z * w2 * w2)


def build_model(data: ScoreData, config: Config, weights: tuple | None = None,
                counts: tuple | None = None, settings: tuple | None = None) -> pm.Model:
    """The PyMC model for ``data`` under ``config`` (trend form, likelihood, priors).

    ``weights = (obs_weight, bench_weight)``, two symbolic vectors (``pt.vector``), turns the
    model into one family of fits (``sweep.py``): each observation's log-likelihood is
    multiplied by its 0/1 weight and the shear uses only the weighted benchmarks, so a
    benchmark subset is a weight vector and every subset shares one compiled log density.
    The parameters that a subset leaves without data (an unweighted benchmark's curve,
    exponent and concentrations; a target with no weighted score) are then independent of
    everything else, so their prior can be swapped for any other proper density without
    changing the rest of the posterior: they get a standard normal on their unconstrained
    value (``unused_parameters``). Sampled from their own priors they made each subset's fit
    about a third slower on the bundled data (benchmarks/README.md), and their draws mean
    nothing either way.

    ``counts = (k, binomln)``, two more symbolic vectors (with ``weights`` only), makes the
    correct counts an input too, with their log binomial coefficients: then datasets of the
    same design share one compiled log density (simulation-based calibration, ``sbc.py``).

    ``settings = (priors, d0)``, the symbolic ones of :func:`setting_inputs`, makes the prior
    settings and D0 inputs as well, instead of ``config.priors`` and ``config.model.d0``
    (fits under other priors or another D0 share one program).
    """
    P, M = (config.priors if settings is None else settings[0]), config.model
    refs, targets = data.references, data.targets
    obs = data.obs
    bj = obs.bench_idx.to_numpy()
    t = targets.t.to_numpy(dtype=float)
    t_mean = float(t.mean())
    log_n_target = np.log(targets.params.to_numpy(dtype=float))
    loss_mode = data.has_loss
    coords = {"benchmark": data.benchmarks, "target": targets.model.tolist(),
              "reference": refs.model.tolist(), "obs": np.arange(len(obs))}
    if M.release_groups == "on":
        coords["release_group"] = release_groups(data)[1]

    if weights is not None:
        target_w = scored_targets(weights[0], data)

    with pm.Model(coords=coords) as model:
        params: dict = {}
        # --- performance map -------------------------------------------------------------
        # the score's logit between floor and ceiling at the references' geometric-mean size, and
        # its rise from the smallest to the largest (laws.sigmoid_through gives l_j, γ_j)
        params["z_centre"] = pm.Normal("z_centre", P.z_centre, P.z_centre_sd, dims="benchmark")
        params["z_gain"] = pm.HalfNormal("z_gain", P.z_gain, dims="benchmark")
        if M.ceiling == "free":
            params["ceiling_frac"] = pm.Beta("ceiling_frac", P.ceiling_a, P.ceiling_b,
                                             dims="benchmark")

        # --- trend: the prior of every target's log density -------------------------------
        marginal = M.trend == "changepoint" and M.changepoint == MARGINAL
        if M.trend == "changepoint":
            if marginal:        # the date is a discrete latent, summed out (trend_prior below)
                t_change, dates = changepoint_candidates(data, config)
                model.add_coord("changepoint_date", dates)
                t_change = t_change[:, None]
            else:
                t_change = float(M.months(M.changepoint))
                n_before = int((t < t_change).sum())
                if n_before < CHANGEPOINT_SIDE or len(t) - n_before < CHANGEPOINT_SIDE:
                    raise ModelError(f"changepoint trend needs ≥ {CHANGEPOINT_SIDE} target models "
                                     f"on each side of {M.changepoint}; found {n_before} before and "
                                     f"{len(t) - n_before} after (widen --since)")
            if marginal:
                A_before, A_after, slope_lp = marginal_slopes(P, t, t_change[:, 0], t_mean)
                # the level at the targets' mean date: at the change date (B_change) it moved
                # the whole line with the date, and the candidates' modes lay apart (model.md §4)
                B_centre = pm.Normal("B_centre", 0.0, P.intercept_sd)
                mu = laws.changepoint_level(t, A_before[:, None], A_after[:, None], B_centre,
                                            t_change, t_mean)
                A = None        # A_before, A_after, A: of each draw's date (resolve_change_date)
            else:
                A_before = pm.Normal("A_before", 0.0, P.slope_sd)
                A_after = pm.Normal("A_after", 0.0, P.slope_sd)
                B_change = pm.Normal("B_change", 0.0, P.intercept_sd)
                mu = laws.changepoint_mean(t, A_before, A_after, B_change, t_change)
                A = pm.Deterministic("A", A_after)
                pm.Deterministic("slope_ratio", A_after / A_before)
                pm.Deterministic("B", laws.changepoint_mean(0.0, A_before, A_after, B_change,
                                                            t_change))
        else:
            A = pm.Normal("A", 0.0, P.slope_sd)
            B_centre = pm.Normal("B_centre", 0.0, P.intercept_sd)
            mu = laws.trend_mean(t - t_mean, A, B_centre)
            pm.Deterministic("B", B_centre - A * t_mean)
        if M.release_groups == "on":    # one release's models share a shift off the trend
            mu = mu + release_group_effects(data, P)
        if M.trend in ("frontier", "changepoint"):
            sigma_v = pm.LogNormal("sigma_v", _log(P.sigma_v), 0.5)
            sigma_u = pm.HalfNormal("sigma_u", P.sigma_u)
            omega, shape = laws.frontier_skewnormal(sigma_v, sigma_u)
            prior = pm.SkewNormal.dist(mu=mu, sigma=omega, alpha=shape)
        else:  # mean, envelope (the envelope rule is applied to the draws afterwards)
            sigma = pm.HalfNormal("sigma", P.sigma_mean)
            prior = pm.Normal.dist(mu=mu, sigma=sigma)
        if M.reparam in ("shear", "affine"):
            # sample η̃ = ln ρ − ξ, where ξ is the common shift of all targets that the curve
            # levels imply: least squares of Δz_j = s_j·ξ over benchmarks, with s_j = z_gain_j /
            # ln(N_max/N_min) each curve's mean slope in ln N. Moving every curve up and every
            # target down together was the posterior's widest direction (benchmarks/README.md);
            # in (η̃, z) it is nearly axis-aligned. ln ρ depends on the other parameters only
            # additively, so the Jacobian is 1; the trend prior is applied to ln ρ itself.
            log_n_ref = np.log(refs.params.to_numpy(dtype=float))
            w = params["z_gain"] / float(log_n_ref.max() - log_n_ref.min())
            if weights is not None:
                w = w * weights[1]
            xi = -pt.sum(w * params["z_centre"]) / pt.sum(w * w)
            shifted = pm.Flat("log_density_shifted", dims="target")
            if M.reparam == "affine":
                # also stretch about N_c with the curves' typical gain k: steeper curves pull
                # every target's ln N̂ towards N_c (a common scale, seen with few benchmarks on
                # the paper preset); ln ρ = c_i + ξ + η̃/k, log-Jacobian −n·ln k
                if weights is None:
                    k = pt.sqrt(pt.mean(params["z_gain"] ** 2))
                else:                   # over the weighted benchmarks only
                    k = pt.sqrt(pt.sum(weights[1] * params["z_gain"] ** 2) / pt.sum(weights[1]))
                centre = float(np.mean(log_n_ref)) - log_n_target
                log_rho = pm.Deterministic("log_density", centre + xi + shifted / k, dims="target")
                scored = len(t) if weights is None else pt.sum(target_w)
                pm.Potential("affine_jacobian", -scored * pt.log(k))
            else:
                log_rho = pm.Deterministic("log_density", shifted + xi, dims="target")
        elif weights is not None:       # the same as below, with the prior as a Potential
            log_rho = shifted = pm.Flat("log_density", dims="target")
        elif marginal:
            raise ModelError("a marginalised changepoint (model.changepoint = 'marginal') "
                             "needs model.reparam = 'shear' or 'affine'")
        else:
            log_rho = model.register_rv(prior, "log_density", dims="target")
        if M.reparam in ("shear", "affine") or weights is not None:
            if weights is None:
                trend_lp = pm.logp(prior, log_rho)
            else:
                # an unscored target: N(0, 1) on its sampled value (see the docstring). Its
                # trend prior, multiplied by 0, is evaluated a little below the trend's
                # location, where it and its gradient are finite: at a free value it can be
                # -inf (0 · ∞ is NaN), and exactly at the location the skew-normal's gradient
                # is NaN in PyTensor
                safe = disconnected_grad(mu) - 0.1
                at = pt.switch(pt.gt(target_w, 0.0), log_rho, safe)
                trend_lp = (target_w * pm.logp(prior, at)
                            + (1.0 - target_w) * _std_normal_logp(shifted))
            if marginal:
                # p(ln ρ, slopes | B) = Σ_k π_k p(slopes_k) Π_i p(ln ρ_i | date k), π uniform;
                # each draw's conditional posterior of the date is the softmax of these terms
                per_date = trend_lp.sum(axis=-1) + slope_lp
                pm.Potential("trend_prior", pt.logsumexp(per_date) - math.log(len(dates)))
                pm.Deterministic("changepoint_weight", pt.special.softmax(per_date),
                                 dims="changepoint_date")
            else:
                pm.Potential("trend_prior", trend_lp.sum())
        eta = pm.Deterministic("log_effective_size", log_rho + log_n_target, dims="target")
        if A is not None:
            pm.Deterministic("doubling_months", laws.doubling_time(A))

        # --- loss law --------------------------------------------------------------------
        params.update({"log_effective_size": eta,
                       "alpha": exponents(P, len(data.benchmarks))})
        if M.target_offsets == "on" and len(data.benchmarks) > 1:
            params["target_offset"] = target_offsets(P, weights)
        if data_term_on(data, config):
            params["b"] = pm.LogNormal("b", _log(P.data_coef), 0.5)
            params["beta"] = pm.LogNormal("beta", _log(P.beta), 0.3)
        if loss_mode:
            params["a"] = pm.LogNormal("a", 0.0, 1.0, dims="benchmark")
            params["E"] = pm.HalfNormal("E", 2.0, dims="benchmark")

        # overdispersion: the reference family (one recipe, a smooth series in size) sits
        # much closer to its curves than the heterogeneous targets do; one shared φ would let
        # the targets' spread loosen the curves that define every effective size
        phi_ref = pm.LogNormal("phi_reference", _log(P.phi_reference), 1.0, dims="benchmark")
        phi_tgt = pm.LogNormal("phi_target", _log(P.phi), 1.0, dims="benchmark")
        phi_obs = obs_concentration(phi_ref, phi_tgt, data)
        phi_term = concentration_term(phi_ref, phi_tgt, data, obs.n.to_numpy())

        # --- likelihood ------------------------------------------------------------------
        if settings is not None:
            params["d0"] = settings[1]
        p, L = score_probability(params, data, config, xp=pt)
        k, n = obs.k.to_numpy(), obs.n.to_numpy()
        robust = M.likelihood == "robust"
        if robust:
            pi_obs = obs_outlier_rate(*outlier_rates(P), data)
        if weights is not None:
            # one log-likelihood term per observation, weighted; no observed variable
            k, binomln = counts if counts is not None else (k, log_binomial(n, k))
            # an unweighted observation's terms get harmless inputs: its parameters are free
            # (standard normal, above) and may put p at 0 or 1, where the log density is
            # infinite and 0 · ∞ (or its gradient) would be NaN
            used = pt.gt(weights[0], 0.0)
            p_used, phi_used = pt.switch(used, p, 0.5), pt.switch(used, phi_obs, 1.0)
            term_used = pt.switch(used, phi_term, 0.0)
            pm.Potential("weighted_loglik", pt.sum(weights[0] * (
                robust_logp(k, n, p_used, phi_used, binomln, pi_obs, term_used) if robust
                else betabinomial_logp(k, n, p_used, phi_used, binomln, term_used))))
        elif robust:
            binomln = log_binomial(n, k)
            pm.CustomDist("correct", p, phi_obs, phi_term, pi_obs,
                          logp=lambda value, p_, phi_, term, pi_: robust_logp(
                              value, n, p_, phi_, binomln, pi_, term),
                          observed=k, dims="obs")
        else:
            if counts is not None:
                raise ModelError("counts as an input need weights (the sweep's model)")
            binomln = log_binomial(n, k)
            pm.CustomDist("correct", p, phi_obs, phi_term,
                          logp=lambda value, p_, phi_, term: betabinomial_logp(
                              value, n, p_, phi_, binomln, term),
                          observed=k, dims="obs")
        if loss_mode:
            has = obs.loss.notna().to_numpy()
            sigma_loss = pm.HalfNormal("sigma_loss", 0.1)
            idx = np.flatnonzero(has)
            if weights is not None:
                pm.Potential("weighted_loss_loglik", pt.sum(weights[0][idx] * pm.logp(
                    pm.Normal.dist(mu=L[idx], sigma=sigma_loss), obs.loss.to_numpy()[has])))
            else:
                pm.Normal("loss", mu=L[idx], sigma=sigma_loss, observed=obs.loss.to_numpy()[has])
        if weights is not None:
            unused_parameters(model, 1.0 - weights[1])
    return model


CHANGEPOINT_SIDE = 3    # targets each side of a change date, at least


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


def exponents(P, n_benchmarks: int):
    """The per-benchmark loss-law exponents α_j, pooled: ln α_j ~ N(ln α_μ, τ_α), with
    α_μ ~ LogNormal(ln priors.alpha, 0.5) and τ_α ~ HalfNormal(priors.alpha_tau).

    Sampled partially non-centred (docs/model.md, geometry choice 4), with a weight that
    follows τ_α: ln α_j = κ·(ln α_μ + τ_α·x_j), κ = τ₀/(τ_α + τ₀), τ₀ = priors.alpha_tau, so
    x_j ~ N(ln α_μ/τ₀, 1/κ) exactly (its mean is (1 − κ)·ln α_μ/(κτ_α) = ln α_μ/τ₀). A small
    τ_α (κ → 1) is the non-centred form, α_μ·exp(τ_α x_j), which keeps the funnel of a τ_α
    near 0 away; a τ_α well above τ₀ tends to the centred form, x_j ∝ ln α_j, whose curvature
    no longer changes with τ_α.
    Non-centred throughout (until 2026-12-01), the exponents the data pin (ln α_j within
    0.1–0.5 at τ_α ≈ 0.5 on the bundled data) set the step size of every fit and made the
    sweep's small subsets take 63 leapfrog steps per draw (benchmarks/README.md). The map is
    linear in x_j given (α_μ, τ_α), so x_j's normal is its own density: no Jacobian term."""
    mu = pm.LogNormal("alpha_mu", _log(P.alpha), 0.5)
    tau = pm.HalfNormal("alpha_tau", P.alpha_tau)
    kappa = P.alpha_tau / (tau + P.alpha_tau)
    x = pm.Normal("alpha_x", pt.log(mu) / P.alpha_tau, 1.0 / kappa, dims="benchmark")
    return pm.Deterministic("alpha", pt.exp(kappa * (pt.log(mu) + tau * x)), dims="benchmark")


def target_offsets(P, weights: tuple | None = None):
    """δ_j: how far the targets sit off the reference curve of benchmark j, in ln size,
    centred over the benchmarks in use (weighted by ``weights[1]``), so that a target's η is
    its equal-weight reference-relative size on them, as the paper's pipeline averages it:
    δ = s (r − Σ w r / Σ w), r ~ N(0, 1), s = ``priors.offset_sd``. The scale is fixed, not
    learnt: 3–6 benchmarks give a hierarchy's scale 2–5 degrees of freedom, and its funnel made
    most small fits diverge (benchmarks/README.md, "Target offsets"). The mean of r has no
    data; its posterior is the prior's."""
    raw = pm.Normal("target_offset_raw", 0.0, 1.0, dims="benchmark")
    w = 1.0 if weights is None else weights[1]
    centre = pt.sum(w * raw) / pt.sum(w * pt.ones_like(raw))
    return pm.Deterministic("target_offset", P.offset_sd * (raw - centre), dims="benchmark")


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


def setting_inputs(config: Config) -> tuple:
    """A vector input holding every prior setting (the fields of ``config.priors``, in order)
    and then D0, with ``(priors, d0)`` built from its elements for ``build_model(...,
    settings=...)``: fits under other priors or another D0 then share one compiled program
    (``sweep.compile_sweep(..., setting_inputs=True)``); :func:`setting_values` gives the
    vector's values. Returns ``(vector, (priors, d0))``."""
    from dataclasses import fields
    from types import SimpleNamespace

    vector = pt.vector("settings")
    names = [f.name for f in fields(config.priors)]
    priors = SimpleNamespace(**{name: vector[i] for i, name in enumerate(names)})
    return vector, (priors, vector[len(names)])


def setting_values(config: Config) -> np.ndarray:
    """The values of :func:`setting_inputs`' vector under ``config``."""
    from dataclasses import astuple

    return np.asarray(astuple(config.priors) + (config.model.d0,), dtype=float)


def _log(x):
    # a prior setting is a number, or an element of setting_inputs' vector
    return math.log(x) if isinstance(x, (int, float)) else pt.log(x)


def _std_normal_logp(x):
    return -0.5 * x * x - _HALF_LOG_2PI


def scored_targets(obs_w, data: ScoreData):
    """1 for each target with at least one weighted score, else 0 (symbolic, from the
    observations' weights)."""
    obs = data.obs
    is_target = np.flatnonzero(obs.model_idx.to_numpy() >= data.n_ref)
    target_idx = obs.model_idx.to_numpy()[is_target] - data.n_ref
    count = pt.inc_subtensor(pt.zeros(data.n_target)[target_idx], obs_w[is_target])
    return pt.switch(pt.gt(count, 0.0), 1.0, 0.0)


def unused_parameters(model: pm.Model, unused) -> None:
    """Swap the prior of every per-benchmark parameter whose benchmark is ``unused`` (1) for a
    standard normal on its unconstrained value: one Potential per variable, the difference of
    the two log densities (with the transform's Jacobian), zero for the benchmarks in use."""
    for rv in list(model.free_RVs):
        if model.named_vars_to_dims.get(rv.name) != ("benchmark",):
            continue
        value = model.rvs_to_values[rv]
        prior = model.logp(vars=[rv], jacobian=True, sum=False)[0]
        pm.Potential(f"{rv.name}_unused", pt.sum(unused * (_std_normal_logp(value) - prior)))


def prior_terms(model: pm.Model) -> list:
    """The terms of the model's log prior (its ``log_prior`` group, what power-scaling scales):
    every free variable and every Potential that is neither likelihood (a weighted
    likelihood's Potential has "loglik" in its name) nor a reparametrisation's log-Jacobian
    ("jacobian" in its name: the change of variables is not part of the prior's density)."""
    return list(model.free_RVs) + [v for v in model.potentials
                                   if "loglik" not in v.name and "jacobian" not in v.name]


def log_prior_terms(model: pm.Model) -> list:
    """Each prior term's log density, summed over its elements, as a function of the model's
    value variables (without the transforms' Jacobians: the density of the variable itself)."""
    # one call for all terms: each call of model.logp rebuilds the whole model's log density
    return [pt.sum(term) for term in model.logp(vars=prior_terms(model), jacobian=False, sum=False)]
