"""The loss-law exponents' parametrisation (``model.exponents``): sampled partially non-centred
(x_j, with a weight that follows τ_α), it must still be the model's prior,
ln α_j ~ N(ln α_μ, τ_α) given (α_μ, τ_α), and α_μ ~ LogNormal(ln priors.alpha, 0.5)."""

import math

import numpy as np
import pymc as pm
from scipy import stats

from bayes_densing.config import Config
from bayes_densing.data import load
from bayes_densing.model.build import build_model


def test_the_sampled_exponents_have_the_models_prior():
    cfg = Config()
    data = load(cfg, None)
    model = build_model(data, cfg)
    alpha, mu, tau = pm.draw([model["alpha"], model["alpha_mu"], model["alpha_tau"]],
                             draws=4000, random_seed=1)
    assert alpha.shape == (4000, len(data.benchmarks))
    # given (α_μ, τ_α) the ln α_j are independent normals: standardised, one standard normal
    standardised = ((np.log(alpha) - np.log(mu)[:, None]) / tau[:, None]).ravel()
    assert stats.kstest(standardised, "norm").pvalue > 1e-3
    assert stats.kstest(np.log(mu), stats.norm(math.log(cfg.priors.alpha), 0.5).cdf).pvalue > 1e-3
    assert stats.kstest(tau, stats.halfnorm(0, cfg.priors.alpha_tau).cdf).pvalue > 1e-3
    # across the range of τ_α, from the non-centred end (small) to the centred end (large)
    for part in (tau < 0.5 * cfg.priors.alpha_tau, tau > 1.5 * cfg.priors.alpha_tau):
        z = ((np.log(alpha[part]) - np.log(mu[part])[:, None]) / tau[part][:, None]).ravel()
        assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1, (part.sum(), z.mean(), z.std())
