"""Which benchmarks (tasks) enter the default set: one rule, with bounds fixed for every
dataset, none tuned to a dataset's outcome (docs/analyses.md, "Which benchmarks enter the
default set"). A benchmark enters when all three criteria hold:

1. the reference family identifies its curve, in the references-only posterior (the cut's
   curve module, ``cut.CutSampler.curves``) (:func:`identified`);
2. scores rise with size across the targets (:func:`targets_rise`);
3. the references are monotone up to binomial noise (:func:`refs_monotone`).

The references' own Spearman correlation is reported beside them, not judged. Where criteria
2 and 3 pass and criterion 1's deciding statistic, a posterior quantile, is within
:data:`BORDER_MCSE` Monte Carlo standard errors of its bound, the verdict is ``borderline``
and the benchmark stays out: a verdict the seed could turn is not taken as in.

    from bayes_densing.analyses.benchmark_rule import evaluate, load_all, text
    data = load_all(config)               # every benchmark with reference scores
    table = evaluate(data, config)        # one row per benchmark
    print(text(table))
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from bayes_densing.model import laws
from bayes_densing.config import Config
from bayes_densing.data import (DATASETS, DataError, ScoreData, bundled_reference, dataset_path, load,
                    read_scores)

GAIN_QUANTILE = 0.05          # criterion 1: the quantile of z_gain that must clear GAIN_MIN
# the prior HalfNormal(4)'s 5% quantile is 0.25: above one logit the references, not the prior,
# rule out a flat curve
GAIN_MIN = 1.0
WIDTH_LEVEL = 0.90            # criterion 1: the central interval of ln N̂ whose width is judged
WIDTH_MAX = math.log(4.0)     # a target's size within a factor of 2 either way from the curve alone
TARGET_SPEARMAN_MIN = 0.5     # criterion 2: half-way between no relation and a perfect ranking
# criterion 3: a drop past max(DROP_SE · SE, DROP_FLOOR) fails. Past 3 SE binomial noise has a
# one-sided chance of 0.13% per pair of sizes (under 1% over an 8-size family's 7 pairs); on
# 10,000+ items 3 SE is under 2 points, less than prompt and harness details move a score
DROP_SE = 3.0
DROP_FLOOR = 0.03

CRITERIA = ("identified", "targets_rise", "refs_monotone")
# criterion 1 within this many Monte Carlo SEs of a bound: borderline (2 SEs past it, the same
# side with infinitely many draws with about 98% probability, one-sided)
BORDER_MCSE = 2.0
COLUMNS = ("benchmark", "n_refs", "n_targets", "refs_spearman", "targets_spearman",
           "ref_drop", "ref_drop_se", "ref_drop_at", "gain_q05", "median_target_score",
           "log_size_width", *CRITERIA, "verdict", "borderline")


# --- the three criteria, each on plain arrays --------------------------------------------------

def spearman(x, y) -> float:
    """Spearman's rank correlation of x and y (NaN with fewer than 3 pairs or a constant side)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def _steps(params, scores, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes in order, and the drop of score from each reference size to the next with the
    binomial standard error of that difference (``n_items`` items each)."""
    order = np.argsort(np.asarray(params, dtype=float), kind="stable")
    s = np.asarray(scores, dtype=float)[order]
    se = np.sqrt((s[:-1] * (1 - s[:-1]) + s[1:] * (1 - s[1:])) / n_items)
    return np.asarray(params, dtype=float)[order], s[:-1] - s[1:], se


def drop_bound(se):
    """The largest drop criterion 3 accepts at standard error ``se``."""
    return np.maximum(DROP_SE * np.asarray(se, dtype=float), DROP_FLOOR)


def largest_drop(params, scores, n_items: int) -> tuple[float, float, int]:
    """The worst fall of score between consecutive reference sizes: ``(drop, drop / SE, i)``
    for the pair (i, i + 1) in size order whose drop is largest against its bound
    (:func:`drop_bound`). When no pair falls, the smallest rise, as a negative drop."""
    _, drop, se = _steps(params, scores, n_items)
    if len(drop) == 0:
        return float("nan"), float("nan"), -1
    worst = int(np.argmax(drop / drop_bound(se)))
    return float(drop[worst]), float(drop[worst] / se[worst]), worst


def refs_monotone(params, scores, n_items: int) -> bool:
    """Criterion 3: at least two reference sizes, and no consecutive pair falls past
    :func:`drop_bound`."""
    _, drop, se = _steps(params, scores, n_items)
    return bool(len(drop) > 0 and np.all(drop <= drop_bound(se)))


def targets_rise(target_params, target_scores) -> bool:
    """Criterion 2: the targets' Spearman of score with ln N above :data:`TARGET_SPEARMAN_MIN`."""
    rho = spearman(np.log(np.asarray(target_params, dtype=float)), target_scores)
    return bool(rho > TARGET_SPEARMAN_MIN)


