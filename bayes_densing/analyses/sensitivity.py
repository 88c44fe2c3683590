"""Sensitivity analysis: how far does the doubling time move with each modelling choice?

One choice at a time: every ``--vary KEY=v1,v2,…`` varies alone around the base configuration
(the base is a variant of its own, fitted once), which is what a tornado plot shows. Any config
key can vary — by a short alias or its full dotted name::

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

A variant equal to another (a value that is the base's own, or a D0 where the loss law has no
data term, so that D0 enters nothing) is not re-run, and the ``mean`` and ``envelope`` trends,
which read one posterior two ways, share one sampling run.

Every variant's config is validated and its data loaded before anything is fitted: an unknown
key, a bad value or a name that is not in the data (reference family, benchmark, family to
leave out) is a :class:`ConfigError`. A variant whose data or model cannot be built for a
legitimate reason (too few models in a date window, a changepoint with no models before it) or
whose sampler fails is recorded in the table with its error; the sweep goes on.

Output directory (written atomically: nothing half-written if interrupted)::

    OUT/sensitivity.csv, sensitivity.json   one row per variant (see COLUMNS)
    OUT/tornado.png, tornado.svg            how far each choice moves the median
    OUT/prior_sensitivity.csv               power-scaling check of the base run (optional)
    OUT/base/, OUT/trend=envelope/, …       every variant's run directory

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
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import data as data_mod, results, rundir, run
from ..config import Config, ConfigError
from ..inference import SamplerError
from ..model import ModelError, data_term_on

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
    """Parse ``KEY=v1,v2,…`` (KEY an alias or a dotted config key); ConfigError if malformed."""
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
    that is not in the data; DataError if the base itself cannot be loaded. Any other data
    problem of a variant is recorded in its ``error``.
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
    when the loss law has no data term (``model.data_term_on``), enters nothing."""
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
    (``model.build_model``, ``results.slope_draws``)."""
    def sampled(c: dict) -> dict:
        trend = "mean" if c["model"]["trend"] == "envelope" else c["model"]["trend"]
        return {**c, "model": {**c["model"], "trend": trend}}
    return sampled(a) == sampled(b)


# --- running -------------------------------------------------------------------------------------

def _row(v: Variant, fitted: run.FitResult | None, base_median: float, run_dir: str) -> dict:
    row = {"variant": v.name, "key": v.key, "setting": v.setting, "value": v.value,
           "base_value": v.base_value, "error": v.error, "run_dir": run_dir,
           "n_targets": v.data.n_target if v.data is not None else math.nan}
    if fitted is None:
        row.update({"median_months": math.nan, "hdi_low": math.nan, "hdi_high": math.nan,
                    "p_no_growth": math.nan, "shift_months": math.nan, "diagnostics": "failed",
                    **{f"p_leq_{m:g}": math.nan for m in results.CLAIMS}})
        return row
    d = fitted.doubling
    problems = fitted.diagnostics.get("problems", [])
    row.update({"median_months": float(d["median_months"]), "hdi_low": d["hdi_months"][0],
                "hdi_high": d["hdi_months"][1], "p_no_growth": d["p_no_growth"],
                "shift_months": float(d["median_months"]) - base_median,
                "diagnostics": "OK" if not problems else "PROBLEMS: " + "; ".join(problems),
                **{f"p_leq_{m:g}": d["p_leq"][f"{m:g}"] for m in results.CLAIMS}})
    return row


def _progress(i: int, n: int, row: dict, note: str = "") -> str:
    head = f"[{i}/{n}] {row['variant']} …"
    if row["error"]:
        return f"{head} failed: {row['error']}"
    diag = "diagnostics OK" if row["diagnostics"] == "OK" else row["diagnostics"]
    return (f"{head} {_fmt(row['median_months'])} months (90% HDI {row['hdi_low']:.2f}–"
            f"{row['hdi_high']:.2f}), {diag}{note}")


def sensitivity(base: Config, vary: list[str], data_path: str | Path | None = None, *,
                out: str | Path | None = None, force: bool = False, prior_scaling: bool = True,
                quiet: bool = False, echo: Callable[[str], None] = print) -> SensitivityResult:
    """Fit the base and every one-at-a-time variant; write the table, tornado and run dirs.

    ``vary``: ``KEY=v1,v2,…`` strings (see the module docstring). ``out``: the sweep directory
    (written atomically; refused if it exists unless ``force``); without it nothing is written.
    ``prior_scaling``: also run the power-scaling prior-sensitivity check on the base run.
    Progress goes to ``echo``, one line per variant, unless ``quiet``.
    """
    from .. import plots

    variants = prepare(base, vary, data_path)
    if out is not None:
        results.check_out_dir(out, force)
    say = (lambda s: None) if quiet else echo

    def sweep(root: Path | None) -> SensitivityResult:
        fitted: dict[str, run.FitResult] = {}
        rows: list[dict] = []
        base_median = math.nan
        n = len(variants)
        for i, v in enumerate(variants, start=1):
            result, note, run_dir = None, "", ""
            if v.same_as:
                result, run_dir = fitted.get(v.same_as), v.same_as
                because = f": {v.same_because}" if v.same_because else ""
                note = f" (same as {v.same_as}{because}, not re-run)"
                if result is None:
                    v.error = variants_by_name[v.same_as].error
            elif not v.error:
                start = time.perf_counter()
                shared = fitted.get(v.draws_of)
                try:
                    result = run.fit(v.config, data_path, data=v.data, progressbar=False,
                                     out=None if root is None else root / v.name,
                                     draws=None if shared is None else shared.sampled)
                except FIT_ERRORS as exc:
                    if v.name == BASE:
                        raise
                    v.error = str(exc)
                else:
                    fitted[v.name] = result
                    run_dir = v.name if root is not None else ""
                    note = f", {time.perf_counter() - start:.0f} s" + (
                        "" if shared is None else f" (the draws of {v.draws_of}, not re-sampled)")
            if v.name == BASE:
                base_median = float(result.doubling["median_months"])
            row = _row(v, result, base_median, run_dir)
            rows.append(row)
            say(_progress(i, n, row, note))
        table = pd.DataFrame(rows, columns=COLUMNS)
        base_fit = fitted[BASE]
        prior = None
        if prior_scaling:
            from .prior_sensitivity import prior_sensitivity

            say("prior sensitivity: power-scaling the base run's prior …")
            prior = prior_sensitivity(base_fit.idata, base_fit.data, base_fit.config)
        figures: list[Path] = []
        res = SensitivityResult(table=table, base=base_fit, prior=prior,
                                varies=parse_varies(vary), out=None, figures=figures)
        if root is not None:
            _write(root, res, vary)
            fig, paths = plots.tornado(table, base_median, root / "tornado")
            rundir.record_derived(root, [p.name for p in paths])
            figures.extend(Path(out) / p.name for p in paths)
        return res

    variants_by_name = {v.name: v for v in variants}
    if out is None:
        return sweep(None)
    with results.atomic_dir(out, force) as tmp:
        res = sweep(tmp)
    res.out = Path(out)
    return res


def _write(root: Path, res: SensitivityResult, specs: list[str]) -> None:
    res.table.to_csv(root / "sensitivity.csv", index=False)
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
    (root / "sensitivity.json").write_text(json.dumps(results.json_safe(doc), indent=2,
                                                      allow_nan=False, default=str))
    core = ["sensitivity.csv", "sensitivity.json"]
    if res.prior is not None:
        res.prior.table.to_csv(root / "prior_sensitivity.csv", index=False)
        core.append("prior_sensitivity.csv")
    rundir.write_manifest(root, "sensitivity", core)
