"""A sensitivity grid against one fit, side by side in fresh processes.

    BAYES_DENSING_JAX_CACHE=off python benchmarks/sensitivity_grid.py \
        --out benchmarks/results/sensitivity-grid-2026-11-24.json

Runs, one after the other with the same settings (--set KEY=VALUE for each override):
1. one fit: `bayes-densing sample --no-figures` (the base of the grid; a sensitivity sweep
   writes its variants' runs without figures too);
2. the grid: `bayes-densing sensitivity --vary ... --no-prior-scaling`, by default the base
   and 11 one-at-a-time variants (12 in all; --vary replaces them).
Each is timed as a whole process (the progress lines, on stderr, give each variant's seconds). The grid's variants differ in data, priors, likelihood or
trend, so each is its own model and fit; only variants that are the same posterior are not
sampled again (a value equal to the base's, or the mean and envelope trends). The record gives
the grid's wall time as a multiple of the one fit's, the fits and sampling runs it made, and
each variant's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
from datetime import date
from pathlib import Path

from sweeps import timed

GRID = ["trend=envelope,mean", "likelihood=robust", "since=2024-01-01", "params=active",
        "priors.slope_sd=0.1,1.0", "reference=Pythia", "d0=0.3,3", "seed=1"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vary", action="append", default=None, help=f"default: {' '.join(GRID)}")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    grid = args.vary or GRID
    record = {"command": "python benchmarks/sensitivity_grid.py "
                         + " ".join(sys.argv[1:] if argv is None else argv),
              "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"{platform.python_version()}",
              "cache": os.environ.get("BAYES_DENSING_JAX_CACHE", "on"),
              "overrides": args.overrides, "vary": grid}
    out = args.out or Path("benchmarks/results") / f"sensitivity-grid-{record['date']}.json"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wall, _ = timed(["sample", "--no-figures", "--quiet", "--allow-warnings",
                         "--curves", "joint", "--out", str(tmp / "one")], args.overrides)
        record["one_fit_s"] = wall
        print(f"one fit: {wall:.1f} s", flush=True)
        vary = [w for v in grid for w in ("--vary", v)]
        wall, proc = timed(["sensitivity", *vary, "--no-prior-scaling", "--set", "model.curves=joint",
                            "--out", str(tmp / "grid")], args.overrides)
        table = json.loads((tmp / "grid" / "sensitivity.json").read_text())["variants"]
    lines = [ln for ln in proc.stderr.splitlines() if re.match(r"\[\d+/\d+\]", ln)]
    seconds = [float(m.group(1)) if (m := re.search(r", (\d+) s\b", ln)) else None
               for ln in lines]
    record.update({
        "grid_s": wall, "ratio": wall / record["one_fit_s"], "variants": len(table),
        "fits": sum(s is not None for s in seconds),
        "sampling_runs": sum(s is not None and "not re-sampled" not in ln
                             for s, ln in zip(seconds, lines)),
        "failed": [r["variant"] for r in table if r["error"]],
        "rows": [{"variant": r["variant"], "median_months": r["median_months"],
                  "diagnostics": r["diagnostics"], "error": r["error"], "fit_s": s,
                  "progress": ln} for r, s, ln in zip(table, seconds, lines)],
    })
    print(f"grid: {wall:.1f} s for {record['variants']} variants ({record['fits']} fits, "
          f"{record['sampling_runs']} sampling runs) = {record['ratio']:.1f}× one fit")
    for ln in lines:
        print("  " + ln)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
