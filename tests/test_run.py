"""Library-level runs (bayes_densing.run.fit): reproducibility, the run directory, atomic writes."""

import copy
import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayes_densing.results as results_mod
import bayes_densing.run as run_mod
from bayes_densing.results import rundir
from bayes_densing.data import load
from bayes_densing.results import RunDirError, load_run

RUN_FILES = {*rundir.RUN_CORE, rundir.MANIFEST}
FIGURED = RUN_FILES | {"figures", "report.md", "report.html", rundir.DERIVED}   # fit(figures=True)


# --- reproducibility -------------------------------------------------------------------------

def test_same_seed_gives_identical_posterior_files(lib_run, cli_run):
    """Same data + config + seed → identical posterior.nc contents: the library fit (lib_run)
    and the command-line fit (cli_run) are two independent runs of the same settings."""
    import arviz as az

    assert cli_run.result.exit_code == 0, cli_run.result.output
    first = az.from_netcdf(str(lib_run.out / "posterior.nc"))
    second = az.from_netcdf(str(cli_run.out / "posterior.nc"))
    assert set(first.children) == set(second.children)
    for group in first.children:
        a, b = first[group], second[group]
        assert set(a.data_vars) == set(b.data_vars), group
        for name in a.data_vars:
            if group == "sample_stats" and name in ("sampling_time", "step_size_bar"):
                continue
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{group}/{name}")
    pd.testing.assert_frame_equal(pd.read_csv(lib_run.out / "models.csv"),
                                  pd.read_csv(cli_run.out / "models.csv"))


def test_the_seed_reaches_the_sampler_and_the_starting_points(synth, small_config, monkeypatch):
    """The seed is what the sampler gets — dense_nuts (the default) and pm.sample (the diagonal
    metric and the other samplers) — and different seeds start the chains elsewhere (the
    draws themselves then differ: `-m slow` checks that with a second real fit)."""
    import bayes_densing.inference.bridge as bridge
    import bayes_densing.inference.sample as inference
    from bayes_densing.data import load
    from bayes_densing.model.build import build_model

    cfg = small_config(seed=7)
    model = build_model(load(cfg, synth.csv), cfg)
    seen = {}

    def fake_dense(model, sampler, starts, **kw):
        seen.update(dense_seed=sampler.cfg.seed, starts=starts)
        raise _Stop.Raised("dense")

    monkeypatch.setattr(bridge, "run", fake_dense)
    with pytest.raises(_Stop.Raised):
        inference.sample(model, cfg.sampler, progressbar=False)
    assert seen["dense_seed"] == 7
    # the sampler's own check of the starting points (its start-up program) picks the same
    # points as the default check (the jaxified log density and its gradient)
    starts = inference.unconstrained_starts(model, cfg.sampler.chains, 7)
    assert all(np.array_equal(seen["starts"][0][k], starts[0][k]) for k in starts[0])

    cfg.set("sampler.mass_matrix", "diag")
    monkeypatch.setattr(inference.pm, "sample", lambda **kw: seen.update(kw) or _Stop())
    with pytest.raises(_Stop.Raised):
        inference.sample(model, cfg.sampler, progressbar=False)
    assert seen["random_seed"] == 7
    a = inference.initial_points(model, 2, seed=7)
    b = inference.initial_points(model, 2, seed=8)
    assert not np.allclose(a[0]["A"], b[0]["A"])
    again = inference.initial_points(model, 2, seed=7)
    assert all(np.array_equal(a[0][k], again[0][k]) for k in a[0])


class _Stop:
    """What the fake pm.sample returns: touching it stops the test after the call."""

    class Raised(Exception):
        pass

    def __getattr__(self, name):
        raise _Stop.Raised(name)

    def __getitem__(self, name):
        raise _Stop.Raised(name)

    def __setitem__(self, name, value):
        raise _Stop.Raised(name)


@pytest.mark.slow
def test_different_seed_gives_different_draws(lib_run, synth, small_config):
    other = run_mod.fit(small_config(seed=1), synth.csv, progressbar=False)
    a, b = lib_run.result.idata.posterior, other.idata.posterior
    assert a["A"].shape == b["A"].shape == (2, 60)
    assert not np.array_equal(a["A"].values, b["A"].values)
    assert not np.array_equal(a["log_density"].values, b["log_density"].values)
    assert other.diagnostics["seed"] == 1


# --- the run directory -----------------------------------------------------------------------

def test_run_directory_has_every_file(lib_run):
    assert lib_run.result.out == lib_run.out
    assert {p.name for p in lib_run.out.iterdir()} == FIGURED
    assert (lib_run.out / "summary.txt").read_text() == lib_run.result.summary + "\n"


