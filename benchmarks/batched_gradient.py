"""Does batching fits on one device pay? The gradient of the sweep's weighted model on the
bundled data, vectorised over L fits with ``jax.vmap``, per fit.

    python benchmarks/batched_gradient.py

Each L is timed over 200 gradients inside one ``lax.scan`` (no dispatch overhead), after a
warm-up call; the figures are printed (benchmarks/README.md, "Benchmark-subset sweep").
"""

from __future__ import annotations

import time

import numpy as np
import pytensor.tensor as pt

from bayes_densing.config import Config
from bayes_densing.data import load
from bayes_densing.inference.sample import select_device
from bayes_densing.model.build import build_model
from bayes_densing.model.likelihood import log_binomial


def main() -> None:
    cfg = Config()
    select_device("cpu", 4)     # as a 4-chain sweep has it: one host device per chain
    import jax
    import jax.numpy as jnp
    from pymc.sampling.jax import get_jaxified_graph

    data = load(cfg, None)
    ow, bw, k, bl = (pt.vector(n) for n in ("ow", "bw", "k", "bl"))
    model = build_model(data, cfg, weights=(ow, bw), counts=(k, bl))
    names = [v.name for v in model.value_vars]
    logp = get_jaxified_graph(inputs=model.value_vars + [ow, bw, k, bl], outputs=[model.logp()])
    start = model.initial_point()
    counts, n = data.obs.k.to_numpy().astype(float), data.obs.n.to_numpy()
    args = [np.ones(len(counts)), np.ones(len(data.benchmarks)), counts, log_binomial(n, counts)]
    grad = jax.grad(lambda p, *a: -logp(*[p[v] for v in names], *a)[0])
    print(f"{sum(np.size(start[v]) for v in names)} parameters, {len(counts)} scores")
    for lanes in (1, 4, 16, 64, 128):
        p = {v: jnp.broadcast_to(jnp.asarray(start[v]), (lanes,) + np.shape(start[v])) + 0.01
             for v in names}
        a = [jnp.broadcast_to(jnp.asarray(x), (lanes, len(x))) for x in args]
        batched = jax.vmap(grad)

        def body(c, _):
            g = batched(c, *a)
            return jax.tree_util.tree_map(lambda x, y: x + 1e-6 * y, c, g), None

        loop = jax.jit(lambda c: jax.lax.scan(body, c, None, length=200)[0])
        jax.block_until_ready(loop(p))
        t0 = time.perf_counter()
        jax.block_until_ready(loop(p))
        dt = (time.perf_counter() - t0) / 200
        print(f"L = {lanes:4d}: {dt * 1e6:9.1f} µs per call, {dt / lanes * 1e6:7.1f} µs per fit")


if __name__ == "__main__":
    main()