def identified(gain_q05: float, log_size_width: float) -> bool:
    """Criterion 1: the :data:`GAIN_QUANTILE` quantile of the benchmark's gain ``z_gain`` (the
    score logit's rise from the smallest to the largest reference model) clears
    :data:`GAIN_MIN`, or the central interval of ln N̂ at the targets' median score, each curve
    draw inverted (:func:`log_effective_size`), is narrower than :data:`WIDTH_MAX`."""
    return bool(gain_q05 > GAIN_MIN or log_size_width < WIDTH_MAX)


# --- the references-only posterior ---------------------------------------------------------------

def curve_sampler(data: ScoreData, config: Config):
    """The cut's samplers for ``data``'s design (``cut.CutSampler``), under ``model.curves =
    "cut"``: compiled once, they fit the curves of any dataset of the same design."""
    from bayes_densing.inference.cut import CutSampler

    config = copy.deepcopy(config)
    config.model.curves = "cut"
    return CutSampler(data, config)


def curve_draws(data: ScoreData, config: Config, seed: int | None = None,
                progressbar: bool = False, cut=None) -> dict[str, np.ndarray]:
    """The references-only posterior of every benchmark's curve at once (the cut's curve module,
    ``CutSampler.curves``), as constrained values: name → (chain, draw, ...).
    ``cut``: a :func:`curve_sampler` compiled for another dataset of the same design (the same
    observations, item counts and reference models; other scores), reused."""
    from bayes_densing.inference.cut import reference_weights

    if cut is None:
        cut = curve_sampler(data, config)
    elif not (np.array_equal(cut.sweep.n, data.obs.n.to_numpy())
              and np.array_equal(cut.data.obs.model_idx, data.obs.model_idx)
              and np.array_equal(cut.data.references.params, data.references.params)):
        raise ValueError("curve_draws: the compiled sampler is for another design")
    k = data.obs.k.to_numpy()
    curve = cut.curves(config.sampler.seed if seed is None else seed, progressbar, counts=k)
    args = (*reference_weights(data), *cut._counts(k), *cut.sweep.setting_args())
    values, _ = cut.sweep.posterior(curve.z, cut.sweep.posterior_args(args))
    return {k: np.asarray(v) for k, v in values.items()}


def log_effective_size(draws: dict[str, np.ndarray], data: ScoreData, config: Config,
                       scores) -> np.ndarray:
    """ln N̂ (draws, benchmark) of a model scoring ``scores`` (one per benchmark) on each curve
    draw; a score the curve cannot reach is +∞ (at or past the ceiling, or a loss below what
    infinite size gives) or −∞ (at or below chance)."""
    from bayes_densing.model.curves import curve_parameters

    refs = data.references.params.to_numpy(dtype=float)
    coefs, l, gamma, c = curve_parameters(draws, refs, data.chance, config.model.d0, xp=np)
    s = np.asarray(scores, dtype=float)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        n_hat = laws.effective_size(s, **coefs, c=c, gamma=gamma, l=l, d=data.chance,
                                    d0=config.model.d0)
        out = np.log(n_hat)
    above = np.broadcast_to(s > data.chance, out.shape)
    return np.where(np.isnan(out), np.where(above, np.inf, -np.inf), out)


def quantile_mcse(x: np.ndarray, q: float) -> np.ndarray:
    """Monte Carlo standard error of the ``q`` quantile of draws (chain, draw, k) → (k,)
    (ArviZ); infinite draws are clipped far out, so a finite quantile's error stays finite."""
    import arviz as az

    x = np.clip(np.asarray(x, dtype=float), -1e6, 1e6)
    return np.asarray(az.mcse(x, method="quantile", prob=q), dtype=float).reshape(x.shape[2:])


