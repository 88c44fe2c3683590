"""The priors and D0 as runtime inputs of one compiled family (``model.setting_inputs``,
``sweep.compile_sweep(..., setting_inputs=True)``): the model with them as an input is the
model built with those settings, and a cut fit given another config's priors on the same
program samples under them."""

import dataclasses

import numpy as np
import pytensor
import pytest
from scipy import stats

from bayes_densing.inference import cut
from bayes_densing.analyses import sbc
from bayes_densing.config import Config
from bayes_densing.model.build import build_model
from bayes_densing.model.inputs import setting_inputs, setting_values
from bayes_densing.model.priors import INPUTS


def _config(data_term: str = "off", likelihood: str = "betabinomial") -> Config:
    cfg = Config()
    cfg.set("model.data_term", data_term)
    cfg.set("model.likelihood", likelihood)
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = 2, 100, 100
    return cfg.validate()


@pytest.fixture(scope="module")
def design():
    return sbc.design(n_targets=12, n_benchmarks=3, seed=0, config=_config())


@pytest.mark.parametrize("data_term, likelihood", [("on", "betabinomial"), ("off", "robust")])
def test_the_model_with_setting_inputs_is_the_model_built_with_those_settings(
        design, data_term, likelihood):
    base = _config(data_term, likelihood)
    vector, symbolic = setting_inputs(base)
    with_inputs = build_model(design, base, settings=symbolic)
    # compiled for one evaluation each, so without the graph rewrites' time
    logp = pytensor.function(with_inputs.value_vars + [vector], with_inputs.logp(),
                             mode="FAST_COMPILE")
    rng = np.random.default_rng(0)
    start = build_model(design, base).initial_point()
    for _ in range(3):
        # every input prior setting moved at once, each by up to a factor of 2 (z_centre, a
        # location, by ±1), and D0 (which moves the scores only through the data term)
        other = _config(data_term, likelihood)
        other.priors = dataclasses.replace(base.priors, **{
            f.name: (getattr(base.priors, f.name) + rng.uniform(-1, 1) if f.name == "z_centre"
                     else getattr(base.priors, f.name) * rng.uniform(0.5, 2.0))
            for f in dataclasses.fields(base.priors) if f.name in INPUTS})
        other.priors.outlier_rate = min(other.priors.outlier_rate, 0.4)
        other.model.d0 = float(rng.uniform(0.2, 5.0))
        point = {n: start[n] + rng.normal(0, 0.3, np.shape(start[n])) for n in start}
        expected = build_model(design, other).compile_logp(mode="FAST_COMPILE")(point)
        got = logp(*[point[v.name] for v in with_inputs.value_vars], setting_values(other))
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-8)
    if data_term == "on":     # D0 alone moves the log density
        moved = setting_values(base)
        moved[-1] *= 3.0
        values = [start[v.name] for v in with_inputs.value_vars]
        assert abs(logp(*values, moved) - logp(*values, setting_values(base))) > 1e-3


def test_a_cut_fit_given_other_priors_samples_under_them(design):
    """One program, two prior settings: a slope prior 100 times tighter pulls A to 0, and the
    log prior the run records is the tighter prior's."""
    cfg = _config()
    sampler = cut.CutSampler(design, cfg, setting_inputs=True)
    seed = 3
    default = sampler.fit(seed)
    tight = _config()
    tight.priors.slope_sd = cfg.priors.slope_sd / 100
    pulled = sampler.fit(seed, settings=tight)
    a_tight = pulled.posterior["A"].values
    assert np.abs(a_tight).mean() < 0.1 * np.abs(default.posterior["A"].values).mean()
    np.testing.assert_allclose(pulled.log_prior["A"].values,
                               stats.norm(0.0, tight.priors.slope_sd).logpdf(a_tight), rtol=1e-8)
    with pytest.raises(ValueError, match="setting_inputs=True"):
        cut.CutSampler(design, cfg).target_args(settings=tight)


def test_the_hyperpriors_shapes_are_compiled_in_and_a_grid_of_one_gets_its_own_program():
    """Only ``priors.INPUTS`` (and D0) are inputs of the shared program; the other settings
    keep the config's number, so a sensitivity variant of one of them is not fitted on the
    base's program (it would run under the base's value)."""
    from bayes_densing.analyses.sensitivity import SETTING_KEYS
    from bayes_densing.model.priors import DEFAULT_PRIORS

    cfg = Config()
    cfg.set("priors.beta_sd", 0.7)
    vector, (P, d0) = setting_inputs(cfg)
    assert P.beta_sd == 0.7 and not isinstance(P.slope_sd, float)
    assert len(setting_values(cfg)) == len(INPUTS) + 1
    compiled_in = {f"priors.{k}" for k in set(DEFAULT_PRIORS) - set(INPUTS)}
    assert compiled_in and not compiled_in & SETTING_KEYS
    assert {"priors.slope_sd", "model.d0", "sampler.seed"} <= SETTING_KEYS
