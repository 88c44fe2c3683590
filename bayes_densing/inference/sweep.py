"""Many fits of one model, compiled once: the sampler behind `bayes-densing subsets` and the
simulation-based calibration (``sbc.py``).

Every benchmark subset is the same PyMC model (``build_model(..., weights=...)``) with a 0/1
weight per observation and per benchmark; every simulated dataset of one design is the same
model with other correct counts (``counts=...``). The log density is turned into a JAX function
of (parameters, weights, counts) once, and the default sampler (``dense_nuts.Sampler``: NUTS
with the windowed warm-up of a dense or diagonal metric, as ``sampler.mass_matrix`` says) runs
every fit with those as arguments. So a sweep compiles once, whatever the number of subsets or
datasets, and its fits are sampled exactly as a single fit is.

A fit can start from an earlier fit's adapted metric, step size and positions (``warm``):
the benchmark subsets start from the fit on all of them instead of the identity metric, with
a shorter warm-up (``tune``; about a quarter of a subset's time saved, benchmarks/README.md).
The parameters a subset leaves without data start afresh from their exact posterior, a
standard normal (``SweepSampler.warm_start``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import xarray as xr
import numpy as np
import pytensor.tensor as pt

from bayes_densing.inference import bridge
from bayes_densing.config import Config
from bayes_densing.data import ScoreData
from bayes_densing.inference.sample import chain_method, select_device, unconstrained_starts
from bayes_densing.model.build import build_model
from bayes_densing.model.likelihood import log_binomial
from bayes_densing.model.inputs import setting_values
from bayes_densing.model.inputs import setting_inputs as model_setting_inputs
from bayes_densing.sampling import dense_nuts


@dataclass
class SweepSampler:
    """A compiled family of fits over weight vectors (and counts);
    ``sample(obs_w, bench_w, seed, counts=None, warm=None)``."""

    model: object
    sampler: dense_nuts.Sampler
    posterior: object          # bridge.posterior_function of the model and its weights
    config: Config
    counts: np.ndarray         # the data's correct counts k
    n: np.ndarray              # and items n, per observation
    obs_target: np.ndarray     # each observation's target (index), negative for a reference
    inputs: tuple = ()         # the model's symbolic inputs: weights, counts, log binomials
    settings: np.ndarray | None = None      # priors and D0, when they are an input too
    last: dense_nuts.Draws | None = None    # the latest fit's draws and adapted state

    def setting_args(self, settings: Config | None = None) -> tuple:
        """The input value of the priors and D0: those of ``settings`` (a variant's config)
        or of the family's; empty when they were compiled in as constants."""
        if self.settings is None:
            if settings is not None:
                raise ValueError("this family was compiled with its priors and D0 as "
                                 "constants: compile_sweep(..., setting_inputs=True) to vary "
                                 "them")
            return ()
        return (self.settings if settings is None else setting_values(settings),)

    @staticmethod
    def posterior_args(args: tuple) -> tuple:
        """Of the log density's input values (weights, counts, log binomials, [settings]), the
        ones the draws' deterministics and prior terms depend on: weights, priors and D0."""
        return tuple(args[:2]) + tuple(args[4:])

    def initial_points(self, chains: int, seed: int, args: tuple) -> list[dict]:
        """``sample.unconstrained_starts`` of the model, its finiteness checked at the
        inputs' values ``args`` by the sampler's start-up program."""
        return unconstrained_starts(self.model, chains, seed,
                                    finite=lambda point: self.sampler.finite(point, args),
                                    start=self.sampler.initial_point)

    def sample(self, obs_w: np.ndarray, bench_w: np.ndarray, seed: int,
               counts: np.ndarray | None = None, warm: dense_nuts.Draws | None = None,
               tune: int | None = None, settings: Config | None = None) -> xr.DataTree:
        """Draws for one weight vector: ``config.sampler.chains`` chains, as a DataTree;
        ``counts``: other correct counts for the same observations (default: the data's);
        ``warm``: an earlier fit's ``last`` to start from (:meth:`warm_start`); ``tune``:
        warm-up iterations (default ``sampler.tune``); ``settings``: a config whose priors and
        D0 to use (a family compiled with ``setting_inputs``)."""
        k = (self.counts if counts is None else np.asarray(counts)).astype(float)
        if k.shape != self.n.shape or np.any(k < 0) or np.any(k > self.n):
            raise ValueError(f"counts must be {len(self.n)} whole numbers in 0..n")
        args = (obs_w, bench_w, k, log_binomial(self.n, k), *self.setting_args(settings))
        if warm is not None:
            warm = self.warm_start(warm, obs_w, bench_w, seed)
        starts = (warm.last if warm is not None
                  else self.initial_points(self.config.sampler.chains, seed, args))
        self.last = self.sampler.run(starts, args, seed=seed, warm=warm, tune=tune,
                                     progressbar=False)
        return bridge.to_inferencedata(self.model, self.last.z, self.last.stats,
                                           posterior=self.posterior,
                                           args=self.posterior_args(args),
                                           observed=False)

    def compile_now(self, obs_w: np.ndarray, bench_w: np.ndarray) -> None:
        """Run the sampler's programs once under these weights (a warm-up of the fewest
        iterations, no draws, nothing kept), so that they are compiled before a fit needs
        them: a sweep's idle worker does this while the parent fit runs elsewhere."""
        k = self.counts.astype(float)
        args = (obs_w, bench_w, k, log_binomial(self.n, k), *self.setting_args())
        starts = self.initial_points(self.config.sampler.chains, 0, args)
        self.sampler.run(starts, args, seed=0, tune=1, warmup_only=True, progressbar=False)

    def without_data(self, obs_w: np.ndarray, bench_w: np.ndarray,
                     sampler: dense_nuts.Sampler | None = None) -> np.ndarray:
        """Which coordinates of the flat parameter vector have no data under these weights:
        an unweighted benchmark's parameters and the latents of targets without a weighted
        score. Their posterior is a standard normal, independent of the rest (``build_model``).
        ``sampler``: the sampler whose parameters are flattened (default the sweep's; the
        cut's moves the target module only)."""
        sampler = sampler or self.sampler
        scored = np.zeros(len(self.model.coords["target"]), bool)
        scored[self.obs_target[(np.asarray(obs_w) > 0) & (self.obs_target >= 0)]] = True
        unused = {("benchmark",): np.asarray(bench_w) == 0, ("target",): ~scored}
        rvs = {v.name: self.model.values_to_rvs[v].name for v in self.model.value_vars}
        return sampler.flatten({
            name: unused.get(tuple(self.model.named_vars_to_dims.get(rvs[name]) or ()),
                             np.zeros(sampler.shapes[name], bool))
            for name in sampler.names}).astype(bool)

    def warm_start(self, warm: dense_nuts.Draws, obs_w, bench_w, seed: int,
                   sampler: dense_nuts.Sampler | None = None) -> dense_nuts.Draws:
        """``warm`` (another fit's adapted state) for a fit under these weights: the
        coordinates without data (:meth:`without_data`) start from their exact posterior,
        standard normal draws, with unit variance in the metric. Kept at the other fit's
        values, such a coordinate could start many of its new standard deviations out (a
        benchmark's ln φ near 7) with another posterior's scale, and the warm-up's first
        window took 250–640 leapfrog steps per iteration on the small subsets
        (benchmarks/README.md)."""
        sampler = sampler or self.sampler
        free = self.without_data(obs_w, bench_w, sampler)
        if not free.any():
            return warm
        rng = np.random.default_rng([seed, 1])
        last = []
        for point in warm.last:
            x = sampler.flatten(point)
            x[free] = rng.standard_normal(int(free.sum()))
            last.append(sampler.unflatten(x))
        return dataclasses.replace(warm, metric=sampler.with_unit(warm.metric, free),
                                   last=last)


def compile_sweep(data: ScoreData, config: Config,
                  setting_inputs: bool = False) -> SweepSampler:
    """Build the weighted model for ``data`` and its sampler (compiled on the first fit);
    ``setting_inputs``: the priors and D0 inputs too (``inputs.setting_inputs``), so that fits
    under other priors or another D0 share the program (off by default: as constants they
    are folded into it)."""
    s = config.sampler
    # before JAX creates its backends
    n_devices = select_device(s.device, s.host_devices)
    obs_w, bench_w = pt.vector("obs_weight"), pt.vector("bench_weight")
    k, binomln = pt.vector("correct"), pt.vector("log_binomial")
    model = build_model(data, config, weights=(obs_w, bench_w), counts=(k, binomln))
    inputs, start = (obs_w, bench_w, k, binomln), None
    if setting_inputs:
        # PyMC's initial point depends on the priors: the one at the config's
        start = model.initial_point()
        vector, symbolic = model_setting_inputs(config)
        model = build_model(data, config, weights=(obs_w, bench_w), counts=(k, binomln),
                            settings=symbolic)
        inputs = (*inputs, vector)
    sampler = bridge.sampler(model, s, inputs=inputs, initial_point=start,
                             parallel=chain_method(s, n_devices) == "parallel")
    return SweepSampler(model=model, sampler=sampler,
                        posterior=bridge.posterior_function(
                            model, SweepSampler.posterior_args(inputs)),
                        config=config, counts=data.obs.k.to_numpy(), n=data.obs.n.to_numpy(),
                        obs_target=data.obs.model_idx.to_numpy() - data.n_ref, inputs=inputs,
                        settings=setting_values(config) if setting_inputs else None)