def near_bound(*routes: tuple[float, float]) -> bool:
    """Whether criterion 1's outcome is within Monte Carlo error: ``routes`` are (margin past
    the bound, positive when it passes; the error allowed). Passed, every passing route is
    within its error of the bound; failed, some route is."""
    near = [abs(m) < e for m, e in routes]
    passing = [n for (m, _), n in zip(routes, near) if m > 0]
    return all(passing) if passing else any(near)


def interval_width(x: np.ndarray, level: float = WIDTH_LEVEL) -> np.ndarray:
    """Width of the central ``level`` interval along axis 0, by order statistics (so infinite
    draws give an infinite width, never NaN)."""
    lo, hi = (np.quantile(x, q, axis=0, method="inverted_cdf")
              for q in ((1 - level) / 2, (1 + level) / 2))
    with np.errstate(invalid="ignore"):
        width = hi - lo
    return np.where(np.isnan(width), np.inf, width)


# --- the table ------------------------------------------------------------------------------------

def scores_wide(data: ScoreData) -> pd.DataFrame:
    """Scores as (model × benchmark), models in the data's order."""
    obs = data.obs
    wide = obs.pivot(index="model_idx", columns="bench_idx", values="score")
    wide = wide.reindex(index=range(len(data.models)), columns=range(len(data.benchmarks)))
    wide.index, wide.columns = data.models.model, data.benchmarks
    return wide


def evaluate(data: ScoreData, config: Config, draws: dict[str, np.ndarray] | None = None,
             seed: int | None = None, progressbar: bool = False, cut=None) -> pd.DataFrame:
    """The rule on every benchmark of ``data``: one row per benchmark (:data:`COLUMNS`).
    ``draws``: the references-only posterior (:func:`curve_draws`, (chain, draw, ...)), fitted
    here if not given (by ``cut``, a :func:`curve_sampler` of the design, when given).
    ``verdict``: ``in``, ``out``, or ``borderline`` (criteria 2 and 3 pass and criterion 1's
    deciding statistic is within :data:`BORDER_MCSE` Monte Carlo standard errors of its bound:
    another seed could turn it; left out of the default set)."""
    wide = scores_wide(data)
    n_ref = data.n_ref
    params = data.models.params.to_numpy(dtype=float)
    ref_s, tgt_s = wide.iloc[:n_ref], wide.iloc[n_ref:]
    median = tgt_s.median(axis=0, skipna=True).to_numpy(dtype=float)
    if draws is None:
        draws = curve_draws(data, config, seed, progressbar, cut)
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()}
    gain_q = np.quantile(flat["z_gain"], GAIN_QUANTILE, axis=0)
    gain_se = quantile_mcse(draws["z_gain"], GAIN_QUANTILE)
    eta = log_effective_size(flat, data, config, np.nan_to_num(median))
    widths = interval_width(eta)
    chains = draws["z_gain"].shape[:2]
    width_se = np.hypot(*(quantile_mcse(eta.reshape(chains + eta.shape[1:]), q)
                          for q in ((1 - WIDTH_LEVEL) / 2, (1 + WIDTH_LEVEL) / 2)))
    rows = []
    for j, b in enumerate(data.benchmarks):
        r, t = ref_s[b].notna().to_numpy(), tgt_s[b].notna().to_numpy()
        rp, rs = params[:n_ref][r], ref_s[b].to_numpy(dtype=float)[r]
        tp, ts = params[n_ref:][t], tgt_s[b].to_numpy(dtype=float)[t]
        drop, drop_z, at = largest_drop(rp, rs, int(data.n_items[j]))
        sizes = np.sort(rp)
        width = float(widths[j]) if t.any() else float("inf")
        row = {"benchmark": b, "n_refs": int(r.sum()), "n_targets": int(t.sum()),
               "refs_spearman": spearman(np.log(rp), rs),
               "targets_spearman": spearman(np.log(tp), ts),
               "ref_drop": drop, "ref_drop_se": drop_z,
               "ref_drop_at": f"{sizes[at]:g}B→{sizes[at + 1]:g}B" if at >= 0 else "",
               "gain_q05": float(gain_q[j]),
               "median_target_score": float(median[j]) if t.any() else float("nan"),
               "log_size_width": width}
        row["identified"] = identified(row["gain_q05"], width)
        row["targets_rise"] = targets_rise(tp, ts)
        row["refs_monotone"] = refs_monotone(rp, rs, int(data.n_items[j]))
        row["borderline"] = bool(row["targets_rise"] and row["refs_monotone"] and near_bound(
            (row["gain_q05"] - GAIN_MIN, BORDER_MCSE * gain_se[j]),
            (WIDTH_MAX - width, BORDER_MCSE * width_se[j])))
        row["verdict"] = ("borderline" if row["borderline"]
                          else "in" if all(row[c] for c in CRITERIA) else "out")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def default_set(table: pd.DataFrame) -> list[str]:
    """The benchmarks the rule keeps, in the table's order."""
    return table.benchmark[table.verdict == "in"].tolist()


