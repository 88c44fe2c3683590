"""Sensitivity analysis: --vary parsing and up-front validation, a real tiny one-at-a-time sweep
(run dirs, table, tornado), failing variants, power-scaling prior sensitivity, the CLI.

Fits are tiny (conftest: 2 chains × 60 draws, 12 simulated targets). The real sweep fits two
models (the base, and one prior scale; the other value equals the base, and D0 without a data
term is the base's posterior, so neither is re-run); the CLI test replays lib_run's posterior
instead of sampling.
"""

from __future__ import annotations

import json
import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

import bayes_densing.run as run_mod
from bayes_densing.figures.run_set import draw_sweep
from bayes_densing.results import rundir
from bayes_densing.analyses import sensitivity as sens
from bayes_densing.analyses.prior_sensitivity import THRESHOLD, power_scaling, verdict
from bayes_densing.cli.app import app
from bayes_densing.config import ConfigError


@pytest.fixture
def no_fit(monkeypatch):
    """run.fit must not be reached: the input should be refused before anything is fitted."""
    def forbidden(*args, **kwargs):
        raise AssertionError("run.fit was called, but the --vary should have been refused first")

    monkeypatch.setattr(run_mod, "fit", forbidden)


# --- parsing and up-front validation -------------------------------------------------------------

def test_aliases_and_dotted_keys_parse():
    v = sens.parse_vary("trend = frontier, envelope,mean")
    assert (v.key, v.setting, v.values) == ("trend", "model.trend", ["frontier", "envelope", "mean"])
    assert sens.parse_vary("d0=0.3,1,3").setting == "model.d0"
    assert sens.parse_vary("reference=Qwen1.5,Llama-2").setting == "data.reference"
    assert sens.parse_vary("leave_out=A").setting == "data.exclude_families"
    assert sens.parse_vary("drop_family=A").setting == "data.exclude_families"
    assert sens.parse_vary("drop_model=m1").setting == "data.exclude_models"
    assert sens.parse_vary("since=2023-06-01").setting == "data.since"
    v = sens.parse_vary("priors.slope_sd=0.15,0.6")
    assert (v.setting, v.values) == ("priors.slope_sd", ["0.15", "0.6"])


def test_the_estimand_is_a_setting_to_vary(small_config):
    variants = sens.build_variants(small_config(), sens.parse_varies(["curves=cut"]))
    assert [(v.name, v.config.model.curves) for v in variants] == [("base", "joint"),
                                                                   ("curves=cut", "cut")]


def test_variants_apply_values_one_at_a_time(small_config):
    base = small_config()
    variants = sens.build_variants(base, sens.parse_varies(
        ["benchmarks=mmlu+gsm8k,mmlu+bbh", "drop_family=SimFam0", "priors.slope_sd=0.15,0.6",
         "d0=3"]))
    names = [v.name for v in variants]
    assert names == ["base", "benchmarks=mmlu+gsm8k", "benchmarks=mmlu+bbh", "drop_family=SimFam0",
                     "priors.slope_sd=0.15", "priors.slope_sd=0.6", "d0=3"]
    by = {v.name: v.config for v in variants}
    assert by["benchmarks=mmlu+gsm8k"].data.benchmarks == ["mmlu", "gsm8k"]
    assert by["drop_family=SimFam0"].data.exclude_families == ["SimFam0"]
    assert by["priors.slope_sd=0.6"].priors.slope_sd == 0.6
    assert by["d0=3"].model.d0 == 3.0
    # one at a time: every other setting stays at the base's
    assert by["d0=3"].priors.slope_sd == base.priors.slope_sd
    assert by["priors.slope_sd=0.6"].model.d0 == base.model.d0
    assert base.priors.slope_sd == 0.3 and base.data.benchmarks == []   # the base is untouched


