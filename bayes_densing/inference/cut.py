"""Cut inference (Plummer 2015), ``model.curves = "cut"``: the curves from the reference
models alone, every target's effective size given them.

Two modules of the one model (``build.build_model``):

* the **curve module** θ (the exponents and their hierarchy, the performance maps, the
  ceiling, φ_reference, the references' outlier rate, the data and loss terms when on) sees
  the reference scores only;
* the **target module** ψ (the targets' log densities, the trend, φ_target and, with the
  robust likelihood, the targets' outlier rate) sees the target scores given θ.

The cut distribution is p(θ | y_ref) · p(ψ | θ, y_tgt). Its first factor is the model with
every target score weighted 0 (the sweep's weighted model, ``sweep.compile_sweep``: the
targets' latents are then free standard normals, independent of θ). Its second is the same
model with every score weighted 1 (the joint model's log density, tests/test_subsets.py) and
θ an input: as a function of ψ it differs from p(ψ | θ, y_tgt) by p(θ) p(y_ref | θ) only,
a constant given θ, because no prior of ψ depends on θ (the shear's shift ξ(θ) moves ψ by a
constant: Jacobian 1).

Sampled as nested MCMC: the curve fit's draws, thinned to ``sampler.curve_draws`` per chain,
and for each a run of ``sampler.inner_steps`` NUTS transitions of ψ given that θ, chained:
each starts where the previous θ's left ψ, with the metric and step size adapted once at the
curve posterior's median and checked over spread curve draws (:meth:`CutSampler.probe`).
Each run's last position is the draw. A stop-gradient, or NUTS steps alternating between the
modules, would not sample the cut distribution. docs/model.md, section 6, has the equations
and the evidence.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time

import numpy as np
import xarray as xr

from bayes_densing.inference import bridge
from bayes_densing.config import Config
from bayes_densing.data import ScoreData
from bayes_densing.inference.sample import SampleResult, chain_method, select_device, unconstrained_starts
from bayes_densing.model.likelihood import log_binomial
from bayes_densing.sampling import dense_nuts

# the target module: the targets' latents, the trend and the targets' concentration
TARGET_MODULE = frozenset({"log_density_shifted", "log_density", "A", "B_centre", "A_before",
                           "A_after", "B_change", "sigma_v", "sigma_u", "sigma", "phi_target",
                           "outlier_rate_target", "target_offset_raw", "release_group_raw",
                           "sigma_group", "slope_scaled"})


def target_parameters(model) -> list[str]:
    """The value variables of the target module ψ."""
    return [v.name for v in model.value_vars if model.values_to_rvs[v].name in TARGET_MODULE]


def reference_weights(data: ScoreData, weights: tuple | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The weights under which the sweep's model is the curve module: reference scores only
    (of those ``weights = (obs_w, bench_w)`` keep: a benchmark subset)."""
    obs_w = (data.obs.model_idx.to_numpy() < data.n_ref).astype(float)
    if weights is None:
        return obs_w, np.ones(len(data.benchmarks))
    return obs_w * np.asarray(weights[0], dtype=float), np.asarray(weights[1], dtype=float)


# the pooled ESS every parameter needs (the diagnostics' threshold); the margin because R-hat
# over ~250 parameters needs more draws per chain than ESS does (benchmarks/README.md, "Cut inference")
ESS_NEEDED, ESS_MARGIN = 400, 4.0
MIN_CURVE_DRAWS = 100   # per chain: the fewest curve draws the targets are fitted given
MIN_INNER_TUNE = 100    # the targets' warm-up: at least these iterations
# the step size is adapted given one θ (the median) and used given every θ draw, some of whose
# conditionals are narrower (benchmarks/README.md, "Target offsets")
CONDITIONAL_STEP = 0.8
PROBE_SHRINK, PROBE_TRIES = 0.7, 6   # the probe at the warm-up's end (CutSampler.probe)
# the time to expect before anything is compiled, as the bundled data measured it
# (benchmarks/README.md, "Cut inference" and "Target offsets")
SECONDS_PER_SCORE_STEP = 2.2e-7
STEPS_PER_TRANSITION = {"curves": 16, "targets": 31, "joint": 18}