def bounds() -> dict[str, float]:
    """The rule's bounds, by name (for the JSON output)."""
    return {"gain_quantile": GAIN_QUANTILE, "gain_min": GAIN_MIN, "width_level": WIDTH_LEVEL,
            "width_max": WIDTH_MAX, "target_spearman_min": TARGET_SPEARMAN_MIN,
            "drop_se": DROP_SE, "drop_floor": DROP_FLOOR, "border_mcse": BORDER_MCSE}


def text(table: pd.DataFrame, title: str = "") -> str:
    """The table as fixed-width text, with the bounds and the resulting default set."""
    def num(x, fmt):
        return "—" if not np.isfinite(x) else format(x, fmt)

    def mark(ok):
        return "pass" if ok else "FAIL"

    head = (f"{'benchmark':<22} {'refs':>4} {'tgts':>4} {'ρ refs':>6} {'ρ tgts':>6} "
            f"{'ref drop':>8} {'(SE)':>6} {'at':>12} {'gain q5':>7} {'ln N̂ w90':>8}  "
            f"{'1 ident':<7} {'2 rise':<6} {'3 mono':<6} verdict")
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for r in table.itertuples():
        lines.append(
            f"{r.benchmark:<22} {r.n_refs:>4} {r.n_targets:>4} {num(r.refs_spearman, '6.2f')} "
            f"{num(r.targets_spearman, '6.2f')} {num(r.ref_drop, '8.3f')} "
            f"{num(r.ref_drop_se, '6.1f')} {r.ref_drop_at:>12} {num(r.gain_q05, '7.2f')} "
            f"{num(r.log_size_width, '8.2f'):>8}  {mark(r.identified):<7} "
            f"{mark(r.targets_rise):<6} {mark(r.refs_monotone):<6} {r.verdict}")
    lines += ["",
              f"Rule: 1 gain's 5% quantile > {GAIN_MIN:g} or ln N̂'s 90% width at the targets' "
              f"median score < ln 4 = {WIDTH_MAX:.2f}; 2 targets' Spearman(score, ln N) > "
              f"{TARGET_SPEARMAN_MIN:g}; 3 no drop between consecutive reference sizes past "
              f"max({DROP_SE:g} SE, {DROP_FLOOR:g}) (SE: binomial, of the difference)",
              f"Default set by the rule: {', '.join(default_set(table)) or '(none)'}"]
    border = table.benchmark[table.borderline].tolist()
    if border:
        lines.append(f"Borderline, left out (criteria 2 and 3 pass, criterion 1 within "
                     f"{BORDER_MCSE:g} Monte Carlo SE of its bound, so the seed could decide it): "
                     f"{', '.join(border)}")
    return "\n".join(lines)


def to_dict(table: pd.DataFrame, data: ScoreData) -> dict:
    """The table, the bounds and the default set, JSON-ready (infinities as null)."""
    def clean(v):
        if isinstance(v, (float, np.floating)):
            return float(v) if np.isfinite(v) else None
        return v.item() if isinstance(v, np.generic) else v

    return {"source": data.source, "data": data.describe(),
            "reference": data.reference or "role column",
            "since": data.since, "bounds": bounds(), "default_set": default_set(table),
            "benchmarks": [{k: clean(v) for k, v in row.items()}
                           for row in table.to_dict(orient="records")]}


