"""Benchmark subsets: how does the doubling time move with the benchmarks it is measured on?

Every non-empty subset of the given benchmarks (31 for five) is fitted with one compiled
model (``inference/sweep.py``: the subset is a 0/1 weight vector; under ``model.curves =
"cut"`` both of the cut's modules, ``cut.CutSampler``), and for each the table gives the
doubling time (median, 90% HDI, P(T ≤ 3.3/3.5)), the sampler's diagnostics over the
parameters that subset informs, and the Spearman rank correlation of the per-model densities
with the fit on all the benchmarks (over the targets scored in both).

    from bayes_densing.analyses.subsets import run_subsets
    table = run_subsets(config, benchmarks=["mmlu", "bbh", "math_hard", "humaneval", "gsm8k"])
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from bayes_densing import data as data_mod, results
from bayes_densing.results import rundir
from bayes_densing.config import Config, ConfigError
from bayes_densing.distributed import runner, store
from bayes_densing.inference.sample import SamplerError, diagnose

MAX_BENCHMARKS = 8   # 255 subsets
COLUMNS = ["subset", "n_benchmarks", "n_targets", "doubling_median", "hdi_low", "hdi_high",
           "p_leq_3.3", "p_leq_3.5", "p_no_growth", "rank_corr_with_all", "divergences",
           "max_rhat", "min_ess", "diagnostics", "wall_s", "worker"]
# warm-up iterations of a warm-started subset: shorter leaves a worse step size and saves
# nothing (benchmarks/README.md, "Benchmark-subset sweep (one compiled model)")
WARM_TUNE = 300


def all_subsets(benchmarks: list[str], min_size: int = 1) -> list[tuple[str, ...]]:
    """Every subset with at least ``min_size`` benchmarks, largest first (the full set first)."""
    if not 1 <= min_size <= len(benchmarks):
        raise ConfigError(f"--min-size must be between 1 and {len(benchmarks)}, got {min_size}")
    out = [c for r in range(len(benchmarks), min_size - 1, -1)
           for c in itertools.combinations(benchmarks, r)]
    return out


@dataclass
class Subset:
    """One variant of the sweep: a subset of the benchmarks, named by them joined with '+'."""

    benchmarks: tuple[str, ...]

    @property
    def name(self) -> str:
        return "+".join(self.benchmarks)


@dataclass
class SubsetFamily:
    """Every subset of one dataset's benchmarks as a family of fits of one compiled program
    (``distributed.programs``): the joint model's weighted sweep, or the cut's two modules.
    A task's ``context`` is the all-benchmark fit's adapted state, that a warm-started subset
    starts from."""

    data: data_mod.ScoreData
    config: Config
    warm_tune: int = WARM_TUNE
    errors = (SamplerError,)

    @cached_property
    def key(self) -> str:
        return "subsets-" + store.digest([self.config.to_dict(), self.data.sha256,
                                          self.data.benchmarks, len(self.data.obs)])[:16]

    def compile(self):
        if self.config.model.curves == "cut":
            from bayes_densing.inference.cut import CutSampler

            return CutSampler(self.data, self.config)
        from bayes_densing.inference.sweep import compile_sweep

        return compile_sweep(self.data, self.config)

    def weights(self, subset: Subset) -> tuple[np.ndarray, np.ndarray]:
        bench_w = np.array([b in subset.benchmarks for b in self.data.benchmarks], dtype=float)
        return bench_w[self.data.obs.bench_idx.to_numpy()], bench_w

    def prime(self, sampler, subset: Subset) -> None:
        """Compile the joint sweep's programs (``SweepSampler.compile_now``) on a worker left
        idle while the all-benchmark fit runs; the cut has no such stage."""
        if self.config.model.curves != "cut":
            sampler.compile_now(*self.weights(subset))

    def fit(self, sampler, subset: Subset, warm) -> tuple[dict, dict]:
        """One subset's fit (its seed from its name, ``families.variant_seed``): its row of the
        table and its slimmed posterior (the slope's draws, each scored target's median ln ρ);
        the parent's (``warm`` None, a joint sweep) also its adapted state."""
        from bayes_densing.sampling.families import state_arrays, variant_seed

        obs_w, bench_w = self.weights(subset)
        seed = variant_seed(self.config.sampler.seed, subset.name)
        arrays = {}
        if self.config.model.curves == "cut":
            idata = sampler.fit(seed, weights=(obs_w, bench_w))
        else:
            tune = None if warm is None else min(self.warm_tune, self.config.sampler.tune)
            idata = sampler.sample(obs_w, bench_w, seed, warm=warm, tune=tune)
            if warm is None:
                arrays["state"] = state_arrays(sampler.last, subset.name)
        record, arrays["posterior"] = self.summarise(idata, subset, obs_w,
                                                     [rv.name for rv in sampler.model.free_RVs])
        return record, arrays

    def summarise(self, idata, subset: Subset, obs_w: np.ndarray, free: list[str]
                  ) -> tuple[dict, dict]:
        """A subset's row (doubling time, diagnostics over what it informs: its benchmarks and its
        scored targets) and its slimmed posterior."""
        data, config = self.data, self.config
        obs_m = data.obs.model_idx.to_numpy()
        scored = np.zeros(data.n_target, bool)
        scored[obs_m[(obs_w > 0) & (obs_m >= data.n_ref)] - data.n_ref] = True
        targets = data.targets.model.to_numpy()[scored]
        informed = idata.sel(benchmark=list(subset.benchmarks), target=list(targets))
        slope = results.slope_draws(informed, config, data.targets.t.to_numpy(dtype=float)[scored])
        doubling = results.doubling_summary(slope)
        diag = diagnose(informed, free)
        lo, hi = doubling["hdi_months"]
        row = {"subset": subset.name, "n_benchmarks": len(subset.benchmarks),
               "n_targets": int(scored.sum()), "doubling_median": doubling["median_months"],
               "hdi_low": lo, "hdi_high": hi, "p_leq_3.3": doubling["p_leq"]["3.3"],
               "p_leq_3.5": doubling["p_leq"]["3.5"], "p_no_growth": doubling["p_no_growth"],
               "divergences": diag["divergences"], "max_rhat": diag["max_rhat"],
               "min_ess": min(diag["min_ess_bulk"], diag["min_ess_tail"]),
               "diagnostics": "OK" if not diag["problems"] else "; ".join(diag["problems"])}
        posterior = {"slope": np.asarray(slope), "targets": np.asarray(targets, dtype=str),
                     "log_density_median": np.median(results.draws(informed, "log_density"), axis=0)}
        return results.json_safe(row), posterior


