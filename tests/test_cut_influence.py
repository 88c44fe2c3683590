"""Leave-one-model-out and power-scaling of a cut run within each curve draw
(``analyses/stratified.py``).

The identities first (the numpy trend prior is the model's; the grid integral; the LOO
averages over curve draws and is harmonic only within one; the power-scaling keeps each curve
draw's weight), then, on a small simulated design, the answers against the refits they
predict: a target left out by weights (the curves reused) has the predictive density and the
doubling time the importance sampling gave.
"""

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from bayes_densing import results
from bayes_densing.analyses import sbc
from bayes_densing.analyses import influence as inf
from bayes_densing.analyses import stratified
from bayes_densing.analyses.prior_sensitivity import power_scale_weights, prior_sensitivity
from test_cut import _config   # the small cut design's settings


@pytest.mark.parametrize("fixture", ["lib_run", "changepoint_fit"])
def test_the_numpy_trend_prior_is_the_models(fixture, request):
    """Summed over the targets, results.trend_prior_logpdf at the draws' ln ρ is the model's
    own trend_prior term of every draw (frontier, and the changepoint's broken line)."""
    run = results.load_run(request.getfixturevalue(fixture).out)
    rho = results.draws(run.idata, "log_density")
    ours = results.trend_prior_logpdf(run.idata, run.config, results.target_times(run.idata),
                                      rho).sum(axis=-1)
    np.testing.assert_allclose(ours, run.idata.log_prior["trend_prior"].values.reshape(-1),
                               rtol=1e-6, atol=1e-5)


def test_the_grid_integral_is_exact_for_exponential_tails_and_close_at_a_peak():
    stretch = stratified.B * np.sinh(np.linspace(-1, 1, stratified.GRID)
                                     * np.arcsinh(stratified.REACH / stratified.B))
    x = (0.3 * stretch)[:, None]                               # a grid of sd 0.3 units
    gauss = -0.5 * (x / 0.3) ** 2 - math.log(0.3 * math.sqrt(2 * math.pi))
    assert stratified.log_integral(x, gauss[None])[0, 0] == pytest.approx(0.0, abs=5e-3)
    slope = np.where(x < 0, 1.5 * x, -1.5 * x)                 # two exponential tails
    assert stratified.log_integral(x, slope[None])[0, 0] == pytest.approx(
        math.log(2 / 1.5), abs=1e-9)


def test_the_loo_is_arithmetic_over_curve_draws_and_harmonic_within():
    """Three strata whose log-likelihoods differ by 2: the LOO density is the mean over strata
    of each stratum's harmonic mean; pooling them all (plain PSIS) gives a harmonic mean over
    the strata too, nearly 2 nats lower here."""
    rng = np.random.default_rng(0)
    ll = np.stack([rng.normal(m, 0.1, size=(400, 1)) for m in (0.0, -2.0, -4.0)])
    loo = stratified.within_loo(ll)
    harmonic = -logsumexp(-ll, axis=1) + math.log(400)          # per stratum
    expected = logsumexp(harmonic) - math.log(3)
    assert loo["elpd_i"][0] == pytest.approx(expected, abs=2e-3)
    pooled = -logsumexp(-ll.ravel()) + math.log(ll.size)
    assert loo["elpd_i"][0] - pooled > 1.5
    assert np.allclose(np.exp(loo["log_weights"]).sum(axis=2), 1.0)
    assert loo["pareto_k"][0] < 0.5


