"""Benchmark subsets: the weighted model, the one-compile sweep, the table, the forest plot, the CLI."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from typer.testing import CliRunner

from bayes_densing.analyses.subsets import all_subsets, run_subsets, text, write
from bayes_densing.cli.app import app
from bayes_densing.config import ConfigError
from bayes_densing.data import load
from bayes_densing.model.build import build_model
from bayes_densing.figures.run_set import draw_sweep
from bayes_densing.figures.sweeps import forest
from bayes_densing.sampling import conditional_metric
from bayes_densing.sampling.families import state_from_arrays
from bayes_densing.model.simulate import simulate, write as write_sim


@pytest.fixture(scope="module")
def synth3(tmp_path_factory):
    df, truth = simulate(n_models=12, n_benchmarks=3, doubling_months=3.3, seed=2)
    csv, _ = write_sim(df, truth, tmp_path_factory.mktemp("subsets") / "synth3.csv")
    return csv, sorted(df.benchmark.unique())


def _logp_fn(model, extra=()):
    from pymc.sampling.jax import get_jaxified_graph

    fn = get_jaxified_graph(inputs=model.value_vars + list(extra), outputs=[model.logp()])
    return lambda point, *w: float(fn(*[point[v.name] for v in model.value_vars], *w)[0])


def test_subsets_are_enumerated_largest_first():
    subs = all_subsets(list("abcde"))
    assert len(subs) == 31 and subs[0] == tuple("abcde") and len(set(subs)) == 31
    assert len(all_subsets(list("abcde"), min_size=4)) == 6
    with pytest.raises(ConfigError, match="min-size"):
        all_subsets(list("abc"), min_size=4)


def test_a_warm_up_of_no_iterations_is_refused(small_config):
    with pytest.raises(ConfigError, match="--warm-tune must be at least 1, got 0"):
        run_subsets(small_config(), ["a", "b"], warm_tune=0)


def test_subsets_of_a_cut_fit_the_cut_and_the_full_set_is_the_cut_run(synth3, small_config,
                                                                         tmp_path):
    """Under the cut a subset's curves come from the references' scores on its benchmarks and
    its targets from theirs: the subset of every benchmark, weighted 1, is the plain cut fit of
    those benchmarks to the digit (at the subset's seed, ``variant_seed`` of its name), and a
    single-benchmark subset moves the answer."""
    from bayes_densing.run import fit
    from bayes_densing.sampling.families import variant_seed

    csv, benchmarks = synth3
    cfg = small_config()
    cfg.set("model.curves", "cut")
    table = run_subsets(cfg, benchmarks[:2], csv)
    assert list(table.n_benchmarks) == [2, 1, 1]
    cfg.set("sampler.seed", variant_seed(cfg.sampler.seed, "+".join(benchmarks[:2])))
    direct = fit(cfg, csv, progressbar=False)        # run_subsets set data.benchmarks
    assert direct.config.model.curves == "cut"
    assert table.doubling_median[0] == pytest.approx(direct.doubling["median_months"], rel=1e-9)
    assert table.doubling_median[1] != table.doubling_median[0]
    # the table reports each fit's own divergences (tiny fits like these diverge now and then)
    assert table.divergences[0] == direct.diagnostics["divergences"], table
    assert text(table).startswith("Estimand: cut")
    fig = forest(table, Path(tmp_path) / "forest-cut")
    assert "cut fits" in fig.axes[0].get_title()


def test_weighted_model_with_all_weights_is_the_model(synth3, small_config):
    csv, _ = synth3
    cfg = small_config()
    data = load(cfg, csv)
    plain = build_model(data, cfg)
    ow, bw = pt.vector("ow"), pt.vector("bw")
    weighted = build_model(data, cfg, weights=(ow, bw))
    rng = np.random.default_rng(0)
    start = plain.initial_point()
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in start.items()}
        ones = np.ones(len(data.obs)), np.ones(len(data.benchmarks))
        assert _logp_fn(weighted, (ow, bw))(point, *ones) == pytest.approx(
            _logp_fn(plain)(point), rel=1e-10)


def test_zero_weight_removes_a_benchmarks_scores(synth3, small_config, tmp_path):
    csv, benchmarks = synth3
    cfg = small_config()
    df = pd.read_csv(csv)
    dropped = benchmarks[-1]
    changed = df.copy()
    rows = changed.benchmark == dropped
    changed.loc[rows, "score"] = 1 - changed.loc[rows, "score"] * 0.5
    changed.to_csv(tmp_path / "changed.csv", index=False)
    values = []
    for path in (csv, tmp_path / "changed.csv"):
        data = load(cfg, path)
        ow, bw = pt.vector("ow"), pt.vector("bw")
        model = build_model(data, cfg, weights=(ow, bw))
        bench_w = np.array([b != dropped for b in data.benchmarks], float)
        point = model.initial_point()
        values.append([_logp_fn(model, (ow, bw))(point, bench_w[data.obs.bench_idx.to_numpy()],
                                                  bench_w),
                       _logp_fn(model, (ow, bw))(point, np.ones(len(data.obs)),
                                                 np.ones(len(bench_w)))])
    assert values[0][0] == pytest.approx(values[1][0], rel=1e-12)   # weight 0: scores ignored
    assert values[0][1] != pytest.approx(values[1][1], rel=1e-6)    # weight 1: they count


def test_parameters_a_subset_leaves_without_data_are_standard_normal_and_apart(synth3, small_config,
                                                                              tmp_path):
    """Drop a benchmark: its curve's parameters and a target scored only on it have no data.
    Moving them must change the log density exactly as a standard normal on their
    unconstrained values would (their own priors are swapped out; nothing else depends on
    them), so the rest of the posterior is the separate fit's."""
    csv, benchmarks = synth3
    df = pd.read_csv(csv)
    dropped = benchmarks[-1]
    lone = df[df.role == "target"].model.iloc[-1]        # keep only its score on `dropped`
    df = df[(df.model != lone) | (df.benchmark == dropped)]
    df.to_csv(tmp_path / "lone.csv", index=False)
    cfg = small_config()
    data = load(cfg, tmp_path / "lone.csv")
    assert lone in data.targets.model.tolist()
    ow, bw = pt.vector("ow"), pt.vector("bw")
    model = build_model(data, cfg, weights=(ow, bw))
    bench_w = np.array([b != dropped for b in data.benchmarks], float)
    logp = _logp_fn(model, (ow, bw))
    j = data.benchmarks.index(dropped)
    i = data.targets.model.tolist().index(lone)
    rng = np.random.default_rng(1)
    start = model.initial_point()
    before = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in start.items()}
    after = {k: v.copy() for k, v in before.items()}
    moved = []
    for name, v in after.items():
        if name.startswith("log_density"):
            v[i] += 0.9
            moved.append(v[i] ** 2 - before[name][i] ** 2)
        elif np.shape(v) == (len(data.benchmarks),):
            v[j] -= 0.6
            moved.append(v[j] ** 2 - before[name][j] ** 2)
    assert len(moved) >= 5
    weights = bench_w[data.obs.bench_idx.to_numpy()], bench_w
    assert logp(after, *weights) - logp(before, *weights) == pytest.approx(-0.5 * sum(moved),
                                                                          rel=1e-9)
    ones = np.ones(len(data.obs)), np.ones(len(bench_w))       # all in use: their priors count
    assert logp(after, *ones) - logp(before, *ones) != pytest.approx(-0.5 * sum(moved), rel=1e-3)


