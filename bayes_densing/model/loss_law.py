"""The loss law as a model component: L_ij = E_j + a_j·N_i^(-α_j) + b·D_i^(-β).

References enter with their actual N and D, targets with N = N̂_i (their effective size) and
D = D0. In score-only mode the loss scale is fixed (a_j = 1, E_j = 0): it is not identified,
and no reported quantity depends on it. The exponents α_j are pooled around a shared α.
"""

from __future__ import annotations

from bayes_densing.config import Config
from bayes_densing.data import ScoreData
from bayes_densing.model import ModelError, priors
from bayes_densing.model.inputs import Inputs, log_of


def data_term_on(data: ScoreData, config: Config) -> bool:
    """Whether the b·D^-β term is modelled: needs known tokens for every reference model."""
    mode = config.model.data_term
    tokens_known = bool(data.references.tokens.notna().all())
    if mode == "on" and not tokens_known:
        missing = data.references.model[data.references.tokens.isna()]
        raise ModelError(f"model.data_term = 'on' needs tokens for every reference model; "
                         f"missing for {', '.join(missing)}")
    return mode == "on" or (mode == "auto" and tokens_known)


def exponents(P, n_benchmarks: int):
    """The per-benchmark loss-law exponents α_j, pooled: ln α_j ~ N(ln α_μ, τ_α), with
    α_μ ~ LogNormal(ln priors.alpha, priors.alpha_sd) and τ_α ~ HalfNormal(priors.alpha_tau).

    Sampled partially non-centred (docs/model.md, geometry choice 4), with a weight that
    follows τ_α: ln α_j = κ·(ln α_μ + τ_α·x_j), κ = τ₀/(τ_α + τ₀), τ₀ = priors.alpha_tau, so
    x_j ~ N(ln α_μ/τ₀, 1/κ) exactly. A small τ_α (κ → 1) is the non-centred form, which keeps
    the funnel of a τ_α near 0 away; a τ_α well above τ₀ tends to the centred form, whose
    curvature no longer changes with τ_α, so the exponents the data pin do not set every fit's
    step size (benchmarks/README.md). The map is linear in x_j given (α_μ, τ_α): no Jacobian."""
    import pymc as pm
    import pytensor.tensor as pt

    mu = pm.LogNormal("alpha_mu", log_of(P.alpha), P.alpha_sd)
    tau = pm.HalfNormal("alpha_tau", P.alpha_tau)
    kappa = P.alpha_tau / (tau + P.alpha_tau)
    x = pm.Normal("alpha_x", pt.log(mu) / P.alpha_tau, 1.0 / kappa, dims="benchmark")
    return pm.Deterministic("alpha", pt.exp(kappa * (pt.log(mu) + tau * x)), dims="benchmark")


def target_offsets(P, weights: tuple | None = None):
    """δ_j: how far the targets sit off the reference curve of benchmark j, in ln size,
    centred over the benchmarks in use (weighted by ``weights[1]``), so that a target's η is
    its equal-weight reference-relative size on them, as the paper's pipeline averages it:
    δ = s (r − Σ w r / Σ w), r ~ N(0, 1), s = ``priors.offset_sd``. The scale is fixed, not
    learnt: 3–6 benchmarks give a hierarchy's scale too few degrees of freedom, and its funnel
    made most small fits diverge (benchmarks/README.md, "Target offsets"). The mean of r has
    no data; its posterior is the prior's."""
    import pymc as pm
    import pytensor.tensor as pt

    raw = pm.Normal("target_offset_raw", 0.0, 1.0, dims="benchmark")
    w = 1.0 if weights is None else weights[1]
    centre = pt.sum(w * raw) / pt.sum(w * pt.ones_like(raw))
    return pm.Deterministic("target_offset", P.offset_sd * (raw - centre), dims="benchmark")


class LossLaw:
    """The loss law's parameters (inside a PyMC model): the pooled exponents, the targets'
    per-benchmark offsets, the data term b·D^-β where every reference's tokens are known,
    and in loss mode the scale a_j, the floor E_j and the observed losses."""

    default_priors = priors.LOSS_LAW

    def __init__(self, data: ScoreData, config: Config, inputs: Inputs):
        self.data, self.config, self.inputs = data, config, inputs

    def build(self, P) -> dict:
        import pymc as pm

        nb, M = len(self.data.benchmarks), self.config.model
        params = {"alpha": exponents(P, nb)}
        if M.target_offsets == "on" and nb > 1:
            params["target_offset"] = target_offsets(P, self.inputs.weights)
        if data_term_on(self.data, self.config):
            params["b"] = pm.LogNormal("b", log_of(P.data_coef), P.data_coef_sd)
            params["beta"] = pm.LogNormal("beta", log_of(P.beta), P.beta_sd)
        if self.data.has_loss:
            params["a"] = pm.LogNormal("a", log_of(P.loss_coef), P.loss_coef_sd, dims="benchmark")
            params["E"] = pm.HalfNormal("E", P.loss_floor, dims="benchmark")
        return params

    def observe(self, P, L) -> None:
        """Loss mode: each observed loss ~ N(L_ij, σ_loss), weighted like the scores."""
        if not self.data.has_loss:
            return
        import numpy as np
        import pymc as pm
        import pytensor.tensor as pt

        obs = self.data.obs
        has = obs.loss.notna().to_numpy()
        sigma_loss = pm.HalfNormal("sigma_loss", P.sigma_loss)
        idx = np.flatnonzero(has)
        if self.inputs.weights is not None:
            pm.Potential("weighted_loss_loglik", pt.sum(self.inputs.weights[0][idx] * pm.logp(
                pm.Normal.dist(mu=L[idx], sigma=sigma_loss), obs.loss.to_numpy()[has])))
        else:
            pm.Normal("loss", mu=L[idx], sigma=sigma_loss, observed=obs.loss.to_numpy()[has])
