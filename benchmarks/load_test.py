"""Load test: reading, validating and building the model on a large file, and a whole
``bayes-densing sample`` on many targets.

    python benchmarks/load_test.py --out benchmarks/results/load-YYYY-MM-DD.json
    python benchmarks/load_test.py --models 200 --sample-models 100 --out /tmp/load-small.json
    # a commit as it was, while others edit the checkout:
    git archive HEAD bayes_densing models | tar -x -C /tmp/src
    python benchmarks/load_test.py --src /tmp/src --out benchmarks/results/load-YYYY-MM-DD.json

Both input files are written by the package's own simulator (``bayes_densing.model.simulate``, as
``bayes-densing simulate`` writes them: 8 reference models, seed 0) into a temporary directory.
Its first 12 benchmarks (``simulate.DEFAULT_BENCHMARKS``) are all in the benchmark registry,
so 12 is the simulator's maximum and no benchmark is made up.

Phase A, on the ``--models`` × ``--benchmarks`` file (default 5,000 × 12): two fresh Python
processes, so that each one's peak memory is its own. The first imports ``bayes_densing.run``
(PyMC, PyTensor, ArviZ, pandas), then reads and validates the CSV and assembles it
(``data.load`` under the ``default`` preset, as ``run.fit`` does). The second does the same,
then builds the PyMC model (``model.build_model``). Each reports the seconds of each step, its
resident set after the imports, and its peak resident set (``ru_maxrss``); the second also
resets the kernel's high-water mark (``/proc/self/clear_refs``) just before building, so the
build's own peak (with the loaded data still held) is read apart from the load's.

Phase B, on the ``--sample-models`` × ``--sample-benchmarks`` file (default 3,000 × 2): the
console script ``bayes-densing sample --data FILE --draws 200 --tune 200 --out DIR
--no-figures --quiet`` (other options at their defaults: 4 chains, the default preset), run
under ``/usr/bin/time -v`` for its wall time, CPU time and peak resident set, and its
``diagnostics.json`` read afterwards, with the sampler's statistics chain by chain from its
``posterior.nc``. Its exit code is recorded as it is (3: the diagnostics failed a threshold).

The load average is read before and after each phase: others may share the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

# --- the child processes of phase A ---------------------------------------------------------

CHILD = r"""
import json, resource, sys, time

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024          # kB -> MiB
    return float("nan")

def maxrss():
    # the peak resident set so far: ru_maxrss, or VmHWM where the kernel has counted pages
    # that it has not yet folded into ru_maxrss's high-water mark
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,   # kB -> MiB on Linux
               status("VmHWM"))

step, path = sys.argv[1], sys.argv[2]
out = {"step": step}
t0 = time.perf_counter()
from bayes_densing import data as data_mod
from bayes_densing.config import load_config
from bayes_densing.model.build import build_model
from bayes_densing.run import resolved_config
out["import_s"] = time.perf_counter() - t0
out["package_file"] = data_mod.__file__
out["rss_after_import_mib"] = status("VmRSS")

config = load_config("default").validate()
t0 = time.perf_counter()
data = data_mod.load(config, path)
out["load_s"] = time.perf_counter() - t0
out["rss_after_load_mib"] = status("VmRSS")
out["n_models"] = len(data.models)
out["n_targets"] = int(data.n_target)
out["n_benchmarks"] = len(data.benchmarks)
out["n_scores"] = len(data.obs)
out["notices"] = list(data.notices)
out["warnings"] = list(data.warnings)

if step == "build":
    out["peak_rss_before_build_mib"] = maxrss()
    reset = True
    try:                  # reset the high-water mark so that the build's own peak is read
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as exc:
        reset = False
        out["clear_refs_error"] = str(exc)
    out["high_water_mark_reset"] = reset
    config = resolved_config(config, data)
    t0 = time.perf_counter()
    model = build_model(data, config)
    out["build_s"] = time.perf_counter() - t0
    out["rss_after_build_mib"] = status("VmRSS")
    out["free_rvs"] = len(model.free_RVs)
    if reset:
        out["peak_rss_build_step_mib"] = status("VmHWM")
        out["peak_rss_mib"] = max(out["peak_rss_before_build_mib"], maxrss())
    else:
        out["peak_rss_mib"] = maxrss()
else:
    out["peak_rss_mib"] = maxrss()
