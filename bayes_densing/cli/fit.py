"""The commands that fit once: ``sample`` (the Bayesian model, a run directory), ``simulate``
(scores with a known doubling time, to fit) and ``classic`` (the paper's point pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_densing.cli.common import (EXIT_DIAGNOSTICS, build_config, command_line, dated_out,
                                      fail, fail_io, fit_errors, import_stack, option_overrides)
from bayes_densing.cli.options import (D0, Benchmarks, Chains, Curves, Data, Dataset, Device,
                                       Draws, Likelihood, Params, Preset, Reference, Sampler,
                                       Seed, SetItems, Since, Trend, Tune, Until)


def sample(
    ctx: typer.Context,
    data: Data = None, dataset: Dataset = None, model: Preset = "default",
    reference: Reference = None, benchmarks: Benchmarks = None, since: Since = None,
    until: Until = None, trend: Trend = None, likelihood: Likelihood = None,
    curves: Curves = None, params: Params = None, d0: D0 = None,
    chains: Chains = None, draws: Draws = None, tune: Tune = None, seed: Seed = None,
    sampler: Sampler = None, device: Device = None, set_: SetItems = [],
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory to write (default runs/sample-YYYYMMDD-HHMMSS).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    allow_warnings: Annotated[bool, typer.Option("--allow-warnings", help="Exit 0 even when diagnostics fail.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Draw the figures and write report.md/report.html into the run directory.")] = True,
) -> None:
    """Fit the model and print the doubling time of capability density.

    **Example** (bundled data, default model):

        bayes-densing sample --out runs/demo

    Your own scores, with the bundled Qwen1.5 models as reference if your file has none:

        bayes-densing sample --data scores.csv --benchmarks mmlu,gsm8k --out runs/mine
    """
    import_stack()
    from bayes_densing.results import OutputConflict
    from bayes_densing.run import fit

    try:
        cfg = build_config(model, option_overrides(ctx), set_)
        default_out = out is None      # a default name never conflicts: it moves to NAME-2
        out = dated_out(out, "sample")
        result = fit(cfg, data, out=out, force=force, progressbar=not quiet,
                     figures=figures, command=command_line(ctx), unique_out=default_out)
    except fit_errors() as exc:
        if isinstance(exc, OutputConflict):   # the sampling is not lost: show what it found
            typer.echo((exc.kept / "summary.txt").read_text(encoding="utf-8"))
        fail(exc)
    typer.echo(result.summary)
    typer.echo(f"\nRun written to {result.out}/"
               + (f" (figures in figures/, report: {result.out}/report.html)" if figures else ""))
    if result.diagnostics["problems"] and not allow_warnings:
        typer.echo("error: the sampler's diagnostics failed (see above); the results may be "
                   "unreliable. Re-run with more --tune/--draws, or pass --allow-warnings.", err=True)
        raise typer.Exit(EXIT_DIAGNOSTICS)


def simulate(
    out: Annotated[Path, typer.Option("--out", help="CSV to write; the truth goes beside it (synth.csv → synth.truth.json)")],
    doubling_months: Annotated[float, typer.Option("--doubling-months")] = 3.3,
    models: Annotated[int, typer.Option("--models", help="Number of target models.")] = 60,
    benchmarks: Annotated[int, typer.Option("--benchmarks", help="Number of benchmarks (1–12).")] = 5,
    reference: Annotated[int, typer.Option("--reference-models", help="Reference sizes (2–8).")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Simulate scores from the generative model with a known doubling time.

    **Example:**

        bayes-densing simulate --doubling-months 3.3 --models 60 --benchmarks 5 --seed 1 --out synth.csv
    """
    from bayes_densing.model.simulate import simulate as run, write

    if doubling_months <= 0:
        fail("--doubling-months must be positive")
    try:
        df, truth = run(models, benchmarks, doubling_months, seed=seed, n_reference=reference)
    except ValueError as exc:
        fail(exc)
    try:
        csv, truth_path = write(df, truth, out)
    except OSError as exc:
        fail_io(exc, out)
    typer.echo(f"wrote {csv} ({len(df)} scores: {models} targets + {reference} reference models × "
               f"{benchmarks} benchmarks) and {truth_path}")
    typer.echo(f"fit it with: bayes-densing sample --data {csv} --out runs/synth")


def classic(
    ctx: typer.Context,
    data: Data = None, dataset: Dataset = None,
    # classic reads only part of the config: the help says which
    model: Annotated[str, typer.Option("--model", "--preset", help="Preset name (default, paper, robust, changepoint) or a TOML file: its data selection, D0 and date origin are used.")] = "default",
    reference: Reference = None, benchmarks: Benchmarks = None, since: Since = None,
    until: Until = None, params: Params = None, d0: D0 = None,
    set_: Annotated[list[str], typer.Option("--set", help="Any config key, e.g. --set model.date_origin=2023-02-24")] = [],
    top: Annotated[int, typer.Option("--top", help="How many of the densest models to list.")] = 10,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the whole result as JSON to this file.")] = None,
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
        cfg = build_config(model, option_overrides(ctx), set_)
        result = fit(load(cfg, data), cfg)
    except (ConfigError, DataError, ClassicError) as exc:
        fail(exc)
    typer.echo(result.summary_text(top=top))
    if out is not None:
        from bayes_densing.results.rundir import write_atomic

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out, json.dumps(result.to_dict(), indent=2, allow_nan=False))
        except OSError as exc:
            fail_io(exc, out)
        typer.echo(f"\nwrote {out}")
