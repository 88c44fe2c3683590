"""Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788).

Draw parameters from the model's prior, scores from those parameters, fit the scores, and
rank each true value among the posterior draws. If the inference is right, every rank is
uniform over 0…L; a hump means intervals that are too wide, a U means too narrow, a slope
means bias. This tests the whole chain — priors, likelihood, reparametrisation, sampler —
against the model's own definition:

* the truths come from the *centred* model (``model.reparam = "centred"``: each target's log
  density is an ordinary random variable with the trend prior), by PyMC's forward sampling;
* the counts from them by ``results.posterior_predictive`` (the model's own formulas);
* the fits use the configuration as given (by default the sheared parametrisation), all on
  one compiled log density (``inference/sweep.py``: the counts are an argument, the design
  is fixed).

``benchmarks/sbc.py`` runs ≥ 100 datasets; ``tests/test_sbc.py`` a small version.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import arviz as az
import xarray as xr
import numpy as np
import pandas as pd
from scipy import stats

from bayes_densing.analyses.calibration import central_interval
from bayes_densing.config import Config
from bayes_densing.data import ScoreData, assemble
from bayes_densing.distributed.store import digest
from bayes_densing.inference.sample import SamplerError
from bayes_densing.results import posterior_predictive
from bayes_densing.sampling.families import variant_seed
from bayes_densing.model.simulate import simulate

# what is ranked: (label, variable, index into its last axis or None)
QUANTITIES = [("slope A", "A", None), ("intercept B", "B", None),
              ("frontier σ_u", "sigma_u", None), ("frontier σ_v", "sigma_v", None),
              ("shared α", "alpha_mu", None), ("curve level z[0]", "z_centre", 0)]
N_SIZES = 3   # plus ln N̂ of the first, middle and last target


def design(n_targets: int = 20, n_benchmarks: int = 3, seed: int = 0,
           config: Config | None = None) -> ScoreData:
    """The fixed part of every dataset: the references, the targets' sizes and dates, the
    benchmarks (from the simulator); its scores are replaced by each prior draw."""
    config = config or Config()
    df, _ = simulate(n_models=n_targets, n_benchmarks=n_benchmarks, seed=seed, config=config)
    df["release_date"] = pd.to_datetime(df.release_date)
    df["line"] = np.arange(len(df)) + 2
    return assemble(df, config, source=f"SBC design (seed {seed})", reference="")


def prior_draws(data: ScoreData, config: Config, n: int, seed: int
                ) -> tuple[xr.DataTree, np.ndarray]:
    """``n`` joint draws from the prior (as the posterior group of a DataTree with one
    chain) and the correct counts simulated from each, shape (n, observations)."""
    import pymc as pm

    from bayes_densing.model.build import build_model

    centred = copy.deepcopy(config)
    centred.model.reparam = "centred"
    model = build_model(data, centred)
    names = [v.name for v in model.free_RVs] + [d.name for d in model.deterministics]
    # the plain Python linker: PyTensor 3's default, Numba, would compile for seconds first
    prior = pm.sample_prior_predictive(draws=n, model=model, var_names=names, random_seed=seed,
                                       compile_kwargs={"mode": "FAST_COMPILE"})
    truth = xr.DataTree.from_dict({"posterior": prior["prior"].to_dataset()})
    counts = posterior_predictive(truth, data, config, seed)["correct"].values[0]
    return truth, counts


def off_curve(truth: xr.DataTree, data: ScoreData, config: Config, seed: int,
              mean: float, sd: float) -> tuple[xr.DataTree, np.ndarray, np.ndarray]:
    """Datasets whose targets sit off the reference curves: on benchmark j every target of
    dataset d scores as a reference-family model of ln size η_i + δ_dj would, δ_dj ~ N(mean,
    sd); the references stay on their curves. Returns the truths with each target's
    reference-relative effective size, η_i + mean_j δ_dj (the benchmarks weighed equally, as
    the paper's pipeline weighs them; its density and the trend's intercept B move with it),
    the counts (datasets, observations) and the offsets.
    The cut estimates that size; the joint model lets the targets inform the curves too."""
    from bayes_densing.results import likelihood_draws

    rng = np.random.default_rng([seed, 7])
    post = truth.posterior
    offsets = rng.normal(mean, sd, (post.sizes["draw"], len(data.benchmarks)))

    def shifted(by: np.ndarray) -> xr.DataTree:
        # by (draw,): every target's ln N̂ and ln ρ, and so the trend's intercept, move by it
        by = xr.DataArray(by, dims="draw")
        return xr.DataTree.from_dict({"posterior": post.assign(
            {name: post[name] + by for name in ("log_effective_size", "log_density", "B")})})
    p, phi = likelihood_draws(truth, data, config)
    at_target = data.obs.model_idx.to_numpy() >= data.n_ref
    for j in range(len(data.benchmarks)):
        cols = at_target & (data.obs.bench_idx.to_numpy() == j)
        p[:, cols] = likelihood_draws(shifted(offsets[:, j]), data, config)[0][:, cols]
    counts = posterior_predictive(truth, data, config, seed, p_phi=(p, phi))["correct"].values[0]
    return shifted(offsets.mean(axis=1)), counts, offsets


def quantity(ds, var: str, index: int | None) -> np.ndarray:
    """One quantity's draws, flattened over chain and draw."""
    x = np.asarray(ds[var])
    x = x.reshape(-1) if index is None else x.reshape(-1, x.shape[-1])[:, index]
    return x


