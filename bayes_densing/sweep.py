"""Many fits of one model, compiled once: the sampler behind `bayes-densing subsets` and the
simulation-based calibration (``sbc.py``).

Every benchmark subset is the same PyMC model (``build_model(..., weights=...)``) with a 0/1
weight per observation and per benchmark; every simulated dataset of one design is the same
model with other correct counts (``counts=...``). The log density is turned into a JAX function
of (parameters, weights, counts) once, NumPyro's NUTS kernel is built from it with those as
model arguments (``numpyro.infer.hmc.hmc(potential_fn_gen=...)``), and one jitted function runs
a whole chain — warm-up and draws — for any of them. So a sweep compiles once, whatever the
number of subsets or datasets, and runs the chains of every fit on the XLA devices in parallel
batches (one chain per device, as ``chain_method="parallel"`` does for a single fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pytensor.tensor as pt

from .config import Config
from .data import ScoreData
from .inference import JITTER, select_device
from .model import build_model, log_binomial


@dataclass
class SweepSampler:
    """A compiled family of fits over weight vectors (and counts);
    ``sample(obs_w, bench_w, seed, counts=None)``."""

    model: object
    names: list[str]
    run_batch: object          # pmapped: (keys, inits, obs_w, bench_w, k, ln C(n, k)) -> draws
    postprocess: object        # jitted: (values..., obs_w, bench_w) -> unobserved values
    out_names: list[str]
    n_devices: int
    config: Config
    counts: np.ndarray         # the data's correct counts k
    n: np.ndarray              # and items n, per observation

    def initial_points(self, chains: int, seed: int) -> list[dict]:
        rng = np.random.default_rng([seed, 0xD0])
        start = self.model.initial_point()
        return [{n: start[n] + rng.uniform(-JITTER, JITTER, np.shape(start[n])) for n in self.names}
                for _ in range(chains)]

    def sample(self, obs_w: np.ndarray, bench_w: np.ndarray, seed: int,
               counts: np.ndarray | None = None) -> az.InferenceData:
        """Draws for one weight vector: ``config.sampler.chains`` chains, as an InferenceData;
        ``counts``: other correct counts for the same observations (default: the data's)."""
        import jax

        s = self.config.sampler
        k = (self.counts if counts is None else np.asarray(counts)).astype(float)
        if k.shape != self.n.shape or np.any(k < 0) or np.any(k > self.n):
            raise ValueError(f"counts must be {len(self.n)} whole numbers in 0..n")
        model_args = [obs_w, bench_w, k, log_binomial(self.n, k)]
        inits = self.initial_points(s.chains, seed)
        keys = jax.random.split(jax.random.PRNGKey(seed), s.chains)
        outs = []
        for start in range(0, s.chains, self.n_devices):
            idx = [min(i, s.chains - 1) for i in range(start, start + self.n_devices)]
            batch = {n: np.stack([inits[i][n] for i in idx]) for n in self.names}
            res = self.run_batch(keys[np.array(idx)], batch,
                                 *[np.broadcast_to(a, (self.n_devices, len(a))) for a in model_args])
            take = len(set(idx))
            outs.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:take], res))
        z, diverging, n_steps, energy, potential = (
            jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *[o[i] for o in outs])
            for i in range(5))
        values = self.postprocess(*[z[n] for n in self.names], obs_w, bench_w)
        from pymc.backends.arviz import coords_and_dims_for_inferencedata

        coords, dims = coords_and_dims_for_inferencedata(self.model)
        posterior = {n: np.asarray(v) for n, v in zip(self.out_names, values)}
        stats = {"diverging": diverging, "n_steps": n_steps, "energy": energy, "lp": -potential,
                 "tree_depth": np.log2(n_steps).astype(int) + 1}
        return az.from_dict(posterior=posterior, sample_stats=stats, coords=coords, dims=dims)


def compile_sweep(data: ScoreData, config: Config) -> SweepSampler:
    """Build the weighted model for ``data`` and compile NUTS for it once."""
    import jax
    from jax import lax
    from numpyro.infer.hmc import hmc
    from pymc.sampling.jax import get_jaxified_graph

    select_device(config.sampler.device)   # before JAX creates its backends
    n_devices = max(1, min(jax.local_device_count(), config.sampler.chains))
    obs_w, bench_w = pt.vector("obs_weight"), pt.vector("bench_weight")
    k, binomln = pt.vector("correct"), pt.vector("log_binomial")
    model = build_model(data, config, weights=(obs_w, bench_w), counts=(k, binomln))
    names = [v.name for v in model.value_vars]
    logp = get_jaxified_graph(inputs=model.value_vars + [obs_w, bench_w, k, binomln],
                              outputs=[model.logp()])

    def potential(params, *args):
        return -logp(*[params[n] for n in names], *args)[0]

    init_kernel, sample_kernel = hmc(
        potential_fn_gen=lambda *args: (lambda params: potential(params, *args)), algo="NUTS")
    s = config.sampler

    def one_chain(key, init, *args):
        state = init_kernel(init, s.tune, target_accept_prob=s.target_accept,
                            model_args=args, rng_key=key)

        def warm(st, _):
            return sample_kernel(st, model_args=args), None

        def draw(st, _):
            st = sample_kernel(st, model_args=args)
            return st, (st.z, st.diverging, st.num_steps, st.energy, st.potential_energy)

        state, _ = lax.scan(warm, state, None, length=s.tune)
        _, out = lax.scan(draw, state, None, length=s.draws)
        return out

    free = [rv.name for rv in model.free_RVs]
    outputs = [v for v in model.unobserved_value_vars
               if v.name in free or v.name in {d.name for d in model.deterministics}]
    graph = get_jaxified_graph(inputs=model.value_vars + [obs_w, bench_w], outputs=outputs)
    n_chain_axes = 2

    def post(*args):
        *vals, ow, bw = args
        fn = lambda *v: graph(*v, ow, bw)  # noqa: E731
        for _ in range(n_chain_axes):
            fn = jax.vmap(fn)
        return fn(*vals)

    return SweepSampler(model=model, names=names, run_batch=jax.pmap(one_chain),
                        postprocess=jax.jit(post), out_names=[v.name for v in outputs],
                        n_devices=n_devices, config=config,
                        counts=data.obs.k.to_numpy(), n=data.obs.n.to_numpy())

