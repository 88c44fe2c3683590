"""The commands that read a run and re-sample nothing: ``claim``, ``plot``, ``report`` and
``forecast``. Each checks the run directory before the modelling stack loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_densing.cli.common import fail, fail_io
from bayes_densing.cli.options import AsJson, RunDir


def _drawing(name: str) -> None:
    typer.echo(f"  drawing {name}", err=True)


def claim(
    run_dir: RunDir,
    months: Annotated[list[float], typer.Option("--months", help="A claimed doubling time in months; repeat for several.")] = [3.3, 3.5],
    ratio: Annotated[float, typer.Option("--ratio", help="Changepoint runs: the claimed slope ratio after/before (paper: 1.5).")] = 1.5,
    as_json: AsJson = False,
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
        fail("--months and --ratio must be positive")
    try:
        verify(run_dir)     # a damaged run is refused before the modelling stack loads
        from bayes_densing.analyses.claim import claim as run_claim

        result = run_claim(run_dir, months=months, ratio=ratio)
    except RunDirError as exc:
        fail(exc)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.text())


def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (`sample`), or a `subsets` or `sensitivity` output directory.")],
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
        from bayes_densing.figures.run_set import plot_directory

        written = plot_directory(run_dir, progress=_drawing)
    except RunDirError as exc:
        fail(exc)
    except OSError as exc:
        fail_io(exc, run_dir)
    for path in written:
        typer.echo(f"{path} (and .svg)")


def report(run_dir: RunDir) -> None:
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
        from bayes_densing.figures.run_set import figures_ok, plot_directory
        from bayes_densing.figures.report import write_report

        if not figures_ok(run_dir):
            typer.echo("  the run's figures are missing or damaged: drawing them", err=True)
            plot_directory(run_dir, progress=_drawing)
        md, html = write_report(run_dir)
    except RunDirError as exc:
        fail(exc)
    except OSError as exc:
        fail_io(exc, run_dir)
    typer.echo(f"{md}\n{html}")


def forecast(
    run_dir: RunDir,
    at: Annotated[list[str], typer.Option("--at", help="A date (YYYY-MM-DD) to forecast the frontier and a new model's density at; repeat for several.")] = [],
    params: Annotated[Optional[float], typer.Option("--params", help="A new model's size N in billions: with --match or --score, when it gets there; with --at, its effective size on the frontier.")] = None,
    match: Annotated[Optional[str], typer.Option("--match", help="A model of the run (its name, with or without the organisation): when does a frontier model of --params match its effective size?")] = None,
    score: Annotated[Optional[float], typer.Option("--score", help="A score S in (0, 1) on --benchmark: when does a frontier model of --params reach it?")] = None,
    benchmark: Annotated[Optional[str], typer.Option("--benchmark", help="The benchmark of --score.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the new-model (predictive) draws.")] = 0,
    figure: Annotated[bool, typer.Option("--figure/--no-figure", help="Draw RUN_DIR/figures/forecast.png (and .svg).")] = True,
    as_json: AsJson = False,
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
        fail("give --at YYYY-MM-DD, or --params N with --match MODEL or --score S --benchmark B")
    if score is not None and not 0.0 < score < 1.0:
        fail(f"--score must lie in (0, 1); got {score:g}")
    try:
        verify(run_dir)     # a damaged run is refused before the modelling stack loads
    except RunDirError as exc:
        fail(exc)
    from bayes_densing.analyses.forecast import ForecastError, forecast as run_forecast
    from bayes_densing.figures.forecast import write_figure
    from bayes_densing.results import load_run

    try:
        run = load_run(run_dir)
        result = run_forecast(run, at=at, params=params, match=match, score=score,
                              benchmark=benchmark, seed=seed)
        written = write_figure(run, result) if figure else None
    except (RunDirError, ForecastError) as exc:
        fail(exc)
    except OSError as exc:
        fail_io(exc, run_dir / "figures")
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.text())
    if written is not None:
        typer.echo(f"\nwrote {written} (and .svg)", err=as_json)
