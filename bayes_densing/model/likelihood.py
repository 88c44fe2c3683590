"""The likelihood of the scores, written once: k_ij ~ BetaBinomial(n_j, p_ij·φ, (1 − p_ij)·φ),
or under ``model.likelihood = "robust"`` its mixture with a wide outlier component.

The log density (:func:`score_logp`) and the draw (:func:`draw_counts`) serve the model
(PyTensor), the posterior predictive, LOO and the stratified analyses (numpy on draws), the
cut's second stage and the simulator; :class:`Likelihood` adds the priors of its
concentrations and outlier rates to a PyMC model.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from bayes_densing.data import ScoreData
from bayes_densing.model import ModelError, laws, priors
from bayes_densing.model.inputs import HALF_LOG_2PI, Inputs, log_of


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


def score_logp(k, n, p, phi, binomln, outliers=None, phi_term=None):
    """log p(k | n, p, φ) of each score: the beta-binomial, or with ``outliers = (π, φ_wide)``
    the robust mixture (1 − π)·BetaBinomial(k | n, p, φ) + π·BetaBinomial(k | n, p, φ_wide),
    whose wide component a contaminated score can fall in (PyTensor in the model, numpy for
    the draws)."""
    if outliers is None:
        return betabinomial_logp(k, n, p, phi, binomln, phi_term)
    pi, wide_phi = outliers
    xp = laws.namespace(p, pi)
    good = xp.log(1.0 - pi) + betabinomial_logp(k, n, p, phi, binomln, phi_term)
    wide = xp.log(pi) + betabinomial_logp(k, n, p, wide_phi, binomln)
    top = xp.maximum(good, wide)
    return top + xp.log(xp.exp(good - top) + xp.exp(wide - top))


def draw_counts(rng: np.random.Generator, n, p, phi):
    """Correct counts drawn from the beta-binomial (numpy): the simulator's and the posterior
    predictive's."""
    return rng.binomial(n, rng.beta(p * phi, (1 - p) * phi))



def gammaln_difference(x, y):
    """ln Γ(x) − ln Γ(y) for x, y > 0 from elementary operations, which XLA fuses and
    vectorises (ln Γ(x) alone: ``gammaln_difference(x, 1.0)``).

    Each argument is shifted up by six (Γ(x) = Γ(x + 6) / (x(x+1)…(x+5))) for the Stirling
    series (:func:`_stirling`), and the two shifts share one logarithm, of the ratio of their
    products: three logarithms instead of four, since the beta-binomial's log-gammas come in
    such pairs (benchmarks/README.md). Absolute error below 1e-9 for 1e-6 ≤ x, y ≤ 1e5
    (tests/test_laws.py); z⁹ ≤ 1e46 there, far from overflow."""
    log = laws.namespace(x).log         # pytensor in the model, jax.numpy in benchmarks/floor.py
    return _stirling(x + 6.0) - _stirling(y + 6.0) + log(_rising6(y) / _rising6(x))


def _rising6(x):
    """x (x + 1) … (x + 5): Γ(x + 6) / Γ(x)."""
    return x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0)


def _stirling(z):
    """ln Γ(z) for z ≥ 6 by the Stirling series to 1/z⁹, written as one polynomial in z² over
    z⁹ so that there is a single division: PyTensor's canonicaliser turns the nested form into
    one division per level, which made the gradient several times slower
    (benchmarks/README.md, "Where the gradient's time goes")."""
    log = laws.namespace(z).log
    w = z * z
    numerator = (((w / 12.0 - 1.0 / 360) * w + 1.0 / 1260) * w - 1.0 / 1680) * w + 1.0 / 1188
    w2 = w * w
    return (z - 0.5) * log(z) - z + HALF_LOG_2PI + numerator / (z * w2 * w2)


def concentration_index(data: ScoreData) -> np.ndarray:
    """Which φ each observation has, as an index into [φ_reference, φ_target] (2 × benchmarks)."""
    nb = len(data.benchmarks)
    return data.obs.bench_idx.to_numpy() + nb * (data.obs.model_idx.to_numpy() >= data.n_ref)


def obs_concentration(phi_reference, phi_target, data: ScoreData, xp=None):
    """Beta-binomial concentration φ of every observation: the reference or the target φ_j."""
    xp = xp or _pt()
    return xp.concatenate([phi_reference, phi_target], axis=-1)[..., concentration_index(data)]


def concentration_term(phi_reference, phi_target, data: ScoreData, n: np.ndarray, xp=None):
    """ln Γ(φ) − ln Γ(n + φ) of every observation (the beta-binomial's two log-gammas that
    depend on its φ and items n only), evaluated once per distinct (φ, n) — one per benchmark
    and family when every score of a benchmark has its n items — and gathered."""
    xp = xp or _pt()
    pairs, at = np.unique(np.stack([concentration_index(data), np.asarray(n, dtype=float)]),
                          axis=1, return_inverse=True)
    phi = xp.concatenate([phi_reference, phi_target], axis=-1)[..., pairs[0].astype(int)]
    return gammaln_difference(phi, pairs[1] + phi)[..., np.ravel(at)]


