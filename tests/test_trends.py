"""Every trend form, the robust likelihood and observed-loss mode build, sample and summarise.

Tiny fits (plumbing, not statistics): 2 chains × 60 draws on simulated data.
"""

import numpy as np
import pandas as pd
import pytest

from bayes_densing.config import Config
from bayes_densing.data import assemble
from bayes_densing.inference import SamplerError, select_device
from bayes_densing.model import ModelError, build_model
from bayes_densing.run import fit
from bayes_densing.simulate import simulate


def tiny(**model) -> Config:
    cfg = Config()
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = 2, 60, 60
    for k, v in model.items():
        cfg.set(f"model.{k}", v)
    return cfg.validate()


def synthetic(start="2023-03-01", months=18.0, n_models=14, seed=3, loss=False):
    df, truth = simulate(n_models=n_models, n_benchmarks=2, seed=seed, start=start, months=months)
    df["release_date"] = pd.to_datetime(df.release_date)
    df["line"] = np.arange(len(df)) + 2
    if loss:  # observed losses for the reference models only
        ref = df.role == "reference"
        df["loss"] = np.where(ref, 0.5 + np.log(60 / df.params) / 10, np.nan)
    return df, truth


def run(df, cfg):
    data = assemble(df, cfg, source="synthetic")
    return fit(cfg, data=data, progressbar=False)


@pytest.mark.parametrize("trend", ["mean", "envelope"])
def test_trend_forms_sample_and_report_a_slope(trend):
    df, truth = synthetic()
    result = run(df, tiny(trend=trend))
    t = result.trend.set_index("parameter")
    assert np.isfinite(t.loc["A_per_month", "median"])
    assert "sigma" in t.index and "sigma_u" not in t.index
    if trend == "envelope":  # the paper's rule per draw, beside the model's own mean trend
        assert "A_mean_trend_per_month" in t.index
        assert t.loc["A_per_month", "median"] != t.loc["A_mean_trend_per_month", "median"]


def test_changepoint_reports_the_slope_ratio():
    df, _ = synthetic(start="2022-03-01", months=20.0, n_models=16)
    result = run(df, tiny(trend="changepoint"))
    t = result.trend.set_index("parameter")
    assert {"A_before", "A_after", "slope_ratio"} <= set(t.index)
    assert "slope after / before" in result.summary


def test_changepoint_needs_targets_on_both_sides():
    df, _ = synthetic()  # all targets after 2022-11-30
    data = assemble(df, tiny(trend="changepoint"), source="synthetic")
    with pytest.raises(ModelError, match="on each side of 2022-11-30"):
        build_model(data, tiny(trend="changepoint"))


def test_robust_likelihood_samples_an_outlier_rate():
    df, _ = synthetic()
    result = run(df, tiny(likelihood="robust"))
    rate = result.idata.posterior["outlier_rate"].values
    assert np.all((rate > 0) & (rate < 1))
    assert result.idata.posterior_predictive["correct"].shape[-1] == len(result.data.obs)


def test_observed_loss_mode_frees_the_loss_scale():
    df, _ = synthetic(loss=True)
    result = run(df, tiny())
    post = result.idata.posterior
    assert {"a", "E", "sigma_loss"} <= set(post.data_vars)


def test_free_ceiling_is_bounded_by_the_floor():
    df, _ = synthetic()
    result = run(df, tiny(ceiling="free"))
    frac = result.idata.posterior["ceiling_frac"].values
    assert np.all((frac > 0) & (frac <= 1))


def test_gpu_request_without_gpu_is_a_clear_error():
    import jax

    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    if has_gpu:
        pytest.skip("a GPU is present")
    with pytest.raises(SamplerError, match="JAX sees no GPU"):
        select_device("gpu")


@pytest.mark.parametrize("sampler", ["nutpie", "blackjax"])
def test_missing_optional_sampler_is_a_clear_error(sampler):
    pytest.importorskip("pymc")
    try:
        __import__(sampler)
        pytest.skip(f"{sampler} is installed")
    except ImportError:
        pass
    df, _ = synthetic()
    cfg = tiny()
    cfg.sampler.sampler = sampler
    with pytest.raises(SamplerError, match=rf"pip install 'bayes-densing\[samplers\]'"):
        run(df, cfg)


def test_target_only_csv_runs_end_to_end_with_the_bundled_reference(tmp_path):
    from typer.testing import CliRunner

    from bayes_densing.cli import app
    from tests.test_data import TARGETS_ONLY

    csv = tmp_path / "mine.csv"
    csv.write_text(TARGETS_ONLY)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["sample", "--data", str(csv), "--out", str(out), "--chains", "2",
                                      "--draws", "60", "--tune", "60", "--quiet", "--allow-warnings"])
    assert result.exit_code == 0, result.output
    assert "using the bundled open-base-llms dataset's Qwen1.5 family as reference" in result.output
    assert "5 target models" in result.output and "Doubling time of density" in result.output
    assert (out / "models.csv").exists()
