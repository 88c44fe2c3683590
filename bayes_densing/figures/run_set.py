"""A run's set of figures: which figures a run gets, in the report's order, with their titles
and captions (:data:`RUN_FIGURES`, :func:`run_figures` writes them with ``index.json``), their
record in ``derived.json``, and :func:`plot_directory`, which redraws the figures of any
directory bayes-densing wrote (a run, a subsets or a sensitivity sweep)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bayes_densing import results
from bayes_densing.figures.changepoint import changepoint_figure
from bayes_densing.figures.density import density_figure
from bayes_densing.figures.diagnostics import ppc_figure, trace_figure
from bayes_densing.figures.doubling import doubling_figure
from bayes_densing.figures.scaling import scaling_figure
from bayes_densing.figures.sweeps import forest, tornado
from bayes_densing.results import rundir

# (name, title, maker): in the order the report shows them
RUN_FIGURES = (
    ("density", "Density over release date", density_figure),
    ("doubling", "Doubling-time posterior", doubling_figure),
    ("scaling", "Scaling curves per benchmark", scaling_figure),
    ("changepoint", "Before and after the change date", changepoint_figure),
    ("trace", "Chains of the trend parameters", trace_figure),
    ("ppc", "Posterior predictive check", ppc_figure),
)


def _captions(run: results.Run) -> dict[str, str]:
    """Every run figure's caption, by name."""
    config, models = run.config, run.models
    n_target = int((models.role == "target").sum())
    refs = ", ".join(dict.fromkeys(models.family[models.role == "reference"].astype(str)))
    d = results.doubling_summary(results.slope_draws(run.idata, config))
    lo, hi = d["hdi_months"]
    return {
        "density": f"Each of the {n_target} target models at its posterior median density with "
                   f"its 90% HDI; the {config.model.trend} trend's median and 90% band; the "
                   f"reference models ({refs}) sit at ρ = 1 by definition. Doubling time "
                   f"{d['median_months']:.2f} months (90% HDI {lo:.2f}–{hi:.2f}).",
        "doubling": "Posterior of T = ln 2 / A with its 90% HDI shaded; dashed lines at the "
                    "claimed doubling times with the posterior probability of T at or below "
                    "each; the dotted line is the paper's point method on the same data.",
        "scaling": f"Per benchmark, the reference models' scores at their size and the fitted "
                   f"performance map at D0 = {config.model.d0:g}T tokens (median, 90% band); "
                   "each target model's score is drawn at its median effective size, so a target "
                   "far from the curve is one the curves cannot place well.",
        "changepoint": f"Densities with the broken trend line (change at "
                       f"{config.model.changepoint}) and the posteriors of the two slopes.",
        "trace": "Rank plots: with well-mixed chains every chain's ranks are spread evenly "
                 "(bars near the dashed line); R-hat and ESS per parameter in each title.",
        "ppc": "Observed scores (black) against 60 replicated datasets from the posterior "
               "(blue); each title gives the share of observed scores inside their own 90% "
               "predictive interval (about 90% is what a calibrated model gives).",
    }


def run_figures(run: results.Run, directory: str | Path, progress=None) -> list[dict]:
    """Write every figure of a run into ``directory`` (PNG + SVG) with a manifest
    ``index.json``: a list, in display order, of ``{name, title, caption, png, svg}`` (paths
    relative to the run directory: ``figures/NAME.png``, wherever ``directory`` is while it is
    being written) or ``{name, title, skipped}`` for a figure that does not
    apply to this run (the changepoint figure of a run without a changepoint). ``progress``,
    if given, is called with each figure's name before it is drawn."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    index, captions = [], _captions(run)
    for name, title, maker in RUN_FIGURES:
        if progress is not None:
            progress(name)
        if name == "changepoint" and run.config.model.trend != "changepoint":
            index.append({"name": name, "title": title,
                          "skipped": "this run has no changepoint; run `bayes-densing sample "
                                     "--model changepoint` for the before/after slopes"})
            continue
        maker(run, directory / name)
        index.append({"name": name, "title": title, "caption": captions[name],
                      "png": f"figures/{name}.png", "svg": f"figures/{name}.svg"})
    (directory / "index.json").write_text(json.dumps(index, indent=2))
    return index


def figure_files(run_dir: str | Path) -> list[str]:
    """The files of a run's ``figures/``, relative to the run directory."""
    root = Path(run_dir)
    return sorted(p.relative_to(root).as_posix() for p in (root / "figures").glob("*")
                  if p.is_file())


def record_figures(run_dir: str | Path) -> None:
    """List the run's figures in its ``derived.json`` (``rundir.record_derived``)."""
    rundir.record_derived(Path(run_dir), figure_files(run_dir))


def figures_ok(run_dir: str | Path) -> bool:
    """Whether the run's figures are all there, as ``derived.json`` recorded them."""
    files = [f for f in rundir.derived_files(run_dir) if f.startswith("figures/")]
    return "figures/index.json" in files and rundir.derived_ok(Path(run_dir), files)


def draw_sweep(directory: Path) -> list[Path] | None:
    """The forest of a subsets directory or the tornado of a sensitivity directory, drawn from
    its table and recorded as derived; None when ``directory`` is neither."""
    directory = Path(directory)
    if (directory / "subsets.csv").exists():
        rundir.verify(directory, "subsets")
        forest(pd.read_csv(directory / "subsets.csv"), directory / "forest")
        rundir.record_derived(directory, ["forest.png", "forest.svg"])
        return [directory / "forest.png"]
    if (directory / "sensitivity.csv").exists():
        rundir.verify(directory, "sensitivity")
        table = pd.read_csv(directory / "sensitivity.csv")
        base = table[table.variant == "base"]
        base_median = float(base.median_months.iloc[0]) if len(base) else math.nan
        tornado(table, base_median, directory / "tornado")
        rundir.record_derived(directory, ["tornado.png", "tornado.svg"])
        return [directory / "tornado.png"]
    return None


def plot_directory(directory: str | Path, progress=None) -> list[Path]:
    """Redraw the figures of anything bayes-densing wrote: a run directory (every run figure,
    into ``figures/``, replaced atomically), a ``subsets`` directory (forest.png) or a
    ``sensitivity`` directory (tornado.png). Returns the PNG paths written. Raises
    ``results.RunDirError`` for a directory that is none of these."""
    directory = Path(directory)
    if (directory / "posterior.nc").exists() or rundir.kind(directory) == "run":
        run = results.load_run(directory)
        with results.atomic_dir(directory / "figures", force=True) as tmp:
            index = run_figures(run, tmp, progress)
        record_figures(directory)
        return [directory / e["png"] for e in index if "png" in e]
    written = draw_sweep(directory)
    if written is not None:
        return written
    if not directory.is_dir():
        raise results.RunDirError(f"{directory}: no such directory")
    raise results.RunDirError(f"{directory}: not a run, subsets or sensitivity directory "
                              "(no posterior.nc, subsets.csv or sensitivity.csv)")