@pytest.mark.parametrize("mass_matrix", ["dense", "diag", "conditional"])
def test_a_warm_start_draws_the_parameters_without_data_from_their_standard_normal(
        synth3, small_config, tmp_path, mass_matrix):
    """A subset's warm start from another fit: the dropped benchmark's parameters and the
    latent of a target scored only on it start from fresh standard normal draws with unit,
    uncorrelated variance in the metric (their exact posterior); every other coordinate keeps
    the other fit's position and metric."""
    from bayes_densing.sampling import dense_nuts
    from bayes_densing.inference.sweep import compile_sweep

    csv, benchmarks = synth3
    df = pd.read_csv(csv)
    dropped = benchmarks[-1]
    lone = df[df.role == "target"].model.iloc[-1]
    df = df[(df.model != lone) | (df.benchmark == dropped)]
    df.to_csv(tmp_path / "lone.csv", index=False)
    cfg = small_config(mass_matrix=mass_matrix)
    data = load(cfg, tmp_path / "lone.csv")
    sweep = compile_sweep(data, cfg)
    sampler = sweep.sampler
    bench_w = np.array([b != dropped for b in data.benchmarks], float)
    obs_w = bench_w[data.obs.bench_idx.to_numpy()]
    free = sweep.without_data(obs_w, bench_w)
    named = sampler.unflatten(free)
    j = data.benchmarks.index(dropped)
    i = data.targets.model.tolist().index(lone)
    for name, mask in named.items():
        expect = np.zeros(sampler.shapes[name], bool)
        if np.shape(mask) == (len(data.benchmarks),):
            expect[j] = True
        elif name.startswith("log_density"):
            expect[i] = True
        np.testing.assert_array_equal(mask, expect, err_msg=name)
    assert not sweep.without_data(np.ones_like(obs_w), np.ones_like(bench_w)).any()

    rng = np.random.default_rng(0)
    draws = rng.normal(size=(400, sampler.d)) @ rng.normal(size=(sampler.d, sampler.d)) + 5.0
    metric = sampler.metric(draws.reshape(4, 100, -1))
    last = [sampler.unflatten(x) for x in draws[-4:]]
    warm = dense_nuts.Draws(z={}, stats={}, seconds=0.0, metric=metric, step_size=0.1, last=last)
    started = sweep.warm_start(warm, obs_w, bench_w, seed=3)
    x_before = np.stack([sampler.flatten(p) for p in last])
    x_after = np.stack([sampler.flatten(p) for p in started.last])
    np.testing.assert_array_equal(x_after[:, ~free], x_before[:, ~free])
    assert np.all(np.abs(x_after[:, free]) < 5.0)       # standard normal, not the fit's +5
    if mass_matrix == "conditional":
        lower = conditional_metric.to_position(np.eye(sampler.d), started.metric)
        cov_after = (lower - started.metric[0]).T @ (lower - started.metric[0])
        lower = conditional_metric.to_position(np.eye(sampler.d), metric)
        cov_before = (lower - metric[0]).T @ (lower - metric[0])
        g = np.arange(sampler.d) < sampler.d_global
        kept = ~free & g                     # the other globals keep their block
        np.testing.assert_allclose(cov_after[np.ix_(kept, kept)], cov_before[np.ix_(kept, kept)])
        np.testing.assert_array_equal(started.metric[0][free], 0.0)
    else:
        cov_after = np.diag(started.metric) if mass_matrix == "diag" else started.metric
        cov_before = np.diag(metric) if mass_matrix == "diag" else metric
        np.testing.assert_allclose(cov_after[np.ix_(~free, ~free)],
                                   cov_before[np.ix_(~free, ~free)])
    np.testing.assert_allclose(cov_after[np.ix_(free, free)], np.eye(int(free.sum())),
                               atol=1e-12)
    np.testing.assert_allclose(cov_after[np.ix_(free, ~free)], 0.0, atol=1e-12)
    # with no coordinate free, the warm start is the other fit's as it was
    assert sweep.warm_start(warm, np.ones_like(obs_w), np.ones_like(bench_w), 3) is warm


