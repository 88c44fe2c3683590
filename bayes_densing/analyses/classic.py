"""The Densing paper's point pipeline (Xiao et al. 2024), for side-by-side comparison.

The paper computes the doubling time of capability density with point fits and no
uncertainty. This module does the same from the same :class:`~bayes_densing.data.ScoreData`
the Bayesian model consumes, with every formula taken from :mod:`bayes_densing.model.laws`:

1. **Reference curves, per benchmark j.**
   *With observed losses* (a ``loss`` column): least squares of the loss law
   ``L = E + a·N^-α (+ b·D^-β)`` to the reference models' losses (the data term when every
   reference has known tokens and ``model.data_term`` allows it, as in the Bayesian model),
   then least squares of the performance map ``S = d + c·σ(γ(l − L))`` to (fitted L, observed
   S).
   *Score-only* (the usual case): the loss scale is not identified, so, as in the Bayesian
   model, a = 1 and E = 0 are fixed and (α_j, l_j, γ_j) are fitted jointly to the references'
   scores by nonlinear least squares (several starts). If the data term is on here, b and β
   are fixed at the centres of their priors (``priors.data_coef``, ``priors.beta``): scores
   alone cannot tell them apart from α.
   The floor d_j is the benchmark's chance level and the ceiling is fixed, c_j = 1 − d_j (the
   model's default ``model.ceiling = "fixed"``).
2. **Effective size** of every target on every benchmark: invert the performance map, then
   the loss law at D0 (``laws.effective_size``). A score at or below chance, at the ceiling,
   or with a loss below what infinite parameters would reach gives no size (NaN); these are
   counted and reported, never fatal.
3. **One density per model.** The paper reports one effective size per model from several
   benchmarks; here it is the mean of ln N̂ over the benchmarks where N̂ is finite, i.e. the
   *geometric* mean of the per-benchmark effective sizes. (The paper's text does not spell out
   how it combines its five benchmarks — averaging the scores or the losses before one
   inversion would be the alternatives; the geometric mean is used because effective sizes
   span orders of magnitude and ln N̂ is what the Bayesian model works with.) Then
   ρ = N̂ / N and ln ρ = ln N̂ − ln N.
4. **Trend.** OLS of ln ρ on t, with t in *days* since ``model.date_origin`` (the paper's
   unit; 2023-02-24, Llama-1, by default), over the running-maximum envelope models
   (``laws.envelope_mask`` + ``laws.weighted_ols``): slope A per day, intercept B, R² on the
   envelope points, doubling time ln 2 / A in days and months. The plain OLS over all targets
   (the "mean" trend) is reported beside it.

>>> from bayes_densing.config import Config
>>> from bayes_densing.data import load
>>> result = fit(load(Config()), Config())        # doctest: +SKIP
>>> print(result.summary_text())                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from bayes_densing.model import laws
from bayes_densing.config import Config
from bayes_densing.data import ScoreData

ALPHA_BOUNDS = (0.005, 5.0)      # loss-law exponent α
BETA_BOUNDS = (0.005, 5.0)       # data exponent β (loss mode)
Z_BOUND = 40.0                   # |score logit| at the references' mean loss
GAIN_BOUNDS = (1e-6, 200.0)      # rise of the score logit from the smallest to the largest reference
FLAT_GAIN = 1e-3                 # a fitted gain below this: the benchmark does not rise with size
ALPHA_STARTS = (0.05, 0.15, 0.3, 0.6, 1.2, 2.5)
BETA_STARTS = (0.1, 0.3, 0.8)
CLIP = 1e-3                      # starting values: scores clipped this far inside (d, d + c)
TOL = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=20000)


class ClassicError(ValueError):
    """The point pipeline cannot run on this input; the message says which benchmark and why."""


# --- result ------------------------------------------------------------------------------------

@dataclass
class ClassicResult:
    """Everything the point pipeline found; ``to_dict()`` is JSON-safe, ``summary_text()`` for a terminal."""

    benchmarks: pd.DataFrame              # per benchmark: the fitted curves and NaN counts
    models: pd.DataFrame                  # per target model: N̂, ρ, benchmarks used, on envelope
    log_effective_by_benchmark: pd.DataFrame  # ln N̂ per target (rows) and benchmark (columns)
    A_per_day: float                      # envelope trend: slope of ln ρ per day
    B: float                              # ... ln ρ at date_origin
    r2: float                             # ... R² of the OLS on the envelope points
    n_envelope: int                       # ... number of envelope models
    doubling_days: float
    doubling_months: float
    mean_A_per_day: float                 # OLS over all targets with a density
    mean_B: float
    mean_r2: float
    mean_doubling_days: float
    mean_doubling_months: float
    n_trend_models: int                   # targets with a finite density (enter the trends)
    loss_mode: bool                       # observed losses were used
    data_term: bool                       # the b·D^-β term was in the loss law
    d0: float
    date_origin: str
    source: str = ""
    notices: list[str] = field(default_factory=list)

    @property
    def A_per_month(self) -> float:
        return self.A_per_day * laws.DAYS_PER_MONTH

    def envelope_models(self) -> pd.DataFrame:
        return self.models[self.models.on_envelope]

    def summary_text(self, top: int = 10) -> str:
        loss = ("observed losses (E, a, α fitted)" if self.loss_mode
                else "score-only (a = 1, E = 0 fixed; α, l, γ fitted to scores)")
        lines = [f"Classic point pipeline (the Densing paper's method) on {self.source or 'the data'}",
                 f"  loss law: {loss}; data term {'on' if self.data_term else 'off'}; "
                 f"N̂ at D0 = {self.d0:g}T tokens; ceiling c = 1 − chance",
                 "  reference curves:"]
        width = max(len(b) for b in self.benchmarks.benchmark)
        for _, r in self.benchmarks.iterrows():
            nan = r.n_below_chance + r.n_at_ceiling + r.n_beyond_law
            lines.append(f"    {r.benchmark:<{width}}  α = {r.alpha:.4g}  l = {r.l:.4g}  "
                         f"γ = {r.gamma:.4g}  rmse = {r.rmse_score:.3g} on {r.n_reference} refs"
                         + (f"  ({nan} target score(s) without a size)" if nan else ""))
        n_targets = len(self.models)
        lines += [
            f"  targets: {n_targets}, {self.n_trend_models} with an effective size",
            f"  envelope trend (OLS of ln ρ on days since {self.date_origin}, running-max models):",
            f"    A = {self.A_per_day:.5f} per day ({self.A_per_month:.4f} per month), "
            f"B = {self.B:.3f}, R² = {self.r2:.3f}, {self.n_envelope} envelope models",
            f"    doubling time: {self.doubling_days:.1f} days ({self.doubling_months:.2f} months)",
            f"  mean trend (OLS over all {self.n_trend_models} targets): A = {self.mean_A_per_day:.5f} "
            f"per day, R² = {self.mean_r2:.3f}, doubling {self.mean_doubling_days:.1f} days "
            f"({self.mean_doubling_months:.2f} months)",
        ]
        if top > 0:
            best = self.models.dropna(subset=["log_density"]).sort_values(
                "log_density", ascending=False).head(top)
            lines.append(f"  top {len(best)} models by density:")
            w = max((len(m) for m in best.model), default=0)
            for _, r in best.iterrows():
                lines.append(f"    {r.model:<{w}}  {r.release_date:%Y-%m-%d}  N = {r.params:g}B  "
                             f"N̂ = {r.effective_params:.3g}B  ρ = {r.density:.3g}"
                             + ("  [envelope]" if r.on_envelope else ""))
        if self.notices:
            lines.append("  notes:")
            lines += [f"    - {n}" for n in self.notices]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN → None, dates → ISO strings) of the whole result."""
        scalars = {k: getattr(self, k) for k in (
            "A_per_day", "B", "r2", "n_envelope", "doubling_days", "doubling_months",
            "mean_A_per_day", "mean_B", "mean_r2", "mean_doubling_days", "mean_doubling_months",
            "n_trend_models", "loss_mode", "data_term", "d0", "date_origin", "source")}
        out = {"method": "classic", **scalars, "A_per_month": self.A_per_month,
               "benchmarks": _records(self.benchmarks), "models": _records(self.models),
               "log_effective_by_benchmark": _records(
                   self.log_effective_by_benchmark.reset_index()),
               "notices": list(self.notices)}
        return _jsonable(out)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)


