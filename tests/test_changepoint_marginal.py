"""A changepoint whose date is marginalised over a discrete prior (model.changepoint =
"marginal"): the candidates, the mixture's algebra, the draws of the date, the claim."""

import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from bayes_densing import laws, results
from bayes_densing.analyses.claim import claim
from bayes_densing.config import Config
from bayes_densing.data import load
from bayes_densing.model import ModelError, build_model, changepoint_candidates
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
    marginal = build_model(data, _config("marginal"))
    _, dates = changepoint_candidates(data, _config("marginal"))
    point = marginal.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    fixed = []
    t_change, _ = changepoint_candidates(data, _config("marginal"))
    t_mean = float(data.targets.t.mean())
    for d, tk in zip(dates, t_change):
        m = build_model(data, _config(d))
        # the same broken line: the fixed model's level at its date, from the marginal's level
        # at the targets' mean date
        at = {**point, "B_change": laws.changepoint_level(tk, point["A_before"], point["A_after"],
                                                          point["B_centre"], tk, t_mean)}
        fixed.append(float(_value(m, "trend_prior", at)))
    mixed = float(_value(marginal, "trend_prior", point))
    assert mixed == pytest.approx(logsumexp(fixed) - math.log(len(dates)), rel=1e-9)
    weights = _value(marginal, "changepoint_weight", point)
    np.testing.assert_allclose(weights, np.exp(np.array(fixed) - logsumexp(fixed)), rtol=1e-7)


def test_the_centred_form_is_refused(data):
    config = _config("marginal")
    config.model.reparam = "centred"
    with pytest.raises(ModelError, match="needs model.reparam = 'shear'"):
        build_model(data, config)


def test_each_draw_gets_a_date_from_its_weights_and_the_claim_says_how_likely_slower():
    rng = np.random.default_rng(1)
    n, dates = 20000, ["2024-03-01", "2024-07-01", "2024-11-01"]
    w = rng.dirichlet([1.0, 4.0, 1.0], n)
    before, after = rng.normal(0.2, 0.05, n), rng.normal(0.1, 0.05, n)
    idata = az.from_dict({"posterior": {"changepoint_weight": w[None], "A_before": before[None],
                                        "A_after": after[None], "A": after[None]}},
                         coords={"changepoint_date": dates},
                         dims={"changepoint_weight": ["changepoint_date"]})
    config = _config("marginal")
    months = results.change_times(idata, config)
    expected = np.asarray(config.model.months(pd.to_datetime(dates)))
    share = [(months == m).mean() for m in expected]
    np.testing.assert_allclose(share, w.mean(axis=0), atol=0.01)
    assert results.change_label(idata, config).startswith("the change (marginalised; mode 2024-07-01")
    run = Run(idata=idata, models=pd.DataFrame(), trend=pd.DataFrame(), diagnostics={},
              config=config)
    c = claim(run)
    assert c.ratio["p_slower_after"] == pytest.approx(np.mean(after < before))
    assert "P(slower after: A_after < A_before)" in c.text()
