"""Coverage of `bayes-densing forecast` (bayes_densing/analyses/forecast.py) on datasets with
a known truth.

    python benchmarks/forecast_coverage.py --datasets 100 --out benchmarks/results/forecast-coverage-2026-12-04.json

Each dataset's parameters are drawn from the model's prior and its scores from them
(``sbc.prior_draws``, the simulation-based calibration's datasets); all datasets share one
compiled fit (``sbc.fitter``). Every fit is then asked for a forecast at ``--ahead`` months
after the last target's release, and two things are recorded:

(a) whether the 90% HDI of the frontier μ(t_f) covers the true A·t_f + B, and
(b) whether the 90% HDI of a new model's posterior predictive log density covers a fresh
    model drawn from the true trend there: true μ(t_f) + v − u with v ~ N(0, σ_v),
    u ~ HalfNormal(σ_u), the frontier's definition (not the skew-normal the forecast draws
    from, so that a wrong parametrisation of the draw shows); once per dataset, and
    ``--fresh`` more per dataset for a tighter, clustered estimate.

With the joint model the posterior is exact when the model holds, so both rates must be 90%
up to chance (two-sided binomial tolerance at a 1% false-alarm rate; for the ``--fresh``
draws ``sbc.clustered_tolerance``, a dataset's draws share its fit). The cut (the default
estimand) may cover more, never less.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from scipy import stats

from bayes_densing.model import laws
from bayes_densing.analyses import sbc
from bayes_densing.analyses import forecast as fcast
from bayes_densing.config import Config, load_config
from bayes_densing.sampling.families import variant_seed

PROB = fcast.PROB


def tolerance(n: int, false_alarm: float = 0.01, prob: float = PROB) -> list[float]:
    """Two-sided binomial tolerance of a coverage rate over ``n`` independent intervals."""
    return [float(stats.binom.ppf(false_alarm / 2, n, prob) / n),
            float(stats.binom.isf(false_alarm / 2, n, prob) / n)]


def covered(x: np.ndarray, truth) -> np.ndarray:
    """Whether the forecast's 90% HDI (``forecast.interval``) of draws ``x`` covers ``truth``."""
    d = fcast.interval(x)
    return (d["low"] <= np.asarray(truth)) & (np.asarray(truth) <= d["high"])


def _width(x: np.ndarray) -> float:
    d = fcast.interval(x)
    return float(d["high"] - d["low"])


def study(n_datasets: int, config: Config, *, n_targets: int = 20, n_benchmarks: int = 3,
          ahead: float = 12.0, fresh: int = 200, seed: int = 0, progress=None,
          keep_last: bool = False) -> dict:
    """Fit ``n_datasets`` prior-predictive datasets and record the forecast's coverage at
    ``ahead`` months after the last target (see the module's docstring). ``keep_last``: also
    return the last fit and its design under ``"last"`` (posterior, ScoreData; not JSON)."""
    config = copy.deepcopy(config)
    config.validate()
    data = sbc.design(n_targets, n_benchmarks, seed, config)
    truth, counts = sbc.prior_draws(data, config, n_datasets, seed)
    t_f = float(data.targets.t.max()) + ahead
    start = time.perf_counter()
    fit_one = sbc.fitter(data, config)
    fit_one(seed, counts[0])                       # compiles; not a dataset of the study
    compile_s = time.perf_counter() - start
    true = truth.posterior
    fits = []
    for i in range(n_datasets):
        t0 = time.perf_counter()
        idata = fit_one(variant_seed(seed, f"dataset {i}"), counts[i])
        one = {k: float(np.asarray(true[k]).reshape(-1)[i])
               for k in ("A", "B", "sigma_v", "sigma_u")}
        rng = np.random.default_rng([seed, i, 1])
        mu_true = float(laws.trend_mean(t_f, one["A"], one["B"]))
        y = mu_true + rng.normal(0.0, one["sigma_v"], 1 + fresh) \
            - np.abs(rng.normal(0.0, one["sigma_u"], 1 + fresh))
        mu = fcast.frontier_draws(idata, config, [t_f])[:, 0]
        new = fcast.predictive_draws(idata, config, [t_f], rng)[:, 0]
        many = covered(new, y[1:])
        fits.append({"dataset": i, "seconds": time.perf_counter() - t0,
                     "divergences": int(idata.sample_stats["diverging"].sum()),
                     "true_A": one["A"], "true_mu": mu_true,
                     "mu_covered": bool(covered(mu, mu_true)),
                     "mu_width": _width(mu),
                     "mu_error": float(np.median(mu) - mu_true),
                     "new_covered": bool(covered(new, y[0])),
                     "new_width": _width(new),
                     "fresh_covered": int(many.sum()), "fresh_n": int(fresh),
                     # a negative control: the frontier's band taken for a new model's
                     "fresh_by_frontier_covered": int(covered(mu, y[1:]).sum())})
        if progress:
            progress(i + 1, n_datasets, fits[-1])
    return {"settings": {"n_datasets": n_datasets, "n_targets": data.n_target,
                         "n_benchmarks": n_benchmarks, "benchmarks": data.benchmarks,
                         "ahead_months": ahead, "t_forecast": t_f,
                         "t_last_target": float(data.targets.t.max()), "fresh": fresh,
                         "seed": seed, "chains": config.sampler.chains,
                         "draws": config.sampler.draws, "tune": config.sampler.tune,
                         "model": copy.deepcopy(config.to_dict()["model"])},
            "compile_s": compile_s, "fits": fits, "summary": summary(fits),
            **({"last": (idata, data)} if keep_last else {})}


