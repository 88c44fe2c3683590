"""Wall time and ESS/s of the default fit on the bundled dataset, variants side by side.

    python benchmarks/speed.py --variant default --variant "vectorized:sampler.chain_method=vectorized"

Each variant runs `bayes-densing sample` (4 chains × 1000 draws after 1000 tuning unless
overridden with --set) in a fresh process, so compilation is included in the wall time, one
after the other in the same invocation; the table reports ratios to the first variant (the
first that ran) because these machines are noisy. Results go to benchmarks/results/speed-<date>.json and are appended
by hand to benchmarks/README.md. The variant named ``floor`` runs benchmarks/floor.py (the same
model written directly in NumPyro) instead. Set BAYES_DENSING_JAX_CACHE=off to time cold
compilation; a variant that fails is reported and the others still run.
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

import arviz as az
import numpy as np


def timed(cmd: list[str], overrides: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd`` with ``--set`` for each override in a fresh process; the process and its wall s."""
    for o in overrides:
        cmd = cmd + ["--set", o]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc, time.perf_counter() - start


def run_floor(name: str, overrides: list[str], extra: list[str]) -> dict:
    """The hand-written NumPyro model (benchmarks/floor.py), also in a fresh process, on the
    same ``--data`` as the other variants."""
    data = [] if "--data" not in extra else ["--data", extra[extra.index("--data") + 1]]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "floor.json"
        proc, wall = timed([sys.executable, str(Path(__file__).with_name("floor.py")), "--sample",
                            "--out", str(out), *data], overrides)
        if proc.returncode != 0:
            return {"variant": name, "error": proc.stderr[-2000:]}
        s = json.loads(out.read_text())["sample"]
    return {"variant": name, "overrides": overrides, "process_wall_s": wall,
            "fit_wall_s": s["wall_s"], "sampling_s": s["wall_s"], "ess_doubling": s["ess_doubling"],
            "ess_A": None, "min_ess_bulk": s["min_ess_bulk"], "min_ess_var": "",
            "divergences": s["divergences"], "max_rhat": s["max_rhat"],
            "leapfrog_steps": s["mean_leapfrog_steps"], "ess_per_s_doubling": s["ess_doubling"] / wall,
            "min_ess_per_s": s["min_ess_bulk"] / wall}


def run_variant(name: str, overrides: list[str], extra: list[str]) -> dict:
    if name == "floor":
        return run_floor(name, overrides, extra)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        proc, wall = timed([sys.executable, "-m", "bayes_densing.cli.app", "sample", "--out", str(out),
                            "--quiet", "--allow-warnings", "--curves", "joint", *extra], overrides)
        if proc.returncode != 0:
            return {"variant": name, "overrides": overrides, "error": proc.stderr[-2000:]}
        diag = json.loads((out / "diagnostics.json").read_text())
        idata = az.from_netcdf(str(out / "posterior.nc"))
        ess = az.ess(idata, var_names=["A", "doubling_months"])
        ess_A, ess_T = float(ess["A"]), float(ess["doubling_months"])
    return {"variant": name, "overrides": overrides, "process_wall_s": wall,
            "fit_wall_s": diag["wall_s"], "sampling_s": diag["sampling_s"],
            "ess_doubling": ess_T, "ess_A": ess_A, "min_ess_bulk": diag["min_ess_bulk"],
            "min_ess_var": diag["min_ess_bulk_var"], "divergences": diag["divergences"],
            "max_rhat": diag["max_rhat"], "leapfrog_steps": diag.get("mean_leapfrog_steps"),
            "ess_per_s_doubling": ess_T / wall, "min_ess_per_s": diag["min_ess_bulk"] / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME or NAME:key=value,key=value (config overrides)")
    ap.add_argument("--out", type=Path, default=None)
    args, extra = ap.parse_known_args()
    variants = args.variant or ["default"]
    rows = []
    for v in variants:
        name, _, spec = v.partition(":")
        overrides = [s for s in spec.split(",") if s]
        rows.append(run_variant(name, overrides, extra))
        r = rows[-1]
        if "error" in r:
            print(f"{name:>14}: FAILED\n{r['error']}", flush=True)
            continue
        print(f"{name:>14}: wall {r['process_wall_s']:6.1f} s, ESS(T) {r['ess_doubling']:6.0f}, "
              f"min ESS {r['min_ess_bulk']:5.0f} ({r['min_ess_var']}), div {r['divergences']}, "
              f"R-hat {r['max_rhat']:.3f}, steps {r['leapfrog_steps']:.0f}", flush=True)
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    if not rows:
        raise SystemExit("every variant failed; nothing to compare")
    base = rows[0]      # the first variant that ran: the ratios are to it
    for r in rows:
        r["wall_ratio"] = r["process_wall_s"] / base["process_wall_s"]
        r["ess_per_s_ratio"] = r["ess_per_s_doubling"] / base["ess_per_s_doubling"]
    record = {"command": "python benchmarks/speed.py " + " ".join(f"--variant '{v}'" for v in variants)
              + (" " + " ".join(extra) if extra else ""),
              "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "rows": rows, "failed": failed}
    out = args.out or Path("benchmarks/results") / f"speed-{date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"\n| variant | wall s | ×base | ESS(T)/s | ×base | min ESS | div | max R-hat |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['process_wall_s']:.1f} | {r['wall_ratio']:.2f} | "
              f"{r['ess_per_s_doubling']:.1f} | {r['ess_per_s_ratio']:.2f} | {r['min_ess_bulk']:.0f} | "
              f"{r['divergences']} | {r['max_rhat']:.3f} |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
