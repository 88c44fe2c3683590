"""The three laws of the Densing method, and their inverses, written once.

Every function here is a pure array function that works on numpy arrays, jax arrays and
pytensor tensors alike (the namespace is picked from the argument types). The Bayesian model
(`model/build.py` and its components), the paper's point pipeline (`analyses/classic.py`) and
the simulator (`model/simulate.py`) all call these, so the formulas cannot drift apart.

Units: N (parameters) in billions, D (training tokens) in trillions, t in months.

>>> import numpy as np
>>> L = loss_law(7.0, 1.0, a=1.0, alpha=0.3, b=0.5, beta=0.28)
>>> round(float(effective_size(performance(L, 0.7, 4.0, 1.2, 0.25), a=1.0, alpha=0.3, b=0.5,
...       beta=0.28, c=0.7, gamma=4.0, l=1.2, d=0.25, d0=1.0)), 6)
7.0
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy import special as _special

LN2 = math.log(2.0)
DAYS_PER_MONTH = 365.25 / 12.0

_NUMPY = SimpleNamespace(exp=np.exp, log=np.log, sigmoid=_special.expit, maximum=np.maximum,
                         minimum=np.minimum, where=np.where)


def namespace(*xs):
    """numpy, jax.numpy or pytensor.tensor, by the types of the arguments."""
    for x in xs:
        module = type(x).__module__
        if module.startswith("pytensor"):
            import pytensor.tensor as pt

            return SimpleNamespace(exp=pt.exp, log=pt.log, sigmoid=pt.sigmoid,
                                   maximum=pt.maximum, minimum=pt.minimum, where=pt.switch)
        if module.startswith("jax"):
            import jax
            import jax.numpy as jnp

            return SimpleNamespace(exp=jnp.exp, log=jnp.log, sigmoid=jax.nn.sigmoid,
                                   maximum=jnp.maximum, minimum=jnp.minimum, where=jnp.where)
    return _NUMPY


# --- 1. loss law -------------------------------------------------------------------------------

def loss_law(N, D, *, a, alpha, b, beta, E=0.0):
    """Conditional loss ``L(N, D) = E + a·N^-α + b·D^-β`` (N in billions, D in trillions)."""
    xp = namespace(N, D, a, alpha, b, beta, E)
    return E + a * xp.exp(-alpha * xp.log(N)) + b * xp.exp(-beta * xp.log(D))


def loss_law_size(L, D, *, a, alpha, b, beta, E=0.0):
    """Invert the loss law for N at data size D: ``N = ((L − E − b·D^-β) / a)^(-1/α)``.

    Returns NaN (numpy) where the loss is at or below what infinite parameters would reach.
    """
    xp = namespace(L, D, a, alpha, b, beta, E)
    excess = (L - E - b * xp.exp(-beta * xp.log(D))) / a
    return xp.exp(-xp.log(excess) / alpha)


# --- 2. performance map ------------------------------------------------------------------------

def performance(L, c, gamma, l, d):
    """Score from loss: ``S(L) = d + c·σ(γ·(l − L))`` — d the chance floor, c + d the ceiling."""
    xp = namespace(L, c, gamma, l, d)
    return d + c * xp.sigmoid(gamma * (l - L))


def performance_loss(S, c, gamma, l, d):
    """Invert the performance map: ``L = l + (1/γ)·ln(c/(S − d) − 1)``.

    (From c/(S − d) − 1 = exp(−γ·(l − L)). DESIGN.md writes the sign as "−"; that slip would
    make every effective size wrong, and tests/test_laws.py pins the identity.)
    Defined for d < S < d + c; NaN outside (a score at or below chance carries no size).
    """
    xp = namespace(S, c, gamma, l, d)
    return l + xp.log(c / (S - d) - 1.0) / gamma


def sigmoid_through(z_at, L_at, gain, L_low, L_high):
    """Performance-map parameters (l, γ) from a level and a gain of the logit z = γ·(l − L).

    ``z_at`` is the logit (the score's position between floor and ceiling) at loss ``L_at``;
    ``gain`` is the rise of z from loss ``L_low`` to ``L_high`` (the smallest and the largest
    reference model). Then γ = gain / (L_low − L_high) and l = L_at + z_at/γ.

    The Bayesian model samples (z_at, gain) with ``L_at`` the loss at the references' geometric-
    mean size: z is
    linear in them, the level and the gain are nearly uncorrelated (a centred regressor), and
    a benchmark that barely moves with size (gain ≈ 0) stays well-posed, where (l, γ) or a
    midpoint and a slope form a funnel.
    """
    gamma = gain / (L_low - L_high)
    return L_at + z_at / gamma, gamma


def effective_size(S, *, a, alpha, b, beta, c, gamma, l, d, d0=1.0, E=0.0):
    """Effective parameter size N̂ (billions) of a model scoring S: invert (2), then (1) at D0."""
    return loss_law_size(performance_loss(S, c, gamma, l, d), d0, a=a, alpha=alpha, b=b,
                         beta=beta, E=E)


# --- 3. density trend --------------------------------------------------------------------------

def log_density(log_effective_size, log_params):
    """ln ρ = ln N̂ − ln N."""
    return log_effective_size - log_params


def trend_mean(t, A, B):
    """Log-linear trend of density: ``ln ρ = A·t + B``."""
    return A * t + B


def changepoint_mean(t, A_before, A_after, B, t_change):
    """Continuous broken line: slope A_before before t_change, A_after after; B at t_change."""
    xp = namespace(t, A_before, A_after, B, t_change)
    dt = t - t_change
    return B + A_before * xp.minimum(dt, 0.0) + A_after * xp.maximum(dt, 0.0)


def changepoint_level(t, A_before, A_after, level, t_change, t_level):
    """The broken line of :func:`changepoint_mean` through ``level`` at ``t_level`` instead of
    through B at the change: as the change date moves, the line keeps its level at
    ``t_level``, so a date summed over candidates leaves the other parameters' meaning the same
    for every candidate."""
    return (level + changepoint_mean(t, A_before, A_after, 0.0, t_change)
            - changepoint_mean(t_level, A_before, A_after, 0.0, t_change))


def doubling_time(A):
    """Doubling time ln 2 / A, in the time unit of A (months for the model's A)."""
    return LN2 / A


def growth_per_year(A):
    """The factor by which density grows in a year, e^{12 A} (A per month)."""
    return np.exp(12.0 * A)


def frontier_skewnormal(sigma_v, sigma_u):
    """Composed error v − u (v ~ N(0, σ_v), u ~ HalfNormal(σ_u)) as a skew-normal (ω, α).

    Aigner, Lovell & Schmidt (1977): the density of ε = v − u is the skew-normal with scale
    ω = √(σ_v² + σ_u²) and shape −σ_u/σ_v. Its mean is −σ_u·√(2/π).
    """
    xp = namespace(sigma_v, sigma_u)
    omega = xp.exp(0.5 * xp.log(sigma_v**2 + sigma_u**2))
    return omega, -sigma_u / sigma_v


def envelope_mask(t, log_rho):
    """Models on the running-maximum envelope: at least as dense as every earlier model.

    ``t`` has shape (n,); ``log_rho`` (..., n), one row per posterior draw. A model is on the
    envelope when its density is the highest among models of its own date and not below the
    maximum of all strictly earlier models (the paper's rule for Figure 1).
    """
    t = np.asarray(t)
    log_rho = np.asarray(log_rho, dtype=float)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    y = log_rho[..., order]
    dates, start = np.unique(ts, return_index=True)
    date_of = np.searchsorted(dates, ts)
    date_max = np.maximum.reduceat(y, start, axis=-1)
    earlier_max = np.concatenate(
        [np.full(date_max.shape[:-1] + (1,), -np.inf),
         np.maximum.accumulate(date_max, axis=-1)[..., :-1]], axis=-1)
    on = (y >= earlier_max[..., date_of]) & (y >= date_max[..., date_of])
    mask = np.empty_like(on)
    mask[..., order] = on
    return mask


def weighted_ols(t, y, w):
    """Slope and intercept of y on t with 0/1 weights w, vectorised over leading axes."""
    w = np.asarray(w, dtype=float)
    t = np.broadcast_to(np.asarray(t, dtype=float), w.shape)
    sw = w.sum(-1)
    tm = (w * t).sum(-1) / sw
    ym = (w * y).sum(-1) / sw
    dt = t - tm[..., None]
    sxx = (w * dt * dt).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (w * dt * (y - ym[..., None])).sum(-1) / sxx
    return slope, ym - slope * tm


def envelope_trend(t, log_rho):
    """The paper's rule: OLS of ln ρ on t over the running-max envelope, per draw → (A, B)."""
    mask = envelope_mask(t, log_rho)
    return weighted_ols(t, np.asarray(log_rho, dtype=float), mask)