def summary(fits: list[dict], false_alarm: float = 0.01) -> dict:
    """Coverage rates of (a) μ(t_f) and (b) a new model, each with its tolerance at
    ``false_alarm`` and whether it lies within."""
    n = len(fits)
    out = {}
    for key in ("mu", "new"):
        count = sum(f[f"{key}_covered"] for f in fits)
        lo, hi = tolerance(n, false_alarm)
        out[key] = {"covered": int(count), "n": n, "rate": count / n, "tolerance": [lo, hi],
                    "within": bool(lo <= count / n <= hi), "binomtest_p": float(
                        stats.binomtest(int(count), n, PROB).pvalue),
                    "mean_width": float(np.mean([f[f"{key}_width"] for f in fits]))}
    c, m = [f["fresh_covered"] for f in fits], [f["fresh_n"] for f in fits]
    rate = sum(c) / sum(m)
    lo, hi = sbc.clustered_tolerance(c, m, false_alarm)
    out["new_fresh"] = {"covered": int(sum(c)), "n": int(sum(m)), "rate": rate,
                        "tolerance_clustered": [lo, hi], "within_clustered": bool(lo <= rate <= hi)}
    if all("fresh_by_frontier_covered" in f for f in fits):
        c = [f["fresh_by_frontier_covered"] for f in fits]
        rate = sum(c) / sum(m)
        lo, hi = sbc.clustered_tolerance(c, m, false_alarm)
        out["new_fresh_by_frontier_band"] = {
            "covered": int(sum(c)), "n": int(sum(m)), "rate": rate,
            "tolerance_clustered": [lo, hi], "within_clustered": bool(lo <= rate <= hi)}
    out["mu"]["mean_error"] = float(np.mean([f["mu_error"] for f in fits]))
    out["false_alarm"] = false_alarm
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--benchmarks", type=int, default=3)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--ahead", type=float, default=12.0, help="months after the last target")
    ap.add_argument("--fresh", type=int, default=200, help="extra fresh models per dataset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--curves", default="joint,cut", help="the estimands to study, in order")
    ap.add_argument("--out", type=Path,
                    default=Path("benchmarks/results/forecast-coverage-2026-12-04.json"))
    args = ap.parse_args(argv)
    record = {"command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "studies": {}}
    for curves in args.curves.split(","):
        cfg = load_config("default")
        cfg.set("model.data_term", "off")       # the simulated references are trained at D0
        cfg.set("model.curves", curves)
        for key in ("chains", "draws", "tune"):
            cfg.set(f"sampler.{key}", getattr(args, key))
        start = time.perf_counter()

        def say(i, n, fit):
            print(f"[{curves} {i}/{n}] {fit['seconds']:.1f} s, {fit['divergences']} div, "
                  f"mu {'in' if fit['mu_covered'] else 'OUT'}, new "
                  f"{'in' if fit['new_covered'] else 'OUT'}", file=sys.stderr, flush=True)

        result = study(args.datasets, cfg, n_targets=args.targets, n_benchmarks=args.benchmarks,
                       ahead=args.ahead, fresh=args.fresh, seed=args.seed, progress=say)
        result["wall_s"] = time.perf_counter() - start
        record["studies"][curves] = result
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))     # after each estimand
        s = result["summary"]
        print(f"{curves}: {args.datasets} datasets, wall {result['wall_s']:.0f} s "
              f"(compile {result['compile_s']:.0f} s)")
        for key, label in (("mu", "frontier μ(t_f)"), ("new", "new model (one per dataset)")):
            lo, hi = s[key]["tolerance"]
            print(f"  {label:28s} covered {s[key]['covered']}/{s[key]['n']} = {s[key]['rate']:.3f}"
                  f"  tolerance [{lo:.3f}, {hi:.3f}] {'ok' if s[key]['within'] else 'OUTSIDE'}"
                  f"  binomtest p {s[key]['binomtest_p']:.2f}")
        f = s["new_fresh"]
        lo, hi = f["tolerance_clustered"]
        print(f"  {'new model (fresh draws)':28s} covered {f['covered']}/{f['n']} = {f['rate']:.3f}"
              f"  clustered tolerance [{lo:.3f}, {hi:.3f}] "
              f"{'ok' if f['within_clustered'] else 'OUTSIDE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
