"""The Densing paper's point pipeline (Xiao et al. 2024), for side-by-side comparison.

The paper computes the doubling time of capability density with point fits and no
uncertainty. :func:`fit` does the same from the same :class:`~bayes_densing.data.ScoreData`
the Bayesian model consumes, every formula from :mod:`bayes_densing.model.laws`, in the
paper's four steps: reference curves per benchmark (:func:`_reference_curve`), the targets'
effective sizes (:func:`_target_sizes`), one density per model (:func:`one_size`) and the
trend of ln ρ over the running-maximum envelope (:func:`_trends`).

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


# --- what the steps share ----------------------------------------------------------------------

@dataclass
class _Setup:
    """The input and the settings every step reads, and the notices they gather on the way."""

    data: ScoreData
    config: Config
    data_term: bool                       # the b·D^-β term is in the loss law
    loss_mode: bool                       # observed losses are given
    d0: float
    notices: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, data: ScoreData, config: Config) -> "_Setup":
        from bayes_densing.model.loss_law import data_term_on   # the Bayesian model's rule

        try:
            data_term = data_term_on(data, config)
        except ValueError as exc:
            raise ClassicError(str(exc)) from None
        s = cls(data, config, data_term, data.has_loss, float(config.model.d0))
        if config.model.ceiling != "fixed":
            s.notices.append("the classic pipeline fixes the ceiling at c = 1 − chance "
                             f"(model.ceiling = {config.model.ceiling!r} is ignored)")
        if data_term and not s.loss_mode:
            s.notices.append("score-only mode with the data term on: "
                             f"b = {config.priors.data_coef:g} and β = {config.priors.beta:g} "
                             "fixed at their prior centres")
        return s


@dataclass
class _Refs:
    """One benchmark's reference models, as the curve fits of step 1 read them."""

    bench: str
    N: np.ndarray                         # sizes, billions
    D: np.ndarray                         # tokens, trillions (D0 where the data term is off)
    S: np.ndarray                         # scores
    loss: np.ndarray | None               # observed losses (NaN where missing), loss mode only
    c: float                              # the ceiling above the floor, 1 − chance
    d: float                              # the floor, chance
    d0: float

    @classmethod
    def of(cls, s: _Setup, j: int) -> "_Refs":
        data = s.data
        refs = data.references
        ob = data.obs[data.obs.bench_idx == j]
        ro = ob[ob.model_idx < data.n_ref]
        ri = ro.model_idx.to_numpy()
        N_all = data.models.params.to_numpy(dtype=float)
        D_all = refs.tokens.to_numpy(dtype=float) if s.data_term else np.full(data.n_ref, s.d0)
        d = float(data.chance[j])
        return cls(bench=data.benchmarks[j], N=N_all[ri], D=D_all[ri],
                   S=ro.score.to_numpy(dtype=float),
                   loss=ro.loss.to_numpy(dtype=float) if s.loss_mode else None,
                   c=1.0 - d, d=d, d0=s.d0)


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


def _curve(law, refs: _Refs, z, gain):
    """Scores of the references under a loss law and a performance map given as (z, gain)."""
    L = laws.loss_law(refs.N, refs.D, **law)
    L_low = laws.loss_law(refs.N.min(), refs.d0, **law)
    L_high = laws.loss_law(refs.N.max(), refs.d0, **law)
    l, gamma = laws.sigmoid_through(z, L.mean(), gain, L_low, L_high)
    return laws.performance(L, refs.c, gamma, l, refs.d), l, gamma


def _map_starts(law, refs: _Refs):
    """Starting (z, gain) from a straight-line fit of the score logit on the loss."""
    N = refs.N
    L = laws.loss_law(N, refs.D, **law)
    z = _logit(refs.S, refs.c, refs.d)
    with np.errstate(all="ignore"):
        slope, _ = np.polyfit(L, z, 1)
        spread = laws.loss_law(N.min(), refs.d0, **law) - laws.loss_law(N.max(), refs.d0, **law)
    z_centre = float(np.clip(z.mean() if np.isfinite(z.mean()) else 0.0, -0.9 * Z_BOUND, 0.9 * Z_BOUND))
    gain = float(-slope * spread) if np.isfinite(slope * spread) else 1.0
    return [(z_centre, float(np.clip(gain, 0.1, 0.9 * GAIN_BOUNDS[1]))), (z_centre, 2.0), (0.0, 4.0)]


