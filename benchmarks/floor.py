"""The floor: the default model written directly in NumPyro (no PyMC graph), to see how much
the PyMC → JAX route costs.

    python benchmarks/floor.py --check          # same log density as PyMC's, at random points
    python benchmarks/floor.py --gradient       # µs per gradient: PyMC's jaxified vs this one
    python benchmarks/floor.py --sample         # 4 chains × (1000 + 1000), NumPyro NUTS

Only the default configuration (frontier trend, sheared targets, beta-binomial, fixed ceiling,
score-only, data term off or on, target offsets on or off) is written here. The curves, the loss law and the likelihood
come from ``bayes_densing.model.build``/``laws`` with ``xp = jax.numpy``, so the formulas are still
written once; the priors are restated from ``model.build_model`` and ``--check`` verifies that
the two log densities agree on the unconstrained scale.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np


def floor_model(data, config):
    """A NumPyro model function equal to ``build_model(data, config)`` for the default setup."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.stats import norm

    from bayes_densing.model import laws
    from bayes_densing.model.likelihood import betabinomial_logp, concentration_term, log_binomial, obs_concentration
    from bayes_densing.model.loss_law import data_term_on
    from bayes_densing.model.curves import score_probability

    P, M = config.priors, config.model
    assert M.trend == "frontier" and M.reparam == "shear" and M.likelihood == "betabinomial"
    assert M.ceiling == "fixed" and not data.has_loss
    targets, refs = data.targets, data.references
    t = targets.t.to_numpy(dtype=float)
    t_c = t - t.mean()
    log_n_target = np.log(targets.params.to_numpy(dtype=float))
    log_n_ref = np.log(refs.params.to_numpy(dtype=float))
    span = float(log_n_ref.max() - log_n_ref.min())
    nb, nt = len(data.benchmarks), data.n_target
    k, n = data.obs.k.to_numpy(dtype=float), data.obs.n.to_numpy(dtype=float)
    binomln = log_binomial(n, k)
    with_data_term = data_term_on(data, config)

    def model():
        z_centre = numpyro.sample("z_centre", dist.Normal(P.z_centre, P.z_centre_sd).expand([nb]))
        z_gain = numpyro.sample("z_gain", dist.HalfNormal(P.z_gain).expand([nb]))
        A = numpyro.sample("A", dist.Normal(0.0, P.slope_sd))
        B_centre = numpyro.sample("B_centre", dist.Normal(0.0, P.intercept_sd))
        sigma_v = numpyro.sample("sigma_v", dist.LogNormal(math.log(P.sigma_v), 0.5))
        sigma_u = numpyro.sample("sigma_u", dist.HalfNormal(P.sigma_u))
        omega, shape = laws.frontier_skewnormal(sigma_v, sigma_u)
        w = z_gain / span
        xi = -jnp.sum(w * z_centre) / jnp.sum(w * w)
        shifted = numpyro.sample("log_density_shifted",
                                 dist.ImproperUniform(dist.constraints.real, (), (nt,)))
        log_rho = shifted + xi
        zscore = (log_rho - laws.trend_mean(t_c, A, B_centre)) / omega
        numpyro.factor("trend_prior", jnp.sum(math.log(2.0) + norm.logpdf(zscore) - jnp.log(omega)
                                              + norm.logcdf(shape * zscore)))
        # partially non-centred, the weight following τ_α (model.exponents)
        alpha_mu = numpyro.sample("alpha_mu", dist.LogNormal(math.log(P.alpha), 0.5))
        alpha_tau = numpyro.sample("alpha_tau", dist.HalfNormal(P.alpha_tau))
        kappa = P.alpha_tau / (alpha_tau + P.alpha_tau)
        alpha_x = numpyro.sample("alpha_x", dist.Normal(jnp.log(alpha_mu) / P.alpha_tau,
                                                        1.0 / kappa).expand([nb]))
        params = {"z_centre": z_centre, "z_gain": z_gain,
                  "alpha": jnp.exp(kappa * (jnp.log(alpha_mu) + alpha_tau * alpha_x)),
                  "log_effective_size": log_rho + log_n_target}
        if M.target_offsets == "on" and nb > 1:
            raw = numpyro.sample("target_offset_raw", dist.Normal(0.0, 1.0).expand([nb]))
            params["target_offset"] = P.offset_sd * (raw - raw.mean())
        if with_data_term:
            params["b"] = numpyro.sample("b", dist.LogNormal(math.log(P.data_coef), 0.5))
            params["beta"] = numpyro.sample("beta", dist.LogNormal(math.log(P.beta), 0.3))
        phi_ref = numpyro.sample("phi_reference",
                                 dist.LogNormal(math.log(P.phi_reference), 1.0).expand([nb]))
        phi_tgt = numpyro.sample("phi_target", dist.LogNormal(math.log(P.phi), 1.0).expand([nb]))
        p, _ = score_probability(params, data, config, xp=jnp)
        phi = obs_concentration(phi_ref, phi_tgt, data, xp=jnp)
        term = concentration_term(phi_ref, phi_tgt, data, n, xp=jnp)
        numpyro.factor("correct", jnp.sum(betabinomial_logp(k, n, p, phi, binomln, term)))
        numpyro.deterministic("doubling_months", laws.doubling_time(A))

    return model


def setup(args):
    from bayes_densing.config import load_config
    from bayes_densing.data import load

    cfg = load_config(args.model).set_items(args.set).validate()
    return cfg, load(cfg, args.data)


