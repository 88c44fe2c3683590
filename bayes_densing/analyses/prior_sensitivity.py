"""Prior sensitivity by power-scaling (Kallioinen, Paananen, Bürkner & Vehtari 2023).

Raise the prior to a power α, p(θ)^α, and see how much the posterior moves. No refit is needed:
the power-scaled posterior is the current one re-weighted by p(θ)^(α−1), with Pareto-smoothed
importance sampling (PSIS). The *sensitivity* of a quantity is the derivative at α = 1 of the
cumulative Jensen–Shannon distance between its posterior and the re-weighted one
(``arviz.psens``). Kallioinen et al. — and ArviZ's ``psens`` and the R package priorsense —
flag values ≥ 0.05 (:data:`THRESHOLD`): a quantity whose prior sensitivity reaches it is
**prior-driven** (an informative prior shapes it); below it, **likelihood-dominated**. The
likelihood's own sensitivity (power-scaling the likelihood) refines this as priorsense does:
both ≥ 0.05 is a *potential prior–data conflict*; prior ≥ 0.05 with likelihood < 0.05 a
*strong prior / weak likelihood*.

The derivative says *whether* the prior matters; to say *how much*, the doubling time's median
and claim probabilities are also reported under the prior scaled by α = 0.5 (weakened) and
α = 2 (strengthened), with PSIS's Pareto k̂ (above 0.7 the re-weighted estimate is unreliable).

What counts as prior here: the log density of every free random variable at its constrained
value, plus every ``pm.Potential`` of the model. With ``model.reparam = "shear"`` the targets'
log densities are a Flat latent whose prior — the trend — is the Potential ``trend_prior``; it
must be (and is) part of the prior, or the trend's prior would be missed entirely. (The only
Potentials that are likelihood — named ``*loglik*``, from ``build_model(..., weights=...)`` —
are not built here.) The likelihood is every observed variable, per observation.

Example (a run in memory; ``fit`` returns one)::

    from bayes_densing.analyses.prior_sensitivity import prior_sensitivity
    ps = prior_sensitivity(result.idata, result.data, result.config)
    print(ps.text())
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from bayes_densing.model import laws
from bayes_densing import results

THRESHOLD = 0.05          # Kallioinen et al. 2023; arviz.psens and priorsense use the same
ALPHAS = (0.8, 1.25)      # prior powers for the "how far does it move" check (priorsense's range)
# group-level terms: the population priors of the targets' densities and of the ln α_j
GROUP_LEVEL = ("trend_prior", "log_density", "log_density_shifted", "alpha_x")
PARETO_K_MAX = 0.7        # PSIS reliability threshold (Vehtari et al. 2024)
N_EFFECTIVE_SIZES = 3     # effective sizes reported: the targets with the highest median density


def verdict(prior_psens: float, threshold: float = THRESHOLD) -> str:
    """"prior-driven" when the prior power-scaling sensitivity is ≥ ``threshold`` (0.05, the
    threshold of Kallioinen et al. 2023 used by ``arviz.psens`` and priorsense), otherwise
    "likelihood-dominated"."""
    if not np.isfinite(prior_psens):
        return "unknown"
    return "prior-driven" if prior_psens >= threshold else "likelihood-dominated"


def diagnosis(prior_psens: float, likelihood_psens: float, threshold: float = THRESHOLD) -> str:
    """priorsense's diagnosis from both sensitivities ("-" when nothing is flagged)."""
    if prior_psens >= threshold and likelihood_psens >= threshold:
        return "potential prior-data conflict"
    if prior_psens >= threshold:
        return "potential strong prior / weak likelihood"
    return "-"


