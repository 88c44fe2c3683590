"""Does a change move any number? Runs a fixed set of short fits and sweeps through the command
line into a directory, and compares two such directories variable by variable.

    PYTHONPATH=/path/to/old/checkout python benchmarks/same_draws.py run /tmp/before
    python benchmarks/same_draws.py run /tmp/after
    python benchmarks/same_draws.py compare /tmp/before /tmp/after

``run`` covers the default (cut) fit, the robust, changepoint and paper presets, the joint model
with release groups and a free ceiling, the marginalised change date and the affine mean trend
(2 chains × 150 draws, seed 3), a sensitivity grid on one shared program, a benchmark-subset
sweep and a small SBC. ``compare`` reports each posterior.nc's float variables that differ
(with the largest difference) and whether the tables are byte-identical (timings and worker
ids aside). benchmarks/README.md, "The 0.3 refactor", has the result for #32.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

LAUNCH = ("try:\n from bayes_densing.cli.app import app\nexcept ImportError:\n"
          " from bayes_densing.cli import app\napp()")     # 0.3's CLI, or 0.2's
SMALL = ["--chains", "2", "--draws", "150", "--tune", "150", "--seed", "3", "--quiet",
         "--no-figures", "--allow-warnings"]
SWEEP = ["--chains", "2", "--draws", "100", "--tune", "100", "--seed", "3", "--quiet"]
JOBS = {
    "default": ["sample", *SMALL],
    "robust": ["sample", "--model", "robust", *SMALL],
    "changepoint": ["sample", "--model", "changepoint", *SMALL],
    "paper": ["sample", "--model", "paper", *SMALL],
    "joint_offsets_groups": ["sample", "--curves", "joint", "--set", "model.release_groups=on",
                             "--set", "model.ceiling=free", *SMALL],
    "marginal": ["sample", "--trend", "changepoint", "--set", "model.changepoint=marginal",
                 "--curves", "joint", *SMALL],
    "affine_mean": ["sample", "--trend", "mean", "--set", "model.reparam=affine", "--curves",
                    "joint", *SMALL],
    "sens": ["sensitivity", "--vary", "priors.slope_sd=0.6", "--vary", "model.d0=2",
             "--no-prior-scaling", *SWEEP],
    "subsets": ["subsets", "--benchmarks", "mmlu,arc_challenge,hellaswag,winogrande,gsm8k,truthfulqa",
                "--min-size", "5", *SWEEP],
    "sbc": ["sbc", "--datasets", "2", "--chains", "1", "--draws", "100", "--tune", "100",
            "--ranks", "20", "--bins", "4", "--seed", "3", "--quiet"],
}
TIMING = {"wall_s", "worker", "seconds", "compile_s", "command", "created"}


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, args in JOBS.items():
        force = ["--force"] if args[0] == "sample" else []
        done = subprocess.run([sys.executable, "-c", LAUNCH, *args, "--out", str(out / name),
                               *force], capture_output=True, text=True)
        print(name, done.returncode, done.stderr[-300:] if done.returncode not in (0, 3) else "")


def _posterior_diff(p: Path, q: Path) -> tuple[int, list]:
    import numpy as np
    import xarray as xr

    before, after = xr.open_datatree(p), xr.open_datatree(q)
    n, differ = 0, []
    for group in ("posterior", "posterior_predictive", "log_likelihood", "log_prior",
                  "sample_stats"):
        if group not in before.children:
            continue
        for var in before[group].data_vars:
            x, y = before[group][var].values, after[group][var].values
            n += 1
            if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                differ.append((f"{group}/{var}", float(np.nanmax(np.abs(x - y)))
                               if x.dtype.kind == "f" else None))
    return n, differ


def _table(path: Path):
    if path.suffix == ".csv":
        rows = list(csv.DictReader(path.open()))
        return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    strip = (lambda d: {k: strip(v) for k, v in d.items() if k not in TIMING}
             if isinstance(d, dict) else [strip(v) for v in d] if isinstance(d, list) else d)
    return strip(json.loads(path.read_text()))


def compare(before: Path, after: Path) -> bool:
    same = True
    for p in sorted(before.rglob("posterior.nc")):
        q = after / p.relative_to(before)
        n, differ = _posterior_diff(p, q)
        same &= not differ
        print(p.relative_to(before), f"{n} variables:",
              "identical" if not differ else f"{len(differ)} differ: {differ[:4]}")
    for name in ("models.csv", "trend.csv", "sensitivity.csv", "subsets.csv", "sbc.json"):
        for p in sorted(before.glob(f"*/{name}")):
            equal = _table(p) == _table(after / p.relative_to(before))
            same &= equal
            print(p.relative_to(before), "equal" if equal else "DIFFERS", "(timings aside)")
    return same


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["compare"]:
        sys.exit(0 if compare(Path(sys.argv[2]), Path(sys.argv[3])) else 1)
    else:
        sys.exit(__doc__)
