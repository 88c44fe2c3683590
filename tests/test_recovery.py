"""Recovery of known parameters from simulated data (small CI version of benchmarks/interval_coverage.py).

The full check (20 seeded datasets × 60 models × 5 benchmarks, 4×1000 draws) is
`python benchmarks/interval_coverage.py`, recorded in benchmarks/README.md; `-m slow` runs a larger
version here.
"""

import numpy as np
import pytest

from bayes_densing.analyses.calibration import recover
from bayes_densing.config import Config


def small_config(draws=400, tune=400, chains=2):
    cfg = Config()
    # the joint: four fixed datasets are a check of the model, not a coverage estimate, and the
    # cut's calibration is the SBC's (test_sbc.py; the same seeds: benchmarks/README.md)
    cfg.set("model.curves", "joint")
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = chains, draws, tune
    return cfg


@pytest.fixture(scope="module")
def runs():
    cfg = small_config()
    return [recover(seed, n_models=40, n_benchmarks=3, config=cfg) for seed in (11, 12, 13, 14)]


def test_slope_interval_covers_the_truth(runs):
    # four fixed seeds: the 90% interval of the frontier slope covers the true A in at least 3
    # (a calibrated model misses all but ≤ 1 of 4 with probability 0.95)
    assert sum(r["A_covered"] for r in runs) >= 3
    for r in runs:
        assert r["A_median"] == pytest.approx(r["true_A"], rel=0.35)


def test_effective_sizes_are_recovered(runs):
    covered = sum(r["eta_covered"] for r in runs)
    total = sum(r["n_targets"] for r in runs)
    # pooled coverage of 160 nominal-90% intervals: gross miscalibration falls outside
    assert 0.78 <= covered / total <= 0.98
    assert max(r["eta_abs_error"] for r in runs) < 0.5  # median |error| in ln N̂


def test_no_divergences_on_synthetic_data(runs):
    assert all(r["divergences"] == 0 for r in runs)
    assert max(r["max_rhat"] for r in runs) < 1.05  # short chains; full runs meet 1.01


@pytest.mark.slow
def test_coverage_over_twenty_seeds():
    cfg = small_config(draws=1000, tune=1000, chains=4)
    rows = [recover(seed, config=cfg) for seed in range(1, 21)]
    slope = np.mean([r["A_covered"] for r in rows])
    eta = sum(r["eta_covered"] for r in rows) / sum(r["n_targets"] for r in rows)
    assert 0.75 <= slope <= 1.0
    assert 0.85 <= eta <= 0.95
