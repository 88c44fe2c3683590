"""The dense-metric sampler (``sampler.mass_matrix = "dense"``, bayes_densing/sampling/dense_nuts.py):
its metric estimate, its warm-up schedule, and a real fit that must give the same kind of
InferenceData as PyMC's NumPyro bridge, reproducibly, with the doubling time near the truth."""

import numpy as np
import pytest

from bayes_densing.inference import bridge
from bayes_densing import run
from bayes_densing.sampling import dense_nuts
from bayes_densing.data import load
from bayes_densing.inference.sample import diagnose


def test_covariance_is_kept_with_many_draws_and_stays_positive_definite_with_few():
    rng = np.random.default_rng(0)
    true = np.array([[4.0, 1.2, 0.0], [1.2, 1.0, 0.3], [0.0, 0.3, 0.25]])
    many = rng.multivariate_normal(np.zeros(3), true, size=100000)
    np.testing.assert_allclose(dense_nuts.shrunk_covariance(many), true, atol=0.06)
    few = rng.normal(size=(20, 50)) * np.linspace(0.1, 10, 50)      # n < d: singular sample cov
    est = dense_nuts.shrunk_covariance(few)
    np.linalg.cholesky(est)                                           # raises if not PD
    assert np.all(np.diag(est) > 0)
    corr = est / np.sqrt(np.outer(np.diag(est), np.diag(est)))
    sample_corr = np.corrcoef(few, rowvar=False)
    off = ~np.eye(50, dtype=bool)
    assert np.all(np.abs(corr[off]) < np.abs(sample_corr[off]) + 1e-12)  # shrunk, not grown


@pytest.mark.parametrize("n", [4, 5, 10, 20, 40, 100])
def test_metric_windows_double_and_leave_a_last_stretch_for_the_step_size(n):
    ends = dense_nuts.metric_updates(n)
    assert ends[0] >= 1 and ends[-1] < n
    assert all(b > a for a, b in zip(ends, ends[1:]))
    sizes = np.diff([0] + ends)
    assert all(b >= a for a, b in zip(sizes[:-1], sizes[1:-1]))   # growing, but the last


def test_a_dense_metric_fit_finds_the_truth_alike_on_parallel_and_batched_chains(synth, small_config):
    """Chains on their own devices (the CPU default) and batched on one device (a single GPU's
    "vectorized" layout). Their draws are not equal: batched arithmetic rounds differently and
    NUTS trajectories amplify it. Same-seed reproducibility is tests/test_run.py's."""
    cfg = small_config(draws=150, tune=150)
    cfg.set("sampler.mass_matrix", "dense")
    data = load(cfg, synth.csv)
    first = run.fit(cfg, data=data, progressbar=False)
    assert first.diagnostics["chain_method"] == "parallel"
    assert first.diagnostics["mass_matrix"] == "dense"
    cfg.set("sampler.chain_method", "vectorized")
    again = run.fit(cfg, data=data, progressbar=False)
    assert again.diagnostics["chain_method"] == "vectorized"
    post = first.idata.posterior
    assert post.attrs["mass_matrix"].startswith("dense")
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 150
    for name in ("A", "doubling_months", "log_density", "z_centre", "alpha_mu"):
        assert name in post and np.all(np.isfinite(post[name].values)), name
    stats = first.idata.sample_stats
    for name in ("diverging", "n_steps", "energy", "lp", "tree_depth", "step_size",
                 "acceptance_rate"):
        assert name in stats, name
    assert "observed_data" in first.idata.children
    for fit in (first, again):
        d = diagnose(fit.idata, ["A", "B_centre", "sigma_v", "z_centre"])
        assert d["divergences"] <= 3 and d["max_rhat"] < 1.05, d
        lo, hi = np.quantile(fit.idata.posterior["doubling_months"].values, [0.01, 0.99])
        assert lo < synth.truth["doubling_months"] < hi, (lo, hi)


@pytest.mark.parametrize("chains, layout", [(3, (3, 1)), (4, (4, 1)), (6, (4, 2)), (8, (4, 2))])
def test_chains_spread_over_the_host_devices(chains, layout):
    """On the CPU each chain gets its own XLA host device (conftest makes 4, as
    ``select_device("cpu", 4)`` does for a 4-chain run); more chains than devices share them,
    one after the other (spare slots repeat the last chain and are dropped)."""
    import jax
    import pymc as pm

    from bayes_densing.config import SamplerConfig

    assert jax.local_device_count() == 4
    with pm.Model() as model:
        pm.Normal("x")
    sampler = bridge.sampler(model, SamplerConfig(chains=chains))
    assert (sampler.n_dev, sampler.per_dev) == layout


