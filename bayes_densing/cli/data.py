"""The commands about the input data: ``benchmarks`` (which benchmarks the rule keeps) and
``datasets`` (the bundled datasets)."""

from __future__ import annotations

import typer

from bayes_densing.cli.common import build_config, fail, fit_errors, import_stack, option_overrides
from bayes_densing.cli.options import (AsJson, Chains, Data, Dataset, Draws, Reference, Seed,
                                       Since, Tune)


def benchmarks(
    ctx: typer.Context,
    dataset: Dataset = None, data: Data = None, reference: Reference = None, since: Since = None,
    chains: Chains = None, draws: Draws = None, tune: Tune = None, seed: Seed = None,
    as_json: AsJson = False,
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
        fail("give --dataset or --data, not both")
    import_stack()
    from bayes_densing.analyses.benchmark_rule import run as run_rule, text, to_dict

    try:
        cfg = build_config("default", option_overrides(ctx), [])
        table, scores = run_rule(cfg, data, progress=lambda line: typer.echo(line, err=True))
    except fit_errors() as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(to_dict(table, scores), indent=2, allow_nan=False))
    else:
        typer.echo(text(table, title=f"Benchmark rule: {scores.describe()}"))


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
