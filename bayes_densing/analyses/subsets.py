"""Benchmark subsets: how does the doubling time move with the benchmarks it is measured on?

Every non-empty subset of the given benchmarks (31 for five) is fitted with one compiled
model (``sweep.py``: the subset is a 0/1 weight vector; under ``model.curves = "cut"`` both
of the cut's modules, ``cut.CutSampler``), and for each the table gives the
doubling time (median, 90% HDI, P(T ≤ 3.3/3.5)), the sampler's diagnostics over the
parameters that subset informs, and the Spearman rank correlation of the per-model densities
with the fit on all the benchmarks (over the targets scored in both).

    from bayes_densing.analyses.subsets import run_subsets
    table = run_subsets(config, benchmarks=["mmlu", "bbh", "math_hard", "humaneval", "gsm8k"])
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from .. import data as data_mod, results, rundir
from ..config import Config, ConfigError
from ..inference import diagnose

MAX_BENCHMARKS = 8   # 255 subsets
PARENT_STATE = "parent-state.npz"   # the all-benchmark fit's adapted state, the subsets' start
WARM_TUNE = 300      # warm-up iterations of a warm-started subset (benchmarks/README.md)


def all_subsets(benchmarks: list[str], min_size: int = 1) -> list[tuple[str, ...]]:
    """Every subset with at least ``min_size`` benchmarks, largest first (the full set first)."""
    if not 1 <= min_size <= len(benchmarks):
        raise ConfigError(f"--min-size must be between 1 and {len(benchmarks)}, got {min_size}")
    out = [c for r in range(len(benchmarks), min_size - 1, -1)
           for c in itertools.combinations(benchmarks, r)]
    return out


def run_subsets(config: Config, benchmarks: list[str], data_path=None, min_size: int = 1,
                progress: Callable[[str], None] | None = None,
                warm_start: bool = True, warm_tune: int = WARM_TUNE,
                state_dir: Path | None = None) -> pd.DataFrame:
    """Fit every benchmark subset with one compiled model; one row per subset, each with its
    own seed from the run's and the subset's name (``families.variant_seed``).

    ``warm_start``: each subset's warm-up starts from the fit on all the benchmarks (its
    metric, step size and last positions) rather than from the identity metric, and is
    ``warm_tune`` iterations long (at most ``sampler.tune``; the same schedule of doubling
    windows, shorter). Cold, every subset has the full ``sampler.tune``. ``state_dir``: where
    that parent state is persisted (:data:`PARENT_STATE`), each subset starting from the file."""
    if len(set(benchmarks)) != len(benchmarks) or len(benchmarks) < 2:
        raise ConfigError("--benchmarks: give at least two different benchmarks")
    if len(benchmarks) > MAX_BENCHMARKS:
        raise ConfigError(f"--benchmarks: at most {MAX_BENCHMARKS} ({2 ** MAX_BENCHMARKS - 1} "
                          f"subsets); got {len(benchmarks)}")
    if warm_tune < 1:
        raise ConfigError(f"--warm-tune must be at least 1, got {warm_tune}")
    config.set("data.benchmarks", list(benchmarks)).validate()
    subsets = all_subsets(list(benchmarks), min_size)
    data = data_mod.load(config, data_path)
    missing = [b for b in benchmarks if b not in data.benchmarks]
    if missing:
        raise data_mod.DataError(f"{data.source}: benchmark(s) {', '.join(missing)} left no "
                                 "usable scores (see the notices of `bayes-densing sample`)")
    say = progress or (lambda _: None)
    start = time.perf_counter()
    sampler, fit = _fitter(data, config, warm_start, warm_tune, state_dir)
    obs_b = data.obs.bench_idx.to_numpy()
    obs_m = data.obs.model_idx.to_numpy()
    t = data.targets.t.to_numpy(dtype=float)
    rows, full_rho = [], None
    for i, subset in enumerate(subsets, 1):
        t0 = time.perf_counter()
        bench_w = np.array([b in subset for b in data.benchmarks], dtype=float)
        obs_w = bench_w[obs_b]
        scored = np.zeros(data.n_target, bool)
        scored[obs_m[(obs_w > 0) & (obs_m >= data.n_ref)] - data.n_ref] = True
        idata = fit("+".join(subset), obs_w, bench_w)
        targets = data.targets.model.to_numpy()[scored]
        # what this subset informs: its benchmarks and its scored targets (slope, diagnostics)
        informed = idata.sel(benchmark=[b for b in data.benchmarks if b in subset],
                             target=list(targets))
        doubling = results.doubling_summary(results.slope_draws(informed, config, t[scored]))
        free = [rv.name for rv in sampler.model.free_RVs]
        diag = diagnose(informed, free)
        rho = pd.Series(np.median(results.draws(informed, "log_density"), axis=0), index=targets)
        if full_rho is None:
            full_rho = rho
        common = rho.index.intersection(full_rho.index)
        corr = (stats.spearmanr(rho[common], full_rho[common]).statistic
                if len(common) >= 3 else np.nan)
        lo, hi = doubling["hdi_months"]
        rows.append({"subset": "+".join(subset), "n_benchmarks": len(subset),
                     "n_targets": int(scored.sum()), "doubling_median": doubling["median_months"],
                     "hdi_low": lo, "hdi_high": hi, "p_leq_3.3": doubling["p_leq"]["3.3"],
                     "p_leq_3.5": doubling["p_leq"]["3.5"], "p_no_growth": doubling["p_no_growth"],
                     "rank_corr_with_all": float(corr), "divergences": diag["divergences"],
                     "max_rhat": diag["max_rhat"], "min_ess": min(diag["min_ess_bulk"],
                                                                  diag["min_ess_tail"]),
                     "diagnostics": "OK" if not diag["problems"] else "; ".join(diag["problems"]),
                     "wall_s": time.perf_counter() - t0})
        say(f"[{i}/{len(subsets)}] {'+'.join(subset)}: {doubling['median_months']:.2f} months "
            f"(90% HDI {lo:.2f}–{hi:.2f}), ρ rank corr {corr:.2f}, "
            f"{'diagnostics OK' if not diag['problems'] else 'PROBLEMS'}, "
            f"{time.perf_counter() - t0:.0f} s")
    table = pd.DataFrame(rows)
    table.attrs["estimand"] = config.model.curves
    table.attrs["total_s"] = time.perf_counter() - start
    table.attrs["first_fit_s"] = float(table.wall_s.iloc[0])
    return table


def _fitter(data, config: Config, warm_start: bool, warm_tune: int,
            state_dir: Path | None = None):
    """The compiled family of fits and (name, obs_w, bench_w) → one subset's posterior, its
    seed from the subset's name. Joint: the sweep, each subset after the first warm-started
    from it (with ``warm_start``; persisted in ``state_dir`` when given) and ``warm_tune``
    iterations long. Cut (``CutSampler.fit``): each subset from scratch, its curves from the
    references' scores on its benchmarks (a warm start is not measured)."""
    from ..sampling.families import load_state, save_state, variant_seed
    from ..sweep import compile_sweep

    seed = config.sampler.seed
    if config.model.curves == "cut":
        from ..cut import CutSampler

        sampler = CutSampler(data, config)
        return sampler, lambda name, obs_w, bench_w: sampler.fit(variant_seed(seed, name),
                                                                 weights=(obs_w, bench_w))
    sampler = compile_sweep(data, config)
    state = {"warm": None}

    def fit(name, obs_w, bench_w):
        warm = state["warm"]
        idata = sampler.sample(obs_w, bench_w, variant_seed(seed, name), warm=warm,
                               tune=None if warm is None else min(warm_tune, config.sampler.tune))
        if warm_start and warm is None:      # the first subset, all the benchmarks
            state["warm"] = sampler.last
            if state_dir is not None:
                path = save_state(sampler.last, Path(state_dir) / PARENT_STATE, name)
                state["warm"] = load_state(path, name)
        return idata
    return sampler, fit


