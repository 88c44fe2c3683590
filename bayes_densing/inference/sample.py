"""Sampling: NUTS through PyMC with NumPyro (default), BlackJAX, nutpie or PyMC's own sampler.

Also the device (CPU/GPU), the chain method, seeds, and the convergence diagnostics computed
with ArviZ (R-hat, bulk/tail ESS, divergences, E-BFMI).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from bayes_densing.config import SamplerConfig

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3


class SamplerError(RuntimeError):
    """The requested sampler or device cannot be used here; the message says why and what to do."""


CACHE_ENV = "BAYES_DENSING_JAX_CACHE"    # a directory, or "off"
CACHE_MAX_BYTES = 2 ** 30                # least recently used entries go beyond 1 GiB


def cpu_fingerprint() -> str:
    """12 hex digits naming this machine's CPU features: XLA:CPU builds for the features of
    the CPU it compiles on and rejects a cached program built for others, so workers of a
    cluster with mixed CPUs keep separate caches (the architecture and the feature flags of
    /proc/cpuinfo; elsewhere the processor's name)."""
    import hashlib
    import platform

    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    flags = " ".join(sorted(value.split()))
                    break
    except OSError:
        flags = platform.processor()
    return hashlib.sha256(f"{platform.machine()} {flags}".encode()).hexdigest()[:12]


def cache_key() -> str:
    """The persistent cache's subdirectory: jaxlib's version and :func:`cpu_fingerprint`."""
    import jaxlib

    return f"jaxlib-{jaxlib.__version__}-cpu-{cpu_fingerprint()}"


def enable_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache, so that a model of the same shapes and
    sampler settings is compiled once per machine, not once per run (benchmarks/README.md).

    The cache lives in ``$BAYES_DENSING_JAX_CACHE`` (``off`` turns it off), else
    ``$XDG_CACHE_HOME/bayes-densing/jax`` or ``~/.cache/bayes-densing/jax``, in a subdirectory
    of jaxlib's version and the CPU's features (:func:`cache_key`: workers of a cluster may
    share the directory); a directory the user already gave JAX (``JAX_COMPILATION_CACHE_DIR``)
    is kept. JAX keys each entry on the program, the compile options, its own version and the
    device, so a hit runs the same code. Returns the directory, or None when off.
    """
    import jax

    where = os.environ.get(CACHE_ENV)
    if where is not None and where.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    if where is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = os.path.join(base, "bayes-densing", "jax")
    where = os.path.join(where, cache_key())
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    return where


def select_device(device: str, host_devices: int | None = None) -> int:
    """Point JAX at ``device`` ("cpu" or "gpu") and return how many such devices it sees;
    turns on the compilation cache.

    On the CPU, JAX gets ``host_devices`` XLA host devices (the callers pass one per chain,
    ``sampler.cpu_devices`` to override; JAX runs each device's work in its own thread).
    PyMC asks for 100 when it is imported, and XLA's CPU runtime then spends more on every
    small operation (benchmarks/README.md, "Host devices"). Must run before JAX creates its backends (i.e.
    before the first sampling call); later calls keep the devices the first one made.
    """
    import jax

    enable_compilation_cache()

    if device == "gpu":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        if not gpus:
            raise SamplerError("--device gpu: JAX sees no GPU here (install jax[cuda12] on a machine "
                               "with an NVIDIA GPU, or use --device cpu)")
        return len(gpus)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        jax.config.update("jax_platforms", "cpu")
        if host_devices:
            jax.config.update("jax_num_cpu_devices", int(host_devices))
    except RuntimeError:  # backends already initialised: keep going on what is there
        pass
    return jax.local_device_count()


def chain_method(cfg: SamplerConfig, n_devices: int) -> str:
    """How NumPyro runs the chains.

    CPU: "parallel" — each chain on its own XLA host device (``select_device``), in its own
    thread: vectorised NUTS advances every chain to the longest trajectory among them
    (benchmarks/README.md).
    GPU: "parallel" when there is a GPU per chain, else "vectorized" (chains batched on one).
    """
    if cfg.chain_method != "auto":
        return cfg.chain_method
    if cfg.device == "cpu":
        return "parallel"
    return "parallel" if n_devices >= cfg.chains else "vectorized"


@dataclass
class SampleResult:
    idata: xr.DataTree
    wall_s: float
    sampling_s: float | None
    chain_method: str
    mass_matrix: str = "-"     # numpyro: "dense", "conditional" or "diag"; others: their own


JITTER = 0.5


def unconstrained_starts(model: pm.Model, chains: int, seed: int, radius: float = JITTER,
                         tries: int = 20, finite=None, start: dict | None = None) -> list[dict]:
    """One starting point per chain on the unconstrained scale (keyed by PyMC's value-variable
    names): the model's prior-based point, jittered by ±radius, with a finite log density and
    gradient. ``finite``: a function of such a point that says so (default: the jaxified log
    density and its gradient, compiled here). ``start``: the model's initial point when the
    caller has it already (``dense_nuts.Sampler.initial_point``; PyMC computes it anew at
    every call).

    PyMC jitters by ±1, which on this model can start a chain with a trend slope of ~1 per
    month (doubling in three weeks) against data that say ~0.1; such a chain's step size
    collapsed during warm-up and it never moved (seen on the bundled data, seed 0).
    """
    rng = np.random.default_rng([seed, 0xD0])
    start = model.initial_point() if start is None else start
    names = [v.name for v in model.value_vars]
    if finite is None:
        finite = _finite_log_density(model, names)
    points = []
    for _ in range(chains):
        for _ in range(tries):
            point = {n: np.asarray(start[n] + rng.uniform(-radius, radius, np.shape(start[n])))
                     for n in names}
            if finite(point):
                break
        else:
            point = {n: np.asarray(start[n]) for n in names}
        points.append(point)
    return points


def _finite_log_density(model: pm.Model, names: list[str]):
    """point → whether the model's log density and its gradient are finite there."""
    import jax
    from pymc.sampling.jax import get_jaxified_logp

    logp = get_jaxified_logp(model, negative_logp=False)  # the function the samplers use
    value_and_grad = jax.jit(jax.value_and_grad(logp))

    def finite(point: dict) -> bool:
        value, grad = value_and_grad([point[n] for n in names])
        return bool(np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grad))
    return finite


def initial_points(model: pm.Model, chains: int, seed: int, radius: float = JITTER,
                   tries: int = 20) -> list[dict]:
    """:func:`unconstrained_starts` on the variables' own scale (PyMC's ``initvals``)."""
    from pymc.sampling.jax import get_jaxified_graph

    names = [v.name for v in model.value_vars]
    free = [rv.name for rv in model.free_RVs]
    outputs = [v for v in model.unobserved_value_vars if v.name in free]
    constrained = get_jaxified_graph(inputs=model.value_vars, outputs=outputs)
    return [{v.name: np.asarray(x) for v, x in zip(outputs, constrained(*[p[n] for n in names]))}
            for p in unconstrained_starts(model, chains, seed, radius, tries)]


def sample(model: pm.Model, cfg: SamplerConfig, *, progressbar: bool = True) -> SampleResult:
    """Run NUTS on ``model`` with the sampler, device, chains and seed of ``cfg``."""
    n_devices = select_device(cfg.device, cfg.host_devices)
    method = chain_method(cfg, n_devices)
    metric = cfg.mass_matrix if cfg.sampler == "numpyro" else "-"
    if metric not in ("diag", "-"):      # auto, dense or conditional: dense_nuts.py
        from bayes_densing.inference import bridge

        start = time.perf_counter()
        sampler = bridge.sampler(model, cfg, parallel=method == "parallel")
        # checked by the program that starts the chains: no separate compile
        starts = unconstrained_starts(model, cfg.chains, cfg.seed, finite=sampler.finite,
                                      start=sampler.initial_point)
        idata, seconds = bridge.run(model, sampler, starts, progressbar=progressbar)
        return SampleResult(idata=idata, wall_s=time.perf_counter() - start, sampling_s=seconds,
                            chain_method=method, mass_matrix=sampler.layout)
    kwargs: dict = {"initvals": initial_points(model, cfg.chains, cfg.seed)}
    if cfg.sampler == "numpyro":
        kwargs["nuts_sampler_kwargs"] = {"chain_method": method, "jitter": False}
    elif cfg.sampler == "blackjax":
        _require("blackjax")
        _require_blackjax_bridge()
        kwargs["nuts_sampler_kwargs"] = {"chain_method": method, "jitter": False}
    elif cfg.sampler == "nutpie":
        _require("nutpie")
        # PyMC 6 gives nutpie one starting point for all chains (nutpie jitters around it)
        kwargs["initvals"] = kwargs["initvals"][0]
    else:
        kwargs["cores"] = min(cfg.chains, os.cpu_count() or 1)
        kwargs["init"] = "adapt_diag"  # our jittered points, no further jitter
    start = time.perf_counter()
    idata = pm.sample(draws=cfg.draws, tune=cfg.tune, chains=cfg.chains,
                      target_accept=cfg.target_accept, random_seed=cfg.seed,
                      nuts_sampler=cfg.sampler, progressbar=progressbar,
                      compute_convergence_checks=False, model=model, **kwargs)
    idata["log_prior"] = log_prior_group(model, idata["posterior"].to_dataset())
    wall = time.perf_counter() - start
    sampling = idata.posterior.attrs.get("sampling_time")
    return SampleResult(idata=idata, wall_s=wall, sampling_s=float(sampling) if sampling else None,
                        chain_method=method if cfg.sampler in ("numpyro", "blackjax") else "-",
                        mass_matrix=metric)


def log_prior_group(model: pm.Model, posterior: xr.Dataset) -> xr.Dataset:
    """The ``log_prior`` group of draws on the variables' own scale (what PyMC's samplers
    return): each of ``build.prior_terms``' log density per draw, by a jaxified graph of the
    model without its transforms. (The default sampler computes the same terms with its
    draws' program: ``bridge.posterior_function``.)"""
    import jax
    from pymc.model.transform.conditioning import remove_value_transforms
    from pymc.sampling.jax import get_jaxified_graph

    from bayes_densing.model.build import log_prior_terms, prior_terms

    plain = remove_value_transforms(model)
    graph = get_jaxified_graph(inputs=plain.value_vars, outputs=log_prior_terms(plain))
    batched = jax.jit(jax.vmap(jax.vmap(graph)))
    values = batched(*[posterior[v.name].transpose("chain", "draw", ...).values.astype(v.dtype)
                       for v in plain.value_vars])
    return xr.Dataset({v.name: (("chain", "draw"), np.asarray(x))
                       for v, x in zip(prior_terms(plain), values)},
                      coords={"chain": posterior.chain, "draw": posterior.draw})


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise SamplerError(f"--sampler {module} needs the {module} package: "
                           "pip install 'bayes-densing[samplers]'") from None


def _require_blackjax_bridge() -> None:
    """PyMC's BlackJAX bridge passes ``progress_bar`` to ``window_adaptation``, which BlackJAX
    1.3 and later reject with a TypeError deep inside the sampler: say so up front."""
    from importlib.metadata import version

    found = version("blackjax")
    major_minor = tuple(int(x) for x in found.split(".")[:2] if x.isdigit())
    if major_minor >= (1, 3):
        raise SamplerError(f"--sampler blackjax: BlackJAX {found} does not work with PyMC's "
                           "sampler bridge; pip install 'blackjax>=1.2,<1.3' (or use --sampler numpyro)")


def problems(d: dict) -> list[str]:
    """The thresholds, in plain language: one line per failed check of the numbers in ``d``
    (the keys of :func:`diagnose`'s result; a missing number fails nothing)."""
    g = lambda key, default: default if d.get(key) is None else float(d[key])
    found = []
    bad = d.get("non_finite_chains") or []
    if bad:
        names = list(d.get("non_finite_vars") or [])
        shown = ", ".join(names[:5]) + (f", … ({len(names)} variables)" if len(names) > 5 else "")
        found.append(f"non-finite draws in chain{'s' if len(bad) > 1 else ''} "
                     f"{', '.join(str(c) for c in bad)} ({shown}): the sampler failed; "
                     "re-run with more --tune")
    if g("divergences", 0):
        found.append(f"{int(g('divergences', 0))} divergent transitions")
    if g("max_rhat", math.nan) > RHAT_MAX:
        found.append(f"max R-hat {g('max_rhat', math.nan):.3f} > {RHAT_MAX} "
                     f"({d.get('max_rhat_var', '')})")
    eb, et = g("min_ess_bulk", math.inf), g("min_ess_tail", math.inf)
    if min(eb, et) < ESS_MIN:
        which = d.get("min_ess_bulk_var" if eb <= et else "min_ess_tail_var", "")
        found.append(f"min ESS {min(eb, et):.0f} < {ESS_MIN} ({which})")
    if g("min_bfmi", math.nan) < BFMI_MIN:
        found.append(f"E-BFMI {g('min_bfmi', math.nan):.2f} < {BFMI_MIN}")
    return found


ONE_CHAIN = ("R-hat is not computed with one chain: it compares chains, so run --chains 2 or "
             "more to check that independent chains agree")


def rhat_text(d: dict) -> str:
    """Max R-hat as the summary and report print it: the number, or why there is none."""
    if d.get("chains") == 1:
        return "n/a (one chain)"
    r = d.get("max_rhat")
    return "n/a" if r is None or (isinstance(r, float) and math.isnan(r)) else f"{float(r):.3f}"


def conditional_bfmi(inner_energy: np.ndarray) -> np.ndarray:
    """E-BFMI of each chain's conditional runs (chain, run, inner step; the cut, ``cut.py``),
    pooled over its runs: the energy's squared changes over its variance, both within each
    run (consecutive runs sample different conditional distributions)."""
    e = np.asarray(inner_energy, dtype=float)
    changes = np.sum(np.diff(e, axis=-1) ** 2, axis=(1, 2))
    spread = np.sum((e - e.mean(axis=-1, keepdims=True)) ** 2, axis=(1, 2))
    return changes / spread


def diagnose(idata: xr.DataTree, var_names: list[str]) -> dict:
    """Convergence diagnostics over the sampled parameters, with ArviZ.

    Returns max R-hat, min bulk and tail ESS (and which parameter), divergences, min E-BFMI,
    the chains with non-finite draws in any posterior variable and those variables, and a list
    of plain-language problems (empty when all thresholds are met).
    """
    posterior = idata["posterior"].to_dataset()
    post = posterior[var_names]
    n_chains = posterior.sizes["chain"]
    # a chain with NaN or inf draws has failed, whatever R-hat and ESS say (they skip NaNs)
    finite = {v: np.isfinite(x.values.astype(float)).reshape(n_chains, -1).all(axis=1)
              for v, x in posterior.data_vars.items()}
    bad_chains = [c for c in range(n_chains) if not all(ok[c] for ok in finite.values())]
    bad_vars = [v for v, ok in finite.items() if not ok.all()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # NaN draws: NaN diagnostics, said below
        rhat = az.rhat(post)
        ess_bulk = az.ess(post, method="bulk")
        ess_tail = az.ess(post, method="tail")

    def extreme(ds, fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN variable
            vals = {v: float(fn(ds[v].values)) for v in ds.data_vars}
        known = {k: x for k, x in vals.items() if not math.isnan(x)}
        if not known:              # every draw non-finite: no number, the problem says why
            return math.nan, ""
        worst = fn(np.array(list(known.values())))
        name = next(k for k, x in known.items() if x == worst)
        return float(worst), name

    r, r_var = extreme(rhat, np.nanmax)
    eb, eb_var = extreme(ess_bulk, np.nanmin)
    et, et_var = extreme(ess_tail, np.nanmin)
    stats = idata["sample_stats"].to_dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    # the cut's curve fit (cut.py): its divergent transitions count too
    divergences += int(posterior.attrs.get("curve_divergences", 0))
    try:
        min_bfmi = float(conditional_bfmi(stats["inner_energy"].values).min()
                         if "inner_energy" in stats else az.bfmi(stats)["energy"].min())
    except (KeyError, ValueError, TypeError):
        min_bfmi = float("nan")
    out = {"max_rhat": r, "max_rhat_var": r_var, "min_ess_bulk": eb, "min_ess_bulk_var": eb_var,
           "min_ess_tail": et, "min_ess_tail_var": et_var, "divergences": divergences,
           "min_bfmi": min_bfmi, "chains": n_chains, "draws": posterior.sizes["draw"],
           "non_finite_chains": bad_chains, "non_finite_vars": bad_vars}
    out["problems"] = problems(out)
    out["notes"] = [ONE_CHAIN] if n_chains == 1 else []
    if "tree_depth" in stats:
        out["mean_tree_depth"] = float(stats["tree_depth"].mean())
    if "n_steps" in stats:
        out["mean_leapfrog_steps"] = float(stats["n_steps"].mean())
    return out
