"""The default sampler (``sampler.mass_matrix = "auto"``): NumPyro's NUTS transition on PyMC's
compiled log density, with a dense mass matrix learnt by our own windowed warm-up — or, above
:data:`DENSE_UP_TO` parameters, the conditional metric of :mod:`conditional_metric` (dense over
the global parameters, each target's latent regressed on them), which NUTS applies as a linear
map of the vector it moves, with NumPyro's identity metric.

Why: the trend's slope, the targets' log densities and the curves' levels are correlated,
which a diagonal metric cannot follow. With NumPyro's own dense adaptation the model written
directly in NumPyro (benchmarks/floor.py) took 31 instead of 50 leapfrog steps per draw and
the ESS of the doubling time rose from 1,467 to 4,737 (4 × 1000 draws) — but its warm-up
took 112 s at 600+ steps per iteration: its first windows estimate a 138-parameter covariance
from 25 draws of one chain, which is singular, and the step size collapses. Here:

1. **Windows of doubling length** (as Stan's). The first (~5% of the warm-up) starts from the
   identity metric and ends with the diagonal of its positions' variances, which cuts the
   next windows' trajectories from ~190 to ~70 leapfrog steps. At each later window's end
   the metric becomes the covariance of that window's positions, pooled over all chains
   (4 × the draws of one chain), its off-diagonal shrunk towards zero by d / (n + d)
   (``shrunk_covariance``). After each update the step size's dual averaging starts again.
   **Until the first dense metric** (the identity window and the diagonal one) a tree has at
   most 2^6 − 1 = 63 leapfrog steps instead of 1023 (``EARLY_DEPTH``): with a metric that does
   not know the posterior's scales yet, the step size follows the narrowest direction and the
   trees grew to ~200 and ~96 steps per iteration, 5 of the default fit's 20 s of sampling,
   to feed estimates that the next window replaces. Capped, the same windows took ~2.3 s and
   the next ones ~0.5 s more, with no loss of ESS over 4 seeds (benchmarks/README.md, "The
   default fit", sixth update).
   **The conditional metric's cold start** instead climbs the log density (500 Adam steps)
   and takes its first metric from the curvature there (:meth:`Sampler.laplace`), uncapped;
   every window's end then re-estimates the whole preconditioner.
2. A last stretch (~10% of the warm-up) adapts only the step size; the draws use its average.

NumPyro's own warm-up adaptation is not used (its step size and metric adaptation are off;
its ``num_warmup`` only switches the depth cap): its schedule would be baked into the compiled
transition, and each new schedule or metric shape costs another ~15 s compile.

Measured on the bundled data (benchmarks/README.md, "Dense mass matrix"): about 4× the min bulk
ESS of NumPyro's diagonal metric at 31 instead of 48 leapfrog steps per draw. The target
acceptance is 0.9 (``sampler.target_accept``). At 0.95, the default until 2026-12-01, the
bundled data's draws took 23–26 leapfrog steps at a step size of 0.20; at 0.9 they take 15 at
0.255–0.271, with 0 divergences in six seeds and 0.98–1.57× the ESS of the doubling time
(benchmarks/README.md, "Target acceptance"). Before the exponents were sampled partially
non-centred (``model.exponents``), 0.9 had cost 2 divergent transitions in 4,000 draws.

NUTS moves one flat vector of the unconstrained parameters (:meth:`Sampler.flatten`), not
PyMC's dict of 12 arrays: every update of a position, momentum or gradient and every select of
NUTS's tree was otherwise one XLA kernel per array, 214 of the sampler's kernels per leapfrog
step against 55 (JAX's profiler, benchmarks/profile_fit.py), and the same draws took 1.2× the
sampling time.

Chains run in parallel on the XLA devices (``pmap``; on the CPU, one host device per chain,
``inference.select_device``), and several chains share a device when there are fewer devices
than chains: batched (``vmap``) on one GPU, one after the other (``lax.map``) on a CPU host
device. Batched on 2 host devices × 2 chains, the default fit's sampling took 2.0–2.3× as long
as one after the other, which takes as long as 4 × 1 (benchmarks/README.md "Host devices").
With one chain per device the programs are not batched at all.
Each phase runs in chunks so that a progress bar can follow it; the chunks reuse one compiled
program each. A :class:`Sampler` compiles once for a model whose inputs other than the
parameters (a sweep's weights, an SBC dataset's counts) are arguments, and its runs reuse the
programs: the sweeps (``sweep.py``) fit every subset or dataset with one compile, and a run
can start from another's adapted metric, step size and positions (``warm``).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from bayes_densing.sampling import conditional_metric
from bayes_densing.sampling.covariance import regularised, shrunk_covariance, shrunk_variance  # noqa: F401
from bayes_densing.sampling.density import LogDensity

CHUNKS = 20          # progress updates over the draws (the warm-up has as many per length)
INITIAL_STEP = 0.1   # the first window's step size, before dual averaging moves it
EARLY_DEPTH = 6      # the trees' depth limit until the first dense metric (NUTS's usual: 10)
UNCAPPED = 1 << 30   # NumPyro's iteration counter at a start with no capped iterations
ADAPT, FIXED = np.array(True), np.array(False)   # arrays, not Python bools: one compiled program
ADAM_STEPS, ADAM_RATE = 500, 0.02   # a large model's cold start first climbs the log density
DENSE_UP_TO = 500    # "auto": a dense metric up to this many parameters, the conditional above
# a metric is estimated from a window of at least MIN_DRAWS positions pooled over the chains
# (below 5, Stan's regularisation weighs its 1e-3 prior more than the draws: ``regularised``),
# the diagonal and the dense alike (the dense estimate's shrinkage keeps it positive definite
# whatever n), and with the conditional metric from MIN_CHAIN_DRAWS of each chain (its
# ``effective_draws`` is ArviZ's bulk ESS, NaN below 4 draws a chain)
MIN_DRAWS = 5
MIN_CHAIN_DRAWS = 4


def chunk_length(draws: int) -> int:
    """The iterations of one chunk: the draws in at most :data:`CHUNKS` chunks."""
    return math.ceil(draws / min(CHUNKS, draws))


def warmup_chunks(tune: int, length: int) -> int:
    """The warm-up's chunks for ``tune`` iterations: rounded up to whole chunks, at least four."""
    return max(4, math.ceil(tune / length))


