"""How the cost grows with the data: models (50 … 2000) and benchmarks (2 … 12).

    python benchmarks/scaling.py --gradient                     # µs per gradient, both grids
    python benchmarks/scaling.py --fit --chains 2 --draws 250 --tune 250

Synthetic data from ``bayes-densing simulate`` (8 references, default model). ``--gradient``
times one value-and-gradient of the model's log density inside a compiled loop, the unit of
NUTS's work; ``--fit`` runs ``bayes_densing.run.fit`` (compile + sampling) and reports the wall
time and the ESS/s of the doubling time. Each grid's growth exponent is the slope of log cost
on log size.
Results: JSON and a log-log PNG beside ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

MODELS = (50, 200, 1000, 2000)
BENCHMARKS = (2, 4, 8, 12)


def dataset(n_models: int, n_benchmarks: int, cfg):
    import pandas as pd

    from bayes_densing.data import assemble
    from bayes_densing.model.simulate import simulate

    df, _ = simulate(n_models=n_models, n_benchmarks=n_benchmarks, seed=0, config=cfg)
    df["release_date"] = pd.to_datetime(df.release_date)
    df["line"] = np.arange(len(df)) + 2
    return assemble(df, cfg, source=f"simulated {n_models}×{n_benchmarks}", reference="")


def gradient_us(data, cfg, reps: int = 300) -> float:
    """µs per value-and-gradient of the sampler's log density, inside a compiled loop as NUTS
    calls it (``profile_fit.gradient_cost``). Until 2026-11-24 this called PyMC's jaxified
    log density from Python with a dict of 12 arrays, which added the dispatch: 5.0 ms instead
    of ≈ 2 ms at 2,000 × 10."""
    from profile_fit import gradient_cost

    from bayes_densing.inference import bridge
    from bayes_densing.model.build import build_model

    sampler = bridge.sampler(build_model(data, cfg), cfg.sampler)
    return gradient_cost(sampler, sampler.initial_point, reps)["us_per_call"]


def fit_once(data, cfg) -> dict:
    import arviz as az

    from bayes_densing.run import fit

    t0 = time.perf_counter()
    result = fit(cfg, data=data, progressbar=False)
    wall = time.perf_counter() - t0
    ess = float(az.ess(result.idata, var_names=["doubling_months"])["doubling_months"])
    d = result.diagnostics
    return {"wall_s": wall, "sampling_wall_s": d["wall_s"], "ess_doubling": ess,
            "ess_per_s_doubling": ess / wall, "divergences": d["divergences"],
            "max_rhat": d["max_rhat"], "mean_leapfrog_steps": d.get("mean_leapfrog_steps")}


def exponent(sizes, costs) -> float:
    return float(np.polyfit(np.log(sizes), np.log(costs), 1)[0])


def figure(record: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    panels = [(key, label) for key, label in (("gradient_us", "µs per gradient"),
                                              ("wall_s", "fit wall time (s)"),
                                              ("ess_per_s_doubling", "ESS/s of the doubling time"))
              if any(key in r for r in record["rows"])]
    fig = Figure(figsize=(5.2 * len(panels), 4), layout="constrained")
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for grid, axis, marker in (("models", "n_models", "o"), ("benchmarks", "n_benchmarks", "s")):
            rows = [r for r in record["rows"] if r["grid"] == grid and key in r]
            if not rows:
                continue
            x = [r[axis] for r in rows]
            y = [r[key] for r in rows]
            fixed = (f"{rows[0]['n_benchmarks']} benchmarks" if grid == "models"
                     else f"{rows[0]['n_models']} models")
            k = record["exponents"].get(f"{grid}_{key}")      # none from a single size
            slope = "" if k is None else f": slope {k:.2f}"
            ax.loglog(x, y, marker=marker, label=f"vs {grid} ({fixed}){slope}")
        ax.set_xlabel("number of target models, or of benchmarks")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Scaling ({record['machine']}, {record['date']})", fontsize=10)
    fig.savefig(path, dpi=130)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gradient", action="store_true")
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--models", type=int, nargs="*", default=list(MODELS), help="none: skip this grid")
    ap.add_argument("--benchmarks", type=int, nargs="*", default=list(BENCHMARKS),
                    help="none: skip this grid")
    ap.add_argument("--fixed-benchmarks", type=int, default=8, help="benchmarks on the models grid")
    ap.add_argument("--fixed-models", type=int, default=200, help="models on the benchmarks grid")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. sampler.mass_matrix=diag")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.json"))
    args = ap.parse_args(argv)

    from bayes_densing.config import Config
    from bayes_densing.inference.sample import select_device

    select_device("cpu", args.chains)
    cfg = Config()
    cfg.set("model.data_term", "off").set("model.curves", "joint").set_items(args.set)
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = args.chains, args.draws, args.tune
    grid = [("models", m, args.fixed_benchmarks) for m in args.models]
    grid += [("benchmarks", args.fixed_models, b) for b in args.benchmarks]
    rows = []
    for name, n_models, n_bench in grid:
        data = dataset(n_models, n_bench, cfg)
        row = {"grid": name, "n_models": n_models, "n_benchmarks": n_bench, "n_obs": len(data.obs)}
        if args.gradient:
            row["gradient_us"] = gradient_us(data, cfg)
            if args.fit:        # now, so that a fit stopped before its end leaves this much
                print(json.dumps(row), flush=True)
        if args.fit:
            row.update(fit_once(data, cfg))
        rows.append(row)
        print(json.dumps(row), flush=True)
    exponents = {}
    for name, axis in (("models", "n_models"), ("benchmarks", "n_benchmarks")):
        for key in ("gradient_us", "wall_s", "ess_per_s_doubling"):
            sel = [r for r in rows if r["grid"] == name and key in r]
            if len(sel) >= 2:
                exponents[f"{name}_{key}"] = exponent([r[axis] for r in sel], [r[key] for r in sel])
    record = {"command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "sampler": {"chains": args.chains, "draws": args.draws, "tune": args.tune,
                          "overrides": args.set},
              "rows": rows, "exponents": exponents}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    figure(record, args.out.with_suffix(".png"))
    print("growth exponents:", exponents)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
