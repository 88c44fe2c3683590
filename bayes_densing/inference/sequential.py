"""Tasks without reference scores, anchored by a sequential cut.

A task the reference family was never scored on (a benchmark from another harness, or another
version of one: Swallow's v1 BBH) has no curve from the references. It is anchored by the
models it shares with the anchored tasks, in three stages, none of which feeds back into the
one before (docs/model.md, "Tasks without reference scores"):

1. the main fit (the cut or the joint) on the anchored tasks: their curves, every shared
   model's effective size η and the trend;
2. the unanchored tasks' curves φ given the shared models' η: p(φ | η, y_u), as the cut's
   nested MCMC (``cut.py``) over the main fit's draws, each draw's η an input;
3. the effective size of each model seen only in unanchored tasks, given each draw's curves φ
   and trend (its prior is the trend's, as in the main model), by quadrature on a grid: given
   the draw these models are independent and one-dimensional. They stay out of the trend.

``data.assemble`` checks that each unanchored task has ``MIN_SHARED_MODELS`` shared models
spanning ``MIN_SHARED_SPAN`` in size. Stages 2 and 3 are the same for either estimand.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayes_densing.inference import bridge
from bayes_densing.model import laws
from bayes_densing import results
from bayes_densing.config import Config
from bayes_densing.data import ScoreData
from bayes_densing.inference.sample import chain_method, diagnose, rhat_text, select_device, unconstrained_starts
from bayes_densing.model.curves import P_EPS, curve_parameters
from bayes_densing.model.likelihood import concentration, log_binomial, outlier_rate, score_logp
from bayes_densing.model.loss_law import exponents
from bayes_densing.model.performance import PerformanceMap

PREFIX = "unanchored_"          # the stage-2 variables' names in the run's posterior
GRID_POINTS, GRID_HALF_WIDTH = 1601, 10.0   # stage 3: ln N̂ over ln N ± 10 (ρ in e^±10)


def has_unanchored(data: ScoreData) -> bool:
    return not data.unanchored.empty


def tasks(data: ScoreData) -> list[str]:
    return sorted(data.unanchored.benchmark.unique())


def shared_models(data: ScoreData) -> list[str]:
    """The targets with an effective size from the anchored tasks and a score on an
    unanchored one, in the main fit's order of targets."""
    seen = set(data.unanchored.model[data.unanchored.shared])
    return [m for m in data.targets.model if m in seen]


def only_unanchored(data: ScoreData) -> pd.DataFrame:
    """The models seen only in unanchored tasks: one row each (model, family, params, t,
    release_date), by date."""
    u = data.unanchored[~data.unanchored.shared]
    return (u.drop_duplicates("model")[["model", "family", "params", "t", "release_date"]]
            .sort_values(["release_date", "model"], ignore_index=True))


def task_chance(data: ScoreData) -> np.ndarray:
    u = data.unanchored.drop_duplicates("benchmark").set_index("benchmark")
    return u.chance.loc[tasks(data)].to_numpy(dtype=float)


def task_probability(params, x, bj, chance, anchors, d0: float, xp=pt):
    """Expected score of a model of log effective size ``x`` on unanchored task ``bj``: the
    curves of ``curves.curve_parameters`` with the shared models' sizes ``anchors`` in place
    of the reference sizes (only their range and centre matter, as the parametrisation's
    anchors) and every model at D0 (the data term, the same for all of them, is absorbed by
    the curves' level)."""
    coefs, l, gamma, c = curve_parameters(params, anchors, chance, d0, xp)
    def per(v):
        return v[..., bj]
    L = laws.loss_law(xp.exp(x), d0, a=1.0, alpha=per(coefs["alpha"]), b=0.0, beta=1.0)
    p = laws.performance(L, per(c), per(gamma), per(l), np.asarray(chance)[bj])
    return xp.clip(p, P_EPS, 1.0 - P_EPS)


def anchors(idata: xr.DataTree, data: ScoreData) -> np.ndarray:
    """The shared models' posterior-median effective sizes (billions): the curves' anchors."""
    eta = idata.posterior["log_effective_size"].sel(target=shared_models(data))
    return np.exp(eta.median(("chain", "draw")).values)