def _records(df: pd.DataFrame) -> list[dict]:
    return [dict(zip(df.columns, row)) for row in df.itertuples(index=False, name=None)]


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (pd.Timestamp, np.datetime64)):
        return None if pd.isna(x) else pd.Timestamp(x).strftime("%Y-%m-%d")
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if x is None or isinstance(x, str):
        return x
    if x is pd.NaT or (np.ndim(x) == 0 and pd.isna(x)):
        return None
    return str(x)


# --- step 1: reference curves ------------------------------------------------------------------

def _logit(S, c, d):
    """The score's logit between floor and ceiling, z = γ(l − L), via the performance map's inverse."""
    S = np.clip(S, d + CLIP * c, d + (1.0 - CLIP) * c)
    return -laws.performance_loss(S, c, 1.0, 0.0, d)


def _least_squares(residual, starts, lower, upper):
    """Best of several bounded least-squares runs; None when every start fails."""
    best = None
    for x0 in starts:
        x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
        try:
            with np.errstate(all="ignore"):
                if not np.all(np.isfinite(residual(x0))):
                    continue
                res = optimize.least_squares(residual, x0, bounds=(lower, upper),
                                             x_scale="jac", **TOL)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
        if np.isfinite(res.cost) and (best is None or res.cost < best.cost):
            best = res
    return best


