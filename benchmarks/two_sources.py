"""Recovery with two sources, the second without reference scores (the sequential cut).

    python benchmarks/two_sources.py --seeds 100 --out benchmarks/results/two-sources-2026-12-04.json

Each seed simulates ``simulate.two_sources``: 30 targets, source h1 (three benchmarks, scored by
the reference family) and source h2 (one benchmark without reference scores) shared by 8 targets
spread in size; 6 more targets are scored by h2 alone. Each is fitted with the default model
(the cut; h2's task anchored by the shared models) and the 90% HDIs are checked against the
truth: ln N̂ of the models seen only in h2 (pooled; clustered by dataset) and the slope A,
each against a two-sided binomial tolerance at a 1% false-alarm rate (``sbc.coverage_summary``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np

from bayes_densing import results
from bayes_densing.inference import sequential
from bayes_densing.model import simulate
from bayes_densing.config import Config
from bayes_densing.run import fit
from bayes_densing.analyses.sbc import coverage_summary


def one(seed: int, config: Config) -> dict:
    """One dataset's fit and what its intervals cover."""
    df, truth = simulate.two_sources(seed, config=config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.csv"
        df.to_csv(path, index=False)
        res = fit(config, path, progressbar=False)
    post = res.idata.posterior
    eta_draws = post[sequential.PREFIX + "log_effective_size"]
    covered, widths, errors = 0, [], []
    for m in truth["only"]:
        x = eta_draws.sel(unanchored_model=m).values.ravel()
        lo, hi = results.hdi(x)
        true = truth["targets"][m]["log_effective_size"]
        covered += int(lo <= true <= hi)
        widths.append(hi - lo)
        errors.append(float(np.median(x)) - true)
    A = results.slope_draws(res.idata, res.config)
    a_lo, a_hi = results.hdi(A)
    d = res.diagnostics
    return {"seed": seed, "eta_covered": covered, "eta_n": len(truth["only"]),
            "eta_width": float(np.mean(widths)), "eta_bias": float(np.mean(errors)),
            "A_covered": bool(a_lo <= truth["A"] <= a_hi), "A_width": a_hi - a_lo,
            "divergences": int(d["divergences"]) + int(d["unanchored"]["divergences"]),
            "max_rhat": max(float(d["max_rhat"]), d["unanchored"]["max_rhat"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--out", type=Path,
                    default=Path(f"benchmarks/results/two-sources-{date.today()}.json"))
    args = ap.parse_args()
    config = Config()
    s = config.sampler
    s.chains, s.draws, s.tune = args.chains, args.draws, args.tune
    start, rows = time.time(), []
    if args.out.exists():       # resume: keep the seeds already fitted
        rows = [r for r in json.loads(args.out.read_text())["runs"]
                if args.first_seed <= r["seed"] < args.first_seed + args.seeds]
    done = {r["seed"] for r in rows}
    # one process per seed: a long run of fits in one process ran out of memory for JIT code
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=1)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if seed in done:
            continue
        rows.append(pool.submit(one, seed, config).result())
        r = rows[-1]
        print(f"seed {seed}: η covered {r['eta_covered']}/{r['eta_n']}, A covered "
              f"{r['A_covered']}, divergences {r['divergences']}, max R-hat {r['max_rhat']:.3f}",
              flush=True)
        summary = {"command": "python " + " ".join(sys.argv), "date": str(date.today()),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "wall_s": time.time() - start, "seeds": len(rows),
                   **(coverage_summary(rows) if len(rows) > 1 else {}), "runs": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
