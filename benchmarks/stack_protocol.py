"""The timing protocol: the whole `bayes-densing sample` on the bundled data, as a new user runs
it, on two software stacks side by side, and the peers in the same run.

    python benchmarks/stack_protocol.py --old-ref 2d677ac --old-python python3.11 --rounds 3

1. Two fresh virtual environments: ``old`` installs the package at ``--old-ref`` (a commit;
   ``git archive`` of it) with ``--old-python``; ``new`` installs this working tree with the
   interpreter ``tools/find-python`` picks, with nutpie for the peers. Installing is not timed.
2. ``--rounds`` rounds, the two stacks interleaved (old, new; then new, old; …) so that a
   machine's drift hits both; round r runs both with ``--seed r`` (one seed's ESS says little:
   the same seed on the same stack gives the same draws, and ESS(T) moves by ±10% between
   seeds). Every run starts with empty JAX, Numba, PyTensor and Matplotlib
   caches (fresh directories through BAYES_DENSING_JAX_CACHE, NUMBA_CACHE_DIR, PYTENSOR_FLAGS
   and MPLCONFIGDIR) and runs the README's command, figures and report included:
   `bayes-densing sample --out DIR`. Recorded: the whole command's wall time, the sampler's
   wall time (diagnostics.json ``wall_s``: compilation and sampling), the bulk ESS of the
   doubling time (ArviZ of the new stack, on each run's posterior.nc) and ESS/s on both clocks.
3. The peers, in the new environment, on the same PyMC model (``model.build_model``, default
   config, bundled data), 4 chains × (1000 + 1000), target acceptance 0.9, same empty caches:
   PyMC's NUTS, nutpie with its default (diagonal) adaptation and with its low-rank modified
   mass matrix (``adaptation="low_rank"``, what nutpie < 0.16 called
   ``low_rank_modified_mass_matrix=True``), nutpie's compilation included and also apart.

The table goes to stdout and the record to benchmarks/results/stack-protocol-<date>.json; its
numbers are copied by hand into benchmarks/README.md ("The timing protocol").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ESS_CODE = """
import sys, json, warnings
warnings.simplefilter("ignore")
import arviz as az
tree = az.from_netcdf(sys.argv[1])
print(json.dumps({"ess_doubling": float(az.ess(tree, var_names=["doubling_months"])["doubling_months"])}))
"""


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def make_env(where: Path, python: str, source: Path, extras: str = "") -> Path:
    """A fresh virtual environment at ``where`` with the package at ``source`` installed."""
    sh([python, "-m", "venv", str(where)])
    pip = str(where / "bin" / "pip")
    sh([pip, "install", "--quiet", "--upgrade", "pip"])
    sh([pip, "install", "--quiet", f"{source}{extras}"])
    return where


def cold_env(tmp: Path) -> dict:
    """Environment variables that give a run empty compilation and font caches."""
    for d in ("jax", "numba", "pytensor", "mpl"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"BAYES_DENSING_JAX_CACHE": str(tmp / "jax"), "NUMBA_CACHE_DIR": str(tmp / "numba"),
                "PYTENSOR_FLAGS": f"compiledir={tmp / 'pytensor'}", "MPLCONFIGDIR": str(tmp / "mpl")})
    return env


def whole_command(env_dir: Path, label: str, new_env: Path, seed: int,
                  extra: tuple = ()) -> dict:
    """One cold `bayes-densing sample --seed SEED` (and ``extra`` options) in ``env_dir``: its
    wall time, the sampler's, ESS(T)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "run"
        start = time.perf_counter()
        proc = subprocess.run([str(env_dir / "bin" / "bayes-densing"), "sample", "--out", str(out),
                               "--seed", str(seed), *extra],
                              env=cold_env(tmp), capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"stack": label, "error": proc.stderr[-2000:]}
        diag = json.loads((out / "diagnostics.json").read_text())
        ess = json.loads(sh([str(new_env / "bin" / "python"), "-c", ESS_CODE,
                             str(out / "posterior.nc")]).stdout)["ess_doubling"]
    return {"stack": label, "seed": seed, "whole_s": wall, "sampler_s": diag["wall_s"],
            "sampling_s": diag.get("sampling_s"), "ess_doubling": ess,
            "ess_per_sampler_s": ess / diag["wall_s"], "ess_per_whole_s": ess / wall,
            "doubling_months": diag["doubling"]["median_months"],
            "divergences": diag["divergences"], "max_rhat": diag["max_rhat"],
            "min_ess_bulk": diag["min_ess_bulk"],
            "versions": diag["versions"]}