def test_run_directory_round_trips(lib_run):
    loaded = load_run(lib_run.out)
    result = lib_run.result
    pd.testing.assert_frame_equal(loaded.models, result.models, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.trend, result.trend, check_dtype=False)
    assert loaded.config.to_dict() == lib_run.result.config.to_dict()
    # what ran records the benchmarks that were used, not the empty "all" of the input config
    assert lib_run.result.config.data.benchmarks == lib_run.result.data.benchmarks
    assert loaded.config.sampler.draws == 60 and loaded.config.model.data_term == "off"
    for name in result.idata.posterior.data_vars:
        np.testing.assert_array_equal(loaded.idata.posterior[name].values,
                                      result.idata.posterior[name].values, err_msg=name)
    for group in ("posterior", "posterior_predictive", "sample_stats", "observed_data",
                  "constant_data"):
        assert group in loaded.idata.children, group
    names = loaded.idata.constant_data["model_name"].values.tolist()
    assert names == result.data.models.model.tolist()


def test_diagnostics_json_records_provenance(lib_run, synth):
    diag = json.loads((lib_run.out / "diagnostics.json").read_text())
    for key in ("versions", "input_sha256", "seed", "config", "divergences", "max_rhat"):
        assert key in diag, key
    assert diag["input_sha256"] == hashlib.sha256(synth.csv.read_bytes()).hexdigest()
    assert diag["seed"] == 0
    assert diag["config"] == lib_run.result.config.to_dict()
    assert {"bayes_densing", "python", "pymc", "numpyro", "jax", "arviz"} <= set(diag["versions"])
    assert isinstance(diag["divergences"], int) and diag["divergences"] >= 0
    assert isinstance(diag["max_rhat"], float) and diag["max_rhat"] >= 1.0 - 1e-6
    assert diag["chains"] == 2 and diag["draws"] == 60
    assert diag["input"] == str(synth.csv)
    # the loaded diagnostics are the in-memory ones (up to JSON)
    assert load_run(lib_run.out).diagnostics["max_rhat"] == lib_run.result.diagnostics["max_rhat"]


def test_load_run_refuses_an_incomplete_directory(lib_run, tmp_path):
    partial = tmp_path / "incomplete"
    partial.mkdir()
    (partial / "models.csv").write_bytes((lib_run.out / "models.csv").read_bytes())
    with pytest.raises(RunDirError, match="posterior.nc"):
        load_run(partial)


# --- models.csv --------------------------------------------------------------------------------

def test_models_table(lib_run, synth):
    models = pd.read_csv(lib_run.out / "models.csv")
    sim_models = synth.df.drop_duplicates("model").set_index("model")
    assert len(models) == len(sim_models) == 12 + 8
    assert not models.model.duplicated().any()
    assert set(models.model) == set(sim_models.index)
    assert (models.set_index("model").role == sim_models.role.reindex(models.model)).all()

    tg = models[models.role == "target"]
    assert len(tg) == 12
    assert (tg.density_low <= tg.density).all() and (tg.density <= tg.density_high).all()
    assert (tg.effective_params_low <= tg.effective_params).all()
    assert (tg.effective_params <= tg.effective_params_high).all()
    assert (tg.density_low < tg.density_high).all()            # a posterior, not a point
    assert (tg.density > 0).all()
    # effective size = density × actual size (both are medians of the same shifted draws)
    np.testing.assert_allclose(tg.effective_params, tg.density * tg.params, rtol=1e-9)
    assert tg.p_on_frontier.between(0, 1).all()

    ref = models[models.role == "reference"]
    assert len(ref) == 8
    assert (ref.density == 1).all() and (ref.density_low == 1).all() and (ref.density_high == 1).all()
    np.testing.assert_array_equal(ref.effective_params, ref.params)
    assert set(ref.family) == {"SimRef"}


# --- no partial directory on failure -----------------------------------------------------------

def test_no_directory_when_sampling_is_interrupted(synth, small_config, tmp_path, monkeypatch,
                                                   leftovers):
    calls = []

    def interrupted(model, cfg, **kwargs):
        calls.append(cfg)
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "sample", interrupted)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_mod.fit(small_config(), synth.csv, out=out, progressbar=False)
    assert calls, "run.fit did not reach the sampler"
    assert not out.exists()
    assert leftovers(out) == []
    assert list(tmp_path.iterdir()) == []


def _failing_write_run(monkeypatch):
    """write_run writes the real files into the temporary directory, then is interrupted."""
    real = results_mod.write_run
    seen = []

    def failing(directory, **kwargs):
        real(directory, **kwargs)
        seen.append(sorted(p.name for p in directory.iterdir()))
        raise KeyboardInterrupt

    monkeypatch.setattr(results_mod, "write_run", failing)
    return seen


