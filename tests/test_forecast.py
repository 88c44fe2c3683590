"""Forecasts (bayes_densing.analyses.forecast, `bayes-densing forecast`, figures.forecast):
the date algebra on hand-made posteriors, the new-model draw against the frontier's definition,
a small coverage study on prior-predictive datasets, and the command on a real posterior.

The full coverage study (100 datasets per estimand) is ``benchmarks/forecast_coverage.py``;
its result is in benchmarks/README.md.
"""

import json
import math
import sys
from datetime import date, timedelta
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from typer.testing import CliRunner

from bayes_densing.model import laws
from bayes_densing import results
from bayes_densing.results import rundir
from bayes_densing.analyses import forecast as fc
from bayes_densing.cli.app import app
from bayes_densing.config import Config
from bayes_densing.results import Run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import forecast_coverage  # noqa: E402

ORIGIN = date(2023, 2, 24)          # Config().model.date_origin
T_TARGETS = np.array([0.0, 6.0, 12.0, 18.0])     # months from the origin
REF_SIZES = np.array([0.5, 2.0, 8.0, 32.0])


def _when(t: float) -> str:
    return (ORIGIN + timedelta(days=round(t * laws.DAYS_PER_MONTH))).isoformat()


def _run(posterior: dict, trend: str = "frontier", **set_) -> Run:
    """A run as results.load_run returns it, from hand-made draws (1 chain), with four
    reference models (ρ = 1) and the targets at T_TARGETS on one benchmark (chance 0.25)."""
    n = len(np.atleast_1d(next(iter(posterior.values()))))
    eta = np.tile(np.log([3.0, 4.0, 5.0, 6.0]), (n, 1))     # targets of 1B: ln ρ = η
    post = {"log_effective_size": eta, "log_density": eta, **posterior}
    idata = az.from_dict({"posterior": {k: np.asarray(v)[None] for k, v in post.items()}})
    names = [f"ref-{s:g}b" for s in REF_SIZES] + ["org/t0", "org/t1", "org/t2", "org/t3"]
    t = np.concatenate([np.zeros(len(REF_SIZES)), T_TARGETS])
    idata["constant_data"] = xr.Dataset({
        "model_name": ("model", np.array(names)),
        "role": ("model", np.array(["reference"] * 4 + ["target"] * 4)),
        "params": ("model", np.concatenate([REF_SIZES, [1.0, 1.0, 1.0, 1.0]])),
        "t_months": ("model", t),
        "release_date": ("model", np.array([_when(x) for x in t])),
        "chance": ("benchmark", np.array([0.25]))}, coords={"benchmark": ["mmlu"]})
    cfg = Config()
    cfg.set("model.trend", trend)
    for key, value in set_.items():
        cfg.set(f"model.{key}", value)
    return Run(idata=idata, models=pd.DataFrame(), trend=pd.DataFrame(), diagnostics={},
               config=cfg)


def _frontier(A, B, n=400, **extra):
    return {"A": np.full(n, A), "B": np.full(n, B), "sigma_v": np.full(n, 0.2),
            "sigma_u": np.full(n, 0.4), **extra}


def test_the_date_of_a_match_is_exact_for_a_known_line():
    """ln ρ = 0.1 t − 1: a 2B model matches org/t3 (N̂ = 6B) when ln 2 + 0.1 t − 1 = ln 6."""
    f = fc.forecast(_run(_frontier(0.1, -1.0)), at=[_when(30.0)], params=2.0, match="t3")
    t = (math.log(6.0) - math.log(2.0) + 1.0) / 0.1
    r = f.reach[0]
    assert r.what == "org/t3" and r.p_reachable == 1.0 and r.p_already == 0.0
    assert r.t_months["median"] == pytest.approx(t) and r.date["median"] == _when(t)
    assert r.needed_size["median"] == pytest.approx(6.0)
    a = f.at[0]
    assert a.t_months == pytest.approx(30.0, abs=0.02)       # a date is a whole day
    assert a.frontier_log["median"] == pytest.approx(0.1 * a.t_months - 1.0)
    assert a.frontier_density["median"] == pytest.approx(math.exp(0.1 * a.t_months - 1.0))
    assert a.effective_params["median"] == pytest.approx(2.0 * a.frontier_density["median"])
    assert a.months_after_data == pytest.approx(a.t_months - 18.0) and not a.extrapolated
    assert fc.forecast(_run(_frontier(0.1, -1.0)), at=[_when(37.0)]).at[0].extrapolated
    # a reference model's effective size is its size (ρ = 1)
    ref = fc.forecast(_run(_frontier(0.1, -1.0)), params=2.0, match="ref-32b").reach[0]
    assert ref.t_months["median"] == pytest.approx((math.log(16.0) + 1.0) / 0.1)
    assert ref.p_above_largest_reference == 0.0


