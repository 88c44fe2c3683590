"""Influence: which models drive the answer? Leave-one-model-out PSIS-LOO (ArviZ) from a run
directory alone, the move of the doubling time each model's importance weights imply, and
refits without the models at the top (docs/analyses.md, section 6)::

    from bayes_densing.analyses.influence import influence
    inf = influence("runs/demo", refit=True, max_refits=5)
    print(inf.text())
    inf.write("runs/demo")                     # influence.csv + influence.json

Leaving a model out leaves all its scores out, so the log-likelihood, recomputed per draw by
the model's own formulas (``results.score_loglik``), is summed over each model's benchmarks;
reference models are included, since leaving one out moves every curve. The inputs are rebuilt
from the run's ``constant_data``, so no CSV is needed, except for a run with observed losses
(constant_data keeps none): its refits reload the recorded input, its LOO covers the scores
only, and its targets' latents are not integrated out (their losses would have to enter the
integral).
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_densing import data as data_mod, results
from bayes_densing.results import rundir
from bayes_densing.config import Config
from bayes_densing.data import DataError, ScoreData
from bayes_densing.analyses import stratified

K_THRESHOLD = 0.7      # Pareto k above it: importance sampling cannot tell what leaving out does
MAX_REFITS = 5
TABLE_COLUMNS = ["model", "role", "family", "n_scores", "elpd_loo_i", "pareto_k", "flagged",
                 "loo_shift", "doubling_median", "hdi_low", "hdi_high", "shift", "refit_note"]

Progress = Callable[[str], None]         # called with one line of progress at a time


# --- the run's data, rebuilt from its constant_data ---------------------------------------------

def run_scores(idata: xr.DataTree) -> pd.DataFrame:
    """The run's scores as a validated long table (``data.read_scores``'s form), from the
    run's constant_data: one row per model × benchmark, with n_items and chance columns."""
    if "constant_data" not in idata.children:
        raise results.RunDirError("the run has no constant_data group (written by an older "
                                  "version?); re-run bayes-densing sample")
    cd = idata.constant_data
    mi = cd["obs_model"].values.astype(int)
    bj = cd["obs_benchmark"].values.astype(int)
    per_model = {k: cd[k].values for k in ("model_name", "family", "role", "params", "tokens",
                                           "release_date")}
    bench = np.asarray(cd["benchmark"].values).astype(str)
    df = pd.DataFrame({
        "model": per_model["model_name"].astype(str)[mi],
        "family": per_model["family"].astype(str)[mi],
        "role": per_model["role"].astype(str)[mi],
        "params": per_model["params"].astype(float)[mi],
        "tokens": per_model["tokens"].astype(float)[mi],
        "release_date": pd.to_datetime(per_model["release_date"].astype(str)[mi], format="%Y-%m-%d"),
        "benchmark": bench[bj],
        "score": cd["score"].values.astype(float),
        "n_items": cd["n_items"].values.astype(float)[bj],
        "chance": cd["chance"].values.astype(float)[bj],
    })
    # the size density divides by is what the run used (total or active): keep it under both
    df["params_active"] = df["params"]
    df["line"] = np.arange(len(df)) + 2
    return df


def run_data(idata: xr.DataTree, config: Config, exclude: list[str] | tuple = (),
             source: str = "the run's constant_data") -> ScoreData:
    """The ScoreData the run was fitted to (less the ``exclude``d models, by
    ``data.exclude_models``), rebuilt from its constant_data under its resolved config."""
    cfg = copy.deepcopy(config)
    cfg.data.exclude_models = list(exclude)
    bench = [str(b) for b in idata.constant_data["benchmark"].values]
    return data_mod.assemble(run_scores(idata), cfg, source=source, benchmarks=bench,
                             since=cfg.data.since, reference=cfg.data.reference)


def _has_loss(idata: xr.DataTree) -> bool:
    return "sigma_loss" in idata.posterior


# --- pointwise log-likelihood -----------------------------------------------------------------