def test_no_partial_directory_when_writing_is_interrupted(synth, small_config, tmp_path,
                                                          monkeypatch, replay_sampler, leftovers):
    seen = _failing_write_run(monkeypatch)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_mod.fit(small_config(), synth.csv, out=out, progressbar=False)
    assert replay_sampler["n"] == 1
    assert seen and "posterior.nc" in seen[0]      # files were being written when it failed
    assert not out.exists()
    assert leftovers(out) == []
    assert list(tmp_path.iterdir()) == []


def test_interrupted_force_leaves_the_old_run_intact(synth, small_config, tmp_path, monkeypatch,
                                                     replay_sampler, leftovers):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("old run")
    _failing_write_run(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_mod.fit(small_config(), synth.csv, out=out, force=True, progressbar=False)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "old run"
    assert leftovers(out) == []


def test_existing_out_is_refused_before_sampling(synth, small_config, tmp_path, no_sampling):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("old run")
    with pytest.raises(RunDirError, match="--force"):
        run_mod.fit(small_config(), synth.csv, out=out, progressbar=False)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_force_replaces_an_existing_run(synth, small_config, tmp_path, replay_sampler, leftovers):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("old run")
    result = run_mod.fit(small_config(), synth.csv, out=out, force=True, progressbar=False)
    assert result.out == out
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert leftovers(out) == []


# --- regression: global b/β draws must broadcast in the numpy posterior predictive ------------

def test_posterior_predictive_with_data_term_on(lib_run, synth, small_config):
    """results.posterior_predictive must work for a posterior that has the b·D^-β term."""
    cfg = small_config()
    cfg.set("model.data_term", "on")
    data = load(cfg, synth.csv)
    idata = copy.deepcopy(lib_run.sample_result.idata)
    shape = idata.posterior["A"].shape
    idata.posterior["b"] = xr.Variable(("chain", "draw"), np.full(shape, 0.5))
    idata.posterior["beta"] = xr.Variable(("chain", "draw"), np.full(shape, 0.28))
    pp = results_mod.posterior_predictive(idata, data, cfg, seed=0)
    assert pp["correct"].shape == shape + (len(data.obs),)


def test_an_arviz_user_opens_the_posterior_file_alone(lib_run):
    """posterior.nc read by a separate Python process that imports only ArviZ: az.loo (from the
    log_likelihood group, per score, labelled by model and benchmark), az.loo_pit, az.psense
    (from the log_prior group) and az.summary run; the file says what wrote it, how."""
    import subprocess
    import sys

    code = """
import sys, warnings
warnings.simplefilter("ignore")
import arviz as az
idata = az.from_netcdf(sys.argv[1])
ll = idata.log_likelihood["correct"]
assert ll.dims == ("chain", "draw", "obs") and "model" in ll.coords and "benchmark" in ll.coords
loo = az.loo(idata)
assert loo.elpd < 0 and loo.n_data_points == ll.sizes["obs"], loo
pit = az.loo_pit(idata, var_names=["correct"])["correct"]
assert pit.sizes["obs"] == ll.sizes["obs"] and 0 <= float(pit.min()) <= float(pit.max()) <= 1
sensitivity = az.psense(idata, var_names=["A"], group="prior")
assert 0 <= float(sensitivity["A"]) < 1, sensitivity
assert idata.attrs["format_version"] == 1 and "[sampler]" in idata.attrs["config"]
print(az.summary(idata, var_names=["A", "B"]).to_string())
print("bayes_densing" in sys.modules, "pymc" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code, str(lib_run.out / "posterior.nc")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["False", "False"]      # ArviZ alone read it
    assert "r_hat" in done.stdout


def test_the_log_likelihood_group_is_the_models_likelihood(lib_run):
    """The stored group is the pointwise log-likelihood that test_influence checks against
    PyMC's own graph."""
    from bayes_densing.analyses.influence import pointwise_loglik

    result = lib_run.result
    np.testing.assert_array_equal(result.idata.log_likelihood["correct"].values,
                                  pointwise_loglik(result.idata, result.data, result.config))
    names = result.data.models.model.to_numpy()[result.data.obs.model_idx.to_numpy()]
    assert (result.idata.log_likelihood["model"].values == names).all()


def test_the_log_prior_group_is_the_models_prior(lib_run):
    """The default sampler's log_prior group (from its unconstrained draws, in one program with
    the deterministics) equals the one PyMC's samplers get (from the draws on their own
    scale): each of the model's prior terms, summed, per draw; the trend's population prior
    is one of them."""
    from bayes_densing.inference.sample import log_prior_group
    from bayes_densing.model.build import build_model, prior_terms

    result = lib_run.result
    model = build_model(result.data, result.config)
    tree = result.idata
    stored = tree["log_prior"].to_dataset()
    assert set(stored.data_vars) == {v.name for v in prior_terms(model)}
    assert "trend_prior" in stored and "affine_jacobian" not in stored
    again = log_prior_group(model, tree["posterior"].to_dataset())
    for name in stored.data_vars:
        assert stored[name].dims == ("chain", "draw"), name
        np.testing.assert_allclose(again[name].values, stored[name].values, rtol=1e-6,
                                   atol=1e-6, err_msg=name)


def test_effective_sizes_past_the_reference_sizes_are_flagged(lib_run):
    """models.csv says, per target, whether N̂ reads the reference curves where no reference
    model is: by its median (below/above) or only by its 90% interval; the summary counts
    them and diagnostics.json records the counts and the models."""
    from bayes_densing.results import extrapolation_of, extrapolation_summary

    sizes = (0.5, 14.0)
    assert extrapolation_of(0.3, 0.2, 0.4, sizes) == "below"
    assert extrapolation_of(20.0, 10.0, 30.0, sizes) == "above"
    assert extrapolation_of(1.0, 0.4, 2.0, sizes) == "interval"
    assert extrapolation_of(13.0, 9.0, 15.0, sizes) == "interval"
    assert extrapolation_of(3.0, 1.0, 8.0, sizes) == "no"
    models = lib_run.result.models
    tg, refs = models[models.role == "target"], models[models.role == "reference"]
    lo, hi = refs.params.min(), refs.params.max()
    outside = (tg.effective_params < lo) | (tg.effective_params > hi)
    assert (tg.extrapolation.isin(["below", "above"]) == outside).all()
    saved = pd.read_csv(lib_run.out / "models.csv")
    assert saved.extrapolation.tolist() == models.extrapolation.tolist()
    counts = extrapolation_summary(models)
    assert counts["below"] + counts["above"] == int(outside.sum())
    assert counts["reference_sizes_b"] == [float(lo), float(hi)]
    diag = json.loads((lib_run.out / "diagnostics.json").read_text())
    assert diag["extrapolation"] == counts
    if counts["below"] + counts["above"] + counts["interval"]:   # 2 + 1 on this machine
        said = f"{int(outside.sum())} of {len(tg)} targets"
        assert said in lib_run.result.summary
        assert said in (lib_run.out / "report.md").read_text()
    assert extrapolation_summary(models.drop(columns="extrapolation")) == {}


def test_the_reference_fit_is_judged_out_of_sample(lib_run):
    """Every reference score's LOO-PIT (ArviZ), summarised per benchmark in diagnostics.json,
    the summary and the report; reproducible for a seed."""
    from bayes_densing.results import reference_fit, reference_fit_summary

    result = lib_run.result
    table = reference_fit(result.idata, seed=0)
    assert len(table) == result.data.n_ref * len(result.data.benchmarks)
    assert table.pit.between(0, 1).all() and set(table.benchmark) == set(result.data.benchmarks)
    assert table.pit.tolist() == reference_fit(result.idata, seed=0).pit.tolist()
    fit = json.loads((lib_run.out / "diagnostics.json").read_text())["reference_fit"]
    assert fit == json.loads(json.dumps(reference_fit_summary(table)))
    assert "Reference fit (LOO-PIT of the" in result.summary
    assert "How well the reference curves fit" in (lib_run.out / "report.md").read_text()


def test_reference_fit_summary_flags_a_benchmark_whose_references_sit_above_their_curve():
    import pandas as pd

    from bayes_densing.results import reference_fit_lines, reference_fit_summary

    table = pd.DataFrame({"model": [f"r{i}" for i in range(8)] * 2,
                          "benchmark": ["high"] * 8 + ["fine"] * 8,
                          "score": [0.5] * 16,
                          "pit": [0.97, 0.9, 0.85, 0.95, 0.8, 0.99, 0.7, 0.9]
                                 + [0.1, 0.3, 0.5, 0.7, 0.9, 0.45, 0.55, 0.6]})
    fit = reference_fit_summary(table)
    assert fit["high"]["verdict"] == "above" and fit["fine"]["verdict"] == "ok"
    assert fit["high"]["outside_90"] == 2 and fit["high"]["worst"]["model"] == "r5"
    assert fit["high"]["z"] == pytest.approx((0.8825 - 0.5) / math.sqrt(1 / 96))
    line = reference_fit_lines(fit)[0]
    assert "above their own curve on high (mean PIT 0.88)" in line and "fine" not in line.split(";")[0]
