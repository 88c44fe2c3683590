"""Which parameters set the step size: the stiffest direction of the posterior under the metric.

    python benchmarks/stiffness.py --out benchmarks/results/stiffness-bundled.json
    python benchmarks/stiffness.py --set data.benchmarks=mmlu --out ...

Runs the default fit (``dense_nuts.Sampler``, 4 chains) and then, at 80 of its draws (20 per
chain, evenly spaced), finds the largest eigenvalue λ of the log density's Hessian in the
metric's coordinates, Lᵀ·H·L with L·Lᵀ the adapted metric (the dense layout's covariance), by
power iteration on Hessian-vector products. A leapfrog step of size ε is unstable along a
direction once ε·√λ > 2, and its energy error grows well before that, so the draws with the
largest √λ bound the step size that the warm-up's target acceptance allows. Reported: the
quantiles of √λ over the draws, ε·√λ at the median and the largest, and which parameters the
stiffest directions load on (the summed squared loadings of each draw's three largest
components). Only the dense metric (the default up to ``DENSE_UP_TO`` parameters) is handled.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np

DRAWS_PER_CHAIN = 20
POWER_STEPS = 60


def stiffness(sampler, draws, n_per_chain: int = DRAWS_PER_CHAIN, steps: int = POWER_STEPS,
              seed: int = 0) -> dict:
    """√λ_max of Lᵀ·H·L at ``n_per_chain`` draws of each chain, and the parameters it loads on."""
    import jax

    grad = jax.grad(sampler.potential)
    hvp = jax.jit(lambda x, v: jax.jvp(grad, (x,), (v,))[1])
    L = np.linalg.cholesky(draws.metric)
    chains, n = draws.z[sampler.names[0]].shape[:2]
    labels = [name for name in sampler.order for _ in range(int(np.prod(sampler.shapes[name])))]
    rng = np.random.default_rng(seed)
    roots, load = [], {}
    for c in range(chains):
        for i in np.linspace(0, n - 1, n_per_chain).round().astype(int):
            x = sampler.flatten({name: draws.z[name][c, i] for name in sampler.names})
            v = rng.normal(size=sampler.d)
            v /= np.linalg.norm(v)
            lam = 0.0
            for _ in range(steps):
                w = L.T @ np.asarray(hvp(x, L @ v))
                lam = float(v @ w)
                v = w / np.linalg.norm(w)
            roots.append(np.sqrt(max(lam, 0.0)))
            for j in np.argsort(-np.abs(v))[:3]:
                load[labels[j]] = load.get(labels[j], 0.0) + float(v[j] ** 2)
    roots = np.asarray(roots)
    eps = float(draws.step_size)
    quantiles = np.quantile(roots, [0, .25, .5, .75, .9, 1]).tolist()
    return {"sqrt_lambda_quantiles": dict(zip(["0", "25", "50", "75", "90", "100"], quantiles)),
            "step_size": eps, "eps_sqrt_lambda_median": eps * float(np.median(roots)),
            "eps_sqrt_lambda_max": eps * float(roots.max()),
            "loadings": dict(sorted(load.items(), key=lambda kv: -kv[1]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: python benchmarks/stiffness.py --set "
                                        "data.benchmarks=mmlu --out /tmp/stiffness-mmlu.json")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration override (a list, such as data.benchmarks, is "
                         "comma-separated)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/stiffness.json"))
    args = ap.parse_args(argv)

    from bayes_densing.sampling import dense_nuts
    from bayes_densing.inference import bridge
    from bayes_densing.config import Config
    from bayes_densing.data import load
    from bayes_densing.inference.sample import select_device, unconstrained_starts
    from bayes_densing.model.build import build_model

    cfg = Config().set_items(args.set).validate()
    select_device("cpu", cfg.sampler.host_devices)
    data = load(cfg, None)
    model = build_model(data, cfg)
    sampler = bridge.sampler(model, cfg.sampler)
    if sampler.layout != "dense":
        sys.exit(f"only the dense metric is handled; this fit uses {sampler.layout}")
    starts = unconstrained_starts(model, cfg.sampler.chains, cfg.sampler.seed,
                                  finite=sampler.finite, start=sampler.initial_point)
    draws = sampler.run(starts, seed=cfg.sampler.seed, progressbar=False)
    result = stiffness(sampler, draws)
    result.update({"command": "python benchmarks/stiffness.py " + " ".join(
                       f"--set {s}" for s in args.set) + f" --out {args.out}",
                   "date": date.today().isoformat(),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "parameters": sampler.d, "benchmarks": list(data.benchmarks),
                   "leapfrog_steps_per_draw": float(np.mean(draws.stats["n_steps"])),
                   "divergences": int(np.sum(draws.stats["diverging"]))})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    q = result["sqrt_lambda_quantiles"]
    top = ", ".join(f"{k} {v:.1f}" for k, v in list(result["loadings"].items())[:5])
    print(f"{sampler.d} parameters, step size {result['step_size']:.3f}, "
          f"{result['leapfrog_steps_per_draw']:.1f} leapfrog steps per draw, "
          f"{result['divergences']} divergences\n"
          f"√λ_max over the draws: median {q['50']:.2f}, 90% {q['90']:.2f}, largest {q['100']:.2f}"
          f" (ε·√λ {result['eps_sqrt_lambda_median']:.2f} / {result['eps_sqrt_lambda_max']:.2f})\n"
          f"stiffest directions load on: {top}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
