"""A changepoint whose date is marginalised over a discrete prior (model.changepoint =
"marginal"): the candidates, the mixture's algebra, the draws of the date, the claim."""

import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from bayes_densing.model import laws
from bayes_densing import results
from bayes_densing.analyses.claim import claim
from bayes_densing.config import Config
from bayes_densing.data import load
from bayes_densing.model import ModelError
from bayes_densing.model.build import build_model
from bayes_densing.model.trend import changepoint_candidates, resolve_change_date, slope_scales
from bayes_densing.results import Run


def _config(changepoint):
    config = Config()
    config.model.trend, config.model.changepoint = "changepoint", changepoint
    config.data.since = "2024-01-01"     # targets of seven months: a few candidate dates
    return config.validate()


@pytest.fixture(scope="module")
def data():
    return load(_config("marginal"))


def test_candidates_leave_three_targets_each_side(data):
    t_change, dates = changepoint_candidates(data, _config("marginal"))
    released = data.targets.release_date
    for d in dates:
        assert pd.Timestamp(d).day == 1
        assert (released < d).sum() >= 3 and (released >= d).sum() >= 3
    # and every month that qualifies is a candidate: the month before the first does not
    before = pd.Timestamp(dates[0]) - pd.offsets.MonthBegin(1)
    assert (released < before).sum() < 3
    assert np.all(np.diff(t_change) > 0)


def _value(model, name, point):
    out = model.replace_rvs_by_values([model[name]])[0]
    fn = model.compile_fn(out, inputs=model.value_vars, on_unused_input="ignore")
    return fn({v.name: point[v.name] for v in model.value_vars})


def test_the_trend_prior_is_the_mixture_of_the_fixed_dates(data):
    """Σ_k π_k p(slopes_k) Π_i p(ln ρ_i | date k), slopes_k = c_k·x with the Jacobian c_k: each
    date's term is the fixed-date model's trend prior plus its slopes' prior and ln c_k."""
    from scipy import stats

    config = _config("marginal")
    marginal = build_model(data, config)
    t_change, dates = changepoint_candidates(data, config)
    t_mean = float(data.targets.t.mean())
    point = marginal.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    c_before, c_after = slope_scales(data.targets.t.to_numpy(float), t_change, t_mean)
    x_before, x_after = point["slope_scaled"]
    terms = []
    for d, tk, cb, ca in zip(dates, t_change, c_before, c_after):
        m = build_model(data, _config(d))
        a_before, a_after = cb * x_before, ca * x_after
        # the same broken line: the fixed model's level at its date, from the marginal's level
        # at the targets' mean date
        at = {**point, "A_before": a_before, "A_after": a_after,
              "B_change": laws.changepoint_level(tk, a_before, a_after, point["B_centre"], tk,
                                                 t_mean)}
        slope_prior = stats.norm.logpdf([a_before, a_after], 0.0, config.priors.slope_sd).sum()
        terms.append(float(_value(m, "trend_prior", at)) + slope_prior + math.log(cb * ca))
    mixed = float(_value(marginal, "trend_prior", point))
    assert mixed == pytest.approx(logsumexp(terms) - math.log(len(dates)), rel=1e-9)
    weights = _value(marginal, "changepoint_weight", point)
    np.testing.assert_allclose(weights, np.exp(np.array(terms) - logsumexp(terms)), rtol=1e-7)
    np.testing.assert_allclose(_value(marginal, "A_after_by_date", point), c_after * x_after)


def test_a_slope_pinned_by_few_targets_is_rescaled_by_more(data):
    """The rescaling follows the lever arm: a change near the end leaves the slope after it
    to the last few targets, so its scale is the largest; each side's best-pinned date has 1."""
    t = data.targets.t.to_numpy(float)
    t_change, _ = changepoint_candidates(data, _config("marginal"))
    c_before, c_after = slope_scales(t, t_change, float(t.mean()))
    assert c_before.min() == pytest.approx(1.0) and c_after.min() == pytest.approx(1.0)
    assert np.argmax(c_after) == len(t_change) - 1 and np.argmax(c_before) == 0
    assert c_after[-1] > 2 and c_before[0] > 2


def test_the_centred_form_is_refused(data):
    config = _config("marginal")
    config.model.reparam = "centred"
    with pytest.raises(ModelError, match="needs model.reparam = 'shear'"):
        build_model(data, config)


def test_each_draw_gets_a_date_from_its_weights_and_the_claim_says_how_likely_slower():
    rng = np.random.default_rng(1)
    n, dates = 20000, ["2024-03-01", "2024-07-01", "2024-11-01"]
    w = rng.dirichlet([1.0, 4.0, 1.0], n)
    before = rng.normal([0.2, 0.3, 0.4], 0.05, (n, 3))     # each date's own slopes
    after = rng.normal([0.1, 0.0, -0.1], 0.05, (n, 3))
    by_date = ["chain", "draw", "changepoint_date"]
    posterior = az.from_dict(
        {"posterior": {"changepoint_weight": w[None], "A_before_by_date": before[None],
                       "A_after_by_date": after[None]}},
        coords={"changepoint_date": dates},
        dims={k: by_date[2:] for k in ("changepoint_weight", "A_before_by_date",
                                       "A_after_by_date")})["posterior"].to_dataset()
    idata = az.from_dict({"posterior": {}})
    idata["posterior"] = resolve_change_date(posterior)
    config = _config("marginal")
    months = results.change_times(idata, config)
    expected = np.asarray(config.model.months(pd.to_datetime(dates)))
    share = [(months == m).mean() for m in expected]
    np.testing.assert_allclose(share, w.mean(axis=0), atol=0.01)
    # each draw's slopes are its date's, and the same dates come back on every read
    k = results.draws(idata, "changepoint_index").astype(int)
    np.testing.assert_array_equal(results.draws(idata, "A_before"), before[np.arange(n), k])
    np.testing.assert_array_equal(results.draws(idata, "A"), after[np.arange(n), k])
    np.testing.assert_array_equal(resolve_change_date(posterior)["changepoint_index"].values.ravel(), k)
    assert results.change_label(idata, config).startswith("the change (marginalised; mode 2024-07-01")
    run = Run(idata=idata, models=pd.DataFrame(), trend=pd.DataFrame(), diagnostics={},
              config=config)
    c = claim(run)
    chosen_before, chosen_after = before[np.arange(n), k], after[np.arange(n), k]
    assert c.ratio["p_slower_after"] == pytest.approx(np.mean(chosen_after < chosen_before))
    assert "P(slower after: A_after < A_before)" in c.text()
