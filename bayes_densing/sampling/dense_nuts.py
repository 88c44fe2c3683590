"""The default sampler (``sampler.mass_matrix = "auto"``): NumPyro's NUTS transition on a log
density written in JAX (:class:`density.LogDensity`), with our own windowed warm-up of a dense
metric or, above :data:`DENSE_UP_TO` parameters, of the conditional metric
(:mod:`conditional_metric`). A :class:`Sampler` compiles its programs once per shape of the
model's runtime inputs, and its runs (a sweep's subsets, an SBC's datasets, a warm start from
another run's adapted state) reuse them.

Our own warm-up because the trend's slope, the targets' log densities and the curves' levels
are correlated, which a diagonal metric cannot follow, while NumPyro's dense adaptation
estimates its first metrics from a few draws of one chain (singular: the step size collapses)
and compiles its schedule into the transition (benchmarks/README.md, "Dense mass matrix").
:class:`Schedule` is the warm-up's plan.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from bayes_densing.sampling import conditional_metric
from bayes_densing.sampling.covariance import shrunk_covariance, shrunk_variance
from bayes_densing.sampling.density import LogDensity

CHUNKS = 20          # progress updates over the draws (the warm-up has as many per length)
INITIAL_STEP = 0.1   # the first window's step size, before dual averaging moves it
EARLY_DEPTH = 6      # the trees' depth limit until the first dense metric (NUTS's usual: 10)
UNCAPPED = 1 << 30   # NumPyro's iteration counter at a start with no capped iterations
ADAPT, FIXED = np.array(True), np.array(False)   # arrays, not Python bools: one compiled program
ADAM_STEPS, ADAM_RATE = 500, 0.02   # a large model's cold start first climbs the log density
DENSE_UP_TO = 500    # "auto": a dense metric up to this many parameters, the conditional above
# a metric is estimated from a window of at least MIN_DRAWS positions pooled over the chains
# (below 5, Stan's regularisation, ``covariance.regularised``, weighs its 1e-3 prior more than
# the draws), the diagonal and the dense alike (the dense estimate's shrinkage keeps it positive
# definite whatever n), and with the conditional metric from MIN_CHAIN_DRAWS of each chain (its
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


def joined(outs: list, n: int) -> list:
    """The chunks' outputs ``outs`` (each a tuple of arrays (chains, iterations, ...)) joined
    along the iterations, the first ``n`` kept."""
    return [np.concatenate([o[i] for o in outs], axis=1)[:, :n] for i in range(len(outs[0]))]


@dataclass(frozen=True)
class Update:
    """The end of a warm-up window, after chunk ``at``: the metric is estimated from the
    window's positions if ``estimate`` (else it is kept and the window goes on in the next),
    from their variances only if ``scales_only``, from the window before it as well if
    ``pooled``; the step size's dual averaging starts again, and the next window's first
    ``capped`` iterations have capped trees."""

    at: int
    estimate: bool
    scales_only: bool
    pooled: bool
    capped: int


@dataclass(frozen=True)
class Schedule:
    """A warm-up's plan: ``chunks`` chunks, the first window's first ``capped`` iterations with
    capped trees, and the windows' ends, ``updates`` (:meth:`Sampler.schedule`).

    The windows double in length, as Stan's (:func:`metric_updates`). From a cold start the
    first (~5% of the warm-up) starts from the identity metric and ends with its positions'
    variances; at each later window's end the metric becomes the covariance of the window's
    positions pooled over the chains, its off-diagonal shrunk towards zero by d / (n + d)
    (``shrunk_covariance``). Until the first dense metric the trees have at most
    2^EARLY_DEPTH − 1 leapfrog steps: a metric that does not know the posterior's scales yet
    grows long trees that only feed estimates the next window replaces (benchmarks/README.md,
    "The default fit on the bundled dataset", sixth update). The conditional metric's cold
    start begins from the curvature at the top of a climb instead (:meth:`Sampler.laplace`),
    uncapped, and every window's end re-estimates the whole preconditioner. A warm start's last
    estimate also takes the window before it, as its windows are short (benchmarks/README.md,
    "Where issue #7's targets stand"). After the last window (~10% of the warm-up) only the
    step size adapts; the draws use its average."""

    chunks: int
    capped: int
    updates: tuple[Update, ...]


@dataclass
class Chains:
    """The chains between two chunks: NUTS's ``state`` and the step size's dual averaging
    ``da`` (on the devices), the ``metric`` and the chunk program's ``inputs`` for it, and the
    last chunk's ``positions`` (chains, iterations, d)."""

    state: object
    da: object
    metric: object
    inputs: tuple
    positions: np.ndarray | None = None


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

    NUTS moves one flat vector of the unconstrained parameters (:meth:`flatten`): with a
    dict of arrays every update of a position, momentum or gradient was one XLA kernel per
    array (benchmarks/README.md, "Where a leapfrog step's time goes"). Every phase runs in
    chunks of one length, so one compiled program advances them all; the warm-up is rounded up
    to whole chunks.
    """

    def __init__(self, density: LogDensity, cfg, *, parallel: bool = True, ess=None):
        import jax

        self.cfg, self.parallel = cfg, parallel
        self.ess = ess or conditional_metric.numpyro_ess
        self.names = names = list(density.names)
        self.initial_point = dict(density.initial_point)   # (the starting points' centre)
        self.shapes = {n: np.shape(self.initial_point[n]) for n in names}
        self.d = sum(int(np.prod(shape)) for shape in self.shapes.values())
        self.layout = metric_layout(cfg.mass_matrix, self.d)
        conditional = self.layout == "conditional"
        # the flat vector's order: sorted names (NumPyro's order of a dict, the metric's); with
        # the conditional metric the globals (the parameters not per target) come first
        latent = density.latent
        self.order = sorted(names, key=lambda n: (conditional and n in latent, n))
        self.d_global = sum(int(np.prod(self.shapes[n])) for n in names if n not in latent)
        self.n_pre = 4 if conditional else 0    # the preconditioner's arrays lead the inputs
        self.length = chunk_length(cfg.draws)
        self.n_draw = math.ceil(cfg.draws / self.length)
        self.n_dev = max(1, min(jax.local_device_count(), cfg.chains)) if parallel else 1
        self.per_dev = math.ceil(cfg.chains / self.n_dev)
        self.slots = self.n_dev * self.per_dev    # spare slots repeat the last chain; dropped
        self.pad = [min(i, cfg.chains - 1) for i in range(self.slots)]   # each slot's chain
        self.potential = self._potential(density.logp)
        self._nuts_programs()
        self.optimise = self.on_devices(self._adam)
        self.curvature = self.on_devices(self._curvature)
        self._programs: dict = {}     # the inputs' shapes → the compiled (restart, advance)
        self._nested: dict = {}       # conditional_runs' programs, by inner length

    def _potential(self, logp):
        """−log density of the unconstrained parameters, flattened: ``potential(x, *args)``."""
        import jax

        names = self.names

        @jax.jit     # traced once: NUTS's init and leapfrog reuse the jaxpr
        def potential(x, *args):
            params = self.unflatten(x)
            return -logp(*[params[n] for n in names], *args)
        return potential

    def position(self, y, args):
        """x, the flat parameters, from the vector NUTS moves (y; x itself but with the
        conditional metric) and the programs' inputs ``args``."""
        if self.layout != "conditional":
            return y
        import jax.numpy as jnp

        return conditional_metric.to_position(y, args[:self.n_pre], jnp)

    def moved_potential(self, *args):
        """−log density of the vector NUTS moves, for the programs' inputs ``args``."""
        return lambda y: self.potential(self.position(y, args), *args[self.n_pre:])

    def on_devices(self, f, in_axes=0):
        """``f`` of one chain as a program over arrays (devices, chains each, ...)."""
        import jax
        from jax import lax

        if self.per_dev > 1 and not self.parallel:       # one device (a GPU): batched
            return jax.pmap(jax.vmap(f, in_axes=in_axes), in_axes=in_axes)

        def one(*xs):
            axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(xs)
            if self.per_dev > 1:
                # several chains on a host device: one after the other (lax.map), not batched
                # (vmap): a batch's trees wait for its longest, and on the CPU its log density
                # costs more per chain (benchmarks/README.md, "Host devices: one per chain,
                # not 100")
                mapped = [x for x, a in zip(xs, axes) if a is not None]

                def each(chain):
                    it = iter(chain)
                    return f(*[next(it) if a is not None else x for x, a in zip(xs, axes)])
                return lax.map(each, mapped)
            # one chain per device (the CPU default): unbatched, which compiles sooner than
            # vmapped over an axis of 1 and steps no slower (benchmarks/README.md, "The default
            # fit on the bundled dataset", sixth update)
            xs = [x if a is None else jax.tree_util.tree_map(lambda v: v[0], x)
                  for x, a in zip(xs, axes)]
            return jax.tree_util.tree_map(lambda v: v[None], f(*xs))
        return jax.pmap(one, in_axes=in_axes)

    def _nuts_programs(self) -> None:
        """NUTS's programs over the devices: ``advance`` (one chunk of transitions),
        ``restart`` (states at given positions, step size and metric), ``new_da`` and
        ``set_step`` (the step size), and the kernel :meth:`nested_program` runs.

        NUTS runs with a given step size and metric, with NumPyro's adaptation off (its
        schedule would be compiled into the transition): we adapt between chunks."""
        import jax
        import jax.numpy as jnp
        from jax import lax
        from numpyro.infer.hmc import hmc
        from numpyro.infer.hmc_util import dual_averaging

        init_kernel, sample_kernel = hmc(potential_fn_gen=self.moved_potential, algo="NUTS")
        da_init, da_update = dual_averaging()
        position, dense = self.position, self.layout == "dense"

        def chunk(state, da, adapting, args):
            """``length`` NUTS transitions; while ``adapting``, dual averaging of the step size."""
            def step(carry, _):
                s, da = carry
                s = sample_kernel(s, model_args=args)
                da_new = da_update(self.cfg.target_accept - s.accept_prob, da)
                da = jax.tree_util.tree_map(lambda new, old: jnp.where(adapting, new, old),
                                            da_new, da)
                eps = jnp.where(adapting, jnp.exp(da[0]), s.adapt_state.step_size)
                s = s._replace(adapt_state=s.adapt_state._replace(step_size=eps))
                return (s, da), (position(s.z, args), s.diverging, s.num_steps, s.energy,
                                 s.potential_energy, s.accept_prob)
            return lax.scan(step, (state, da), None, length=self.length)

        # ``capped``: how many of the next iterations have trees of at most EARLY_DEPTH.
        # NumPyro caps at max_tree_depth's first entry while its iteration counter is below
        # num_warmup (its adaptation is off: only the counter is used), so the start sets the
        # counter ``capped`` below that. (Two kernels of fixed depths would not set the
        # counter, but would compile a second NUTS program for every sampler.)
        # The metric is one for all chains (in_axes None), so NumPyro factors it once per
        # device: batched, jaxlib's LAPACK Cholesky waits inside XLA's CPU pool for tasks of
        # that pool, which deadlocked once every pool thread ran a device's program
        # (benchmarks/README.md, "Host devices: one per chain, not 100")
        def restart(key, z, eps, inv_mass, capped, args):
            state = init_kernel(z, UNCAPPED, step_size=eps, inverse_mass_matrix=inv_mass,
                                adapt_step_size=False, adapt_mass_matrix=False,
                                dense_mass=dense, max_tree_depth=(EARLY_DEPTH, 10),
                                model_args=args, rng_key=key)
            return state._replace(i=(UNCAPPED - capped).astype(state.i.dtype))
        self.advance = self.on_devices(chunk, in_axes=(0, 0, None, 0))
        self.restart = self.on_devices(restart, in_axes=(0, 0, 0, None, None, 0))
        self.new_da = self.on_devices(lambda eps: da_init(jnp.log(10.0 * eps)))
        # on the devices, so the state stays there between chunks
        self.set_step = self.on_devices(lambda s, eps: s._replace(
            adapt_state=s.adapt_state._replace(step_size=eps)))
        self._sample_kernel = sample_kernel

    def _adam(self, x, args):
        """:data:`ADAM_STEPS` of Adam on the log density from one chain's start ``x``; the
        start itself where the end is not finite or not higher."""
        import jax
        import jax.numpy as jnp
        from jax import lax

        potential = self.potential
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

    def _curvature(self, x, args):
        """The Hessian of −log density at one chain's ``x``, as far as the conditional
        metric needs it: the globals' rows (d_g Hessian-vector products) and the latents'
        diagonal, which is their whole block, from one more product along all of them."""
        import jax
        import jax.numpy as jnp

        potential = self.potential

        def hvp(v):
            return jax.jvp(lambda x: jax.grad(potential)(x, *args), (x,), (v,))[1]
        d_g = self.d_global
        rows = jax.vmap(hvp)(jnp.eye(d_g, self.d, dtype=x.dtype))
        along = jnp.concatenate([jnp.zeros(d_g, x.dtype), jnp.ones(self.d - d_g, x.dtype)])
        return rows, hvp(along)[d_g:]

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
        instead of each at its first call, one after the other: their compilations overlap."""
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

    def keys(self, seed: int, n: int) -> np.ndarray:
        """``n`` random keys for each slot from ``seed``: (n, slots, 2)."""
        import jax

        keys = np.asarray(jax.random.split(jax.random.PRNGKey(seed), n * self.slots))
        return keys.reshape(n, self.slots, -1)

    def spread_points(self, points: list[dict]) -> np.ndarray:
        """Each chain's point of ``points`` (one dict per chain), flattened and spread over the
        slots (devices, chains each, d)."""
        return self.spread(np.stack([self.flatten(points[i]) for i in self.pad]))

    def averaged_step(self, da) -> float:
        """The step size of the dual averaging states ``da``: their average over the chains."""
        return float(np.exp(np.mean(self.gather(da[1]))))

    def nested_program(self, inner: int):
        """The program of :meth:`conditional_runs` for ``inner`` transitions per input value:
        (states, preconditioner, the inputs' values with a leading axis of steps) → (states,
        per step the last position, and the inner transitions' stats)."""
        import jax
        from jax import lax

        if inner in self._nested:
            return self._nested[inner]
        kernel, position = self._sample_kernel, self.position

        def runs(state, pre, values, fixed):
            def one(s, value):
                args = tuple(pre) + tuple(value) + tuple(fixed)
                # the state's log density and gradient were for the previous value
                pe, grad = jax.value_and_grad(self.moved_potential(*args))(s.z)
                s = s._replace(potential_energy=pe, z_grad=grad)

                def step(s, _):
                    s = kernel(s, model_args=args)
                    return s, (s.diverging, s.num_steps, s.energy, s.accept_prob)
                s, (div, steps, energy, accept) = lax.scan(step, s, None, length=inner)
                return s, (position(s.z, args), div, steps, energy, s.potential_energy, accept)
            return lax.scan(one, state, values)
        self._nested[inner] = self.on_devices(runs, in_axes=(0, 0, 0, 0))
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
        # whole chunks (one compiled program): the last value repeated, its draws dropped
        at = np.minimum(np.arange(n_chunks * length), steps - 1)
        values = tuple(self.spread(np.asarray(v, dtype=float)[self.pad][:, at]) for v in values)
        fixed = self.per_chain(fixed)
        first = tuple(v[:, :, 0] for v in values) + fixed
        z = self.spread_points(warm.last)
        pre = self.per_chain(warm.metric) if self.layout == "conditional" else ()
        state, _ = self.start(self.keys(seed, 1)[0], z, warm.step_size, warm.metric, first)
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
        z, diverging, n_steps, energy, potential_energy, accept = joined(outs, steps)
        z = self.unflatten(z)
        stats = {"diverging": diverging.any(axis=-1), "n_steps": n_steps.sum(axis=-1),
                 "inner_energy": energy, "energy": energy[..., -1], "lp": -potential_energy,
                 "acceptance_rate": accept.mean(axis=-1),
                 "step_size": np.full(diverging.shape[:2], warm.step_size)}
        return Draws(z=z, stats=stats, seconds=seconds, metric=warm.metric,
                     step_size=warm.step_size, last=self.last_positions(z))

    def schedule(self, tune: int, warm: bool) -> Schedule:
        """The :class:`Schedule` of ``tune`` warm-up iterations (rounded up to whole chunks, at
        least four), from a ``warm`` start or a cold one."""
        from_identity = not warm and self.layout != "conditional"
        chunks = warmup_chunks(tune, self.length)
        ends = metric_updates(chunks)
        # at an update whose window is too short (e.g. one iteration of one chain) the metric
        # is kept and the window carries over: a variance from one draw is NaN
        plan = estimated(ends, self.length, self.cfg.chains, self.layout)
        updates, done = [], 0
        for k, (at, estimate) in enumerate(zip(ends, plan)):
            last = k + 1 == len(ends)
            # capped until the first dense metric (the identity's and the diagonal's windows)
            capped = from_identity and done + estimate < 2 and not last
            updates.append(Update(at=at, estimate=estimate,
                                  scales_only=from_identity and done == 0,
                                  pooled=warm and last,
                                  capped=(ends[k + 1] - at) * self.length if capped else 0))
            done += estimate
        return Schedule(chunks=chunks, capped=ends[0] * self.length if from_identity else 0,
                        updates=tuple(updates))

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
        plan = self.schedule(self.cfg.tune if tune is None else tune, warm is not None)
        args = self.per_chain(args)
        bar = Progress((plan.chunks + (0 if warmup_only else self.n_draw)) * self.length,
                       self.cfg.chains, progressbar)
        t0 = time.perf_counter()
        chains = self.warm_up(plan, self.begin(starts, args, warm), args, seed, bar)
        # the draws use the averaged step size of the last stretch, the same for every chain
        eps = self.averaged_step(chains.da)
        if warmup_only:
            bar.close()
            last = [self.unflatten(chains.positions[c, -1]) for c in range(self.cfg.chains)]
            return Draws(z={}, stats={}, seconds=time.perf_counter() - t0,
                         metric=chains.metric, step_size=eps, last=last)
        outs = self.draw(chains, eps, bar)
        seconds = time.perf_counter() - t0
        bar.close()
        return self.draws_of(outs, seconds, chains.metric, eps)

    def begin(self, starts: list[dict], args: tuple, warm: Draws | None) -> tuple:
        """Where the warm-up begins: the positions (spread), the metric and the step size; a
        ``warm`` run's, or the identity's at ``starts``, or with the conditional metric the
        curvature's (:meth:`laplace`) at the top of a climb from ``starts``: the identity's
        and the diagonal's windows, still travelling, gave it estimates that made the next
        windows' trees long (benchmarks/README.md, "The first metric from the curvature")."""
        z = self.spread_points(starts if warm is None else warm.last)
        if warm is not None:
            return z, warm.metric, warm.step_size
        if self.layout != "conditional":
            return z, self.identity(), INITIAL_STEP
        z = np.asarray(self.optimise(z, args))
        return z, self.laplace(z, args), INITIAL_STEP

    def warm_up(self, plan: Schedule, begin: tuple, args: tuple, seed: int,
                bar: Progress) -> Chains:
        """The warm-up ``plan`` from ``begin`` (:meth:`begin`), with the inputs' values
        ``args`` (from :meth:`per_chain`) and keys from ``seed``: the chains at its end."""
        keys = self.keys(seed, len(plan.updates) + 1)
        z, metric, eps = begin
        state, da = self.start(keys[0], z, eps, metric, args, plan.capped)
        chains = Chains(state, da, metric, self.inputs(metric, args))
        _, advance = self.programs(chains.inputs)
        ends = {u.at: k for k, u in enumerate(plan.updates)}
        window, previous = [], []
        for i in range(plan.chunks):
            (chains.state, chains.da), out = advance(chains.state, chains.da, ADAPT,
                                                     chains.inputs)
            chains.positions = self.gather(out[0])
            window.append(chains.positions)
            bar.update(self.length, "warm-up")
            if i + 1 not in ends:
                continue
            k = ends[i + 1]
            update = plan.updates[k]
            eps = self.averaged_step(chains.da)
            if update.estimate:     # else the metric is kept and this window goes on
                pool = previous if update.pooled else []
                chains.metric = self.metric(np.concatenate(pool + window, axis=1),
                                            scales_only=update.scales_only,
                                            previous=chains.metric)
                previous, window = window, []
            chains.state, chains.da = self.start(keys[k + 1],
                                                 self.spread(chains.positions[:, -1]), eps,
                                                 chains.metric, args, update.capped)
            chains.inputs = self.inputs(chains.metric, args)
        return chains

    def draw(self, chains: Chains, eps: float, bar: Progress) -> list:
        """The draws from the warmed-up ``chains`` at the step size ``eps``: each chunk's
        outputs (positions and stats), gathered."""
        import jax

        state = self.set_step(chains.state, np.full((self.n_dev, self.per_dev), eps))
        da = chains.da
        _, advance = self.programs(chains.inputs)
        outs = []
        for _ in range(self.n_draw):
            (state, da), out = advance(state, da, FIXED, chains.inputs)
            outs.append(jax.tree_util.tree_map(self.gather, out))
            bar.update(self.length, "draws")
        return outs

    def draws_of(self, outs: list, seconds: float, metric, eps: float) -> Draws:
        """The :class:`Draws` of the draws' chunk outputs ``outs`` (:meth:`draw`)."""
        z, diverging, n_steps, energy, potential_energy, accept = joined(outs, self.cfg.draws)
        z = self.unflatten(z)
        stats = {"diverging": diverging, "n_steps": n_steps, "energy": energy,
                 "lp": -potential_energy, "acceptance_rate": accept,
                 "tree_depth": np.log2(n_steps).astype(int) + 1,
                 "step_size": np.full(diverging.shape, eps)}
        return Draws(z=z, stats=stats, seconds=seconds, metric=metric, step_size=eps,
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
