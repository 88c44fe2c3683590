"""Harness vs reported: the same models' effective sizes from an independent harness (Swallow)
and from a maker's table (the Qwen3 Technical Report's base-model table, one Qwen pipeline for
Qwen3, Qwen2.5, Gemma-3, Llama-3 and Llama-4), with the same reference family (Qwen2.5) and
the same four benchmarks.

    python tools/build_reported_local.py          # needs ../shared/data/recent (not shipped)
    python benchmarks/harness_vs_reported.py --out benchmarks/results/harness-vs-reported-2026-12-04.json

The maker tables cannot be shipped (their licences: bayes_densing/datasets/README-swallow_2025.md),
so this needs a local copy of the shared data; the docs show its output
(docs/still-holds.md, "Harness vs reported").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_densing import results
from bayes_densing.config import Config
from bayes_densing.run import fit

BENCHMARKS = ("mmlu", "bbh", "gsm8k", "math")
SOURCES = {"harness": ("swallow", "swallow-v2"), "reported": ("qwen3-report",)}
NOT_OPEN = ("Qwen2.5-Plus-Base (API, not open)", "Qwen2.5-Turbo-Base (API, not open)",
            "Qwen/Qwen3-32B-Base", "Qwen/Qwen3-235B-A22B-Base")   # no open base weights


def tables(local: Path) -> dict[str, pd.DataFrame]:
    """The two datasets: each source's rows of the four benchmarks, for the references and
    the targets scored by both sources."""
    d = pd.read_csv(local)
    d = d[d.benchmark.isin(BENCHMARKS) & ~d.model.isin(NOT_OPEN)
          & d.params.notna() & d.release_date.notna()]
    parts = {k: d[d.source.isin(v)] for k, v in SOURCES.items()}
    both = set(parts["harness"].model) & set(parts["reported"].model)
    return {k: p[p.model.isin(both)] for k, p in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--local", type=Path, default=Path("runs/local/harness_vs_reported.csv"))
    ap.add_argument("--runs", type=Path, default=Path("runs/harness-vs-reported"))
    ap.add_argument("--out", type=Path,
                    default=Path(f"benchmarks/results/harness-vs-reported-{date.today()}.json"))
    args = ap.parse_args()
    if not args.local.exists():
        sys.exit(f"{args.local}: not found; build it with python tools/build_reported_local.py "
                 "(needs ../shared/data/recent)")
    out, sizes = {"command": "python " + " ".join(sys.argv), "date": str(date.today())}, {}
    for name, table in tables(args.local).items():
        path = args.runs / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        config = Config()
        config.data.reference = "Qwen2.5"
        res = fit(config, path, out=args.runs / name, force=True, progressbar=False)
        d = res.diagnostics
        out[name] = {"tasks": res.data.benchmarks, "targets": res.data.n_target,
                     "doubling": res.doubling, "divergences": d["divergences"],
                     "max_rhat": d["max_rhat"]}
        sizes[name] = res.models[res.models.role == "target"].set_index("model")
        print(name, res.summary.splitlines()[2], flush=True)
    h, r = sizes["harness"], sizes["reported"]
    rows = []
    for m in sorted(set(h.index) & set(r.index), key=lambda m: (h.release_date[m], m)):
        rows.append({"model": m, "release_date": h.release_date[m], "params": h.params[m],
                     "harness": h.effective_params[m],
                     "harness_90": [h.effective_params_low[m], h.effective_params_high[m]],
                     "reported": r.effective_params[m],
                     "reported_90": [r.effective_params_low[m], r.effective_params_high[m]],
                     "ratio": r.effective_params[m] / h.effective_params[m]})
    out["models"] = rows
    out["median_ratio"] = float(np.median([x["ratio"] for x in rows]))
    args.out.write_text(json.dumps(out, indent=2, default=float))
    for x in rows:
        print(f"{x['model']:<40} {x['params']:>6.3g}B  harness {x['harness']:7.3g}B  "
              f"reported {x['reported']:7.3g}B  ×{x['ratio']:.2f}")
    print(f"median reported/harness: ×{out['median_ratio']:.2f}")


if __name__ == "__main__":
    main()
