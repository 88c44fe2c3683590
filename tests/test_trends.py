"""Every trend form, the robust likelihood and observed-loss mode build, sample and summarise.

Tiny fits (plumbing, not statistics): 2 chains × 60 draws on simulated data. The changepoint
fit and the combined observed-loss / robust / free-ceiling fit are session fixtures
(conftest.py), shared with test_plots.py.
"""

import numpy as np
import pytest

from bayes_densing.data import assemble
from bayes_densing.inference.sample import SamplerError, select_device
from bayes_densing.model import ModelError
from bayes_densing.model.build import build_model
from bayes_densing.run import fit


def run(df, cfg):
    data = assemble(df, cfg, source="synthetic")
    return fit(cfg, data=data, progressbar=False)


# "mean" samples the same model as "envelope" (only the slope is read differently): slow only
@pytest.mark.parametrize("trend", [pytest.param("mean", marks=pytest.mark.slow), "envelope"])
def test_trend_forms_sample_and_report_a_slope(trend, tiny, synthetic):
    df, truth = synthetic()
    result = run(df, tiny(trend=trend))
    t = result.trend.set_index("parameter")
    assert np.isfinite(t.loc["A_per_month", "median"])
    assert "sigma" in t.index and "sigma_u" not in t.index
    if trend == "envelope":  # the paper's rule per draw, beside the model's own mean trend
        assert "A_mean_trend_per_month" in t.index
        assert t.loc["A_per_month", "median"] != t.loc["A_mean_trend_per_month", "median"]


def test_changepoint_reports_the_slope_ratio(changepoint_fit):
    result = changepoint_fit.result
    t = result.trend.set_index("parameter")
    assert {"A_before", "A_after", "slope_ratio"} <= set(t.index)
    assert "slope after / before" in result.summary


def test_changepoint_needs_targets_on_both_sides(tiny, synthetic):
    df, _ = synthetic()  # all targets after 2022-11-30
    data = assemble(df, tiny(trend="changepoint"), source="synthetic")
    with pytest.raises(ModelError, match="on each side of 2022-11-30"):
        build_model(data, tiny(trend="changepoint"))


def test_robust_likelihood_samples_an_outlier_rate_per_role(loss_robust_fit):
    result = loss_robust_fit.result
    for role in ("reference", "target"):     # each module of the cut has its own
        rate = result.idata.posterior[f"outlier_rate_{role}"].values
        assert np.all((rate > 0) & (rate < 1))
    assert result.idata.posterior_predictive["correct"].shape[-1] == len(result.data.obs)


def test_observed_loss_mode_frees_the_loss_scale(loss_robust_fit):
    post = loss_robust_fit.result.idata.posterior
    assert {"a", "E", "sigma_loss"} <= set(post.data_vars)


def test_free_ceiling_is_bounded_by_the_floor(loss_robust_fit):
    result = loss_robust_fit.result
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
def test_missing_optional_sampler_is_a_clear_error(sampler, tiny, synthetic):
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

    from bayes_densing.cli.app import app
    from tests.test_data import TARGETS_ONLY

    csv = tmp_path / "mine.csv"
    csv.write_text(TARGETS_ONLY)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["sample", "--data", str(csv), "--out", str(out), "--chains", "2",
                                      "--draws", "60", "--tune", "60", "--quiet", "--allow-warnings",
                                      "--no-figures"])
    assert result.exit_code == 0, result.output
    assert "using the bundled open-base-llms dataset's Qwen1.5 family as reference" in result.output
    assert "5 target models" in result.output and "Doubling time of density" in result.output
    assert (out / "models.csv").exists()