print("RESULT " + json.dumps(out), flush=True)
"""


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"nproc": int(nproc) if nproc.isdigit() else os.cpu_count(), "cpu_model": cpu,
            "mem_total": mem, "arch": platform.machine(), "kernel": platform.release()}


def generate(n_models: int, n_benchmarks: int, path: Path) -> dict:
    from bayes_densing.model.simulate import simulate, write

    t0 = time.perf_counter()
    df, truth = simulate(n_models=n_models, n_benchmarks=n_benchmarks, seed=0)
    write(df, truth, path)
    return {"path": str(path), "n_targets": n_models, "n_reference": 8,
            "benchmarks": truth["benchmarks"], "rows": len(df),
            "bytes": path.stat().st_size, "mib": path.stat().st_size / 2**20,
            "generate_s": time.perf_counter() - t0}


def phase_a_step(step: str, path: Path) -> dict:
    cmd = [sys.executable, "-c", CHILD, step, str(path)]
    t0 = time.perf_counter()
    # in the files' directory: `python -c` puts the working directory first on sys.path, where
    # a checkout's own package would shadow --src
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=path.parent)
    wall = time.perf_counter() - t0
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"step": step, "exit_code": proc.returncode, "process_wall_s": wall,
                "error": proc.stderr[-4000:]}
    res = json.loads(line[len("RESULT "):])
    res.update(exit_code=proc.returncode, process_wall_s=wall,
               command=f"{sys.executable} -c <CHILD> {step} {path}")
    return res


def time_v(stderr: str) -> dict:
    """Fields of GNU time's ``-v`` report."""
    out = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if m:
        out["peak_rss_mib"] = int(m.group(1)) / 1024
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", stderr)
    if m:
        secs = 0.0
        for part in m.group(1).split(":"):
            secs = secs * 60 + float(part)
        out["elapsed_s_time_v"] = secs
    for key, name in (("user_s", "User time (seconds)"), ("sys_s", "System time (seconds)")):
        m = re.search(re.escape(name) + r": ([\d.]+)", stderr)
        if m:
            out[key] = float(m.group(1))
    m = re.search(r"Percent of CPU this job got: (\d+)%", stderr)
    if m:
        out["cpu_percent"] = int(m.group(1))
    return out


def phase_b(path: Path, run_dir: Path, draws: int, tune: int) -> dict:
    exe = Path(sys.executable).with_name("bayes-densing")
    exe = str(exe) if exe.exists() else shutil.which("bayes-densing")
    cli = [exe, "sample", "--data", str(path), "--draws", str(draws), "--tune", str(tune),
           "--out", str(run_dir), "--no-figures", "--quiet", "--curves", "joint"]
    timer = "/usr/bin/time" if Path("/usr/bin/time").exists() else None
    cmd = ([timer, "-v"] if timer else []) + cli
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=path.parent)
    wall = time.perf_counter() - t0
    res = {"command": " ".join(cmd), "exit_code": proc.returncode, "wall_s": wall,
           "stdout_tail": proc.stdout[-3000:]}
    if timer:
        res.update(time_v(proc.stderr))
        # GNU time's report is the end of stderr; keep what the command itself said before it
        res["stderr_tail"] = proc.stderr.split("\tCommand being timed:")[0][-3000:]
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        res["peak_rss_mib"] = after / 1024 if after > before else None
        res["stderr_tail"] = proc.stderr[-3000:]
    diag_path = run_dir / "diagnostics.json"
    if diag_path.exists():
        d = json.loads(diag_path.read_text())
        res["diagnostics"] = {k: d.get(k) for k in (
            "wall_s", "sampling_s", "divergences", "max_rhat", "max_rhat_var", "min_ess_bulk",
            "min_ess_bulk_var", "min_ess_tail", "min_ess_tail_var", "min_bfmi", "chains",
            "draws", "mean_tree_depth", "mean_leapfrog_steps", "problems", "sampler",
            "chain_method", "mass_matrix", "data", "notices", "warnings", "command")}
        res["doubling"] = d.get("doubling")
        res["per_chain"] = per_chain(run_dir, d.get("max_rhat_var"))
    else:
        res["diagnostics"] = None
    return res