def test_a_falling_or_flat_trend_never_reaches_and_a_date_already_passed_is_counted():
    A = np.array([-0.05, 0.0, 0.1, 0.1])
    f = fc.forecast(_run(_frontier(A, -1.0, n=4)), params=2.0, match="org/t3")
    r = f.reach[0]
    assert r.p_reachable == 0.5
    none = fc.forecast(_run(_frontier(-0.05, -1.0)), params=2.0, match="org/t3").reach[0]
    assert none.p_reachable == 0.0 and none.date["median"] == "n/a"
    assert "P(reachable) < 0.001" in fc.r_text(none, fc.forecast(_run(_frontier(-0.05, -1.0)),
                                                                  at=[_when(20)]))[2]
    # a big model is already past org/t3 at the last target's release (t = 18)
    big = fc.forecast(_run(_frontier(0.1, -1.0)), params=50.0, match="org/t3").reach[0]
    assert big.p_reachable == 1.0 and big.p_already == 1.0
    assert fc.crossing_time(0.0, np.array([1.0, np.nan]), np.array([0.0, 0.1]), 0.0, 0.0)[0] == np.inf
    assert np.isnan(fc.crossing_time(0.0, np.array([np.nan]), np.array([0.1]), 0.0, 0.0)[0])
    assert np.isnan(fc.crossing_time(0.0, np.array([1.0]), np.array([np.nan]), 0.0, 0.0)[0])


def _curves(n=400, ceiling_frac=None):
    """One benchmark's curve parameters (score-only mode, no data term)."""
    p = {"z_centre": np.full((n, 1), 0.2), "z_gain": np.full((n, 1), 3.0),
         "alpha": np.full((n, 1), 0.3)}
    if ceiling_frac is not None:
        p["ceiling_frac"] = np.full((n, 1), ceiling_frac)
    return p