def potentials(data, cfg):
    """PyMC's jaxified log density and the floor's, both on PyMC's unconstrained value names."""
    import jax
    from numpyro.infer.util import initialize_model
    from pymc.sampling.jax import get_jaxified_logp

    from bayes_densing.model.build import build_model

    model = build_model(data, cfg)
    names = [v.name for v in model.value_vars]
    pymc_logp = get_jaxified_logp(model)   # log p (PyMC's flag is named the other way round)
    info = initialize_model(jax.random.PRNGKey(0), floor_model(data, cfg))
    floor_pot = info.potential_fn
    # PyMC's value names carry the transform ("sigma_u_log__"); NumPyro's are the site names
    site = {n: n.rsplit("_", 3)[0] if n.endswith("__") else n for n in names}
    return model, names, pymc_logp, floor_pot, site


def check(data, cfg) -> dict:
    """Both log densities at 20 random unconstrained points: equal up to one constant."""
    import jax.numpy as jnp

    model, names, pymc_logp, floor_pot, site = potentials(data, cfg)
    start = model.initial_point()
    rng = np.random.default_rng(1)
    diffs = []
    for _ in range(20):
        point = {n: start[n] + rng.normal(0, 0.3, np.shape(start[n])) for n in names}
        a = float(pymc_logp([jnp.asarray(point[n]) for n in names]))
        b = -float(floor_pot({site[n]: jnp.asarray(point[n]) for n in names}))
        diffs.append(a - b)
    spread = float(np.ptp(diffs))
    scale = abs(float(pymc_logp([jnp.asarray(start[n]) for n in names])))
    # equal up to rounding and the libraries' own normal log-CDFs (≈ 1e-4 seen); a different
    # prior or likelihood term moves the difference by O(1) between points
    return {"constant": float(np.mean(diffs)), "spread": spread, "log_density_scale": scale,
            "equal": spread < 1e-3}


def gradient(data, cfg, reps: int = 2000) -> dict:
    """µs per value-and-gradient, PyMC's jaxified log density and the floor's, alternating."""
    import jax
    import jax.numpy as jnp

    model, names, pymc_logp, floor_pot, site = potentials(data, cfg)
    start = model.initial_point()
    x_pymc = [jnp.asarray(start[n]) for n in names]
    x_floor = {site[n]: jnp.asarray(start[n]) for n in names}
    f_pymc = jax.jit(jax.value_and_grad(lambda x: pymc_logp(x)))
    f_floor = jax.jit(jax.value_and_grad(floor_pot))
    jax.block_until_ready(f_pymc(x_pymc))
    jax.block_until_ready(f_floor(x_floor))
    times = {"pymc_jax": [], "floor": []}
    for _ in range(5):                       # alternate blocks: the machine is noisy
        for key, f, x in (("pymc_jax", f_pymc, x_pymc), ("floor", f_floor, x_floor)):
            t0 = time.perf_counter()
            for _ in range(reps // 5):
                jax.block_until_ready(f(x))
            times[key].append((time.perf_counter() - t0) / (reps // 5) * 1e6)
    out = {k: float(np.median(v)) for k, v in times.items()}
    out["ratio_pymc_over_floor"] = out["pymc_jax"] / out["floor"]
    return out


def sample(data, cfg) -> dict:
    import arviz as az
    import jax
    from numpyro.infer import MCMC, NUTS

    s = cfg.sampler
    kernel = NUTS(floor_model(data, cfg), target_accept_prob=s.target_accept)
    mcmc = MCMC(kernel, num_warmup=s.tune, num_samples=s.draws, num_chains=s.chains,
                chain_method="parallel", progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(s.seed), extra_fields=("num_steps",))
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - t0
    idata = az.from_numpyro(mcmc)
    ess_T = float(az.ess(idata, var_names=["doubling_months"])["doubling_months"])
    free = [v for v in idata.posterior.data_vars if v != "doubling_months"]
    ess = az.ess(idata, var_names=free)
    return {"wall_s": wall, "ess_doubling": ess_T, "ess_per_s_doubling": ess_T / wall,
            "min_ess_bulk": float(min(float(ess[v].min()) for v in free)),
            "divergences": int(idata.sample_stats["diverging"].sum()),
            "max_rhat": float(az.rhat(idata["posterior"].to_dataset()[free]).to_array().max()),
            "doubling_median": float(idata.posterior["doubling_months"].median()),
            "mean_leapfrog_steps": float(np.mean(mcmc.get_extra_fields()["num_steps"]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--gradient", action="store_true")
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=None, help="scores CSV (default: the bundled dataset)")
    ap.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None, help="JSON to write the numbers to")
    args = ap.parse_args(argv)

    from bayes_densing.inference.sample import select_device

    cfg, data = setup(args)
    n_dev = select_device("cpu", cfg.sampler.host_devices)
    import pymc.sampling.jax  # noqa: F401  (x64)
    import jax

    jax.config.update("jax_enable_x64", True)
    record = {"command": "python " + " ".join(sys.argv), "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "devices": n_dev,
              "data": data.describe()}
    if args.check or not (args.gradient or args.sample):
        record["check"] = check(data, cfg)
        print("log density check:", record["check"], flush=True)
    if args.gradient:
        record["gradient_us"] = gradient(data, cfg)
        print("µs per gradient:", record["gradient_us"], flush=True)
    if args.sample:
        record["sample"] = sample(data, cfg)
        print("floor sampling:", record["sample"], flush=True)
    if args.out:
        args.out.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
