"""Per-benchmark target offsets (``model.target_offsets = "on"``): a target scores on benchmark
j as a reference-family model of ln size η + δ_j would, the δ_j centred over the benchmarks in
use, so that η is the equal-weight reference-relative size the paper's pipeline averages."""

import numpy as np
import pymc as pm
import pytest
from typer.testing import CliRunner

from bayes_densing.cli.app import app
from bayes_densing.config import Config
from bayes_densing.data import load
from bayes_densing.model.curves import score_probability
from bayes_densing.model.loss_law import target_offsets
from bayes_densing.results import curve_draws, load_run


def test_the_offsets_are_centred_over_the_benchmarks_in_use():
    with pm.Model(coords={"benchmark": ["a", "b", "c"]}):
        every = target_offsets(Config().priors)
    draws = pm.draw(every, draws=200, random_seed=0)
    np.testing.assert_allclose(draws.sum(axis=1), 0.0, atol=1e-9)
    with pm.Model(coords={"benchmark": ["a", "b", "c"]}):
        used = target_offsets(Config().priors, (None, np.array([1.0, 1.0, 0.0])))
    draws = pm.draw(used, draws=200, random_seed=0)
    np.testing.assert_allclose(draws[:, :2].sum(axis=1), 0.0, atol=1e-9)
    assert np.abs(draws[:, 2]).max() > 0.1         # an unused benchmark's δ is left free


def test_an_offset_moves_only_the_targets_scores_on_its_benchmark(synth):
    cfg = Config()
    data = load(cfg, synth.csv)
    params = curve_draws(_one_draw(data))
    base, _ = score_probability(params, data, cfg, xp=np)
    delta = np.zeros((1, len(data.benchmarks)))
    delta[0, 0] = 1.0
    moved, _ = score_probability({**params, "target_offset": delta}, data, cfg, xp=np)
    obs = data.obs
    target, on_first = (obs.model_idx.to_numpy() >= data.n_ref), obs.bench_idx.to_numpy() == 0
    changed = ~np.isclose(moved[0], base[0])
    assert changed[target & on_first].all() and not changed[~(target & on_first)].any()
    assert (moved[0][target & on_first] > base[0][target & on_first]).all()   # bigger, higher


def _one_draw(data):
    """A one-draw posterior of the curves at their prior-ish centre, for score_probability."""
    import xarray as xr

    nb, nt = len(data.benchmarks), data.n_target
    post = xr.Dataset({
        "log_effective_size": (("chain", "draw", "target"), np.full((1, 1, nt), np.log(3.0))),
        "alpha": (("chain", "draw", "benchmark"), np.full((1, 1, nb), 0.3)),
        "z_centre": (("chain", "draw", "benchmark"), np.zeros((1, 1, nb))),
        "z_gain": (("chain", "draw", "benchmark"), np.full((1, 1, nb), 2.0)),
    })
    return xr.DataTree.from_dict({"posterior": post})


def test_the_offsets_belong_to_the_targets_module(synth):
    """Under the cut the offsets see the target scores, given the curves: they are ψ, not θ."""
    from bayes_densing.inference.cut import target_parameters
    from bayes_densing.model.build import build_model

    cfg = Config()
    cfg.set("model.target_offsets", "on")
    psi = target_parameters(build_model(load(cfg, synth.csv), cfg))
    assert "target_offset_raw" in psi


def test_a_run_with_offsets_samples_them_and_influence_integrates_them(synth, tmp_path):
    """Through the command line (the joint: one compiled program instead of the cut's three;
    the integrated likelihood is the same code for both)."""
    out = tmp_path / "offsets"
    runner = CliRunner()
    result = runner.invoke(app, [
        "sample", "--data", str(synth.csv), "--chains", "2", "--draws", "100", "--tune", "100",
        "--quiet", "--set", "model.data_term=off", "--set", "model.target_offsets=on",
        "--curves", "joint", "--no-figures", "--allow-warnings", "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = load_run(out)
    assert run.config.model.target_offsets == "on"
    delta = run.idata.posterior["target_offset"]
    assert delta.dims[-1] == "benchmark"
    np.testing.assert_allclose(delta.sum("benchmark"), 0.0, atol=1e-9)
    influence = runner.invoke(app, ["influence", str(out), "--no-refit"])
    assert influence.exit_code == 0, influence.output
    assert "Pareto k" in influence.output
    _the_integrated_likelihood_uses_each_draws_offsets(run)


def _the_integrated_likelihood_uses_each_draws_offsets(run):
    from bayes_densing.analyses.influence import run_data
    from bayes_densing.analyses.stratified import integrated_loglik

    data = run_data(run.idata, run.config)
    own = integrated_loglik(run.idata, data, run.config)
    # draws that share θ in a stratum still each have their own δ: grouping changes nothing
    np.testing.assert_allclose(integrated_loglik(run.idata, data, run.config, per=4), own)
    post = run.idata.posterior
    zero = run.idata.copy()
    zero["posterior"] = post.to_dataset().assign(target_offset=post["target_offset"] * 0.0)
    without = run.idata.copy()
    without["posterior"] = post.to_dataset().drop_vars("target_offset")
    at_zero = integrated_loglik(zero, data, run.config)
    np.testing.assert_allclose(at_zero, integrated_loglik(without, data, run.config))
    assert np.abs(at_zero - own).max() > 0.1