def test_a_score_is_read_off_the_run_curves_and_one_above_the_ceiling_is_unreachable():
    from bayes_densing.model.curves import curve_parameters

    run = _run({**_frontier(0.1, -1.0), **_curves(ceiling_frac=0.8)}, ceiling="free")
    coefs, l, gamma, c = curve_parameters(results.curve_draws(run.idata), REF_SIZES,
                                          np.array([0.25]), 1.0, xp=np)
    S = float(laws.performance(laws.loss_law(10.0, 1.0, **{k: np.ravel(v)[0] if np.ndim(v)
                                                          else v for k, v in coefs.items()}),
                               c[0, 0], gamma[0, 0], l[0, 0], 0.25))
    r = fc.forecast(run, params=2.0, score=S, benchmark="mmlu").reach[0]
    assert r.needed_size["median"] == pytest.approx(10.0, rel=1e-6)
    assert r.t_months["median"] == pytest.approx((math.log(5.0) + 1.0) / 0.1, rel=1e-6)
    assert r.p_reachable == 1.0 and not r.offset_included
    assert r.curve_size["median"] == pytest.approx(10.0, rel=1e-6)
    # with target offsets a target scores S from N̂ = N·e^(−δ): δ = −0.5 needs e^0.5 more
    off = _run({**_frontier(0.1, -1.0), **_curves(ceiling_frac=0.8),
                "target_offset": np.full((400, 1), -0.5)}, ceiling="free")
    r = fc.forecast(off, params=2.0, score=S, benchmark="mmlu").reach[0]
    assert r.offset_included and r.curve_size["median"] == pytest.approx(10.0, rel=1e-6)
    assert r.needed_size["median"] == pytest.approx(10.0 * math.exp(0.5), rel=1e-6)
    ceiling = 0.25 + 0.75 * 0.8
    above = fc.forecast(run, params=2.0, score=ceiling + 0.01, benchmark="mmlu")
    r = above.reach[0]
    assert r.p_above_ceiling == 1.0 and r.p_reachable == 0.0
    assert "at or above the curve's ceiling" in above.text()
    chance = fc.forecast(run, params=2.0, score=0.2, benchmark="mmlu").reach[0]
    assert chance.p_below_chance == 1.0 and chance.p_reachable == 0.0
    # a score needing more than the largest reference (32B) is flagged as extrapolated
    high = float(laws.performance(laws.loss_law(100.0, 1.0, **{
        k: np.ravel(v)[0] if np.ndim(v) else v for k, v in coefs.items()}),
        c[0, 0], gamma[0, 0], l[0, 0], 0.25))
    far = fc.forecast(run, params=2.0, score=high, benchmark="mmlu").reach[0]
    assert far.p_above_largest_reference == 1.0
    assert any("above the largest reference model (32B)" in x for x in far.extrapolated)
    # a task (benchmark@source) is found by its benchmark's name when the run has one such task
    task = run.idata.constant_data.to_dataset().assign_coords(benchmark=["mmlu@swallow"])
    run.idata["constant_data"] = task
    r = fc.forecast(run, params=2.0, score=S, benchmark="mmlu").reach[0]
    assert r.needed_size["median"] == pytest.approx(10.0, rel=1e-6)


def test_changepoint_forecasts_follow_the_last_segment():
    n = 200
    run = _run({"A_before": np.full(n, 0.02), "A_after": np.full(n, 0.2), "A": np.full(n, 0.2),
                "B_change": np.full(n, 0.0), "B": np.full(n, 0.0),
                "sigma_v": np.full(n, 0.2), "sigma_u": np.full(n, 0.4)},
               trend="changepoint", changepoint="2023-08-24")
    t_change = float(run.config.model.months("2023-08-24"))
    f = fc.forecast(run, at=[_when(24.0)], params=1.0, match="org/t3")
    # the broken line at the date: B_change + A_after (t − t_change) (one day's rounding)
    assert f.at[0].frontier_log["median"] == pytest.approx(0.2 * (24.0 - t_change), abs=0.01)
    # the match on the last segment: ln 1 + 0.2 (t − t_change) = ln 6
    assert f.reach[0].t_months["median"] == pytest.approx(t_change + math.log(6.0) / 0.2)


def test_envelope_forecasts_use_each_draw_envelope_line_and_the_mean_trend_scatter():
    """Envelope: μ(t) is each draw's OLS over its running-max envelope; a new model scatters
    about the model's own (mean) trend with its σ."""
    n = 300
    rng = np.random.default_rng(3)
    log_rho = 0.05 * T_TARGETS + rng.normal(0, 0.3, (n, 4))
    run = _run({"A": np.full(n, 0.05), "B": np.full(n, 0.0), "sigma": np.full(n, 0.3),
                "log_density": log_rho}, trend="envelope")
    A, B = laws.envelope_trend(T_TARGETS, log_rho)
    mu = fc.frontier_draws(run.idata, run.config, [30.0])[:, 0]
    np.testing.assert_allclose(mu, A * 30.0 + B)
    new = fc.predictive_at(run.idata, run.config, [30.0])[:, 0]
    assert np.mean(new) == pytest.approx(0.05 * 30.0, abs=0.05)
    assert np.std(new) == pytest.approx(0.3, rel=0.15)


