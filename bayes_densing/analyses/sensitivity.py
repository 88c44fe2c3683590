"""Sensitivity analysis: how far does the doubling time move with each modelling choice?

One choice at a time: every ``--vary KEY=v1,v2,…`` (any config key, by a short alias or its
dotted name: :func:`parse_vary`) varies alone around the base configuration, which is what a
tornado plot shows. :func:`prepare` validates every variant and loads its data before anything
is fitted; :func:`sensitivity` fits them as one sweep (``distributed/store.py``: resumable,
each variant's run directory kept) and writes the table and the tornado.

Example::

    from bayes_densing import load_config
    from bayes_densing.analyses.sensitivity import sensitivity
    s = sensitivity(load_config("default"), ["trend=frontier,envelope", "d0=0.3,3"],
                    out="runs/sens")
    print(s.text())
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr

from bayes_densing import data as data_mod, results, run
from bayes_densing.results import rundir
from bayes_densing.config import Config, ConfigError
from bayes_densing.distributed import runner, store
from bayes_densing.inference.sample import SamplerError
from bayes_densing.model import ModelError
from bayes_densing.model.loss_law import data_term_on
from bayes_densing.model.priors import INPUTS

ALIASES = {
    "reference": "data.reference", "d0": "model.d0", "trend": "model.trend",
    "likelihood": "model.likelihood", "since": "data.since", "until": "data.until",
    "params": "data.params", "drop_family": "data.exclude_families",
    "leave_out": "data.exclude_families", "benchmarks": "data.benchmarks",
    "drop_model": "data.exclude_models", "seed": "sampler.seed", "curves": "model.curves",
}
LIST_SEPARATOR = "+"                 # inside one value of a list-valued key: mmlu+gsm8k
# keys whose values name things in the data: a DataError for them is a typo, reported up front
NAMING_KEYS = ("data.dataset", "data.reference", "data.benchmarks", "data.exclude_families",
               "data.exclude_models")
LEAVE_OUT_KEYS = ("data.exclude_families", "data.exclude_models")  # values add to the base's
FIT_ERRORS = (data_mod.DataError, ModelError, SamplerError)  # recorded per variant, not fatal
BASE = "base"

COLUMNS = ["variant", "key", "setting", "value", "base_value", "median_months", "hdi_low",
           "hdi_high"] + [f"p_leq_{m:g}" for m in results.CLAIMS] + [
           "p_no_growth", "shift_months", "n_targets", "diagnostics", "error", "run_dir"]


@dataclass
class Vary:
    """One ``--vary KEY=v1,v2,…``: ``key`` as given, its dotted config key, the raw values."""

    key: str
    setting: str
    values: list[str]


@dataclass
class Variant:
    name: str                         # directory name, e.g. "trend=envelope"
    key: str                          # the --vary key as given ("" for the base)
    setting: str                      # dotted config key ("" for the base)
    value: str                        # the value as given
    base_value: str                   # the base config's value of the same key
    config: Config
    data: data_mod.ScoreData | None = None
    error: str = ""                   # set when the variant cannot be fitted
    same_as: str = ""                 # name of an identical variant fitted instead
    same_because: str = ""            # why, when the two configs differ (D0 without data term)
    draws_of: str = ""                # a variant of the same model whose draws this one reads


@dataclass
class SensitivityResult:
    table: pd.DataFrame               # one row per variant, columns COLUMNS
    base: run.FitResult
    prior: object | None              # prior_sensitivity.PriorSensitivity, or None
    varies: list[Vary]
    out: Path | None
    figures: list[Path] = field(default_factory=list)

    @property
    def base_median(self) -> float:
        return float(self.base.doubling["median_months"])

    def text(self) -> str:
        """The table as aligned text, then the prior-sensitivity verdict."""
        lines = ["Sensitivity of the doubling time of density (one choice at a time around the "
                 "base; months, median and 90% HDI):"]
        width = max([len(v) for v in self.table.variant] + [8])
        claims = [f"P(T≤{m:g})" for m in results.CLAIMS]
        lines.append(f"  {'variant':<{width}}  median  90% HDI        shift  "
                     + "  ".join(claims) + "  diagnostics")
        for _, r in self.table.iterrows():
            if r.error:
                lines.append(f"  {r.variant:<{width}}  failed: {r.error}")
                continue
            shift = "—" if r.variant == BASE else f"{r.shift_months:+.2f}"
            probs = "  ".join(f"{r[f'p_leq_{m:g}']:>{len(c)}.2f}"
                              for m, c in zip(results.CLAIMS, claims))
            hdi = f"{r.hdi_low:.2f}–{r.hdi_high:.2f}"
            lines.append(f"  {r.variant:<{width}}  {_fmt(r.median_months):>6}  {hdi:<13}  "
                         f"{shift:>5}  {probs}  {r.diagnostics}")
        if self.prior is not None:
            lines += ["", self.prior.text()]
        if self.out is not None:
            lines += ["", f"Written to {self.out}/: sensitivity.csv, sensitivity.json, "
                          f"tornado.png/.svg and one run directory per variant"]
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return "∞" if math.isinf(x) else ("—" if math.isnan(x) else f"{x:.2f}")


# --- parsing -------------------------------------------------------------------------------------

def _known_settings() -> dict[str, set[str]]:
    cfg = Config()
    return {f.name: {g.name for g in fields(getattr(cfg, f.name))} for f in fields(cfg)}


def parse_vary(spec: str) -> Vary:
    """Parse ``KEY=v1,v2,…`` (KEY an alias or a dotted config key); ConfigError if malformed.

    The aliases (:data:`ALIASES`), and the keys they name::

        reference=Qwen1.5,Llama-2          data.reference      the reference family
        d0=0.3,1,3                         model.d0            D0, trillions of tokens
        trend=frontier,envelope,mean       model.trend
        likelihood=betabinomial,robust     model.likelihood
        since=2023-06-01 / until=…         data.since / data.until   the targets' date window
        params=total,active                data.params
        drop_family=Llama-2,Mistral        data.exclude_families     leave one family out (each
        (leave_out=…)                                                value added to the base's list)
        drop_model=Mistral-7B,…            data.exclude_models       leave one model out
        benchmarks=mmlu+gsm8k,mmlu+bbh     data.benchmarks     one benchmark set per value, '+'-joined
        seed=0,1,2                         sampler.seed        Monte Carlo noise, for scale
        priors.slope_sd=0.15,0.6           any section.key of bayes_densing/config.py
    """
    key, sep, rest = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--vary {spec!r}: write KEY=v1,v2,… (e.g. trend=frontier,envelope "
                          "or priors.slope_sd=0.15,0.6)")
    if key in ALIASES:
        setting = ALIASES[key]
    elif "." in key:
        section, _, name = key.partition(".")
        known = _known_settings()
        if section not in known:
            raise ConfigError(f"--vary {key}: unknown config section {section!r}; sections: "
                              f"{', '.join(known)}")
        if name not in known[section]:
            raise ConfigError(f"--vary {key}: unknown key {name!r} in [{section}]; known: "
                              f"{', '.join(sorted(known[section]))}")
        setting = key
    else:
        raise ConfigError(f"--vary {key}: unknown key; use one of {', '.join(ALIASES)} or a "
                          "dotted config key such as priors.slope_sd")
    values = list(dict.fromkeys(v.strip() for v in rest.split(",") if v.strip()))
    if not values:
        raise ConfigError(f"--vary {key}: no values; write {key}=v1,v2,…")
    return Vary(key=key, setting=setting, values=values)


def parse_varies(specs: list[str]) -> list[Vary]:
    """Parse every ``--vary``; a key (or the setting it names) given twice is an error."""
    varies = [parse_vary(s) for s in specs]
    seen: dict[str, str] = {}
    for v in varies:
        if v.setting in seen:
            raise ConfigError(f"--vary {v.key}: {v.setting} is already varied by --vary "
                              f"{seen[v.setting]}; give all its values in one --vary")
        seen[v.setting] = v.key
    return varies


def _get(cfg: Config, setting: str):
    section, _, key = setting.partition(".")
    return getattr(getattr(cfg, section), key)


def _show(value) -> str:
    if isinstance(value, list):
        return LIST_SEPARATOR.join(map(str, value)) if value else "none"
    if value == "":
        return "default"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _apply(base: Config, vary: Vary, value: str) -> Config:
    cfg = copy.deepcopy(base)
    current = _get(cfg, vary.setting)
    if isinstance(current, list):
        items = [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()]
        if vary.setting in LEAVE_OUT_KEYS:  # leave this one out, in addition to the base's
            items = list(dict.fromkeys(current + items))
        new = items
    else:
        new = value
    try:
        cfg.set(vary.setting, new)
        return cfg.validate()
    except ConfigError as exc:
        raise ConfigError(f"--vary {vary.key}={value}: {exc}") from None


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._=+,-]+", "_", text).strip("._") or "variant"
    return name[:120]


def build_variants(base: Config, varies: list[Vary]) -> list[Variant]:
    """The base followed by one variant per (key, value); every config validated."""
    base = copy.deepcopy(base).validate()
    out = [Variant(name=BASE, key="", setting="", value="", base_value="", config=base)]
    names = {BASE}
    for vary in varies:
        base_value = _show(_get(base, vary.setting))
        for value in vary.values:
            name = _safe_name(f"{vary.key}={value}")
            while name in names:
                name += "_"
            names.add(name)
            out.append(Variant(name=name, key=vary.key, setting=vary.setting, value=value,
                               base_value=base_value, config=_apply(base, vary, value)))
    return out


def prepare(base: Config, specs: list[str], data_path: str | Path | None = None) -> list[Variant]:
    """Parse, validate and load every variant up front (nothing is fitted).

    Raises ConfigError for a malformed ``--vary``, a bad value, or a value naming something
    that is not in the data (reference family, benchmark, family to leave out); DataError if
    the base itself cannot be loaded. Any other data problem of a variant (too few models in a
    date window, a changepoint with no models before it) is recorded in its ``error``, and the
    sweep goes on. A variant equal to another (a value that is the base's own, or a D0 where
    the loss law has no data term, so that D0 enters nothing) is not re-run, and the ``mean``
    and ``envelope`` trends, which read one posterior two ways, share one sampling run.
    """
    variants = build_variants(base, parse_varies(specs))
    base_v = variants[0]
    base_v.data = data_mod.load(base_v.config, data_path)     # a DataError here is fatal
    families = sorted(set(base_v.data.models.family))
    base_resolved = run.resolved_config(base_v.config, base_v.data)  # dataset defaults applied
    # each fitted variant's config: as a posterior_key, and as it is
    resolved = {BASE: (posterior_key(base_resolved, base_v.data), base_resolved.to_dict())}
    for v in variants[1:]:
        v.base_value = _show(_get(base_resolved, v.setting))
        if v.setting == "data.exclude_families":
            missing = [f for f in v.value.split(LIST_SEPARATOR) if f.strip() not in families]
            if missing:
                raise ConfigError(f"--vary {v.key}={v.value}: no family {', '.join(missing)} "
                                  f"among the base's models; families: {', '.join(families[:40])}"
                                  f"{' …' if len(families) > 40 else ''}")
        try:
            v.data = data_mod.load(v.config, data_path)
        except data_mod.DataError as exc:
            if v.setting in NAMING_KEYS:
                raise ConfigError(f"--vary {v.key}={v.value}: {exc}") from None
            v.error = str(exc)
            continue
        ran = run.resolved_config(v.config, v.data)
        key, raw = posterior_key(ran, v.data), ran.to_dict()
        for name, (other, other_raw) in resolved.items():
            if other == key:
                v.same_as = name
                if other_raw != raw:        # equal only once D0 is blanked
                    v.same_because = NO_DATA_TERM
                break
        else:
            for name, (other, _) in resolved.items():
                if same_posterior(other, key):
                    v.draws_of = name
                    break
            resolved[v.name] = (key, raw)
    return variants


NO_DATA_TERM = ("D0 enters only through the data term b·D0^-β, which is off for these data "
                "(model.data_term; it needs every reference model's tokens)")


def posterior_key(config: Config, data: data_mod.ScoreData) -> dict:
    """``config.to_dict()`` with what cannot change the posterior on ``data`` blanked: D0,
    when the loss law has no data term (``loss_law.data_term_on``), enters nothing."""
    key = config.to_dict()
    try:
        on = data_term_on(data, config)
    except ModelError:                 # "on" without tokens: the fit will say so
        on = True
    if not on:
        key["model"] = {**key["model"], "d0": "(no data term)"}
    return key


def same_posterior(a: dict, b: dict) -> bool:
    """Whether two resolved configs (``Config.to_dict()``) sample the same posterior: the
    ``envelope`` trend samples the ``mean`` trend's model and reads its draws differently
    (``build.build_model``, ``results.slope_draws``)."""
    def sampled(c: dict) -> dict:
        trend = "mean" if c["model"]["trend"] == "envelope" else c["model"]["trend"]
        return {**c, "model": {**c["model"], "trend": trend}}
    return sampled(a) == sampled(b)


# --- running -------------------------------------------------------------------------------------

# settings that are inputs of one compiled program (``sweep.compile_sweep(...,
# setting_inputs=True)``): variants differing from the base in these alone share it
SETTING_KEYS = frozenset({*(f"priors.{k}" for k in INPUTS), "model.d0", "sampler.seed"})


def _settings_only(v: Variant, base: Variant) -> bool:
    """Whether ``v`` fits the base's data with the base's model, other priors, D0 or seed."""
    if v.data is None or base.data is None or v.data.sha256 != base.data.sha256 \
            or v.data.describe() != base.data.describe():
        return False
    a, b = store.flat(v.config.to_dict()), store.flat(base.config.to_dict())
    return all(a[k] == b[k] for k in a if k not in SETTING_KEYS)


@dataclass
class Fit:
    """A variant to fit (the runner's variant): its config and data, and the variant whose
    draws it reads instead of sampling (the envelope trend reads the mean trend's)."""

    name: str
    config: Config
    data: data_mod.ScoreData
    draws_of: str = ""


@dataclass
class FitFamily:
    """Variants fitted as ``bayes-densing sample`` fits them (``run.fit``), each a run
    directory. With ``shared`` (variants that differ from the base only in priors, D0 or seed)
    they share one program compiled with those as inputs; the base and every other variant
    compile their own (the persistent cache keeps what repeats). A task's ``context``: the
    draws that ``draws_of`` variants read, by name."""

    data: data_mod.ScoreData | None = None
    config: Config | None = None
    shared: bool = False
    errors = FIT_ERRORS

    @cached_property
    def key(self) -> str | None:
        if not self.shared:
            return None
        return "sensitivity-" + store.digest([self.config.to_dict(), self.data.sha256,
                                              self.data.describe()])[:16]

    def compile(self):
        if self.config.model.curves == "cut":
            from bayes_densing.inference.cut import CutSampler

            return CutSampler(self.data, self.config, setting_inputs=True)
        from bayes_densing.inference.sweep import compile_sweep

        return compile_sweep(self.data, self.config, setting_inputs=True)

    def fit(self, program, v: Fit, context) -> tuple[dict, dict, dict]:
        draws = None
        if v.draws_of:
            draws = context[v.draws_of]
        elif program is not None:
            draws = _sampled(program, v)
        fitted = run.fit(v.config, data=v.data, progressbar=False, draws=draws)
        record = {"doubling": fitted.doubling,
                  "problems": list(fitted.diagnostics.get("problems", []))}
        payload = {"idata": fitted.idata, "models": fitted.models, "trend": fitted.trend,
                   "diagnostics": fitted.diagnostics, "config": fitted.config,
                   "summary": fitted.summary}
        return results.json_safe(record), {}, payload

    @staticmethod
    def write(tmp: Path, payload: dict) -> None:
        """A fitted variant's run directory (client side: the only writer)."""
        results.write_run(tmp, **payload)


def _sampled(program, v: Fit):
    """The draws of ``v`` on a program shared by variants of other priors, D0 or seed."""
    from bayes_densing.inference.cut import observed_data
    from bayes_densing.inference.sample import SampleResult

    start, seed = time.perf_counter(), v.config.sampler.seed
    if v.config.model.curves == "cut":
        idata = program.fit(seed, settings=v.config)
        layout = f"{program.sweep.sampler.layout}, {program.inner.layout}"
        method = program.chain_method
    else:
        n = len(v.data.obs)
        idata = program.sample(np.ones(n), np.ones(len(v.data.benchmarks)), seed,
                               settings=v.config)
        idata["observed_data"] = observed_data(v.data, v.data.obs.k.to_numpy())
        layout, method = program.sampler.layout, "parallel"
    seconds = idata.posterior.attrs.get("sampling_time")
    return SampleResult(idata=idata, wall_s=time.perf_counter() - start,
                        sampling_s=float(seconds) if seconds else None, chain_method=method,
                        mass_matrix=layout)


def _read_draws(sweep, name: str):
    """A finished variant's sampled groups, for the variants that read its draws."""
    from bayes_densing.inference.sample import SampleResult

    run_ = results.load_run(sweep.path(name))
    idata = xr.DataTree.from_dict({g: run_.idata[g].to_dataset() for g in
                                   ("posterior", "sample_stats", "log_prior", "observed_data")
                                   if g in run_.idata.children})
    d = run_.diagnostics
    return SampleResult(idata=idata, wall_s=0.0, sampling_s=d.get("sampling_s"),
                        chain_method=d.get("chain_method", "-"),
                        mass_matrix=d.get("mass_matrix", "-"))


def _row(v: Variant, fitted: dict | None, base_median: float, run_dir: str) -> dict:
    """``fitted``: a fit's record (doubling summary and problems), None if it failed."""
    row = {"variant": v.name, "key": v.key, "setting": v.setting, "value": v.value,
           "base_value": v.base_value, "error": v.error, "run_dir": run_dir,
           "n_targets": v.data.n_target if v.data is not None else math.nan}
    if fitted is None:
        row.update({"median_months": math.nan, "hdi_low": math.nan, "hdi_high": math.nan,
                    "p_no_growth": math.nan, "shift_months": math.nan, "diagnostics": "failed",
                    **{f"p_leq_{m:g}": math.nan for m in results.CLAIMS}})
        return row
    d = fitted["doubling"]
    problems = fitted["problems"]
    median = _number(d["median_months"])
    row.update({"median_months": median, "hdi_low": _number(d["hdi_months"][0]),
                "hdi_high": _number(d["hdi_months"][1]), "p_no_growth": d["p_no_growth"],
                "shift_months": median - base_median,
                "diagnostics": "OK" if not problems else "PROBLEMS: " + "; ".join(problems),
                **{f"p_leq_{m:g}": d["p_leq"][f"{m:g}"] for m in results.CLAIMS}})
    return row


def _number(x) -> float:
    return math.inf if x is None else float(x)     # json_safe wrote an infinite median as None


def sensitivity(base: Config, vary: list[str], data_path: str | Path | None = None, *,
                out: str | Path | None = None, force: bool = False, prior_scaling: bool = True,
                quiet: bool = False, echo: Callable[[str], None] = print,
                place=None) -> SensitivityResult:
    """Fit the base and every one-at-a-time variant; write the table, tornado and run dirs.

    ``vary``: ``KEY=v1,v2,…`` strings (:func:`parse_vary`). ``out``: the sweep directory
    (``distributed.store``: each variant's run directory under ``variants/`` as it finishes;
    an unfinished sweep of the same settings is resumed, ``force`` discards it); without it
    nothing is kept. When every variant is done it holds::

        OUT/sensitivity.csv, sensitivity.json   one row per variant (see COLUMNS)
        OUT/tornado.png, tornado.svg            how far each choice moves the median
        OUT/prior_sensitivity.csv               power-scaling check of the base run (optional)
        OUT/variants/base/, OUT/variants/trend=envelope/, …   every fitted variant's run directory

    ``place``: where the fits run (``distributed.runner.executor``; default this process).
    ``prior_scaling``: also run the power-scaling prior-sensitivity check on the base run.
    Progress goes to ``echo``, one line per variant, unless ``quiet``.
    """
    variants = prepare(base, vary, data_path)
    say = (lambda s: None) if quiet else echo
    base_v = variants[0]
    for v in variants:
        if v.error:
            say(f"{v.name} failed: {v.error}")
        elif v.same_as:
            because = f": {v.same_because}" if v.same_because else ""
            say(f"{v.name}: same as {v.same_as}{because}, not re-run")
    spec = {"config": store.config_spec(base_v.config), "vary": list(vary)}
    with store.sweep_dir(out) as where:
        sweep = store.SweepStore(where, store.identity("sensitivity", spec, base_v.data.sha256),
                                 force=force, spec=spec)
        _fit(variants, sweep, place, say)
        done = sweep.done()
        if done[BASE]["error"]:
            raise SamplerError(f"the base fit failed: {done[BASE]['error']}")
        table, _ = _table(variants, done, kept=out is not None)
        base_run = results.load_run(sweep.path(BASE))
        base_fit = run.FitResult(idata=base_run.idata, data=base_v.data, models=base_run.models,
                                 trend=base_run.trend,
                                 doubling=done[BASE]["record"]["doubling"],
                                 diagnostics=base_run.diagnostics, summary="",
                                 out=sweep.path(BASE) if out is not None else None,
                                 config=base_run.config, sampled=None)
        prior = None
        if prior_scaling:
            from bayes_densing.analyses.prior_sensitivity import prior_sensitivity

            say("prior sensitivity: power-scaling the base run's prior …")
            prior = prior_sensitivity(base_fit.idata, base_fit.data, base_fit.config)
        res = SensitivityResult(table=table, base=base_fit, prior=prior,
                                varies=parse_varies(vary), out=None, figures=[])
        if out is not None:
            root = Path(out)
            _write(root, res, vary)
            res.out = root
    return res


def _fit(variants: list[Variant], sweep, place, say: Callable[[str], None]) -> None:
    """Fit every variant that needs a fit and is not in ``sweep`` yet, on ``place`` (default
    this process): the base and each variant of its own model on a program each, those of
    other priors, D0 or seed on one shared program, then those that read another's draws."""
    place = place or runner.InProcess()
    by_name = {v.name: v for v in variants}
    base_v = variants[0]
    fits = {v.name: Fit(v.name, v.config, v.data, v.draws_of)
            for v in variants if not v.error and not v.same_as}
    sampled = [v.name for v in variants if v.name in fits and not v.draws_of]
    shared = [name for name in sampled[1:] if _settings_only(by_name[name], base_v)]
    go = dict(progress=runner.Progress.of(sweep, list(fits.values()), say),
              describe=lambda o: _describe(o, by_name))
    jobs = [runner.Job(FitFamily(), [fits[name]]) for name in sampled if name not in shared]
    if shared:
        jobs.append(runner.Job(FitFamily(base_v.data, base_v.config, shared=True),
                               [fits[name] for name in shared]))
    done = runner.run_jobs(jobs, sweep, place, **go)
    # those whose draws' variant was fitted
    readers = [f for f in fits.values() if f.draws_of and f.draws_of in done
               and not done[f.draws_of]["error"]]
    if readers:
        context = {f.draws_of: _read_draws(sweep, f.draws_of) for f in readers}
        runner.run(FitFamily(), readers, sweep, place, context=context, **go)


def _table(variants: list[Variant], done: dict, kept: bool) -> tuple[pd.DataFrame, float]:
    """The table (one row per variant, a duplicate reading its twin's fit) from the sweep's
    finished variants, and the base's median; ``kept``: the run directories stay (their
    paths go in the table)."""
    by_name = {v.name: v for v in variants}
    rows, base_median = [], math.nan
    for v in variants:
        source = v.same_as or v.name
        doc = done.get(source) if not v.error else None
        if doc is not None and doc["error"]:
            v.error = doc["error"]
        elif v.same_as and by_name[v.same_as].error:
            v.error = by_name[v.same_as].error
        record = doc["record"] if doc is not None and not doc["error"] else None
        if v.name == BASE:
            base_median = _number(record["doubling"]["median_months"])
        run_dir = (str(Path(store.VARIANTS) / store.dir_name(source))
                   if record is not None and kept else "")
        rows.append(_row(v, record, base_median, run_dir))
    return pd.DataFrame(rows, columns=COLUMNS), base_median


def _describe(outcome, by_name: dict) -> str:
    v = by_name[outcome.name]
    if outcome.error:
        return f"{v.name}: failed: {outcome.error}"
    d = outcome.record["doubling"]
    problems = outcome.record["problems"]
    note = f" (the draws of {v.draws_of}, not re-sampled)" if v.draws_of else ""
    low, high = (_fmt(_number(x)) for x in d["hdi_months"])
    return (f"{v.name}: {_fmt(_number(d['median_months']))} months (90% HDI {low}–{high}), "
            f"{'diagnostics OK' if not problems else 'PROBLEMS: ' + '; '.join(problems)}, "
            f"{outcome.wall_s:.0f} s{note}")


def _write(root: Path, res: SensitivityResult, specs: list[str]) -> None:
    rundir.write_atomic(root / "sensitivity.csv", res.table.to_csv(index=False))
    doc = {
        "base": {"doubling": res.base.doubling, "config": res.base.config.to_dict(),
                 "diagnostics_problems": res.base.diagnostics.get("problems", [])},
        "vary": list(specs),
        "varied": [{"key": v.key, "setting": v.setting, "values": v.values} for v in res.varies],
        "variants": res.table.to_dict("records"),
        "prior_sensitivity": res.prior.to_dict() if res.prior is not None else None,
        "figures": ["tornado.png", "tornado.svg"],
        "notes": "run_dir is relative to this directory; shift_months = median − base median",
    }
    rundir.write_atomic(root / "sensitivity.json", json.dumps(results.json_safe(doc), indent=2,
                                                              allow_nan=False, default=str))
    core = ["sensitivity.csv", "sensitivity.json"]
    if res.prior is not None:
        rundir.write_atomic(root / "prior_sensitivity.csv", res.prior.table.to_csv(index=False))
        core.append("prior_sensitivity.csv")
    rundir.write_manifest(root, "sensitivity", core + ["sweep.json"])