def _fit_score_only(refs: _Refs, fixed):
    """(α, z, gain) by least squares of the references' scores; a = 1, E = 0 fixed."""
    if len(refs.N) < 3:
        raise ClassicError(f"benchmark {refs.bench!r}: {len(refs.N)} reference score(s); the "
                           "score-only fit of (α, l, γ) needs at least 3 reference models of "
                           "different sizes")

    def law(log_alpha):
        return dict(a=1.0, E=0.0, alpha=math.exp(log_alpha), **fixed)

    def residual(x):
        return _curve(law(x[0]), refs, x[1], x[2])[0] - refs.S

    starts = [(math.log(a0), *zg) for a0 in ALPHA_STARTS
              for zg in _map_starts(law(math.log(a0)), refs)]
    lower = [math.log(ALPHA_BOUNDS[0]), -Z_BOUND, GAIN_BOUNDS[0]]
    upper = [math.log(ALPHA_BOUNDS[1]), Z_BOUND, GAIN_BOUNDS[1]]
    res = _least_squares(residual, starts, lower, upper)
    if res is None:
        raise ClassicError(f"benchmark {refs.bench!r}: the least-squares fit of the reference "
                           "scores failed from every start (non-finite scores)")
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


def _fit_map(refs: _Refs, law):
    """(z, gain) of the performance map by least squares of the scores at fixed losses."""
    if len(refs.N) < 2:
        raise ClassicError(f"benchmark {refs.bench!r}: {len(refs.N)} reference score(s); the "
                           "performance map needs at least 2")

    def residual(x):
        return _curve(law, refs, x[0], x[1])[0] - refs.S

    res = _least_squares(residual, _map_starts(law, refs),
                         [-Z_BOUND, GAIN_BOUNDS[0]], [Z_BOUND, GAIN_BOUNDS[1]])
    if res is None:
        raise ClassicError(f"benchmark {refs.bench!r}: the least-squares fit of the performance "
                           "map to the reference scores failed from every start")
    return res.x[0], res.x[1]


def _fit_reference(s: _Setup, refs: _Refs):
    """The loss law and the performance map's (z, gain) of one benchmark, and the loss law's
    RMSE on the observed losses (NaN in score-only mode)."""
    if s.loss_mode:
        has = pd.notna(refs.loss)
        if not has.any():
            raise ClassicError(f"benchmark {refs.bench!r}: observed losses are given for other "
                               "benchmarks but no reference model has one here")
        law, rmse_loss = _fit_loss_law(refs.bench, refs.N[has], refs.D[has], refs.loss[has],
                                       s.data_term)
        z, gain = _fit_map(refs, law)
        return law, z, gain, rmse_loss
    # scores alone cannot tell b and β apart from α: fixed at their prior centres
    fixed = (dict(b=float(s.config.priors.data_coef), beta=float(s.config.priors.beta))
             if s.data_term else dict(b=0.0, beta=1.0))
    law, z, gain = _fit_score_only(refs, fixed)
    return law, z, gain, np.nan


def _at_bound(law, z, gain) -> list[str]:
    """The fitted shape parameters that stopped at the edge of their range."""
    return [f"{name} = {value:.3g}" for name, value, (lo, hi) in (
        ("α", law["alpha"], ALPHA_BOUNDS), ("the logit's rise", gain, GAIN_BOUNDS),
        ("the logit at the mean loss", z, (-Z_BOUND, Z_BOUND)))
        if value <= lo + 1e-3 * abs(lo) or value >= hi - 1e-3 * abs(hi)]