def per_chain(run_dir: Path, var: str | None = None) -> dict | None:
    """The sampler's statistics chain by chain, from the run's posterior.nc: divergences, mean
    leapfrog steps and tree depth, step size, mean acceptance, and the per-chain mean and sd
    of ``var`` (the parameter of the worst R-hat)."""
    path = run_dir / "posterior.nc"
    if not path.exists():
        return None
    import arviz as az

    idata = az.from_netcdf(path)
    st = idata.sample_stats
    out = {}
    for key, how in (("diverging", "sum"), ("n_steps", "mean"), ("tree_depth", "mean"),
                     ("step_size", "mean"), ("acceptance_rate", "mean")):
        if key in st:
            x = st[key].values
            out[key] = (x.sum(axis=1) if how == "sum" else x.mean(axis=1)).tolist()
    if var and var in idata.posterior:
        x = idata.posterior[var].values.reshape(idata.posterior.sizes["chain"],
                                                idata.posterior.sizes["draw"], -1)
        out[f"{var}_mean"] = x.mean(axis=(1, 2)).tolist()
        out[f"{var}_sd"] = x.std(axis=1).mean(axis=1).tolist()
    return out


def versions() -> dict:
    from bayes_densing.run import versions as v

    return v()


def package_source(src: Path | None) -> dict:
    """Where the package was imported from, and the checkout's commit and whether its package
    directory had uncommitted changes (others may be editing the checkout)."""
    import bayes_densing

    repo = Path(__file__).resolve().parent.parent
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], capture_output=True,
                                    text=True).stdout.strip()
    return {"package_file": bayes_densing.__file__, "src": str(src) if src else None,
            "checkout_head": git("rev-parse", "HEAD"),
            "checkout_package_changes": git("status", "--porcelain", "--", "bayes_densing").splitlines()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=5000, help="targets in phase A's file")
    ap.add_argument("--benchmarks", type=int, default=12, help="benchmarks in phase A's file (≤ 12)")
    ap.add_argument("--sample-models", type=int, default=3000, help="targets in phase B's file")
    ap.add_argument("--sample-benchmarks", type=int, default=2, help="benchmarks in phase B's file")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--tune", type=int, default=200)
    ap.add_argument("--skip-sample", action="store_true", help="phase A only")
    ap.add_argument("--keep", type=Path, default=None,
                    help="write the files and the run here instead of a temporary directory")
    ap.add_argument("--src", type=Path, default=None,
                    help="import the package from this directory (e.g. a `git archive` of a commit, "
                         "when others are editing the checkout) instead of the installed one; it "
                         "goes first on sys.path here and on PYTHONPATH for every child process")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/load.json"))
    args = ap.parse_args(argv)
    if args.src:
        args.src = args.src.resolve()
        sys.path.insert(0, str(args.src))
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(args.src)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))

    started = datetime.now(timezone.utc)
    date_u = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    record = {"command": "python " + " ".join(sys.argv), "date": started.date().isoformat(),
              "date_u": date_u, "machine": machine(), "versions": versions(),
              "package": package_source(args.src), "python": sys.executable}
    tmp_ctx = tempfile.TemporaryDirectory(prefix="load-test-") if args.keep is None else None
    work = Path(tmp_ctx.name) if tmp_ctx else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        # --- inputs ---
        big = work / f"scores-{args.models}x{args.benchmarks}.csv"
        small = work / f"scores-{args.sample_models}x{args.sample_benchmarks}.csv"
        record["files"] = {"phase_a": generate(args.models, args.benchmarks, big)}
        if not args.skip_sample:
            record["files"]["phase_b"] = generate(args.sample_models, args.sample_benchmarks, small)
        print(json.dumps(record["files"]), flush=True)

        # --- phase A ---
        a = {"loadavg_before": loadavg()}
        a["load"] = phase_a_step("load", big)
        print(json.dumps(a["load"]), flush=True)
        a["build"] = phase_a_step("build", big)
        print(json.dumps(a["build"]), flush=True)
        a["loadavg_after"] = loadavg()
        record["phase_a"] = a

        # --- phase B ---
        if not args.skip_sample:
            b = {"loadavg_before": loadavg()}
            run_dir = work / "run"
            if run_dir.exists():
                shutil.rmtree(run_dir)
            b.update(phase_b(small, run_dir, args.draws, args.tune))
            b["loadavg_after"] = loadavg()
            record["phase_b"] = b
            print(json.dumps({k: v for k, v in b.items() if k not in ("stdout_tail", "stderr_tail")}),
                  flush=True)
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()
    record["finished_u"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