# --- the peers (run inside the new environment: --peer NAME) ---------------------------------

def peer(name: str) -> dict:
    """One peer sampler on the default model and the bundled data; wall times and ESS(T)."""
    import warnings

    warnings.simplefilter("ignore")
    import arviz as az
    import pymc as pm

    from bayes_densing import data as data_mod
    from bayes_densing.config import load_config
    from bayes_densing.inference.sample import initial_points
    from bayes_densing.model.build import build_model

    cfg = load_config("default")
    model = build_model(data_mod.load(cfg, None), cfg)
    start = time.perf_counter()
    compiled_s = None
    if name == "pymc":
        tree = pm.sample(draws=1000, tune=1000, chains=4, cores=2, target_accept=0.9, model=model,
                         random_seed=0, progressbar=False, compute_convergence_checks=False,
                         init="adapt_diag", initvals=initial_points(model, 4, 0))
    else:
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        compiled_s = time.perf_counter() - start
        adaptation = "low_rank" if name == "nutpie-low-rank" else "diag"
        tree = nutpie.sample(compiled, draws=1000, tune=1000, chains=4, cores=2, seed=0,
                             progress_bar=False, target_accept=0.9, adaptation=adaptation)
    wall = time.perf_counter() - start
    ess = float(az.ess(tree, var_names=["doubling_months"])["doubling_months"])
    stats = tree["sample_stats"]
    return {"peer": name, "sampler_s": wall, "compile_s": compiled_s, "ess_doubling": ess,
            "ess_per_sampler_s": ess / wall,
            "ess_per_sampling_s": ess / (wall - (compiled_s or 0.0)),
            "divergences": int(stats["diverging"].sum()),
            "doubling_months": float(tree["posterior"]["doubling_months"].median())}


def run_peer(env_dir: Path, name: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([str(env_dir / "bin" / "python"), __file__, "--peer", name],
                              env=cold_env(Path(tmp)), capture_output=True, text=True, cwd=tmp)
    if proc.returncode != 0:
        return {"peer": name, "error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-ref", default="2d677ac", help="the commit of the old stack")
    ap.add_argument("--old-python", default="python3", help="the old stack's interpreter")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--estimands", action="store_true",
                    help="instead of two stacks: this tree's joint and cut fits (--curves), "
                         "interleaved the same way, no peers")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.peer:
        print(json.dumps(peer(args.peer)))
        return
    work = Path(tempfile.mkdtemp(prefix="stack-protocol-"))
    new_python = sh([str(REPO / "tools" / "find-python")]).stdout.strip()
    peers: list[dict] = []
    try:
        if args.estimands:
            new = make_env(work / "new", new_python, REPO)
            labels = ("joint", "cut")
            rows = interleaved([("joint", new, ("--curves", "joint")),
                                ("cut", new, ("--curves", "cut", "--allow-warnings"))],
                               args.rounds, new)
        else:
            old_src = work / "old-src"
            old_src.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.old_ref],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive, check=True)
            print(f"installing: old {args.old_ref} with {args.old_python}; new with "
                  f"{new_python}", flush=True)
            old = make_env(work / "old", args.old_python, old_src)
            new = make_env(work / "new", new_python, REPO)
            sh([str(new / "bin" / "pip"), "install", "--quiet", "nutpie"])
            labels = ("old", "new")
            rows = interleaved([("old", old, ()), ("new", new, ())], args.rounds, new)
            peers = [] if args.no_peers else [run_peer(new, n) for n in
                                              ("pymc", "nutpie", "nutpie-low-rank")]
            for p in peers:
                print(json.dumps(p), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {"command": "python benchmarks/stack_protocol.py " + " ".join(sys.argv[1:]),
              "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rows": rows,
              "peers": peers}
    stem = "estimands" if args.estimands else "stack-protocol"
    out = args.out or REPO / "benchmarks" / "results" / f"{stem}-{date.today()}.json"
    out.write_text(json.dumps(record, indent=2))
    summarise(record, labels)
    print(f"\nwritten to {out}")


def interleaved(contestants: list[tuple], rounds: int, new_env: Path) -> list[dict]:
    """``rounds`` rounds of the whole command, one run of each (label, environment, extra
    options) per round, their order reversed every other round; round r with ``--seed r``."""
    rows = []
    for r in range(rounds):
        for label, env_dir, extra in contestants[:: 1 if r % 2 == 0 else -1]:
            row = whole_command(env_dir, label, new_env, seed=r, extra=extra)
            row["round"] = r
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "versions"}), flush=True)
    return rows