def _curve(law, N, D, d0, c, d, z, gain):
    """Scores of the references under a loss law and a performance map given as (z, gain)."""
    L = laws.loss_law(N, D, **law)
    L_low = laws.loss_law(N.min(), d0, **law)
    L_high = laws.loss_law(N.max(), d0, **law)
    l, gamma = laws.sigmoid_through(z, L.mean(), gain, L_low, L_high)
    return laws.performance(L, c, gamma, l, d), l, gamma


def _map_starts(law, N, D, d0, c, d, S):
    """Starting (z, gain) from a straight-line fit of the score logit on the loss."""
    L = laws.loss_law(N, D, **law)
    z = _logit(S, c, d)
    with np.errstate(all="ignore"):
        slope, _ = np.polyfit(L, z, 1)
        spread = laws.loss_law(N.min(), d0, **law) - laws.loss_law(N.max(), d0, **law)
    z_centre = float(np.clip(z.mean() if np.isfinite(z.mean()) else 0.0, -0.9 * Z_BOUND, 0.9 * Z_BOUND))
    gain = float(-slope * spread) if np.isfinite(slope * spread) else 1.0
    return [(z_centre, float(np.clip(gain, 0.1, 0.9 * GAIN_BOUNDS[1]))), (z_centre, 2.0), (0.0, 4.0)]


