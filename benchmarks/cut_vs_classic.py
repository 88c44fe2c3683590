"""Agreement of a run with the paper's point pipeline (`bayes-densing classic`), in the two
tiers of issue #29, on the run's own data:

(a) classic's steps 2–3 (invert each target's scores, mean ln N̂ over benchmarks) applied to
    every posterior draw of the curves, medians against classic: |median log ratio| ≤ 0.1,
    Spearman ≥ 0.98;
(b) the run's posterior medians of ln N̂ against classic on the interpolation set (targets
    with every score above chance + 0.02 and below the best reference score of its
    benchmark): |median log ratio| ≤ 0.25, Spearman ≥ 0.93.
Also on all targets, with the difference split into the curves (tier a), the aggregation of
the benchmarks (each target's likelihood-only ln N̂ at the median curves against classic's mean
over benchmarks through the same draws) and the trend prior's shrinkage (posterior median
against likelihood-only).

    python benchmarks/cut_vs_classic.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy import stats

from bayes_densing.analyses import classic
from bayes_densing.analyses.influence import run_data
from bayes_densing.results import load_run


def interpolation_set(data) -> np.ndarray:
    """Targets with every score above chance + 0.02 and below the best reference score."""
    obs = data.obs
    best = obs[obs.model_idx < data.n_ref].groupby("bench_idx").score.max()
    t = obs[obs.model_idx >= data.n_ref]
    inside = ((t.score > data.chance[t.bench_idx.to_numpy()] + 0.02)
              & (t.score < best.loc[t.bench_idx].to_numpy()))
    ok = inside.groupby(t.model_idx).all()
    mask = np.zeros(data.n_target, bool)
    mask[ok.index[ok.to_numpy()] - data.n_ref] = True
    return mask


def compare(x: np.ndarray, y: np.ndarray) -> dict:
    ok = np.isfinite(x) & np.isfinite(y)
    return {"n": int(ok.sum()), "median_log_ratio": float(np.median(x[ok] - y[ok])),
            "spearman": float(stats.spearmanr(x[ok], y[ok]).statistic)}


def likelihood_only(run, data) -> np.ndarray:
    """Each target's ln N̂ maximising its scores' beta-binomial likelihood alone (no trend
    prior), at the posterior medians of the curves and of φ: what the model's aggregation of
    the benchmarks gives before the trend shrinks it."""
    from scipy.stats import betabinom

    from bayes_densing.model.likelihood import obs_concentration
    from bayes_densing.model.curves import score_probability
    from bayes_densing.results import curve_draws, draws

    grid = np.linspace(-6.0, 8.0, 1401)
    params = {k: np.repeat(np.median(v, axis=0, keepdims=True), grid.size, axis=0)
              for k, v in curve_draws(run.idata).items()}
    params["log_effective_size"] = np.repeat(grid[:, None], data.n_target, axis=1)
    p, _ = score_probability(params, data, run.config, xp=np)
    phi = obs_concentration(np.median(draws(run.idata, "phi_reference"), axis=0)[None],
                            np.median(draws(run.idata, "phi_target"), axis=0)[None], data, xp=np)
    obs = data.obs
    ll = betabinom.logpmf(obs.k.to_numpy(), obs.n.to_numpy(), p * phi, (1 - p) * phi)
    target = obs.model_idx.to_numpy() - data.n_ref
    per = np.zeros((grid.size, data.n_target))
    for i in range(data.n_target):
        per[:, i] = ll[:, target == i].sum(axis=1)
    return grid[np.argmax(per, axis=0)]


def agreement(run_dir: str) -> dict:
    run = load_run(run_dir)
    data = run_data(run.idata, run.config)
    point = np.log(classic.fit(data, run.config).models.effective_params.to_numpy())
    post = run.idata["posterior"].to_dataset()
    per_draw = np.nanmedian(classic.sizes_per_draw(post, data, run.config), axis=0)
    medians = (post["log_effective_size"].median(("chain", "draw"))
               .sel(target=data.targets.model.to_numpy()).values)
    inside = interpolation_set(data)
    mle = likelihood_only(run, data)
    a, b = compare(per_draw, point), compare(medians[inside], point[inside])
    return {"run": run_dir, "estimand": run.diagnostics.get("estimand", "joint"),
            "tier_a": {**a, "pass": abs(a["median_log_ratio"]) <= 0.1 and a["spearman"] >= 0.98},
            "tier_b": {**b, "pass": abs(b["median_log_ratio"]) <= 0.25 and b["spearman"] >= 0.93},
            "all_targets": compare(medians, point),
            # the difference on all targets, split: the curves (tier a), the aggregation of
            # the benchmarks by the likelihood, the trend's shrinkage
            "curves_all": compare(per_draw, point),
            "aggregation_all": compare(mle, per_draw),
            "shrinkage_all": compare(medians, mle),
            "aggregation_interpolation": compare(mle[inside], per_draw[inside]),
            "shrinkage_interpolation": compare(medians[inside], mle[inside]),
            "interpolation_set": int(inside.sum()), "targets": int(data.n_target)}


if __name__ == "__main__":
    for d in sys.argv[1:]:
        print(json.dumps(agreement(d)))