def metric_updates(n_chunks: int) -> list[int]:
    """After which warm-up chunks the metric is re-estimated: windows that double in length
    (as Stan's), starting after the first ~5% of the warm-up and ending ~10% before its end, so
    the step size has a last stretch with the final metric. Four or more chunks."""
    first = max(1, round(n_chunks * 0.05))
    last = n_chunks - max(1, round(n_chunks * 0.1))
    ends, size, at = [], first, first
    while at < last:
        ends.append(at)
        size *= 2
        at += size
    if ends and last - ends[-1] < size // 2 and len(ends) > 1:
        ends.pop()                      # a short last window would be noisy: widen the previous
    ends.append(last)
    return ends


def enough(layout: str, chains: int, draws: int) -> bool:
    """Whether ``draws`` positions of each of ``chains`` chains can estimate a metric of the
    ``layout`` ("dense", "diag" or "conditional"): :data:`MIN_DRAWS`, :data:`MIN_CHAIN_DRAWS`."""
    if layout == "conditional" and draws < MIN_CHAIN_DRAWS:
        return False
    return chains * draws >= MIN_DRAWS


def estimated(updates: list[int], length: int, chains: int, layout: str) -> list[bool]:
    """Which of the metric updates ``updates`` (:func:`metric_updates`, chunks of ``length``
    iterations) estimate the metric: those whose window, with the windows before it that were
    too short (:func:`enough`), holds enough draws. At the others the metric is kept and the
    window's draws carry over into the next."""
    out, since, at = [], 0, 0
    for end in updates:
        since += (end - at) * length
        at = end
        out.append(enough(layout, chains, since))
        since = 0 if out[-1] else since
    return out


@dataclass
class Draws:
    """What one run gives: unconstrained draws ``z`` (chain, draw, ...), the sample stats, the
    seconds spent sampling, and the adapted state, which can warm-start another run:
    ``metric`` (the inverse mass matrix, d × d or its diagonal), ``step_size`` and each chain's
    ``last`` position. With the conditional metric ``metric`` is its preconditioner
    (:mod:`conditional_metric`)."""

    z: dict
    stats: dict
    seconds: float
    metric: np.ndarray
    step_size: float
    last: list[dict]