def _fit_score_only(bench, N, D, S, c, d, d0, fixed):
    """(α, z, gain) by least squares of the references' scores; a = 1, E = 0 fixed."""
    if len(N) < 3:
        raise ClassicError(f"benchmark {bench!r}: {len(N)} reference score(s); the score-only fit "
                           "of (α, l, γ) needs at least 3 reference models of different sizes")

    def law(log_alpha):
        return dict(a=1.0, E=0.0, alpha=math.exp(log_alpha), **fixed)

    def residual(x):
        return _curve(law(x[0]), N, D, d0, c, d, x[1], x[2])[0] - S

    starts = [(math.log(a0), *zg) for a0 in ALPHA_STARTS
              for zg in _map_starts(law(math.log(a0)), N, D, d0, c, d, S)]
    lower = [math.log(ALPHA_BOUNDS[0]), -Z_BOUND, GAIN_BOUNDS[0]]
    upper = [math.log(ALPHA_BOUNDS[1]), Z_BOUND, GAIN_BOUNDS[1]]
    res = _least_squares(residual, starts, lower, upper)
    if res is None:
        raise ClassicError(f"benchmark {bench!r}: the least-squares fit of the reference scores "
                           "failed from every start (non-finite scores)")
    fitted = law(res.x[0])
    return fitted, res.x[1], res.x[2]


def _fit_loss_law(bench, N, D, L_obs, data_term):
    """(E, a, α[, b, β]) by least squares of the references' observed losses."""
    names = ["E", "a", "alpha"] + (["b", "beta"] if data_term else [])
    if len(N) < len(names):
        raise ClassicError(f"benchmark {bench!r}: {len(N)} reference loss(es); fitting the loss "
                           f"law's {', '.join(names)} needs at least {len(names)}")

    def law(x):
        p = dict(zip(names, x))
        return dict(E=p["E"], a=p["a"], alpha=p["alpha"], b=p.get("b", 0.0), beta=p.get("beta", 1.0))

    def residual(x):
        return laws.loss_law(N, D, **law(x)) - L_obs

    starts = []
    for a0 in ALPHA_STARTS:
        for b0 in (BETA_STARTS if data_term else (1.0,)):
            # the law is linear in (E, a, b) at fixed exponents: non-negative least squares
            cols = [np.ones_like(N), laws.loss_law(N, D, a=1.0, alpha=a0, b=0.0, beta=1.0)]
            if data_term:
                cols.append(laws.loss_law(N, D, a=0.0, alpha=1.0, b=1.0, beta=b0))
            coef, _ = optimize.nnls(np.column_stack(cols), L_obs)
            x0 = [coef[0], max(coef[1], 1e-3), a0] + ([max(coef[2], 1e-3), b0] if data_term else [])
            starts.append(x0)
    lower = [0.0, 1e-9, ALPHA_BOUNDS[0]] + ([0.0, BETA_BOUNDS[0]] if data_term else [])
    upper = [np.inf, np.inf, ALPHA_BOUNDS[1]] + ([np.inf, BETA_BOUNDS[1]] if data_term else [])
    res = _least_squares(residual, starts, lower, upper)
    if res is None:
        raise ClassicError(f"benchmark {bench!r}: the least-squares fit of the loss law to the "
                           "reference losses failed from every start")
    return law(res.x), float(np.sqrt(np.mean(res.fun ** 2)))


def _fit_map(bench, law, N, D, S, c, d, d0):
    """(z, gain) of the performance map by least squares of the scores at fixed losses."""
    if len(N) < 2:
        raise ClassicError(f"benchmark {bench!r}: {len(N)} reference score(s); the performance "
                           "map needs at least 2")

    def residual(x):
        return _curve(law, N, D, d0, c, d, x[0], x[1])[0] - S

    res = _least_squares(residual, _map_starts(law, N, D, d0, c, d, S),
                         [-Z_BOUND, GAIN_BOUNDS[0]], [Z_BOUND, GAIN_BOUNDS[1]])
    if res is None:
        raise ClassicError(f"benchmark {bench!r}: the least-squares fit of the performance map "
                           "to the reference scores failed from every start")
    return res.x[0], res.x[1]


# --- the pipeline ------------------------------------------------------------------------------