@pytest.mark.parametrize("spec, words", [
    ("nosuchkey=1,2", ["nosuchkey", "unknown key", "trend"]),
    ("priors.nope=1", ["nope", "slope_sd"]),
    ("bogus.key=1", ["bogus", "section"]),
    ("trend", ["KEY=v1,v2"]),
    ("trend=", ["no values"]),
    ("trend=frontier,bogus", ["trend=bogus", "frontier"]),
    ("d0=-1", ["d0=-1", "positive"]),
    ("d0=abc", ["d0=abc", "float"]),
    ("since=yesterday", ["since=yesterday", "YYYY-MM-DD"]),
    ("likelihood=gaussian", ["likelihood=gaussian", "robust"]),
])
def test_bad_vary_is_a_config_error_before_any_fit(spec, words, small_config, synth, tmp_path,
                                                   no_fit):
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError) as exc:
        sens.sensitivity(small_config(), [spec], synth.csv, out=out, quiet=True)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("spec, words", [
    ("reference=NoSuchFamily", ["reference=NoSuchFamily", "not found", "SimRef"]),
    ("drop_family=NoSuchFamily", ["drop_family=NoSuchFamily", "SimFam0"]),
    ("benchmarks=mmlu+bbh", ["benchmarks=mmlu+bbh", "bbh", "arc_challenge"]),
])
def test_names_not_in_the_data_are_refused_up_front(spec, words, small_config, synth, tmp_path,
                                                    no_fit):
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError) as exc:
        sens.sensitivity(small_config(), ["priors.slope_sd=1.0", spec], synth.csv, out=out,
                         quiet=True)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
    assert not out.exists()


def test_a_key_varied_twice_is_refused():
    with pytest.raises(ConfigError, match="already varied"):
        sens.parse_varies(["trend=mean", "model.trend=envelope"])


def test_prepare_marks_duplicates_of_the_base_and_records_data_failures(small_config, synth):
    variants = sens.prepare(small_config(), ["priors.slope_sd=0.3,1.0", "until=2000-01-01",
                                             "reference=SimRef"], synth.csv)
    by = {v.name: v for v in variants}
    assert by["priors.slope_sd=0.3"].same_as == "base"       # the base's own value
    assert by["priors.slope_sd=1.0"].same_as == "" and by["priors.slope_sd=1.0"].data is not None
    assert by["reference=SimRef"].error == "" and by["reference=SimRef"].data.n_ref == 8
    assert "no target models" in by["until=2000-01-01"].error
    assert by["until=2000-01-01"].base_value == "default"              # no upper bound
    assert by["priors.slope_sd=1.0"].base_value == "0.3"


def test_d0_without_a_data_term_is_the_base_posterior_and_not_refitted(small_config, synth):
    cfg = small_config()                      # conftest: model.data_term = "off"
    by = {v.name: v for v in sens.prepare(cfg, ["d0=0.3,3"], synth.csv)}
    for name in ("d0=0.3", "d0=3"):
        assert by[name].same_as == "base" and by[name].same_because == sens.NO_DATA_TERM
    by = {v.name: v for v in sens.prepare(cfg, ["priors.slope_sd=0.3"], synth.csv)}
    assert by["priors.slope_sd=0.3"].same_as == "base"                  # the base's own value
    assert by["priors.slope_sd=0.3"].same_because == ""                 # not for want of D0
    # with the data term (the simulated references have tokens) D0 moves the loss law
    cfg.set("model.data_term", "auto")
    by = {v.name: v for v in sens.prepare(cfg, ["d0=0.3,3"], synth.csv)}
    assert by["d0=0.3"].same_as == "" and by["d0=3"].same_as == ""