def summarise(record: dict, labels: tuple = ("old", "new")) -> None:
    import statistics as st

    ok = [r for r in record["rows"] if "error" not in r]
    print("\n| stack | runs | whole command s | sampler s | ESS(T) | ESS(T)/sampler s | "
          "ESS(T)/whole s |\n|---|---|---|---|---|---|---|")
    med = {}
    first, second = labels
    for label in labels:
        rs = [r for r in ok if r["stack"] == label]
        if not rs:
            continue
        m = {k: st.median(r[k] for r in rs) for k in ("whole_s", "sampler_s", "ess_doubling",
                                                       "ess_per_sampler_s", "ess_per_whole_s")}
        med[label] = m
        print(f"| {label} | {len(rs)} | {m['whole_s']:.1f} ({min(r['whole_s'] for r in rs):.1f}–"
              f"{max(r['whole_s'] for r in rs):.1f}) | {m['sampler_s']:.1f} | "
              f"{m['ess_doubling']:.0f} | {m['ess_per_sampler_s']:.0f} | {m['ess_per_whole_s']:.0f} |")
    if len(med) == 2:
        print(f"\n{second} / {first} (medians): whole command ×"
              f"{med[second]['whole_s'] / med[first]['whole_s']:.2f}, ESS(T)/sampler s ×"
              f"{med[second]['ess_per_sampler_s'] / med[first]['ess_per_sampler_s']:.2f}")
        by_seed = {(r["stack"], r["seed"]): r for r in ok}
        for seed in sorted({r["seed"] for r in ok}):
            if (first, seed) in by_seed and (second, seed) in by_seed:
                o, n = by_seed[first, seed], by_seed[second, seed]
                print(f"  seed {seed}: whole ×{n['whole_s'] / o['whole_s']:.2f}, sampler "
                      f"×{n['sampler_s'] / o['sampler_s']:.2f}, ESS(T) {o['ess_doubling']:.0f} → "
                      f"{n['ess_doubling']:.0f}, ESS(T)/sampler s "
                      f"×{n['ess_per_sampler_s'] / o['ess_per_sampler_s']:.2f}")
    for p in record["peers"]:
        if "error" in p:
            print(f"peer {p['peer']}: FAILED")
            continue
        ratio = med.get("new", {}).get("ess_per_sampler_s", float("nan")) / p["ess_per_sampler_s"]
        print(f"peer {p['peer']}: sampler {p['sampler_s']:.1f} s, ESS(T) {p['ess_doubling']:.0f}, "
              f"{p['ess_per_sampler_s']:.0f}/s; ours (new) ×{ratio:.2f}")


if __name__ == "__main__":
    main()
