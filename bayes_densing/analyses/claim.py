"""The doubling claim: how sure can we be that density doubles every m months?

From a run directory (nothing is re-sampled)::

    from bayes_densing.analyses.claim import claim
    c = claim("runs/demo", months=[3.3, 3.5])
    print(c.text())

The doubling time is T = ln 2 / A per posterior draw (A the frontier's — or, for the
``envelope`` trend, the per-draw envelope OLS's — slope per month). Draws with A ≤ 0 have no
doubling (T = ∞): they count against every claim. For a ``changepoint`` run the slope ratio
A_after / A_before is reported with P(A_after ≥ r·A_before and A_after > 0), the paper's
"r = 1.5: 50% faster after ChatGPT" (a draw where density fell before the change and grew
after counts as faster).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bayes_densing.model import laws
from bayes_densing import results

HDI_PROBS = (0.5, 0.9, 0.95)


@dataclass
class Claim:
    trend: str
    n_draws: int
    median_months: float
    hdi_months: dict[str, list[float]]          # "0.5" / "0.9" / "0.95" → [low, high]
    p_leq: dict[str, float]                     # claimed months → P(T ≤ m)
    p_no_growth: float
    A_per_day: dict[str, float]                 # median, low, high (90%)
    growth_per_year: dict[str, float]           # median, low, high (90%)
    ratio: dict | None = None                   # changepoint runs only
    notes: list[str] = field(default_factory=list)
    estimand: str = "joint"                     # model.curves of the run

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        d = laws.DAYS_PER_MONTH
        lines = [f"Estimand: {results.ESTIMAND[self.estimand]}",
                 f"Doubling time of density ({self.trend} trend, {self.n_draws} posterior draws):",
                 f"  median {self.median_months:.2f} months ({self.median_months * d:.0f} days)"]
        for prob, (lo, hi) in self.hdi_months.items():
            lines.append(f"  {float(prob):.0%} HDI {lo:.2f}–{hi:.2f} months "
                         f"({lo * d:.0f}–{hi * d:.0f} days)")
        for m, p in self.p_leq.items():
            lines.append(f"  P(T ≤ {m} months) {_prob(p)}")
        if self.p_no_growth:
            lines.append(f"  P(no growth, A ≤ 0) {_prob(self.p_no_growth)}")
        a, g = self.A_per_day, self.growth_per_year
        lines.append(f"  A = {a['median']:.4f} per day (90% HDI {a['low']:.4f}–{a['high']:.4f})")
        lines.append(f"  density grows ×{g['median']:.1f} per year "
                     f"(90% HDI ×{g['low']:.1f}–×{g['high']:.1f})")
        if self.ratio:
            r = self.ratio
            lines.append(f"Slope after / before {r['change_date']}: median {r['median']:.2f} "
                         f"(90% HDI {r['low']:.2f}–{r['high']:.2f})")
            lines.append(f"  P(after ≥ {r['threshold']:g} × before) {_prob(r['p_at_least'])}")
            lines.append(f"  P(slower after: A_after < A_before) {_prob(r['p_slower_after'])}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _prob(p: float) -> str:
    """"= p", or "< 0.001" / "> 0.999" where no draw (or every draw) satisfies the claim."""
    return f"= {p:.3f}" if 0 < p < 1 else ("< 0.001" if p == 0 else "> 0.999")


def _interval(x: np.ndarray) -> dict[str, float]:
    lo, hi = results.hdi(x)
    return {"median": float(np.median(x)), "low": lo, "high": hi}


def claim(run: str | Path | results.Run, months=results.CLAIMS, ratio: float = 1.5,
          hdi_probs=HDI_PROBS) -> Claim:
    """Posterior of the doubling time of a run and the probability of each claimed value."""
    if not isinstance(run, results.Run):
        run = results.load_run(run)
    idata, config = run.idata, run.config
    A = results.slope_draws(idata, config)
    T = results.doubling_months(A)
    finite = T[np.isfinite(T)]
    med_A = float(np.median(A))
    notes = []
    if finite.size < T.size:
        notes.append(f"{T.size - finite.size} of {T.size} draws have no growth (T = ∞); the "
                     "HDIs are over the draws with growth")
    out = Claim(
        trend=config.model.trend, n_draws=int(A.size),
        median_months=laws.doubling_time(med_A) if med_A > 0 else math.inf,
        hdi_months={f"{p:g}": list(results.hdi(finite, p)) for p in hdi_probs},
        p_leq={f"{m:g}": float(np.mean(T <= m)) for m in months},
        p_no_growth=float(np.mean(A <= 0)),
        A_per_day=_interval(A / laws.DAYS_PER_MONTH),
        growth_per_year={k: float(laws.growth_per_year(v)) for k, v in _interval(A).items()},
        notes=notes, estimand=config.model.curves)
    post = idata.posterior
    if "A_before" in post and "A_after" in post:
        before = results.draws(idata, "A_before")
        after = results.draws(idata, "A_after")
        grew = before > 0
        r = after[grew] / before[grew]
        out.ratio = {"change_date": results.change_label(idata, config), "threshold": ratio,
                     "p_at_least": float(np.mean((after >= ratio * before) & (after > 0))),
                     "p_slower_after": float(np.mean(after < before)),
                     **(_interval(r) if r.size else {"median": math.nan, "low": math.nan,
                                                      "high": math.nan})}
        if not grew.all():
            notes.append(f"the ratio's median and HDI use the {grew.sum()} draws with growth "
                         f"before {results.change_label(idata, config)}")
    return out
