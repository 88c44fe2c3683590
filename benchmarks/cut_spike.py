"""The cut's cost spike on the bundled data (issue #29): for curve draws per chain M and inner
transitions L, the conditional runs' wall time, leapfrog steps, pooled ESS of the doubling
time T, of three targets' ln N̂ and of the trend's scales, and T's quantiles; beside the
joint fit's sampling time, in the same process.

One curve fit and one warm-up serve every (M, L) (``cut.CutSampler``); each L compiles its
own program once (not timed: the first call of each L runs once untimed).

    python benchmarks/cut_spike.py --grid 250x3 250x5 250x10 250x20 500x10 --seed 0
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import arviz as az
import numpy as np

from bayes_densing.inference import cut
from bayes_densing import data as data_mod, load_config
from bayes_densing.inference.sample import conditional_bfmi, diagnose, sample
from bayes_densing.model.build import build_model
from bayes_densing.run import resolved_config


def summary(idata, targets: list[str]) -> dict:
    post = idata["posterior"].to_dataset()
    T = post["doubling_months"]
    out = {"T_q05_q50_q95": [float(q) for q in np.quantile(T.values, [0.05, 0.5, 0.95])],
           "ess_T": float(az.ess(T)), "rhat_T": float(az.rhat(T))}
    for name in targets:
        x = post["log_effective_size"].sel(target=name)
        out[f"ess_eta[{name}]"] = float(az.ess(x))
        out[f"eta_q50[{name}]"] = float(x.median())
    free = [v for v in ("z_centre", "z_gain", "alpha_mu", "alpha_tau", "alpha_x",
                        "phi_reference", "phi_target", "A", "B_centre", "sigma_v", "sigma_u",
                        "log_density_shifted") if v in post]
    d = diagnose(idata, free)
    out.update({"max_rhat": d["max_rhat"], "max_rhat_var": d["max_rhat_var"],
                "min_ess_bulk": d["min_ess_bulk"], "min_ess_bulk_var": d["min_ess_bulk_var"],
                "min_ess_tail": d["min_ess_tail"]})
    for name in ("sigma_v", "sigma_u"):
        if name in post:
            out[f"ess_{name}"] = float(az.ess(post[name]))
            out[f"{name}_q50"] = float(post[name].median())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", nargs="+", default=["250x5", "250x10", "250x20"],
                    help="MxL: curve draws per chain × inner transitions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", type=int, default=None, help="the curve fit's draws per chain")
    ap.add_argument("--inner-tune", type=int, default=None,
                    help="the targets' warm-up (default: sampler.tune)")
    ap.add_argument("--no-joint", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cfg = load_config("default")
    cfg.sampler.seed = args.seed
    data = data_mod.load(cfg, None)
    cfg = resolved_config(cfg, data)
    targets = data.targets.sort_values("params").model.tolist()
    three = [targets[0], targets[len(targets) // 2], targets[-1]]

    rows = []
    if not args.no_joint:
        t0 = time.perf_counter()
        joint = sample(build_model(data, cfg), cfg.sampler, progressbar=False)
        rows.append({"fit": "joint", "wall_s": time.perf_counter() - t0,
                     "sampling_s": joint.sampling_s,
                     "leapfrog_per_draw": float(joint.idata.sample_stats["n_steps"].mean()),
                     **summary(joint.idata, three)})
    cfg.model.curves = "cut"
    if args.draws:
        cfg.sampler.draws = args.draws
    sampler = cut.CutSampler(data, cfg)
    curve = sampler.curves(args.seed)
    warm = sampler.warm_up(curve, args.seed, tune=args.inner_tune)
    names = [v.name for v in sampler.theta]
    base = {"curve_draws_per_chain": cfg.sampler.draws, "curve_s": curve.seconds,
            "curve_min_ess": cut.curve_ess(curve, names), "warm_up_s": warm.seconds,
            "inner_tune": args.inner_tune or cfg.sampler.tune}
    compiled = set()
    for spec in args.grid:
        m, inner = (int(x) for x in spec.split("x"))   # M = 0: by the curve fit's ESS
        keep = cut.kept_draws(cfg.sampler.draws, cfg.sampler.chains, m)
        m = len(keep)
        if inner not in compiled:          # compile outside the timing
            sampler.conditional(curve, warm, keep[:2], inner, args.seed)
            compiled.add(inner)
        t = time.perf_counter()
        idata = sampler.conditional(curve, warm, keep, inner, args.seed)
        stats = idata["sample_stats"]
        rows.append({"fit": f"cut M={m} L={inner}", "M": m, "L": inner,
                     "conditional_s": time.perf_counter() - t, **base,
                     "divergences": int(stats["diverging"].sum()),
                     "leapfrog_per_transition": float(stats["n_steps"].mean()) / inner,
                     "min_bfmi": float(conditional_bfmi(stats["inner_energy"].values).min()),
                     **summary(idata, three)})
        print(json.dumps(rows[-1]), flush=True)
    if rows and rows[0]["fit"] == "joint":
        print(json.dumps(rows[0]), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"machine": f"{platform.node()}, 2 cores",
                                        "date": time.strftime("%Y-%m-%d"), "seed": args.seed,
                                        "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