def test_prepare_lets_the_envelope_trend_read_the_mean_trends_draws(small_config, synth):
    variants = sens.prepare(small_config(), ["trend=frontier,envelope,mean",
                                             "priors.slope_sd=1.0"], synth.csv)
    by = {v.name: v for v in variants}
    assert by["trend=frontier"].same_as == "base"             # the default trend
    assert by["trend=envelope"].draws_of == ""                # nothing to share yet
    assert by["trend=mean"].draws_of == "trend=envelope"      # the same model, sampled once
    assert by["priors.slope_sd=1.0"].draws_of == "" and by["base"].draws_of == ""
    # a different prior is a different posterior, whatever the trend rule
    mean = by["trend=mean"].config.to_dict()
    assert sens.same_posterior(mean, by["trend=envelope"].config.to_dict())
    assert not sens.same_posterior(mean, by["base"].config.to_dict())
    other = {**mean, "priors": {**mean["priors"], "slope_sd": 1.0}}
    assert not sens.same_posterior(other, by["trend=envelope"].config.to_dict())


def test_the_envelope_variant_is_summarised_from_the_mean_trends_draws(small_config, synth,
                                                                      tmp_path, monkeypatch):
    calls = []
    real_sample = run_mod.sample

    def counting(model, cfg, **kwargs):
        calls.append(cfg)
        return real_sample(model, cfg, **kwargs)

    monkeypatch.setattr(run_mod, "sample", counting)
    cfg = small_config()
    cfg.set("model.trend", "mean")
    lines: list[str] = []
    out = tmp_path / "sweep"
    result = sens.sensitivity(cfg, ["trend=envelope"], synth.csv, out=out, prior_scaling=False,
                              echo=lines.append)
    assert len(calls) == 1                                     # one posterior, sampled once
    assert "trend=envelope: " in lines[1] and "the draws of base, not re-sampled" in lines[1]
    base = az.from_netcdf(out / "variants" / "base" / "posterior.nc")
    envelope = az.from_netcdf(out / "variants" / "trend=envelope" / "posterior.nc")
    np.testing.assert_array_equal(base.posterior["A"].values, envelope.posterior["A"].values)
    assert "constant_data" in envelope.children and "posterior_predictive" in envelope.children
    rows = result.table.set_index("variant")
    assert np.isfinite(rows.median_months).all()
    # the same draws read by two rules: the envelope's per-draw OLS is not the mean trend's A
    assert rows.median_months["trend=envelope"] != rows.median_months["base"]
    assert "trend = \"envelope\"" in (out / "variants" / "trend=envelope" / "config.toml"
                                       ).read_text()


# --- a real tiny sweep ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweep(tmp_path_factory, synth, small_config):
    out = tmp_path_factory.mktemp("sens") / "sweep"
    lines: list[str] = []
    result = sens.sensitivity(small_config(), ["priors.slope_sd=0.3,1.0", "since=2099-01-01",
                                               "d0=3"],
                              synth.csv, out=out, prior_scaling=False, echo=lines.append)
    result.figures = draw_sweep(out)        # as the CLI does after the sweep
    return result, out, lines


def test_sweep_writes_one_run_dir_per_fitted_variant(sweep):
    result, out, lines = sweep
    assert result.out == out and out.is_dir()
    runs = out / "variants"
    assert sorted(p.name for p in runs.iterdir()) == ["base", "priors.slope_sd=1.0"]
    for name in ("base", "priors.slope_sd=1.0"):
        assert (runs / name / "posterior.nc").exists() and (runs / name / "config.toml").exists()
        assert rundir.verify(runs / name)["kind"] == "run"     # a run directory, as `sample`'s
    assert "slope_sd = 1.0" in (runs / "priors.slope_sd=1.0" / "config.toml").read_text()
    assert not list(out.rglob(".*partial*"))                  # no temporary leftovers
    # what is not fitted first (its own value, a failed window, D0 without a data term)
    assert lines[0] == "priors.slope_sd=0.3: same as base, not re-run"
    assert lines[1].startswith("since=2099-01-01 failed: ")
    assert lines[2] == f"d0=3: same as base: {sens.NO_DATA_TERM}, not re-run"
    assert len(lines) == 5 and lines[3].startswith("[1/2; ~") and "] base: " in lines[3]
    assert "months (90% HDI" in lines[4] and "] priors.slope_sd=1.0: " in lines[4]


