"""The conditional metric (bayes_densing/sampling/conditional_metric.py): dense over the global
parameters, each target's latent regressed on them. Its estimate must recover a covariance of
that structure, its map must be invertible, and NUTS under it must find a model's truth."""

import numpy as np
import pytest

from bayes_densing.inference import bridge
from bayes_densing.sampling import conditional_metric, dense_nuts


def star_covariance(d_global: int, d_latent: int, seed: int = 0) -> np.ndarray:
    """A covariance whose latents are independent given the globals (the model's structure),
    with globals correlated among themselves and latents on scales from 0.05 to 5."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d_global, d_global))
    cov_g = a @ a.T / d_global + np.diag(rng.uniform(0.1, 1.0, d_global))
    b = rng.normal(size=(d_latent, d_global))
    s = np.geomspace(0.05, 5.0, d_latent)
    cov = np.zeros((d_global + d_latent,) * 2)
    cov[:d_global, :d_global] = cov_g
    cov[d_global:, :d_global] = b @ cov_g
    cov[:d_global, d_global:] = cov[d_global:, :d_global].T
    cov[d_global:, d_global:] = b @ cov_g @ b.T + np.diag(s ** 2)
    return cov


def implied_covariance(pre) -> np.ndarray:
    """L·Lᵀ of a preconditioner, from its map applied to the identity."""
    d = len(pre[0])
    lower = conditional_metric.to_position(np.eye(d), pre) - pre[0]
    return lower.T @ lower


def test_the_estimate_recovers_a_covariance_of_the_model_s_structure():
    true = star_covariance(4, 30)
    rng = np.random.default_rng(1)
    mean = rng.normal(size=34)
    draws = rng.multivariate_normal(mean, true, size=200000)
    pre = conditional_metric.estimate(draws, 4)
    np.testing.assert_allclose(pre[0], mean, atol=0.05)
    got = implied_covariance(pre)
    scale = np.sqrt(np.outer(np.diag(true), np.diag(true)))
    assert np.max(np.abs(got - true) / scale) < 0.03           # every correlation within 0.03
    np.testing.assert_allclose(np.diag(got), np.diag(true), rtol=0.03)


def test_the_estimate_from_few_draws_is_positive_definite_and_shrunk():
    """n < d: the dense sample covariance would be singular; every conditional variance stays
    positive, and the regression is shrunk, not grown."""
    rng = np.random.default_rng(2)
    draws = rng.normal(size=(40, 60)) * np.geomspace(0.01, 10, 60)
    pre = conditional_metric.estimate(draws, 10)
    assert np.all(pre[3] > 0)
    np.linalg.cholesky(implied_covariance(pre))                   # raises if not PD
    implied, var = np.diag(implied_covariance(pre)), dense_nuts.shrunk_variance(draws)
    np.testing.assert_allclose(implied[:10], var[:10], rtol=1e-9)       # the globals' scales
    # a latent's variance is at most its own: the shrunk regression's residual is added to
    # the part the regression explains, never more than the whole
    assert np.all(implied[10:] <= var[10:] * (1 + 1e-9))


def test_scales_only_gives_the_variances_and_no_correlation():
    rng = np.random.default_rng(3)
    draws = rng.multivariate_normal(np.zeros(6), star_covariance(2, 4), size=500)
    got = implied_covariance(conditional_metric.estimate(draws, 2, scales_only=True))
    np.testing.assert_allclose(got, np.diag(dense_nuts.shrunk_variance(draws)), atol=1e-12)


def test_the_map_and_its_inverse_agree_on_batches():
    rng = np.random.default_rng(4)
    draws = rng.multivariate_normal(np.ones(8), star_covariance(3, 5), size=300)
    pre = conditional_metric.estimate(draws, 3)
    x = rng.normal(size=(2, 4, 8))
    y = conditional_metric.from_position(x, pre)
    assert y.shape == x.shape
    np.testing.assert_allclose(conditional_metric.to_position(y, pre), x, atol=1e-10)
    # whitening: the draws' own y have the identity covariance, roughly
    white = conditional_metric.from_position(draws, pre)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(8), atol=0.25)


@pytest.mark.parametrize("mass_matrix, d, layout", [
    ("auto", dense_nuts.DENSE_UP_TO, "dense"), ("auto", dense_nuts.DENSE_UP_TO + 1, "conditional"),
    ("dense", 10_000, "dense"), ("conditional", 3, "conditional"), ("diag", 10, "diag")])
def test_auto_is_dense_for_small_models_and_conditional_for_large(mass_matrix, d, layout):
    assert dense_nuts.metric_layout(mass_matrix, d) == layout


def test_a_conditional_metric_fit_finds_the_truth(synth, small_config):
    """The real model under the conditional metric: the latents (one per target) follow the
    globals, the draws are in the model's own coordinates, and the doubling time is near the
    truth with no divergences."""
    from bayes_densing import run
    from bayes_densing.data import load
    from bayes_densing.inference.sample import diagnose

    cfg = small_config(draws=150, tune=150)
    cfg.set("sampler.mass_matrix", "conditional")
    fit = run.fit(cfg, data=load(cfg, synth.csv), progressbar=False)
    assert fit.diagnostics["mass_matrix"] == "conditional"
    post = fit.idata.posterior
    assert post.attrs["mass_matrix"].startswith("conditional")
    d = diagnose(fit.idata, ["A", "B_centre", "sigma_v", "z_centre"])
    assert d["divergences"] == 0 and d["max_rhat"] < 1.05, d
    lo, hi = np.quantile(post["doubling_months"].values, [0.01, 0.99])
    assert lo < synth.truth["doubling_months"] < hi, (lo, hi)
    # the latents' draws are on the model's scale (x, not the whitened y): their spread
    # across targets is that of the targets' log densities, not of standard normals
    assert post["log_density"].std(dim="target").mean() > 0.3


def test_a_cold_start_of_the_conditional_metric_first_climbs_the_log_density():
    """``Sampler.optimise``: ADAM_STEPS of Adam from each chain's start, the start kept where
    the end is not higher. On N(0, I) from 4 (and one start already at the mode) every chain
    ends near the mode."""
    import pymc as pm

    from bayes_densing.config import SamplerConfig

    with pm.Model() as model:
        pm.Normal("x", shape=3)
    sampler = bridge.sampler(model, SamplerConfig(chains=2, mass_matrix="conditional"))
    z = sampler.spread(np.array([[4.0, -4.0, 4.0], [0.0, 0.0, 0.0]]))
    end = np.asarray(sampler.optimise(z, sampler.per_chain(())))
    moved = sampler.gather(end)
    assert np.all(np.abs(moved) < 0.3), moved
    assert np.all(moved[1] == 0.0)


def test_the_curvature_of_a_gaussian_gives_its_covariance():
    """``from_curvature``: from the precision's rows of the globals and the latents' diagonal
    (all of their block, for this structure), the exact covariance."""
    true = star_covariance(5, 40, seed=3)
    precision = np.linalg.inv(true)
    assert np.allclose(precision[5:, 5:], np.diag(np.diag(precision)[5:]), atol=1e-8)
    mean = np.arange(45.0)
    pre = conditional_metric.from_curvature(mean, precision[:5], np.diag(precision)[5:])
    np.testing.assert_array_equal(pre[0], mean)
    np.testing.assert_allclose(implied_covariance(pre), true, rtol=1e-6, atol=1e-6)


def test_negative_or_missing_curvature_still_gives_a_positive_definite_metric():
    """Away from a mode: a latent with curvature ≤ 0 or NaN keeps its unit scale and no
    regression; a Schur complement with a negative eigenvalue is taken by its magnitude."""
    h_global = np.array([[2.0, 0.0, 0.5, 0.1, 0.3],
                         [0.0, -1.0, 0.2, 0.0, 0.0]])
    h_diag = np.array([4.0, -3.0, np.nan])
    pre = conditional_metric.from_curvature(np.zeros(5), h_global, h_diag)
    np.linalg.cholesky(implied_covariance(pre))                   # raises if not PD
    np.testing.assert_allclose(pre[3], [0.5, 1.0, 1.0])
    np.testing.assert_array_equal(pre[2][1:], 0.0)
    assert np.all(np.isfinite(pre[1]))
    # a curvature that is not finite (here of a global, and a NaN latent's column) counts as none
    h_global[1, 1], h_global[0, 4] = np.nan, np.inf
    pre = conditional_metric.from_curvature(np.zeros(5), h_global, h_diag)
    assert all(np.all(np.isfinite(a)) for a in pre)
    np.linalg.cholesky(implied_covariance(pre))


def test_with_unit_frees_coordinates_and_keeps_the_rest_of_the_structure():
    """``with_unit``: the freed globals and latents become independent unit normals centred on
    0; the other globals keep their covariance, the other latents their regression on the
    other globals and their conditional scale."""
    d_g, d_l = 4, 6
    true = star_covariance(d_g, d_l, seed=5)
    pre = conditional_metric.from_curvature(np.arange(10.0), np.linalg.inv(true)[:d_g],
                                            np.diag(np.linalg.inv(true))[d_g:])
    free = np.zeros(d_g + d_l, bool)
    free[[1, d_g + 2, d_g + 5]] = True
    out = conditional_metric.with_unit(pre, free)
    mu, chol, coef, scale = pre
    cov_g = chol @ chol.T
    b = coef @ np.linalg.inv(chol)
    keep_g = ~free[:d_g]
    cov_g_new = np.eye(d_g)
    cov_g_new[np.ix_(keep_g, keep_g)] = cov_g[np.ix_(keep_g, keep_g)]
    b_new = np.where(keep_g[None, :] & ~free[d_g:, None], b, 0.0)
    s_new = np.where(free[d_g:], 1.0, scale)
    expected = np.zeros((d_g + d_l,) * 2)
    expected[:d_g, :d_g] = cov_g_new
    expected[d_g:, :d_g] = b_new @ cov_g_new
    expected[:d_g, d_g:] = expected[d_g:, :d_g].T
    expected[d_g:, d_g:] = b_new @ cov_g_new @ b_new.T + np.diag(s_new ** 2)
    np.testing.assert_allclose(implied_covariance(out), expected, atol=1e-10)
    np.testing.assert_array_equal(out[0], np.where(free, 0.0, mu))


def test_the_sampler_s_curvature_is_the_log_density_s_hessian():
    """``Sampler.laplace`` on a Gaussian model with two globals and five targets' latents
    (whose precision is exactly the model's structure): the metric is the inverse Hessian."""
    import jax
    import pymc as pm

    from bayes_densing.config import SamplerConfig

    with pm.Model(coords={"target": range(5)}) as model:
        g = pm.Normal("g", 0.0, [1.0, 2.0])
        pm.Normal("latent", g[0] + 0.5 * g[1], np.linspace(0.2, 1.0, 5), dims="target")
    sampler = bridge.sampler(model, SamplerConfig(chains=2, mass_matrix="conditional"))
    assert (sampler.d, sampler.d_global) == (7, 2)
    x = np.array([0.3, -0.2, 1.0, 0.0, -1.0, 2.0, 0.5])
    pre = sampler.laplace(sampler.spread(np.stack([x, x + 1.0])), sampler.per_chain(()))
    hessian = np.asarray(jax.hessian(sampler.potential)(x))
    np.testing.assert_allclose(implied_covariance(pre), np.linalg.inv(hessian), rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(pre[0], x + 0.5)                       # the chains' mean


def test_a_cold_conditional_start_begins_from_the_curvature_uncapped(monkeypatch):
    """A cold start of the conditional metric climbs, then starts from ``Sampler.laplace`` at
    the climbed positions, with no capped trees and no scales-only window after it: every
    window's end re-estimates the full preconditioner."""
    import pymc as pm

    from bayes_densing.config import SamplerConfig

    with pm.Model(coords={"target": range(3)}) as model:
        g = pm.Normal("g")
        pm.Normal("latent", g, 0.5, dims="target")
    sampler = bridge.sampler(model, SamplerConfig(chains=2, draws=40, tune=400,
                                                      mass_matrix="conditional"))
    updates = dense_nuts.metric_updates(400 // sampler.length)
    asked, scales_only, laplace = [], [], []
    start, metric, curvature = sampler.start, sampler.metric, sampler.laplace

    def spy_start(*a):
        asked.append((a[3], a[5] if len(a) > 5 else 0))
        return start(*a)

    def spy_metric(chains, **kw):
        if np.size(chains):                               # (not the identity's)
            scales_only.append(kw.get("scales_only", False))
        return metric(chains, **kw)

    def spy_laplace(*a):
        laplace.append(curvature(*a))
        return laplace[-1]
    monkeypatch.setattr(sampler, "start", spy_start)
    monkeypatch.setattr(sampler, "metric", spy_metric)
    monkeypatch.setattr(sampler, "laplace", spy_laplace)
    draws = sampler.run([{"g": np.array(3.0), "latent": np.full(3, -2.0)}] * 2, seed=0,
                        progressbar=False)
    assert len(laplace) == 1 and asked[0][0] is laplace[0]
    # the model's exact covariance: g ~ N(0, 1), latent_i = g + N(0, 0.5²)
    np.testing.assert_allclose(implied_covariance(laplace[0]),
                               np.block([[np.ones((1, 1)), np.ones((1, 3))],
                                         [np.ones((3, 1)), np.ones((3, 3)) + 0.25 * np.eye(3)]]),
                               atol=1e-9)
    assert [capped for _, capped in asked] == [0] * (len(updates) + 1)
    assert scales_only == [False] * len(updates)
    assert abs(float(np.mean(draws.z["g"]))) < 0.5
