"""Release groups (``model.release_groups``, issue #30 item 4): the slope's interval with and
without the term.

    python benchmarks/release_groups.py simulated --fit off --datasets 100 --out benchmarks/results/release-groups-2026-12-04.json
    python benchmarks/release_groups.py simulated --fit on --datasets 100 --out benchmarks/results/release-groups-2026-12-04.json
    python benchmarks/release_groups.py real --dataset open-base-llms --out benchmarks/results/release-groups-2026-12-04.json

``simulated``: one design of ``--groups`` releases of ``--size`` targets each (one family, one
day), datasets drawn from the prior of the model *with* the term (true group effects, σ_group ~
its prior), each fitted with the term off and on (the same cut or joint sampler as the SBC,
``bayes_densing/sbc.py``, one compiled program per setting; ``--fit`` picks one, so the two can
run as two processes on the same datasets, which depend on ``--seed`` alone); records the 90%
interval coverage of the slope A against the two-sided binomial tolerance
(``sbc.coverage_summary``).

``real``: ``bayes-densing sample`` on a bundled dataset with and without ``--set
model.release_groups=on``; records the doubling time's 90% HDI, σ_group, the largest group
shifts, divergences and R-hat. Each part updates its own key of the JSON at ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_densing.analyses import sbc
from bayes_densing.analyses.calibration import central_interval
from bayes_densing.config import Config, load_config
from bayes_densing.data import ScoreData, assemble
from bayes_densing.sampling.families import variant_seed
from bayes_densing.model.simulate import simulate


def grouped_design(n_groups: int, size: int, n_benchmarks: int, seed: int,
                   config: Config) -> ScoreData:
    """The simulator's references and targets, the targets (by date) put in ``n_groups``
    releases of ``size``: one family and the first member's release day each."""
    df, _ = simulate(n_models=n_groups * size, n_benchmarks=n_benchmarks, seed=seed,
                     config=config)
    targets = (df[df.role == "target"].drop_duplicates("model")
               .sort_values(["release_date", "model"]).reset_index(drop=True))
    group = np.arange(len(targets)) // size
    first_day = targets.groupby(group).release_date.transform("first")
    family = dict(zip(targets.model, [f"SimRelease{g}" for g in group]))
    day = dict(zip(targets.model, first_day))
    is_target = df.role == "target"
    df.loc[is_target, "family"] = df.model[is_target].map(family)
    df.loc[is_target, "release_date"] = df.model[is_target].map(day)
    df["release_date"] = pd.to_datetime(df.release_date)
    df["line"] = np.arange(len(df)) + 2
    return assemble(df, config, source=f"release-group design (seed {seed})", reference="")


def simulated(args) -> dict:
    base = load_config("default")
    base.set("model.data_term", "off")     # the simulated references are trained at D0
    for key in ("chains", "draws", "tune"):
        base.set(f"sampler.{key}", getattr(args, key))
    base.set_items(args.set)
    on = copy.deepcopy(base)
    on.set("model.release_groups", "on")
    off = copy.deepcopy(base)
    off.set("model.release_groups", "off")
    data = grouped_design(args.groups, args.size, args.benchmarks, args.seed, on)
    truth, counts = sbc.prior_draws(data, on, args.datasets, args.seed)
    record = {"settings": {"datasets": args.datasets, "groups": args.groups, "size": args.size,
                           "n_targets": data.n_target, "benchmarks": data.benchmarks,
                           "chains": args.chains, "draws": args.draws, "tune": args.tune,
                           "seed": args.seed, "model": base.to_dict()["model"],
                           "group_sd": base.priors.group_sd},
              "truth_sigma_group": truth.posterior["sigma_group"].values.ravel().tolist()}
    for label, cfg in (("off", off), ("on", on)):
        if label not in args.fit:
            continue
        start = time.perf_counter()
        fit_one = sbc.fitter(data, cfg)
        fit_one(args.seed, counts[0])                 # compiles; not a dataset of the study
        compile_s = time.perf_counter() - start
        fits = []
        for i in range(args.datasets):
            t0 = time.perf_counter()
            idata = fit_one(variant_seed(args.seed, f"dataset {i}"), counts[i])
            post, true = idata.posterior, truth.posterior.isel(draw=[i])
            fit = {"dataset": i, "seconds": time.perf_counter() - t0,
                   "divergences": int(idata.sample_stats["diverging"].sum()),
                   "max_rhat": _max_rhat(post, [v for v in ("A", "sigma_group", "sigma_u",
                                                            "sigma_v") if v in post]),
                   "true_sigma_group": float(true["sigma_group"].values.ravel()[0]),
                   **sbc.interval_coverage(post, true)}
            if "sigma_group" in post:
                lo, hi = central_interval(np.asarray(post["sigma_group"]).ravel(), sbc.COVERAGE)
                fit["sigma_group_covered"] = bool(lo <= fit["true_sigma_group"] <= hi)
            fits.append(fit)
            print(f"[{label} {i + 1}/{args.datasets}] {fit['seconds']:.1f} s, "
                  f"{fit['divergences']} div, A covered {fit['A_covered']}, "
                  f"width {fit['A_width']:.3f}", file=sys.stderr, flush=True)
        cover = sbc.coverage_summary(fits)
        summary = {"coverage": cover, "compile_s": compile_s,
                   "fits_with_divergences": sum(f["divergences"] > 0 for f in fits),
                   "divergences": sum(f["divergences"] for f in fits),
                   "max_rhat": max(f["max_rhat"] for f in fits),
                   "A_coverage_by_true_sigma_group": _by_half(fits)}
        if label == "on":
            summary["sigma_group_covered"] = sum(f["sigma_group_covered"] for f in fits)
        record[label] = {"summary": summary, "fits": fits}
        print(f"{label}: slope A covered {cover['A']['covered']}/{cover['A']['n']} "
              f"(tolerance {cover['A']['tolerance'][0]:.2f}–{cover['A']['tolerance'][1]:.2f}, "
              f"within: {cover['A']['within']}), mean width {cover['A']['mean_width']:.3f}; "
              f"ln N̂ {cover['eta']['rate']:.3f}; fits with divergences "
              f"{summary['fits_with_divergences']}", flush=True)
    return record