def write(table: pd.DataFrame, out: str | Path, config: Config, force: bool = False,
          state_dir: Path | None = None) -> Path:
    """subsets.csv, subsets.json, config.toml and the forest plot, written atomically to ``out``;
    with ``state_dir``, the parent fit's persisted state (:data:`PARENT_STATE`) too."""
    from .. import plots

    where: list[Path] = []
    with results.atomic_dir(out, force, where=where) as tmp:
        table.to_csv(tmp / "subsets.csv", index=False)
        (tmp / "subsets.json").write_text(json.dumps(
            {"rows": json.loads(table.to_json(orient="records")), **table.attrs}, indent=2))
        (tmp / "config.toml").write_text(config.to_toml())
        core = ["subsets.csv", "subsets.json", "config.toml"]
        if state_dir is not None and (Path(state_dir) / PARENT_STATE).exists():
            shutil.copyfile(Path(state_dir) / PARENT_STATE, tmp / PARENT_STATE)
            core.append(PARENT_STATE)
        rundir.write_manifest(tmp, "subsets", core)
        plots.forest(table, tmp / "forest")
        rundir.record_derived(tmp, ["forest.png", "forest.svg"])
    return where[0]


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
    if "total_s" in a:
        lines.append(f"\n{len(table)} fits in {a['total_s']:.0f} s (the first, with compilation: "
                     f"{a['first_fit_s']:.0f} s; the others {table.wall_s.iloc[1:].mean():.0f} s "
                     "each on average)" if len(table) > 1 else "")
    return "\n".join(lines)