def fit(data: ScoreData, config: Config) -> ClassicResult:
    """The paper's point pipeline on ``data`` under ``config`` (D0, data term, date origin)."""
    from bayes_densing.model.build import data_term_on   # the same rule as the Bayesian model

    try:
        data_term = data_term_on(data, config)
    except ValueError as exc:
        raise ClassicError(str(exc)) from None
    d0 = float(config.model.d0)
    loss_mode = data.has_loss
    notices: list[str] = []
    if config.model.ceiling != "fixed":
        notices.append("the classic pipeline fixes the ceiling at c = 1 − chance "
                       f"(model.ceiling = {config.model.ceiling!r} is ignored)")
    if data_term and not loss_mode:
        notices.append(f"score-only mode with the data term on: b = {config.priors.data_coef:g} "
                       f"and β = {config.priors.beta:g} fixed at their prior centres")

    obs = data.obs
    n_ref = data.n_ref
    refs, targets = data.references, data.targets
    N_all = data.models.params.to_numpy(dtype=float)
    D_ref_all = refs.tokens.to_numpy(dtype=float) if data_term else np.full(n_ref, d0)
    nb = len(data.benchmarks)
    log_nhat = np.full((data.n_target, nb), np.nan)
    rows = []
    for j, bench in enumerate(data.benchmarks):
        d = float(data.chance[j])
        c = 1.0 - d
        ob = obs[obs.bench_idx == j]
        ro = ob[ob.model_idx < n_ref]
        ri = ro.model_idx.to_numpy()
        N, D, S = N_all[ri], D_ref_all[ri], ro.score.to_numpy(dtype=float)
        if np.unique(N).size < 2:
            raise ClassicError(f"benchmark {bench!r}: reference scores at {np.unique(N).size} "
                               "size(s) only; the reference curve needs at least 2 sizes")
        row = {"benchmark": bench, "chance": d, "ceiling": d + c, "n_reference": len(ri)}
        if loss_mode:
            has = ro.loss.notna().to_numpy()
            if not has.any():
                raise ClassicError(f"benchmark {bench!r}: observed losses are given for other "
                                   "benchmarks but no reference model has one here")
            law, rmse_loss = _fit_loss_law(bench, N[has], D[has], ro.loss.to_numpy(dtype=float)[has],
                                           data_term)
            z, gain = _fit_map(bench, law, N, D, S, c, d, d0)
            row["rmse_loss"] = rmse_loss
        else:
            fixed = (dict(b=float(config.priors.data_coef), beta=float(config.priors.beta))
                     if data_term else dict(b=0.0, beta=1.0))
            law, z, gain = _fit_score_only(bench, N, D, S, c, d, d0, fixed)
            row["rmse_loss"] = np.nan
        pred, l, gamma = _curve(law, N, D, d0, c, d, z, gain)
        if not (np.all(np.isfinite(pred)) and np.isfinite(l) and np.isfinite(gamma)):
            raise ClassicError(f"benchmark {bench!r}: the fitted reference curve is not finite")
        if gain < FLAT_GAIN:
            raise ClassicError(f"benchmark {bench!r}: the reference models' scores do not rise with "
                               f"size (fitted rise of the score logit {gain:.2g}), so no effective size "
                               "can be read off it; drop it with --benchmarks")
        at_bound = [f"{name} = {value:.3g}" for name, value, (lo, hi) in (
            ("α", law["alpha"], ALPHA_BOUNDS), ("the logit's rise", gain, GAIN_BOUNDS),
            ("the logit at the mean loss", z, (-Z_BOUND, Z_BOUND)))
            if value <= lo + 1e-3 * abs(lo) or value >= hi - 1e-3 * abs(hi)]
        if at_bound:
            notices.append(f"{bench}: the reference fit stopped at the edge of its range "
                           f"({', '.join(at_bound)}): the references' scores do not pin down the "
                           "curve's shape (e.g. they level off), so its effective sizes are fragile")
        curve = dict(c=c, gamma=gamma, l=l, d=d, d0=d0, **law)
        with np.errstate(all="ignore"):
            ref_size = laws.effective_size(S, **curve)
        ref_err = np.log(ref_size) - np.log(N)
        row.update({"alpha": law["alpha"], "a": law["a"], "E": law["E"],
                    "b": law["b"] if data_term else np.nan,
                    "beta": law["beta"] if data_term else np.nan,
                    "l": l, "gamma": gamma, "z_centre": z, "gain": gain,
                    "rmse_score": float(np.sqrt(np.mean((pred - S) ** 2))),
                    "rmse_log_size": float(np.sqrt(np.nanmean(ref_err ** 2)))
                    if np.isfinite(ref_err).any() else np.nan})

        # --- step 2: effective sizes of the targets on this benchmark -----------------------
        to = ob[ob.model_idx >= n_ref]
        ti = to.model_idx.to_numpy() - n_ref
        St = to.score.to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            nhat = laws.effective_size(St, **curve)
            ln = np.log(nhat)
        ok = np.isfinite(ln)
        below = St <= d
        above = St >= d + c
        beyond = ~ok & ~below & ~above
        log_nhat[ti[ok], j] = ln[ok]
        row.update({"n_target_scores": len(ti), "n_sized": int(ok.sum()),
                    "n_below_chance": int(below.sum()), "n_at_ceiling": int(above.sum()),
                    "n_beyond_law": int(beyond.sum())})
        for mask, why in ((below, "at or below chance"), (above, "at the ceiling"),
                          (beyond, "beyond the fitted law (loss below its asymptote)")):
            if mask.any():
                names = targets.model.to_numpy()[ti[mask]]
                notices.append(f"{bench}: {mask.sum()} target score(s) {why} have no effective size "
                               f"({', '.join(names[:4])}{' …' if len(names) > 4 else ''})")
        rows.append(row)
    bench_table = pd.DataFrame(rows)[[
        "benchmark", "chance", "ceiling", "alpha", "a", "E", "b", "beta", "l", "gamma",
        "z_centre", "gain", "rmse_score", "rmse_loss", "rmse_log_size", "n_reference",
        "n_target_scores", "n_sized", "n_below_chance", "n_at_ceiling", "n_beyond_law"]]

    # --- step 3: one density per model --------------------------------------------------------
    mean_ln, used = one_size(log_nhat)
    log_n = np.log(targets.params.to_numpy(dtype=float))
    log_rho = laws.log_density(mean_ln, log_n)
    origin = pd.Timestamp(data.date_origin or config.model.date_origin)
    t_days = (targets.release_date - origin).dt.days.to_numpy(dtype=float)
    missing = targets.model.to_numpy()[used == 0]
    if len(missing):
        notices.append(f"{len(missing)} target model(s) have no effective size on any benchmark and "
                       f"are left out of the trend: {', '.join(missing[:6])}"
                       f"{' …' if len(missing) > 6 else ''}")

    # --- step 4: trends ------------------------------------------------------------------------
    ok = np.isfinite(log_rho)
    if np.unique(t_days[ok]).size < 2:
        raise ClassicError(f"{ok.sum()} target model(s) with an effective size, on "
                           f"{np.unique(t_days[ok]).size} release date(s); the trend needs at least "
                           "2 dates")
    t_ok, y_ok = t_days[ok], log_rho[ok]
    mask = laws.envelope_mask(t_ok, y_ok)
    if mask.sum() < 2 or np.unique(t_ok[mask]).size < 2:
        raise ClassicError(f"the running-max envelope has {int(mask.sum())} model(s) on "
                           f"{np.unique(t_ok[mask]).size} date(s); its OLS trend needs at least 2 "
                           "dates (the earliest model is the densest of all: widen --since/--until)")
    A, B = (float(v) for v in laws.weighted_ols(t_ok, y_ok, mask))
    A_mean, B_mean = (float(v) for v in laws.weighted_ols(t_ok, y_ok, np.ones_like(y_ok)))
    if A <= 0:
        notices.append(f"the envelope's slope A = {A:.3g} per day is not positive: density is not "
                       "growing over this window, and the doubling time is negative")
    on_envelope = np.zeros(len(targets), dtype=bool)
    on_envelope[np.flatnonzero(ok)[mask]] = True

    models = pd.DataFrame({
        "model": targets.model.to_numpy(), "family": targets.family.to_numpy(),
        "params": targets.params.to_numpy(dtype=float),
        "release_date": targets.release_date.to_numpy(), "t_days": t_days,
        "effective_params": np.exp(mean_ln), "density": np.exp(log_rho), "log_density": log_rho,
        "n_benchmarks_used": used, "on_envelope": on_envelope})
    by_bench = pd.DataFrame(log_nhat, columns=data.benchmarks,
                            index=pd.Index(targets.model.to_numpy(), name="model"))
    days = laws.doubling_time(A)
    days_mean = laws.doubling_time(A_mean)
    return ClassicResult(
        benchmarks=bench_table, models=models, log_effective_by_benchmark=by_bench,
        A_per_day=A, B=B, r2=_r2(t_ok[mask], y_ok[mask], A, B), n_envelope=int(mask.sum()),
        doubling_days=days, doubling_months=days / laws.DAYS_PER_MONTH,
        mean_A_per_day=A_mean, mean_B=B_mean, mean_r2=_r2(t_ok, y_ok, A_mean, B_mean),
        mean_doubling_days=days_mean, mean_doubling_months=days_mean / laws.DAYS_PER_MONTH,
        n_trend_models=int(ok.sum()), loss_mode=loss_mode, data_term=data_term, d0=d0,
        date_origin=str(origin.date()), source=data.source, notices=notices)