# --- the data -------------------------------------------------------------------------------------

def load_all(config: Config, data_path: str | Path | None = None) -> ScoreData:
    """``data_path`` (or the config's bundled dataset) with every benchmark that has a score from
    a reference model: the candidates the rule judges. The reference is ``data.reference``, the
    bundled dataset's default, the file's ``role`` column or, for a file of targets only, the
    bundled reference family that ``sample`` borrows."""
    config = copy.deepcopy(config)
    cfg = config.data
    path = Path(data_path) if data_path is not None else dataset_path(cfg.dataset)
    df, _ = read_scores(path)
    reference = cfg.reference or (DATASETS[cfg.dataset].reference if data_path is None else "")
    if reference:
        if "family" not in df.columns:
            raise DataError(f"{path}: column 'family' is needed to choose the reference family "
                            f"{reference!r}; add it, or mark the reference models in a 'role' column")
        is_ref = df.family == reference
    elif "role" in df.columns and (df.role.str.lower() == "reference").any():
        is_ref = df.role.str.lower() == "reference"
    else:               # targets only: the tasks of the reference family `sample` borrows
        shared = set(df.benchmark) & set(bundled_reference(config).benchmark)
        cfg.benchmarks = sorted(shared)
        return load(config, data_path)     # which says so, where no task is shared
    cfg.benchmarks = sorted(set(df.benchmark[is_ref]))
    if not cfg.benchmarks:
        families = sorted(set(df.family)) if "family" in df.columns else []
        raise DataError(f"{path}: no scores of the reference family {reference!r}; give one of "
                        f"the families: {', '.join(families[:30])}")
    return load(config, data_path)


# --- a synthetic check --------------------------------------------------------------------------

FLAT_LEVEL, FLAT_SD = 0.45, 0.03     # the flat benchmark: each model's level, and its spread
FLAT_ITEMS, FLAT_CHANCE = 1000, 0.25


def synthetic_scores(seed: int, n_targets: int = 40, doubling_months: float = 6.0,
                     config: Config | None = None) -> pd.DataFrame:
    """Two benchmarks on one simulated population (``simulate.simulate``, 8 reference sizes),
    as a long scores table with a ``role`` column: ``mmlu``, drawn from the model's own curves
    (it scales), and ``flat``, whose every model scores binomial noise around a level of its
    own, N(:data:`FLAT_LEVEL`, :data:`FLAT_SD`), whatever its size (``n_items`` and ``chance``
    columns on its rows). The rule should keep the first and drop the second."""
    from bayes_densing.model.simulate import simulate

    df, _ = simulate(n_targets, 1, doubling_months, seed=seed, config=config or Config())
    rng = np.random.default_rng([seed, 7])
    models = df.drop_duplicates("model").copy()
    level = np.clip(rng.normal(FLAT_LEVEL, FLAT_SD, len(models)), 0.0, 1.0)
    models["benchmark"] = "flat"
    models["score"] = rng.binomial(FLAT_ITEMS, level) / FLAT_ITEMS
    models["n_items"], models["chance"] = float(FLAT_ITEMS), FLAT_CHANCE
    return pd.concat([df, models], ignore_index=True)


def synthetic(seed: int, n_targets: int = 40, doubling_months: float = 6.0,
              config: Config | None = None) -> ScoreData:
    """:func:`synthetic_scores` assembled (every target, both benchmarks)."""
    from bayes_densing.data import assemble

    config = copy.deepcopy(config or Config())
    df = synthetic_scores(seed, n_targets, doubling_months, config)
    df["release_date"] = pd.to_datetime(df.release_date)
    df["line"] = np.arange(len(df)) + 2
    config.data.benchmarks, config.data.since, config.data.reference = [], "", ""
    return assemble(df, config, source=f"synthetic (seed {seed})")


def run(config: Config, data_path: str | Path | None = None, seed: int | None = None,
        progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, ScoreData]:
    """Load every candidate benchmark (:func:`load_all`) and apply the rule."""
    data = load_all(config, data_path)
    if progress:
        progress("Fitting the curves to the reference models' scores alone (the cut's curve "
                 "module)")
    return evaluate(data, config, seed=seed), data