def inner_tune(s) -> int:
    """The targets' warm-up under sampler settings ``s``: half the curves' (given θ their
    posterior is simpler; benchmarks/README.md, "Cut inference")."""
    return max(MIN_INNER_TUNE, s.tune // 2)


def expected_seconds(n_scores: int, s) -> dict[str, float]:
    """Rough sampling seconds (compiling excluded) of the cut and of the joint fit for
    ``n_scores`` scores under sampler settings ``s``, on the CPU: the transitions of each fit
    × its :data:`STEPS_PER_TRANSITION` × :data:`SECONDS_PER_SCORE_STEP` per score, the chains
    spread over the cores. Only the order of magnitude: the steps per transition are known
    once sampling runs."""
    import os

    steps = {"curves": s.tune + curve_length(s),
             "targets": inner_tune(s) + len(kept(s)) * s.inner_steps,
             "joint": s.tune + s.draws}
    per_step = SECONDS_PER_SCORE_STEP * n_scores * s.chains / min(s.chains, os.cpu_count() or 1)
    seconds = {fit: n * STEPS_PER_TRANSITION[fit] * per_step for fit, n in steps.items()}
    return {"cut": seconds["curves"] + seconds["targets"], "joint": seconds["joint"]}


def thinned(steps: int, keep: int) -> np.ndarray:
    """``keep`` indices spread evenly over ``steps`` curve draws (all of them when fewer)."""
    return np.unique(np.linspace(0, steps - 1, min(keep, steps)).round().astype(int))


def curve_ess(curve: dense_nuts.Draws, names: list[str]) -> float:
    """The curve fit's smallest bulk ESS over every element of the curve parameters."""
    import arviz as az

    ds = xr.Dataset({n: (("chain", "draw") + tuple(f"{n}_{i}" for i in range(x.ndim - 2)), x)
                     for n, x in curve.z.items() if n in names})
    return float(min(float(v.min()) for v in az.ess(ds, method="bulk").data_vars.values()))


def curve_steps(curve: dense_nuts.Draws) -> int:
    """The curve fit's draws per chain."""
    return next(iter(curve.z.values())).shape[1]


def curve_length(s) -> int:
    """The curve fit's draws per chain under sampler settings ``s``: ``sampler.draws``, twice
    that for a single chain, whose 1,000 draws gave the slowest curve parameter (τ_α) an ESS of
    386 on the bundled data, short of :data:`ESS_NEEDED` (2 chains: 780)."""
    return s.draws * (2 if s.chains == 1 else 1)


def kept(s) -> np.ndarray:
    """:func:`kept_draws` of a fit under sampler settings ``s``."""
    return kept_draws(curve_length(s), s.chains, s.curve_draws)


def kept_draws(steps: int, chains: int, fixed: int = 0) -> np.ndarray:
    """Which of ``steps`` curve draws per chain the targets are fitted given, evenly spread:
    ``fixed`` per chain, or (0) the :data:`ESS_NEEDED` × :data:`ESS_MARGIN` the headline
    quantities need, over the chains (at least :data:`MIN_CURVE_DRAWS` each)."""
    wanted = fixed or max(MIN_CURVE_DRAWS, math.ceil(ESS_NEEDED * ESS_MARGIN / chains))
    return thinned(steps, wanted)


class CutSampler:
    """The cut's two samplers for one design, compiled once: :meth:`curves` fits the curve
    module, :meth:`warm_up` adapts the target module's metric given the curves, and
    :meth:`conditional` runs the nested MCMC. Both modules are the sweep's weighted model
    (``sweep.compile_sweep``), whose weights and correct counts are inputs: the curve module
    weights the target scores 0, the target module takes θ as one more input. So every step
    can be rerun with other settings (``benchmarks/cut_spike.py`` runs several inner lengths
    from one curve fit) or other counts of the same design (the SBC, ``sbc.fitter``) without
    compiling again."""

    def __init__(self, data: ScoreData, config: Config, setting_inputs: bool = False):
        from bayes_densing.inference.sweep import compile_sweep

        config.validate()      # where the cut's settings are checked (config.py)
        self.config, self.data = config, data
        s = config.sampler
        lengthened = copy.deepcopy(config)
        lengthened.sampler.draws = curve_length(s)
        self.sweep = compile_sweep(data, lengthened, setting_inputs=setting_inputs)
        self.model = model = self.sweep.model
        self.psi = target_parameters(model)
        self.theta = [v for v in model.value_vars if v.name not in self.psi]
        parallel = chain_method(s, select_device(s.device, s.host_devices)) == "parallel"
        self.chain_method = "parallel" if parallel else "sequential"
        self.inner = bridge.sampler(model, s, inputs=self.theta + list(self.sweep.inputs),
                                    parameters=self.psi, parallel=parallel,
                                    initial_point=self.sweep.sampler.initial_point)

    def _counts(self, counts) -> tuple[np.ndarray, np.ndarray]:
        k = (self.sweep.counts if counts is None else np.asarray(counts)).astype(float)
        return k, log_binomial(self.sweep.n, k)

    def target_args(self, counts=None, weights: tuple | None = None,
                    settings: Config | None = None) -> tuple:
        """The target module's inputs other than θ: the weights ``(obs_w, bench_w)`` (default
        every score and benchmark weighted 1; a target whose scores are all weighted 0 is
        left out, as is a benchmark weighted 0), the counts, and (compiled with
        ``setting_inputs``) the priors and D0 of ``settings`` (default the config's)."""
        if weights is None:
            weights = (np.ones(len(self.sweep.n)), np.ones(len(self.data.benchmarks)))
        return (*(np.asarray(w, dtype=float) for w in weights), *self._counts(counts),
                *self.sweep.setting_args(settings))

    def curves(self, seed: int, progressbar: bool = False, counts=None,
               weights: tuple | None = None, settings: Config | None = None
               ) -> dense_nuts.Draws:
        """The curve module's draws, p(θ | reference scores); ``counts``: other correct
        counts of the same design (default the data's); ``weights``: the scores and
        benchmarks used (a benchmark subset, ``analyses/subsets.py``); ``settings``: a config
        whose priors and D0 to use (compiled with ``setting_inputs``)."""
        args = (*reference_weights(self.data, weights), *self._counts(counts),
                *self.sweep.setting_args(settings))
        starts = self.sweep.initial_points(self.config.sampler.chains, seed, args)
        return self.sweep.sampler.run(starts, args, seed=seed, progressbar=progressbar)

    def values(self, curve: dense_nuts.Draws, keep: np.ndarray) -> tuple:
        """θ's draws (chain, kept draw, ...), in the inner sampler's order of its inputs."""
        return tuple(curve.z[v.name][:, keep] for v in self.theta)

    def warm_up(self, curve: dense_nuts.Draws, seed: int, progressbar: bool = False,
                tune: int | None = None, counts=None,
                weights: tuple | None = None, settings: Config | None = None
                ) -> dense_nuts.Draws:
        """The target module's metric and step size, adapted given the curve posterior's
        median θ (coordinate-wise, unconstrained)."""
        values = self.values(curve, np.arange(curve_steps(curve)))
        centre = tuple(np.median(v.reshape((-1,) + v.shape[2:]), axis=0) for v in values)
        args = centre + self.target_args(counts, weights, settings)
        points = unconstrained_starts(self.model, self.config.sampler.chains, seed,
                                      finite=lambda point: self.inner.finite(point, args),
                                      start=self.sweep.sampler.initial_point)
        warm = self.inner.run([{n: p[n] for n in self.psi} for p in points], args,
                              seed=seed + 1, progressbar=progressbar, warmup_only=True,
                              tune=inner_tune(self.config.sampler) if tune is None else tune)
        warm = dataclasses.replace(warm, step_size=warm.step_size * CONDITIONAL_STEP)
        return self.probe(curve, warm, seed, counts, weights, settings)

    def probe(self, curve: dense_nuts.Draws, warm: dense_nuts.Draws, seed: int,
              counts=None, weights: tuple | None = None,
              settings: Config | None = None) -> dense_nuts.Draws:
        """The end of the warm-up: conditional runs over one chunk of curve draws per chain (the
        main runs' chunk length), spread over the curve posterior, at the adapted step size;
        while any transition diverges, the step size shrinks by :data:`PROBE_SHRINK` and the
        probe runs again (at most :data:`PROBE_TRIES` times). The probe's draws are discarded.
        The metric and step were adapted given one θ; where the curve posterior is wide (a small
        design) the conditionals of distant θ draws are narrower, and simulated datasets of 20
        targets and 3 benchmarks had up to 388 divergent transitions in 5,000 without it
        (benchmarks/README.md, "Cut inference"). The probe has the main runs' chunk length, so
        it reuses their compiled program."""
        steps, s = curve_steps(curve), self.config.sampler
        keep = kept_draws(steps, s.chains, s.curve_draws)
        length = dense_nuts.chunk_length(len(keep))
        probe = thinned(steps, length)
        if len(probe) < length:             # fewer curve draws than a chunk: repeat them
            probe = np.resize(probe, length)
        values, fixed = self.values(curve, probe), self.target_args(counts, weights, settings)
        for _ in range(PROBE_TRIES):
            runs = self.inner.conditional_runs(warm, values, s.inner_steps, seed=seed + 3,
                                               fixed=fixed, progressbar=False, length=length)
            if not np.any(runs.stats["diverging"]):
                break
            warm = dataclasses.replace(warm, step_size=warm.step_size * PROBE_SHRINK)
        return warm

    def strata(self, curve: dense_nuts.Draws, warm: dense_nuts.Draws, per_chain: int,
               kept: int, burn: int, inner: int, seed: int) -> xr.DataTree:
        """Many draws of ψ given each of a few curve draws, for reweighting within a curve
        draw (``analyses/stratified.py``): ``per_chain`` curve draws per chain, spread
        evenly, and given each, ``burn`` + ``kept`` steps of ``inner`` transitions chained
        as in :meth:`conditional`, the first ``burn`` dropped. chain = stratum (one curve
        draw, its chain and index in the curve fit as ``curve_chain``/``curve_draw``),
        draw = a kept draw given it."""
        picks = thinned(curve_steps(curve), per_chain)
        values = self.values(curve, np.repeat(picks, burn + kept))
        fixed = self.target_args()
        draws = self.inner.conditional_runs(warm, values, inner, seed=seed, fixed=fixed,
                                            progressbar=False)

        def by_stratum(x):
            x = np.asarray(x)
            x = x.reshape((x.shape[0], len(picks), burn + kept) + x.shape[2:])[:, :, burn:]
            return x.reshape((-1, kept) + x.shape[3:])

        z = {**{v.name: by_stratum(x) for v, x in zip(self.theta, values)},
             **{n: by_stratum(x) for n, x in draws.z.items()}}
        stats = {k: by_stratum(draws.stats[k]) for k in ("diverging", "n_steps", "lp")}
        idata = bridge.to_inferencedata(self.model, z, stats, posterior=self.sweep.posterior,
                                            args=self.sweep.posterior_args(fixed),
                                            observed=False)
        _drop_unused(idata)
        chains = np.asarray(draws.stats["diverging"]).shape[0]
        idata["posterior"] = idata["posterior"].to_dataset().assign_coords(
            curve_chain=("chain", np.repeat(np.arange(chains), len(picks))),
            curve_draw=("chain", np.tile(picks, chains)))
        idata.posterior.attrs.update({"seconds": draws.seconds, "inner_steps": inner,
                                      "burn": burn})
        return idata

    def fit(self, seed: int, counts=None, weights: tuple | None = None,
            settings: Config | None = None) -> xr.DataTree:
        """One whole cut fit, quietly: the curves, the targets' warm-up and the nested runs,
        for other counts of the design (the SBC), other weights (a benchmark subset) or
        another config's priors and D0 (compiled with ``setting_inputs``)."""
        s = self.config.sampler
        variant = {"counts": counts, "weights": weights, "settings": settings}
        curve = self.curves(seed, **variant)
        warm = self.warm_up(curve, seed, **variant)
        return self.conditional(curve, warm, kept(s), s.inner_steps, seed, **variant)

    def conditional(self, curve: dense_nuts.Draws, warm: dense_nuts.Draws, keep: np.ndarray,
                    inner_steps: int, seed: int, progressbar: bool = False,
                    counts=None, weights: tuple | None = None,
                    settings: Config | None = None) -> xr.DataTree:
        """The nested runs given the kept curve draws, as the cut posterior's DataTree.
        ``weights``: the scores' and benchmarks' (:meth:`target_args`); a target or a
        benchmark they leave out starts from its exact posterior, a standard normal
        (``SweepSampler.warm_start``)."""
        values = self.values(curve, keep)
        fixed = self.target_args(counts, weights, settings)
        if weights is not None:
            warm = self.sweep.warm_start(warm, fixed[0], fixed[1], seed, sampler=self.inner)
        draws = self.inner.conditional_runs(warm, values, inner_steps, seed=seed + 2,
                                            fixed=fixed, progressbar=progressbar)
        z = {**{v.name: x for v, x in zip(self.theta, values)}, **draws.z}
        stats = {k: v for k, v in draws.stats.items() if k != "inner_energy"}
        stats["tree_depth"] = np.log2(np.maximum(draws.stats["n_steps"] / inner_steps, 1)
                                      ).astype(int) + 1
        idata = bridge.to_inferencedata(self.model, z, stats, posterior=self.sweep.posterior,
                                            args=self.sweep.posterior_args(fixed),
                                            observed=False)
        idata["sample_stats"]["inner_energy"] = xr.Variable(
            ("chain", "draw", "inner_step"), draws.stats["inner_energy"])
        _drop_unused(idata)
        for group in ("posterior", "sample_stats", "log_prior"):
            idata[group] = idata[group].to_dataset().assign_coords(curve_draw=("draw", keep))
        idata["observed_data"] = observed_data(self.data, fixed[2])
        seconds = curve.seconds + warm.seconds + draws.seconds
        idata.posterior.attrs.update({
            "sampling_time": seconds, "estimand": "cut",
            "mass_matrix": (f"{self.sweep.sampler.layout} (curves), {self.inner.layout} "
                            "(targets given them)"),
            "curve_draws": len(keep), "inner_steps": inner_steps,
            "curve_divergences": int(np.sum(curve.stats["diverging"])),
            "curve_min_ess": curve_ess(curve, [v.name for v in self.theta]),
            "curve_seconds": curve.seconds, "conditional_seconds": warm.seconds + draws.seconds})
        return idata


def _drop_unused(idata: xr.DataTree) -> None:
    """Remove the weighted model's stand-in priors of unused benchmarks from ``log_prior``:
    0 here, not prior terms."""
    log_prior = idata["log_prior"].to_dataset()
    idata["log_prior"] = log_prior.drop_vars([v for v in log_prior.data_vars
                                              if v.endswith("_unused")])


def observed_data(data: ScoreData, k: np.ndarray) -> xr.Dataset:
    """The ``observed_data`` group the joint model's posterior has: the correct counts (and
    the observed losses in loss mode)."""
    obs = data.obs
    ds = xr.Dataset({"correct": (("obs",), np.asarray(k, dtype=np.int64))},
                    coords={"obs": np.arange(len(obs))})
    if data.has_loss:
        has = obs.loss.notna().to_numpy()
        ds["loss"] = (("loss_dim_0",), obs.loss.to_numpy()[has])
    return ds


def sample(data: ScoreData, config: Config, *, progressbar: bool = True) -> SampleResult:
    """The cut posterior of ``data``: chain = one outer stream (the curve fit's chain and its
    chained conditional runs), draw = one kept curve draw (its index in the curve fit:
    ``curve_draw``). Same variables as the joint model's posterior."""
    s = config.sampler
    start = time.perf_counter()
    say = ((lambda text: print(text, file=sys.stderr, flush=True)) if progressbar
           else (lambda text: None))
    cut = CutSampler(data, config)
    say("Cut 1/3: the curves, from the reference models' scores")
    curve = cut.curves(s.seed, progressbar)
    say("Cut 2/3: warm-up of the targets given the curves (at their posterior median)")
    warm = cut.warm_up(curve, s.seed, progressbar)
    keep = kept(s)
    # the warm-up's seconds per transition, times the runs' transitions: the phase's time
    expect = warm.seconds * len(keep) * s.inner_steps / inner_tune(s)
    say(f"Cut 3/3: the targets given each of {len(keep)} curve draws per chain "
        f"({s.inner_steps} transitions each; expect about {expect:.0f} s after a few s "
        "of compiling)")
    idata = cut.conditional(curve, warm, keep, s.inner_steps, s.seed, progressbar)
    return SampleResult(idata=idata, wall_s=time.perf_counter() - start,
                        sampling_s=idata.posterior.attrs["sampling_time"],
                        chain_method=cut.chain_method,
                        mass_matrix=f"{cut.sweep.sampler.layout}, {cut.inner.layout}")
