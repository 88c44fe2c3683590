"""The conditional metric (``sampler.mass_matrix = "conditional"``): the posterior's covariance
as the model's structure allows it, dense over the global parameters and with every target's
latent regressed on them.

Given the global parameters g (trend, curves, exponents, concentrations: a few dozen), the
targets' latent log densities l_i are independent in the posterior: each enters only its own
scores and its own trend term. So the precision matrix has no entries between two latents, and
a Gaussian approximation of the posterior is, exactly,

    x_g = μ_g + L_g·y_g,        x_l = μ_l + B·(x_g − μ_g) + s ⊙ y_l,       y ~ N(0, I),

with L_g the Cholesky factor of the globals' covariance, B the latents' regression on the
globals (one row per target) and s their conditional standard deviations. NUTS runs on y with
the identity metric, which is NUTS on x with the metric (inverse mass) L·Lᵀ, L the matrix above:
the dense metric's answer where the structure holds, at the cost of d_g² + 2·d_l·d_g products
instead of d², and from far fewer estimated entries (d_g·(d_g + 1)/2 + d_l·(d_g + 1) instead of
d·(d + 1)/2). At 2,000 targets and 56 globals: 0.23 instead of 8.5 million multiplications per
leapfrog step, and a 0.9 MB factor instead of a 34 MB matrix.

A preconditioner is the tuple ``(mu, chol, coef, scale)``: μ (d,), L_g (d_g, d_g), C = B·L_g
(d_l, d_g) and s (d_l,), the globals first in the flat vector.
"""

from __future__ import annotations

import math

import numpy as np


def identity(d_global: int, d_latent: int) -> tuple:
    """The preconditioner of the identity metric (x = y)."""
    return (np.zeros(d_global + d_latent), np.eye(d_global), np.zeros((d_latent, d_global)),
            np.ones(d_latent))


def effective_draws(chains: np.ndarray, d_global: int, ess=None) -> float:
    """How many independent draws a window's positions (chains × draws × d) are worth for the
    regression: the median ESS of the global parameters by ``ess`` (the caller's; default
    :func:`numpyro_ess`), at most the draws."""
    ess = np.asarray((ess or numpyro_ess)(np.asarray(chains[..., :d_global])))
    # under 4 draws a chain ArviZ's bulk ESS is NaN: so is this, and the caller keeps its metric
    median = float(np.median(ess[np.isfinite(ess)])) if np.isfinite(ess).any() else math.nan
    return min(median, chains.shape[0] * chains.shape[1])


def numpyro_ess(chains: np.ndarray) -> np.ndarray:
    """NumPyro's ESS of draws (chain, draw, d) → (d,), for a sampler given no ``ess``."""
    from numpyro.diagnostics import effective_sample_size

    return np.asarray(effective_sample_size(np.asarray(chains)))


def estimate(draws: np.ndarray, d_global: int, scales_only: bool = False,
             n_eff: float | None = None) -> tuple:
    """The preconditioner from a window's positions ``draws`` (n × d, the globals first).

    The globals' covariance is shrunk as the dense metric's (``covariance.shrunk_covariance``),
    its off-diagonal towards zero by p = (d_g + 1) / (n_eff + d_g + 1), and each latent's
    regression on the globals by how much of its variance it explains (below): d_g + 1 numbers
    per latent from ``n_eff`` independent draws (default n; the windows' draws are
    autocorrelated, :func:`effective_draws`). Then Stan's regularisation. ``scales_only``: the
    variances alone (the first window's estimate)."""
    from bayes_densing.sampling.covariance import regularised, shrunk_covariance, shrunk_variance

    n = draws.shape[0]
    mu = draws.mean(axis=0)
    centred = draws - mu
    g, lat = centred[:, :d_global], centred[:, d_global:]
    var = shrunk_variance(draws)
    if scales_only:
        return (mu, np.diag(np.sqrt(var[:d_global])),
                np.zeros((lat.shape[1], d_global)), np.sqrt(var[d_global:]))
    n_eff = n if n_eff is None else n_eff
    p = (d_global + 1) / (n_eff + d_global + 1)
    cov_g = shrunk_covariance(g, weight=p)
    cov_lg = regularised(lat.T @ g / (n - 1), n, 0.0)
    chol = np.linalg.cholesky(cov_g)
    # each latent's regression on the globals, shrunk towards zero by how little of its
    # variance it explains: k = R² / (R² + p·(1 − R²)), p = (d_g + 1) / n_eff the R² that noise
    # alone would give. A latent the globals explain well keeps its regression (a fixed
    # factor left up to 20× its conditional variance in its scale), one they do not loses it
    ols = np.linalg.solve(cov_g, cov_lg.T).T
    r2 = np.clip(np.einsum("ij,ij->i", ols, cov_lg) / var[d_global:], 0.0, 1.0)
    coef_b = (r2 / (r2 + p * (1.0 - r2) + 1e-300))[:, None] * ols
    # and as scale the spread of its residual l − B·g in these draws: what the whitened
    # latent's variance then is
    scale = np.sqrt(shrunk_variance(lat - g @ coef_b.T))
    coef = coef_b @ chol
    return mu, chol, coef, scale


