"""Sweeps in this process against a local Dask cluster of 1 and 2 workers, on the same cores.

    python benchmarks/dask_sweeps.py --out benchmarks/results/dask-sweeps-DATE.json

Runs each study as the command line runs it, one after the other, each in a fresh process with
an empty JAX compilation cache of its own (so every mode compiles what it needs):

1. the 31-subset sweep: `bayes-densing subsets --benchmarks mmlu,bbh,math_hard,humaneval,gsm8k
   --curves joint` (the all-benchmark fit, then 30 subsets warm-started from it);
2. a 100-dataset SBC: `bayes-densing sbc --datasets 100` (20 targets, 3 benchmarks, the joint
   model; --sbc-draws/--sbc-tune per chain, 2 chains);

each in-process, with `--workers 1` and with `--workers 2`. From every variant's result.json
(its worker, wall time, compile counters, start and end) it gives the fits per worker, the
programs built and XLA compilations per worker, the persistent cache's hits, the seconds per fit,
the compile cost, the gaps between one worker's fits (the scheduler's and the client's share),
and where the rest of the wall time went (start-up before the first fit, the tail after the
last). From those measurements, a scaling model **predicts** the wall time on 8, 32 and 128
workers (assumptions in the record and in benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

MODES = {"in-process": [], "1 worker": ["--workers", "1"], "2 workers": ["--workers", "2"]}


def run(args: list[str], env: dict) -> tuple[float, float, str]:
    cmd = [sys.executable, "-m", "bayes_densing.cli.app", *args]
    begun = time.time()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return wall, begun, proc.stdout


def analyse(out: Path, wall: float, begun: float) -> dict:
    """Where one sweep's wall time went, from its variants' result.json."""
    docs = [json.loads(p.read_text()) for p in (out / "variants").glob("*/result.json")]
    workers: dict[int, list[dict]] = {}
    for d in docs:
        workers.setdefault(d["pid"], []).append(d)
    per_worker, gaps, firsts, laters = {}, [], [], []
    for pid, ds in workers.items():
        ds.sort(key=lambda d: d["finished"])
        firsts.append(ds[0]["wall_s"])
        laters += [d["wall_s"] for d in ds[1:]]
        gaps += [b["started"] - a["finished"] for a, b in zip(ds, ds[1:])]
        # the process's own counters after its last fit: what it compiled, primers included
        c = dict(ds[-1]["compile_total"])
        per_worker[str(pid)] = {"fits": len(ds), "busy_s": sum(d["wall_s"] for d in ds),
                                "devices": ds[0]["devices"], **c}
    first_start = min(d["started"] for d in docs)
    last_end = max(d["finished"] for d in docs)
    fit_s = statistics.median(laters) if laters else float("nan")
    compile_s = statistics.mean(firsts) - fit_s
    return {"wall_s": wall, "fits": len(docs), "workers": len(workers),
            "per_worker": per_worker,
            "fit_s_median": fit_s, "fit_s_mean": statistics.mean(laters) if laters else None,
            "first_fit_s_mean": statistics.mean(firsts), "compile_s": compile_s,
            "gap_s_mean": statistics.mean(gaps) if gaps else 0.0,
            "gap_s_total": sum(gaps),
            "startup_s": first_start - begun, "tail_s": begun + wall - last_end,
            "busy_s": sum(w["busy_s"] for w in per_worker.values()),
            "programs": sum(w["programs"] for w in per_worker.values()),
            "xla_compiles": sum(w["xla_compiles"] for w in per_worker.values()),
            "xla_compile_s": sum(w["xla_compile_s"] for w in per_worker.values()),
            "cache_requests": sum(w["cache_requests"] for w in per_worker.values()),
            "cache_hits": sum(w["cache_hits"] for w in per_worker.values())}


def predict(m: dict, n: int, serial_first: bool, workers: int) -> float:
    """Wall time on ``workers`` workers like this machine's in the 2-worker run (one core
    each), from that run's measurements ``m``: the start-up and the tail, each worker's
    compile once (all at once), the parent fit alone first (``serial_first``), then the other
    fits in rounds of ``workers``, each fit the mean fit's time, with the measured gap."""
    rest = n - 1 if serial_first else n
    per_fit = m["fit_s_mean"] + m["gap_s_mean"]
    return (m["startup_s"] + m["tail_s"] + m["compile_s"]
            + (per_fit if serial_first else 0.0) + math.ceil(rest / workers) * per_fit)


def predictions(rows: dict, n: int, serial_first: bool) -> dict:
    two = rows["2 workers"]
    return {"note": "a prediction from the 2-worker run's measurements, not a measurement; "
                    "its 2-worker value is checked against that run's wall time",
            "measured 2 workers": two["wall_s"],
            **{f"{w} workers": predict(two, n, serial_first, w) for w in (2, 8, 32, 128)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmarks", default="mmlu,bbh,math_hard,humaneval,gsm8k")
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--sbc-draws", type=int, default=500)
    ap.add_argument("--sbc-tune", type=int, default=500)
    ap.add_argument("--studies", default="subsets,sbc")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--predict-only", action="store_true",
                    help="recompute the predictions of the record at --out from its measurements")
    args = ap.parse_args(argv)
    if args.predict_only:
        record = json.loads(args.out.read_text())
        for study, rows in record["studies"].items():
            n = rows["2 workers"]["fits"]
            rows["prediction"] = predictions(rows, n, serial_first=study == "subsets")
            print(study, {k: round(v) for k, v in rows["prediction"].items() if k != "note"})
        args.out.write_text(json.dumps(record, indent=1))
        return 0
    studies = {
        "subsets": (["subsets", "--benchmarks", args.benchmarks, "--curves", "joint"], 31, True),
        "sbc": (["sbc", "--datasets", str(args.datasets), "--curves", "joint", "--draws",
                 str(args.sbc_draws), "--tune", str(args.sbc_tune)], args.datasets, False),
    }
    record = {"command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "python": platform.python_version(), "studies": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for study in args.studies.split(","):
            cmd, n, serial_first = studies[study]
            record["studies"][study] = rows = {}
            for mode, extra in MODES.items():
                out = Path(tmp) / f"{study}-{mode.replace(' ', '-')}"
                env = {**os.environ, "BAYES_DENSING_JAX_CACHE": str(Path(tmp) / f"cache-{out.name}")}
                wall, begun, _ = run([*cmd, "--out", str(out), "--quiet", *extra], env)
                rows[mode] = analyse(out, wall, begun)
                print(f"{study:8s} {mode:11s} {wall:7.1f} s  fits {rows[mode]['fits']}, "
                      f"{rows[mode]['fit_s_median']:.2f} s each, compile "
                      f"{rows[mode]['compile_s']:.1f} s, programs {rows[mode]['programs']}, "
                      f"cache hits {rows[mode]['cache_hits']}/{rows[mode]['cache_requests']}",
                      flush=True)
            base = rows["in-process"]["wall_s"]
            for mode in MODES:
                rows[mode]["ratio_to_in_process"] = rows[mode]["wall_s"] / base
            rows["prediction"] = predictions(rows, n, serial_first)
            print(f"  2 workers / in-process: {rows['2 workers']['ratio_to_in_process']:.3f}; "
                  + ", ".join(f"{k} {v:.0f} s" for k, v in rows["prediction"].items()
                              if k != "note"), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