@pytest.fixture(scope="module")
def sweeps(synth3, small_config, tmp_path_factory):
    """The sweep as the command runs it (warm-started from the all-benchmark fit's state,
    persisted in a directory) and from scratch, the default's progress lines and that
    directory."""
    csv, benchmarks = synth3
    lines, out = [], tmp_path_factory.mktemp("subsets") / "sweep"
    # a third of the cold warm-up, as the default (300 of 1000) is
    warm = run_subsets(small_config(), benchmarks, csv, progress=lines.append, warm_tune=20,
                       out=out)
    cold = run_subsets(small_config(), benchmarks, csv, warm_start=False)
    return warm, cold, lines, out


def test_warm_starts_change_the_cost_not_the_answer(sweeps):
    warm, cold, _, _ = sweeps
    assert list(warm.subset) == list(cold.subset)
    # the all-benchmark fit is never warm-started: the same draws
    assert warm.doubling_median.iloc[0] == pytest.approx(cold.doubling_median.iloc[0], rel=1e-9)
    gap = (warm.doubling_median - cold.doubling_median).abs() / (cold.hdi_high - cold.hdi_low)
    assert (gap < 0.35).all(), gap


def test_sweep_fits_every_subset_and_writes_table_and_forest(sweeps, synth3, small_config,
                                                             tmp_path):
    csv, benchmarks = synth3
    table, _, lines, out = sweeps
    assert len(table) == 7 and len(lines) == 7
    assert lines[0].startswith("[1/7; ~") and lines[-1].startswith("[7/7; ~0 s left]")
    assert table.subset.iloc[0] == "+".join(benchmarks)
    assert table.rank_corr_with_all.iloc[0] == pytest.approx(1.0)
    assert np.isfinite(table.doubling_median).all() and (table.hdi_low < table.hdi_high).all()
    assert (table.hdi_low <= table.doubling_median).all()
    assert ((table["p_leq_3.3"] >= 0) & (table["p_leq_3.3"] <= 1)).all()
    assert (table.n_targets <= 12).all()
    write(table, out, small_config())
    draw_sweep(out)                         # the CLI draws the forest after the table
    assert {p.name for p in out.iterdir()} >= {"subsets.csv", "subsets.json", "forest.png",
                                               "forest.svg", "config.toml", "sweep.json",
                                               "variants"}
    # every subset's directory; the parent's also holds its adapted state, named by it
    parent = "+".join(benchmarks)
    assert len(list((out / "variants").glob("*/result.json"))) == 7
    with np.load(out / "variants" / parent / "state.npz") as f:
        assert state_from_arrays({k: f[k] for k in f.files}, parent).step_size > 0
    assert "sweep.json" in json.loads((out / "manifest.json").read_text())["files"]
    assert (out / "forest.png").stat().st_size > 10_000
    assert len(json.loads((out / "subsets.json").read_text())["rows"]) == 7


def test_forest_plot_has_its_elements():
    table = pd.DataFrame({"subset": ["a+b", "a", "b"], "n_benchmarks": [2, 1, 1],
                          "doubling_median": [4.0, 3.0, 6.0], "hdi_low": [3.0, 2.0, 4.0],
                          "hdi_high": [5.0, 4.5, 9.0], "diagnostics": ["OK", "OK", "max R-hat"]})
    fig = forest(table)
    ax = fig.axes[0]
    assert "doubling time" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a + b", "a"]  # by median
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "all 2 benchmarks" in legend and "claimed 3.3 months" in legend


def test_cli_refuses_bad_benchmarks(synth3, small_args, tmp_path):
    csv, _ = synth3
    runner = CliRunner()
    result = runner.invoke(app, ["subsets", "--data", str(csv), "--benchmarks", "onlyone",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "at least two" in result.output
    result = runner.invoke(app, ["subsets", "--data", str(csv), "--benchmarks", "mmlu,nosuch",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "error:" in result.output
    assert not (tmp_path / "x").exists()
