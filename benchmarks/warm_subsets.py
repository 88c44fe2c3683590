"""Two hard benchmark subsets, warm-started as `bayes-densing subsets` fits them, seed by seed.

    BAYES_DENSING_JAX_CACHE=off python benchmarks/warm_subsets.py 0 1 2 3 4 5

For each seed: the fit on all five sweep benchmarks (mmlu, bbh, math_hard, humaneval, gsm8k),
then MMLU alone and MMLU + MATH-hard + GSM8K, each warm-started from it with the sweep's
warm-up (``analyses.subsets.WARM_TUNE`` iterations; ``sweep.SweepSampler``). Prints, per fit,
the divergent transitions of each chain, the max R-hat and min bulk ESS of the global
parameters, the step size, and each chain's median doubling time and mean log density: a
chain that sits in another mode shows there. To compare two versions of the package, run it from outside the checkout with
``PYTHONPATH=<worktree>``.
"""

from __future__ import annotations

import sys

import numpy as np

import bayes_densing
from bayes_densing import data as data_mod
from bayes_densing.analyses.subsets import WARM_TUNE
from bayes_densing.config import Config
from bayes_densing.inference.sample import diagnose
from bayes_densing.inference.sweep import compile_sweep

BENCHMARKS = ["mmlu", "bbh", "math_hard", "humaneval", "gsm8k"]
SUBSETS = (["mmlu"], ["mmlu", "math_hard", "gsm8k"])
GLOBALS = ["A", "B_centre", "sigma_v", "sigma_u", "z_centre", "z_gain"]


def main(seeds: list[int]) -> None:
    print(f"package: {bayes_densing.__file__}")
    for seed in seeds:
        cfg = Config()
        cfg.sampler.seed = seed
        cfg.set("data.benchmarks", BENCHMARKS).validate()
        data = data_mod.load(cfg)
        sweep = compile_sweep(data, cfg)
        obs_bench = data.obs.bench_idx.to_numpy()

        def fit(subset, warm):
            w = np.array([b in subset for b in data.benchmarks], dtype=float)
            idata = sweep.sample(w[obs_bench], w, seed, warm=warm,
                                 tune=None if warm is None else WARM_TUNE)
            d = diagnose(idata.sel(benchmark=[b for b in data.benchmarks if b in subset]),
                         GLOBALS)
            T = np.median(idata.posterior["doubling_months"].values, axis=1)
            lp = np.mean(idata.sample_stats["lp"].values, axis=1)
            print(f"seed {seed} {'+'.join(subset):36s} divergences/chain "
                  f"{idata.sample_stats.diverging.values.sum(axis=1)} R-hat {d['max_rhat']:.3f} "
                  f"ESS {d['min_ess_bulk']:.0f} step {sweep.last.step_size:.3f} "
                  f"T/chain {np.round(T, 2)} lp/chain {np.round(lp, 1)}", flush=True)

        fit(BENCHMARKS, None)
        warm = sweep.last
        for subset in SUBSETS:
            fit(subset, warm)


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0])
