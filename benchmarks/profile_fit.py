"""Where a leapfrog step's time goes: JAX's profiler on the default sampler, and XLA's cost
analysis of the compiled log density.

    python benchmarks/profile_fit.py --out benchmarks/results/profile-bundled.json
    python benchmarks/profile_fit.py --models 2000 --benchmarks 10 --tune 0 --iterations 2

One chain on one XLA host device (so that no other chain's thread preempts a kernel while it is
timed). The default sampler (``dense_nuts.Sampler``) first adapts for ``--tune`` iterations
without the profiler; then ``--iterations`` more run once untimed by the profiler (the step's
real cost) and once under ``jax.profiler.trace`` with XLA's optimised HLO dumped, so that each
kernel the CPU runtime executed is named by the JAX operation it came from (its ``op_name``).
Kernels are split into the log density's forward pass, its reverse pass (the gradient), the
sampler's own work (NUTS's tree, the metric's products, the random numbers) and XLA's own
kernels that no JAX operation names (copies of buffers between a loop's iterations); control-flow
thunks (``while``, ``conditional``, ``call``) contain others and are not counted as kernels.

The profiler's own cost per recorded kernel is large (it slows the run many times over), so
its times are read as shares of the kernels' time, beside the untimed step's cost. Also
reported: flops, transcendentals and bytes of the compiled value-and-gradient (XLA's
``cost_analysis``) and its time per call inside a compiled loop. Synthetic data as in
``scaling.py`` with ``--models``; the bundled dataset without.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

CONTAINERS = ("while", "conditional", "call")
UNNAMED = "XLA's own (no op_name)"
INSTRUCTION = re.compile(r'\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name="([^"]*)"')


def part(op_name: str) -> str:
    """Which part of the step a kernel belongs to, from its JAX ``op_name``."""
    if "jit(potential)" not in op_name:
        return "sampler"
    return "log density, reverse pass" if "transpose(" in op_name else "log density, forward pass"


def primitive(op_name: str) -> str:
    """The JAX primitive of an ``op_name`` (its last path element, without vmap's wrapper)."""
    last = op_name.split(";")[0].rstrip("/").split("/")[-1]
    return re.sub(r"^vmap\(\)$", "vmap", last) or "?"


def op_names(dump: Path) -> dict[tuple[int, str], str]:
    """(program id, HLO instruction) → op_name, from XLA's dump of the optimised modules."""
    names = {}
    for path in glob.glob(str(dump / "module_*.cpu_after_optimizations.txt")):
        pid = int(Path(path).name.split(".")[0].split("_")[1])
        for line in open(path):
            m = INSTRUCTION.match(line)
            if m:
                names[(pid, m.group(1))] = m.group(2)
    return names


def kernel_events(trace: Path) -> list[tuple[int, str, float]]:
    """(program id, HLO instruction, ns) of every thunk the CPU runtime recorded."""
    from jax.profiler import ProfileData

    (path,) = glob.glob(str(trace / "**" / "*.xplane.pb"), recursive=True)
    plane = ProfileData.from_file(path).find_plane_with_name("/host:CPU")
    out = []
    for line in plane.lines:
        for e in line.events:
            stats = dict(e.stats)
            if "hlo_op" in stats:
                out.append((int(stats["program_id"]), stats["hlo_op"], e.duration_ns))
    return out


def breakdown(events, names: dict, steps: int) -> dict:
    """Kernel time and count per leapfrog step, by part and by primitive within each part.
    Kernels without an ``op_name`` are XLA's own (copies of buffers, mostly): their part is
    ``UNNAMED`` and their "primitive" the HLO instruction's name without its number."""
    by_part, by_prim, count = collections.Counter(), collections.Counter(), collections.Counter()
    for pid, op, ns in events:
        if op.startswith(CONTAINERS):
            continue
        name = names.get((pid, op))
        p = UNNAMED if name is None else part(name)
        by_part[p] += ns
        count[p] += 1
        by_prim[(p, re.sub(r"\.\d+$", "", op) if name is None else primitive(name))] += ns
    total = sum(by_part.values())
    return {
        "kernel_ns_per_step": total / steps,
        "parts": {p: {"share": v / total, "kernels_per_step": count[p] / steps}
                  for p, v in by_part.most_common()},
        "primitives": [{"part": p, "primitive": prim, "share": v / total}
                       for (p, prim), v in by_prim.most_common(25)],
    }


def us_per_value_and_grad(f, x, reps: int = 500) -> float:
    """µs per call of ``jax.value_and_grad(f)`` at ``x`` inside a compiled loop (no Python
    dispatch), the value used as NUTS uses it; compiled and run once before the timing."""
    import jax
    from jax import lax

    vg = jax.value_and_grad(f)

    @jax.jit
    def loop(x):
        def body(_, x):
            # each call's input depends on the last (nothing hoisted) and on the value too:
            # NUTS uses it at every step, and a loop that used only the gradient let XLA drop
            # the terms that only the value needs (the log-gammas themselves), which timed
            # 0.91 instead of 1.45 ms at 2,000 × 10 (benchmarks/README.md, 2026-12-01)
            v, g = vg(x)
            return jax.tree_util.tree_map(lambda a, b: a + 1e-12 * (b + v), x, g)
        return lax.fori_loop(0, reps, body, x)

    jax.block_until_ready(loop(x))
    t0 = time.perf_counter()
    jax.block_until_ready(loop(x))
    return (time.perf_counter() - t0) / reps * 1e6


def gradient_cost(sampler, point: dict, reps: int = 500) -> dict:
    """XLA's cost analysis of the log density's value-and-gradient, and its µs per call inside
    a compiled loop (:func:`us_per_value_and_grad`)."""
    import jax

    x = sampler.flatten(point)
    cost = jax.jit(jax.value_and_grad(sampler.potential)).lower(x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return {"us_per_call": us_per_value_and_grad(sampler.potential, x, reps),
            "flops": cost.get("flops"), "transcendentals": cost.get("transcendentals"),
            "bytes_accessed": cost.get("bytes accessed")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, help="synthetic data of this many models (default: "
                                                "the bundled dataset)")
    ap.add_argument("--benchmarks", type=int, default=8, help="with --models")
    ap.add_argument("--tune", type=int, default=1000,
                    help="warm-up before the profiled stretch (0: the identity metric)")
    ap.add_argument("--iterations", type=int, default=40, help="NUTS iterations profiled")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/profile.json"))
    args = ap.parse_args(argv)

    dump = Path(tempfile.mkdtemp(prefix="profile-hlo-"))
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_dump_to={dump} --xla_dump_hlo_as_text")
    from bayes_densing.inference.sample import select_device, unconstrained_starts

    select_device("cpu", 1)
    import jax

    from bayes_densing import data as data_mod
    from bayes_densing.sampling import dense_nuts
    from bayes_densing.inference import bridge
    from bayes_densing.config import Config
    from bayes_densing.model.build import build_model
    from bayes_densing.run import resolved_config

    cfg = Config()
    if args.models:
        from scaling import dataset

        cfg.set("model.data_term", "off")
        data = dataset(args.models, args.benchmarks, cfg)
    else:
        data = data_mod.load(cfg)
    cfg = resolved_config(cfg, data)
    s = cfg.sampler
    s.chains, s.draws = 1, args.iterations
    model = build_model(data, cfg)
    sampler = bridge.sampler(model, s)
    start = unconstrained_starts(model, 1, s.seed, finite=sampler.finite,
                                 start=sampler.initial_point)
    eps, point = dense_nuts.INITIAL_STEP, start[0]
    metric = sampler.identity()
    if args.tune:
        t0 = time.perf_counter()
        adapted = sampler.run(start, seed=s.seed, tune=args.tune, progressbar=False)
        print(f"warm-up of {args.tune} iterations: {time.perf_counter() - t0:.1f} s", flush=True)
        eps, metric, point = adapted.step_size, adapted.metric, adapted.last[0]

    arg = sampler.per_chain(())
    keys = np.zeros((sampler.slots, 2), dtype=np.uint32)
    z = sampler.spread(sampler.flatten(point)[None])

    def started():
        """NUTS's state at the profiled stretch's start, computed: JAX dispatches
        asynchronously, and the start's Cholesky factor of the metric (O(d³), ≈ 0.5 s at 2,000
        models) would otherwise be timed with the first iterations."""
        return jax.block_until_ready(sampler.start(keys, z, eps, metric, arg))

    inputs = sampler.inputs(metric, arg)         # (the conditional metric's preconditioner)
    advance = sampler.programs(inputs)[1]              # the chunk program the fits run

    def stretch(state, da):
        """The profiled iterations from ``state``: seconds and leapfrog steps."""
        t0 = time.perf_counter()
        steps = 0
        for _ in range(sampler.n_draw):
            (state, da), out = advance(state, da, dense_nuts.FIXED, inputs)
            steps += int(np.sum(out[2]))
        jax.block_until_ready(state)
        return time.perf_counter() - t0, steps

    stretch(*started())                                  # compiled, and its caches warm
    seconds, steps = stretch(*started())
    trace = Path(tempfile.mkdtemp(prefix="profile-trace-"))
    state = started()
    with jax.profiler.trace(str(trace)):
        traced_s, traced_steps = stretch(*state)
    assert traced_steps == steps, "the profiled stretch took other steps than the timed one"
    events = kernel_events(trace)
    result = breakdown(events, op_names(dump), steps)
    grad = gradient_cost(sampler, point)
    shutil.rmtree(trace)
    shutil.rmtree(dump)          # (later compilations in this process would dump there again)
    step_us = seconds / steps * 1e6
    record = {
        "command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "jax": jax.__version__,
        "data": data.source, "n_obs": len(data.obs), "parameters": sampler.d,
        "tune": args.tune, "iterations": args.iterations, "leapfrog_steps": steps,
        "step_us": step_us, "traced_step_us": traced_s / steps * 1e6,
        "gradient": grad, "step_over_gradient": step_us / grad["us_per_call"], **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"{steps} leapfrog steps: {step_us:.0f} µs each untimed by the profiler "
          f"({record['traced_step_us']:.0f} µs under it); the value-and-gradient alone "
          f"{grad['us_per_call']:.0f} µs ({grad['flops']:.3g} flops, "
          f"{grad['transcendentals']:.3g} transcendentals, {grad['bytes_accessed']:.3g} bytes)")
    print(f"kernel time per step under the profiler: {result['kernel_ns_per_step'] / 1e3:.0f} µs")
    for p, v in result["parts"].items():
        print(f"  {p:28s} {v['share']:6.1%} of the kernels' time, "
              f"{v['kernels_per_step']:.0f} kernels per step")
    for row in result["primitives"][:15]:
        print(f"    {row['part']:28s} {row['primitive']:24s} {row['share']:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