def _by_half(fits) -> dict:
    """The slope's coverage in the datasets whose true σ_group is below and above its median."""
    s = np.array([f["true_sigma_group"] for f in fits])
    covered = np.array([f["A_covered"] for f in fits])
    median = float(np.median(s))
    return {"median_true_sigma_group": median,
            "below": [int(covered[s <= median].sum()), int((s <= median).sum())],
            "above": [int(covered[s > median].sum()), int((s > median).sum())]}


def _max_rhat(post, names) -> float:
    import arviz as az

    return float(az.rhat(post.to_dataset()[names]).to_array().max())


def real(args) -> dict:
    out = {}
    for label, extra in (("off", []), ("on", ["--set", "model.release_groups=on"])):
        run_dir = args.runs / f"{args.dataset}-{label}"
        cmd = [str(Path(sys.executable).with_name("bayes-densing")), "sample",
               "--dataset", args.dataset, "--out", str(run_dir), "--no-figures", "--quiet",
               "--allow-warnings", "--force", *extra, *sum((["--set", s] for s in args.set), [])]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
        out[label] = summarise_run(run_dir, time.perf_counter() - t0)
        out[label]["command"] = " ".join(["bayes-densing", *cmd[1:]])
        print(f"{args.dataset} {label}: {json.dumps(out[label]['doubling_months'])}, "
              f"divergences {out[label]['divergences']}, max R-hat {out[label]['max_rhat']:.3f}",
              flush=True)
    lo_off, hi_off = out["off"]["doubling_months"]["hdi"]
    lo_on, hi_on = out["on"]["doubling_months"]["hdi"]
    out["hdi_width_ratio"] = (hi_on - lo_on) / (hi_off - lo_off)
    return out


def summarise_run(run_dir: Path, seconds: float) -> dict:
    """The doubling time's and slope's median and 90% HDI, diagnostics, and (with the term)
    σ_group and the groups' shifts u_g, of one run directory."""
    from bayes_densing.results import Run

    run = Run.load(run_dir)
    trend = run.trend.set_index("parameter")
    diag = run.diagnostics
    row = {name: {"median": float(trend.loc[name, "median"]),
                  "hdi": [float(trend.loc[name, "hdi_low"]), float(trend.loc[name, "hdi_high"])]}
           for name in ("doubling_months", "A_per_month", "sigma_u", "sigma_v")}
    row.update({"divergences": int(diag["divergences"]), "max_rhat": float(diag["max_rhat"]),
                "max_rhat_var": diag["max_rhat_var"], "min_ess_bulk": float(diag["min_ess_bulk"]),
                "wall_s": float(diag["wall_s"]), "command_s": seconds,
                "problems": diag.get("problems", [])})
    post = run.idata.posterior
    if "sigma_group" in post:
        s = np.asarray(post["sigma_group"]).ravel()
        row["sigma_group"] = {"median": float(np.median(s)),
                              "interval_90": list(map(float, central_interval(s, 0.9)))}
        u = post["release_group_effect"]
        med = u.median(("chain", "draw")).to_series().sort_values()
        lo_hi = {g: central_interval(np.asarray(u.sel(release_group=g)).ravel(), 0.9)
                 for g in med.index}
        row["n_groups"] = int(u.sizes["release_group"])
        row["group_effects_extreme"] = {
            g: {"median": float(med[g]), "interval_90": list(map(float, lo_hi[g]))}
            for g in list(med.index[:4]) + list(med.index[-4:])}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", choices=("simulated", "real"))
    ap.add_argument("--fit", default="off,on", type=lambda v: v.split(","),
                    help="simulated: fit without the term (off), with it (on), or both")
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--groups", type=int, default=6)
    ap.add_argument("--size", type=int, default=5, help="targets per release group")
    ap.add_argument("--benchmarks", type=int, default=3)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="open-base-llms", help="real: the bundled dataset")
    ap.add_argument("--runs", type=Path, default=Path("runs/release-groups"),
                    help="real: where the two run directories go")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every fit")
    ap.add_argument("--out", type=Path,
                    default=Path("benchmarks/results/release-groups.json"))
    args = ap.parse_args(argv)
    start = time.perf_counter()
    result = simulated(args) if args.part == "simulated" else real(args)
    record = json.loads(args.out.read_text()) if args.out.exists() else {}
    key = ("simulated/" + "+".join(args.fit) if args.part == "simulated"
           else f"real/{args.dataset}")
    record[key] = {**result, "command": "python " + " ".join(sys.argv),
                   "date": date.today().isoformat(),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "wall_s": time.perf_counter() - start}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {key} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