def test_chains_sharing_a_host_device_draw_what_they_draw_on_their_own(monkeypatch):
    """Two chains on each of two host devices run one after the other (``lax.map``): every
    chain gets its own positions, keys and inputs back, and on this model the draws are those
    of four devices to the last digit (on a large one XLA may fuse the mapped program
    otherwise, and rounding then moves the trajectories)."""
    import jax
    import pymc as pm

    from bayes_densing.config import SamplerConfig
    from bayes_densing.inference.sample import unconstrained_starts

    with pm.Model() as model:
        x = pm.Normal("x", shape=3)
        pm.Normal("y", x.sum(), 0.5, observed=[1.0, 2.0])
    draws = []
    for devices in (4, 2):
        monkeypatch.setattr(jax, "local_device_count", lambda: devices)
        sampler = bridge.sampler(model, SamplerConfig(chains=4, draws=30, tune=40))
        assert (sampler.n_dev, sampler.per_dev) == (devices, 4 // devices)
        starts = unconstrained_starts(model, 4, 0, finite=sampler.finite,
                                      start=sampler.initial_point)
        draws.append(sampler.run(starts, seed=0, progressbar=False))
    np.testing.assert_array_equal(draws[0].z["x"], draws[1].z["x"])
    np.testing.assert_array_equal(draws[0].stats["n_steps"], draws[1].stats["n_steps"])
    assert len({float(draws[1].z["x"][c, -1, 0]) for c in range(4)}) == 4


def test_several_chains_on_each_of_several_host_devices_do_not_deadlock():
    """4 host devices × 2 chains with a 150-parameter dense metric. When each device's program
    factored the metric batched over its chains, jaxlib's LAPACK Cholesky waited for XLA's CPU
    thread pool from inside it and the start-up program never returned (idle CPU); d = 20 did
    not show it. Run in a daemon thread, so that a deadlock fails the test instead of hanging
    the session."""
    import threading

    import jax
    import pymc as pm

    from bayes_densing.config import SamplerConfig
    from bayes_densing.inference.sample import unconstrained_starts

    assert jax.local_device_count() == 4
    with pm.Model() as model:
        pm.Normal("x", shape=150)
    sampler = bridge.sampler(model, SamplerConfig(chains=8, draws=20, tune=20))
    assert (sampler.n_dev, sampler.per_dev) == (4, 2)
    done = {}

    def fit():
        starts = unconstrained_starts(model, 8, 0, finite=sampler.finite,
                                      start=sampler.initial_point)
        done["draws"] = sampler.run(starts, seed=0, progressbar=False)

    worker = threading.Thread(target=fit, daemon=True)
    worker.start()
    worker.join(timeout=180)
    assert "draws" in done, "no draws after 180 s: the chains' programs deadlocked"
    z = done["draws"].z["x"]
    assert z.shape == (8, 20, 150) and np.all(np.isfinite(z))
    assert len({float(z[c, -1, 0]) for c in range(8)}) == 8     # eight different chains


def test_the_programs_are_compiled_once_per_shape_of_the_inputs():
    """``Sampler.programs`` compiles the start-up and chunk programs together on the first
    call for a shape of the inputs, and every later run of that shape reuses them."""
    import pymc as pm
    import pytensor.tensor as pt

    from bayes_densing.config import SamplerConfig

    w = pt.vector("w")
    with pm.Model() as model:
        x = pm.Normal("x", shape=3)
        pm.Potential("weighted", -0.5 * pt.sum(w * x ** 2))
    sampler = bridge.sampler(model, SamplerConfig(chains=2, draws=8, tune=8), inputs=(w,))
    first = sampler.programs(sampler.per_chain((np.ones(3),)))
    assert sampler.programs(sampler.per_chain((np.zeros(3),))) is first
    start = [{"x": np.zeros(3)}] * 2
    runs = [sampler.run(start, (np.full(3, v),), seed=0, progressbar=False) for v in (1.0, 4.0)]
    assert len(sampler._programs) == 1
    # the weight reached the log density: x ~ N(0, 1/(1 + v)) per coordinate
    sd = [float(np.std(r.z["x"])) for r in runs]
    assert sd[1] < sd[0]


@pytest.mark.parametrize("mass_matrix", ["dense", "diag"])
def test_the_start_up_program_tells_finite_starting_points_from_the_others(mass_matrix):
    """``Sampler.finite`` (the starting points' check in ``inference.sample``) evaluates the
    log density and its gradient with the program that starts the chains."""
    import pymc as pm

    from bayes_densing.config import SamplerConfig
    from bayes_densing.inference.sample import unconstrained_starts

    with pm.Model() as model:
        pm.HalfNormal("s")
        pm.Normal("x", shape=2)
    sampler = bridge.sampler(model, SamplerConfig(chains=2, mass_matrix=mass_matrix))
    assert sampler.finite({"s_log__": 0.3, "x": np.array([0.0, 1.0])})
    assert not sampler.finite({"s_log__": np.inf, "x": np.array([0.0, 1.0])})
    assert not sampler.finite({"s_log__": 0.3, "x": np.array([np.nan, 1.0])})
    # the same points as the default check picks (here every jittered point is finite)
    mine = unconstrained_starts(model, 2, seed=3, finite=sampler.finite)
    theirs = unconstrained_starts(model, 2, seed=3)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(mine, theirs) for k in a)
    # and with the initial point the sampler computed already (``inference.sample``)
    given = unconstrained_starts(model, 2, seed=3, finite=sampler.finite,
                                 start=sampler.initial_point)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(given, theirs) for k in a)


