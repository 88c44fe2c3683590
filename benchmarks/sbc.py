"""Simulation-based calibration of the default model (bayes_densing/sbc.py), with the record
this folder keeps (command, date, machine); `bayes-densing sbc` is the same study as a command.

    python benchmarks/sbc.py --datasets 100 --out benchmarks/results/sbc-100.json

Draws every dataset's parameters from the prior, its scores from them, fits it (one compiled
log density for all datasets), ranks the truths among the thinned posterior draws, tests the
ranks for uniformity (chi-square) and saves the rank histograms as PNG beside the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

from bayes_densing.analyses import sbc
from bayes_densing.figures.sbc import rank_figure
from bayes_densing.config import load_config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--benchmarks", type=int, default=3)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--ranks", type=int, default=100, help="rank values 0..RANKS-1 (RANKS-1 thinned draws)")
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="default", help="preset or TOML file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. sampler.mass_matrix=conditional")
    ap.add_argument("--offsets", metavar="MEAN,SD",
                    help="targets off the reference curves: benchmark-specific offsets in ln size "
                         "~ N(MEAN, SD) (sbc.off_curve); truths the reference-relative sizes")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sbc.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from the JSON at --out")
    args = ap.parse_args(argv)
    if args.plot_only:
        result = sbc.SBCResult.from_dict(json.loads(args.out.read_text()))
        rank_figure(result).savefig(args.out.with_suffix(".png"), dpi=130)
        print(f"wrote {args.out.with_suffix('.png')}")
        return 0

    cfg = load_config(args.model)
    cfg.set("model.data_term", "off")   # the simulated references are trained at D0
    for key in ("chains", "draws", "tune"):
        cfg.set(f"sampler.{key}", getattr(args, key))
    cfg.set_items(args.set)
    start = time.perf_counter()

    result = sbc.run(args.datasets, n_targets=args.targets, n_benchmarks=args.benchmarks,
                     config=cfg, seed=args.seed, n_ranks=args.ranks, bins=args.bins,
                     progress=lambda line: print(line, file=sys.stderr, flush=True),
                     offsets=(tuple(float(x) for x in args.offsets.split(","))
                              if args.offsets else None))
    record = result.to_dict()
    record.update({"command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
                   "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
                   "wall_s": time.perf_counter() - start,
                   "coverage": sbc.coverage_summary(result.fits)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    figure = args.out.with_suffix(".png")
    rank_figure(result).savefig(figure, dpi=130)
    print(f"{args.datasets} datasets, wall {record['wall_s']:.0f} s (compile {result.compile_s:.0f} s)")
    print(sbc.summary_text(result))
    print(f"wrote {args.out} and {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
