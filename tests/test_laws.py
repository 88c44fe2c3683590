import math

import numpy as np
import pytest
from scipy import stats

from bayes_densing.model import laws

LAW = dict(a=1.3, alpha=0.34, b=0.5, beta=0.28, E=0.2)
MAP = dict(c=0.7, gamma=4.0, l=1.9, d=0.25)


def test_loss_law_inverse_is_identity_on_grid():
    N = np.geomspace(0.05, 2000, 60)
    D = np.array([0.3, 1.0, 15.0])[:, None]
    L = laws.loss_law(N, D, **LAW)
    np.testing.assert_allclose(laws.loss_law_size(L, D, **LAW), np.broadcast_to(N, L.shape),
                               rtol=1e-9)


def test_performance_inverse_is_identity_on_grid():
    L = np.linspace(1.2, 2.6, 80)
    S = laws.performance(L, **MAP)
    assert np.all((S > MAP["d"]) & (S < MAP["d"] + MAP["c"]))
    np.testing.assert_allclose(laws.performance_loss(S, **MAP), L, rtol=1e-9)


def test_effective_size_of_reference_model_is_its_own_size():
    # a reference model trained on D0 tokens: its score inverts back to its own size
    d0 = 1.0
    for N in (0.5, 7.0, 110.0):
        S = laws.performance(laws.loss_law(N, d0, **LAW), **MAP)
        got = laws.effective_size(S, d0=d0, **LAW, **MAP)
        assert got == pytest.approx(N, rel=1e-8)


def test_more_training_data_gives_larger_effective_size():
    S = laws.performance(laws.loss_law(7.0, 4.0, **LAW), **MAP)
    assert laws.effective_size(S, d0=1.0, **LAW, **MAP) > 7.0


def test_sigmoid_through_has_the_given_level_and_gain():
    L_low, L_high, L_mid = 2.4, 1.5, 1.8
    l, gamma = laws.sigmoid_through(0.3, L_mid, 2.9, L_low, L_high)
    z = lambda L: gamma * (l - L)  # noqa: E731
    assert z(L_mid) == pytest.approx(0.3)
    assert z(L_high) - z(L_low) == pytest.approx(2.9)
    assert gamma > 0


def test_laws_agree_across_numpy_jax_and_pytensor():
    import jax.numpy as jnp
    import pytensor.tensor as pt

    N = np.geomspace(0.1, 100, 7)
    want = laws.performance(laws.loss_law(N, 1.0, **LAW), **MAP)
    got_jax = laws.performance(laws.loss_law(jnp.asarray(N), 1.0, **LAW), **MAP)
    got_pt = laws.performance(laws.loss_law(pt.as_tensor(N), 1.0, **LAW), **MAP).eval()
    np.testing.assert_allclose(np.asarray(got_jax), want, rtol=1e-6)
    np.testing.assert_allclose(got_pt, want, rtol=1e-12)


def test_frontier_composed_error_is_the_skew_normal():
    rng = np.random.default_rng(3)
    sv, su = 0.3, 0.8
    eps = rng.normal(0, sv, 200_000) - np.abs(rng.normal(0, su, 200_000))
    omega, shape = laws.frontier_skewnormal(sv, su)
    ks = stats.kstest(eps, stats.skewnorm(shape, loc=0, scale=omega).cdf)
    assert ks.pvalue > 0.01
    assert eps.mean() == pytest.approx(-su * math.sqrt(2 / math.pi), abs=0.01)


def test_envelope_mask_follows_running_maximum():
    t = np.array([0, 1, 2, 3, 4, 4])
    y = np.array([0.0, -1.0, 0.5, 0.4, 1.0, 0.9])
    assert laws.envelope_mask(t, y).tolist() == [True, False, True, False, True, False]
    # vectorised over draws, order of models irrelevant
    perm = np.array([3, 0, 5, 1, 4, 2])
    batch = np.stack([y, y - t])
    got = laws.envelope_mask(t[perm], batch[:, perm])
    assert got[0].tolist() == laws.envelope_mask(t, y)[perm].tolist()
    assert got[1].tolist() == laws.envelope_mask(t, y - t)[perm].tolist()