def _line(outcome) -> str:
    if outcome.error:
        return f"{outcome.name}: failed: {outcome.error}"
    r = outcome.record
    return (f"{outcome.name}: {r['doubling_median']:.2f} months (90% HDI {r['hdi_low']:.2f}–{r['hdi_high']:.2f}), "
            f"{'diagnostics OK' if r['diagnostics'] == 'OK' else 'PROBLEMS'}, "
            f"{outcome.wall_s:.0f} s")


def run_subsets(config: Config, benchmarks: list[str], data_path=None, min_size: int = 1,
                progress: Callable[[str], None] | None = None,
                warm_start: bool = True, warm_tune: int = WARM_TUNE,
                out: str | Path | None = None, force: bool = False,
                place=None) -> pd.DataFrame:
    """Fit every benchmark subset with one compiled model; one row per subset, each with its
    own seed from the run's and the subset's name (``families.variant_seed``).

    ``warm_start``: each subset's warm-up starts from the fit on all the benchmarks (its
    metric, step size and last positions, persisted in the sweep directory) rather than from
    the identity metric, and is ``warm_tune`` iterations long (at most ``sampler.tune``; the
    same schedule of doubling windows, shorter). Cold, every subset has the full
    ``sampler.tune``. ``out``: the sweep directory (``distributed.store``), resumed if it
    holds part of this sweep (``force``: discarded); without it, a temporary one. ``place``:
    where the fits run (``distributed.runner.executor``; default this process)."""
    if len(set(benchmarks)) != len(benchmarks) or len(benchmarks) < 2:
        raise ConfigError("--benchmarks: give at least two different benchmarks")
    if len(benchmarks) > MAX_BENCHMARKS:
        raise ConfigError(f"--benchmarks: at most {MAX_BENCHMARKS} ({2 ** MAX_BENCHMARKS - 1} "
                          f"subsets); got {len(benchmarks)}")
    if warm_tune < 1:
        raise ConfigError(f"--warm-tune must be at least 1, got {warm_tune}")
    config.set("data.benchmarks", list(benchmarks)).validate()
    subsets = [Subset(s) for s in all_subsets(list(benchmarks), min_size)]
    data = data_mod.load(config, data_path)
    missing = [b for b in benchmarks if b not in data.benchmarks]
    if missing:
        raise data_mod.DataError(f"{data.source}: benchmark(s) {', '.join(missing)} left no "
                                 "usable scores (see the notices of `bayes-densing sample`)")
    warm_start = warm_start and config.model.curves != "cut"   # a cut warm start is not measured
    family = SubsetFamily(data, config, warm_tune)
    spec = {"config": store.config_spec(config),
            "sweep": {"subsets": [s.name for s in subsets], "warm_start": warm_start,
                      "warm_tune": warm_tune}}
    place = place or runner.InProcess()
    start = time.perf_counter()
    with store.sweep_dir(out) as where:
        sweep = store.SweepStore(where, store.identity("subsets", spec, data.sha256),
                                 force=force, spec=spec)
        parent, rest = (subsets[:1], subsets[1:]) if warm_start else ([], subsets)
        tracker = runner.Progress.of(sweep, subsets, progress)
        go = dict(describe=_line, progress=tracker)
        done = runner.run(family, parent, sweep, place, **go)
        warm = None
        if parent:
            from bayes_densing.sampling.families import state_from_arrays

            failed = done[parent[0].name]["error"]
            if failed:         # no state to start the others from
                raise SamplerError(f"the fit on all the benchmarks failed: {failed}")
            warm = state_from_arrays(sweep.arrays(parent[0].name, "state"), parent[0].name)
        runner.run(family, rest, sweep, place, context=warm, **go)
        table = table_of(sweep, subsets)
    table.attrs["estimand"] = config.model.curves
    table.attrs["total_s"] = time.perf_counter() - start
    table.attrs["first_fit_s"] = float(table.wall_s.iloc[0])
    table.attrs["fitted_now"] = tracker.done
    table.attrs["where"] = place.where
    table.attrs["out"] = str(out) if out is not None else ""
    return table


