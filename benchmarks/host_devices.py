"""How many XLA host devices should JAX make on the CPU? The default fit side by side.

    BAYES_DENSING_JAX_CACHE=off python benchmarks/host_devices.py --devices 100,8,4 --repeats 2

Runs `bayes-densing sample --no-figures` on the bundled data with `--set sampler.cpu_devices=N`
for each N, interleaved (N1, N2, …, then again) in fresh processes, and records each run's
wall time (the whole command: imports, compilation, sampling, writing), the sampler's own wall
time and its diagnostics. 100 is what PyMC asks for when it is imported (our default before
2026-11-24); 0 or the number of chains is one device per chain, the default now. With one
chain per device the draws are the same whatever N is, so only the time moves. Results go to
benchmarks/results/host-devices-<date>.json; ratios are against the first N.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

from sweeps import timed    # benchmarks/sweeps.py: a `bayes-densing` command in a fresh process


def fit(devices: int, tmp: Path, overrides: list[str]) -> dict:
    out = tmp / f"fit-{devices}"
    wall, _ = timed(["sample", "--no-figures", "--quiet", "--allow-warnings", "--out", str(out),
                     "--force", "--curves", "joint"],
                    [f"sampler.cpu_devices={devices}", *overrides])
    diag = json.loads((out / "diagnostics.json").read_text())
    return {"devices": devices, "process_wall_s": wall,
            "sampler_wall_s": diag["wall_s"], "sampling_s": diag["sampling_s"],
            "mean_leapfrog_steps": diag["mean_leapfrog_steps"],
            "divergences": diag["divergences"], "max_rhat": diag["max_rhat"],
            "min_ess_bulk": diag["min_ess_bulk"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="100,8,4", help="comma-separated host device counts")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.devices.split(",")]
    out = args.out or Path("benchmarks/results") / f"host-devices-{date.today().isoformat()}.json"
    record = {"command": "python benchmarks/host_devices.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"{platform.python_version()}",
              "jax_cache": os.environ.get("BAYES_DENSING_JAX_CACHE", "on"), "runs": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for n in counts:
                row = {"repeat": r, **fit(n, Path(tmp), args.overrides)}
                record["runs"].append(row)
                print(f"repeat {r}, {n:4d} host devices: {row['process_wall_s']:6.1f} s "
                      f"(divergences {row['divergences']}, max R-hat {row['max_rhat']:.3f})",
                      flush=True)
                out.write_text(json.dumps(record, indent=2))
    base = [x["process_wall_s"] for x in record["runs"] if x["devices"] == counts[0]]
    summary = {}
    for n in counts:
        walls = [x["process_wall_s"] for x in record["runs"] if x["devices"] == n]
        summary[str(n)] = {"mean_wall_s": sum(walls) / len(walls),
                           "ratio_to_first": sum(base) / sum(walls)}
        print(f"{n:4d} host devices: {summary[str(n)]['mean_wall_s']:6.1f} s mean, "
              f"{summary[str(n)]['ratio_to_first']:.2f}× faster than {counts[0]}")
    record["summary"] = summary
    out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
