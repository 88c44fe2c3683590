"""The benchmark-subset sweep against one fit, side by side in fresh processes.

    BAYES_DENSING_JAX_CACHE=off python benchmarks/sweeps.py \
        --benchmarks mmlu,bbh,math_hard,humaneval,gsm8k --cold

Runs, one after the other with the same settings (--set KEY=VALUE for each override):
1. one fit on the same benchmarks (the sweep's largest subset):
   `bayes-densing sample --benchmarks ... --no-figures` (before 2026-11-24 this was the default
   fit on the bundled data's six benchmarks, an easier posterior: 31 against 63 leapfrog steps
   per draw);
2. the sweep: `bayes-densing subsets` (every subset, warm-started from the all-benchmark fit);
3. with --cold, the sweep again with `--no-warm-start` (every subset's warm-up from scratch).
With --compare EARLIER.json, the warm sweep's doubling times are also set against that file's
(e.g. the same sweep with a longer warm-up).
Each is timed as a whole process (imports, compilation, sampling, writing); the one fit runs
again after the sweeps, and the ratios use the mean of its two times. The table gives the
sweep's wall time as a multiple of the one fit's (the issue's target: 31 subsets ≤ 10×), the
seconds per subset, and, for --cold, how far the warm and cold sweeps' doubling times are
apart against their interval widths. Results go to benchmarks/results/sweeps-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path


def timed(args: list[str], overrides: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "bayes_densing.cli.app", *args]
    for o in overrides:
        cmd += ["--set", o]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return wall, proc


def sweep(tmp: Path, name: str, benchmarks: str, min_size: int, overrides: list[str],
          warm: bool, warm_tune: int | None = None) -> dict:
    out = tmp / name
    extra = ["--warm-tune", str(warm_tune)] if warm and warm_tune is not None else []
    wall, _ = timed(["subsets", "--benchmarks", benchmarks, "--min-size", str(min_size), "--curves", "joint",
                     "--out", str(out), "--quiet",
                     "--warm-start" if warm else "--no-warm-start", *extra], overrides)
    record = json.loads((out / "subsets.json").read_text())
    rows = record["rows"]
    return {"process_wall_s": wall, "fits": len(rows), "total_s": record["total_s"],
            "first_fit_s": record["first_fit_s"],
            "later_fit_mean_s": sum(r["wall_s"] for r in rows[1:]) / max(1, len(rows) - 1),
            "divergences": sum(r["divergences"] for r in rows),
            "max_rhat": max(r["max_rhat"] for r in rows),
            "min_ess": min(r["min_ess"] for r in rows),
            "flagged": [r["subset"] for r in rows if r["diagnostics"] != "OK"],
            "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmarks", default="mmlu,bbh,math_hard,humaneval,gsm8k")
    ap.add_argument("--min-size", type=int, default=1)
    ap.add_argument("--cold", action="store_true", help="also run the sweep without warm starts")
    ap.add_argument("--warm-tune", type=int, default=None,
                    help="the warm sweep's --warm-tune (default: the CLI's)")
    ap.add_argument("--compare", type=Path, default=None,
                    help="an earlier result JSON: how far this warm sweep's doubling times are "
                         "from its warm sweep's, against its interval widths")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    record = {"command": "python benchmarks/sweeps.py " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv),
              "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"{platform.python_version()}",
              "jax_cache": os.environ.get("BAYES_DENSING_JAX_CACHE", "on")}
    out = args.out or Path("benchmarks/results") / f"sweeps-{date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():                    # after each stage, so a stopped run keeps what it measured
        out.write_text(json.dumps(record, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def one_fit(name: str) -> float:
            wall, _ = timed(["sample", "--benchmarks", args.benchmarks, "--no-figures",
                             "--quiet", "--allow-warnings", "--curves", "joint", "--out", str(tmp / name)],
                            args.overrides)
            diag = json.loads((tmp / name / "diagnostics.json").read_text())
            record[name] = {"process_wall_s": wall, "sampling_s": diag["sampling_s"],
                            "divergences": diag["divergences"]}
            print(f"{name.replace('_', ' ')}: {wall:.1f} s", flush=True)
            save()
            return wall

        # the one fit runs before and after the sweeps, and the ratios use the mean of the
        # two: a single fit of 20-50 s samples one moment of this machine's speed, which
        # drifts by up to half within a session (on 2026-12-01 the same fit took 21.6, 31.7
        # and 47.5 s in three runs of this script within 90 minutes)
        walls = [one_fit("one_fit")]
        runs = [("warm", True)] + ([("cold", False)] if args.cold else [])
        for name, warm in runs:
            record[name] = sweep(tmp, name, args.benchmarks, args.min_size, args.overrides,
                                 warm, args.warm_tune)
            save()
        walls.append(one_fit("one_fit_after"))
        wall = sum(walls) / 2
        record["one_fit_mean_s"] = wall
        for name, _ in runs:
            r = record[name]
            r["ratio_to_one_fit"] = r["process_wall_s"] / wall
            print(f"{name} sweep: {r['fits']} fits in {r['process_wall_s']:.1f} s = "
                  f"{r['ratio_to_one_fit']:.2f} × one fit ({wall:.1f} s, the mean of "
                  f"{walls[0]:.1f} s before and {walls[1]:.1f} s after); first "
                  f"{r['first_fit_s']:.1f} s, later {r['later_fit_mean_s']:.1f} s each; "
                  f"{r['divergences']} divergences, max R-hat {r['max_rhat']:.3f}, "
                  f"min ESS {r['min_ess']:.0f}, flagged: {r['flagged'] or 'none'}", flush=True)
        save()
    if args.cold:
        gaps = [abs(w["doubling_median"] - c["doubling_median"]) / (c["hdi_high"] - c["hdi_low"])
                for w, c in zip(record["warm"]["rows"], record["cold"]["rows"])]
        record["warm_vs_cold_median_gap_over_hdi_width"] = {"mean": sum(gaps) / len(gaps),
                                                            "max": max(gaps)}
        print(f"warm vs cold: |Δ median T| / HDI width mean {sum(gaps) / len(gaps):.3f}, "
              f"max {max(gaps):.3f}")
    if args.compare:
        before = {r["subset"]: r for r in json.loads(args.compare.read_text())["warm"]["rows"]}
        gaps = {r["subset"]: abs(r["doubling_median"] - before[r["subset"]]["doubling_median"])
                / (before[r["subset"]]["hdi_high"] - before[r["subset"]]["hdi_low"])
                for r in record["warm"]["rows"] if r["subset"] in before}
        record["vs_earlier"] = {"file": str(args.compare), "mean": sum(gaps.values()) / len(gaps),
                                "max": max(gaps.values()), "gaps": gaps}
        print(f"vs {args.compare}: |Δ median T| / HDI width mean "
              f"{record['vs_earlier']['mean']:.3f}, max {record['vs_earlier']['max']:.3f}")
    save()
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