def test_the_new_model_draw_is_the_frontier_composed_error():
    """The skew-normal draw against v − u drawn directly (v ~ N(0, σ_v), u ~ HalfNormal(σ_u)),
    two-sample KS at a fixed seed (a 0.1% test), and a normal for the mean trend; a release
    group's σ_group adds its variance and is a no-op when absent."""
    rng = np.random.default_rng(0)
    n, sv, su = 20000, 0.3, 0.7
    y = fc.new_model_draws(np.full(n, 1.0), rng=rng, sigma_v=sv, sigma_u=su)
    direct = 1.0 + rng.normal(0, sv, n) - np.abs(rng.normal(0, su, n))
    assert stats.ks_2samp(y, direct).pvalue > 0.001
    flipped = 1.0 + rng.normal(0, sv, n) + np.abs(rng.normal(0, su, n))   # the wrong sign
    assert stats.ks_2samp(y, flipped).pvalue < 1e-6
    assert np.mean(y) == pytest.approx(1.0 - su * math.sqrt(2 / math.pi), abs=0.02)
    normal = fc.new_model_draws(np.zeros(n), rng=rng, sigma=0.5)
    assert np.std(normal) == pytest.approx(0.5, rel=0.03)
    grouped = fc.new_model_draws(np.zeros(n), rng=rng, sigma=0.5, sigma_group=1.2)
    assert np.var(grouped) == pytest.approx(0.25 + 1.44, rel=0.05)
    base = _frontier(0.1, -1.0, n=4000)
    plain = fc.predictive_at(_run(base).idata, _run(base).config, [24.0])
    again = fc.predictive_at(_run(base).idata, _run(base).config, [24.0])
    np.testing.assert_array_equal(plain, again)
    group = _run({**base, "sigma_group": np.full(4000, 1.0)})
    assert np.var(fc.predictive_at(group.idata, group.config, [24.0])) > np.var(plain) + 0.8
    assert fc.forecast(group, at=[_when(24.0)]).release_group


def test_the_figure_marks_the_dates_and_both_bands():
    from bayes_densing.figures.forecast import forecast_figure

    run = _run(_frontier(0.1, -1.0))
    f = fc.forecast(run, at=[_when(24.0), _when(30.0)], params=2.0, match="org/t3")
    fig = forecast_figure(run, f)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    for text in ("90% predictive HDI", "frontier μ(t): 90% HDI", "forecast date",
                 "last target's release", "2B model reaches t3"):
        assert any(text in x for x in labels), (text, labels)
    # the band runs on to the latest forecast date
    import matplotlib.dates as mdates
    assert mdates.num2date(ax.get_xlim()[1]).date() >= date.fromisoformat(_when(30.0))
    assert ax.get_yscale() == "log"


