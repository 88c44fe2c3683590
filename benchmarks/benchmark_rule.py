"""The benchmark rule on synthetic data over many seeds (issue #30, item 1): how often does the
rule (``bayes_densing.analyses.benchmark_rule``) keep a benchmark that scales, and drop one
that is flat in size?

Each seed is ``benchmark_rule.synthetic(seed)``: one simulated population of 8 reference sizes
and 40 targets, with ``mmlu`` drawn from the model's curves and ``flat`` binomial noise around
a level of each model's own. The curve module is compiled once (every seed has the same design)
and fitted to each seed's reference scores. Each rate is judged against its stated target with
a two-sided binomial tolerance at a 1% false-alarm rate (the count's 0.5% and 99.5% quantiles
under the target): below it the rule misses its target, above it the rule does better.

    python benchmarks/benchmark_rule.py --seeds 200 --out benchmarks/results/benchmark-rule-2026-12-04.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
from scipy import stats

from bayes_densing.analyses import benchmark_rule as rule
from bayes_densing.config import load_config

# the targets, stated before any run: the rule keeps a scaling benchmark in at least 95% of
# datasets and drops a flat one in at least 99%
TARGET_KEEP_SCALING = 0.95
TARGET_DROP_FLAT = 0.99
FALSE_ALARM = 0.01


def judged(count: int, n: int, target: float) -> dict:
    """The rate ``count / n`` against ``target``: its two-sided binomial tolerance and where
    the rate falls (below: the target is missed; within; above: better than the target)."""
    lo = stats.binom.ppf(FALSE_ALARM / 2, n, target) / n
    hi = stats.binom.isf(FALSE_ALARM / 2, n, target) / n
    rate = count / n
    where = "below" if rate < lo else ("above" if rate > hi else "within")
    return {"count": int(count), "n": int(n), "rate": rate, "target": target,
            "tolerance": [float(lo), float(hi)], "where": where,
            "meets_target": where != "below",
            "binomtest_p": float(stats.binomtest(int(count), n, target).pvalue)}


def summarise(rows: list[dict]) -> dict:
    n = len(rows)
    out = {"keep_scaling": judged(sum(r["mmlu"]["verdict"] == "in" for r in rows), n,
                                  TARGET_KEEP_SCALING),
           "drop_flat": judged(sum(r["flat"]["verdict"] == "out" for r in rows), n,
                               TARGET_DROP_FLAT)}
    for b in ("mmlu", "flat"):      # how often each criterion passes, per benchmark
        out[f"{b}_criteria_pass_rate"] = {c: float(np.mean([r[b][c] for r in rows]))
                                          for c in rule.CRITERIA}
        for key in ("gain_q05", "log_size_width", "targets_spearman", "refs_spearman"):
            x = np.array([np.inf if r[b][key] is None else r[b][key] for r in rows], dtype=float)
            qs = np.quantile(x, [0.05, 0.5, 0.95], method="inverted_cdf")
            out[f"{b}_{key}_q05_q50_q95"] = [float(q) if np.isfinite(q) else None for q in qs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--targets", type=int, default=40, help="target models per dataset")
    ap.add_argument("--out", type=Path,
                    default=Path("benchmarks/results/benchmark-rule-2026-12-04.json"))
    ap.add_argument("--set", dest="set_", action="append", default=[],
                    help="config KEY=VALUE (e.g. sampler.draws=500)")
    args = ap.parse_args()
    config = load_config("default")
    config.set_items(args.set_)
    start = time.perf_counter()
    first = args.first_seed
    cut = rule.curve_sampler(rule.synthetic(first, args.targets, config=config), config)
    rows = []
    for i, seed in enumerate(range(first, first + args.seeds), 1):
        t0 = time.perf_counter()
        data = rule.synthetic(seed, args.targets, config=config)
        table = rule.evaluate(data, config, seed=seed, cut=cut)
        record = rule.to_dict(table, data)
        rows.append({"seed": seed, "seconds": time.perf_counter() - t0,
                     **{b["benchmark"]: b for b in record["benchmarks"]}})
        if i % 10 == 0 or i == args.seeds:        # partial results survive a stop
            result = {"command": "python benchmarks/benchmark_rule.py " + " ".join(
                          f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                          if k != "set_") + "".join(f" --set {s}" for s in args.set_),
                      "date": date.today().isoformat(), "machine": platform.platform(),
                      "cpus": os.cpu_count(), "sampler": vars(config.sampler),
                      "bounds": rule.bounds(), "design": {
                          "targets": args.targets, "reference_sizes": 8,
                          "flat_level": rule.FLAT_LEVEL, "flat_sd": rule.FLAT_SD,
                          "flat_items": rule.FLAT_ITEMS, "doubling_months": 6.0},
                      "seeds_done": i, "wall_s": time.perf_counter() - start,
                      "summary": summarise(rows), "per_seed": rows}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1, allow_nan=False))
            s = result["summary"]
            print(f"{i} seeds, {result['wall_s']:.0f} s: scaling kept "
                  f"{s['keep_scaling']['rate']:.3f} ({s['keep_scaling']['where']}), flat dropped "
                  f"{s['drop_flat']['rate']:.3f} ({s['drop_flat']['where']})", flush=True)


if __name__ == "__main__":
    main()