def one_size(log_nhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: one ln N̂ per model from its per-benchmark ones (..., model, benchmark), the
    mean over the benchmarks where it is finite (NaN where none is); and how many those are."""
    finite = np.isfinite(log_nhat)
    used = finite.sum(axis=-1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.where(finite, log_nhat, np.nan), axis=-1)
    return np.where(used > 0, mean, np.nan), used


def sizes_per_draw(posterior, data: ScoreData, config: Config) -> np.ndarray:
    """Steps 2 and 3 of the paper's pipeline applied to every posterior draw's curves instead
    of the point fit's: each target's observed scores inverted through that draw's curves
    (``laws.effective_size``), one ln N̂ per target by :func:`one_size`. ``posterior``: the
    run's posterior Dataset; returns (draws, target). How far the cut's curves reproduce
    classic's own numbers (docs/model.md, "Cut or joint")."""
    from bayes_densing.model.build import curve_parameters

    flat = posterior.stack(sample=("chain", "draw")).transpose("sample", ...)
    params = {k: flat[k].values for k in ("z_centre", "z_gain", "alpha", "ceiling_frac", "a",
                                          "E", "b", "beta") if k in flat}
    refs = data.references.params.to_numpy(dtype=float)
    loss, l, gamma, c = curve_parameters(params, refs, data.chance, config.model.d0, xp=np)
    obs = data.obs[data.obs.model_idx >= data.n_ref]
    scores = np.full((data.n_target, len(data.benchmarks)), np.nan)
    scores[obs.model_idx.to_numpy() - data.n_ref, obs.bench_idx.to_numpy()] = obs.score
    # (draws, benchmark) or (draws, 1) → (draws, 1 target, ...); constants stay
    per = {k: np.asarray(v)[:, None, :] if np.ndim(v) == 2 else v for k, v in loss.items()}
    with np.errstate(all="ignore"):
        nhat = laws.effective_size(scores[None], c=np.broadcast_to(c, l.shape)[:, None, :],
                                   gamma=gamma[:, None, :], l=l[:, None, :],
                                   d=np.asarray(data.chance)[None, None, :], d0=config.model.d0,
                                   **per)
        return one_size(np.log(nhat))[0]


def _r2(t, y, A, B) -> float:
    resid = y - laws.trend_mean(t, A, B)
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float((resid ** 2).sum()) / total if total > 0 else float("nan")