def pointwise_loglik(idata: xr.DataTree, data_or_run: ScoreData | results.Run | None = None,
                     config: Config | None = None) -> np.ndarray:
    """log p(k_o | θ_s) of every score o for every posterior draw s: shape (chain, draw, obs).

    ``data_or_run``: the ScoreData the run was fitted to, a loaded :class:`results.Run` or
    None — then the data are rebuilt from ``idata``'s constant_data. ``config``: the run's
    config (taken from the run dict when one is given).
    """
    if isinstance(data_or_run, results.Run):
        config = config or data_or_run.config
        data_or_run = None
    if config is None:
        raise ValueError("pointwise_loglik needs the run's config")
    data = run_data(idata, config) if data_or_run is None else data_or_run
    return results.score_loglik(idata, data, config)


def by_model(ll: np.ndarray, data: ScoreData) -> np.ndarray:
    """Sum a (..., obs) log-likelihood over each model's scores: shape (..., models), in the
    order of ``data.models`` (references first, then targets by date)."""
    onehot = np.zeros((len(data.obs), len(data.models)))
    onehot[np.arange(len(data.obs)), data.obs.model_idx.to_numpy()] = 1.0
    return ll @ onehot


def model_loo(ll_models: np.ndarray, idata: xr.DataTree, names) -> az.ELPDDataLOO:
    """ArviZ PSIS-LOO over models: ``ll_models`` of shape (chain, draw, model)."""
    post = idata["posterior"].to_dataset()
    # ArviZ's relative efficiency is the posterior's mean ESS: keep the variables it can use
    finite = [v for v in post.data_vars
              if np.issubdtype(post[v].dtype, np.number) and np.isfinite(post[v].values).all()]
    loglik = xr.Dataset({"scores": (("chain", "draw", "model"), ll_models)},
                        coords={"chain": post.chain.values, "draw": post.draw.values,
                                "model": list(names)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the k > 0.7 warning: we flag those models ourselves
        return az.loo(xr.DataTree.from_dict({"posterior": post[finite],
                                             "log_likelihood": loglik}), pointwise=True)


# --- refits -------------------------------------------------------------------------------------

@dataclass
class LeaveOut:
    """Doubling time of the full fit and of each refit without one model."""
    full: dict                                   # results.doubling_summary of the full fit
    refits: list[dict] = field(default_factory=list)   # model, doubling (summary), problems, wall_s, error
    skipped: list[str] = field(default_factory=list)   # beyond max_refits

    def to_dict(self) -> dict:
        return {"full": self.full, "refits": self.refits, "skipped": self.skipped}


def _as_run(run_or_config) -> tuple[results.Run | None, Config]:
    if isinstance(run_or_config, Config):
        return None, run_or_config
    run = run_or_config if isinstance(run_or_config, results.Run) else results.load_run(run_or_config)
    return run, run.config


def _input_path(run: results.Run, config: Config) -> Path | None:
    """The CSV a run was fitted to, from diagnostics.json: None for the bundled dataset."""
    given = str(run.diagnostics.get("input", ""))
    bundled = data_mod.DATASETS.get(config.data.dataset)
    if bundled is not None and given == bundled.filename:
        return None
    if given and Path(given).is_file():
        return Path(given)
    raise DataError(f"the run's input {given or '(unrecorded)'!r} cannot be found, and a run with "
                    "observed losses needs it to refit (constant_data keeps no losses); pass its "
                    "path as data_path (--data)")


def _refit_data(run: results.Run | None, config: Config, exclude: list[str], data_path) -> ScoreData:
    """The data for a refit without ``exclude``: rebuilt from the run where possible."""
    cfg = copy.deepcopy(config)
    cfg.data.exclude_models = list(exclude)
    if data_path is not None or run is None:
        return data_mod.load(cfg, data_path)          # data_path None: the bundled dataset
    if _has_loss(run.idata):
        return data_mod.load(cfg, _input_path(run, config))
    return run_data(run.idata, config, exclude)


@dataclass
class Refit:
    """One refit (a sweep's variant): the model left out, and the config and data without it."""

    name: str
    config: Config
    data: ScoreData


@dataclass
class RefitFamily:
    """Refits as ``bayes-densing sample`` fits (``run.fit``): each its own model and program
    (the data differ), so no program is shared (``key`` None); a task returns each refit's
    doubling summary and diagnostics' problems."""

    key = None

    @property
    def errors(self):
        from bayes_densing.config import ConfigError
        from bayes_densing.inference.sample import SamplerError
        from bayes_densing.model import ModelError

        return (DataError, ConfigError, ModelError, SamplerError)

    def fit(self, program, v: Refit, context=None) -> tuple[dict, dict]:
        from bayes_densing import run as run_mod

        fitted = run_mod.fit(v.config, data=v.data, progressbar=False)
        return results.json_safe({
            "doubling": results.doubling_summary(results.slope_draws(fitted.idata, fitted.config)),
            "problems": list(fitted.diagnostics.get("problems", []))}), {}


def _refits(run: results.Run | None, config: Config, names: list[str],
            data_path) -> tuple[list[Refit], dict[str, str]]:
    """A refit without each of ``names``, and why for those whose data or config cannot be
    built."""
    from bayes_densing.config import ConfigError

    refits, errors = [], {}
    for name in names:
        cfg = copy.deepcopy(config)
        cfg.data.exclude_models = [name]
        try:
            refits.append(Refit(name, cfg, _refit_data(run, config, [name], data_path)))
        except (DataError, ConfigError) as exc:
            errors[name] = str(exc)
    return refits, errors


def leave_out(run_or_config, models, *, max_refits: int = MAX_REFITS, data_path=None,
              progress: Progress | None = None, full: dict | None = None, place=None,
              out: str | Path | None = None) -> LeaveOut:
    """Refit without each of ``models`` (one fit per model, in the order given, at most
    ``max_refits``) and summarise each fit's doubling time.

    ``run_or_config``: a run directory, a loaded :class:`results.Run` or a Config (then the
    data come from ``data_path``, or the config's bundled dataset). The refits use the run's
    own configuration (model, priors, sampler settings and seed) with ``data.exclude_models``
    set; with a run they need no CSV (see the module's docstring). ``full``: the full fit's
    doubling summary (computed from the run when omitted). A refit that cannot be done (e.g.
    leaving out a reference model leaves one size) is reported with its ``error``. ``place``:
    where the refits run (``distributed.runner.executor``; default this process); ``out``:
    their sweep directory (each refit kept as it finishes, resumed by a re-run), else a
    temporary one.
    """
    from bayes_densing.distributed import runner, store

    run, config = _as_run(run_or_config)
    if full is None:
        if run is None:
            raise ValueError("leave_out from a Config needs the full fit's doubling summary (full=)")
        full = results.doubling_summary(results.slope_draws(run.idata, config))
    models = list(models)
    todo, skipped = models[:max(max_refits, 0)], models[max(max_refits, 0):]
    result = LeaveOut(full=full, skipped=skipped)
    if progress and todo:
        took = run.diagnostics.get("wall_s") if run is not None else None
        progress(f"refitting without {len(todo)} model(s), one full fit each"
                 + (f" (the run's own fit took {took:.0f} s)" if took else "")
                 + (f"; {len(skipped)} more skipped (max_refits = {max_refits})" if skipped else ""))
    refits, errors = _refits(run, config, todo, data_path)
    sha = run.diagnostics.get("input_sha256", "") if run is not None else ""
    spec = {"config": store.config_spec(config), "refits": [r.name for r in refits]}

    def line(o) -> str:
        if o.error:
            return f"without {o.name}: failed: {o.error}"
        d, problems = o.record["doubling"], o.record["problems"]
        return (f"without {o.name}: T = {_months(d['median_months'])} months (full data "
                f"{full['median_months']:.2f}), {o.wall_s:.0f} s"
                + (" — diagnostics: " + "; ".join(problems) if problems else ""))
    with store.sweep_dir(out) as where:
        sweep = store.SweepStore(where, store.identity("refits", spec, sha), spec=spec)
        done = runner.run(RefitFamily(), refits, sweep, place or runner.InProcess(),
                          describe=line, progress=runner.Progress.of(sweep, refits, progress))
    for name in todo:
        doc = done.get(name)
        error = errors.get(name) or (doc["error"] if doc else "")
        ok = doc is not None and not error
        result.refits.append({
            "model": name, "doubling": _finite(doc["record"]["doubling"]) if ok else None,
            "problems": doc["record"]["problems"] if ok else [],
            "wall_s": doc["wall_s"] if doc else math.nan, "error": error})
    return result


def _months(x) -> str:
    return "∞" if x is None else f"{x:.2f}"


def _finite(doubling: dict) -> dict:
    """A doubling summary read back from JSON: an infinite median was written as null."""
    out = dict(doubling)
    out["median_months"] = math.inf if out["median_months"] is None else out["median_months"]
    out["hdi_months"] = [math.inf if x is None else x for x in out["hdi_months"]]
    return out


# --- the analysis -------------------------------------------------------------------------------

@dataclass
class Influence:
    table: pd.DataFrame            # TABLE_COLUMNS, one row per model, highest Pareto k first
    elpd_loo: float
    se: float
    p_loo: float
    n_draws: int
    k_threshold: float
    full_doubling: dict            # results.doubling_summary of the full fit
    refitted: bool
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        return self.table.model[self.table.flagged].tolist()

    def to_dict(self) -> dict:
        return results.json_safe({
            "k_threshold": self.k_threshold, "elpd_loo": self.elpd_loo, "se": self.se,
            "p_loo": self.p_loo, "n_draws": self.n_draws, "n_models": int(len(self.table)),
            "flagged": self.flagged, "refitted": self.refitted, "skipped": self.skipped,
            "full_doubling": self.full_doubling, "notes": self.notes,
            "models": self.table.to_dict(orient="records"),
        })

    def text(self, top: int = 10) -> str:
        t = self.table
        fd = self.full_doubling
        lo, hi = fd["hdi_months"]
        lines = [f"Leave-one-model-out PSIS-LOO over {len(t)} models ({self.n_draws} draws): "
                 f"elpd_loo {self.elpd_loo:.1f} (SE {self.se:.1f}), p_loo {self.p_loo:.1f}",
                 f"  {len(self.flagged)} model(s) with Pareto k > {self.k_threshold:g} "
                 "(importance sampling cannot predict leaving them out)",
                 "", f"Top {min(top, len(t))} models: flagged first (by k), then by the move "
                 "of the doubling time:",
                 f"  {'model':<40} {'role':<9} {'k':>6} {'elpd_i':>9} {'ΔT (IS)':>8}  flag"]
        for _, r in t.head(top).iterrows():
            lines.append(f"  {str(r.model)[:40]:<40} {r.role:<9} {r.pareto_k:6.2f} "
                         f"{r.elpd_loo_i:9.2f} {r.loo_shift:+8.2f}  {'*' if r.flagged else ''}")
        lines.append("  ΔT (IS): the move of the doubling time's median (months) without the "
                     "model, by importance sampling" + (" (unreliable where flagged)"
                                                        if len(self.flagged) else ""))
        lines += ["", f"Doubling time, full data: {fd['median_months']:.2f} months "
                      f"(90% HDI {lo:.2f}–{hi:.2f})"]
        refit = t[t.doubling_median.notna() | (t.refit_note != "")]
        if len(refit):
            lines.append("Leaving out one model at a time:")
            for _, r in refit.iterrows():
                if math.isnan(r.doubling_median):
                    lines.append(f"  without {str(r.model)[:40]:<40} {r.refit_note}")
                else:
                    lines.append(f"  without {str(r.model)[:40]:<40} {r.doubling_median:6.2f} months "
                                 f"(90% HDI {r.hdi_low:.2f}–{r.hdi_high:.2f}), shift {r['shift']:+.2f}"
                                 + (f"  [{r.refit_note}]" if r.refit_note else ""))
        elif self.flagged and not self.refitted:
            lines.append("  (no refits: run with --refit to see the doubling time without each "
                         "flagged model)")
        if self.skipped:
            lines.append(f"  {len(self.skipped)} flagged model(s) not refitted (max_refits): "
                         f"{', '.join(self.skipped[:8])}{' …' if len(self.skipped) > 8 else ''}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def write(self, directory: str | Path) -> list[Path]:
        """Write influence.csv and influence.json into ``directory``: a new directory is
        created atomically; in an existing one (e.g. the run directory) each file is written
        to a temporary file and renamed into place."""
        directory = Path(directory)
        texts = {"influence.csv": self.table.to_csv(index=False),
                 "influence.json": json.dumps(self.to_dict(), indent=2, allow_nan=False)}
        if not directory.exists():
            with results.atomic_dir(directory) as tmp:
                for name, text in texts.items():
                    (tmp / name).write_text(text, encoding="utf-8")
        elif not directory.is_dir():
            raise results.RunDirError(f"{directory} exists and is not a directory")
        else:
            for name, text in texts.items():
                rundir.write_atomic(directory / name, text)
            if (directory / rundir.MANIFEST).exists():   # a run directory: list them as derived
                rundir.record_derived(directory, list(texts))
        return [directory / name for name in texts]


def influence(run, *, refit: bool = True, max_refits: int = MAX_REFITS, data_path=None,
              k_threshold: float = K_THRESHOLD, progress: Progress | None = None,
              place=None, refit_dir: str | Path | None = None) -> Influence:
    """PSIS-LOO per model for a run (directory or :class:`results.Run`), with the move of the
    doubling time's median that leaving each model out implies (``loo_shift``), ranked:
    flagged models first (k above ``k_threshold``: that move is unreliable), then by how
    far they move it. With ``refit``, the first ``max_refits`` of them are refitted.

    A target's own latent is integrated out of its likelihood over the trend's prior
    (``stratified.integrated_loglik``, a grid per draw): leaving the target out removes what
    is known about that latent, and with it integrated the weights depend on the shared
    parameters only, so k is usable for targets too. Under the joint model that is PSIS over
    the pooled draws; under the cut it is within each curve draw (``analyses/stratified.py``),
    and a target's refit reuses the curves. ``place`` and ``refit_dir``: where the full refits
    run and their sweep directory (:func:`leave_out`)."""
    if not isinstance(run, results.Run):
        run = results.load_run(run)
    idata, config = run.idata, run.config
    say = progress or (lambda text: None)
    data = run_data(idata, config)
    names = data.models.model.tolist()
    refs = slice(0, data.n_ref)
    cut_run = config.model.curves == "cut"
    integrated = not _has_loss(idata)     # a target's losses would have to enter the integral
    strata = stratified.Strata(data, config, progress=progress) if cut_run else None
    loo = _loo_per_model(idata, data, config, strata, integrated, say)
    elpd_i, k, shift, notes = loo["elpd_i"], loo["k"], loo["shift"], loo["notes"]
    table = pd.DataFrame({
        "model": names, "role": data.models.role.to_numpy(), "family": data.models.family.to_numpy(),
        "n_scores": np.bincount(data.obs.model_idx.to_numpy(), minlength=len(names)),
        "elpd_loo_i": elpd_i, "pareto_k": k, "flagged": k > k_threshold, "loo_shift": shift,
        "doubling_median": math.nan, "hdi_low": math.nan, "hdi_high": math.nan, "shift": math.nan,
        "refit_note": "",
    })
    # flagged first (highest k first), then by how far the doubling time moves
    table = table.iloc[np.lexsort((-np.abs(table.loo_shift.to_numpy()),
                                   -np.where(table.flagged, table.pareto_k, 0.0)))
                       ].reset_index(drop=True)
    full = results.doubling_summary(results.slope_draws(idata, config))
    if not integrated:
        notes.append("observed losses enter the model but not this LOO: only the scores' "
                     "log-likelihood is left out, each target's latent not integrated out")
    n_flag = int(table.flagged.sum())
    if n_flag > len(table) / 2:
        notes.append(f"{n_flag} of {len(table)} models have k > {k_threshold:g}: importance "
                     "sampling struggles to leave them out (more draws or benchmarks help); "
                     "the refits are the direct check")
    todo = table.model[:max(max_refits, 0)].tolist() if refit else []
    skipped = [m for m in table.model[table.flagged] if m not in todo] if refit else []
    rows = _target_refits(strata, [m for m in todo if cut_run and m not in names[refs]], full,
                          say)
    full_fits = [m for m in todo if not cut_run or m in names[refs]]
    if full_fits:
        rows += leave_out(run, full_fits, max_refits=len(full_fits), data_path=data_path,
                          progress=progress, full=full, place=place, out=refit_dir).refits
    if rows:
        _put_refits(table, rows, full)
        notes.append("each refit repeats the run's sampler settings and seed; shifts much "
                     "smaller than the HDI's width are within Monte Carlo noise")
    return Influence(table=table, elpd_loo=loo["elpd"], se=loo["se"], p_loo=loo["p_loo"],
                     n_draws=loo["n_draws"], k_threshold=k_threshold, full_doubling=full,
                     refitted=bool(rows), skipped=skipped, notes=notes)


def _target_refits(strata, targets: list[str], full: dict, say: Progress) -> list[dict]:
    """Under the cut, each target refitted without its scores, the curves reused
    (``stratified.refit_without_target``): rows as :func:`leave_out`'s refits."""
    rows: list[dict] = []
    for name in targets:
        start = time.perf_counter()
        r = stratified.refit_without_target(strata, name)
        problems = [f"{r['divergences']} divergent transitions"] if r["divergences"] else []
        rows.append({"model": name, "doubling": r["doubling"], "problems": problems,
                     "wall_s": time.perf_counter() - start, "error": ""})
        say(f"refit without {name} (the curves reused): T = "
            f"{r['doubling']['median_months']:.2f} months (full data "
            f"{full['median_months']:.2f}), {rows[-1]['wall_s']:.0f} s")
    return rows


def _loo_per_model(idata, data: ScoreData, config: Config, strata, integrated: bool,
                   say: Progress) -> dict:
    """Each model's elpd_loo_i, Pareto k and implied move of T (``loo_shift``), in the order
    of ``data.models``, with the totals and notes. Joint: PSIS over the pooled draws, each
    target's latent integrated out (``integrated``). Cut (``strata`` given): the references by
    PSIS over the pooled draws, the targets within each curve draw."""
    ll = by_model(pointwise_loglik(idata, data, config), data)
    names = data.models.model.tolist()
    A = results.slope_per_draw(idata, config)
    ok = np.isfinite(A)
    if strata is not None:
        refs = slice(0, data.n_ref)
        # a reference's weights depend on θ alone: plain PSIS over the pooled draws is exact
        loo = model_loo(ll[..., refs], idata, names[refs])
        say("cut: each target's likelihood, its latent integrated out")
        targets = stratified.target_rows(strata)
        elpd_i = np.concatenate([np.asarray(loo.elpd_i.values, dtype=float), targets.elpd_loo_i])
        n_strata, n_kept = strata.shape
        return {"elpd_i": elpd_i,
                "k": np.concatenate([np.asarray(loo.pareto_k.values, dtype=float),
                                     targets.pareto_k]),
                "shift": np.concatenate([stratified.pooled_shifts(
                    ll.reshape(-1, len(names))[ok, refs], A[ok]), targets.loo_shift]),
                "elpd": float(elpd_i.sum()), "se": float(np.sqrt(len(elpd_i) * np.var(elpd_i))),
                "p_loo": float(loo.p) + float(targets.p_loo_i.sum()),
                "n_draws": n_strata * n_kept,
                "notes": [f"cut run: each target's LOO is within each of {n_strata} curve draws "
                          f"({n_kept} draws of the targets given each, its own latent "
                          "integrated out), averaged over them; each reference's over the "
                          f"run's {int(loo.n_samples)} draws (its weights depend on the curves "
                          "alone)"]}
    notes = []
    if integrated:
        say(f"each target's likelihood, its latent integrated out, over {A.size} draws")
        ll = ll.copy()
        ll[..., data.n_ref:] = stratified.integrated_loglik(idata, data, config).reshape(
            ll.shape[:2] + (data.n_target,))
        notes.append("each target's own latent (its log density) is integrated out of its "
                     "likelihood over the trend's prior")
    loo = model_loo(ll, idata, names)
    return {"elpd_i": np.asarray(loo.elpd_i.values, dtype=float),
            "k": np.asarray(loo.pareto_k.values, dtype=float),
            "shift": stratified.pooled_shifts(ll.reshape(-1, len(names))[ok], A[ok]),
            "elpd": float(loo.elpd), "se": float(loo.se), "p_loo": float(loo.p),
            "n_draws": int(loo.n_samples), "notes": notes}


def _put_refits(table: pd.DataFrame, refits: list[dict], full: dict) -> None:
    """Each refit's doubling time (or why it failed) into its model's row of ``table``."""
    index = {m: i for i, m in enumerate(table.model)}
    for r in refits:
        i = index[r["model"]]
        if r["doubling"] is None:
            table.at[i, "refit_note"] = f"refit failed: {r['error']}"
            continue
        d = r["doubling"]
        table.at[i, "doubling_median"] = d["median_months"]
        table.at[i, "hdi_low"], table.at[i, "hdi_high"] = d["hdi_months"]
        table.at[i, "shift"] = d["median_months"] - full["median_months"]
        if r["problems"]:
            table.at[i, "refit_note"] = "diagnostics: " + "; ".join(r["problems"])
