"""The ``bayes-densing`` command line: thin wrappers over the library.

Exit codes (docs/cli.md has the table of faults): 0 success; 2 bad input, configuration or a
damaged run directory (nothing written); 3 the sampler's diagnostics failed a threshold
(results written; pass --allow-warnings to exit 0); 4 another run published the same --out
first (this run kept under a printed name); 5 an I/O error such as a full disk (nothing
written); 130/143 interrupted (nothing written).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from bayes_densing.config import SamplerConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="markdown",
                  help="Bayesian analysis of the Densing Law of LLMs: how fast does capability "
                       "density (effective ÷ actual parameters) grow, and how sure can we be?\n\n"
                       "**Example:** `bayes-densing sample --out runs/demo` fits the bundled "
                       "dataset and prints the doubling time with its credible interval.")

EXIT_BAD_INPUT = 2
EXIT_DIAGNOSTICS = 3
# the sampler's length and seed, alike in every command that fits
_S = SamplerConfig()
CHAINS_HELP = f"Markov chains (default {_S.chains}; on the CPU each gets its own XLA host device)."
DRAWS_HELP = f"Draws kept per chain (default {_S.draws})."
TUNE_HELP = f"Warm-up iterations per chain, discarded (default {_S.tune})."
SEED_HELP = f"Random seed of the sampler (default {_S.seed})."


def _fail(message, code: int | None = None) -> None:
    """One ``error:`` line and the exit code: ``message`` is text or an exception whose
    ``exit_code`` (rundir's errors) chooses the code; otherwise bad input (2)."""
    code = code if code is not None else getattr(message, "exit_code", EXIT_BAD_INPUT)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _io_error(exc: OSError, where):
    from bayes_densing.results.rundir import io_error

    return io_error(exc, where)


def _import_stack() -> None:
    """Import the modelling stack (PyMC, PyTensor, ArviZ, JAX) with the cyclic garbage collector
    paused, then freeze what it made out of the collector's reach: ~350,000 objects that live as
    long as the process and that each full collection would walk again (eight of them in the
    default fit's start). 1.0 s of its 31 s on 2 cores (benchmarks/README.md, "The default
    fit"). For the commands that fit."""
    import gc

    gc.disable()
    try:
        import jax  # noqa: F401

        from bayes_densing import run  # noqa: F401  (PyMC, PyTensor, ArviZ, pandas)
    finally:
        gc.freeze()
        gc.enable()


REFIT_DIR = "influence-refits"   # the refits' sweep directory, inside the run (or --out)
WORKERS_HELP = ("Fit on a local Dask cluster of N worker processes, started and stopped by the "
                "command (each with the cores shared out as XLA host devices); default: in this "
                "process.")
SCHEDULER_HELP = ("Fit on a running Dask cluster: its scheduler's address, e.g. tcp://10.0.0.5:8786 "
                  "(docs/sweeps.md: dask-jobqueue on SLURM).")


@contextmanager
def _sweep_place(workers: Optional[int], scheduler: Optional[str], quiet: bool = False):
    """Where a sweep's fits run (``distributed.runner.executor``)."""
    from bayes_densing.distributed import runner

    with runner.executor(scheduler, workers,
                         say=(lambda _: None) if quiet else typer.echo) as place:
        yield place


def _config(model: str, overrides: dict, set_: list[str]):
    """The preset (or TOML file) ``model`` with command-line overrides and ``--set KEY=VALUE``."""
    from bayes_densing.config import load_config

    cfg = load_config(model)
    for key, value in overrides.items():
        if value is not None:
            cfg.set(key, value)
    cfg.set_items(set_)
    chosen = overrides.get("model.curves") or any(s.strip().startswith("model.curves")
                                                  for s in set_)
    if cfg.fall_back_to_joint(bool(chosen)):
        typer.echo(f"note: {cfg.sampler.sampler} (mass_matrix {cfg.sampler.mass_matrix}) fits "
                   "the joint model (--curves joint): the cut runs on the default sampler only",
                   err=True)
    return cfg.validate()


_ARGV: list[str] | None = None   # the console script's arguments (set by main())


def _command_line(ctx: typer.Context) -> str:
    """The command that ran, for the run's record: as typed when started from the console
    script, else (typer's test runner, ``app()`` from Python) rebuilt from the options given."""
    import shlex

    if _ARGV is not None:
        return " ".join(["bayes-densing", *map(shlex.quote, _ARGV)])
    words = ["bayes-densing", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value == param.default or value is None or value == []:
            continue
        flag = param.opts[0]
        if isinstance(value, bool):
            words.append(flag if value else (param.secondary_opts or [flag])[0])
        else:
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                words += [flag, str(v)]
    return " ".join(map(shlex.quote, words))


@app.command()
def sample(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Scores CSV (long or wide); default: the bundled dataset."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Bundled dataset name (see `bayes-densing datasets`)."),
    model: str = typer.Option("default", "--model", "--preset", help="Preset name (default, paper, robust, changepoint) or a TOML file."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Reference family (a `family` value)."),
    benchmarks: Optional[str] = typer.Option(None, "--benchmarks", help="Comma-separated benchmarks to use."),
    since: Optional[str] = typer.Option(None, "--since", help="Targets released on/after this date (YYYY-MM-DD)."),
    until: Optional[str] = typer.Option(None, "--until", help="Targets released on/before this date."),
    trend: Optional[str] = typer.Option(None, "--trend", help="frontier | mean | envelope | changepoint"),
    likelihood: Optional[str] = typer.Option(None, "--likelihood", help="betabinomial | robust"),
    curves: Optional[str] = typer.Option(None, "--curves", help="cut: the curves from the reference models alone (effective sizes relative to them) | joint: fitted to every model's scores, faster (docs/model.md)."),
    params: Optional[str] = typer.Option(None, "--params", help="total | active: the size density divides by."),
    d0: Optional[float] = typer.Option(None, "--d0", help="D0 in trillions of tokens (paper: 1)."),
    chains: Optional[int] = typer.Option(None, "--chains", help=CHAINS_HELP),
    draws: Optional[int] = typer.Option(None, "--draws", help=DRAWS_HELP),
    tune: Optional[int] = typer.Option(None, "--tune", help=TUNE_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help=SEED_HELP),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="numpyro | pymc | blackjax | nutpie"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | gpu"),
    set_: list[str] = typer.Option([], "--set", help="Any config key, e.g. --set priors.slope_sd=0.5"),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to write (default runs/sample-YYYYMMDD-HHMMSS)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
    allow_warnings: bool = typer.Option(False, "--allow-warnings", help="Exit 0 even when diagnostics fail."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Draw the figures and write report.md/report.html into the run directory."),
) -> None:
    """Fit the model and print the doubling time of capability density.

    **Example** (bundled data, default model):

        bayes-densing sample --out runs/demo

    Your own scores, with the bundled Qwen1.5 models as reference if your file has none:

        bayes-densing sample --data scores.csv --benchmarks mmlu,gsm8k --out runs/mine
    """
    from datetime import datetime

    _import_stack()
    from bayes_densing.config import ConfigError
    from bayes_densing.data import DataError
    from bayes_densing.inference.sample import SamplerError
    from bayes_densing.model.build import ModelError
    from bayes_densing.results import OutputConflict, RunDirError
    from bayes_densing.run import fit

    try:
        cfg = _config(model, {
            "data.dataset": dataset, "data.reference": reference, "data.benchmarks": benchmarks,
            "data.since": since, "data.until": until, "data.params": params,
            "model.trend": trend, "model.likelihood": likelihood, "model.d0": d0,
            "model.curves": curves,
            "sampler.chains": chains, "sampler.draws": draws, "sampler.tune": tune,
            "sampler.seed": seed, "sampler.sampler": sampler, "sampler.device": device}, set_)
        default_out = out is None      # a default name never conflicts: it moves to NAME-2
        out = out or Path("runs") / datetime.now().strftime("sample-%Y%m%d-%H%M%S")
        result = fit(cfg, data, out=out, force=force, progressbar=not quiet,
                     figures=figures, command=_command_line(ctx), unique_out=default_out)
    except (ConfigError, DataError, ModelError, RunDirError, SamplerError) as exc:
        if isinstance(exc, OutputConflict):   # the sampling is not lost: show what it found
            typer.echo((exc.kept / "summary.txt").read_text(encoding="utf-8"))
        _fail(exc)
    typer.echo(result.summary)
    typer.echo(f"\nRun written to {result.out}/"
               + (f" (figures in figures/, report: {result.out}/report.html)" if figures else ""))
    if result.diagnostics["problems"] and not allow_warnings:
        typer.echo("error: the sampler's diagnostics failed (see above); the results may be "
                   "unreliable. Re-run with more --tune/--draws, or pass --allow-warnings.", err=True)
        raise typer.Exit(EXIT_DIAGNOSTICS)


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="CSV to write; the truth goes beside it (synth.csv → synth.truth.json)"),
    doubling_months: float = typer.Option(3.3, "--doubling-months"),
    models: int = typer.Option(60, "--models", help="Number of target models."),
    benchmarks: int = typer.Option(5, "--benchmarks", help="Number of benchmarks (1–12)."),
    reference: int = typer.Option(8, "--reference-models", help="Reference sizes (2–8)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Simulate scores from the generative model with a known doubling time.

    **Example:**

        bayes-densing simulate --doubling-months 3.3 --models 60 --benchmarks 5 --seed 1 --out synth.csv
    """
    from bayes_densing.model.simulate import simulate as run, write

    if doubling_months <= 0:
        _fail("--doubling-months must be positive")
    try:
        df, truth = run(models, benchmarks, doubling_months, seed=seed, n_reference=reference)
    except ValueError as exc:
        _fail(exc)
    try:
        csv, truth_path = write(df, truth, out)
    except OSError as exc:
        _fail(_io_error(exc, out))
    typer.echo(f"wrote {csv} ({len(df)} scores: {models} targets + {reference} reference models × "
               f"{benchmarks} benchmarks) and {truth_path}")
    typer.echo(f"fit it with: bayes-densing sample --data {csv} --out runs/synth")


@app.command()
def classic(
    data: Optional[Path] = typer.Option(None, "--data", help="Scores CSV (long or wide); default: the bundled dataset."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Bundled dataset name (see `bayes-densing datasets`)."),
    model: str = typer.Option("default", "--model", "--preset", help="Preset name (default, paper, robust, changepoint) or a TOML file: its data selection, D0 and date origin are used."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Reference family (a `family` value)."),
    benchmarks: Optional[str] = typer.Option(None, "--benchmarks", help="Comma-separated benchmarks to use."),
    since: Optional[str] = typer.Option(None, "--since", help="Targets released on/after this date (YYYY-MM-DD)."),
    until: Optional[str] = typer.Option(None, "--until", help="Targets released on/before this date."),
    params: Optional[str] = typer.Option(None, "--params", help="total | active: the size density divides by."),
    d0: Optional[float] = typer.Option(None, "--d0", help="D0 in trillions of tokens (paper: 1)."),
    set_: list[str] = typer.Option([], "--set", help="Any config key, e.g. --set model.date_origin=2023-02-24"),
    top: int = typer.Option(10, "--top", help="How many of the densest models to list."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the whole result as JSON to this file."),
) -> None:
    """The Densing paper's point pipeline (no uncertainty), for comparison with `sample`.

    Fits each benchmark's reference curve by least squares, inverts every target's scores to
    effective sizes at D0, averages ln N̂ over benchmarks, and fits OLS of ln ρ on the release
    day over the running-maximum envelope models. Prints A per day, the doubling time, R² and
    the densest models. Takes seconds.

    **Example** (bundled data, the paper's benchmarks and window):

        bayes-densing classic --preset paper --out classic.json
    """
    import json

    from bayes_densing.analyses.classic import ClassicError, fit
    from bayes_densing.config import ConfigError
    from bayes_densing.data import DataError, load

    try:
        cfg = _config(model, {
            "data.dataset": dataset, "data.reference": reference, "data.benchmarks": benchmarks,
            "data.since": since, "data.until": until, "data.params": params, "model.d0": d0},
            set_)
        result = fit(load(cfg, data), cfg)
    except (ConfigError, DataError, ClassicError) as exc:
        _fail(exc)
    typer.echo(result.summary_text(top=top))
    if out is not None:
        from bayes_densing.results.rundir import write_atomic

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out, json.dumps(result.to_dict(), indent=2, allow_nan=False))
        except OSError as exc:
            _fail(_io_error(exc, out))
        typer.echo(f"\nwrote {out}")


@app.command()
def claim(
    run_dir: Path = typer.Argument(..., help="A run directory written by `bayes-densing sample`."),
    months: list[float] = typer.Option([3.3, 3.5], "--months", help="A claimed doubling time in months; repeat for several."),
    ratio: float = typer.Option(1.5, "--ratio", help="Changepoint runs: the claimed slope ratio after/before (paper: 1.5)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """How sure can we be of a claimed doubling time? Reads a run; nothing is re-sampled.

    Prints the doubling time's median and 50/90/95% HDIs (months and days), P(T ≤ m) for
    each claimed m, the growth factor per year and, for a changepoint run, the slope ratio
    after/before the change date with P(ratio ≥ --ratio).

    **Example:**

        bayes-densing claim runs/demo --months 3.3 --months 3.5
    """
    import json

    from bayes_densing.results.rundir import RunDirError, verify

    if any(m <= 0 for m in months) or ratio <= 0:
        _fail("--months and --ratio must be positive")
    try:
        verify(run_dir)     # a damaged run is refused before the modelling stack loads
        from bayes_densing.analyses.claim import claim as run_claim

        result = run_claim(run_dir, months=months, ratio=ratio)
    except RunDirError as exc:
        _fail(exc)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.text())


@app.command()
def sensitivity(
    vary: list[str] = typer.Option([], "--vary", help="KEY=v1,v2,… to vary one at a time around the base; repeat for several keys. KEY: reference, d0, trend, likelihood, since, until, params, drop_family (leave_out), benchmarks (sets joined by '+': mmlu+gsm8k,mmlu+bbh), seed, curves (cut: the curves from the reference models alone), or any dotted config key (priors.slope_sd=0.15,0.6)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Scores CSV (long or wide); default: the bundled dataset."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Bundled dataset name (see `bayes-densing datasets`)."),
    model: str = typer.Option("default", "--model", "--preset", help="Base preset name (default, paper, robust, changepoint) or a TOML file."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Base reference family (a `family` value)."),
    benchmarks: Optional[str] = typer.Option(None, "--benchmarks", help="Base comma-separated benchmarks."),
    since: Optional[str] = typer.Option(None, "--since", help="Base window: targets released on/after this date (YYYY-MM-DD)."),
    until: Optional[str] = typer.Option(None, "--until", help="Base window: targets released on/before this date."),
    trend: Optional[str] = typer.Option(None, "--trend", help="frontier | mean | envelope | changepoint"),
    likelihood: Optional[str] = typer.Option(None, "--likelihood", help="betabinomial | robust"),
    params: Optional[str] = typer.Option(None, "--params", help="total | active: the size density divides by."),
    d0: Optional[float] = typer.Option(None, "--d0", help="D0 in trillions of tokens (paper: 1)."),
    chains: Optional[int] = typer.Option(None, "--chains", help=CHAINS_HELP),
    draws: Optional[int] = typer.Option(None, "--draws", help=DRAWS_HELP),
    tune: Optional[int] = typer.Option(None, "--tune", help=TUNE_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help=SEED_HELP),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="numpyro | pymc | blackjax | nutpie"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | gpu"),
    set_: list[str] = typer.Option([], "--set", help="Any base config key, e.g. --set priors.slope_sd=0.5"),
    out: Optional[Path] = typer.Option(None, "--out", help="Sweep directory (default runs/sensitivity-YYYYMMDD-HHMMSS); an unfinished sweep of the same settings there is resumed."),
    force: bool = typer.Option(False, "--force", help="Discard an existing --out and start afresh."),
    prior_scaling: bool = typer.Option(True, "--prior-scaling/--no-prior-scaling", help="Also check the base run's prior sensitivity by power-scaling."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines."),
    workers: Optional[int] = typer.Option(None, "--workers", help=WORKERS_HELP),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """How far does the doubling time move with each modelling choice? Fits the base model and
    every `--vary` value one at a time, then writes a table (sensitivity.csv/.json), a tornado
    plot (tornado.png/.svg) and every variant's run directory under `--out`/variants/, each as
    it finishes (the same command resumes an interrupted sweep; --workers N or --scheduler
    ADDRESS fit the variants on a Dask cluster, docs/sweeps.md). A variant that
    cannot be fitted (e.g. too few models in a date window) is recorded with its error. With
    `--prior-scaling` (default) the base run's prior is power-scaled (Kallioinen et al. 2023)
    and each key quantity is called prior-driven or likelihood-dominated.

    **Example:**

        bayes-densing sensitivity --vary reference=Qwen1.5,Llama-2,Pythia --vary d0=0.3,1,3 --vary trend=frontier,envelope,mean --out runs/sens

    Each variant is a full fit (the mean and envelope trends share one, as they read one
    posterior; variants of other priors, D0 or seed share one compiled program): use
    `--chains/--draws/--tune` to keep a wide sweep affordable.
    """
    from datetime import datetime

    _import_stack()
    from bayes_densing.analyses.sensitivity import sensitivity as run_sensitivity
    from bayes_densing.config import ConfigError
    from bayes_densing.data import DataError
    from bayes_densing.distributed import runner
    from bayes_densing.inference.sample import SamplerError
    from bayes_densing.model.build import ModelError
    from bayes_densing.results import RunDirError

    if not vary:
        _fail("give at least one --vary KEY=v1,v2 (e.g. --vary trend=frontier,envelope)")
    try:
        cfg = _config(model, {
            "data.dataset": dataset, "data.reference": reference, "data.benchmarks": benchmarks,
            "data.since": since, "data.until": until, "data.params": params,
            "model.trend": trend, "model.likelihood": likelihood, "model.d0": d0,
            "sampler.chains": chains, "sampler.draws": draws, "sampler.tune": tune,
            "sampler.seed": seed, "sampler.sampler": sampler, "sampler.device": device}, set_)
        out = out or Path("runs") / datetime.now().strftime("sensitivity-%Y%m%d-%H%M%S")
        with _sweep_place(workers, scheduler, quiet) as place:
            result = run_sensitivity(cfg, vary, data, out=out, force=force,
                                     prior_scaling=prior_scaling, quiet=quiet,
                                     echo=lambda line: typer.echo(line, err=True), place=place)
    except (ConfigError, DataError, ModelError, RunDirError, SamplerError) as exc:
        _fail(exc)
    except runner.SweepIncomplete as exc:
        _fail(exc, exc.exit_code)
    typer.echo(result.text())
    typer.echo(runner.compile_line(out))


@app.command()
def influence(
    run_dir: Path = typer.Argument(..., help="A run directory written by `bayes-densing sample`."),
    refit: bool = typer.Option(True, "--refit/--no-refit", help="Refit without the flagged models (a cut run: then those that move the doubling time most)."),
    max_refits: int = typer.Option(5, "--max-refits", help="At most this many refits, in the table's order."),
    top: int = typer.Option(10, "--top", help="How many models to list (by Pareto k; a cut run: flagged first, then by the move of the doubling time)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for influence.csv and influence.json (default: the run directory)."),
    data: Optional[Path] = typer.Option(None, "--data", help="The run's scores CSV, for refits of a run with observed losses (otherwise the run directory suffices)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines for the refits."),
    workers: Optional[int] = typer.Option(None, "--workers", help=WORKERS_HELP),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Which models drive the answer? Leave-one-model-out PSIS-LOO (ArviZ) for a run.

    Every model (its scores on all benchmarks together) gets its elpd_loo contribution, its
    Pareto k and the move of the doubling time that leaving it out implies; models with
    k > 0.7 are flagged, and with --refit the model is refitted without each of them (same
    settings and seed) to show the doubling time they leave behind. On a cut run
    (--curves cut) a target's LOO is computed within each curve draw, its own latent
    integrated out, and its refits reuse the curves (seconds each; docs/model.md, section 6).
    Writes influence.csv and influence.json into the run directory (or --out); the refits
    are kept in its influence-refits/ as they finish (a re-run resumes them) and run on a
    Dask cluster with --workers N or --scheduler ADDRESS (docs/sweeps.md).

    **Example:**

        bayes-densing influence runs/demo --max-refits 3
    """
    from bayes_densing.results.rundir import RunDirError, verify

    if max_refits < 0:
        _fail("--max-refits must be 0 or more")
    try:
        verify(run_dir)     # a damaged run is refused before the modelling stack loads
    except RunDirError as exc:
        _fail(exc)
    _import_stack()
    from bayes_densing.analyses.influence import influence as run_influence
    from bayes_densing.config import ConfigError
    from bayes_densing.data import DataError
    from bayes_densing.distributed import runner
    from bayes_densing.inference.sample import SamplerError

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    try:
        with _sweep_place(workers, scheduler, quiet) as place:
            result = run_influence(run_dir, refit=refit, max_refits=max_refits, data_path=data,
                                   progress=None if quiet else progress, place=place,
                                   refit_dir=(out or run_dir) / REFIT_DIR)
    except (RunDirError, DataError, ConfigError, SamplerError) as exc:
        _fail(exc)
    except runner.SweepIncomplete as exc:
        _fail(exc, exc.exit_code)
    try:
        written = result.write(out or run_dir)
    except RunDirError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(_io_error(exc, out or run_dir))
    typer.echo(result.text(top=top))
    typer.echo(f"\nwrote {', '.join(str(p) for p in written)}")


@app.command()
def subsets(
    benchmarks: str = typer.Option(..., "--benchmarks", help="Comma-separated benchmarks; every non-empty subset is fitted."),
    min_size: int = typer.Option(1, "--min-size", help="Smallest subset size to fit."),
    data: Optional[Path] = typer.Option(None, "--data", help="Scores CSV; default: the bundled dataset."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Bundled dataset name."),
    model: str = typer.Option("default", "--model", "--preset", help="Preset name or a TOML file."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Reference family."),
    since: Optional[str] = typer.Option(None, "--since", help="Targets released on/after this date."),
    until: Optional[str] = typer.Option(None, "--until", help="Targets released on/before this date."),
    trend: Optional[str] = typer.Option(None, "--trend", help="frontier | mean | envelope | changepoint"),
    curves: Optional[str] = typer.Option(None, "--curves", help="cut: each subset's curves from the reference models' scores on its benchmarks alone | joint (docs/model.md)."),
    chains: Optional[int] = typer.Option(None, "--chains", help=CHAINS_HELP),
    draws: Optional[int] = typer.Option(None, "--draws", help=DRAWS_HELP),
    tune: Optional[int] = typer.Option(None, "--tune", help=TUNE_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help=SEED_HELP),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | gpu"),
    set_: list[str] = typer.Option([], "--set", help="Any config key, e.g. --set priors.slope_sd=0.5"),
    out: Optional[Path] = typer.Option(None, "--out", help="Sweep directory (default runs/subsets-YYYYMMDD-HHMMSS); an unfinished sweep of the same settings there is resumed."),
    force: bool = typer.Option(False, "--force", help="Discard an existing --out and start afresh."),
    quiet: bool = typer.Option(False, "--quiet", help="No per-subset progress lines."),
    warm_start: bool = typer.Option(True, "--warm-start/--no-warm-start", help="Start each subset's warm-up from the all-benchmark fit's metric, step size and positions (default), or from scratch as a single fit does."),
    warm_tune: Optional[int] = typer.Option(None, "--warm-tune", help="Warm-up iterations of each warm-started subset, at most --tune (default 300); the all-benchmark fit and --no-warm-start use --tune."),
    workers: Optional[int] = typer.Option(None, "--workers", help=WORKERS_HELP),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Fit every subset of the benchmarks and compare their doubling times (one compiled model).

    For each subset: the doubling time (median, 90% HDI, P(T ≤ 3.3)), diagnostics, and the rank
    correlation of per-model densities with the all-benchmark fit; a forest plot of them all.
    The model is compiled once and every subset is a 0/1 weight vector; each subset's warm-up
    starts from the all-benchmark fit's adapted metric and is shorter (--warm-tune). Measured
    cost: benchmarks/README.md. With --curves cut each subset is a cut fit (the curves from
    the references' scores on its benchmarks), fitted from scratch.

    Each finished subset is written into OUT/variants/ as it arrives; an interrupted sweep is
    resumed by the same command (only the missing subsets are fitted). --workers N fits them
    on a local Dask cluster of N processes, --scheduler ADDRESS on a running one
    (docs/sweeps.md).

    **Example** (31 fits, on two local worker processes):

        bayes-densing subsets --benchmarks mmlu,bbh,math_hard,humaneval,gsm8k --out runs/subsets --workers 2
    """
    from datetime import datetime

    _import_stack()
    from bayes_densing.analyses.subsets import WARM_TUNE, run_subsets, text, write
    from bayes_densing.config import ConfigError
    from bayes_densing.data import DataError
    from bayes_densing.distributed import runner
    from bayes_densing.inference.sample import SamplerError
    from bayes_densing.model.build import ModelError
    from bayes_densing.results import RunDirError

    names = [b.strip() for b in benchmarks.split(",") if b.strip()]
    try:
        cfg = _config(model, {
            "data.dataset": dataset, "data.reference": reference, "data.since": since,
            "data.until": until, "model.trend": trend, "model.curves": curves,
            "sampler.chains": chains, "sampler.draws": draws, "sampler.tune": tune,
            "sampler.seed": seed, "sampler.device": device}, set_)
        out = out or Path("runs") / datetime.now().strftime("subsets-%Y%m%d-%H%M%S")
        with _sweep_place(workers, scheduler, quiet) as place:
            table = run_subsets(cfg, names, data, min_size=min_size,
                                progress=None if quiet else typer.echo, warm_start=warm_start,
                                warm_tune=WARM_TUNE if warm_tune is None else warm_tune,
                                out=out, force=force, place=place)
        write(table, out, cfg)
    except (ConfigError, DataError, ModelError, RunDirError, SamplerError) as exc:
        _fail(exc)
    except runner.SweepIncomplete as exc:
        _fail(exc, exc.exit_code)
    typer.echo(text(table))
    typer.echo(runner.compile_line(out))
    typer.echo(f"\nWritten to {out}/ (subsets.csv, subsets.json, forest.png; variants/)")


@app.command()
def sbc(
    datasets: int = typer.Option(100, "--datasets", help="Simulated datasets, each fitted once."),
    targets: int = typer.Option(20, "--targets", help="Target models per dataset."),
    benchmarks: int = typer.Option(3, "--benchmarks", help="Benchmarks per dataset."),
    model: str = typer.Option("default", "--model", "--preset", help="Preset name or a TOML file."),
    curves: Optional[str] = typer.Option(None, "--curves", help="cut | joint: the estimand fitted to each dataset."),
    chains: int = typer.Option(2, "--chains", help="Chains per fit."),
    draws: int = typer.Option(500, "--draws", help="Draws per chain (at least --ranks - 1 in all)."),
    tune: int = typer.Option(500, "--tune", help="Warm-up iterations per chain."),
    ranks: int = typer.Option(100, "--ranks", help="Rank values 0..RANKS-1 (RANKS-1 thinned draws)."),
    bins: int = typer.Option(10, "--bins", help="Histogram bins of the chi-square test (divides --ranks)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the design, the prior draws and every fit."),
    offsets: Optional[str] = typer.Option(None, "--offsets", help="MEAN,SD: targets off the reference curves by N(MEAN, SD) in ln size per benchmark (docs/model.md)."),
    set_: list[str] = typer.Option([], "--set", help="Any config key, e.g. --set sampler.mass_matrix=diag"),
    out: Optional[Path] = typer.Option(None, "--out", help="Sweep directory (default runs/sbc-YYYYMMDD-HHMMSS); an unfinished SBC of the same settings there is resumed."),
    force: bool = typer.Option(False, "--force", help="Discard an existing --out and start afresh."),
    quiet: bool = typer.Option(False, "--quiet", help="No per-dataset progress lines."),
    workers: Optional[int] = typer.Option(None, "--workers", help=WORKERS_HELP),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Simulation-based calibration: draw datasets from the model's prior, fit each, and rank
    every truth among its posterior draws (Talts et al. 2018). Uniform ranks mean the whole
    chain (priors, likelihood, sampler) is calibrated; a hump, a U or a slope mean intervals
    too wide, too narrow, or biased. Also records each fit's 90% interval coverage.

    Every dataset is fitted on one compiled program; each finished dataset's ranks are written
    into OUT/variants/ as they arrive, and the same command resumes an interrupted run.
    Writes OUT/sbc.json and the rank histograms OUT/sbc.png.

    **Example** (100 datasets on two local worker processes):

        bayes-densing sbc --datasets 100 --out runs/sbc --workers 2
    """
    from datetime import datetime

    _import_stack()
    from bayes_densing.analyses import sbc as sbc_mod
    from bayes_densing.config import ConfigError
    from bayes_densing.distributed import runner
    from bayes_densing.inference.sample import SamplerError
    from bayes_densing.results import RunDirError

    try:
        if datasets < 2:
            raise ConfigError(f"--datasets must be at least 2, got {datasets}")
        if ranks < 2 or bins < 1 or ranks % bins:
            raise ConfigError(f"--ranks {ranks} must split into --bins {bins} equal bins")
        if chains * draws < ranks - 1:
            raise ConfigError(f"--chains × --draws ({chains * draws}) must be at least "
                              f"--ranks - 1 ({ranks - 1})")
        shift = None
        if offsets:
            try:
                mean, sd = (float(x) for x in offsets.split(","))
            except ValueError:
                raise ConfigError(f"--offsets {offsets!r}: write MEAN,SD, e.g. 0.7,0.3") from None
            shift = (mean, sd)
        cfg = _config(model, {"model.curves": curves, "sampler.chains": chains,
                              "sampler.draws": draws, "sampler.tune": tune,
                              "sampler.seed": seed}, ["model.data_term=off", *set_])
        out = out or Path("runs") / datetime.now().strftime("sbc-%Y%m%d-%H%M%S")
        with _sweep_place(workers, scheduler, quiet) as place:
            result = sbc_mod.run(datasets, n_targets=targets, n_benchmarks=benchmarks,
                                 config=cfg, seed=seed, n_ranks=ranks, bins=bins,
                                 offsets=shift, out=out, force=force, place=place,
                                 progress=None if quiet else typer.echo)
        sbc_mod.write(result, out)
    except (ConfigError, RunDirError, SamplerError) as exc:
        _fail(exc)
    except runner.SweepIncomplete as exc:
        _fail(exc, exc.exit_code)
    typer.echo(sbc_mod.summary_text(result))
    typer.echo(runner.compile_line(out))
    typer.echo(f"\nWritten to {out}/ (sbc.json, sbc.png; variants/)")


@app.command()
def plot(
    run_dir: Path = typer.Argument(..., help="A run directory (`sample`), or a `subsets` or `sensitivity` output directory."),
) -> None:
    """Draw (or redraw) the figures of a run: density over release date, the doubling-time
    posterior, the scaling curves, the changepoint slopes (changepoint runs), rank plots and
    the posterior predictive check, as PNG (150 dpi) and SVG in RUN_DIR/figures/. On a
    `subsets` directory it draws the forest plot, on a `sensitivity` directory the tornado.

    **Example:**

        bayes-densing plot runs/demo
    """
    from bayes_densing.results.rundir import RunDirError, kind, verify

    try:
        if (run_dir / "posterior.nc").exists() or kind(run_dir) == "run":
            verify(run_dir)     # a damaged run is refused before the modelling stack loads
        from bayes_densing.figures.plots import plot_directory

        written = plot_directory(run_dir, progress=lambda n: typer.echo(f"  drawing {n}", err=True))
    except RunDirError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(_io_error(exc, run_dir))
    for path in written:
        typer.echo(f"{path} (and .svg)")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by `bayes-densing sample`."),
) -> None:
    """Write RUN_DIR/report.md and a self-contained RUN_DIR/report.html (figures embedded; it
    opens offline): diagnostics first, the data, the doubling time and claim probabilities,
    the paper's point numbers, the densest and least dense models, the figures, and the exact
    command and config that ran. Draws the figures first if the run has none.

    **Example:**

        bayes-densing report runs/demo && xdg-open runs/demo/report.html
    """
    from bayes_densing.results.rundir import RunDirError, verify

    try:
        verify(run_dir)     # a damaged run is refused before the modelling stack loads
        from bayes_densing.figures.plots import figures_ok, plot_directory
        from bayes_densing.figures.report import write_report

        if not figures_ok(run_dir):
            typer.echo("  the run's figures are missing or damaged: drawing them", err=True)
            plot_directory(run_dir, progress=lambda n: typer.echo(f"  drawing {n}", err=True))
        md, html = write_report(run_dir)
    except RunDirError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(_io_error(exc, run_dir))
    typer.echo(f"{md}\n{html}")


@app.command()
def forecast(
    run_dir: Path = typer.Argument(..., help="A run directory written by `bayes-densing sample`."),
    at: list[str] = typer.Option([], "--at", help="A date (YYYY-MM-DD) to forecast the frontier and a new model's density at; repeat for several."),
    params: Optional[float] = typer.Option(None, "--params", help="A new model's size N in billions: with --match or --score, when it gets there; with --at, its effective size on the frontier."),
    match: Optional[str] = typer.Option(None, "--match", help="A model of the run (its name, with or without the organisation): when does a frontier model of --params match its effective size?"),
    score: Optional[float] = typer.Option(None, "--score", help="A score S in (0, 1) on --benchmark: when does a frontier model of --params reach it?"),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="The benchmark of --score."),
    seed: int = typer.Option(0, "--seed", help="Seed of the new-model (predictive) draws."),
    figure: bool = typer.Option(True, "--figure/--no-figure", help="Draw RUN_DIR/figures/forecast.png (and .svg)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Where will the trend be at a future date, and when will a model of N parameters match
    a given model or reach a given score? Reads a run; nothing is re-sampled.

    For each --at date: the frontier μ(t) = A·t + B (log density; the last segment of a
    changepoint trend) and a new model's posterior predictive density, medians with 90% HDIs.
    With --params N --match MODEL or --params N --score S --benchmark B: the date at which
    ln N + μ(t) reaches the model's (or the score's) log effective size, with P(reachable);
    extrapolations past the data or the reference sizes are flagged.

    **Example:**

        bayes-densing forecast runs/demo --at 2025-06-01 --at 2026-06-01 --params 7 --match google/gemma-2-9b

        bayes-densing forecast runs/demo --params 7 --score 0.8 --benchmark mmlu --json
    """
    import json

    from bayes_densing.results.rundir import RunDirError, verify

    if not at and match is None and score is None:
        _fail("give --at YYYY-MM-DD, or --params N with --match MODEL or --score S --benchmark B")
    if score is not None and not 0.0 < score < 1.0:
        _fail(f"--score must lie in (0, 1); got {score:g}")
    try:
        verify(run_dir)     # a damaged run is refused before the modelling stack loads
    except RunDirError as exc:
        _fail(exc)
    from bayes_densing.analyses.forecast import ForecastError, forecast as run_forecast, write_figure
    from bayes_densing.results import load_run

    try:
        run = load_run(run_dir)
        result = run_forecast(run, at=at, params=params, match=match, score=score,
                              benchmark=benchmark, seed=seed)
        written = write_figure(run, result) if figure else None
    except (RunDirError, ForecastError) as exc:
        _fail(exc)
    except OSError as exc:
        _fail(_io_error(exc, run_dir / "figures"))
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.text())
    if written is not None:
        typer.echo(f"\nwrote {written} (and .svg)", err=as_json)


@app.command()
def benchmarks(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Bundled dataset name (see `bayes-densing datasets`); default open-base-llms."),
    data: Optional[Path] = typer.Option(None, "--data", help="Scores CSV (long or wide) instead of a bundled dataset."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Reference family (a `family` value); default: the dataset's, or the file's `role` column."),
    since: Optional[str] = typer.Option(None, "--since", help="Targets released on/after this date (YYYY-MM-DD); default: the dataset's."),
    chains: Optional[int] = typer.Option(None, "--chains", help=CHAINS_HELP),
    draws: Optional[int] = typer.Option(None, "--draws", help=DRAWS_HELP),
    tune: Optional[int] = typer.Option(None, "--tune", help=TUNE_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help=SEED_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Which benchmarks enter the default set? The rule of docs/analyses.md on every benchmark
    with reference scores: (1) the reference family identifies its curve, (2) the targets'
    scores rise with size, (3) the references are monotone up to noise. Fits the curves to the
    reference models' scores alone (the cut's curve module, one fit for all benchmarks) and
    prints one row per benchmark with its statistics, each criterion and the verdict.

    **Example:**

        bayes-densing benchmarks --dataset open-base-llms

    Your own file, its reference family named:

        bayes-densing benchmarks --data scores.csv --reference Qwen1.5 --json
    """
    import json

    if dataset is not None and data is not None:
        _fail("give --dataset or --data, not both")
    _import_stack()
    from bayes_densing.analyses.benchmark_rule import run as run_rule, text, to_dict
    from bayes_densing.config import ConfigError
    from bayes_densing.data import DataError
    from bayes_densing.inference.sample import SamplerError
    from bayes_densing.model.build import ModelError

    try:
        cfg = _config("default", {
            "data.dataset": dataset, "data.reference": reference, "data.since": since,
            "sampler.chains": chains, "sampler.draws": draws, "sampler.tune": tune,
            "sampler.seed": seed}, [])
        table, scores = run_rule(cfg, data, progress=lambda line: typer.echo(line, err=True))
    except (ConfigError, DataError, ModelError, SamplerError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(to_dict(table, scores), indent=2, allow_nan=False))
    else:
        typer.echo(text(table, title=f"Benchmark rule: {scores.describe()}"))


@app.command()
def datasets() -> None:
    """List the bundled datasets: size, date range, benchmarks, default reference, source."""
    from bayes_densing.data import DATASETS, dataset_path, read_scores

    for ds in DATASETS.values():
        df, _ = read_scores(dataset_path(ds.name))
        typer.echo(f"{ds.name}: {ds.description}")
        typer.echo(f"  {df.model.nunique()} models, {len(df)} scores, released "
                   f"{df.release_date.min():%Y-%m-%d} … {df.release_date.max():%Y-%m-%d}")
        typer.echo(f"  benchmarks: {', '.join(sorted(df.benchmark.unique()))}")
        typer.echo(f"  defaults: reference {ds.reference}; benchmarks {', '.join(ds.benchmarks)}; "
                   f"targets since {ds.since}")
        typer.echo(f"  source: {ds.source}")


# notices printed on every run that say nothing to our users (the same list as pyproject's
# filterwarnings); our own warnings, and everything else, still show
THIRD_PARTY_NOTICES = (("PyTensor could not link to a BLAS", UserWarning),)   # ArviZ 1 has none


def _quiet_third_party_notices() -> None:
    import warnings

    for message, category in THIRD_PARTY_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category)


def main() -> None:
    global _ARGV
    import gc
    import sys

    _ARGV = sys.argv[1:]
    _quiet_third_party_notices()
    from bayes_densing.results import interrupts

    interrupts.install()   # Ctrl-C / kill stop at once, even mid-sampling, leaving no partial output
    try:
        app()
    finally:
        # the process ends: leave its objects to the OS. Python's collections at exit walk
        # every object still alive (~500,000 after a fit: PyMC's, PyTensor's, JAX's), which
        # took 1.0 of the default fit's 31 s on 2 cores (benchmarks/README.md, "The default fit")
        gc.freeze()


if __name__ == "__main__":
    main()
