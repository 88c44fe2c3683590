"""Forecasts from a run (nothing is re-sampled): the frontier at a future date, a new model's
density there, and the date at which a model of N parameters matches a given model or reaches a
given score::

    from bayes_densing.analyses.forecast import forecast
    f = forecast("runs/demo", at=["2026-06-01"], params=7, match="google/gemma-2-9b")
    print(f.text())                       # or f.to_dict() for JSON
    f = forecast("runs/demo", params=7, score=0.8, benchmark="mmlu")
    from bayes_densing.figures.forecast import write_figure
    write_figure("runs/demo", f)          # RUN_DIR/figures/forecast.png

Everything is per posterior draw: the trend's line μ(t) (:func:`frontier_draws`), a new model's
log density around it (:func:`predictive_draws`), and the date at which ln N + μ(t) reaches a
needed log size η* on the trend's last segment (:func:`crossing_time`), η* a model's posterior
log effective size (``match``) or the size that scores S (``score``, :func:`score_log_size`).
Intervals are 90% HDIs (ArviZ), medians posterior medians. A date further past the last
target's release than the data span, or a size outside the reference models', is flagged as
an extrapolation.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np

from bayes_densing.data import registry as benchmark_registry
from bayes_densing.model import laws
from bayes_densing import results

PROB = 0.9
SEED = 0


class ForecastError(ValueError):
    """A forecast cannot be made as asked; the message says why."""


# --- the math, per posterior draw ---------------------------------------------------------------

def frontier_draws(idata, config, t) -> np.ndarray:
    """μ(t), the trend's line in log density at times ``t`` (months from the date origin), per
    draw: shape (samples, len(t)): the frontier A·t + B for ``frontier``, the broken line for
    ``changepoint``, the mean line for ``mean``, each draw's envelope OLS for ``envelope`` (a
    draw without an envelope slope is NaN, so draws stay aligned)."""
    t = np.atleast_1d(np.asarray(t, dtype=float))[None, :]
    trend = config.model.trend
    if trend == "envelope":
        A, B = laws.envelope_trend(results.target_times(idata),
                                   results.draws(idata, "log_density"))
        return laws.trend_mean(t, np.asarray(A)[:, None], np.asarray(B)[:, None])
    if trend == "changepoint":      # laws.changepoint_mean at the run's change date(s)
        return results.trend_line_draws(idata, config, t[0])
    return laws.trend_mean(t, results.draws(idata, "A")[:, None], results.draws(idata, "B")[:, None])


def last_slope(idata, config) -> np.ndarray:
    """The slope of the trend's last segment per draw (``A``, which is ``A_after`` for a
    changepoint run; the envelope OLS's for ``envelope``), NaN where an envelope has none."""
    return results.slope_per_draw(idata, config)


def new_model_draws(mu, *, rng, sigma_v=None, sigma_u=None, sigma=None, sigma_group=None):
    """One log density per draw from the trend's distribution around ``mu``: the frontier's
    skew-normal (ω, shape) = ``laws.frontier_skewnormal(σ_v, σ_u)``, or N(mu, σ) for the mean
    trend; plus N(0, σ_group) when given (a new release group)."""
    from scipy import stats

    mu = np.asarray(mu, dtype=float)
    if sigma_v is not None:
        omega, shape = laws.frontier_skewnormal(np.asarray(sigma_v, dtype=float),
                                                np.asarray(sigma_u, dtype=float))
        # scipy's skewnorm(a, loc, scale) is PyMC's SkewNormal(alpha, mu, sigma), the model's
        # trend prior (tests/test_forecast.py checks the draws against v − u)
        y = stats.skewnorm.rvs(shape, loc=mu, scale=omega, size=mu.shape, random_state=rng)
    else:
        y = rng.normal(mu, np.broadcast_to(np.asarray(sigma, dtype=float), mu.shape))
    if sigma_group is not None:
        y = y + rng.normal(0.0, np.broadcast_to(np.asarray(sigma_group, dtype=float), mu.shape))
    return y


