"""The doubling claim (bayes_densing.analyses.claim and `bayes-densing claim`)."""

import json
import re
import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from bayes_densing.model import laws
from bayes_densing import results
from bayes_densing.analyses.claim import claim
from bayes_densing.cli.app import app
from bayes_densing.config import Config
from bayes_densing.results import Run


def _run(posterior: dict, trend: str, constant: dict | None = None) -> Run:
    """A run as results.load_run returns it, from hand-made draws (1 chain)."""
    idata = az.from_dict({"posterior": {k: np.asarray(v)[None] for k, v in posterior.items()}})
    if constant:
        idata["constant_data"] = xr.Dataset({k: ("model", np.asarray(v))
                                             for k, v in constant.items()})
    cfg = Config()
    cfg.set("model.trend", trend)
    return Run(idata=idata, models=pd.DataFrame(), trend=pd.DataFrame(), diagnostics={},
               config=cfg)


def test_probabilities_and_intervals_match_the_draws():
    rng = np.random.default_rng(0)
    A = rng.normal(0.15, 0.04, 20000)            # per month; a few draws ≤ 0
    A[:20] = -0.01
    c = claim(_run({"A": A}, "frontier"), months=[3.3, 4.0, 6.0])
    T = np.where(A > 0, math.log(2) / np.where(A > 0, A, 1), np.inf)
    for m in (3.3, 4.0, 6.0):
        assert c.p_leq[f"{m:g}"] == pytest.approx(np.mean(T <= m), abs=1e-12)
    assert c.p_leq["3.3"] < c.p_leq["4"] < c.p_leq["6"]
    n_none = int((A <= 0).sum())
    assert n_none >= 20 and c.p_no_growth == pytest.approx(n_none / 20000)
    assert c.median_months == pytest.approx(math.log(2) / np.median(A))
    (l50, h50), (l90, h90), (l95, h95) = (c.hdi_months[k] for k in ("0.5", "0.9", "0.95"))
    assert l95 < l90 < l50 < c.median_months < h50 < h90 < h95
    assert c.growth_per_year["median"] == pytest.approx(math.exp(12 * np.median(A)))
    # the growth factor's interval is the slope's carried over (monotone), not its own HDI
    lo, hi = results.hdi(A)
    assert (c.growth_per_year["low"], c.growth_per_year["high"]) == pytest.approx(
        (math.exp(12 * lo), math.exp(12 * hi)))
    assert c.A_per_day["median"] == pytest.approx(np.median(A) / laws.DAYS_PER_MONTH)
    assert c.ratio is None
    assert "no growth" in c.text() and f"{n_none} of 20000 draws" in c.notes[0]


def test_changepoint_ratio_and_the_fifty_percent_claim():
    rng = np.random.default_rng(1)
    before = rng.normal(0.10, 0.02, 20000)
    after = rng.normal(0.16, 0.02, 20000)
    c = claim(_run({"A": after, "A_before": before, "A_after": after}, "changepoint"), ratio=1.5)
    expected = np.mean((after >= 1.5 * before) & (after > 0))
    assert c.ratio["p_at_least"] == pytest.approx(expected)
    assert 0.3 < c.ratio["p_at_least"] < 0.9   # a genuinely uncertain claim, not 0 or 1
    assert c.ratio["median"] == pytest.approx(np.median(after / before), rel=1e-9)
    assert c.ratio["change_date"] == "2022-11-30"
    assert "after ≥ 1.5 × before" in c.text()


def test_envelope_claim_applies_the_paper_rule_inside_each_draw():
    # three targets whose densities lie exactly on ln ρ = 0.2·t in every draw: slope 0.2
    t = np.array([0.0, 5.0, 10.0])
    draws = np.tile(0.2 * t, (50, 1)) + np.linspace(0, 1, 50)[:, None]
    run = _run({"A": np.full(50, 9.9), "log_density": draws}, "envelope",
               constant={"t_months": np.r_[0.0, t], "role": ["reference", "target", "target", "target"]})
    c = claim(run, months=[3.3])
    assert c.median_months == pytest.approx(math.log(2) / 0.2)
    assert c.p_leq["3.3"] == 0.0


def test_claim_reads_a_real_run_directory_and_the_cli_prints_it(lib_run):
    c = claim(lib_run.out, months=[3.3])
    A = lib_run.result.idata.posterior["A"].values.ravel()
    assert c.n_draws == A.size
    assert c.median_months == pytest.approx(math.log(2) / np.median(A))
    runner = CliRunner()
    text = runner.invoke(app, ["claim", str(lib_run.out), "--months", "3.3", "--months", "3.5"])
    assert text.exit_code == 0, text.output
    assert "P(T ≤ 3.3 months)" in text.output and "P(T ≤ 3.5 months)" in text.output
    assert "90% HDI" in text.output
    assert text.output.startswith("Estimand: joint")      # what the sizes are relative to
    as_json = runner.invoke(app, ["claim", str(lib_run.out), "--json"])
    assert json.loads(as_json.output)["p_leq"].keys() == {"3.3", "3.5"}
    assert json.loads(as_json.output)["estimand"] == "joint"


@pytest.mark.parametrize("args, message", [
    (["claim", "no/such/run"], "no such run directory"),
    (["claim", ".", "--months", "0"], "must be positive"),
])
def test_claim_refuses_bad_input(args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize("share_flat, expect", [
    (0.0, r"^\d+\.\d\d months \(90% HDI \d+\.\d\d–\d+\.\d\d; \d+ days\)$"),
    (0.3, r"no growth in 30% of draws, and over the 70% with growth the 90% HDI is"),
    (0.8, r"^none at the median: no growth in 80% of draws \(slope ≤ 0\); where it grows, 90% HDI"),
])
def test_the_summary_line_says_when_its_hdi_leaves_out_the_draws_without_growth(share_flat, expect):
    """With many draws at T = ∞ the HDI is over the draws with growth only, and the median (over
    all of them) can lie past it: the line must say so rather than print 'inf months'."""
    rng = np.random.default_rng(0)
    n = 4000
    A = np.abs(rng.normal(0.12, 0.03, n))
    A[: int(share_flat * n)] = -0.01
    text = results.doubling_text(results.doubling_summary(A))
    assert re.search(expect, text), text
    assert "inf" not in text
