"""Recovery of known parameters from simulated data: does a 90% interval cover the truth 90% of
the time?

Used by ``benchmarks/interval_coverage.py`` (many seeds, full chains) and by the test suite (a few seeds,
short chains). Intervals are central (equal-tailed) posterior intervals, whose coverage of a
fixed truth is the textbook check; the run summaries report HDIs.
"""

from __future__ import annotations

import numpy as np

from bayes_densing.config import Config
from bayes_densing.data import assemble
from bayes_densing.results import draws
from bayes_densing.model.simulate import simulate


def central_interval(x: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    q = (1.0 - prob) / 2.0
    return np.quantile(x, q, axis=axis), np.quantile(x, 1.0 - q, axis=axis)


def recover(seed: int, *, n_models: int = 60, n_benchmarks: int = 5, doubling_months: float = 3.3,
            config: Config | None = None, prob: float = 0.9) -> dict:
    """Simulate one dataset with ``seed``, fit it, and report what the intervals cover."""
    from bayes_densing.run import fit

    config = config or Config()
    df, truth = simulate(n_models, n_benchmarks, doubling_months, seed=seed, config=config)
    df = df.copy()
    df["release_date"] = df.release_date.astype("datetime64[ns]")
    df["line"] = np.arange(len(df)) + 2
    data = assemble(df, config, source=f"simulated seed {seed}", reference="")
    result = fit(config, data=data, progressbar=False)
    A = draws(result.idata, "A")
    lo, hi = central_interval(A, prob)
    eta = draws(result.idata, "log_effective_size")
    names = data.targets.model.tolist()
    true_eta = np.array([truth["targets"][m]["log_effective_size"] for m in names])
    e_lo, e_hi = central_interval(eta, prob)
    covered = (e_lo <= true_eta) & (true_eta <= e_hi)
    return {
        "seed": seed, "true_A": truth["A"], "A_median": float(np.median(A)),
        "A_low": float(lo), "A_high": float(hi), "A_covered": bool(lo <= truth["A"] <= hi),
        "doubling_median": float(np.log(2) / np.median(A)),
        "eta_coverage": float(covered.mean()), "eta_covered": int(covered.sum()),
        "n_targets": len(names),
        "eta_abs_error": float(np.median(np.abs(np.median(eta, 0) - true_eta))),
        "divergences": result.diagnostics["divergences"],
        "max_rhat": result.diagnostics["max_rhat"], "wall_s": result.diagnostics["wall_s"],
    }