class Sampler:
    """NUTS with our windowed warm-up for one compiled log density, reusable across runs.

    ``density``: the log density (:class:`density.LogDensity`), a JAX function of the
    parameters and of runtime inputs (a sweep's weights, an SBC dataset's counts, the cut's
    curve parameters); each run passes the inputs' values as ``args``, so every run of the
    same shapes reuses the same compiled programs. ``cfg``: the sampler settings (chains,
    draws, tune, target acceptance, and the metric, ``mass_matrix`` = "auto", "dense",
    "conditional" or "diag": :func:`metric_layout`, kept as ``layout``).
    ``parallel``: the chains on as many XLA devices as there are, else batched on one (a GPU).
    ``ess``: the effective sample size of draws (chain, draw, d) → (d,) the conditional
    metric weighs its windows by (:func:`conditional_metric.effective_draws`).
    """

    def __init__(self, density: LogDensity, cfg, *, parallel: bool = True, ess=None):
        import jax
        import jax.numpy as jnp
        from jax import lax
        from numpyro.infer.hmc import hmc
        from numpyro.infer.hmc_util import dual_averaging

        self.ess = ess or conditional_metric.numpyro_ess
        self.names = names = list(density.names)
        self.initial_point = dict(density.initial_point)   # (the starting points' centre)
        self.shapes = {n: np.shape(self.initial_point[n]) for n in names}
        self.d = sum(int(np.prod(shape)) for shape in self.shapes.values())
        # the per-target latents (one or more per target model) and the global parameters
        latent = density.latent
        self.layout = layout = metric_layout(cfg.mass_matrix, self.d)
        conditional = layout == "conditional"
        # the flat vector's order: sorted names (NumPyro's order of a dict, the metric's); with
        # the conditional metric the globals come first
        self.order = sorted(names, key=lambda n: (conditional and n in latent, n))
        self.d_global = sum(int(np.prod(self.shapes[n])) for n in names if n not in latent)
        logp = density.logp

        @jax.jit     # traced once: NUTS's init and leapfrog reuse the jaxpr (≈ 2.4 s less tracing)
        def potential(x, *args):
            params = self.unflatten(x)
            return -logp(*[params[n] for n in names], *args)

        self.potential = potential   # −log density of the unconstrained parameters, flattened
        n_pre = 4 if conditional else 0    # the preconditioner's arrays lead the inputs

        def position(y, args):
            """x, the flat parameters, from the vector NUTS moves (y; x itself but with the
            conditional metric) and the inputs."""
            return conditional_metric.to_position(y, args[:n_pre], jnp) if conditional else y

        init_kernel, sample_kernel = hmc(
            potential_fn_gen=lambda *args: (lambda y: potential(position(y, args), *args[n_pre:])),
            algo="NUTS")
        self.cfg = cfg
        chains, draws = cfg.chains, cfg.draws
        # every phase runs in chunks of one length, so one compiled program advances them all
        # (a program holding NUTS takes ~15-20 s to compile here); the warm-up is rounded up
        # to whole chunks
        self.length = length = chunk_length(draws)
        self.n_draw = math.ceil(draws / length)
        self.n_dev = max(1, min(jax.local_device_count(), chains)) if parallel else 1
        self.per_dev = math.ceil(chains / self.n_dev)
        self.slots = self.n_dev * self.per_dev    # spare slots repeat the last chain; dropped
        da_init, da_update = dual_averaging()

        def chunk(state, da, adapting, args):
            """``length`` NUTS transitions; while ``adapting``, dual averaging of the step size."""
            def step(carry, _):
                s, da = carry
                s = sample_kernel(s, model_args=args)
                da_new = da_update(cfg.target_accept - s.accept_prob, da)
                da = jax.tree_util.tree_map(lambda new, old: jnp.where(adapting, new, old),
                                            da_new, da)
                eps = jnp.where(adapting, jnp.exp(da[0]), s.adapt_state.step_size)
                s = s._replace(adapt_state=s.adapt_state._replace(step_size=eps))
                return (s, da), (position(s.z, args), s.diverging, s.num_steps, s.energy,
                                 s.potential_energy, s.accept_prob)
            return lax.scan(step, (state, da), None, length=length)

        def on_devices(f, in_axes=0):
            # arrays are (devices, chains each, ...); with one chain per device (the CPU
            # default) each device runs f on its chain unbatched: traced and compiled ≈ 0.5 s
            # faster than vmapped, and its leapfrog steps were not slower (before NUTS moved one
            # flat vector, batching had been faster; benchmarks/README.md, "The default fit")
            if self.per_dev > 1 and not parallel:       # one device (a GPU): batched
                return jax.pmap(jax.vmap(f, in_axes=in_axes), in_axes=in_axes)

            def one(*xs):
                axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(xs)
                if self.per_dev > 1:
                    # several chains on a host device: one after the other (lax.map), not
                    # batched (vmap), whose trees wait for the longest of the batch and whose
                    # batched log density costs more per chain on the CPU: the default fit's
                    # sampling took 2.0–2.3× as long (benchmarks/README.md, "Host devices")
                    mapped = [x for x, a in zip(xs, axes) if a is not None]

                    def each(chain):
                        it = iter(chain)
                        return f(*[next(it) if a is not None else x for x, a in zip(xs, axes)])
                    return lax.map(each, mapped)
                xs = [x if a is None else jax.tree_util.tree_map(lambda v: v[0], x)
                      for x, a in zip(xs, axes)]
                return jax.tree_util.tree_map(lambda v: v[None], f(*xs))
            return jax.pmap(one, in_axes=in_axes)

        self.advance = on_devices(chunk, in_axes=(0, 0, None, 0))
        # for :meth:`conditional_runs`, whose programs depend on the inner length
        self._kernel, self._position, self._on_devices = sample_kernel, position, on_devices
        self._n_pre, self._nested = n_pre, {}
        # NUTS with a given step size and metric, no adaptation of its own (NumPyro's warm-up
        # would bake its schedule into the compiled transition): we adapt between chunks. The
        # metric is one for all chains (in_axes None), so NumPyro factors it once per device:
        # batched over a device's chains, jaxlib's LAPACK Cholesky splits the batch over XLA's
        # CPU thread pool and waits for it from inside that pool, which deadlocked (idle CPU)
        # once every pool thread was a device's program, as with 2 devices × 2 chains on 2
        # cores, or 4 × 2 at d ≥ ~150 (gdb: lapack_dpotrf_ffi → ParallelBatchMap → Wait).
        # ``capped``: how many of the next iterations have trees of at most EARLY_DEPTH.
        # NumPyro caps at max_tree_depth's first entry while its iteration counter is below
        # num_warmup (its own adaptation is off here: only the counter is used), so the start
        # sets the counter ``capped`` below that
        def restart(key, z, eps, inv_mass, capped, args):
            state = init_kernel(z, UNCAPPED, step_size=eps, inverse_mass_matrix=inv_mass,
                                adapt_step_size=False, adapt_mass_matrix=False,
                                dense_mass=layout == "dense", max_tree_depth=(EARLY_DEPTH, 10),
                                model_args=args, rng_key=key)
            return state._replace(i=(UNCAPPED - capped).astype(state.i.dtype))
        self.restart = on_devices(restart, in_axes=(0, 0, 0, None, None, 0))
        self.new_da = on_devices(lambda eps: da_init(jnp.log(10.0 * eps)))
        # on the devices, so the state stays there between chunks
        self.set_step = on_devices(lambda s, eps: s._replace(adapt_state=s.adapt_state._replace(
            step_size=eps)))
        self._programs: dict = {}     # the inputs' shapes → the compiled (restart, advance)

        def optimise(x, args):
            """:data:`ADAM_STEPS` of Adam on the log density from one chain's start ``x``; the
            start itself where the end is not finite or not higher."""
            grad = jax.grad(potential)

            def step(i, carry):
                x, m, v = carry
                g = grad(x, *args)
                m, v, t = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g, i + 1.0
                x = x - ADAM_RATE * (m / (1 - 0.9 ** t)) / (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
                return x, m, v

            zero = jnp.zeros_like(x)
            end = lax.fori_loop(0, ADAM_STEPS, step, (x, zero, zero))[0]
            better = potential(end, *args) <= potential(x, *args)     # False if NaN
            return jnp.where(better & jnp.all(jnp.isfinite(end)), end, x)
        self.optimise = on_devices(optimise)

        def curvature(x, args):
            """The Hessian of −log density at one chain's ``x``, as far as the conditional
            metric needs it: the globals' rows (d_g Hessian-vector products) and the latents'
            diagonal, which is their whole block, from one more product along all of them."""
            def hvp(v):
                return jax.jvp(lambda x: jax.grad(potential)(x, *args), (x,), (v,))[1]
            d_g = self.d_global
            rows = jax.vmap(hvp)(jnp.eye(d_g, self.d, dtype=x.dtype))
            along = jnp.concatenate([jnp.zeros(d_g, x.dtype), jnp.ones(self.d - d_g, x.dtype)])
            return rows, hvp(along)[d_g:]
        self.curvature = on_devices(curvature)

    def laplace(self, z, args: tuple) -> tuple:
        """The conditional metric's preconditioner from the curvature at the chains' positions
        ``z`` (devices, chains each, d), averaged over the chains, centred on their mean
        (:func:`conditional_metric.from_curvature`)."""
        rows, diag = (self.gather(a) for a in self.curvature(z, args))
        return conditional_metric.from_curvature(self.gather(z).mean(axis=0),
                                                 rows.mean(axis=0), diag.mean(axis=0))

    def flatten(self, point: dict) -> np.ndarray:
        """Parameters by name (each with leading axes ...) → one vector (..., d) in NumPyro's
        order of a dict (sorted names), the order of the metric. Always floats: an integer
        vector would be another compiled program."""
        n0 = self.names[0]
        lead = np.shape(point[n0])[:np.ndim(point[n0]) - len(self.shapes[n0])]
        return np.concatenate([np.reshape(np.asarray(point[n], dtype=float), lead + (-1,))
                               for n in self.order], axis=-1)

    def unflatten(self, x) -> dict:
        """The inverse of :meth:`flatten`, for NumPy or JAX arrays (..., d)."""
        out, at = {}, 0
        for n in self.order:
            size = int(np.prod(self.shapes[n]))
            out[n] = x[..., at:at + size].reshape(x.shape[:-1] + self.shapes[n])
            at += size
        return out

    def inputs(self, metric, args: tuple) -> tuple:
        """The programs' inputs for a ``metric`` and the model's inputs ``args`` (from
        :meth:`per_chain`): with the conditional metric its preconditioner leads them."""
        if self.layout != "conditional":
            return args
        return self.per_chain(metric) + args

    def nuts_metric(self, metric):
        """The inverse mass matrix NumPyro is given: the metric, or with the conditional metric
        the identity (the metric is the preconditioner, :mod:`conditional_metric`)."""
        return np.ones(self.d) if self.layout == "conditional" else metric

    def moved(self, x, metric):
        """The vector NUTS moves for positions x (..., d) under ``metric``."""
        if self.layout != "conditional":
            return x
        return conditional_metric.from_position(x, metric)

    def per_chain(self, args) -> tuple:
        """The inputs' values, the same for every chain: (devices, chains each, ...)."""
        return tuple(np.broadcast_to(np.asarray(a, dtype=float),
                                     (self.n_dev, self.per_dev) + np.shape(a)) for a in args)

    def programs(self, args: tuple) -> tuple:
        """The compiled start-up and chunk programs (``restart``, ``advance``) for inputs shaped
        like ``args`` (from :meth:`per_chain`), compiled on the first call for those shapes.

        The chunk program is lowered from the start-up program's output shapes and both are
        compiled at once, the start-up program in a thread (XLA's compiler releases the GIL),
        instead of each at its first call, one after the other: their ≈ 1.8 s and ≈ 3.0 s of
        XLA compilation overlap, and the default fit took 34.5 instead of 35.6 s on 2 cores
        without the compilation cache (benchmarks/README.md, "The default fit")."""
        import threading

        import jax

        key = tuple((np.shape(a), np.asarray(a).dtype.str) for a in args)
        if key in self._programs:
            return self._programs[key]
        lead = (self.n_dev, self.per_dev)
        eps = np.zeros(lead)
        restart = self.restart.lower(np.zeros(lead + (2,), dtype=np.uint32),
                                     np.zeros(lead + (self.d,)), eps,
                                     self.nuts_metric(self.identity()), _count(0), args)
        done: dict = {}

        def compile_restart():
            try:
                done["restart"] = restart.compile()
            except BaseException as exc:     # re-raised below, in the caller's thread
                done["error"] = exc

        worker = threading.Thread(target=compile_restart, daemon=True)
        worker.start()
        try:
            advance = self.advance.lower(restart.out_info, jax.eval_shape(self.new_da, eps),
                                         ADAPT, args).compile()
        finally:
            worker.join()
        if "error" in done:
            raise done["error"]
        self._programs[key] = done["restart"], advance
        return self._programs[key]

    def start(self, keys, z: dict, eps: float, inv_mass: np.ndarray, args: tuple,
              capped: int = 0):
        """NUTS states at the positions ``z`` (spread), with step size ``eps`` and the metric
        ``inv_mass`` for every chain, and fresh dual averaging of the step size; the trees of
        the next ``capped`` iterations have at most ``EARLY_DEPTH`` levels. ``args``: from
        :meth:`per_chain`."""
        eps = np.full((self.n_dev, self.per_dev), eps)
        args = self.inputs(inv_mass, args)
        restart, _ = self.programs(args)
        state = restart(self.spread(keys), self.moved(z, inv_mass), eps,
                        self.nuts_metric(inv_mass), _count(capped), args)
        return state, self.new_da(eps)

    def finite(self, point: dict, args=()) -> bool:
        """Whether the log density and its gradient are finite at the unconstrained ``point``
        (evaluated by the program that starts the chains, so no separate compile)."""
        z = self.spread(np.broadcast_to(self.flatten(point), (self.slots, self.d)))
        keys = np.zeros((self.slots, 2), dtype=np.uint32)
        state, _ = self.start(keys, z, INITIAL_STEP, self.identity(), self.per_chain(args))
        return bool(np.all(np.isfinite(np.asarray(state.potential_energy)))
                    and np.all(np.isfinite(np.asarray(state.z_grad))))

    def identity(self):
        """The unit metric, in this sampler's layout."""
        if self.layout == "conditional":
            return conditional_metric.identity(self.d_global, self.d - self.d_global)
        return np.eye(self.d) if self.layout == "dense" else np.ones(self.d)

    def metric(self, chains: np.ndarray, scales_only: bool = False, previous=None):
        """The metric from a window's positions (chains × draws × d): the inverse mass matrix,
        their shrunk covariance (``dense``) or its diagonal (``diag``, or in every layout with
        ``scales_only``); or the preconditioner of the ``conditional`` metric
        (:mod:`conditional_metric`). ``previous`` (default the identity) where the window is
        too short to estimate it (:func:`enough`) or the estimate is not finite."""
        previous = self.identity() if previous is None else previous
        if not enough(self.layout, chains.shape[0], chains.shape[1]):
            return previous
        draws = np.reshape(chains, (-1, self.d))
        with np.errstate(invalid="ignore", over="ignore"):   # a non-finite estimate: below
            if self.layout == "conditional":
                n_eff = (None if scales_only
                         else conditional_metric.effective_draws(chains, self.d_global,
                                                                      self.ess))
                new = conditional_metric.estimate(draws, self.d_global, scales_only, n_eff)
            elif scales_only or self.layout == "diag":
                variances = shrunk_variance(draws)
                new = np.diag(variances) if self.layout == "dense" else variances
            else:
                new = shrunk_covariance(draws)
        parts = new if isinstance(new, tuple) else (new,)
        return new if all(np.all(np.isfinite(a)) for a in parts) else previous

    def with_unit(self, metric, free: np.ndarray):
        """``metric`` with the coordinates ``free`` (a boolean mask over d) independent of
        the others and of unit variance: the exact posterior of standard normal parameters
        that nothing else depends on (a benchmark subset's parameters without data)."""
        free = np.asarray(free, dtype=bool)
        if self.layout == "conditional":
            return conditional_metric.with_unit(metric, free)
        if self.layout != "dense":
            return np.where(free, 1.0, metric)
        return conditional_metric.unit_block(metric, free)

    def spread(self, x):                          # (slots, ...) → (devices, chains each, ...)
        x = np.asarray(x)
        return x.reshape((self.n_dev, self.per_dev) + x.shape[1:])

    def gather(self, x):                          # the inverse, without the spare slots
        x = np.asarray(x)
        return x.reshape((self.slots,) + x.shape[2:])[:self.cfg.chains]

    def last_positions(self, z: dict) -> list[dict]:
        """Each chain's last draw of ``z`` (chain, draw, ...): where a warm start resumes."""
        return [{n: np.asarray(z[n][c, -1]) for n in self.names}
                for c in range(self.cfg.chains)]

    def nested_program(self, inner: int):
        """The program of :meth:`conditional_runs` for ``inner`` transitions per input value:
        (states, preconditioner, the inputs' values with a leading axis of steps) → (states,
        per step the last position, and the inner transitions' stats)."""
        import jax
        from jax import lax

        if inner in self._nested:
            return self._nested[inner]
        kernel, position, n_pre, potential = (self._kernel, self._position, self._n_pre,
                                              self.potential)

        def runs(state, pre, values, fixed):
            def one(s, value):
                args = tuple(pre) + tuple(value) + tuple(fixed)
                # the state's log density and gradient were for the previous value
                pe, grad = jax.value_and_grad(
                    lambda y: potential(position(y, args), *args[n_pre:]))(s.z)
                s = s._replace(potential_energy=pe, z_grad=grad)

                def step(s, _):
                    s = kernel(s, model_args=args)
                    return s, (s.diverging, s.num_steps, s.energy, s.accept_prob)
                s, (div, steps, energy, accept) = lax.scan(step, s, None, length=inner)
                return s, (position(s.z, args), div, steps, energy, s.potential_energy, accept)
            return lax.scan(one, state, values)
        self._nested[inner] = self._on_devices(runs, in_axes=(0, 0, 0, 0))
        return self._nested[inner]

    def conditional_runs(self, warm: Draws, values: tuple, inner: int, *, seed: int,
                         fixed: tuple = (), progressbar: bool = True,
                         length: int | None = None) -> Draws:
        """Chained conditional runs: each chain takes its sequence of the leading inputs'
        ``values`` (each array (chains, steps, ...)), the other inputs being ``fixed`` (the
        same for every step and chain), in order and, for each, ``inner`` NUTS transitions
        from where the previous value's left it, with ``warm``'s metric and step size (no
        adaptation); its last position is that value's draw. The nested MCMC of the cut
        (``cut.py``): the inputs are the curve parameters, one draw of theirs per step.
        Returns draws (chain, step, ...) whose stats hold, per step, the inner transitions'
        divergences (any), leapfrog steps (their sum) and energies (``inner_energy``, all)."""
        import jax

        chains, steps = self.cfg.chains, int(np.shape(values[0])[1])
        # ``length``: the steps of one chunk (one compiled program per length), default
        # chunk_length(steps)
        length = length or chunk_length(steps)
        n_chunks = math.ceil(steps / length)
        pad = [min(i, chains - 1) for i in range(self.slots)]
        # whole chunks (one compiled program): the last value repeated, its draws dropped
        at = np.minimum(np.arange(n_chunks * length), steps - 1)
        values = tuple(self.spread(np.asarray(v, dtype=float)[pad][:, at]) for v in values)
        fixed = self.per_chain(fixed)
        first = tuple(v[:, :, 0] for v in values) + fixed
        keys = np.asarray(jax.random.split(jax.random.PRNGKey(seed), self.slots))
        z = self.spread(np.stack([self.flatten(warm.last[i]) for i in pad]))
        pre = self.per_chain(warm.metric) if self.layout == "conditional" else ()
        state, _ = self.start(keys, z, warm.step_size, warm.metric, first)
        program = self.nested_program(inner)
        bar = Progress(steps * inner, chains, progressbar)
        t0 = time.perf_counter()
        outs = []
        for i in range(n_chunks):
            part = tuple(v[:, :, i * length:(i + 1) * length] for v in values)
            state, out = program(state, pre, part, fixed)
            outs.append(jax.tree_util.tree_map(self.gather, out))
            bar.update(min(length, steps - i * length) * inner, "conditional runs")
        seconds = time.perf_counter() - t0
        bar.close()
        z, diverging, n_steps, energy, potential_energy, accept = (
            np.concatenate([o[i] for o in outs], axis=1)[:, :steps] for i in range(6))
        z = self.unflatten(z)
        stats = {"diverging": diverging.any(axis=-1), "n_steps": n_steps.sum(axis=-1),
                 "inner_energy": energy, "energy": energy[..., -1], "lp": -potential_energy,
                 "acceptance_rate": accept.mean(axis=-1),
                 "step_size": np.full(diverging.shape[:2], warm.step_size)}
        return Draws(z=z, stats=stats, seconds=seconds, metric=warm.metric,
                     step_size=warm.step_size, last=self.last_positions(z))

    def run(self, starts: list[dict], args=(), *, seed: int, warm: Draws | None = None,
            tune: int | None = None, progressbar: bool = True,
            warmup_only: bool = False) -> Draws:
        """Warm-up and draws from the unconstrained ``starts`` (one dict per chain), with the
        inputs' values ``args``. ``warm``: a run to start from (its chains' last positions,
        metric and step size) instead of ``starts``, the identity metric and a step of 0.1.
        ``tune``: this run's warm-up iterations (default ``sampler.tune``; rounded up to whole
        chunks, at least four), on the same schedule of doubling windows; from ``warm``, the
        last metric is estimated from the last two windows. ``warmup_only``: no draws; the
        result holds the adapted state only (``z`` and ``stats`` empty)."""
        import jax

        chains, n_dev, per_dev, slots = self.cfg.chains, self.n_dev, self.per_dev, self.slots
        n_tune = warmup_chunks(self.cfg.tune if tune is None else tune, self.length)
        updates = metric_updates(n_tune)
        # at an update whose window is too short (e.g. one iteration of one chain) the metric
        # is kept and the window carries over: a variance from one draw is NaN
        plan = estimated(updates, self.length, chains, self.layout)
        spread, gather = self.spread, self.gather
        args = self.per_chain(args)
        keys = np.asarray(jax.random.split(jax.random.PRNGKey(seed), (len(updates) + 1) * slots))
        keys = keys.reshape(len(updates) + 1, slots, -1)
        pad = [min(i, chains - 1) for i in range(slots)]
        if warm is not None:
            starts = warm.last
        z = spread(np.stack([self.flatten(starts[i]) for i in pad]))
        bar = Progress((n_tune + (0 if warmup_only else self.n_draw)) * self.length, chains,
                       progressbar)
        t0 = time.perf_counter()
        # warm-up: windows of doubling length; at each window's end the metric becomes the
        # positions' covariance in that window, pooled over the chains (shrunk towards its
        # diagonal), and the step size's dual averaging starts again from where it was. From
        # a cold start the trees are capped in the first two windows (identity, diagonal).
        # A cold start of the conditional metric first climbs the log density and starts from
        # its curvature there instead (the Laplace approximation): the identity and diagonal
        # windows' positions, still travelling, gave it estimates that cost 400-700 leapfrog
        # steps per iteration in the next windows
        from_identity = warm is None and self.layout != "conditional"
        if warm is not None:
            inv_mass, eps = warm.metric, warm.step_size
        elif from_identity:
            inv_mass, eps = self.identity(), INITIAL_STEP
        else:
            z = np.asarray(self.optimise(z, args))
            inv_mass, eps = self.laplace(z, args), INITIAL_STEP
        capped = updates[0] * self.length if from_identity else 0
        state, da = self.start(keys[0], z, eps, inv_mass, args, capped)
        inputs = self.inputs(inv_mass, args)
        _, advance = self.programs(inputs)
        window, previous, n_estimated = [], [], 0
        for i in range(n_tune):
            (state, da), out = advance(state, da, ADAPT, inputs)
            positions = gather(out[0])
            window.append(positions)
            bar.update(self.length, "warm-up")
            if i + 1 in updates:
                eps = float(np.exp(np.mean(gather(da[1]))))
                early = from_identity and n_estimated == 0
                k = updates.index(i + 1)
                if plan[k]:      # else the metric is kept and this window goes on in the next
                    # (from the identity: only the scales.) A warm start's last estimate also
                    # takes the window before it: its windows are short (100 iterations of the
                    # sweep's 300), and from 800 draws instead of 400 the subsets' draws took
                    # 36.0 and 32.7 leapfrog steps on average instead of 40.3 and 36.3 (two
                    # seeds, benchmarks/README.md, "Where issue #7's targets stand")
                    pool = previous if warm is not None and k == len(updates) - 1 else []
                    inv_mass = self.metric(np.concatenate(pool + window, axis=1),
                                           scales_only=early, previous=inv_mass)
                    n_estimated += 1
                    previous, window = window, []
                # capped until the first dense metric (the identity's and the diagonal's windows)
                capped = ((updates[k + 1] - updates[k]) * self.length
                          if from_identity and n_estimated < 2 and k + 1 < len(updates) else 0)
                state, da = self.start(keys[k + 1], spread(positions[:, -1]), eps, inv_mass,
                                       args, capped)
                inputs = self.inputs(inv_mass, args)
        # the draws use the averaged step size of the last stretch, the same for every chain
        eps = float(np.exp(np.mean(gather(da[1]))))
        if warmup_only:
            bar.close()
            last = [self.unflatten(positions[c, -1]) for c in range(chains)]
            return Draws(z={}, stats={}, seconds=time.perf_counter() - t0, metric=inv_mass,
                         step_size=eps, last=last)
        state = self.set_step(state, np.full((n_dev, per_dev), eps))

        outs = []
        for _ in range(self.n_draw):
            (state, da), out = advance(state, da, FIXED, inputs)
            outs.append(jax.tree_util.tree_map(gather, out))
            bar.update(self.length, "draws")
        seconds = time.perf_counter() - t0
        bar.close()

        z, diverging, n_steps, energy, potential_energy, accept = (
            jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=1)[:, :self.cfg.draws],
                                   *[o[i] for o in outs])
            for i in range(6))
        z = self.unflatten(z)
        stats = {"diverging": diverging, "n_steps": n_steps, "energy": energy,
                 "lp": -potential_energy, "acceptance_rate": accept,
                 "tree_depth": np.log2(n_steps).astype(int) + 1,
                 "step_size": np.full(diverging.shape, eps)}
        return Draws(z=z, stats=stats, seconds=seconds, metric=inv_mass, step_size=eps,
                     last=self.last_positions(z))


def metric_layout(mass_matrix: str, d: int) -> str:
    """The metric a sampler of ``d`` parameters uses for ``sampler.mass_matrix``: "dense",
    "conditional" or "diag"; "auto" is dense up to :data:`DENSE_UP_TO` parameters and
    conditional above."""
    if mass_matrix == "auto":
        return "dense" if d <= DENSE_UP_TO else "conditional"
    return mass_matrix


def _count(n: int) -> np.ndarray:
    """An iteration count as the start-up program takes it (one dtype: one compiled program)."""
    return np.asarray(n, dtype=np.int32)


class Progress:
    """A tqdm bar over all chains' iterations (on stderr), or nothing when disabled."""

    def __init__(self, total: int, chains: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"{chains} chains", unit="it", file=sys.stderr,
                            dynamic_ncols=True)

    def update(self, n: int, phase: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(phase, refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