def anchoring_model(data: ScoreData, config: Config, sizes: np.ndarray):
    """Stage 2's model: the unanchored tasks' curves given the shared models' η, an input.
    Returns ``(model, eta_input)``. Priors as the main model's curves and targets' φ."""
    P, M = config.priors, config.model
    u = data.unanchored[data.unanchored.shared]
    names, order = tasks(data), shared_models(data)
    bj = u.benchmark.map({t: j for j, t in enumerate(names)}).to_numpy()
    mi = u.model.map({m: i for i, m in enumerate(order)}).to_numpy()
    k, n = u.k.to_numpy(dtype=float), u.n.to_numpy(dtype=float)
    binomln = log_binomial(n, k)
    eta = pt.vector("shared_log_effective_size")
    with pm.Model(coords={"benchmark": names}) as model:
        curves = PerformanceMap(M.ceiling)
        # in the order the model created them before (the sampler's vector is laid out by it)
        params = {**curves.anchors(P), "alpha": exponents(P, len(names)), **curves.ceilings(P)}
        phi = concentration(P, "phi_target", reference=False)
        p = task_probability(params, eta[mi], bj, task_chance(data), sizes, M.d0)
        outliers = ((outlier_rate(P, "outlier_rate_target"), P.outlier_phi)
                    if M.likelihood == "robust" else None)
        pm.Potential("loglik", pt.sum(score_logp(k, n, p, phi[bj], binomln, outliers)))
    return model, eta


@dataclasses.dataclass
class Anchored:
    """What stages 2 and 3 add: the stage-2 posterior (variables prefixed ``unanchored_``,
    dimension ``unanchored_task``) and the effective sizes of the models seen only in
    unanchored tasks (``unanchored_log_effective_size``/``_log_density``, dimension
    ``unanchored_model``), both (chain, draw) as the main fit's; and stage 2's diagnostics."""

    posterior: xr.Dataset
    diagnostics: dict


def anchor(idata: xr.DataTree, data: ScoreData, config: Config) -> Anchored:
    """Stages 2 and 3 after the main fit ``idata`` (module docstring)."""
    from bayes_densing.inference.cut import CONDITIONAL_STEP, inner_tune

    s = config.sampler
    sizes = anchors(idata, data)
    model, eta_in = anchoring_model(data, config, sizes)
    parallel = chain_method(s, select_device(s.device, s.host_devices)) == "parallel"
    sampler = bridge.sampler(model, s, inputs=[eta_in], parallel=parallel)
    eta = idata.posterior["log_effective_size"].sel(target=shared_models(data)).values
    centre = (np.median(eta.reshape(-1, eta.shape[-1]), axis=0),)
    starts = unconstrained_starts(model, s.chains, s.seed,
                                  finite=lambda point: sampler.finite(point, centre))
    warm = sampler.run(starts, centre, seed=s.seed + 5, warmup_only=True, tune=inner_tune(s),
                       progressbar=False)
    warm = dataclasses.replace(warm, step_size=warm.step_size * CONDITIONAL_STEP)
    draws = sampler.conditional_runs(warm, (eta,), s.inner_steps, seed=s.seed + 6,
                                     progressbar=False)
    tree = bridge.to_inferencedata(model, draws.z, draws.stats, observed=False, args=centre,
                                   posterior=bridge.posterior_function(model, [eta_in]))
    stage2 = tree.posterior.to_dataset()
    diagnostics = diagnose(tree, [rv.name for rv in model.free_RVs])
    stage2 = stage2.rename({v: PREFIX + v for v in stage2.data_vars})
    stage2 = stage2.rename({"benchmark": "unanchored_task"})
    stage3 = _only_unanchored_sizes(idata, stage2, data, config, sizes, s.seed)
    post = xr.merge([stage2, stage3]) if stage3 is not None else stage2
    return Anchored(post.assign_coords(chain=idata.posterior.chain, draw=idata.posterior.draw),
                    diagnostics)