def predictive_draws(idata, config, t, rng) -> np.ndarray:
    """A new model's log density at times ``t``, one per posterior draw: (samples, len(t)),
    from the distribution the model puts on every target around its own trend: the frontier,
    the broken line, or (``mean`` and ``envelope``, whose model is the mean trend) the mean line
    with its σ; plus a new release group's shift when the run has one."""
    post = idata.posterior
    trend = config.model.trend
    group = results.draws(idata, "sigma_group")[:, None] if "sigma_group" in post else None
    if trend in ("frontier", "changepoint"):
        return new_model_draws(frontier_draws(idata, config, t), rng=rng,
                               sigma_v=results.draws(idata, "sigma_v")[:, None],
                               sigma_u=results.draws(idata, "sigma_u")[:, None], sigma_group=group)
    t = np.atleast_1d(np.asarray(t, dtype=float))[None, :]
    mu = laws.trend_mean(t, results.draws(idata, "A")[:, None], results.draws(idata, "B")[:, None])
    return new_model_draws(mu, rng=rng, sigma=results.draws(idata, "sigma")[:, None],
                           sigma_group=group)


def predictive_at(idata, config, t, seed: int = SEED) -> np.ndarray:
    """:func:`predictive_draws` with the same random numbers at every time in ``t``: a
    date's answer does not depend on which other dates are asked, and a band over a grid of
    times is smooth."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    return np.stack([predictive_draws(idata, config, [tk], np.random.default_rng(seed))[:, 0]
                     for tk in t], axis=1)


def crossing_time(log_params, needed, A, t0, mu0) -> np.ndarray:
    """The time t at which ln N + μ(t) = ``needed`` on the line through (t0, μ0) of slope A,
    per draw: t0 + (needed − ln N − μ0) / A, which may lie before t0 ("already reached"); +∞
    where A ≤ 0 (the trend never rises to it) and NaN where ``needed`` or A is NaN (no such
    size; an envelope draw without a slope)."""
    A = np.asarray(A, dtype=float)
    gap = np.asarray(needed, dtype=float) - log_params - np.asarray(mu0, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = t0 + gap / np.where(A > 0, A, 1.0)
    return np.where(np.isnan(gap) | np.isnan(A), np.nan, np.where(A > 0, t, np.inf))


def score_log_size(idata, config, score: float, j: int) -> np.ndarray:
    """Per draw, the log size (billions) at which a reference-family model trained on D0
    tokens scores ``score`` on benchmark ``j``: the curves' inverse (``laws.effective_size``)
    with the run's curve parameters (``model.curves.curve_parameters``). NaN where the score is at
    or above the curve's ceiling, at or below chance, or below the loss law's floor."""
    from bayes_densing.model.curves import curve_parameters

    cd = idata.constant_data
    ref = cd["role"].values == "reference"
    chance = cd["chance"].values.astype(float)
    coefs, l, gamma, c = curve_parameters(results.curve_draws(idata), cd["params"].values[ref],
                                          chance, config.model.d0, xp=np)

    def col(v):     # benchmark j of (draws, benchmark) or (benchmark,); (draws, 1) is global
        v = np.asarray(v, dtype=float)
        return v if v.ndim == 0 else (v[..., j] if v.shape[-1] > 1 else v[..., 0])

    with np.errstate(divide="ignore", invalid="ignore"):
        size = laws.effective_size(score, c=col(c), gamma=col(gamma), l=col(l), d=chance[j],
                                   d0=config.model.d0, **{k: col(v) for k, v in coefs.items()})
        out = np.log(size)
    return np.where(np.isfinite(out), out, np.nan) * np.ones(np.shape(col(l)))


def ceiling_of(idata, j: int) -> np.ndarray:
    """Per draw, the highest score benchmark ``j``'s curve reaches: chance + c."""
    chance = float(idata.constant_data["chance"].values[j])
    frac = (results.draws(idata, "ceiling_frac")[:, j] if "ceiling_frac" in idata.posterior
            else 1.0)       # model.ceiling = "fixed": every curve rises to 1
    return chance + (1.0 - chance) * np.asarray(frac, dtype=float)


# --- summaries -----------------------------------------------------------------------------------

def interval(x, prob: float = PROB) -> dict[str, float]:
    """Median and ``prob`` HDI (ArviZ) over the finite draws; NaN where there are none."""
    x = np.asarray(x, dtype=float)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return {"median": math.nan, "low": math.nan, "high": math.nan}
    lo, hi = results.hdi(finite, prob)
    return {"median": float(np.median(finite)), "low": lo, "high": hi}