@pytest.mark.parametrize("kwargs, message", [
    ({"at": ["2022-01-01"]}, "before the data"),
    ({"at": ["2024-02-30"]}, "is not a date"),
    ({"params": 2.0, "match": "org/t9"}, "did you mean org/t"),
    ({"match": "org/t3"}, "need --params"),
    ({"params": 2.0, "score": 1.0, "benchmark": "mmlu"}, "must lie in (0, 1)"),
    ({"params": 2.0, "score": 0.5, "benchmark": "mmlu_pro"}, "did you mean mmlu"),
    ({"params": 2.0, "score": 0.5}, "go together"),
    ({"params": -1.0, "at": ["2024-01-01"]}, "positive"),
])
def test_bad_requests_are_refused(kwargs, message):
    with pytest.raises(fc.ForecastError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fc.forecast(_run(_frontier(0.1, -1.0)), **kwargs)


# --- the small coverage study and the command on a real posterior ---------------------------------

N_DATASETS = 12
FALSE_ALARM = 0.01


@pytest.fixture(scope="module")
def small_study():
    """12 prior-predictive datasets (12 targets, 2 benchmarks), 2 × (100 + 100) draws each,
    fitted jointly (exact when the model holds); forecasts 12 months past the last target."""
    cfg = Config()
    cfg.set("model.data_term", "off")
    cfg.set("model.curves", "joint")
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = 2, 100, 100
    return forecast_coverage.study(N_DATASETS, cfg, n_targets=12, n_benchmarks=2, fresh=200,
                                   keep_last=True), cfg


def test_small_coverage_study_shows_no_gross_miscalibration(small_study):
    """μ(t_f) and one fresh model per dataset against the two-sided binomial tolerance at a
    1% false-alarm rate each (12 datasets: only gross under-coverage, 7 or fewer of 12, is
    detectable). The 200 fresh models per dataset are not judged here: a dataset's coverage
    of them is skewed (most near 1, a few far below), so a few datasets' mean says little;
    the 100-dataset study judges them (benchmarks/README.md). They must still be covered more
    often by the predictive band than by the frontier's band alone."""
    fits = small_study[0]["fits"]
    s = forecast_coverage.summary(fits, FALSE_ALARM)
    assert s["mu"]["n"] == N_DATASETS and s["mu"]["within"], s["mu"]
    assert s["new"]["within"], s["new"]
    assert s["new_fresh"]["rate"] > s["new_fresh_by_frontier_band"]["rate"] + 0.05, s
    assert s["new"]["mean_width"] > s["mu"]["mean_width"]


def test_the_tolerance_flags_a_rate_far_from_ninety_percent():
    fits = [{"mu_covered": k < 6, "new_covered": True, "mu_width": 1.0, "new_width": 2.0,
             "mu_error": 0.0, "fresh_covered": 100, "fresh_n": 200} for k in range(12)]
    s = forecast_coverage.summary(fits, FALSE_ALARM)
    assert not s["mu"]["within"] and not s["new_fresh"]["within_clustered"]
    assert forecast_coverage.tolerance(100) == pytest.approx([0.82, 0.97], abs=0.011)


@pytest.fixture(scope="module")
def real_run(small_study, tmp_path_factory):
    """The last study fit written as a run directory (nothing re-sampled)."""
    idata, data = small_study[0]["last"]
    cfg = small_study[1]
    idata = idata.copy()
    idata["constant_data"] = results.constant_data(data)
    out = tmp_path_factory.mktemp("forecast") / "run"
    out.mkdir()
    results.write_run(out, idata=idata, models=results.models_table(idata, data, cfg),
                      trend=results.trend_table(idata, data, cfg),
                      diagnostics={"estimand": "joint"}, config=cfg, summary="")
    return out, data


def test_the_command_on_a_run_prints_a_forecast_and_draws_the_figure(real_run):
    out, data = real_run
    last = data.targets.release_date.max()
    at = (last + pd.Timedelta(days=365)).strftime("%Y-%m-%d")
    name = str(data.targets.model.iloc[-1])
    runner = CliRunner()
    result = runner.invoke(app, ["forecast", str(out), "--at", at, "--params", "3",
                                 "--match", name], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert at in result.output and f"match {name}?" in result.output
    assert "P(reachable)" in result.output and "90% HDI" in result.output
    png = out / "figures" / "forecast.png"
    assert png.stat().st_size > 20_000 and "figures/forecast.png" in rundir.derived_files(out)
    as_json = runner.invoke(app, ["forecast", str(out), "--at", at, "--json", "--no-figure"])
    d = json.loads(as_json.stdout)
    assert d["at"][0]["date"] == at and d["trend"] == "frontier"
    lo, hi = d["at"][0]["frontier_log"]["low"], d["at"][0]["frontier_log"]["high"]
    mu = fc.frontier_draws(results.load_run(out).idata, Config(), Config().model.months([at]))
    assert lo < float(np.median(mu)) < hi


@pytest.mark.parametrize("extra, message", [
    (["--at", "2000-01-01"], "before the data"),
    (["--params", "3", "--match", "sim-000"], "did you mean"),
    (["--params", "3", "--score", "0.5", "--benchmark", "mmlux"], "did you mean"),
    (["--params", "3", "--score", "1.5", "--benchmark", "mmlu"], "must lie in (0, 1)"),
    ([], "give --at"),
])
def test_the_command_refuses_bad_input_in_one_line(real_run, extra, message):
    result = CliRunner().invoke(app, ["forecast", str(real_run[0]), *extra])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_the_command_refuses_a_directory_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["forecast", str(tmp_path), "--at", "2025-01-01"])
    assert result.exit_code == 2 and "not a complete run directory" in result.output