def rank(draws: np.ndarray, truth: float, n_ranks: int) -> int:
    """The number of ``n_ranks - 1`` evenly thinned draws below the truth: 0 … n_ranks - 1."""
    thinned = draws[np.linspace(0, len(draws) - 1, n_ranks - 1).round().astype(int)]
    return int(np.sum(thinned < truth))


def uniformity_p(ranks: np.ndarray, n_ranks: int, bins: int) -> float:
    """Chi-square test that ranks in 0 … n_ranks - 1 are uniform, over ``bins`` equal bins."""
    if n_ranks % bins:
        raise ValueError(f"{n_ranks} ranks do not split into {bins} equal bins")
    counts = np.bincount(np.asarray(ranks) * bins // n_ranks, minlength=bins)
    return float(stats.chisquare(counts).pvalue)


def gross_problems(ranks, n_ranks: int, bins: int = 4, alpha: float = 0.001) -> list[str]:
    """What a small SBC (tens of datasets) can still detect, each at level ``alpha``: ranks far
    from uniform (chi-square), a biased posterior (mean rank off centre), or a posterior
    too narrow (too many truths in the outer 20% of their posteriors). Empty when none."""
    r = (np.asarray(ranks) + 0.5) / n_ranks             # in (0, 1); uniform if calibrated
    n = len(r)
    found = []
    p = uniformity_p(ranks, n_ranks, bins)
    if p < alpha:
        found.append(f"ranks not uniform (chi-square p = {p:.1g})")
    z = (r.mean() - 0.5) / np.sqrt(1.0 / (12.0 * n))
    if abs(z) > stats.norm.isf(alpha / 2):
        found.append(f"biased: mean rank {r.mean():.2f} of 1 ({z:+.1f} sd from 0.5)")
    outer = int(np.sum((r < 0.1) | (r > 0.9)))
    if stats.binom.sf(outer - 1, n, 0.2) < alpha:
        found.append(f"too narrow: {outer} of {n} truths in the outer 20% of their posteriors")
    return found


@dataclass
class SBCResult:
    ranks: dict[str, list[int]]         # label → one rank per dataset
    n_ranks: int
    bins: int
    p_values: dict[str, float] = field(default_factory=dict)
    fits: list[dict] = field(default_factory=list)   # per dataset: divergences, R-hat, seconds
    compile_s: float = 0.0
    settings: dict = field(default_factory=dict)

    @property
    def min_p(self) -> float:
        return min(self.p_values.values())

    def to_dict(self) -> dict:
        return {"settings": self.settings, "n_ranks": self.n_ranks, "bins": self.bins,
                "p_values": self.p_values, "min_p": self.min_p, "ranks": self.ranks,
                "fits": self.fits, "compile_s": self.compile_s}

    @classmethod
    def from_dict(cls, d: dict) -> "SBCResult":
        return cls(ranks=d["ranks"], n_ranks=d["n_ranks"], bins=d["bins"], p_values=d["p_values"],
                   fits=d["fits"], compile_s=d["compile_s"], settings=d["settings"])


COVERAGE = 0.9   # the central interval whose coverage of the truths each fit records


def interval_coverage(post, truth) -> dict:
    """Whether the central :data:`COVERAGE` intervals of the targets' ln N̂ and of the slope
    cover one dataset's truths, how wide they are, and the targets' mean error (posterior
    median − truth)."""
    def per_target(ds):                                        # (samples, targets)
        x = np.asarray(ds["log_effective_size"])
        return x.reshape(-1, x.shape[-1])
    eta, true_eta = per_target(post), per_target(truth)[0]
    lo, hi = central_interval(eta, COVERAGE)
    a = quantity(post, "A", None)
    a_lo, a_hi = central_interval(a, COVERAGE)
    true_a = quantity(truth, "A", None)[0]
    return {"eta_covered": int(np.sum((lo <= true_eta) & (true_eta <= hi))),
            "eta_n": int(true_eta.size), "eta_width": float(np.mean(hi - lo)),
            "eta_bias": float(np.mean(np.median(eta, axis=0) - true_eta)),
            "A_covered": bool(a_lo <= true_a <= a_hi), "A_width": float(a_hi - a_lo)}


def coverage_summary(fits: list[dict], false_alarm: float = 0.01) -> dict:
    """Pooled coverage of the targets' ln N̂ (every target of every dataset) and of the slope
    (one per dataset), each against a two-sided binomial tolerance around
    :data:`COVERAGE` at ``false_alarm``; and the mean interval widths. A dataset's targets
    share its curves and trend, so their intervals miss together: the binomial tolerance of
    independent intervals is too narrow for ln N̂, and ``eta`` also has ``tolerance_clustered``
    and ``within_clustered``, at the same false-alarm rate with the datasets as the units
    (:func:`clustered_tolerance`)."""
    out = {}
    for key, count, n in (("eta", sum(f["eta_covered"] for f in fits),
                           sum(f["eta_n"] for f in fits)),
                          ("A", sum(bool(f["A_covered"]) for f in fits), len(fits))):
        lo = stats.binom.ppf(false_alarm / 2, n, COVERAGE) / n
        hi = stats.binom.isf(false_alarm / 2, n, COVERAGE) / n
        rate = count / n
        out[key] = {"covered": int(count), "n": int(n), "rate": rate, "tolerance": [lo, hi],
                    "within": bool(lo <= rate <= hi),
                    "mean_width": float(np.mean([f[f"{key}_width"] for f in fits]))}
    lo, hi = clustered_tolerance([f["eta_covered"] for f in fits],
                                 [f["eta_n"] for f in fits], false_alarm)
    out["eta"].update(tolerance_clustered=[lo, hi],
                      within_clustered=bool(lo <= out["eta"]["rate"] <= hi))
    if all("eta_bias" in f for f in fits):
        out["eta"]["mean_error"] = float(np.mean([f["eta_bias"] for f in fits]))
    return out


def clustered_tolerance(covered, n, false_alarm: float = 0.01) -> tuple[float, float]:
    """The two-sided tolerance of pooled coverage around :data:`COVERAGE` when the intervals
    come in clusters (one dataset's targets) that miss together: the normal approximation with
    the ratio estimator's variance over clusters at the nominal rate,
    Σ_k (c_k − COVERAGE·n_k)² / (m(m − 1)) / n̄², for m clusters of n_k intervals, c_k covering.
    With independent intervals it is about the binomial tolerance."""
    c, n = np.asarray(covered, dtype=float), np.asarray(n, dtype=float)
    m = len(c)
    if m < 2:
        raise ValueError("a clustered tolerance needs at least 2 datasets")
    se = np.sqrt(np.sum((c - COVERAGE * n) ** 2) / (m * (m - 1))) / n.mean()
    z = stats.norm.isf(false_alarm / 2)
    return float(COVERAGE - z * se), float(COVERAGE + z * se)


def fitter(data: ScoreData, config: Config):
    """(seed, counts) → the posterior DataTree of one dataset of ``data``'s design, compiled
    once: the joint model's sweep sampler, or with ``model.curves = "cut"`` the cut's (whose
    curve parameters are an exact posterior, p(θ | reference scores), so their ranks must be
    uniform; the targets' cut posterior is not the joint one, whose truths the prior draws are:
    their ranks show how conservative the cut is when the model holds)."""
    from bayes_densing.inference.sweep import compile_sweep

    if config.model.curves == "cut":
        from bayes_densing.inference.cut import CutSampler

        sampler = CutSampler(data, config)
        return lambda seed, counts: sampler.fit(seed, counts=counts)
    sweep = compile_sweep(data, config)
    obs_w, bench_w = np.ones(len(data.obs)), np.ones(len(data.benchmarks))
    return lambda seed, counts: sweep.sample(obs_w, bench_w, seed, counts)


@dataclass
class Dataset:
    """One simulated dataset, a variant of the SBC: its counts and its truths."""

    index: int
    counts: np.ndarray
    truth: xr.Dataset            # the prior draw, as a posterior of one chain and one draw

    @property
    def name(self) -> str:
        return f"dataset {self.index}"


@dataclass
class SBCFamily:
    """The SBC's datasets as a family of fits of one compiled program (:func:`fitter`); a
    task returns each dataset's ranks and coverage, not its posterior."""

    data: ScoreData
    config: Config
    labels: list
    n_ranks: int
    seed: int
    errors = (SamplerError,)

    @cached_property
    def key(self) -> str:
        return "sbc-" + digest([self.config.to_dict(), self.data.describe(),
                                self.data.obs.n.tolist()])[:16]

    def compile(self):
        return fitter(self.data, self.config)

    def fit(self, fit_one, ds: Dataset, context=None) -> tuple[dict, dict]:
        idata = fit_one(variant_seed(self.seed, ds.name), ds.counts)
        post = idata.posterior
        ranks = {label: rank(quantity(post, var, index), quantity(ds.truth, var, index)[0],
                             self.n_ranks) for label, var, index in self.labels}
        names = [v for v in ("A", "sigma_u", "sigma_v", "alpha_mu") if v in post]
        fit = {"dataset": ds.index,
               "divergences": int(idata.sample_stats["diverging"].sum()),
               "max_rhat": float(az.rhat(post.to_dataset()[names]).to_array().max()),
               "true_doubling_months": float(np.log(2) / quantity(ds.truth, "A", None)[0]),
               **interval_coverage(post, ds.truth)}
        return {"ranks": ranks, "fit": fit}, {}


def run(n_datasets: int = 100, *, n_targets: int = 20, n_benchmarks: int = 3,
        config: Config | None = None, seed: int = 0, n_ranks: int = 100, bins: int = 10,
        offsets: tuple[float, float] | None = None, progress=None, out=None,
        force: bool = False, place=None) -> SBCResult:
    """Simulate ``n_datasets`` datasets from the prior, fit each, and rank the truths.

    ``config``'s sampler settings apply to every fit (draws ≥ n_ranks - 1, thinned evenly);
    ``offsets = (mean, sd)``: the targets off the reference curves (:func:`off_curve`), their
    truths the reference-relative effective sizes (then the targets' ranks and coverage are
    of those; the model no longer holds, so only the cut's curves must rank uniformly);
    ``progress(line)`` is called after each fit. ``out``: the sweep directory
    (``distributed.store``: resumed if it holds part of this SBC; ``force`` discards it),
    else a temporary one; ``place``: where the fits run (``distributed.runner.executor``;
    default this process).
    """
    from bayes_densing.distributed import runner, store

    config = copy.deepcopy(config or Config())
    config.validate()
    data = design(n_targets, n_benchmarks, seed, config)
    truth, counts = prior_draws(data, config, n_datasets, seed)
    if offsets is not None:
        truth, counts, _ = off_curve(truth, data, config, seed, *offsets)
    targets = np.unique(np.linspace(0, data.n_target - 1, N_SIZES).round().astype(int))
    labels = list(QUANTITIES) + [(f"ln N̂ of target {t + 1}", "log_effective_size", int(t))
                                 for t in targets]
    settings = {"n_datasets": n_datasets, "n_targets": data.n_target,
                "n_reference": data.n_ref, "benchmarks": data.benchmarks,
                "seed": seed, "chains": config.sampler.chains,
                "draws": config.sampler.draws, "tune": config.sampler.tune,
                "model": copy.deepcopy(config.to_dict()["model"]),
                "offsets": list(offsets) if offsets is not None else None}
    family = SBCFamily(data, config, labels, n_ranks, seed)
    datasets = [Dataset(i, counts[i], truth.posterior.isel(draw=[i]).to_dataset())
                for i in range(n_datasets)]
    spec = {"config": store.config_spec(config), "sbc": {**settings, "n_ranks": n_ranks}}
    start = time.perf_counter()
    with store.sweep_dir(out) as where:
        sweep = store.SweepStore(where, store.identity("sbc", spec, ""), force=force, spec=spec)
        done = runner.run(family, datasets, sweep, place or runner.InProcess(),
                          progress=runner.Progress.of(sweep, datasets, progress), describe=_line)
    result = SBCResult(ranks={label: [] for label, _, _ in labels}, n_ranks=n_ranks, bins=bins,
                       settings=settings)
    for ds in datasets:
        doc = done[ds.name]
        if doc["error"]:
            raise SamplerError(f"SBC {ds.name}: {doc['error']}")
        for label in result.ranks:
            result.ranks[label].append(doc["record"]["ranks"][label])
        result.fits.append({**doc["record"]["fit"], "seconds": doc["wall_s"]})
    result.compile_s = float(sum(d["compile"].get("program_s", 0) + d["compile"].get(
        "xla_compile_s", 0) for d in done.values()))
    result.settings["wall_s"] = time.perf_counter() - start
    result.p_values = {label: uniformity_p(np.array(r), n_ranks, bins)
                       for label, r in result.ranks.items()}
    return result


def _line(outcome) -> str:
    if outcome.error:
        return f"{outcome.name}: failed: {outcome.error}"
    fit = outcome.record["fit"]
    return (f"{outcome.name}: {outcome.wall_s:.1f} s, {fit['divergences']} divergences, "
            f"max R-hat {fit['max_rhat']:.3f}")


def summary_text(result: SBCResult) -> str:
    """The fits' diagnostics, each quantity's chi-square p and the 90% intervals' coverage."""
    fits = result.fits
    lines = [f"{len(fits)} datasets; fits with divergences: "
             f"{sum(f['divergences'] > 0 for f in fits)}; max R-hat over fits: "
             f"{max(f['max_rhat'] for f in fits):.3f}",
             f"{'quantity':24s} chi-square p ({result.bins} bins)"]
    lines += [f"  {label:22s} {p:.3f}" for label, p in result.p_values.items()]
    for key, c in coverage_summary(fits).items():
        lines.append(
            f"90% intervals of {'every ln N̂' if key == 'eta' else 'the slope A'}: "
            f"{c['covered']}/{c['n']} = {c['rate']:.3f} (tolerance at 1% false alarms "
            f"{c['tolerance'][0]:.3f}–{c['tolerance'][1]:.3f}"
            + (f"; datasets as the units {c['tolerance_clustered'][0]:.3f}–"
               f"{c['tolerance_clustered'][1]:.3f}" if "tolerance_clustered" in c else "")
            + f"), mean width {c['mean_width']:.3f}"
            + (f", mean error {c['mean_error']:+.3f}" if "mean_error" in c else ""))
    return "\n".join(lines)


def write(result: SBCResult, out, extra: dict | None = None) -> list[Path]:
    """sbc.json (the ranks, p-values, per-fit records and coverage; ``extra`` added) into
    ``out`` (a sweep directory: then its manifest too); the rank histograms are
    ``figures.sbc.write_ranks``'."""
    import json

    from bayes_densing.results import rundir
    from bayes_densing.results import json_safe

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {**result.to_dict(), "coverage": coverage_summary(result.fits), **(extra or {})}
    rundir.write_atomic(out / "sbc.json", json.dumps(json_safe(record), indent=1))
    if (out / "sweep.json").is_file():
        rundir.write_manifest(out, "sbc", ["sbc.json", "sweep.json"])
    return [out / "sbc.json"]