def test_power_scaling_the_target_module_keeps_each_curve_draws_weight():
    """The target module's prior terms are normalised within each stratum: scaled alone, every
    stratum keeps 1/S of the weight; the curves' terms move weight between strata."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 500)
    given = rng.normal(0.0, 1.0, labels.size) + labels            # differs between strata too
    w, k = power_scale_weights(given, 1.25, labels, given)
    assert np.allclose(np.bincount(labels, w), 0.25, atol=0.01) and k < 0.7
    w_pooled, _ = power_scale_weights(given, 1.25)                  # the joint's: not so
    assert np.bincount(labels, w_pooled)[3] > 0.33          # e^0.75 / Σ e^(l/4) = 0.35
    curve = labels * 0.5
    w, _ = power_scale_weights(curve + given, 2.0, labels, given)
    share = np.exp(curve[::500]) / np.exp(curve[::500]).sum()
    np.testing.assert_allclose(np.bincount(labels, w), share, atol=0.01)


# --- a small cut run ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    from bayes_densing.run import fit

    design = sbc.design(n_targets=12, n_benchmarks=3, seed=0, config=_config())
    out = tmp_path_factory.mktemp("cut_influence") / "run"
    fit(_config(), data=design, out=out, progressbar=False, figures=False)
    return results.load_run(out)


@pytest.fixture(scope="module")
def strata(cut_run):
    return stratified.Strata(inf.run_data(cut_run.idata, cut_run.config), cut_run.config)


def test_the_strata_reuse_the_runs_curve_draws(cut_run, strata):
    """Same seed, same curve fit: each stratum's θ is one of the run's own curve draws."""
    post = strata.idata.posterior
    run_z = cut_run.idata.posterior["z_centre"]
    for c in range(0, post.sizes["chain"], 7):
        chain, draw = int(post.curve_chain[c]), int(post.curve_draw[c])
        at = np.flatnonzero(run_z.curve_draw.values == draw)
        if at.size:                  # the strata's curve draws are spread, the run's thinned
            np.testing.assert_array_equal(post["z_centre"].values[c, 0],
                                          run_z.values[chain, at[0]])
        assert np.ptp(post["z_centre"].values[c], axis=0).max() == 0.0


def test_a_targets_loo_predicts_its_refit_with_the_curves_reused(strata):
    """For the target that moves the doubling time most: its LOO density is the refit's
    predictive density of its scores (within Monte Carlo error), and the refit moves the
    doubling time the way the importance sampling said."""
    rows = stratified.target_rows(strata)
    assert np.isfinite(rows.pareto_k).all()
    top = rows.iloc[int(np.argmax(np.abs(rows.loo_shift)))]
    i = strata.data.targets.model.tolist().index(top.model)
    refit = stratified.refit_without_target(strata, top.model)
    assert refit["divergences"] == 0
    rho = strata.idata.posterior["log_density"].values.reshape(-1, strata.data.n_target)
    ll = stratified.integrated_loglik(refit["idata"], strata.data, strata.config,
                                      grid_at=(rho.mean(axis=0), rho.std(axis=0)))[:, i]
    direct = logsumexp(ll) - math.log(ll.size)
    # 80 draws a curve draw: on this design leaving one of 12 targets out moves the trend
    # far (Pareto k up to 0.7); with 20, the IS answers were half-way back to no move
    assert top.elpd_loo_i == pytest.approx(direct, abs=0.1)
    base = results.doubling_median(results.draws(strata.idata, "A"), np.ones(rho.shape[0]))
    moved = refit["doubling"]["median_months"] - base
    assert np.sign(moved) == np.sign(top.loo_shift)
    assert abs(moved - top.loo_shift) < 0.5 * abs(top.loo_shift) + 0.05, (moved, top.loo_shift)


def test_influence_and_power_scaling_of_a_cut_run(cut_run, tmp_path):
    result = inf.influence(cut_run, refit=True, max_refits=1)
    t = result.table
    assert list(t.columns) == inf.TABLE_COLUMNS
    assert np.isfinite(t.loo_shift).all() and t.doubling_median.notna().sum() == 1
    assert any("within each of" in n for n in result.notes)
    assert "ΔT (IS)" in result.text()
    ps = prior_sensitivity(cut_run.idata, inf.run_data(cut_run.idata, cut_run.config),
                           cut_run.config)
    assert any("cut run" in n for n in ps.notes)
    assert np.isfinite(ps.table.prior).all() and ps.doubling["median_months"] > 0