def obs_outlier_rate(pi_reference, pi_target, data: ScoreData, xp=None):
    """Each observation's outlier rate: the reference or the target π (numpy: draws first)."""
    xp = xp or _pt()
    target = (data.obs.model_idx.to_numpy() >= data.n_ref).astype(int)
    return xp.stack([pi_reference, pi_target], axis=-1)[..., target]


def outlier_rate(P, name: str):
    """One outlier rate π ~ Beta(a, a(1 − π̄)/π̄), a = ``priors.outlier_a``, π̄ =
    ``priors.outlier_rate`` (inside a PyMC model)."""
    import pymc as pm

    return pm.Beta(name, P.outlier_a, P.outlier_a * (1.0 - P.outlier_rate) / P.outlier_rate)


def concentration(P, name: str, reference: bool):
    """One family's φ_j ~ LogNormal(ln φ̄, s) per benchmark (inside a PyMC model)."""
    import pymc as pm

    centre, sd = ((P.phi_reference, P.phi_reference_sd) if reference else (P.phi, P.phi_sd))
    return pm.LogNormal(name, log_of(centre), sd, dims="benchmark")


class Likelihood:
    """The scores' likelihood as a model component: the concentrations φ (the reference
    family sits much closer to its curves than the heterogeneous targets do, so each family
    has its own), the outlier rates of the robust mixture (one per family, so each module of
    the cut has its own), and the observed counts — or, with weights as inputs, one weighted
    log-likelihood term per score (a family of fits in one program, ``inference/sweep.py``)."""

    default_priors = priors.LIKELIHOOD

    def __init__(self, data: ScoreData, robust: bool, inputs: Inputs):
        self.data, self.robust, self.inputs = data, robust, inputs

    def concentrations(self, P):
        """Add φ_reference, φ_target; returns each score's φ and its ln Γ(φ) − ln Γ(n + φ)."""
        phi_ref = concentration(P, "phi_reference", reference=True)
        phi_tgt = concentration(P, "phi_target", reference=False)
        n = self.data.obs.n.to_numpy()
        return (obs_concentration(phi_ref, phi_tgt, self.data),
                concentration_term(phi_ref, phi_tgt, self.data, n))

    def observe(self, P, p, phi, phi_term) -> None:
        """Add the scores' likelihood given each score's expected value ``p``."""
        import pymc as pm

        outliers = None
        if self.robust:
            pi = obs_outlier_rate(outlier_rate(P, "outlier_rate_reference"),
                                  outlier_rate(P, "outlier_rate_target"), self.data)
            outliers = (pi, P.outlier_phi)
        if self.inputs.weights is not None:
            return self._weighted(p, phi, phi_term, outliers)
        k, n = self.data.obs.k.to_numpy(), self.data.obs.n.to_numpy()
        if self.inputs.counts is not None:
            raise ModelError("counts as an input need weights (the sweep's model)")
        binomln = log_binomial(n, k)
        rate = () if outliers is None else outliers[:1]

        # φ_wide stays a Python float where it is one: as a PyTensor constant it would be
        # float32, and the wide component's log-gammas would lose seven digits
        def logp(value, p_, phi_, term, *pi):
            wide = None if outliers is None else (pi[0], outliers[1])
            return score_logp(value, n, p_, phi_, binomln, wide, term)

        pm.CustomDist("correct", p, phi, phi_term, *rate, logp=logp, observed=k, dims="obs")

    def _weighted(self, p, phi, phi_term, outliers) -> None:
        """One log-likelihood term per score, times its weight (no observed variable)."""
        import pymc as pm
        import pytensor.tensor as pt

        weight, n = self.inputs.weights[0], self.data.obs.n.to_numpy()
        if self.inputs.counts is not None:
            k, binomln = self.inputs.counts
        else:
            k = self.data.obs.k.to_numpy()
            binomln = log_binomial(n, k)
        # an unweighted observation's terms get harmless inputs: its parameters are free
        # (standard normal) and may put p at 0 or 1, where 0 · ∞ (or its gradient) is NaN
        used = pt.gt(weight, 0.0)
        p_used, phi_used = pt.switch(used, p, 0.5), pt.switch(used, phi, 1.0)
        term_used = pt.switch(used, phi_term, 0.0)
        pm.Potential("weighted_loglik", pt.sum(
            weight * score_logp(k, n, p_used, phi_used, binomln, outliers, term_used)))


def _pt():
    import pytensor.tensor as pt

    return pt
