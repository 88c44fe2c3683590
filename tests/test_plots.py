"""Every figure of a run is drawn from a real (tiny) fit and has the elements a reader needs.

The run directories come from the shared fixtures: ``lib_run`` (frontier trend, drawn by
``run.fit(figures=True)``), ``changepoint_fit`` and ``loss_robust_fit`` (observed losses).
"""

import json
import struct

import numpy as np
import pandas as pd
import pytest

from bayes_densing.figures import (changepoint, common, density, diagnostics, doubling, run_set,
                                    scaling)
from bayes_densing import results
from bayes_densing.results import rundir


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def run(lib_run):
    return results.load_run(lib_run.out)


def legend_texts(fig):
    texts = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    for ax in fig.axes:
        if ax.get_legend() is not None:
            texts += [t.get_text() for t in ax.get_legend().get_texts()]
    return texts


def test_fit_draws_every_figure_with_a_manifest(lib_run):
    figures = lib_run.out / "figures"
    index = json.loads((figures / "index.json").read_text())
    assert [e["name"] for e in index] == [n for n, _, _ in run_set.RUN_FIGURES]
    skipped = {e["name"]: e["skipped"] for e in index if "skipped" in e}
    assert list(skipped) == ["changepoint"] and "--model changepoint" in skipped["changepoint"]
    for entry in index:
        if "skipped" in entry:
            continue
        png, svg = lib_run.out / entry["png"], lib_run.out / entry["svg"]
        width, height = png_size(png)
        assert width > 600 and height > 400, entry["name"]
        assert svg.read_text().lstrip().startswith("<?xml") and svg.stat().st_size > 5000
        assert entry["caption"] and entry["title"]


def test_density_figure_has_labels_legend_band_and_no_overlapping_names(run):
    fig = density.density_figure(run)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "release date" and "density" in ax.get_ylabel()
    assert ax.get_yscale() == "log"
    legend = " ".join(legend_texts(fig))
    d = results.doubling_summary(results.slope_draws(run.idata, run.config))
    assert f"doubling {d['median_months']:.2f} months" in legend
    assert "reference models" in legend and "90% HDI" in legend
    names = [t for t in ax.texts if t.get_text() and hasattr(t, "xyann")]
    assert names, "no model is labelled"
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for t in names]
    frame = ax.get_window_extent(r)
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (names[i].get_text(), "overlaps another label")
    labelled = {t.get_text() for t in names}
    densest = run.models.query("role == 'target'").sort_values("density").model.iloc[-1]
    assert common.short_name(densest) in labelled


def test_place_labels_drops_a_name_that_has_no_free_place():
    fig = common.new_figure(4.0, 3.0)
    ax = fig.add_subplot()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    points = [(0.5, 0.5)] * 30
    placed = common.place_labels(ax, points, [f"model {i}" for i in range(30)])
    assert 0 < len(placed) < 30


def test_doubling_figure_marks_the_claims_with_their_probabilities(run):
    fig = doubling.doubling_figure(run, claims=(3.3, 3.5, 12.0))
    ax = fig.axes[0]
    assert "months" in ax.get_xlabel() and ax.get_ylabel() == "posterior density"
    T = results.doubling_months(results.slope_draws(run.idata, run.config))
    legend = legend_texts(fig)
    for m in (3.3, 3.5, 12.0):
        assert f"claimed {m:g} months: P(T ≤ {m:g}) = {np.mean(T <= m):.2f}" in legend
    assert any(t.startswith("90% HDI") for t in legend)
    assert ax.collections, "the HDI is not shaded"


def test_scaling_figure_has_one_panel_per_benchmark(run):
    fig = scaling.scaling_figure(run)
    benches = list(run.idata.constant_data["benchmark"].values)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    # with target offsets each panel names its δ_j and draws the targets' shifted curve
    delta = np.median(run.idata.posterior["target_offset"].values.reshape(-1, len(benches)), 0)
    assert [ax.get_title() for ax in visible] == [
        f"{b} (targets' offset δ = {d:+.2f})" for b, d in zip(benches, delta)]
    for ax in visible:
        assert any(line.get_linestyle() == "--" and line.get_color() == common.TARGET
                   for line in ax.get_lines())
        assert ax.get_xscale() == "log" and ax.get_ylabel() == "score"
        assert ax.collections, "no band or points"
    assert any("performance map" in t for t in legend_texts(fig))
    fit = run.diagnostics["reference_fit"]
    assert fit, "the run judged no reference fit"
    for ax, b in zip(visible, benches):
        notes = [t.get_text() for t in ax.texts if "mean LOO-PIT" in t.get_text()]
        assert len(notes) == (1 if b in fit else 0), (b, notes)
    assert "joint" in fig._suptitle.get_text()


def test_the_reference_fit_note_says_when_the_references_are_off_their_curve():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    scaling._reference_fit_note(ax, {"verdict": "above", "mean_pit": 0.84, "z": 3.3})
    scaling._reference_fit_note(ax, {"verdict": "ok", "mean_pit": 0.52, "z": 0.2})
    scaling._reference_fit_note(ax, None)
    assert [t.get_text() for t in ax.texts] == [
        "references above the curve: mean LOO-PIT 0.84 (z +3.3)",
        "references: mean LOO-PIT 0.52 (z +0.2)"]
    assert ax.texts[0].get_color() == common.EXTRAPOLATED


def test_scaling_figure_adds_the_loss_law_when_losses_were_given(loss_robust_fit):
    run = results.load_run(loss_robust_fit.out)
    fig = scaling.scaling_figure(run)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert sum(t.endswith(": loss") for t in titles) == len(run.idata.constant_data.benchmark)


