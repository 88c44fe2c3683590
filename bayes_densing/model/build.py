"""The joint hierarchical densing model, composed from its components (docs/model.md has
the equations):

    loss law      L_ij = E_j + a_j·N_i^(-α_j) + b·D_i^(-β)       (loss_law.py)
    perf. map     p_ij = d_j + c_j·σ(γ_j·(l_j − L_ij))             (performance.py, curves.py)
    likelihood    k_ij ~ BetaBinomial(n_j, p_ij·φ_j, (1 − p_ij)·φ_j) (likelihood.py)
    trend         ln ρ_i = ln N̂_i − ln N_i ~ frontier / mean / changepoint prior over t_i
                                                                   (trend.py)

Each component reads its priors from ``config.priors`` (defaults as data in priors.py). Any of
the scores' weights, the counts and the prior settings can be runtime inputs (inputs.py), so
that a family of fits shares one compiled program.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_densing.config import Config
from bayes_densing.data import ScoreData
from bayes_densing.model.curves import score_probability
from bayes_densing.model.inputs import Inputs, std_normal_logp
from bayes_densing.model.likelihood import Likelihood
from bayes_densing.model.loss_law import LossLaw
from bayes_densing.model.performance import PerformanceMap
from bayes_densing.model.trend import Trend, release_groups


def build_model(data: ScoreData, config: Config, weights: tuple | None = None,
                counts: tuple | None = None, settings: tuple | None = None) -> pm.Model:
    """The PyMC model for ``data`` under ``config`` (trend form, likelihood, priors).

    ``weights = (obs_weight, bench_weight)``, two symbolic vectors, make the model one family
    of fits (``inference/sweep.py``): each score's log-likelihood is multiplied by its 0/1
    weight and the shear uses only the weighted benchmarks, so a benchmark subset is a weight
    vector. The parameters a subset leaves without data are then independent of the rest, so
    their prior is swapped for a standard normal on their unconstrained value
    (:func:`unused_parameters`): their draws mean nothing either way, and their own priors
    made each subset's fit slower (benchmarks/README.md). ``counts = (k, binomln)`` (with
    weights) makes the correct counts an input too (simulation-based calibration);
    ``settings = (priors, d0)`` (``inputs.setting_inputs``) the prior settings and D0.
    """
    inputs = Inputs(weights, counts, settings)
    P = inputs.priors(config)
    with pm.Model(coords=coordinates(data, config)) as model:
        curves = PerformanceMap(config.model.ceiling).build(P)
        eta = Trend(data, config, inputs).build(model, P, curves)
        params = {**curves, "log_effective_size": eta}
        loss_law = LossLaw(data, config, inputs)
        params.update(loss_law.build(P))
        likelihood = Likelihood(data, config.model.likelihood == "robust", inputs)
        phi, phi_term = likelihood.concentrations(P)
        if settings is not None:
            params["d0"] = settings[1]
        p, L = score_probability(params, data, config, xp=pt)
        likelihood.observe(P, p, phi, phi_term)
        loss_law.observe(P, L)
        if weights is not None:
            unused_parameters(model, 1.0 - weights[1])
    return model


def coordinates(data: ScoreData, config: Config) -> dict:
    """The model's named dimensions."""
    coords = {"benchmark": data.benchmarks, "target": data.targets.model.tolist(),
              "reference": data.references.model.tolist(), "obs": np.arange(len(data.obs))}
    if config.model.release_groups == "on":
        coords["release_group"] = release_groups(data)[1]
    return coords


def unused_parameters(model: pm.Model, unused) -> None:
    """Swap the prior of every per-benchmark parameter whose benchmark is ``unused`` (1) for a
    standard normal on its unconstrained value: one Potential per variable, the difference of
    the two log densities (with the transform's Jacobian), zero for the benchmarks in use."""
    for rv in list(model.free_RVs):
        if model.named_vars_to_dims.get(rv.name) != ("benchmark",):
            continue
        value = model.rvs_to_values[rv]
        prior = model.logp(vars=[rv], jacobian=True, sum=False)[0]
        pm.Potential(f"{rv.name}_unused", pt.sum(unused * (std_normal_logp(value) - prior)))


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
