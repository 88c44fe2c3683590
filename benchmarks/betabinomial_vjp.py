"""A tried lead for a cheaper log density: the beta-binomial's gradient written by hand.

    python benchmarks/betabinomial_vjp.py --scores 20080 --out benchmarks/results/betabinomial-vjp.json

At 2,000 models × 10 benchmarks the log density is most of a leapfrog step, and most of the log
density is the beta-binomial of its 20,080 scores (benchmarks/README.md, "Where issue #7's
targets stand"). JAX differentiates ``model.betabinomial_logp`` operation by operation, so the
reverse pass reads and writes its own arrays again. This prototype gives the same density a
``jax.custom_vjp`` whose forward pass also returns the derivatives in p and φ, from digamma
differences ψ(k + a) − ψ(a) (a Stirling-type series above 6, shifted down by the recurrence),
so XLA can fuse them with the value. It checks that both gradients agree, then times one
value-and-gradient of each inside a compiled loop, interleaved over ``--rounds``.

Synthetic inputs: p = σ(x) per score and φ = exp(y) per group of scores (``--groups``), item
counts from the bundled benchmarks' sizes. Not used by the package: a measurement of what a
hand-written gradient would save. On 2026-12-01 (2 cores, 20,080 scores) it saved 0–20%
(autodiff / by hand 0.98–1.24× over five rounds), so it was not built (benchmarks/README.md).
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

ITEMS = (14042.0, 1319.0, 3000.0, 164.0, 817.0, 1172.0, 10042.0, 1267.0)   # bundled n's


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scores", type=int, default=20080)
    ap.add_argument("--groups", type=int, default=20, help="distinct concentrations φ")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=300, help="calls per timing")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    from profile_fit import us_per_value_and_grad

    from bayes_densing.model.likelihood import betabinomial_logp

    jax.config.update("jax_enable_x64", True)

    rng = np.random.default_rng(0)
    s = args.scores
    n = jnp.asarray(rng.choice(ITEMS, size=s))
    k = jnp.floor(n * rng.uniform(0.2, 0.9, size=s))
    binomln = jnp.zeros(s)                      # a constant: no effect on the timing
    group = jnp.asarray(rng.integers(0, args.groups, s))
    x0 = jnp.asarray(np.concatenate([rng.normal(size=s), rng.normal(5.0, 1.0, args.groups)]))

    def inputs(x):
        return jax.nn.sigmoid(x[:s]), jnp.exp(x[s:])[group]

    def psi_from_6(z):                          # digamma for z ≥ 6, error < 1e-9
        zi = 1.0 / z
        zi2 = zi * zi
        return jnp.log(z) - 0.5 * zi - zi2 * (1 / 12 - zi2 * (1 / 120 - zi2 / 252))

    def reciprocal_sum6(x):                     # Σ_{i<6} 1/(x+i), paired: (x)(x+5) etc.
        u = 2.0 * x + 5.0
        return u / (x * (x + 5.0)) + u / ((x + 1.0) * (x + 4.0)) + u / ((x + 2.0) * (x + 3.0))

    def psi_difference(y, x):                   # ψ(y) − ψ(x)
        return (psi_from_6(y + 6.0) - psi_from_6(x + 6.0)
                - reciprocal_sum6(y) + reciprocal_sum6(x))

    @jax.custom_vjp
    def fused(p, phi):
        return betabinomial_logp(k, n, p, phi, binomln)

    def forward(p, phi):
        a, b = p * phi, (1.0 - p) * phi
        da, db = psi_difference(k + a, a), psi_difference(n - k + b, b)
        d_phi = p * da + (1.0 - p) * db + psi_difference(phi, n + phi)
        return betabinomial_logp(k, n, p, phi, binomln), (phi * (da - db), d_phi)

    fused.defvjp(forward, lambda res, g: (g * res[0], g * res[1]))

    def autodiff(x):
        return jnp.sum(betabinomial_logp(k, n, *inputs(x), binomln))

    def by_hand(x):
        return jnp.sum(fused(*inputs(x)))

    g1, g2 = jax.grad(autodiff)(x0), jax.grad(by_hand)(x0)
    gap = float(jnp.max(jnp.abs(g1 - g2) / (1.0 + jnp.abs(g1))))
    if not gap < 1e-6:
        raise SystemExit(f"the two gradients differ: max relative gap {gap:.2e}")

    rounds = []
    for _ in range(args.rounds):
        rounds.append({"autodiff_us": us_per_value_and_grad(autodiff, x0, args.reps),
                       "by_hand_us": us_per_value_and_grad(by_hand, x0, args.reps)})
        print(json.dumps({k: round(v, 1) for k, v in rounds[-1].items()}), flush=True)
    ratios = [r["autodiff_us"] / r["by_hand_us"] for r in rounds]
    record = {"command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "scores": s, "groups": args.groups, "max_relative_gradient_gap": gap,
              "rounds": rounds, "ratio_min": min(ratios), "ratio_max": max(ratios)}
    print(f"gradients agree (max relative gap {gap:.1e}); autodiff / by hand: "
          f"{min(ratios):.2f}–{max(ratios):.2f}×")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