def _reference_curve(s: _Setup, j: int) -> tuple[dict, dict]:
    """Step 1: benchmark j's reference curve; its row of the benchmark table and the curve
    (the keyword arguments of ``laws.effective_size``).

    *With observed losses* (a ``loss`` column): least squares of the loss law
    ``L = E + a·N^-α (+ b·D^-β)`` to the reference models' losses (the data term when every
    reference has known tokens and ``model.data_term`` allows it, as in the Bayesian model),
    then least squares of the performance map ``S = d + c·σ(γ(l − L))`` to (fitted L, observed
    S). *Score-only* (the usual case): the loss scale is not identified, so, as in the
    Bayesian model, a = 1 and E = 0 are fixed and (α_j, l_j, γ_j) are fitted jointly to the
    references' scores by nonlinear least squares (several starts); with the data term on, b
    and β are fixed at the centres of their priors (``priors.data_coef``, ``priors.beta``).
    The floor d_j is the benchmark's chance level and the ceiling is fixed, c_j = 1 − d_j (the
    model's default ``model.ceiling = "fixed"``).
    """
    refs = _Refs.of(s, j)
    bench, N, S, c, d = refs.bench, refs.N, refs.S, refs.c, refs.d
    if np.unique(N).size < 2:
        raise ClassicError(f"benchmark {bench!r}: reference scores at {np.unique(N).size} "
                           "size(s) only; the reference curve needs at least 2 sizes")
    law, z, gain, rmse_loss = _fit_reference(s, refs)
    pred, l, gamma = _curve(law, refs, z, gain)
    if not (np.all(np.isfinite(pred)) and np.isfinite(l) and np.isfinite(gamma)):
        raise ClassicError(f"benchmark {bench!r}: the fitted reference curve is not finite")
    if gain < FLAT_GAIN:
        raise ClassicError(f"benchmark {bench!r}: the reference models' scores do not rise "
                           f"with size (fitted rise of the score logit {gain:.2g}), so no "
                           "effective size can be read off it; drop it with --benchmarks")
    at_bound = _at_bound(law, z, gain)
    if at_bound:
        s.notices.append(f"{bench}: the reference fit stopped at the edge of its range "
                         f"({', '.join(at_bound)}): the references' scores do not pin down the "
                         "curve's shape (e.g. they level off), so its effective sizes are fragile")
    curve = dict(c=c, gamma=gamma, l=l, d=d, d0=s.d0, **law)
    with np.errstate(all="ignore"):
        ref_size = laws.effective_size(S, **curve)
    ref_err = np.log(ref_size) - np.log(N)
    row = {"benchmark": bench, "chance": d, "ceiling": d + c, "n_reference": len(N),
           "rmse_loss": rmse_loss, "alpha": law["alpha"], "a": law["a"], "E": law["E"],
           "b": law["b"] if s.data_term else np.nan,
           "beta": law["beta"] if s.data_term else np.nan,
           "l": l, "gamma": gamma, "z_centre": z, "gain": gain,
           "rmse_score": float(np.sqrt(np.mean((pred - S) ** 2))),
           "rmse_log_size": float(np.sqrt(np.nanmean(ref_err ** 2)))
           if np.isfinite(ref_err).any() else np.nan}
    return row, curve


# --- step 2: effective sizes -------------------------------------------------------------------

def _target_sizes(s: _Setup, j: int, curve: dict) -> tuple[np.ndarray, dict]:
    """Step 2: every target's ln N̂ on benchmark j (NaN where it has none), by inverting the
    performance map, then the loss law at D0 (``laws.effective_size``); and the counts of the
    benchmark table. A score at or below chance, at the ceiling, or with a loss below what
    infinite parameters would reach gives no size: counted and reported, never fatal."""
    data = s.data
    ob = data.obs[data.obs.bench_idx == j]
    to = ob[ob.model_idx >= data.n_ref]
    ti = to.model_idx.to_numpy() - data.n_ref
    St = to.score.to_numpy(dtype=float)
    with np.errstate(all="ignore"):
        nhat = laws.effective_size(St, **curve)
        ln = np.log(nhat)
    ok = np.isfinite(ln)
    below = St <= curve["d"]
    above = St >= curve["d"] + curve["c"]
    beyond = ~ok & ~below & ~above
    column = np.full(data.n_target, np.nan)
    column[ti[ok]] = ln[ok]
    bench = data.benchmarks[j]
    for mask, why in ((below, "at or below chance"), (above, "at the ceiling"),
                      (beyond, "beyond the fitted law (loss below its asymptote)")):
        if mask.any():
            names = data.targets.model.to_numpy()[ti[mask]]
            s.notices.append(f"{bench}: {mask.sum()} target score(s) {why} have no effective size "
                             f"({', '.join(names[:4])}{' …' if len(names) > 4 else ''})")
    return column, {"n_target_scores": len(ti), "n_sized": int(ok.sum()),
                    "n_below_chance": int(below.sum()), "n_at_ceiling": int(above.sum()),
                    "n_beyond_law": int(beyond.sum())}


# --- step 4: trends ----------------------------------------------------------------------------

