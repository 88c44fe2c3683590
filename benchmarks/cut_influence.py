"""Influence under the cut: the leave-one-out within each curve draw against the refits it
predicts, and against plain PSIS over the run's pooled draws (what the cut forbids).

For the ``--top`` targets that move the doubling time most by the stratified importance
sampling (``analyses/stratified.py``), each is refitted without its scores with the curves
reused (``stratified.refit_without_target``), and the table gives the move of T's median
each way, the LOO density against the refit's predictive density of the left-out scores,
and the pooled-PSIS answers on the run's own draws (no latent integrated out)::

    python benchmarks/cut_influence.py RUN_DIR [--top 5] [--per-chain 15] [--kept 80]

RUN_DIR: a run of ``bayes-densing sample --curves cut``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.special import logsumexp

from bayes_densing import results
from bayes_densing.analyses import influence as inf
from bayes_densing.analyses import stratified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--per-chain", type=int, default=stratified.PER_CHAIN)
    parser.add_argument("--kept", type=int, default=stratified.KEPT)
    args = parser.parse_args()

    run = results.load_run(args.run_dir)
    data = inf.run_data(run.idata, run.config)
    start = time.perf_counter()
    strata = stratified.Strata(data, run.config, per_chain=args.per_chain, kept=args.kept)
    drawn = time.perf_counter() - start
    rows = stratified.target_rows(strata).set_index("model")
    scored = time.perf_counter() - start - drawn
    print(f"strata: {strata.shape[0]} curve draws × {strata.shape[1]} draws, "
          f"{drawn:.0f} s to draw (with the curve fit and warm-up again), {scored:.0f} s to score")

    # plain PSIS over the run's pooled draws, the targets' own scores without integrating
    names = data.models.model.tolist()
    ll_run = inf.by_model(inf.pointwise_loglik(run.idata, data, run.config), data)
    A_run = results.slope_per_draw(run.idata, run.config)
    pooled_shift = dict(zip(names, stratified.pooled_shifts(ll_run.reshape(-1, len(names)),
                                                            A_run)))
    pooled_elpd = dict(zip(names, np.asarray(inf.model_loo(ll_run, run.idata, names)
                                             .elpd_i.values)))

    rho = strata.idata.posterior["log_density"].values.reshape(-1, data.n_target)
    grid_at = (rho.mean(axis=0), rho.std(axis=0))
    base = results.doubling_summary(results.draws(run.idata, "A"))["median_months"]
    print(f"{'target':<36} {'k':>5} {'ΔT IS':>7} {'ΔT refit':>8} {'ΔT pooled':>9} "
          f"{'elpd IS':>8} {'elpd refit':>10} {'elpd pooled':>11} {'refit s':>7}")
    for name in rows.index[np.argsort(-np.abs(rows.loo_shift.to_numpy()))][:args.top]:
        t0 = time.perf_counter()
        refit = stratified.refit_without_target(strata, name)
        seconds = time.perf_counter() - t0
        i = data.targets.model.tolist().index(name)
        ll = stratified.integrated_loglik(refit["idata"], data, run.config, grid_at=grid_at)[:, i]
        direct = logsumexp(ll) - math.log(ll.size)
        r = rows.loc[name]
        print(f"{name[:36]:<36} {r.pareto_k:5.2f} {r.loo_shift:+7.2f} "
              f"{refit['doubling']['median_months'] - base:+8.2f} {pooled_shift[name]:+9.2f} "
              f"{r.elpd_loo_i:8.2f} {direct:10.2f} {pooled_elpd[name]:11.2f} {seconds:7.1f}")


if __name__ == "__main__":
    main()