def test_envelope_trend_recovers_slope_of_exact_line():
    t = np.linspace(0, 20, 15)
    A, B = laws.envelope_trend(t, 0.2 * t - 1.0)
    assert A == pytest.approx(0.2) and B == pytest.approx(-1.0)


def test_doubling_time_and_changepoint():
    assert laws.doubling_time(math.log(2) / 3.3) == pytest.approx(3.3)
    t = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(laws.changepoint_mean(t, 0.1, 0.3, 1.0, 0.0), [0.8, 1.0, 1.9])


def testbetabinomial_logp_matches_scipy():
    import pytensor.tensor as pt
    from scipy.special import gammaln

    from bayes_densing.model.likelihood import betabinomial_logp

    rng = np.random.default_rng(0)
    n = np.array([100, 1319, 1319, 100, 14042, 14042.0])
    k = np.array([0, 7, 1319, 55, 3, 14042])
    p, phi = rng.uniform(0.01, 0.99, 6), np.array([5.0, 300.0, 50.0, 7.0, 900.0, 2.0])
    binomln = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    got = betabinomial_logp(k, n, pt.as_tensor(p), pt.as_tensor(phi), binomln).eval()
    want = stats.betabinom.logpmf(k, n, p * phi, (1 - p) * phi)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_fused_gammaln_matches_scipy():
    """ln Γ(x) alone, as ``gammaln_difference(x, 1)`` (ln Γ(1) = 0)."""
    import pytensor.tensor as pt
    from scipy.special import gammaln

    from bayes_densing.model.likelihood import gammaln_difference

    x = np.geomspace(1e-6, 1e5, 5000)
    got = gammaln_difference(pt.as_tensor(x), 1.0).eval()
    np.testing.assert_allclose(got, gammaln(x), rtol=0, atol=1e-9)
    np.testing.assert_allclose(gammaln_difference(x, 1.0), gammaln(x), rtol=0, atol=1e-9)


def test_the_log_gamma_difference_matches_scipy():
    """``gammaln_difference(x, y)`` = ln Γ(x) − ln Γ(y) with one logarithm for both shifts:
    as accurate as the two log-gammas apart over the beta-binomial's range (counts up to MMLU's
    14,042 items, shape parameters from 1e-6), in PyTensor and NumPy."""
    import pytensor.tensor as pt
    from scipy.special import gammaln

    from bayes_densing.model.likelihood import gammaln_difference

    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(np.log(1e-6), np.log(1e5), 5000))
    y = np.exp(rng.uniform(np.log(1e-6), np.log(1e5), 5000))
    k = rng.integers(0, 14043, 5000).astype(float)
    want = gammaln(x) - gammaln(y)
    np.testing.assert_allclose(gammaln_difference(pt.as_tensor(x), pt.as_tensor(y)).eval(), want,
                               rtol=1e-12, atol=2e-9)
    np.testing.assert_allclose(gammaln_difference(k + x, x), gammaln(k + x) - gammaln(x),
                               rtol=1e-12, atol=2e-9)


def test_the_concentration_term_is_evaluated_per_phi_and_n_and_gathered(synthetic):
    """``model.concentration_term``: ln Γ(φ) − ln Γ(n + φ) of every observation, from one
    evaluation per distinct (φ, n): one per benchmark and family with the data's n, and still
    right when n differs within a benchmark."""
    import pytensor.tensor as pt
    from scipy.special import gammaln

    from bayes_densing.config import Config
    from bayes_densing.data import assemble
    from bayes_densing.model.likelihood import concentration_index, concentration_term

    df, _ = synthetic()
    data = assemble(df, Config(), source="test")
    index, n = concentration_index(data), data.obs.n.to_numpy()
    assert len(set(zip(index, n))) <= 2 * len(data.benchmarks) < len(n) / 4
    phi_ref, phi_tgt = np.array([30.0, 800.0]), np.array([4.0, 55.0])
    phi = np.concatenate([phi_ref, phi_tgt])[index]
    for items in (n, n + 7.0 * (np.arange(len(n)) % 3 == 0)):
        got = concentration_term(pt.as_tensor(phi_ref), pt.as_tensor(phi_tgt), data, items).eval()
        np.testing.assert_allclose(got, gammaln(phi) - gammaln(items + phi), rtol=1e-10)