def test_sweep_table_has_a_row_per_variant_with_finite_medians(sweep):
    result, out, _ = sweep
    table = pd.read_csv(out / "sensitivity.csv", keep_default_na=False, na_values=[""])
    assert list(table.variant) == ["base", "priors.slope_sd=0.3", "priors.slope_sd=1.0",
                                   "since=2099-01-01", "d0=3"]
    assert list(table.columns) == sens.COLUMNS
    ok = table.iloc[:3]
    assert np.isfinite(ok.median_months).all() and (ok.median_months > 0).all()
    assert (ok.hdi_low < ok.median_months).all() and (ok.median_months < ok.hdi_high).all()
    assert ok["p_leq_3.3"].between(0, 1).all() and ok["p_leq_3.5"].between(0, 1).all()
    assert ok.shift_months.iloc[0] == 0 and ok.shift_months.iloc[1] == 0
    assert ok.shift_months.iloc[2] == pytest.approx(ok.median_months.iloc[2]
                                                    - ok.median_months.iloc[0])
    assert list(ok.run_dir) == ["variants/base", "variants/base", "variants/priors.slope_sd=1.0"]
    assert ok.median_months.iloc[0] == pytest.approx(result.base.doubling["median_months"])
    assert all(d == "OK" or d.startswith("PROBLEMS") for d in ok.diagnostics)
    doc = json.loads((out / "sensitivity.json").read_text())
    assert [r["variant"] for r in doc["variants"]] == list(table.variant)
    assert doc["variants"][3]["median_months"] is None            # NaN written as null
    assert doc["varied"][0]["setting"] == "priors.slope_sd"
    assert "base" in result.text() and "since=2099-01-01" in result.text()


def test_a_failing_variant_is_recorded_not_fatal(sweep):
    result, out, _ = sweep
    row = result.table.set_index("variant").loc["since=2099-01-01"]
    assert "no target models" in row.error and row.diagnostics == "failed"
    assert math.isnan(row.median_months) and row.run_dir == ""
    assert not (out / "variants" / "since=2099-01-01").exists()
    assert "failed: " in result.text()


def test_tornado_png_exists_and_names_what_it_shows(sweep):
    from bayes_densing.figures.sweeps import tornado

    result, out, _ = sweep
    png = out / "tornado.png"
    assert png.exists() and png.stat().st_size > 5000 and (out / "tornado.svg").exists()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig, paths = tornado(result.table, result.base_median)     # the same figure, unsaved
    assert paths == ()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "doubling time of density (months)"
    assert ax.get_title()
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[-1] == "priors.slope_sd"                      # widest span on top
    assert any(t.startswith("since") and "failed" in t for t in ticks)
    texts = [t.get_text() for t in ax.texts]
    assert "0.3 (base)" in texts and "1.0" in texts            # bar ends name the values
    assert any(t.strip().startswith("base ") for t in texts)
    lo, hi = ax.get_xlim()
    assert lo < result.base_median < hi


def test_tornado_handles_infinite_and_interior_values(tmp_path):
    from bayes_densing.figures.sweeps import tornado

    rows = [("base", "", "", "", 3.0, 2.5, 3.6, "base"),
            ("trend=envelope", "trend", "envelope", "frontier", 4.0, 3.0, 5.0, "trend=envelope"),
            ("trend=mean", "trend", "mean", "frontier", math.inf, 6.0, 40.0, "trend=mean"),
            ("d0=3", "d0", "3", "1", 3.2, 2.7, 3.9, "d0=3")]
    table = pd.DataFrame(rows, columns=["variant", "key", "value", "base_value", "median_months",
                                        "hdi_low", "hdi_high", "run_dir"]).assign(error="")
    fig, (png, svg) = tornado(table, 3.0, tmp_path / "t")
    assert png.exists() and svg.exists()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["d0", "trend"]
    texts = [t.get_text() for t in ax.texts]
    assert "mean (∞)" in texts and "frontier (base)" in texts and "envelope" in texts


