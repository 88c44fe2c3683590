"""Coverage of the doubling-time slope and of the effective sizes over seeded synthetic datasets.

    python benchmarks/interval_coverage.py --seeds 20 --models 60 --benchmarks 5 --out benchmarks/results/coverage.json

Each seed simulates a dataset from the generative model (doubling time 3.3 months) and fits it
with the default model (4 chains × 1000 draws after 1000 tuning unless told otherwise). Reports
how often the 90% central interval of A covers the truth, and the pooled coverage of the
targets' effective sizes; both should be near 90%.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bayes_densing.analyses.calibration import recover
from bayes_densing.config import Config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--benchmarks", type=int, default=5)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. sampler.mass_matrix=conditional")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/coverage.json"))
    args = ap.parse_args()
    cfg = Config().set_items(args.set)
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = args.chains, args.draws, args.tune
    rows = []
    start = time.time()
    for seed in tqdm(range(args.first_seed, args.first_seed + args.seeds), desc="seeds"):
        rows.append(recover(seed, n_models=args.models, n_benchmarks=args.benchmarks, config=cfg))
        tqdm.write(f"seed {seed}: A covered {rows[-1]['A_covered']}, eta coverage "
                   f"{rows[-1]['eta_coverage']:.2f}, divergences {rows[-1]['divergences']}, "
                   f"max R-hat {rows[-1]['max_rhat']:.3f}")
    a_cov = float(np.mean([r["A_covered"] for r in rows]))
    eta_cov = sum(r["eta_covered"] for r in rows) / sum(r["n_targets"] for r in rows)
    summary = {
        "command": "python " + " ".join(sys.argv),
        "date": date.today().isoformat(), "machine": f"{platform.machine()}, "
        f"{__import__('os').cpu_count()} cores", "wall_s": time.time() - start,
        "slope_coverage": a_cov, "eta_coverage": eta_cov,
        "total_divergences": int(sum(r["divergences"] for r in rows)),
        "max_rhat": max(r["max_rhat"] for r in rows), "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"slope 90% interval coverage: {a_cov:.2f} over {len(rows)} datasets; "
          f"effective-size coverage {eta_cov:.3f} over {sum(r['n_targets'] for r in rows)} targets; "
          f"divergences {summary['total_divergences']}; max R-hat {summary['max_rhat']:.3f}")


if __name__ == "__main__":
    main()
