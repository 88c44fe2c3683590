"""Between the PyMC model and the sampling package: the model's log density as the JAX function
the sampler takes (:func:`log_density`, :func:`sampler`), and the sampler's draws back as the
model's ArviZ DataTree (:func:`to_inferencedata`). The sampling package itself knows neither
PyMC nor ArviZ."""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from bayes_densing.model.trend import resolve_change_date
from bayes_densing.sampling import dense_nuts
from bayes_densing.sampling.density import LogDensity


def log_density(model, inputs=(), parameters: list[str] | None = None,
                initial_point: dict | None = None) -> LogDensity:
    """``model``'s joint log density as a :class:`LogDensity` of its value variables (only
    those named in ``parameters``, when given: the others must be among ``inputs``, as the
    cut's target module moves given the curves) and of the PyTensor variables ``inputs``.
    ``initial_point``: the model's, where PyMC cannot compute it (priors that are inputs)."""
    from pymc.sampling.jax import get_jaxified_graph

    moved = [v for v in model.value_vars if parameters is None or v.name in parameters]
    point = model.initial_point() if initial_point is None else initial_point
    graph = get_jaxified_graph(inputs=moved + list(inputs), outputs=[model.logp()])
    latent = frozenset(
        v.name for v in moved
        if "target" in (model.named_vars_to_dims.get(model.values_to_rvs[v].name) or ()))
    return LogDensity(logp=lambda *values: graph(*values)[0],
                      names=tuple(v.name for v in moved),
                      initial_point={v.name: point[v.name] for v in moved}, latent=latent)


def bulk_ess(chains: np.ndarray) -> np.ndarray:
    """ArviZ's bulk ESS of draws (chain, draw, d) → (d,)."""
    return np.asarray(az.ess(np.asarray(chains), method="bulk"))


def sampler(model, cfg, *, inputs=(), parameters: list[str] | None = None,
            parallel: bool = True, initial_point: dict | None = None) -> dense_nuts.Sampler:
    """The default sampler (:class:`dense_nuts.Sampler`) of ``model``'s :func:`log_density`,
    its conditional metric weighing windows by ArviZ's bulk ESS."""
    return dense_nuts.Sampler(log_density(model, inputs, parameters, initial_point), cfg,
                              parallel=parallel, ess=bulk_ess)


def run(model, sampler: dense_nuts.Sampler, starts: list[dict], *,
        progressbar: bool = True) -> tuple[xr.DataTree, float]:
    """One fit of ``model`` by its ``sampler`` from the unconstrained ``starts`` (one dict per
    chain), with the sampler's settings. Returns the DataTree (posterior of the free
    variables and the deterministics, sample stats, observed data) and the seconds spent
    sampling."""
    cfg = sampler.cfg
    draws = sampler.run(starts, seed=cfg.seed, progressbar=progressbar)
    idata = to_inferencedata(model, draws.z, draws.stats)
    idata.posterior.attrs["sampling_time"] = draws.seconds
    idata.posterior.attrs["mass_matrix"] = (f"{sampler.layout}, windowed warm-up "
                                            "(bayes_densing.sampling.dense_nuts)")
    return idata, draws.seconds


def posterior_function(model, inputs=()):
    """A jitted function of unconstrained draws (chain, draw, ...) and the ``inputs``' values
    → (the free variables on their own scale and the deterministics, by name; the log density
    of each prior term, by name: ``build.prior_terms``). One program for both, compiled once."""
    import jax
    from pymc.sampling.jax import get_jaxified_graph

    from bayes_densing.model.build import log_prior_terms, prior_terms

    names = [v.name for v in model.value_vars]
    free = {rv.name for rv in model.free_RVs} | {d.name for d in model.deterministics}
    outputs = [v for v in model.unobserved_value_vars if v.name in free]
    terms = [v.name for v in prior_terms(model)]
    graph = get_jaxified_graph(inputs=model.value_vars + list(inputs),
                               outputs=outputs + log_prior_terms(model))
    axes = (0,) * len(names) + (None,) * len(inputs)
    batched = jax.jit(jax.vmap(jax.vmap(graph, in_axes=axes), in_axes=axes))

    def values(z: dict, args=()) -> tuple[dict, dict]:
        out = batched(*[z[n] for n in names], *[np.asarray(a, dtype=float) for a in args])
        out = [np.asarray(x) for x in out]
        return ({v.name: x for v, x in zip(outputs, out)},
                dict(zip(terms, out[len(outputs):])))
    return values


def to_inferencedata(model, z: dict, stats: dict, *, posterior=None, args=(),
                     observed: bool = True) -> xr.DataTree:
    """Unconstrained draws ``z`` (chain, draw, ...) → DataTree with PyMC's names, coords
    and dims: the free variables on their own scale, the deterministics, the sample stats, the
    log prior (one variable per prior term) and (``observed``) the observed data.
    ``posterior``: a :func:`posterior_function` of the model to reuse, with its inputs' values
    ``args``."""
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_observations

    values, log_prior = (posterior or posterior_function(model))(z, args)
    coords, dims = coords_and_dims_for_inferencedata(model)
    obs = ({k: np.asarray(v) for k, v in find_observations(model).items()} if observed else None)
    groups = {"posterior": values, "sample_stats": stats}
    if obs:
        groups["observed_data"] = obs
    tree = az.from_dict(groups, coords=coords, dims=dims)
    # every fit's draws pass here: a marginalised change date gets its per-draw date once
    tree["posterior"] = resolve_change_date(tree["posterior"].to_dataset())
    post = tree["posterior"]    # each term summed over its elements: no dims of the variable's
    tree["log_prior"] = xr.Dataset({k: (("chain", "draw"), v) for k, v in log_prior.items()},
                                   coords={"chain": post["chain"], "draw": post["draw"]})
    return tree