# --- power-scaling prior sensitivity -------------------------------------------------------------

def _conjugate(prior_sd: float, n_draws: int = 2000, seed: int = 0) -> xr.DataTree:
    """y_i ~ N(μ, 1), i = 1..10, μ ~ N(0, prior_sd): exact posterior draws of μ."""
    rng = np.random.default_rng(seed)
    y = rng.normal(1.0, 1.0, 10)
    precision = 1.0 / prior_sd ** 2 + y.size
    mu = rng.normal(y.sum() / precision, precision ** -0.5, (2, n_draws // 2))
    return az.from_dict({"posterior": {"mu": mu},
                         "log_likelihood": {"y": -0.5 * (y[None, None, :] - mu[..., None]) ** 2},
                         "log_prior": {"mu": -0.5 * (mu / prior_sd) ** 2}})


def test_verdict_threshold_is_priorsense_s():
    assert THRESHOLD == 0.05
    assert verdict(0.05) == "prior-driven" and verdict(0.049) == "likelihood-dominated"


@pytest.mark.parametrize("prior_sd, expected", [(0.2, "prior-driven"), (0.1, "prior-driven"),
                                                (10.0, "likelihood-dominated"),
                                                (100.0, "likelihood-dominated")])
def test_power_scaling_tells_a_strong_prior_from_a_weak_one(prior_sd, expected):
    ps = power_scaling(_conjugate(prior_sd), slope="mu")
    row = ps.table.set_index("quantity").loc["mu"]
    assert row.verdict == expected and ps.doubling_verdict == expected
    if expected == "prior-driven":
        assert row.prior > 2 * THRESHOLD
    else:
        assert row.prior < THRESHOLD / 5
        assert row.likelihood > THRESHOLD          # the data drive it


def test_power_scaling_only_selected_prior_terms():
    idata = _conjugate(0.2)
    mu = idata.posterior["mu"].values
    idata.log_prior["vague"] = xr.Variable(("chain", "draw"), -0.5 * (mu / 100.0) ** 2)
    assert power_scaling(idata, slope="mu").doubling_verdict == "prior-driven"
    only_vague = power_scaling(idata, slope="mu", prior_terms=["vague"])
    assert only_vague.doubling_verdict == "likelihood-dominated"


def test_power_scaled_median_moves_the_known_way():
    """Strong prior N(0, 0.2) pulls μ (> 0) towards 0: weakening it (α = 0.5) raises μ, hence
    ln 2 / μ falls; strengthening it (α = 2) lowers μ. Exact answers from conjugacy."""
    idata = _conjugate(0.2, n_draws=4000)
    ps = power_scaling(idata, slope="mu")
    y = np.random.default_rng(0).normal(1.0, 1.0, 10)
    for s in ps.doubling["scaled"]:
        precision = s["alpha"] / 0.2 ** 2 + y.size
        exact = math.log(2) / (y.sum() / precision)
        assert s["median_months"] == pytest.approx(exact, rel=0.1), s
    half, double = ps.doubling["scaled"]
    assert half["median_months"] < ps.doubling["median_months"] < double["median_months"]
    assert "prior-driven" in ps.text()


def test_prior_sensitivity_on_a_real_tiny_run(lib_run, monkeypatch):
    import bayes_densing.analyses.prior_sensitivity as mod

    r = lib_run.result
    # the log densities, once (their JAX compilation is the slow part)
    log_prior, log_lik = mod.log_densities(r.idata, r.data, r.config)
    assert "trend_prior" in log_prior and "A" in log_prior      # the Potential counts as prior
    assert float(np.abs(log_prior["trend_prior"]).max()) > 0
    assert float(np.abs(log_prior["log_density_shifted"]).max()) == 0     # the Flat: zero
    assert log_lik["correct"].shape == (2, 60, len(r.data.obs))
    assert np.isfinite(log_lik["correct"].values).all()
    monkeypatch.setattr(mod, "log_densities", lambda *a: (log_prior, log_lik))

    ps = mod.prior_sensitivity(r.idata, r.data, r.config, prior_terms="all")
    t = ps.table.set_index("quantity")
    assert {"A_per_month", "B", "sigma_v", "sigma_u"} <= set(t.index)
    assert sum(q.startswith("log_effective_size[") for q in t.index) == 3
    assert np.isfinite(t.prior).all() and np.isfinite(t.likelihood).all()
    assert (t.prior >= 0).all()
    assert set(t.verdict) <= {"prior-driven", "likelihood-dominated"}
    assert ps.n_draws == 120
    d = ps.doubling
    assert d["median_months"] == pytest.approx(r.doubling["median_months"], rel=1e-9)
    assert [s["alpha"] for s in d["scaled"]] == list(mod.ALPHAS)
    assert all(np.isfinite(s["median_months"]) and np.isfinite(s["pareto_k"]) for s in d["scaled"])
    assert "trend_prior" in " ".join(ps.notes)
    json.dumps(ps.to_dict(), allow_nan=False)
    assert "Doubling time: " in ps.text()

    # without the trend Potential the slope's prior would be missed: a different answer
    monkeypatch.setattr(mod, "log_densities",
                        lambda *a: (log_prior.drop_vars("trend_prior"), log_lik))
    without = mod.prior_sensitivity(r.idata, r.data, r.config,
                                    prior_terms="all").table.set_index("quantity")
    assert t.prior["A_per_month"] != pytest.approx(without.prior["A_per_month"], rel=0.05)
    # the default scales the top-level priors only: no group-level term
    top = mod.prior_sensitivity(r.idata, r.data, r.config)
    scaled = top.notes[-1]
    assert "trend_prior" not in scaled and "alpha_x" not in scaled and "A" in scaled
    assert "alpha_mu" in scaled


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_sensitivity_runs(synth, small_args, tmp_path, replay_sampler):
    out = tmp_path / "cli_sweep"
    args = ["sensitivity", "--data", str(synth.csv), *small_args, "--vary",
            "priors.slope_sd=0.2,0.5", "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # the base is sampled as `sample` samples it; the two prior variants on one program with
    # the priors as its inputs (sweep.compile_sweep(setting_inputs=True)), not one fit each
    assert replay_sampler["n"] == 1
    assert "priors.slope_sd=0.5" in result.stdout and "Prior sensitivity" in result.stdout
    assert "Doubling time:" in result.stdout
    assert (out / "sensitivity.csv").exists() and (out / "tornado.png").exists()
    docs = [json.loads((out / "variants" / name / "result.json").read_text())
            for name in ("base", "priors.slope_sd=0.2", "priors.slope_sd=0.5")]
    # (the first prior variant builds it unless an earlier test in this process did)
    assert docs[0]["compile"]["programs"] == 0 and docs[2]["compile"]["programs"] == 0
    assert (out / "variants" / "priors.slope_sd=0.2" / "posterior.nc").exists()


@pytest.mark.parametrize("vary", ["nosuchkey=1", "trend=bogus", "reference=NoSuchFamily"])
def test_cli_bad_vary_exits_2(vary, synth, small_args, tmp_path, no_fit):
    out = tmp_path / "cli_bad"
    result = CliRunner().invoke(app, ["sensitivity", "--data", str(synth.csv), *small_args,
                                      "--vary", vary, "--out", str(out)])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: --vary ") and vary.split("=")[0] in last
    assert not out.exists()


def test_cli_sensitivity_help_has_an_example():
    result = CliRunner().invoke(app, ["sensitivity", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "bayes-densing sensitivity --vary" in result.stdout and "--prior-scaling" in result.stdout
