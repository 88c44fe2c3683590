"""The sampling package takes any log density written in JAX and knows neither PyMC nor ArviZ:
it imports and samples in a process where neither can be imported."""

import subprocess
import sys
import textwrap

CODE = textwrap.dedent("""
    import sys
    for name in ("pymc", "arviz", "pytensor", "xarray"):
        sys.modules[name] = None          # any import of them raises ImportError

    import jax.numpy as jnp
    import numpy as np

    from bayes_densing.config import SamplerConfig
    from bayes_densing.sampling.dense_nuts import Sampler
    from bayes_densing.sampling.density import LogDensity

    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    prec = jnp.asarray(np.linalg.inv(cov))

    def logp(x, shift):                   # a correlated Gaussian, its mean a runtime input
        d = x - shift
        return -0.5 * d @ prec @ d

    density = LogDensity(logp=logp, names=("x",), initial_point={"x": np.zeros(2)})
    sampler = Sampler(density, SamplerConfig(chains=2, draws=400, tune=300), parallel=False)
    for shift in (np.array([3.0, -1.0]), np.array([-2.0, 0.5])):
        draws = sampler.run([{"x": np.zeros(2)}] * 2, (shift,), seed=0, progressbar=False)
        x = np.asarray(draws.z["x"]).reshape(-1, 2)
        assert np.allclose(x.mean(0), shift, atol=0.25), (x.mean(0), shift)
        assert np.allclose(np.cov(x.T), cov, atol=0.25), np.cov(x.T)
        assert not np.asarray(draws.stats["diverging"]).any()
    assert not [m for m in ("pymc", "arviz", "pytensor") if sys.modules.get(m) is not None]
    print("sampled without PyMC and ArviZ")
""")


def test_the_sampling_package_samples_a_jax_log_density_without_pymc_or_arviz():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sampled without PyMC and ArviZ" in done.stdout
