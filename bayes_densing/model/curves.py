"""Every benchmark's curve and each score's expected value from the model's parameters:
the loss law and the performance map evaluated together, in PyTensor inside the model or in
numpy over posterior draws (figures, the classic pipeline, the simulator), so the curves are
written once."""

from __future__ import annotations

import math

import numpy as np

from bayes_densing.config import Config
from bayes_densing.data import ScoreData
from bayes_densing.model import laws

P_EPS = 1e-9        # scores are kept off 0 and 1, where the beta-binomial's density is singular
GLOBAL_LOSS_COEFS = {"b", "beta"}


def curve_parameters(params, ref_params, chance, d0: float, xp=None):
    """Every benchmark's curves from the model's parameters: the loss-law coefficients and
    the performance map's (l_j, γ_j, c_j). ``ref_params``: the reference models' sizes
    (billions); ``chance``: each benchmark's floor; ``d0``: the target data size (trillions).

    ``params`` maps names to tensors (inside the PyMC model) or to numpy arrays with a leading
    draw axis (posterior, figures); the same code builds both, so the curves are written once.
    Returns ``(loss_coefs, l, gamma, c)``: ``loss_coefs`` holds a, α, E (shape (..., benchmark))
    and b, β (global: scalars in the model, (draws, 1) in numpy, so both broadcast alike).
    """
    xp = xp or _pt()
    log_n_ref = np.log(np.asarray(ref_params, dtype=float))
    lift = (lambda v: v[..., None] if xp is np and np.ndim(v) >= 1 else v)
    loss_coefs = {"a": params.get("a", 1.0), "alpha": params["alpha"], "E": params.get("E", 0.0),
                  "b": lift(params.get("b", 0.0)), "beta": lift(params.get("beta", 1.0))}
    # anchors at D0: the smallest and largest reference and their geometric-mean size N_c, in
    # one evaluation of shape (..., 3, benchmark); z_centre at a fixed size does not slide along
    # the curve when α changes (benchmarks/README.md, anchoring at the mean loss tied it to α)
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


def score_probability(params, data: ScoreData, config: Config, xp=None):
    """Expected score p_ij of every observation, from the model's parameters (``params`` as in
    :func:`curve_parameters`); also returns the latent loss L_ij."""
    xp = xp or _pt()
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


def _pt():
    import pytensor.tensor as pt

    return pt