def test_changepoint_figure_shows_both_slopes_and_the_ratio(changepoint_fit, tmp_path):
    run = results.load_run(changepoint_fit.out)
    fig = changepoint.changepoint_figure(run, tmp_path / "cp")
    left, right = fig.axes[:2]
    legend = " ".join(legend_texts(fig))
    assert "before 2022-11-30" in legend and "after 2022-11-30" in legend
    assert any("slope after ÷ before" in t.get_text() for t in right.texts)
    assert any("change date" in t.get_text() for t in left.texts)
    assert png_size(tmp_path / "cp.png")[0] > 800


def test_changepoint_figure_of_a_marginalised_date(changepoint_fit, tmp_path):
    """The figure of a run whose change date is marginalised: its posterior of the date (here
    made by hand: mostly the fitted run's date, some on the month after) and the line's level
    at the targets' mean date, as model.changepoint = "marginal" records them."""
    import numpy as np
    import xarray as xr

    from bayes_densing.model import laws
    from bayes_densing.model.trend import resolve_change_date

    run = results.load_run(changepoint_fit.out)
    post = run.idata.posterior.to_dataset()
    t_mean = float(results.target_times(run.idata).mean())
    t_c = float(run.config.model.months(run.config.model.changepoint))
    level = laws.changepoint_mean(t_mean, post.A_before, post.A_after, post.B_change, t_c)
    weight = np.broadcast_to([0.8, 0.2], post.A_after.shape + (2,))
    dates = {"changepoint_date": ["2022-11-01", "2022-12-01"]}
    post = post.assign(B_centre=level, changepoint_weight=xr.DataArray(
        weight, dims=("chain", "draw", "changepoint_date"), coords=dates),
        A_before_by_date=post.A_before.expand_dims(dates, axis=-1),
        A_after_by_date=post.A_after.expand_dims(dates, axis=-1))
    run.idata["posterior"] = resolve_change_date(post.drop_vars(["A_before", "A_after"]))
    run.config.model.changepoint = "marginal"
    fig = changepoint.changepoint_figure(run, tmp_path / "cpm")
    left, right = fig.axes[:2]
    assert any("marginalised, mode 2022-11-01 (P 0.80)" in t.get_text() for t in left.texts)
    assert "before the change" in " ".join(legend_texts(fig))
    assert png_size(tmp_path / "cpm.png")[0] > 800


def test_changepoint_figure_refuses_a_run_without_a_changepoint(run):
    with pytest.raises(ValueError, match="--trend changepoint"):
        changepoint.changepoint_figure(run)


def test_trace_figure_titles_carry_rhat_and_ess(run):
    fig = diagnostics.trace_figure(run)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("A: R-hat") and "ESS bulk" in t for t in titles)
    assert "diagnostics" in fig.get_suptitle().lower()


def test_ppc_figure_reports_coverage_per_benchmark(run):
    fig = diagnostics.ppc_figure(run, n_replicates=10)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == run.idata.constant_data.sizes["benchmark"]
    assert all("predictive interval" in ax.get_title() for ax in visible)
    assert any("Observed" in t for t in legend_texts(fig))


def test_plot_directory_redraws_run_subsets_and_sensitivity_figures(lib_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(lib_run.out, run_dir)
    shutil.rmtree(run_dir / "figures")
    written = run_set.plot_directory(run_dir)
    assert {p.stem for p in written} == {"density", "doubling", "scaling", "trace", "ppc"}
    assert all(p.exists() for p in written) and (run_dir / "figures" / "index.json").exists()
    assert not list(tmp_path.glob(".figures.*")), "a temporary figures directory was left"

    subsets = tmp_path / "subsets"
    subsets.mkdir()
    pd.DataFrame({"subset": ["a", "b", "a+b"], "doubling_median": [3.0, 4.0, 3.5],
                  "hdi_low": [2.0, 3.0, 3.0], "hdi_high": [4.0, 5.0, 4.0],
                  "n_benchmarks": [1, 1, 2], "diagnostics": ["OK", "failed", "OK"]}
                 ).to_csv(subsets / "subsets.csv", index=False)
    with pytest.raises(results.RunDirError, match="not a complete subsets directory"):
        run_set.plot_directory(subsets)                 # no manifest: not what `subsets` writes
    rundir.write_manifest(subsets, "subsets", ["subsets.csv"])
    assert run_set.plot_directory(subsets) == [subsets / "forest.png"]
    assert png_size(subsets / "forest.png")[0] > 300

    with pytest.raises(results.RunDirError, match="not a run, subsets or sensitivity"):
        run_set.plot_directory(tmp_path)
    with pytest.raises(results.RunDirError, match="no such directory"):
        run_set.plot_directory(tmp_path / "nowhere")


def test_figures_use_no_pyplot_state(run):
    """Figures are built on their own canvas: nothing is left open in pyplot's registry."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    doubling.doubling_figure(run)
    diagnostics.trace_figure(run)
    assert plt.get_fignums() == before


def test_density_figure_rings_the_extrapolated_effective_sizes(run):
    """Targets whose N̂ lies outside the reference models' sizes get a ring (full: the median;
    dashed: only the 90% interval), counted in the legend; a models table without the column
    (a run written before it) draws without rings."""
    import dataclasses

    models = run.models.copy()
    targets = models.index[models.role == "target"]
    models["extrapolation"] = "no"
    models.loc[targets[:3], "extrapolation"] = "below"
    models.loc[targets[3:4], "extrapolation"] = "interval"
    legend = " ".join(legend_texts(density.density_figure(dataclasses.replace(run, models=models))))
    assert "outside the reference sizes (3)" in legend and "past the reference sizes (1)" in legend
    legend = " ".join(legend_texts(density.density_figure(
        dataclasses.replace(run, models=models.drop(columns="extrapolation")))))
    assert "reference sizes" not in legend