def _exp(d: dict) -> dict:
    return {k: math.exp(v) if math.isfinite(v) else v for k, v in d.items()}


LAST_DAY = date(9999, 12, 31)


def to_date(config, t: float) -> str:
    """The date (YYYY-MM-DD) of model time ``t`` (months from the date origin); "never" for
    +∞, "after 9999" past the calendar."""
    if not math.isfinite(t):
        return "never" if t > 0 else "n/a"
    origin = date.fromisoformat(str(config.model.date_origin))
    days = t * laws.DAYS_PER_MONTH
    if days > (LAST_DAY - origin).days:
        return "after 9999"
    if days < (date(1, 1, 1) - origin).days:
        return "n/a"
    return (origin + timedelta(days=round(days))).isoformat()


@dataclass
class AtDate:
    date: str
    t_months: float
    months_after_data: float            # after the last target's release
    frontier_log: dict                  # μ(t): median, low, high (90% HDI)
    frontier_density: dict              # e^μ(t)
    new_model_log: dict                 # a new model's ln ρ (posterior predictive)
    new_model_density: dict
    effective_params: dict | None = None     # with params: N·e^μ(t), billions
    extrapolated: bool = False          # further past the data than the data span


@dataclass
class Reach:
    kind: str                           # "match" or "score"
    params: float                       # N, billions
    what: str                           # the model's name, or "S on BENCH"
    needed_log_size: dict               # η* (ln billions) over the draws that have one
    needed_size: dict                   # e^η*, billions
    p_reachable: float                  # A > 0 and a size exists
    p_already: float                    # reached at or before the last target's release
    t_months: dict                      # over the reachable draws
    date: dict                          # the same as dates: median, low, high
    p_above_ceiling: float = 0.0        # score: S ≥ chance + c
    p_below_chance: float = 0.0         # score: S ≤ chance
    p_no_size: float = 0.0              # score: below the loss law's floor (no finite size)
    p_above_largest_reference: float = 0.0
    p_below_smallest_reference: float = 0.0
    extrapolated: list[str] = field(default_factory=list)
    offset_included: bool = False       # score: the targets' offset δ_B subtracted
    curve_size: dict | None = None      # score: where the reference curve reaches S, billions


