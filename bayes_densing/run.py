"""One complete fit: load data → build the model → sample → summarise → write the run directory.

This is what ``bayes-densing sample`` calls; it is also the Python entry point::

    from bayes_densing import load_config, fit
    cfg = load_config("default")
    result = fit(cfg, out="runs/demo", figures=True)   # bundled dataset; figures + report
    print(result.summary)
"""

from __future__ import annotations

import copy
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd
import xarray as xr

from bayes_densing import __version__, data as data_mod, results
from bayes_densing.analyses import classic
from bayes_densing.inference import sequential
from bayes_densing.config import Config
from bayes_densing.inference.sample import SampleResult, diagnose, sample
from bayes_densing.model.build import build_model


@dataclass
class FitResult:
    idata: xr.DataTree
    data: data_mod.ScoreData
    models: pd.DataFrame
    trend: pd.DataFrame
    doubling: dict
    diagnostics: dict
    summary: str
    out: Path | None
    config: Config  # what ran: the input config with the dataset defaults that were applied
    sampled: SampleResult | None = None   # the sampler's draws, before anything was added


def versions() -> dict[str, str]:
    out = {"bayes_densing": __version__, "python": platform.python_version()}
    for pkg in ("pymc", "pytensor", "numpyro", "jax", "jaxlib", "arviz", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def resolved_config(config: Config, data: data_mod.ScoreData) -> Config:
    """A copy of ``config`` with the dataset defaults that were applied written in, so that
    ``config.toml`` records exactly what ran."""
    ran = copy.deepcopy(config)
    ran.data.benchmarks = list(data.benchmarks)
    ran.data.since = data.since
    ran.data.reference = data.reference
    return ran


def classic_summary(data: data_mod.ScoreData, config: Config) -> dict:
    """The paper's point numbers on the same data (classic.py), shown beside the posterior;
    ``{"error": ...}`` when the point pipeline cannot run on this data."""
    try:
        point = classic.fit(data, config)
    except (classic.ClassicError, ValueError) as exc:
        return {"error": str(exc)}
    whole = point.to_dict()
    return {k: whole[k] for k in ("A_per_day", "doubling_days", "doubling_months", "r2",
                                  "n_envelope")}


def write_figures_and_report(run_dir: Path, run: results.Run, progressbar: bool = False,
                             shown_as: str | Path | None = None) -> None:
    """Every figure of the run (``figures/``) and the report (report.md, report.html).
    ``run``: the run (here, still in memory);
    ``shown_as``: the directory the run will be renamed to, for the report's text."""
    from bayes_densing.figures import report, run_set

    say = ((lambda name: print(f"  drawing figure: {name}", file=sys.stderr, flush=True))
           if progressbar else None)
    run_set.run_figures(run, Path(run_dir) / "figures", progress=say)
    run_set.record_figures(run_dir)
    report.write_report(run_dir, shown_as)


def _rounded(seconds: float) -> str:
    """An estimate in words: seconds to two significant figures, minutes past 100 s."""
    if seconds < 100:
        return f"{float(f'{seconds:.2g}'):g} s"
    return f"{seconds / 60:.0f} min"


def _announce(config: Config, n_scores: int) -> None:
    """The line before sampling (on stderr): what runs, how to stop it and, for the cut on the
    CPU, the time to expect (``cut.expected_seconds``)."""
    s = config.sampler
    chains = f"{s.chains} chain{'s' if s.chains != 1 else ''}"
    what = f"{chains} × ({s.tune} warm-up + {s.draws} draws)"
    if config.model.curves == "cut":
        from bayes_densing.inference import cut

        # a single chain's curve fit is longer (cut.curve_length)
        what = (f"the cut: {chains} × ({s.tune} warm-up + {cut.curve_length(s)} draws) of the "
                f"curves, then the targets given each of {len(cut.kept(s))} of their draws "
                "per chain")
    print(f"Sampling {what} with {s.sampler} on {s.device}; Ctrl-C stops it and leaves "
          "nothing", file=sys.stderr, flush=True)
    if config.model.curves == "cut" and s.device == "cpu":
        expect = cut.expected_seconds(n_scores, s)
        print(f"  expect roughly {_rounded(expect['cut'])} of sampling after compiling "
              f"(--curves joint, the faster estimand: {_rounded(expect['joint'])})",
              file=sys.stderr, flush=True)


def _sample(model, data: data_mod.ScoreData, config: Config, progressbar: bool) -> SampleResult:
    """The sampler's draws: the cut's curves, then the targets given them, or the joint model."""
    if progressbar:
        _announce(config, len(data.obs))
    if config.model.curves == "cut":
        from bayes_densing.inference import cut

        return cut.sample(data, config, progressbar=progressbar)
    return sample(model, config.sampler, progressbar=progressbar)


@dataclass
class _Fit:
    """A fit on its way to a :class:`FitResult`: what the steps after sampling share."""

    data: data_mod.ScoreData
    config: Config
    model: object                  # the PyMC model: its free variables are diagnosed
    sampled: SampleResult
    idata: xr.DataTree | None = None
    unanchored: object | None = None   # sequential.anchor's answer for tasks without references

    def add_groups(self, progressbar: bool) -> None:
        """``idata``: the sampler's groups, the unanchored tasks' posterior, and the posterior
        predictive, log-likelihood and constant data of this fit."""
        data, config = self.data, self.config
        # a new tree of the sampler's groups: those added below are this fit's own
        idata = self.sampled.idata.copy()
        if sequential.has_unanchored(data):
            if progressbar:
                print("Anchoring the tasks without reference scores "
                      f"({', '.join(sequential.tasks(data))}) by the models they share with "
                      "the others", file=sys.stderr, flush=True)
            self.unanchored = sequential.anchor(idata, data, config)
            idata["posterior"] = xr.merge([idata.posterior.to_dataset(),
                                           self.unanchored.posterior])
        p_phi = results.likelihood_draws(idata, data, config)   # shared by the two groups below
        idata["posterior_predictive"] = results.posterior_predictive(idata, data, config,
                                                                     config.sampler.seed, p_phi)
        idata["log_likelihood"] = results.log_likelihood(idata, data, config, p_phi)
        idata["constant_data"] = results.constant_data(data)
        self.idata = idata

    def diagnostics(self, models: pd.DataFrame, doubling: dict, classic_point: dict,
                    command: str | None) -> dict:
        """diagnostics.json: the sampler's diagnostics, how the fit was made and its headline
        numbers."""
        data, config, sampled = self.data, self.config, self.sampled
        out = diagnose(self.idata, [rv.name for rv in self.model.free_RVs])
        out.update({
            "estimand": config.model.curves,
            "sampler": config.sampler.sampler, "device": config.sampler.device,
            "chain_method": sampled.chain_method, "mass_matrix": sampled.mass_matrix,
            "wall_s": sampled.wall_s,
            "sampling_s": sampled.sampling_s, "seed": config.sampler.seed,
            "input": data.source, "input_sha256": data.sha256, "data": data.describe(),
            "notices": data.notices, "warnings": data.warnings, "doubling": doubling,
            "versions": versions(), "config": config.to_dict(), "classic": classic_point,
            "extrapolation": results.extrapolation_summary(models),
            "reference_fit": results.reference_fit_summary(
                results.reference_fit(self.idata, config.sampler.seed)),
            "command": command or "bayes_densing.run.fit (Python)",
        })
        return out


def fit(config: Config, data_path: str | Path | None = None, *, out: str | Path | None = None,
        force: bool = False, progressbar: bool = True, data: data_mod.ScoreData | None = None,
        figures: bool = False, command: str | None = None,
        draws: SampleResult | None = None, unique_out: bool = False) -> FitResult:
    """Fit the model of ``config`` to the data and, if ``out`` is given, write a run directory
    (with its figures and report when ``figures``, as ``bayes-densing sample`` does; they take
    a few seconds, which sweeps of many fits skip); ``command``, the command line that asked
    for the fit, is recorded in diagnostics.json and the report. ``draws``: another fit's
    ``sampled``, of the very same model and sampler settings, to summarise instead of sampling
    again (the ``mean`` and ``envelope`` trends share one posterior and differ only in how
    the slope is read from it).

    Raises :class:`data.DataError` / :class:`config.ConfigError` on bad input before anything
    is sampled or written; an existing ``out`` is refused unless ``force`` (``unique_out``: a
    default name, moved to ``NAME-2`` … instead). Writing follows ``rundir``'s contract: a
    run that loses a race for ``out`` is kept aside (``rundir.OutputConflict``), a full disk
    leaves nothing (``rundir.OutputIOError``).
    """
    config.validate()
    if out is not None:
        out = results.check_out_dir(out, force, unique_out)
    if data is None:
        data = data_mod.load(config, data_path)
    config = resolved_config(config, data)
    model = build_model(data, config)
    sampled = draws if draws is not None else _sample(model, data, config, progressbar)
    f = _Fit(data, config, model, sampled)
    f.add_groups(progressbar)
    idata = f.idata
    models = results.models_table(idata, data, config)
    trend = results.trend_table(idata, data, config)
    doubling = results.doubling_summary(results.slope_draws(idata, config))
    classic_point = classic_summary(data, config)
    diagnostics = f.diagnostics(models, doubling, classic_point, command)
    if f.unanchored is not None:
        table = sequential.table(idata.posterior, data)
        diagnostics["unanchored"] = {**f.unanchored.diagnostics,
                                     "table": table.to_dict(orient="records")}
    summary = results.summary_text(trend, models, diagnostics, doubling, data.describe(),
                                   data.notices, data.warnings, classic_point)
    if f.unanchored is not None:
        summary += "\n\n" + "\n".join(sequential.summary_lines(table, f.unanchored.diagnostics))
    written = None
    if out is not None:
        where: list[Path] = []
        with results.atomic_dir(out, force, unique=unique_out, where=where) as tmp:
            results.write_run(tmp, idata=idata, models=models, trend=trend,
                              diagnostics=diagnostics, config=config, summary=summary)
            if figures:
                run = results.Run(idata=idata, models=models, trend=trend,
                                  diagnostics=diagnostics, config=config)
                write_figures_and_report(tmp, run, progressbar, shown_as=out)
        written = where[0]
    return FitResult(idata=idata, data=data, models=models, trend=trend, doubling=doubling,
                     diagnostics=diagnostics, summary=summary, out=written, config=config,
                     sampled=sampled)
