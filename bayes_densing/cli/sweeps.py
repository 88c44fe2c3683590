"""The commands that fit many variants of one question, each variant written as it finishes so
that the same command resumes an interrupted sweep, in this process or on a Dask cluster:
``sensitivity``, ``influence`` (the refits), ``subsets`` and ``sbc``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_densing.cli.common import (build_config, dated_out, fail, fail_io, fit_errors,
                                      import_stack, option_overrides, sweep_place)
from bayes_densing.cli.options import (D0, Benchmarks, Chains, Curves, Data, Dataset, Device,
                                       Draws, Likelihood, Params, Preset, QuietLines, Reference,
                                       Restart, RunDir, Sampler, SbcOut, Scheduler, Seed,
                                       SensitivityOut, SetItems, Since, SubsetsOut, Trend, Tune,
                                       Until, Workers)

REFIT_DIR = "influence-refits"   # the refits' sweep directory, inside the run (or --out)


def sensitivity(
    ctx: typer.Context,
    vary: Annotated[list[str], typer.Option("--vary", help="KEY=v1,v2,… to vary one at a time around the base; repeat for several keys. KEY: reference, d0, trend, likelihood, since, until, params, drop_family (leave_out), benchmarks (sets joined by '+': mmlu+gsm8k,mmlu+bbh), seed, curves (cut: the curves from the reference models alone), or any dotted config key (priors.slope_sd=0.15,0.6).")] = [],
    data: Data = None, dataset: Dataset = None, model: Preset = "default",
    reference: Reference = None, benchmarks: Benchmarks = None, since: Since = None,
    until: Until = None, trend: Trend = None, likelihood: Likelihood = None,
    params: Params = None, d0: D0 = None,
    chains: Chains = None, draws: Draws = None, tune: Tune = None, seed: Seed = None,
    sampler: Sampler = None, device: Device = None, set_: SetItems = [],
    out: SensitivityOut = None, force: Restart = False,
    prior_scaling: Annotated[bool, typer.Option("--prior-scaling/--no-prior-scaling", help="Also check the base run's prior sensitivity by power-scaling.")] = True,
    quiet: QuietLines = False, workers: Workers = None, scheduler: Scheduler = None,
) -> None:
    """How far does the doubling time move with each modelling choice? Fits the base model and
    every `--vary` value one at a time, then writes a table (sensitivity.csv/.json), a tornado
    plot (tornado.png/.svg) and every variant's run directory under `--out`/variants/, each as
    it finishes (the same command resumes an interrupted sweep; --workers N or --scheduler
    ADDRESS fit the variants on a Dask cluster, docs/sweeps.md). A variant that
    cannot be fitted (e.g. too few models in a date window) is recorded with its error. With
    `--prior-scaling` (default) the base run's prior is power-scaled (Kallioinen et al. 2023)
    and each key quantity is called prior-driven or likelihood-dominated.

    The data, model and sampler options (and `--set`) choose the base.

    **Example:**

        bayes-densing sensitivity --vary reference=Qwen1.5,Llama-2,Pythia --vary d0=0.3,1,3 --vary trend=frontier,envelope,mean --out runs/sens

    Each variant is a full fit (the mean and envelope trends share one, as they read one
    posterior; variants of other priors, D0 or seed share one compiled program): use
    `--chains/--draws/--tune` to keep a wide sweep affordable.
    """
    import_stack()
    from bayes_densing.analyses.sensitivity import sensitivity as run_sensitivity
    from bayes_densing.figures.run_set import draw_sweep
    from bayes_densing.distributed import runner

    if not vary:
        fail("give at least one --vary KEY=v1,v2 (e.g. --vary trend=frontier,envelope)")
    try:
        cfg = build_config(model, option_overrides(ctx), set_)
        out = dated_out(out, "sensitivity")
        with sweep_place(workers, scheduler, quiet) as place:
            result = run_sensitivity(cfg, vary, data, out=out, force=force,
                                     prior_scaling=prior_scaling, quiet=quiet,
                                     echo=lambda line: typer.echo(line, err=True), place=place)
        if result.out is not None:
            result.figures = draw_sweep(result.out)
    except (*fit_errors(), runner.SweepIncomplete) as exc:
        fail(exc)
    typer.echo(result.text())
    typer.echo(runner.compile_line(out))


def influence(
    run_dir: RunDir,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="Refit without the flagged models (a cut run: then those that move the doubling time most).")] = True,
    max_refits: Annotated[int, typer.Option("--max-refits", help="At most this many refits, in the table's order.")] = 5,
    top: Annotated[int, typer.Option("--top", help="How many models to list (by Pareto k; a cut run: flagged first, then by the move of the doubling time).")] = 10,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for influence.csv and influence.json (default: the run directory).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="The run's scores CSV, for refits of a run with observed losses (otherwise the run directory suffices).")] = None,
    quiet: QuietLines = False, workers: Workers = None, scheduler: Scheduler = None,
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
        fail("--max-refits must be 0 or more")
    try:
        verify(run_dir)     # a damaged run is refused before the modelling stack loads
    except RunDirError as exc:
        fail(exc)
    import_stack()
    from bayes_densing.analyses.influence import influence as run_influence
    from bayes_densing.distributed import runner

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    try:
        with sweep_place(workers, scheduler, quiet) as place:
            result = run_influence(run_dir, refit=refit, max_refits=max_refits, data_path=data,
                                   progress=None if quiet else progress, place=place,
                                   refit_dir=(out or run_dir) / REFIT_DIR)
    except (*fit_errors(), runner.SweepIncomplete) as exc:
        fail(exc)
    try:
        written = result.write(out or run_dir)
    except RunDirError as exc:
        fail(exc)
    except OSError as exc:
        fail_io(exc, out or run_dir)
    typer.echo(result.text(top=top))
    typer.echo(f"\nwrote {', '.join(str(p) for p in written)}")


def subsets(
    ctx: typer.Context,
    benchmarks: Annotated[str, typer.Option("--benchmarks", help="Comma-separated benchmarks; every non-empty subset is fitted.")],
    min_size: Annotated[int, typer.Option("--min-size", help="Smallest subset size to fit.")] = 1,
    data: Data = None, dataset: Dataset = None, model: Preset = "default",
    reference: Reference = None, since: Since = None, until: Until = None, trend: Trend = None,
    curves: Curves = None,
    chains: Chains = None, draws: Draws = None, tune: Tune = None, seed: Seed = None,
    device: Device = None, set_: SetItems = [],
    out: SubsetsOut = None, force: Restart = False, quiet: QuietLines = False,
    warm_start: Annotated[bool, typer.Option("--warm-start/--no-warm-start", help="Start each subset's warm-up from the all-benchmark fit's metric, step size and positions (default), or from scratch as a single fit does.")] = True,
    warm_tune: Annotated[Optional[int], typer.Option("--warm-tune", help="Warm-up iterations of each warm-started subset, at most --tune (default 300); the all-benchmark fit and --no-warm-start use --tune.")] = None,
    workers: Workers = None, scheduler: Scheduler = None,
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
    import_stack()
    from bayes_densing.analyses.subsets import WARM_TUNE, run_subsets, text, write
    from bayes_densing.figures.run_set import draw_sweep
    from bayes_densing.distributed import runner

    names = [b.strip() for b in benchmarks.split(",") if b.strip()]
    try:
        # --benchmarks names the benchmarks to subset, not the config's selection
        cfg = build_config(model, option_overrides(ctx, skip=("benchmarks",)), set_)
        out = dated_out(out, "subsets")
        with sweep_place(workers, scheduler, quiet) as place:
            table = run_subsets(cfg, names, data, min_size=min_size,
                                progress=None if quiet else typer.echo, warm_start=warm_start,
                                warm_tune=WARM_TUNE if warm_tune is None else warm_tune,
                                out=out, force=force, place=place)
        write(table, out, cfg)
        draw_sweep(out)
    except (*fit_errors(), runner.SweepIncomplete) as exc:
        fail(exc)
    typer.echo(text(table))
    typer.echo(runner.compile_line(out))
    typer.echo(f"\nWritten to {out}/ (subsets.csv, subsets.json, forest.png; variants/)")


def _sbc_offsets(offsets: Optional[str]) -> tuple[float, float] | None:
    """``--offsets MEAN,SD`` as numbers, or None."""
    from bayes_densing.config import ConfigError

    if not offsets:
        return None
    try:
        mean, sd = (float(x) for x in offsets.split(","))
    except ValueError:
        raise ConfigError(f"--offsets {offsets!r}: write MEAN,SD, e.g. 0.7,0.3") from None
    return mean, sd


def sbc(
    ctx: typer.Context,
    datasets: Annotated[int, typer.Option("--datasets", help="Simulated datasets, each fitted once.")] = 100,
    targets: Annotated[int, typer.Option("--targets", help="Target models per dataset.")] = 20,
    benchmarks: Annotated[int, typer.Option("--benchmarks", help="Benchmarks per dataset.")] = 3,
    model: Preset = "default", curves: Curves = None,
    # a short fit per dataset, with sbc's own defaults
    chains: Annotated[int, typer.Option("--chains", help="Chains per fit.")] = 2,
    draws: Annotated[int, typer.Option("--draws", help="Draws per chain (at least --ranks - 1 in all).")] = 500,
    tune: Annotated[int, typer.Option("--tune", help="Warm-up iterations per chain.")] = 500,
    ranks: Annotated[int, typer.Option("--ranks", help="Rank values 0..RANKS-1 (RANKS-1 thinned draws).")] = 100,
    bins: Annotated[int, typer.Option("--bins", help="Histogram bins of the chi-square test (divides --ranks).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the design, the prior draws and every fit.")] = 0,
    offsets: Annotated[Optional[str], typer.Option("--offsets", help="MEAN,SD: targets off the reference curves by N(MEAN, SD) in ln size per benchmark (docs/model.md).")] = None,
    set_: SetItems = [],
    out: SbcOut = None, force: Restart = False, quiet: QuietLines = False,
    workers: Workers = None, scheduler: Scheduler = None,
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
    import_stack()
    from bayes_densing.analyses import sbc as sbc_mod
    from bayes_densing.figures.sbc import write_ranks
    from bayes_densing.config import ConfigError
    from bayes_densing.distributed import runner

    try:
        if datasets < 2:
            raise ConfigError(f"--datasets must be at least 2, got {datasets}")
        if ranks < 2 or bins < 1 or ranks % bins:
            raise ConfigError(f"--ranks {ranks} must split into --bins {bins} equal bins")
        if chains * draws < ranks - 1:
            raise ConfigError(f"--chains × --draws ({chains * draws}) must be at least "
                              f"--ranks - 1 ({ranks - 1})")
        shift = _sbc_offsets(offsets)
        # the datasets are drawn from the prior: --benchmarks counts them, it selects none
        cfg = build_config(model, option_overrides(ctx, skip=("benchmarks",)),
                           ["model.data_term=off", *set_])
        out = dated_out(out, "sbc")
        with sweep_place(workers, scheduler, quiet) as place:
            result = sbc_mod.run(datasets, n_targets=targets, n_benchmarks=benchmarks,
                                 config=cfg, seed=seed, n_ranks=ranks, bins=bins,
                                 offsets=shift, out=out, force=force, place=place,
                                 progress=None if quiet else typer.echo)
        sbc_mod.write(result, out)
        write_ranks(result, out)
    except (*fit_errors(), runner.SweepIncomplete) as exc:
        fail(exc)
    typer.echo(sbc_mod.summary_text(result))
    typer.echo(runner.compile_line(out))
    typer.echo(f"\nWritten to {out}/ (sbc.json, sbc.png; variants/)")