def table_of(sweep, subsets: list[Subset]) -> pd.DataFrame:
    """The table, from the sweep directory's variants: each subset's row, and the rank
    correlation of its targets' median ln ρ with the all-benchmark fit's."""
    done = sweep.done()
    rows, full = [], None
    for subset in subsets:
        doc = done[subset.name]
        if doc["error"]:
            raise SamplerError(f"subset {subset.name}: {doc['error']}")
        post = sweep.arrays(subset.name, "posterior")
        rho = pd.Series(post["log_density_median"], index=post["targets"])
        full = rho if full is None else full
        common = rho.index.intersection(full.index)
        corr = (stats.spearmanr(rho[common], full[common]).statistic
                if len(common) >= 3 else np.nan)
        rows.append({**doc["record"], "rank_corr_with_all": float(corr),
                     "wall_s": doc["wall_s"], "worker": doc["pid"]})
    return pd.DataFrame(rows, columns=COLUMNS).astype({"max_rhat": float, "min_ess": float})


def write(table: pd.DataFrame, out: str | Path, config: Config) -> Path:
    """subsets.csv, subsets.json and config.toml into the sweep directory ``out`` (each file
    replaced whole), then its manifest; its forest plot is ``figures.run_set.draw_sweep``'s."""
    out = Path(out)
    rundir.write_atomic(out / "subsets.csv", table.to_csv(index=False))
    rundir.write_atomic(out / "subsets.json", json.dumps(
        {"rows": json.loads(table.to_json(orient="records")), **table.attrs}, indent=2))
    rundir.write_atomic(out / "config.toml", config.to_toml())
    rundir.write_manifest(out, "subsets", ["subsets.csv", "subsets.json", "config.toml",
                                           store.SWEEP])
    return out


def text(table: pd.DataFrame) -> str:
    lines = [f"{'subset':<44} {'T (months)':>10}  {'90% HDI':>13}  {'P(T≤3.3)':>8}  "
             f"{'rank ρ':>6}  diagnostics"]
    for _, r in table.iterrows():
        lines.append(f"{r.subset[:44]:<44} {r.doubling_median:>10.2f}  "
                     f"{r.hdi_low:>5.2f}–{r.hdi_high:<6.2f}  {r['p_leq_3.3']:>8.3f}  "
                     f"{r.rank_corr_with_all:>6.2f}  {r.diagnostics}")
    a = table.attrs
    if a.get("estimand") == "cut":
        lines.insert(0, "Estimand: cut — each subset's curves from the reference models' scores "
                        "on its benchmarks alone")
    if "total_s" in a and a.get("fitted_now", len(table)) == 0:
        lines.append(f"\nall {len(table)} subsets were already in the sweep directory: none "
                     "fitted now")
    elif "total_s" in a:
        now = a.get("fitted_now", len(table))
        lines.append(f"\n{now} of {len(table)} subsets fitted now ({a.get('where', 'in-process')}) "
                     f"in {a['total_s']:.0f} s; a fit took {table.wall_s.median():.0f} s "
                     f"(median; the first in each process, with compilation: "
                     f"{a['first_fit_s']:.0f} s)")
    return "\n".join(lines)