@dataclass
class Forecast:
    trend: str
    estimand: str
    n_draws: int
    data_start: str                     # the first and last target's release
    data_end: str
    window_months: float
    reference_sizes: list[float]        # smallest and largest reference model, billions
    params: float | None = None         # N (billions) of --params
    at: list[AtDate] = field(default_factory=list)
    reach: list[Reach] = field(default_factory=list)
    release_group: bool = False         # a new release group's σ_group is in the predictive
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return results.json_safe(asdict(self))

    def text(self) -> str:
        name = {"frontier": "frontier", "changepoint": "frontier (last segment)",
                "mean": "mean trend", "envelope": "envelope OLS"}.get(self.trend, self.trend)
        lines = [f"Estimand: {results.ESTIMAND.get(self.estimand, self.estimand)}",
                 f"Forecast from the {self.trend} trend ({self.n_draws} posterior draws; "
                 f"targets released {self.data_start} … {self.data_end}, "
                 f"{self.window_months:.1f} months). Medians with 90% HDIs."]
        if self.at:
            lines += ["", f"{'date':<12} {name + ' ρ = e^μ(t)':<26} {'a new model ρ (predictive)':<28}"
                          f" months after the data"]
            for a in self.at:
                lines.append(f"{a.date:<12} {_triple(a.frontier_density):<26} "
                             f"{_triple(a.new_model_density):<28} {a.months_after_data:.1f}"
                             + ("  (extrapolated)" if a.extrapolated else ""))
                lines.append(f"{'  ln ρ':<12} {_triple(a.frontier_log, '+.2f'):<26} "
                             f"{_triple(a.new_model_log, '+.2f')}")
                if a.effective_params is not None:
                    lines.append(f"{'':<12} a model of {self.params:g}B on it: N̂ = "
                                 f"{_triple(a.effective_params, '.3g')}B")
            far = [a.date for a in self.at if a.extrapolated]
            if far:
                lines.append(f"  extrapolated: {', '.join(far)}: more than the data span "
                             f"({self.window_months:.1f} months) past the last target's release")
            lines.append("  the new model's band includes the models' scatter about the trend"
                         + (" and a new release group's shift (σ_group)"
                            if self.release_group else ""))
        for r in self.reach:
            lines += [""] + r_text(r, self)
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def r_text(r: Reach, fc: Forecast) -> list[str]:
    """The lines of one ``--params N --match/--score`` answer."""
    on = "frontier" if fc.trend in ("frontier", "changepoint") else f"{fc.trend}-trend"
    head = (f"When does a {r.params:g}B {on} model match {r.what}?" if r.kind == "match"
            else f"When does a {r.params:g}B {on} model score {r.what}?")
    lines = [head]
    if r.curve_size is not None:
        lines.append(f"  the reference curve reaches it at N = {_triple(r.curve_size, '.3g')}B"
                     + ("; a target scores there from N̂ = N·e^(−δ), δ the targets' offset on "
                        "the benchmark" if r.offset_included else ""))
    lines.append(f"  needed effective size {_triple(r.needed_size, '.3g')}B")
    why = [f"{_share(p)} of draws {text}" for p, text in (
        (r.p_above_ceiling, "at or above the curve's ceiling (chance + c)"),
        (r.p_below_chance, "at or below chance"),
        (r.p_no_size, "below the loss law's floor at D0 (no size scores that high)")) if p]
    if why:
        lines.append("  no size reaches the score in " + "; ".join(why))
    lines.append(f"  P(reachable) {_share(r.p_reachable)}"
                 + (f"; P(already reached by {fc.data_end}) {_share(r.p_already)}"
                    if r.p_reachable else ""))
    if r.p_reachable:
        d = r.date
        lines.append(f"  date: median {d['median']} (90% HDI {d['low']} … {d['high']}), over the "
                     "draws that reach it")
    for x in r.extrapolated:
        lines.append(f"  extrapolated: {x}")
    return lines


def _triple(d: dict, fmt: str = ".2f") -> str:
    return f"{d['median']:{fmt}} [{d['low']:{fmt}}, {d['high']:{fmt}}]"


def _share(p: float) -> str:
    return f"{p:.3f}" if 0 < p < 1 else ("< 0.001" if p == 0 else "> 0.999")


# --- the analysis ---------------------------------------------------------------------------------

def _parse_date(text) -> date:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise ForecastError(f"--at {text!r} is not a date (YYYY-MM-DD)") from None


