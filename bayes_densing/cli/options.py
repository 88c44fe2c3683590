"""The options that several commands share, each declared once as a typer ``Annotated`` alias:
a command writes ``chains: Chains = None``, the default after ``=``. An option of one command
only is declared in that command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_densing.config import DataConfig, SamplerConfig

# the sampler's length and seed, alike in every command that fits
_S = SamplerConfig()

# --- the data ------------------------------------------------------------------------------------
Data = Annotated[Optional[Path], typer.Option(
    "--data", help="Scores CSV (long or wide); default: the bundled dataset.")]
Dataset = Annotated[Optional[str], typer.Option(
    "--dataset", help=f"Bundled dataset name (see `bayes-densing datasets`); default "
                      f"{DataConfig().dataset}.")]
Reference = Annotated[Optional[str], typer.Option(
    "--reference", help="Reference family (a `family` value); default: the dataset's, or the "
                        "file's `role` column.")]
Benchmarks = Annotated[Optional[str], typer.Option(
    "--benchmarks", help="Comma-separated benchmarks to use.")]
Since = Annotated[Optional[str], typer.Option(
    "--since", help="Targets released on/after this date (YYYY-MM-DD); default: the dataset's.")]
Until = Annotated[Optional[str], typer.Option(
    "--until", help="Targets released on/before this date.")]
Params = Annotated[Optional[str], typer.Option(
    "--params", help="total | active: the size density divides by.")]

# --- the model -----------------------------------------------------------------------------------
Preset = Annotated[str, typer.Option(
    "--model", "--preset", help="Preset name (default, paper, robust, changepoint) or a TOML file.")]
Trend = Annotated[Optional[str], typer.Option(
    "--trend", help="frontier | mean | envelope | changepoint")]
Likelihood = Annotated[Optional[str], typer.Option("--likelihood", help="betabinomial | robust")]
Curves = Annotated[Optional[str], typer.Option(
    "--curves", help="cut: the curves from the reference models alone (effective sizes relative "
                     "to them) | joint: fitted to every model's scores, faster (docs/model.md).")]
D0 = Annotated[Optional[float], typer.Option("--d0", help="D0 in trillions of tokens (paper: 1).")]
SetItems = Annotated[list[str], typer.Option(
    "--set", help="Any config key, e.g. --set priors.slope_sd=0.5")]

# --- the sampler ---------------------------------------------------------------------------------
Chains = Annotated[Optional[int], typer.Option(
    "--chains", help=f"Markov chains (default {_S.chains}; on the CPU each gets its own XLA host "
                     "device).")]
Draws = Annotated[Optional[int], typer.Option(
    "--draws", help=f"Draws kept per chain (default {_S.draws}).")]
Tune = Annotated[Optional[int], typer.Option(
    "--tune", help=f"Warm-up iterations per chain, discarded (default {_S.tune}).")]
Seed = Annotated[Optional[int], typer.Option(
    "--seed", help=f"Random seed of the sampler (default {_S.seed}).")]
Sampler = Annotated[Optional[str], typer.Option(
    "--sampler", help="numpyro | pymc | blackjax | nutpie")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu | gpu")]

# --- sweeps: resumable, in this process or on a Dask cluster -------------------------------------
Workers = Annotated[Optional[int], typer.Option(
    "--workers", help="Fit on a local Dask cluster of N worker processes, started and stopped by "
                      "the command (each with the cores shared out as XLA host devices); default: "
                      "in this process.")]
Scheduler = Annotated[Optional[str], typer.Option(
    "--scheduler", help="Fit on a running Dask cluster: its scheduler's address, e.g. "
                        "tcp://10.0.0.5:8786 (docs/sweeps.md: dask-jobqueue on SLURM).")]
Restart = Annotated[bool, typer.Option(
    "--force", help="Discard an existing --out and start afresh.")]
QuietLines = Annotated[bool, typer.Option("--quiet", help="No progress lines.")]


def _sweep_out(command: str, what: str = "sweep"):
    return Annotated[Optional[Path], typer.Option(
        "--out", help=f"Sweep directory (default runs/{command}-YYYYMMDD-HHMMSS); an unfinished "
                      f"{what} of the same settings there is resumed.")]


SensitivityOut = _sweep_out("sensitivity")
SubsetsOut = _sweep_out("subsets")
SbcOut = _sweep_out("sbc", "SBC")

# --- reading a run -------------------------------------------------------------------------------
RunDir = Annotated[Path, typer.Argument(help="A run directory written by `bayes-densing sample`.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