def from_curvature(mu: np.ndarray, h_global: np.ndarray, h_diag: np.ndarray) -> tuple:
    """The preconditioner of the Gaussian whose precision is the log density's curvature at
    ``mu`` (a Laplace approximation): ``h_global`` the Hessian's rows of the globals
    (d_g × d, of −log density) and ``h_diag`` the latents' diagonal (d_l,), which is their
    whole block (no two latents share a term).

    With Q that precision: s = Q_ll^(−1/2), B = −Q_ll⁻¹·Q_lg and the globals' covariance the
    inverse of the Schur complement Q_gg − Q_gl·Q_ll⁻¹·Q_lg. Away from a mode a curvature can
    be negative or nil: a latent's is then taken as 1 (its unit scale) and the Schur
    complement's eigenvalues by their magnitude, at least 10⁻⁶ of the largest. A curvature
    that is not finite counts as none (0 off the diagonal, 1 on it)."""
    d_global = h_global.shape[0]
    h_global = np.where(np.isfinite(h_global), h_global, 0.0)
    q_gg = 0.5 * (h_global[:, :d_global] + h_global[:, :d_global].T)
    q_gg[np.diag_indices(d_global)] = np.where(np.diag(q_gg) != 0.0, np.diag(q_gg), 1.0)
    usable = np.isfinite(h_diag) & (h_diag > 0)
    q_l = np.where(usable, h_diag, 1.0)
    q_lg = np.where(usable[:, None], h_global[:, d_global:].T, 0.0)
    schur = q_gg - q_lg.T @ (q_lg / q_l[:, None])
    lam, vec = np.linalg.eigh(0.5 * (schur + schur.T))
    lam = np.maximum(np.abs(lam), 1e-6 * np.max(np.abs(lam)))
    chol = np.linalg.cholesky((vec / lam) @ vec.T)
    coef = -(q_lg / q_l[:, None]) @ chol
    return np.asarray(mu, dtype=float), chol, coef, 1.0 / np.sqrt(q_l)


def unit_block(cov: np.ndarray, free: np.ndarray) -> np.ndarray:
    """A copy of the covariance ``cov`` with the coordinates ``free`` (a boolean mask) made
    independent of all others, with unit variance."""
    cov = np.array(cov, dtype=float)
    cov[free, :] = 0.0
    cov[:, free] = 0.0
    cov[free, free] = 1.0
    return cov


def with_unit(pre: tuple, free: np.ndarray) -> tuple:
    """The preconditioner ``pre`` with the coordinates ``free`` (a boolean mask over d)
    made independent of all others, centred on 0 with unit scale: their exact posterior when
    they are the standard normals of parameters without data (a benchmark subset's,
    ``sweep.py``). The other globals keep their covariance, the other latents their
    regression on the other globals and their scale."""
    mu, chol, coef, scale = pre
    d_global = chol.shape[-1]
    free_g, free_l = free[:d_global], free[d_global:]
    coef_b = np.linalg.solve(chol.T, coef.T).T         # B = C·L_g⁻¹
    coef_b[:, free_g] = 0.0
    coef_b[free_l, :] = 0.0
    chol = np.linalg.cholesky(unit_block(chol @ chol.T, free_g))
    return (np.where(free, 0.0, mu), chol, coef_b @ chol, np.where(free_l, 1.0, scale))


def to_position(y, pre, xp=np):
    """x from y (..., d) under the preconditioner ``pre``; ``xp``: numpy or jax.numpy."""
    mu, chol, coef, scale = pre
    d_global = chol.shape[-1]
    y_g, y_l = y[..., :d_global], y[..., d_global:]
    return mu + xp.concatenate([y_g @ chol.T, y_g @ coef.T + scale * y_l], axis=-1)


def from_position(x: np.ndarray, pre: tuple) -> np.ndarray:
    """y from x (..., d): the inverse of :func:`to_position` (NumPy)."""
    mu, chol, coef, scale = pre
    d_global = chol.shape[-1]
    c = np.asarray(x) - mu
    y_g = np.linalg.solve(chol, np.moveaxis(c[..., :d_global], -1, 0).reshape(d_global, -1))
    y_g = np.moveaxis(y_g.reshape((d_global,) + c.shape[:-1]), 0, -1)
    return np.concatenate([y_g, (c[..., d_global:] - y_g @ coef.T) / scale], axis=-1)