def _closest(name: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    return f"did you mean {', '.join(hint)}?" if hint else "check the spelling"


def _model_log_size(idata, name: str) -> tuple[np.ndarray, str]:
    """A model's posterior log effective size (a target's η draws, a reference's ln N) and
    its full name (``name`` may leave out the organisation)."""
    cd = idata.constant_data
    names = [str(n) for n in cd["model_name"].values]
    post = idata.posterior
    # models seen only in tasks without reference scores (sequential.py) have their own draws
    only = ([str(n) for n in post["unanchored_model"].values]
            if "unanchored_log_effective_size" in post else [])
    if name not in names + only:
        short = {n.split("/")[-1]: n for n in names + only}
        if name in short:           # the name without its organisation
            name = short[name]
        else:
            raise ForecastError(f"--match: model {name!r} is not in the run; "
                                f"{_closest(name, names + only)}")
    if name in only:
        return results.draws(idata, "unanchored_log_effective_size")[:, only.index(name)], name
    i = names.index(name)
    role = cd["role"].values
    if role[i] == "reference":      # ρ = 1 by definition: its effective size is its size
        n = results.draws(idata, "log_effective_size").shape[0]
        return np.full(n, math.log(float(cd["params"].values[i]))), name
    k = int(np.sum(role[:i] == "target"))
    return results.draws(idata, "log_effective_size")[:, k], name


def _check_request(params, match, score, benchmark) -> None:
    """A :class:`ForecastError` for arguments that do not make a question."""
    if (match is not None or score is not None) and params is None:
        raise ForecastError("--match and --score need --params N (the new model's size, billions)")
    if params is not None and not (params > 0 and math.isfinite(params)):
        raise ForecastError("--params must be a positive number of billions")
    if (score is None) != (benchmark is None):
        raise ForecastError("--score and --benchmark go together (the score S on benchmark B)")
    if score is not None and not 0.0 < score < 1.0:
        raise ForecastError(f"--score must lie in (0, 1); got {score:g}")


@dataclass
class _Run:
    """What every part of a forecast reads from the run."""

    idata: object
    config: object
    A: np.ndarray                       # the slope of the trend's last segment, per draw
    t_last: float                       # the last target's release, months from the origin
    window: float                       # months from the first target's release to the last
    ref_sizes: np.ndarray               # the reference models' sizes, billions
    data_start: str                     # the first and last target's release date
    data_end: str

    @classmethod
    def of(cls, run: results.Run) -> "_Run":
        idata, config = run.idata, run.config
        cd = idata.constant_data
        role = cd["role"].values
        t_targets = cd["t_months"].values[role == "target"].astype(float)
        dates = cd["release_date"].values[role == "target"].astype(str)
        t_first, t_last = float(t_targets.min()), float(t_targets.max())
        return cls(idata=idata, config=config, A=last_slope(idata, config), t_last=t_last,
                   window=t_last - t_first,
                   ref_sizes=cd["params"].values[role == "reference"].astype(float),
                   data_start=str(min(dates)), data_end=str(max(dates)))


@dataclass
class _Query:
    """One --match/--score question: the log effective size η* a model must reach."""

    kind: str                           # "match" or "score"
    what: str                           # the model's name, or "S on BENCH"
    needed: np.ndarray                  # η* per draw
    read_at: np.ndarray                 # where the reference curves are read, per draw
    extra: dict = field(default_factory=dict)    # further fields of its Reach


def _add_dates(fc: Forecast, r: _Run, at, params: float | None, seed: int) -> None:
    """The frontier and a new model's log density at each ``at`` date, into ``fc.at``."""
    when = sorted({_parse_date(d) for d in at})
    for d in when:
        if d < date.fromisoformat(fc.data_start):
            raise ForecastError(f"--at {d}: before the data (the first target was released "
                                f"{fc.data_start}); a forecast is for dates from then on")
    if not when:
        return
    t_at = r.config.model.months([d.isoformat() for d in when])
    mu = frontier_draws(r.idata, r.config, t_at)
    new = predictive_at(r.idata, r.config, t_at, seed)
    for k, d in enumerate(when):
        f_log, n_log = interval(mu[:, k]), interval(new[:, k])
        fc.at.append(AtDate(
            date=d.isoformat(), t_months=float(t_at[k]),
            months_after_data=float(t_at[k] - r.t_last),
            frontier_log=f_log, frontier_density=_exp(f_log),
            new_model_log=n_log, new_model_density=_exp(n_log),
            effective_params=(_exp(interval(math.log(params) + mu[:, k]))
                              if params is not None else None),
            extrapolated=bool(t_at[k] - r.t_last > r.window)))


def _score_query(r: _Run, score: float, benchmark: str) -> _Query:
    """η* for ``score`` on ``benchmark``, per draw: the log size at which a reference-family
    model scores it, less the targets' offset δ_B there when the run has offsets; with the
    shares of draws where no size scores it."""
    idata, cd = r.idata, r.idata.constant_data
    benches = [str(b) for b in cd["benchmark"].values]
    tasks = [b for b in benches if benchmark_registry.base_benchmark(b) == benchmark]
    if benchmark not in benches and len(tasks) == 1:     # "mmlu" for the run's mmlu@swallow
        benchmark = tasks[0]
    if benchmark not in benches:
        raise ForecastError(f"--benchmark {benchmark!r} is not in the run (it has "
                            f"{', '.join(benches)}); {_closest(benchmark, benches)}")
    j = benches.index(benchmark)
    size = score_log_size(idata, r.config, score, j)
    chance = float(cd["chance"].values[j])
    extra = {"p_above_ceiling": float(np.mean(score >= ceiling_of(idata, j))),
             "p_below_chance": float(score <= chance)}
    extra["p_no_size"] = max(0.0, float(np.mean(np.isnan(size))) - extra["p_above_ceiling"]
                             - extra["p_below_chance"])
    offset = "target_offset" in idata.posterior
    # a target of size η scores on j as a reference model of η + δ_j: it needs η = size − δ_j
    needed = size - results.draws(idata, "target_offset")[:, j] if offset else size
    extra["offset_included"] = offset
    return _Query("score", f"{score:g} on {benchmark}", needed, size, extra)


def _reach(r: _Run, q: _Query, params: float, mu_last: np.ndarray) -> Reach:
    """When a frontier model of ``params`` billions reaches the query's η*, over the draws."""
    t = crossing_time(math.log(params), q.needed, r.A, r.t_last, mu_last)
    ok = np.isfinite(t)
    t_int = interval(t[ok])
    size = interval(q.needed)
    reach = Reach(kind=q.kind, params=float(params), what=q.what, needed_log_size=size,
                  needed_size=_exp(size), p_reachable=float(np.mean(ok)),
                  p_already=float(np.mean(ok & (t <= r.t_last))), t_months=t_int,
                  date={k: to_date(r.config, v) for k, v in t_int.items()}, **q.extra)
    with np.errstate(invalid="ignore"):
        reach.p_above_largest_reference = float(np.mean(q.read_at > math.log(r.ref_sizes.max())))
        reach.p_below_smallest_reference = float(np.mean(q.read_at < math.log(r.ref_sizes.min())))
    lo_ref, hi_ref = float(r.ref_sizes.min()), float(r.ref_sizes.max())
    beyond = [f"{where} in {_share(p)} of draws" for p, where in (
        (reach.p_above_largest_reference, f"above the largest reference model ({hi_ref:g}B)"),
        (reach.p_below_smallest_reference, f"below the smallest ({lo_ref:g}B)")) if p]
    if beyond:
        reach.extrapolated.append("the size on the reference curve lies " + " and ".join(beyond)
                                  + ": there the curves are read where no reference model is")
    if q.kind == "score":
        reach.curve_size = _exp(interval(q.read_at))
    if ok.any() and t_int["median"] - r.t_last > r.window:
        reach.extrapolated.append(
            f"the median date lies {t_int['median'] - r.t_last:.1f} months after the last "
            f"target's release, further than the data span ({r.window:.1f} months)")
    return reach


def forecast(run, at=(), params: float | None = None, match: str | None = None,
             score: float | None = None, benchmark: str | None = None,
             seed: int = SEED) -> Forecast:
    """The forecast of a run (a directory or a loaded ``results.Run``): the frontier and a new
    model's log density at each ``at`` date (YYYY-MM-DD), and with ``params`` (billions) the
    date at which a frontier model of that size matches ``match`` or scores ``score`` on
    ``benchmark``. ``seed``: of the predictive draws. Raises :class:`ForecastError` for a
    request that cannot be answered (unknown model or benchmark, a date before the data, a
    score outside (0, 1))."""
    _check_request(params, match, score, benchmark)
    if not isinstance(run, results.Run):
        run = results.load_run(run)
    r = _Run.of(run)
    fc = Forecast(trend=r.config.model.trend, estimand=r.config.model.curves,
                  n_draws=int(r.A.size), data_start=r.data_start, data_end=r.data_end,
                  window_months=r.window,
                  reference_sizes=[float(r.ref_sizes.min()), float(r.ref_sizes.max())],
                  params=None if params is None else float(params),
                  release_group="sigma_group" in r.idata.posterior)
    if r.config.model.trend == "envelope" and not np.isfinite(r.A).all():
        fc.notes.append(f"{int((~np.isfinite(r.A)).sum())} draws have no envelope slope; they "
                        "are left out of the trend line's intervals")
    _add_dates(fc, r, at, params, seed)
    queries = []
    if match is not None:
        eta, name = _model_log_size(r.idata, match)
        queries.append(_Query("match", name, eta, eta))
    if score is not None:
        queries.append(_score_query(r, score, benchmark))
    if queries:
        mu_last = frontier_draws(r.idata, r.config, [r.t_last])[:, 0]
        fc.reach += [_reach(r, q, params, mu_last) for q in queries]
    return fc
