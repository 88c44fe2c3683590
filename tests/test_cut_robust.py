"""The cut under the robust likelihood: each module has its own outlier rate. Apart from
``test_cut.py`` (same design and settings) so that the two run on different test workers."""

import numpy as np
import pytest
from scipy.special import expit

from bayes_densing.inference import cut
from bayes_densing.analyses import sbc

from test_cut import SEED, _config


@pytest.fixture(scope="module")
def design():
    return sbc.design(n_targets=12, n_benchmarks=3, seed=0, config=_config())


def test_the_robust_likelihood_gives_each_module_its_own_outlier_rate(design):
    """Under the robust likelihood the references' outlier rate is a curve parameter and the
    targets' a target one; the cut samples with it (curve fit, warm-up, nested runs)."""
    cfg = _config()
    cfg.set("model.likelihood", "robust")
    cfg.sampler.draws, cfg.sampler.tune = 150, 150
    sampler = cut.CutSampler(design, cfg.validate())
    assert "outlier_rate_target_logodds__" in sampler.psi
    assert "outlier_rate_reference_logodds__" in [v.name for v in sampler.theta]
    curve = sampler.curves(SEED)
    warm = sampler.warm_up(curve, SEED)
    keep = cut.kept_draws(150, 2, 100)
    idata = sampler.conditional(curve, warm, keep, 5, SEED)
    rates = idata.posterior.to_dataset()[["outlier_rate_reference", "outlier_rate_target"]]
    assert all(((v > 0) & (v < 1)).all() for v in rates.data_vars.values())
    # the references' rate is the curve fit's own draws, whatever the targets' runs did
    np.testing.assert_allclose(rates["outlier_rate_reference"].values,
                               expit(curve.z["outlier_rate_reference_logodds__"][:, keep]),
                               rtol=1e-6)