def test_parameters_travel_as_one_vector_in_the_metric_s_order():
    """NUTS moves one flat vector (a dict of arrays cost ~160 more XLA kernels per leapfrog
    step: benchmarks/README.md, "Where a leapfrog step's time goes"). Its order is NumPyro's
    flattening of a dict, the sorted names, which is the order of the estimated metric; the
    potential of the vector is the model's −log density at the named values."""
    import pymc as pm

    from bayes_densing.config import SamplerConfig

    with pm.Model() as model:
        pm.Normal("z", shape=(2, 3))
        pm.HalfNormal("a")
        pm.Normal("m", shape=2)
    sampler = bridge.sampler(model, SamplerConfig(chains=2))
    assert sampler.names == ["z", "a_log__", "m"] and sampler.d == 9
    rng = np.random.default_rng(0)
    point = {"z": rng.normal(size=(5, 2, 3)), "a_log__": rng.normal(size=5),
             "m": rng.normal(size=(5, 2))}                       # 5 draws, leading axis
    x = sampler.flatten(point)
    assert x.shape == (5, 9)
    np.testing.assert_array_equal(x[:, 0], point["a_log__"])    # sorted: a_log__, m, z
    np.testing.assert_array_equal(x[:, 1:3], point["m"])
    np.testing.assert_array_equal(x[:, 3:], point["z"].reshape(5, 6))
    ints = {"z": np.zeros((2, 3), dtype=int), "a_log__": 0, "m": [1, 2]}
    assert sampler.flatten(ints).dtype == float
    back = sampler.unflatten(x)
    assert all(np.array_equal(back[n], point[n]) for n in point)
    logp = model.compile_logp()
    one = {n: v[0] for n, v in point.items()}
    assert float(sampler.potential(x[0])) == pytest.approx(-logp(one))


def test_a_start_caps_the_trees_of_as_many_iterations_as_asked_and_no_more():
    """``Sampler.start(..., capped=k)``: the next k iterations' trees have at most
    2^EARLY_DEPTH − 1 = 63 leapfrog steps, the ones after are NUTS's usual (up to 1023). A unit
    normal at the identity metric and a fixed step of 0.001 needs ~1,500 steps to turn."""
    import pymc as pm

    from bayes_densing.config import SamplerConfig

    with pm.Model() as model:
        pm.Normal("x", shape=2)
    sampler = bridge.sampler(model, SamplerConfig(chains=2, draws=400))
    assert sampler.length == 20
    args = sampler.per_chain(())
    _, advance = sampler.programs(args)
    keys = np.zeros((sampler.slots, 2), dtype=np.uint32)
    z = sampler.spread(np.ones((sampler.slots, 2)))
    cap = 2 ** dense_nuts.EARLY_DEPTH - 1
    for capped in (0, 8):
        state, da = sampler.start(keys, z, 1e-3, np.eye(2), args, capped)
        _, out = advance(state, da, dense_nuts.FIXED, args)
        steps = sampler.gather(out[2])                    # (chains, iterations)
        assert np.all(steps[:, :capped] <= cap), steps
        assert np.all(steps[:, capped:] > cap), steps


def test_the_trees_are_capped_in_the_first_two_windows_of_a_cold_start_only(monkeypatch):
    """From the identity metric, the first window and the diagonal-metric window after it are
    capped (their metric does not know the posterior's scales yet); the windows with a dense
    metric, the last stretch, the draws and every window of a warm start are not."""
    import pymc as pm

    from bayes_densing.config import SamplerConfig

    with pm.Model() as model:
        pm.Normal("x", shape=2)
    sampler = bridge.sampler(model, SamplerConfig(chains=2, draws=40, tune=400))
    updates = dense_nuts.metric_updates(400 // sampler.length)
    asked = []
    start = sampler.start

    def spy(*a):
        asked.append(a[5] if len(a) > 5 else 0)
        return start(*a)
    monkeypatch.setattr(sampler, "start", spy)
    first = sampler.run([{"x": np.zeros(2)}] * 2, seed=0, progressbar=False)
    assert asked == ([updates[0] * sampler.length, (updates[1] - updates[0]) * sampler.length]
                     + [0] * (len(updates) - 1))
    asked.clear()
    sampler.run([{"x": np.zeros(2)}] * 2, seed=1, warm=first, progressbar=False)
    assert asked == [0] * (len(updates) + 1)