def _trends(s: _Setup, t_days: np.ndarray, log_rho: np.ndarray) -> tuple[dict, np.ndarray]:
    """Step 4: OLS of ln ρ on t (days since ``model.date_origin``, the paper's unit) over the
    running-maximum envelope (``laws.envelope_mask`` + ``laws.weighted_ols``), and the plain
    OLS over every target with a density (the "mean" trend); :class:`ClassicResult`'s trend
    fields, and which targets are on the envelope."""
    ok = np.isfinite(log_rho)
    if np.unique(t_days[ok]).size < 2:
        raise ClassicError(f"{ok.sum()} target model(s) with an effective size, on "
                           f"{np.unique(t_days[ok]).size} release date(s); the trend needs at "
                           "least 2 dates")
    t_ok, y_ok = t_days[ok], log_rho[ok]
    mask = laws.envelope_mask(t_ok, y_ok)
    if mask.sum() < 2 or np.unique(t_ok[mask]).size < 2:
        raise ClassicError(f"the running-max envelope has {int(mask.sum())} model(s) on "
                           f"{np.unique(t_ok[mask]).size} date(s); its OLS trend needs at least "
                           "2 dates (the earliest model is the densest of all: widen "
                           "--since/--until)")
    A, B = (float(v) for v in laws.weighted_ols(t_ok, y_ok, mask))
    A_mean, B_mean = (float(v) for v in laws.weighted_ols(t_ok, y_ok, np.ones_like(y_ok)))
    if A <= 0:
        s.notices.append(f"the envelope's slope A = {A:.3g} per day is not positive: density is "
                         "not growing over this window, and the doubling time is negative")
    on_envelope = np.zeros(len(log_rho), dtype=bool)
    on_envelope[np.flatnonzero(ok)[mask]] = True
    days = laws.doubling_time(A)
    days_mean = laws.doubling_time(A_mean)
    return dict(
        A_per_day=A, B=B, r2=_r2(t_ok[mask], y_ok[mask], A, B), n_envelope=int(mask.sum()),
        doubling_days=days, doubling_months=days / laws.DAYS_PER_MONTH,
        mean_A_per_day=A_mean, mean_B=B_mean, mean_r2=_r2(t_ok, y_ok, A_mean, B_mean),
        mean_doubling_days=days_mean, mean_doubling_months=days_mean / laws.DAYS_PER_MONTH,
        n_trend_models=int(ok.sum())), on_envelope


# --- the pipeline ------------------------------------------------------------------------------

BENCHMARK_COLUMNS = [
    "benchmark", "chance", "ceiling", "alpha", "a", "E", "b", "beta", "l", "gamma",
    "z_centre", "gain", "rmse_score", "rmse_loss", "rmse_log_size", "n_reference",
    "n_target_scores", "n_sized", "n_below_chance", "n_at_ceiling", "n_beyond_law"]


def fit(data: ScoreData, config: Config) -> ClassicResult:
    """The paper's point pipeline on ``data`` under ``config`` (D0, data term, date origin)."""
    s = _Setup.of(data, config)
    targets = data.targets
    log_nhat = np.full((data.n_target, len(data.benchmarks)), np.nan)
    rows = []
    for j in range(len(data.benchmarks)):
        row, curve = _reference_curve(s, j)
        log_nhat[:, j], counts = _target_sizes(s, j, curve)
        rows.append({**row, **counts})

    # step 3: one density per model
    mean_ln, used = one_size(log_nhat)
    log_rho = laws.log_density(mean_ln, np.log(targets.params.to_numpy(dtype=float)))
    origin = pd.Timestamp(data.date_origin or config.model.date_origin)
    t_days = (targets.release_date - origin).dt.days.to_numpy(dtype=float)
    missing = targets.model.to_numpy()[used == 0]
    if len(missing):
        s.notices.append(f"{len(missing)} target model(s) have no effective size on any benchmark "
                         f"and are left out of the trend: {', '.join(missing[:6])}"
                         f"{' …' if len(missing) > 6 else ''}")

    trend, on_envelope = _trends(s, t_days, log_rho)
    models = pd.DataFrame({
        "model": targets.model.to_numpy(), "family": targets.family.to_numpy(),
        "params": targets.params.to_numpy(dtype=float),
        "release_date": targets.release_date.to_numpy(), "t_days": t_days,
        "effective_params": np.exp(mean_ln), "density": np.exp(log_rho), "log_density": log_rho,
        "n_benchmarks_used": used, "on_envelope": on_envelope})
    by_bench = pd.DataFrame(log_nhat, columns=data.benchmarks,
                            index=pd.Index(targets.model.to_numpy(), name="model"))
    return ClassicResult(
        benchmarks=pd.DataFrame(rows)[BENCHMARK_COLUMNS], models=models,
        log_effective_by_benchmark=by_bench, **trend, loss_mode=s.loss_mode,
        data_term=s.data_term, d0=s.d0, date_origin=str(origin.date()), source=data.source,
        notices=s.notices)


def one_size(log_nhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: one ln N̂ per model from its per-benchmark ones (..., model, benchmark), the
    mean over the benchmarks where it is finite (NaN where none is); and how many those are.

    The mean of ln N̂ is the *geometric* mean of the effective sizes: they span orders of
    magnitude, and ln N̂ is what the Bayesian model works with. (The paper does not say how it
    combines its benchmarks; averaging the scores or the losses before one inversion would be
    the alternatives.) Then ln ρ = ln N̂ − ln N."""
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
    from bayes_densing.model.curves import curve_parameters

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