def _only_unanchored_sizes(idata, stage2: xr.Dataset, data: ScoreData, config: Config,
                           sizes: np.ndarray, seed: int) -> xr.Dataset | None:
    """Stage 3: each draw's η of every model seen only in unanchored tasks, drawn from its
    conditional posterior on a grid (its scores under the draw's curves, times the draw's
    trend prior at its date)."""
    only = only_unanchored(data)
    if only.empty:
        return None
    chains, n_draws = stage2.sizes["chain"], stage2.sizes["draw"]
    # each draw's parameters, with an axis for the grid: (draws, 1, ...)
    flat = {v.removeprefix(PREFIX): stage2[v].values.reshape((chains * n_draws, 1)
                                                              + stage2[v].shape[2:])
            for v in stage2.data_vars}
    names = tasks(data)
    chance, d0 = task_chance(data), config.model.d0
    rng = np.random.default_rng([seed, 0x5E0])
    steps = np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS)
    width = steps[1] - steps[0]
    eta = np.empty((chains * n_draws, len(only)))
    for i, m in only.iterrows():
        rows = data.unanchored[data.unanchored.model == m.model]
        bj = rows.benchmark.map({t: j for j, t in enumerate(names)}).to_numpy()
        k, n = rows.k.to_numpy(dtype=float), rows.n.to_numpy(dtype=float)
        x = math.log(m.params) + steps                                     # (grid,)
        p = task_probability(flat, x[None, :, None], bj, chance, sizes, d0, xp=np)
        outliers = ((flat["outlier_rate_target"][..., None], config.priors.outlier_phi)
                    if config.model.likelihood == "robust" else None)
        term = score_logp(k, n, p, flat["phi_target"][..., bj], log_binomial(n, k), outliers)
        prior = results.trend_prior_logpdf(idata, config, np.array([m.t]),
                                           (x - math.log(m.params))[None, :, None]
                                           * np.ones((chains * n_draws, 1, 1)))
        logp = term.sum(axis=-1) + prior[..., 0]                             # (draws, grid)
        weights = np.exp(logp - logp.max(axis=1, keepdims=True))
        cdf = np.cumsum(weights, axis=1)
        pick = (cdf < rng.uniform(size=(len(cdf), 1)) * cdf[:, -1:]).sum(axis=1)
        eta[:, i] = x[np.minimum(pick, len(x) - 1)] + rng.uniform(-width / 2, width / 2, len(pick))
    eta = eta.reshape(chains, n_draws, len(only))
    log_n = np.log(only.params.to_numpy(dtype=float))
    dims = ("chain", "draw", "unanchored_model")
    return xr.Dataset({PREFIX + "log_effective_size": (dims, eta),
                       PREFIX + "log_density": (dims, eta - log_n)},
                      coords={"unanchored_model": only.model.tolist()})


def table(post: xr.Dataset | xr.DataTree, data: ScoreData) -> pd.DataFrame:
    """One row per unanchored task (its shared models, their size range, the curve's gain) and
    per model seen only in unanchored tasks (N̂ and ρ, median and 90% HDI)."""
    rows = []
    gain = post[PREFIX + "z_gain"]
    for task in tasks(data):
        u = data.unanchored[data.unanchored.benchmark == task]
        g = gain.sel(unanchored_task=task).values.ravel()
        lo, hi = results.hdi(g)
        rows.append({"kind": "task", "name": task, "shared_models": int(u.shared.sum()),
                     "only_here": int((~u.shared).sum()), "gain": float(np.median(g)),
                     "gain_low": lo, "gain_high": hi})
    if PREFIX + "log_effective_size" in post:
        for m in post["unanchored_model"].values:
            eta = post[PREFIX + "log_effective_size"].sel(unanchored_model=m).values.ravel()
            rho = post[PREFIX + "log_density"].sel(unanchored_model=m).values.ravel()
            (e_lo, e_hi), (r_lo, r_hi) = results.hdi(eta), results.hdi(rho)
            rows.append({"kind": "model", "name": str(m),
                         "effective_params": math.exp(np.median(eta)),
                         "effective_params_low": math.exp(e_lo),
                         "effective_params_high": math.exp(e_hi),
                         "density": math.exp(np.median(rho)), "density_low": math.exp(r_lo),
                         "density_high": math.exp(r_hi)})
    return pd.DataFrame(rows)


def summary_lines(table: pd.DataFrame, diagnostics: dict) -> list[str]:
    """The summary's lines on the unanchored tasks and the models seen only there."""
    lines = [f"Tasks without reference scores, anchored by the models they share with the "
             f"others (a sequential cut: no feedback into the trend; divergences "
             f"{diagnostics['divergences']}, max R-hat {rhat_text(diagnostics)}):"]
    for _, r in table[table.kind == "task"].iterrows():    # the model rows make counts floats
        lines.append(f"  {r['name']}: curve from {int(r.shared_models)} shared models, gain "
                     f"{r.gain:.2f} [{r.gain_low:.2f}, {r.gain_high:.2f}]"
                     + (f"; {int(r.only_here)} model(s) seen only here" if r.only_here else ""))
    for _, r in table[table.kind == "model"].iterrows():
        lines.append(f"  {r['name']:<48} N̂ = {r.effective_params:.3g}B "
                     f"[{r.effective_params_low:.3g}, {r.effective_params_high:.3g}]  ρ = "
                     f"{r.density:.2f} [{r.density_low:.2f}, {r.density_high:.2f}]")
    return lines