def power_scale_weights(log_prior: np.ndarray, alpha: float, strata: np.ndarray | None = None,
                        conditional: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """PSIS weights (normalised) that re-weight posterior draws to the prior power ``alpha``,
    and the Pareto k̂ of the raw weights. ``strata`` (a label per draw) and ``conditional``
    (the part of ``log_prior`` that is the prior of parameters drawn given their stratum's,
    a cut's target module): that part's weights are normalised within each stratum, so the
    strata keep their total weight (``analyses/stratified.py``)."""
    log_ratio = (alpha - 1.0) * np.asarray(log_prior, dtype=float)
    if strata is not None:
        scaled = (alpha - 1.0) * np.asarray(conditional, dtype=float)
        for label in np.unique(strata):
            at = strata == label
            log_ratio[at] -= logsumexp(scaled[at]) - math.log(at.sum())
    # ArviZ's PSIS takes what LOO gives it, a log-likelihood, and weights by its negation
    lw, k = xr.DataArray(-log_ratio, dims="sample").azstats.psislw(dim="sample")
    w = np.exp(lw.values - lw.values.max())
    return w / w.sum(), float(k)


@dataclass
class PriorSensitivity:
    """Power-scaling sensitivities of the key quantities and the doubling time's response."""

    table: pd.DataFrame             # quantity, prior, likelihood, verdict, diagnosis
    doubling: dict                  # base median / P(T ≤ m) and the same under each α, with k̂
    n_draws: int
    threshold: float = THRESHOLD
    slope: str | None = None        # the quantity that is the growth rate A (per month)
    notes: list[str] = field(default_factory=list)

    @property
    def doubling_verdict(self) -> str:
        """The verdict of the growth rate A, hence of the doubling time ln 2 / A."""
        row = self.table[self.table.quantity == self.slope]
        return verdict(float(row.prior.iloc[0])) if len(row) else "unknown"

    def to_dict(self) -> dict:
        rows = [{k: _finite_or_none(v) for k, v in r.items()} for r in self.table.to_dict("records")]
        return {"threshold": self.threshold, "n_draws": self.n_draws, "quantities": rows,
                "doubling": self.doubling, "doubling_verdict": self.doubling_verdict,
                "notes": self.notes}

    def text(self) -> str:
        lines = [f"Prior sensitivity (power-scaling, Kallioinen et al. 2023; prior-driven when "
                 f"psens ≥ {self.threshold:g}; {self.n_draws} draws):"]
        width = max([len(q) for q in self.table.quantity] + [8])
        lines.append(f"  {'quantity':<{width}}  prior   likelihood  verdict")
        for _, r in self.table.iterrows():
            extra = f"  ({r.diagnosis})" if r.diagnosis != "-" else ""
            lines.append(f"  {r.quantity:<{width}}  {r.prior:5.3f}   {r.likelihood:5.3f}       "
                         f"{r.verdict}{extra}")
        d = self.doubling
        if d:
            scaled = "; ".join(
                f"prior^{s['alpha']:g} → {_months(s['median_months'])}"
                + (f" (k̂ {s['pareto_k']:.2f}, unreliable)" if s["pareto_k"] > PARETO_K_MAX
                   else f" (k̂ {s['pareto_k']:.2f})")
                for s in d["scaled"])
            lines.append(f"Doubling time: {self.doubling_verdict} — median {_months(d['median_months'])}"
                         f"; {scaled}; largest move {d['max_shift_months']:.2f} months.")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _months(x: float) -> str:
    return "∞ (no growth)" if not np.isfinite(x) else f"{x:.2f} months"


def _finite_or_none(v):
    if isinstance(v, (float, np.floating)) and not np.isfinite(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def power_scaling(idata: xr.DataTree, var_names=None, *, slope: str | None = None,
                  prior_terms: list[str] | None = None, alphas=ALPHAS,
                  threshold: float = THRESHOLD, claims=results.CLAIMS,
                  strata: np.ndarray | None = None, conditional: list[str] = ()
                  ) -> PriorSensitivity:
    """Power-scaling sensitivity of scalar posterior quantities, on any DataTree that has
    ``posterior``, ``log_prior`` and ``log_likelihood`` groups.

    ``slope``: the name of the posterior variable that is the growth rate A per month; when
    given, the doubling time T = ln 2 / A (its median and P(T ≤ m) for each of ``claims``) is
    also reported under the prior scaled by each of ``alphas``, and its verdict is the
    doubling time's. ``prior_terms``: the ``log_prior`` variables to power-scale (default: all
    of them, the joint prior). ``strata`` (a label per flattened draw) and ``conditional``
    (the names of the prior terms of parameters drawn given their stratum's): the weights of
    those terms are normalised within each stratum (:func:`power_scale_weights`); for the
    derivatives, the caller centres them within each stratum, which does it to first order
    in α − 1, exactly at α = 1.

    >>> import numpy as np, arviz as az
    >>> rng = np.random.default_rng(0); mu = rng.normal(0.0, 0.1, (1, 2000))
    >>> idata = az.from_dict({"posterior": {"mu": mu},
    ...     "log_likelihood": {"y": -0.5 * (mu / 10.0) ** 2},      # a vague likelihood ...
    ...     "log_prior": {"mu": -0.5 * (mu / 0.1) ** 2}})          # ... and a narrow prior
    >>> power_scaling(idata, slope="mu").doubling_verdict
    'prior-driven'
    """
    prior = az.psense(idata, group="prior", var_names=var_names, group_var_names=prior_terms)
    like = az.psense(idata, group="likelihood", var_names=var_names)
    rows = []
    for name in prior.data_vars:
        p, l = float(prior[name]), float(like[name])
        rows.append({"quantity": name, "prior": p, "likelihood": l,
                     "verdict": verdict(p, threshold), "diagnosis": diagnosis(p, l, threshold)})
    table = pd.DataFrame(rows, columns=["quantity", "prior", "likelihood", "verdict", "diagnosis"])
    log_prior = idata["log_prior"].to_dataset()
    scaled_terms = list(log_prior.data_vars) if prior_terms is None else list(prior_terms)
    lp = _summed(log_prior[scaled_terms])
    given = [t for t in scaled_terms if t in conditional]
    lp_given = _summed(log_prior[given]) if given else np.zeros_like(lp)
    n = lp.size
    doubling: dict = {}
    notes: list[str] = []
    if slope is not None:
        A = np.asarray(idata.posterior[slope].transpose("chain", "draw").values,
                       dtype=float).reshape(-1)
        T = results.doubling_months(A)
        base = results.doubling_median(A, np.full(A.size, 1.0 / A.size))
        scaled = []
        for alpha in alphas:
            w, k = power_scale_weights(lp, alpha, strata, lp_given)
            scaled.append({"alpha": float(alpha), "median_months": results.doubling_median(A, w),
                           "p_leq": {f"{m:g}": float(np.sum(w * (T <= m))) for m in claims},
                           "pareto_k": k})
        shifts = [abs(s["median_months"] - base) for s in scaled]
        doubling = {"median_months": base,
                    "p_leq": {f"{m:g}": float(np.mean(T <= m)) for m in claims},
                    "scaled": scaled,
                    "max_shift_months": float(max(shifts)) if shifts else 0.0}
        if any(s["pareto_k"] > PARETO_K_MAX for s in scaled):
            notes.append(f"Pareto k̂ > {PARETO_K_MAX} for some α: the re-weighted doubling times "
                         "are indicative only (too few draws carry the weight); the psens "
                         "derivatives, taken at α = 1 ± 0.01, are unaffected")
    return PriorSensitivity(table=table, doubling=doubling, n_draws=int(n), threshold=threshold,
                            slope=slope, notes=notes)


def _summed(group: xr.Dataset) -> np.ndarray:
    """A log-density group summed over everything but (chain, draw), flattened over draws."""
    total = 0.0
    for var in group.data_vars.values():
        other = [d for d in var.dims if d not in ("chain", "draw")]
        total = total + var.sum(other)
    return np.asarray(total.transpose("chain", "draw")).reshape(-1)


# --- the densing model ---------------------------------------------------------------------------

def log_densities(idata: xr.DataTree, data, config) -> tuple[xr.Dataset, xr.Dataset]:
    """Per-draw log prior (one variable per prior term, Potentials included) and pointwise log
    likelihood (per observed variable and observation) of the model that ``config`` builds.

    Evaluated with the model's own PyTensor graph, compiled to JAX and vectorised over draws.
    """
    import jax
    import jax.numpy as jnp
    from pymc.model.transform.conditioning import remove_value_transforms
    from pymc.sampling.jax import get_jaxified_graph

    from bayes_densing.model import build as model_mod
    from bayes_densing.model.build import build_model

    model = remove_value_transforms(build_model(data, config))  # values as stored: constrained
    like_potentials = [v for v in model.potentials if "loglik" in v.name]
    prior_terms = model_mod.prior_terms(model)
    observed = list(model.observed_RVs)
    outs = (model_mod.log_prior_terms(model)
            + [model.logp(vars=[v], sum=False)[0] for v in observed]
            + [model.logp(vars=[v], sum=True) for v in like_potentials])
    fn = get_jaxified_graph(inputs=model.value_vars, outputs=outs)
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    inputs = []
    for value in model.value_vars:
        x = post[value.name].values
        inputs.append(jnp.asarray(x.reshape((nc * nd,) + x.shape[2:]), dtype=value.dtype))
    evaluated = jax.vmap(lambda *xs: fn(*xs))(*inputs)
    evaluated = [np.asarray(e) for e in evaluated]
    coords = {"chain": post.chain.values, "draw": post.draw.values}
    log_prior = xr.Dataset({v.name: (("chain", "draw"), evaluated[i].reshape(nc, nd))
                            for i, v in enumerate(prior_terms)}, coords=coords)
    log_lik = {}
    for j, v in enumerate(observed):
        e = evaluated[len(prior_terms) + j]
        dim = f"{v.name}_dim_0" if v.name != "correct" else "obs"
        log_lik[v.name] = (("chain", "draw", dim), e.reshape(nc, nd, -1))
    for j, v in enumerate(like_potentials):
        log_lik[v.name] = (("chain", "draw"),
                           evaluated[len(prior_terms) + len(observed) + j].reshape(nc, nd))
    return log_prior, xr.Dataset(log_lik, coords=coords)


def quantities(idata: xr.DataTree, data, config,
               n_sizes: int = N_EFFECTIVE_SIZES) -> dict[str, np.ndarray]:
    """The scalar quantities whose sensitivity is reported, each with shape (chain, draw):
    the slope A per month (for ``envelope``: the per-draw envelope OLS slope, which may be NaN),
    B, the trend's σ's, the changepoint's slopes and ratio, the loss law's shared α, and the
    log effective size of the ``n_sizes`` targets with the highest median density."""
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    out: dict[str, np.ndarray] = {}
    if config.model.trend == "envelope":
        t = data.targets.t.to_numpy(dtype=float)
        A, _ = laws.envelope_trend(t, results.draws(idata, "log_density"))
        out["A_per_month"] = np.asarray(A, dtype=float).reshape(nc, nd)
    else:
        out["A_per_month"] = post["A"].values
    for name in ("B", "sigma_v", "sigma_u", "sigma", "A_before", "slope_ratio", "alpha_mu"):
        if name in post:
            out[name] = post[name].values
    eta = post["log_effective_size"]
    rho = results.draws(idata, "log_density")
    names = [str(m) for m in eta["target"].values] if "target" in eta.coords else None
    for i in np.argsort(-np.median(rho, axis=0))[:n_sizes]:
        label = names[i] if names else str(i)
        out[f"log_effective_size[{label}]"] = eta.values[:, :, i]
    return out


def prior_sensitivity(idata: xr.DataTree, data, config, *, prior_terms=None,
                      alphas=ALPHAS, threshold: float = THRESHOLD) -> PriorSensitivity:
    """Power-scaling prior (and likelihood) sensitivity of a densing run.

    ``idata``, ``data`` and ``config`` as in :class:`bayes_densing.run.FitResult` (use the
    result's own ``config``: it records the dataset defaults that were applied). Draws where
    the envelope slope is undefined (a single model on the envelope) are left out.

    ``prior_terms``: names of the prior terms to power-scale (free variables and Potentials),
    ``"all"`` for the joint prior, or None (default) for the top-level priors: everything but
    the group-level terms of :data:`GROUP_LEVEL` — the trend's population prior over the targets
    and the α_j's around α_μ. As brms/priorsense do, group-level terms are not scaled: scaling
    a population prior over 100 latents moves the posterior by construction (on the bundled
    data it flagged every quantity, with Pareto k̂ 1.3–2.3), which says nothing about the
    choices a user makes (slope, intercept and scale priors).
    """
    strata_labels, conditional = None, ()
    if config.model.curves == "cut":
        from bayes_densing.analyses.stratified import Strata, centred_densities

        strata = Strata(data, config)
        log_prior, log_lik, conditional = centred_densities(strata)
        idata = strata.idata
        strata_labels = np.repeat(np.arange(strata.shape[0]), strata.shape[1])
    else:
        log_prior, log_lik = log_densities(idata, data, config)
    if prior_terms is None:
        prior_terms = [v for v in log_prior.data_vars if v not in GROUP_LEVEL]
    elif prior_terms == "all":
        prior_terms = None
    q = quantities(idata, data, config)
    keep = np.all([np.isfinite(v.reshape(-1)) for v in q.values()], axis=0)
    n_all = keep.size
    # a DataTree's variable names may not hold "/", which model names often do (org/name)
    label = {k.replace("/", "\N{DIVISION SLASH}"): k for k in q}
    posterior = xr.Dataset({safe: (("chain", "draw"), q[k].reshape(1, -1)[:, keep])
                            for safe, k in label.items()})

    def flat(ds: xr.Dataset) -> xr.Dataset:
        out = {}
        for name, var in ds.data_vars.items():
            var = var.transpose("chain", "draw", ...)
            x = var.values
            out[name] = (var.dims, x.reshape((1, -1) + x.shape[2:])[:, keep])
        return xr.Dataset(out)

    scaled = xr.DataTree.from_dict({"posterior": posterior, "log_prior": flat(log_prior),
                                    "log_likelihood": flat(log_lik)})
    if prior_terms is not None:
        unknown = [t for t in prior_terms if t not in log_prior]
        if unknown:
            raise ValueError(f"prior_terms {', '.join(unknown)} not in the model's prior terms: "
                             f"{', '.join(log_prior.data_vars)}")
    ps = power_scaling(scaled, slope="A_per_month", prior_terms=prior_terms, alphas=alphas,
                       threshold=threshold, conditional=conditional,
                       strata=None if strata_labels is None else strata_labels[keep])
    ps.table["quantity"] = ps.table.quantity.map(label)
    if strata_labels is not None:
        ps.notes.append(f"cut run: {keep.sum()} draws, several given each of "
                        f"{len(np.unique(strata_labels))} curve draws; the target module's "
                        "prior terms are scaled within each curve draw, the curves' over all")
    if keep.sum() < n_all:
        ps.notes.append(f"{n_all - keep.sum()} of {n_all} draws left out (undefined envelope slope)")
    ps.notes.append("prior terms power-scaled: "
                    + ", ".join(str(v) for v in (prior_terms or log_prior.data_vars)))
    return ps
