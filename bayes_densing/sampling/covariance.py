"""The metric's covariance estimates: shrunk towards the diagonal for short windows, and
regularised as Stan does."""

from __future__ import annotations

import numpy as np


def shrunk_covariance(draws: np.ndarray, weight: float | None = None) -> np.ndarray:
    """Covariance of ``draws`` (n × d), its off-diagonal shrunk towards zero by d / (n + d)
    (or by ``weight``).

    With n ≫ d the sample covariance is kept almost as it is; with n ≈ d (short runs) half of
    the off-diagonal is kept, so the metric stays positive definite and well-conditioned.
    """
    n, d = draws.shape
    _two_or_more(n)
    cov = np.atleast_2d(np.cov(draws, rowvar=False))
    weight = d / (n + d) if weight is None else weight
    shrunk = (1.0 - weight) * cov + weight * np.diag(np.diag(cov))
    return regularised(shrunk, n, np.eye(d))


def shrunk_variance(draws: np.ndarray) -> np.ndarray:
    """The diagonal of :func:`shrunk_covariance` (the variances, regularised alike), without
    forming the d × d covariance."""
    n = draws.shape[0]
    _two_or_more(n)
    return regularised(np.var(draws, axis=0, ddof=1), n, 1.0)


def _two_or_more(n: int) -> None:
    # a variance from one draw divides by n − 1 = 0: a NaN metric, then NaN draws
    if n < 2:
        raise ValueError(f"a covariance needs at least 2 draws, got {n}")


def regularised(cov, n: int, unit):
    """Stan's regularisation of a covariance estimated from n draws (``unit``: its identity,
    1.0 for variances, 0.0 for a block off the diagonal), so a coordinate that did not move
    keeps a usable scale."""
    return (n / (n + 5.0)) * cov + 1e-3 * (5.0 / (n + 5.0)) * unit
